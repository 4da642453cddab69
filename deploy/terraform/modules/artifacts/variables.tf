variable "bucket" {
  description = "Bucket name (globally unique)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the objects."
  type        = string
}

variable "noncurrent_days" {
  description = "Days an overwritten or deleted artifact version is kept."
  type        = number
  default     = 90
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
