# Stage one: the whole AWS side of the platform, composed from
# deploy/terraform/modules.  One root for every environment; an environment
# is a variables file and a backend file in deploy/terraform/envs/<env>/:
#   tofu init -backend-config=../envs/prod/backend.hcl
#   tofu apply -var-file=../envs/prod/terraform.tfvars
# What runs in the cluster (Argo CD and the app of apps) is stage two,
# deploy/terraform/bootstrap, applied once this one has made the cluster.

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project = "plinth"
    }
  }
}

locals {
  tags = merge(var.tags, {
    "plinth.io/environment" = var.environment
    "managed-by"            = "opentofu"
  })
}

module "kms" {
  source = "../modules/kms"
  name   = var.name
  tags   = local.tags
}

module "network" {
  source              = "../modules/network"
  name                = var.name
  cidr                = var.vpc_cidr
  availability_zones  = var.availability_zones
  single_nat_gateway  = var.single_nat_gateway
  interface_endpoints = var.interface_endpoints
  kms_key_arn         = module.kms.key_arn
  tags                = local.tags
}

module "ecr" {
  source      = "../modules/ecr"
  name        = "plinth"
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "artifacts" {
  source      = "../modules/artifacts"
  bucket      = "${var.name}-mlflow-artifacts"
  kms_key_arn = module.kms.key_arn
  tags        = local.tags
}

module "eks" {
  source                = "../modules/eks"
  name                  = var.name
  kubernetes_version    = var.kubernetes_version
  private_subnet_ids    = module.network.private_subnet_ids
  public_access_cidrs   = var.eks_public_access_cidrs
  kms_key_arn           = module.kms.key_arn
  system_instance_types = var.system_instance_types
  system_nodes          = var.system_nodes
  gpu_node_groups       = var.gpu_node_groups
  mlflow_bucket_arn     = module.artifacts.bucket_arn
  tags                  = local.tags
}

module "ecs_api" {
  source             = "../modules/ecs_api"
  name               = var.name
  vpc_id             = module.network.vpc_id
  vpc_cidr           = module.network.vpc_cidr
  public_subnet_ids  = module.network.public_subnet_ids
  private_subnet_ids = module.network.private_subnet_ids
  internal           = var.api_internal
  allowed_cidrs      = var.api_allowed_cidrs
  certificate_arn    = var.api_certificate_arn
  ecr_repository_url = module.ecr.repository_url
  ecr_repository_arn = module.ecr.repository_arn
  image_tag          = var.plinth_image_tag
  min_tasks          = var.api_tasks.min
  max_tasks          = var.api_tasks.max
  kms_key_arn        = module.kms.key_arn
  tags               = local.tags
}

module "rds" {
  source             = "../modules/rds"
  name               = var.name
  vpc_id             = module.network.vpc_id
  private_subnet_ids = module.network.private_subnet_ids
  client_security_group_ids = {
    "the Plinth API tasks" = module.ecs_api.tasks_security_group_id
    "the EKS cluster"      = module.eks.cluster_security_group_id
  }
  instance_class = var.db_instance_class
  multi_az       = var.db_multi_az
  kms_key_arn    = module.kms.key_arn
  tags           = local.tags
}

module "observability" {
  source                  = "../modules/observability"
  name                    = var.name
  alb_arn_suffix          = module.ecs_api.alb_arn_suffix
  target_group_arn_suffix = module.ecs_api.target_group_arn_suffix
  db_instance_id          = var.name
  alarm_emails            = var.alarm_emails
  team_min_available      = var.team_min_available
  kms_key_arn             = module.kms.key_arn
  tags                    = local.tags
}
