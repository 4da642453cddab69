# tofu init -backend-config=../envs/dev/backend.hcl (from deploy/terraform/platform)
bucket = "plinth-tfstate-123456789012" # your state bucket (docs/deploy.md, step 1)
key    = "plinth/dev/terraform.tfstate"
region = "us-east-1"
