output "alb_dns_name" {
  description = "DNS name of the ALB (point the API's DNS record at it)."
  value       = aws_lb.api.dns_name
}

output "alb_arn_suffix" {
  description = "The ALB's CloudWatch dimension."
  value       = aws_lb.api.arn_suffix
}

output "target_group_arn_suffix" {
  description = "The target group's CloudWatch dimension."
  value       = aws_lb_target_group.api.arn_suffix
}

output "tasks_security_group_id" {
  description = "Security group of the API tasks (allowed into PostgreSQL)."
  value       = aws_security_group.tasks.id
}

output "app_secret_arn" {
  description = "The secret the operator fills with database_url and admin_token."
  value       = aws_secretsmanager_secret.app.arn
}

output "cluster_name" {
  description = "The ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "The ECS service."
  value       = aws_ecs_service.api.name
}
