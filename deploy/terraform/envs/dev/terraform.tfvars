# dev: the smallest platform that still has every part: one NAT gateway and
# no interface endpoints (the NAT carries ECR, logs and Secrets Manager
# traffic; ~110 USD a month less), a single-AZ database without standby (not
# for real money), one API task, one Spot L4 GPU group that scales to zero.
# tofu apply -var-file=../envs/dev/terraform.tfvars  (from deploy/terraform/platform)
region              = "us-east-1"
name                = "plinth-dev"
environment         = "dev"
availability_zones  = ["us-east-1a", "us-east-1b", "us-east-1c"]
vpc_cidr            = "10.41.0.0/16"
single_nat_gateway  = true
interface_endpoints = []

system_instance_types = ["t3.large"]
system_nodes          = { min = 2, desired = 2, max = 3 }
gpu_node_groups = {
  "l4-24gb" = {
    instance_type = "g6.xlarge"
    gpu_product   = "NVIDIA-L4"
    capacity_type = "SPOT"
    disk_gib      = 100
    min           = 0
    max           = 2
  }
}

api_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
plinth_image_tag    = "v1.0.0"
api_allowed_cidrs   = ["10.0.0.0/8"]
api_tasks           = { min = 1, max = 2 }

db_instance_class = "db.t4g.micro"
db_multi_az       = false
