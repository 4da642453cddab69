variable "name" {
  description = "Cluster name and name prefix (e.g. plinth-prod)."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes minor version."
  type        = string
  default     = "1.34"
}

variable "private_subnet_ids" {
  description = "Private subnets (three AZs) for the control-plane ENIs and the nodes."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs that may reach the public API endpoint; empty = private endpoint only (reach it from inside the VPC)."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key for Kubernetes secrets and the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the control-plane logs."
  type        = number
  default     = 365
}

variable "system_instance_types" {
  description = "Instance types of the system node group (Argo CD, Kueue, MLflow, Backstage, Plinth's controller)."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "system_nodes" {
  description = "Size of the system node group."
  type = object({
    min     = number
    desired = number
    max     = number
  })
  default = { min = 2, desired = 2, max = 6 }
}

variable "gpu_node_groups" {
  description = "GPU node groups by Plinth GPU type (the key is the catalogue's gpu_type, e.g. h100); min 0 scales to zero when idle."
  type = map(object({
    instance_type = string
    gpu_product   = string # the nvidia.com/gpu.product label GPU Feature Discovery would set
    capacity_type = string # ON_DEMAND or SPOT
    disk_gib      = number
    min           = number
    max           = number
  }))
  default = {}
}

variable "mlflow_bucket_arn" {
  description = "ARN of MLflow's artifact bucket (IRSA role for the mlflow service account)."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
