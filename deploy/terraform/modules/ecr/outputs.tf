output "repository_url" {
  description = "Push and pull address of the repository."
  value       = aws_ecr_repository.this.repository_url
}

output "repository_arn" {
  description = "ARN of the repository (the execution role may pull from it only)."
  value       = aws_ecr_repository.this.arn
}
