output "bucket" {
  description = "Bucket name (MLflow's artifactRoot.s3.bucket)."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}
