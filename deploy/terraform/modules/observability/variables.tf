variable "name" {
  description = "Name prefix of every resource (e.g. plinth-prod)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "The API ALB's CloudWatch dimension."
  type        = string
}

variable "target_group_arn_suffix" {
  description = "The API target group's CloudWatch dimension."
  type        = string
}

variable "db_instance_id" {
  description = "The RDS instance identifier."
  type        = string
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []
}

variable "max_5xx_per_5min" {
  description = "5xx answers tolerated in 5 minutes."
  type        = number
  default     = 5
}

variable "p99_latency_seconds" {
  description = "p99 latency threshold."
  type        = number
  default     = 1
}

variable "team_min_available" {
  description = "Per team: alarm when plinth_team_available (currency units) falls below this."
  type        = map(number)
  default     = {}
}

variable "max_budget_refusals_per_hour" {
  description = "Allocations refused with budget_exceeded tolerated per hour."
  type        = number
  default     = 10
}

variable "kms_key_arn" {
  description = "KMS key of the SNS topic."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
