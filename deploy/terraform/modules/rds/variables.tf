variable "name" {
  description = "Instance identifier and name prefix (e.g. plinth-prod)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets in three AZs."
  type        = list(string)
}

variable "client_security_group_ids" {
  description = "Security groups allowed to connect, by a name used in the rule's description."
  type        = map(string)
}

variable "engine_major" {
  description = "PostgreSQL major version (parameter group family)."
  type        = string
  default     = "17"
}

variable "engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "17.6"
}

variable "instance_class" {
  description = "Instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "storage_gib" {
  description = "Initial storage; autoscaling up to five times this."
  type        = number
  default     = 50
}

variable "multi_az" {
  description = "A synchronous standby in a second AZ (production: true)."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the master-password secret."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
