terraform {
  required_version = ">= 1.8.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0, < 7.0"
    }
  }
  # State in S3 (encrypted, locked with a lock file); bucket, key and region
  # come from envs/<env>/backend.hcl (docs/deploy.md, step 1).
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
