# prod: NAT per AZ, interface endpoints, Multi-AZ PostgreSQL, API tasks in
# every AZ, H100 and L4 GPU groups that scale from zero (GPU capacity is paid
# by the hour, only while Plinth-approved jobs run).
# tofu apply -var-file=../envs/prod/terraform.tfvars  (from deploy/terraform/platform)
region             = "us-east-1"
name               = "plinth-prod"
environment        = "prod"
availability_zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
vpc_cidr           = "10.40.0.0/16"
single_nat_gateway = false

system_instance_types = ["m7i.large"]
system_nodes          = { min = 3, desired = 3, max = 6 }
gpu_node_groups = {
  "h100-80gb" = {
    instance_type = "p5.48xlarge"
    gpu_product   = "NVIDIA-H100-80GB-HBM3"
    capacity_type = "ON_DEMAND"
    disk_gib      = 500
    min           = 0
    max           = 4
  }
  "l4-24gb" = {
    instance_type = "g6.12xlarge"
    gpu_product   = "NVIDIA-L4"
    capacity_type = "ON_DEMAND"
    disk_gib      = 200
    min           = 0
    max           = 4
  }
}

# the API: give these on the command line or in a private tfvars file
api_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
plinth_image_tag    = "v1.0.0"
api_allowed_cidrs   = ["10.0.0.0/8"]
api_tasks           = { min = 3, max = 12 }

db_instance_class = "db.m7g.large"
db_multi_az       = true

alarm_emails = []
# alarm when a team has less than this (currency units) left
team_min_available = { nlp = 5000 }
