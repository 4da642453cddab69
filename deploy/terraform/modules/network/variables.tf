variable "name" {
  description = "Name prefix of every resource (e.g. plinth-prod)."
  type        = string
}

variable "cidr" {
  description = "The VPC's IPv4 range; a /16 is split into 3 public /20 and 3 private /18."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "At least three Availability Zones of the region; the first three are used."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) >= 3
    error_message = "The platform spans three Availability Zones: give at least three."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all AZs (dev: cheaper, not AZ-fault-tolerant) instead of one per AZ."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key for the flow-log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the flow logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "interface_endpoints" {
  description = "AWS services reached through interface endpoints in every private subnet (each costs per AZ-hour; see docs/deploy.md)."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "sts"]
}
