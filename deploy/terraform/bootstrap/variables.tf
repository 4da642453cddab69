variable "cluster_name" {
  description = "EKS cluster name (output cluster_name of stage one)."
  type        = string
}

variable "cluster_endpoint" {
  description = "Kubernetes API endpoint (output cluster_endpoint of stage one)."
  type        = string
}

variable "cluster_ca_certificate" {
  description = "Cluster CA, base64 PEM (output cluster_ca_certificate of stage one)."
  type        = string
}

variable "region" {
  description = "AWS region of the cluster (for aws eks get-token)."
  type        = string
}

variable "repo_url" {
  description = "Git repository holding deploy/argocd (this repository), as Argo CD reaches it."
  type        = string
}

variable "repo_revision" {
  description = "Branch or tag of repo_url Argo CD follows."
  type        = string
  default     = "main"
}
