variable "region" {
  description = "AWS region."
  type        = string
}

variable "name" {
  description = "Name prefix of every resource, e.g. plinth-prod."
  type        = string
}

variable "environment" {
  description = "dev or prod (a tag)."
  type        = string
}

variable "vpc_cidr" {
  description = "The VPC's /16."
  type        = string
}

variable "availability_zones" {
  description = "Three AZs of the region, named explicitly (the set must not change when AWS adds a zone)."
  type        = list(string)
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ."
  type        = bool
}

variable "interface_endpoints" {
  description = "Services reached through VPC interface endpoints."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "logs", "secretsmanager", "sts"]
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version."
  type        = string
  default     = "1.34"
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to the EKS public endpoint; empty = private only."
  type        = list(string)
  default     = []
}

variable "system_instance_types" {
  description = "System node group instance types."
  type        = list(string)
}

variable "system_nodes" {
  description = "System node group size."
  type = object({
    min     = number
    desired = number
    max     = number
  })
}

variable "gpu_node_groups" {
  description = "GPU node groups by Plinth GPU type (see modules/eks)."
  type = map(object({
    instance_type = string
    gpu_product   = string
    capacity_type = string
    disk_gib      = number
    min           = number
    max           = number
  }))
}

variable "api_internal" {
  description = "Internal ALB for the API."
  type        = bool
  default     = true
}

variable "api_allowed_cidrs" {
  description = "Clients allowed to the API's ALB."
  type        = list(string)
}

variable "api_certificate_arn" {
  description = "ACM certificate of the API's host name."
  type        = string
}

variable "plinth_image_tag" {
  description = "Plinth image tag in ECR."
  type        = string
}

variable "api_tasks" {
  description = "Fewest and most API tasks."
  type = object({
    min = number
    max = number
  })
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "db_multi_az" {
  description = "RDS Multi-AZ."
  type        = bool
  default     = true
}

variable "alarm_emails" {
  description = "Alarm recipients."
  type        = list(string)
  default     = []
}

variable "team_min_available" {
  description = "Per-team budget alarm thresholds (currency units)."
  type        = map(number)
  default     = {}
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
