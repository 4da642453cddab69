variable "name" {
  description = "Name prefix of every resource (e.g. plinth-prod)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's range (the tasks reach PostgreSQL inside it)."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for an internet-facing ALB."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets for the tasks (and an internal ALB)."
  type        = list(string)
}

variable "internal" {
  description = "An internal ALB (reached over VPN / peering) instead of an internet-facing one."
  type        = bool
  default     = true
}

variable "allowed_cidrs" {
  description = "Client CIDRs allowed to reach the ALB on 443."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener."
  type        = string
}

variable "ecr_repository_url" {
  description = "The image repository."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the image repository (the only one the execution role may pull from)."
  type        = string
}

variable "image_tag" {
  description = "Plinth image tag (immutable, e.g. v1.4.0)."
  type        = string
}

variable "cloudwatch_agent_image" {
  description = "CloudWatch agent image for the metrics sidecar (pin a version; mirror it into ECR for private subnets without NAT)."
  type        = string
  default     = "public.ecr.aws/cloudwatch-agent/cloudwatch-agent:1.300060.0b1248"
}

variable "cpu" {
  description = "Task CPU units."
  type        = number
  default     = 512
}

variable "memory" {
  description = "Task memory (MiB)."
  type        = number
  default     = 1024
}

variable "threads" {
  description = "PLINTH_THREADS of each task."
  type        = number
  default     = 4
}

variable "min_tasks" {
  description = "Fewest tasks (two for one per AZ at least)."
  type        = number
  default     = 2
}

variable "max_tasks" {
  description = "Most tasks."
  type        = number
  default     = 10
}

variable "requests_per_task" {
  description = "ALB requests per target per minute the service scales to."
  type        = number
  default     = 3000
}

variable "requests_per_ip_per_5min" {
  description = "WAF rate limit per client IP."
  type        = number
  default     = 3000
}

variable "kms_key_arn" {
  description = "KMS key for the log groups and the secret."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the task and WAF logs."
  type        = number
  default     = 365
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
