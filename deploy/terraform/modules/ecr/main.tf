# The registry for Plinth's image (deploy/Dockerfile, `make image`): tags
# are immutable (a tag names one image forever, so the chart and the ECS
# task definition are reproducible), every push is scanned, images are
# encrypted with the platform key, and a lifecycle policy keeps the last
# var.keep_tagged release images and drops untagged ones after a week.

resource "aws_ecr_repository" "this" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  repository = aws_ecr_repository.this.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "untagged images (failed or superseded pushes) go after 7 days"
        selection = {
          tagStatus   = "untagged"
          countType   = "sinceImagePushed"
          countUnit   = "days"
          countNumber = 7
        }
        action = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "keep the newest release images"
        selection = {
          tagStatus     = "tagged"
          tagPrefixList = ["v"]
          countType     = "imageCountMoreThan"
          countNumber   = var.keep_tagged
        }
        action = { type = "expire" }
      },
    ]
  })
}
