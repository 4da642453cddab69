output "key_arn" {
  description = "ARN of the platform's KMS key."
  value       = aws_kms_key.this.arn
}
