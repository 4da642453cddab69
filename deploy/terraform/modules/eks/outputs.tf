output "cluster_name" {
  description = "The EKS cluster's name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "The cluster CA (base64 PEM)."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "The security group EKS made for the control plane and nodes."
  value       = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "IRSA's OIDC provider."
  value       = aws_iam_openid_connect_provider.this.arn
}

output "mlflow_irsa_role_arn" {
  description = "Role for MLflow's service account (deploy/argocd/platform/mlflow.yaml)."
  value       = aws_iam_role.mlflow.arn
}

output "cluster_autoscaler_irsa_role_arn" {
  description = "Role for the cluster autoscaler's service account (deploy/argocd/platform/cluster-autoscaler.yaml)."
  value       = aws_iam_role.autoscaler.arn
}
