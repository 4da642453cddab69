# The EKS cluster the GPU jobs run on: a private API endpoint (public only
# for the CIDRs in var.public_access_cidrs), secrets encrypted with the
# platform key, every control-plane log type, IRSA (an OIDC provider), a
# managed "system" node group and a managed GPU node group whose nodes carry
# the nvidia.com/gpu=present:NoSchedule taint and the labels Plinth's GPU
# catalogue and the Jobs' nodeSelector use, and the Amazon CloudWatch
# Observability add-on (Container Insights) with its own IRSA role.

data "aws_partition" "this" {}

locals {
  partition = data.aws_partition.this.partition
}

# --- control plane ---------------------------------------------------------

data "aws_iam_policy_document" "cluster_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["eks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name               = "${var.name}-eks-cluster"
  assume_role_policy = data.aws_iam_policy_document.cluster_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_cloudwatch_log_group" "cluster" {
  # the name EKS writes control-plane logs to
  name              = "/aws/eks/${var.name}/cluster"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_eks_cluster" "this" {
  name     = var.name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = length(var.public_access_cidrs) > 0
    public_access_cidrs     = length(var.public_access_cidrs) > 0 ? var.public_access_cidrs : null
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = var.kms_key_arn
    }
  }

  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  tags                      = var.tags

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.cluster]
}

# IRSA: pods' service accounts assume IAM roles through the cluster's OIDC issuer.
resource "aws_iam_openid_connect_provider" "this" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

locals {
  oidc_host = replace(aws_iam_openid_connect_provider.this.url, "https://", "")
}

# --- node groups -------------------------------------------------------------

data "aws_iam_policy_document" "node_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.name}-eks-node"
  assume_role_policy = data.aws_iam_policy_document.node_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset([
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.node.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/${each.key}"
}

resource "aws_eks_node_group" "system" {
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "system"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  instance_types  = var.system_instance_types
  ami_type        = "AL2023_x86_64_STANDARD"
  capacity_type   = "ON_DEMAND"

  scaling_config {
    min_size     = var.system_nodes.min
    desired_size = var.system_nodes.desired
    max_size     = var.system_nodes.max
  }
  update_config {
    max_unavailable = 1
  }
  labels = { "plinth.io/node-pool" = "system" }
  tags   = var.tags

  depends_on = [aws_iam_role_policy_attachment.node]
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # the cluster autoscaler owns it
  }
}

# GPU nodes: only pods that tolerate nvidia.com/gpu land here (every Plinth-
# approved training Job does, docs/kubernetes.md); min 0 so an idle platform
# pays for no GPU.  The labels are the ones the Jobs select on.
resource "aws_eks_node_group" "gpu" {
  for_each        = var.gpu_node_groups
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = "gpu-${each.key}"
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.private_subnet_ids
  instance_types  = [each.value.instance_type]
  ami_type        = "AL2023_x86_64_NVIDIA"
  capacity_type   = each.value.capacity_type
  disk_size       = each.value.disk_gib

  scaling_config {
    min_size     = each.value.min
    desired_size = each.value.min
    max_size     = each.value.max
  }
  update_config {
    max_unavailable = 1
  }
  taint {
    key    = "nvidia.com/gpu"
    value  = "present"
    effect = "NO_SCHEDULE"
  }
  labels = {
    "plinth.io/node-pool"              = "gpu"
    "nvidia.com/gpu.present"           = "true"
    "nvidia.com/gpu.product"           = each.value.gpu_product
    "plinth.io/gpu-type"               = each.key
    "node.kubernetes.io/instance-type" = each.value.instance_type
  }
  # EKS tags the group's Auto Scaling group for the cluster autoscaler's
  # auto-discovery (k8s.io/cluster-autoscaler/<cluster> = owned), and the
  # autoscaler reads these labels and the taint from the EKS API
  # (eks:DescribeNodegroup), so a group at 0 nodes can be scaled up.
  tags = var.tags

  depends_on = [aws_iam_role_policy_attachment.node]
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size]
  }
}

# --- IRSA roles ------------------------------------------------------------------

# Who may assume each IRSA role: exactly one service account of the cluster.
locals {
  irsa_service_accounts = {
    cloudwatch_agent = "system:serviceaccount:amazon-cloudwatch:cloudwatch-agent"
    mlflow           = "system:serviceaccount:mlflow:mlflow"
    autoscaler       = "system:serviceaccount:kube-system:cluster-autoscaler"
  }
}

data "aws_iam_policy_document" "irsa_assume" {
  for_each = local.irsa_service_accounts
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [aws_iam_openid_connect_provider.this.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# Container Insights: the add-on's agent

resource "aws_iam_role" "cloudwatch_agent" {
  name               = "${var.name}-cloudwatch-agent"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["cloudwatch_agent"].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "cloudwatch_agent" {
  role       = aws_iam_role.cloudwatch_agent.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_eks_addon" "cloudwatch_observability" {
  cluster_name             = aws_eks_cluster.this.name
  addon_name               = "amazon-cloudwatch-observability"
  service_account_role_arn = aws_iam_role.cloudwatch_agent.arn
  tags                     = var.tags
  depends_on               = [aws_eks_node_group.system]
}

# MLflow: its artifact bucket only

resource "aws_iam_role" "mlflow" {
  name               = "${var.name}-mlflow"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["mlflow"].json
  tags               = var.tags
}

data "aws_iam_policy_document" "mlflow" {
  statement {
    actions   = ["s3:ListBucket"]
    resources = [var.mlflow_bucket_arn]
  }
  statement {
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${var.mlflow_bucket_arn}/*"]
  }
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "mlflow" {
  name   = "mlflow-artifacts"
  role   = aws_iam_role.mlflow.id
  policy = data.aws_iam_policy_document.mlflow.json
}

# The cluster autoscaler (deploy/argocd/platform/cluster-autoscaler.yaml):
# may read every group but resize or shrink only this cluster's.
resource "aws_iam_role" "autoscaler" {
  name               = "${var.name}-cluster-autoscaler"
  assume_role_policy = data.aws_iam_policy_document.irsa_assume["autoscaler"].json
  tags               = var.tags
}

data "aws_caller_identity" "this" {}
data "aws_region" "this" {}

data "aws_iam_policy_document" "autoscaler" {
  statement {
    sid = "Discover"
    actions = [
      "autoscaling:DescribeAutoScalingGroups",
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLaunchConfigurations",
      "autoscaling:DescribeScalingActivities",
      "autoscaling:DescribeTags",
      "ec2:DescribeImages",
      "ec2:DescribeInstanceTypes",
      "ec2:DescribeLaunchTemplateVersions",
      "ec2:GetInstanceTypesFromInstanceRequirements",
    ]
    resources = ["*"] # these actions have no resource-level permissions
  }
  statement {
    sid       = "ReadNodeGroups"
    actions   = ["eks:DescribeNodegroup"]
    resources = ["arn:${local.partition}:eks:${data.aws_region.this.region}:${data.aws_caller_identity.this.account_id}:nodegroup/${var.name}/*/*"]
  }
  statement {
    sid       = "ResizeThisClustersGroups"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/k8s.io/cluster-autoscaler/${var.name}"
      values   = ["owned"]
    }
  }
}

resource "aws_iam_role_policy" "autoscaler" {
  name   = "cluster-autoscaler"
  role   = aws_iam_role.autoscaler.id
  policy = data.aws_iam_policy_document.autoscaler.json
}
