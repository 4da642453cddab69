output "cluster_name" {
  description = "EKS cluster (input of deploy/terraform/bootstrap)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint (input of deploy/terraform/bootstrap)."
  value       = module.eks.cluster_endpoint
}

output "cluster_ca_certificate" {
  description = "Cluster CA, base64 (input of deploy/terraform/bootstrap)."
  value       = module.eks.cluster_ca_certificate
}

output "ecr_repository_url" {
  description = "Where to push the Plinth image."
  value       = module.ecr.repository_url
}

output "api_alb_dns_name" {
  description = "Point the API's DNS name here."
  value       = module.ecs_api.alb_dns_name
}

output "api_secret_arn" {
  description = "Fill with database_url and admin_token (docs/deploy.md)."
  value       = module.ecs_api.app_secret_arn
}

output "db_address" {
  description = "PostgreSQL host."
  value       = module.rds.address
}

output "db_master_secret_arn" {
  description = "RDS-managed master password secret."
  value       = module.rds.master_secret_arn
}

output "mlflow_bucket" {
  description = "MLflow artifact bucket."
  value       = module.artifacts.bucket
}

output "mlflow_irsa_role_arn" {
  description = "Role for MLflow's service account."
  value       = module.eks.mlflow_irsa_role_arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.observability.alarm_topic_arn
}

output "cluster_autoscaler_irsa_role_arn" {
  description = "Role for the cluster autoscaler's service account."
  value       = module.eks.cluster_autoscaler_irsa_role_arn
}
