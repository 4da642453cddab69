# tofu init -backend-config=../envs/prod/backend.hcl (from deploy/terraform/platform)
bucket = "plinth-tfstate-123456789012" # your state bucket (docs/deploy.md, step 1)
key    = "plinth/prod/terraform.tfstate"
region = "us-east-1"
