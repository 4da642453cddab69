# Stage two: Argo CD and the app of apps on the EKS cluster that stage one
# (deploy/terraform/envs/<env>) made.  A separate root module on purpose:
# its providers need the cluster's endpoint, which does not exist until
# stage one is applied (one root would make the providers depend on a
# resource being created in the same run).
#
# It installs the argo-cd chart with exactly the chart version and values of
# deploy/argocd/platform/argocd.yaml (read from that file, so Argo CD's
# later self-management changes nothing), plus the root Application
# deploy/argocd/root.yaml (through the chart's extraObjects) pointing at
# var.repo_url.  From then on Argo CD deploys the rest, itself included.

locals {
  argocd_app = yamldecode(file("${path.module}/../../argocd/platform/argocd.yaml"))
  root_app   = yamldecode(file("${path.module}/../../argocd/root.yaml"))
  root = merge(local.root_app, {
    spec = merge(local.root_app.spec, {
      source = merge(local.root_app.spec.source, {
        repoURL        = var.repo_url
        targetRevision = var.repo_revision
      })
    })
  })
  argocd_values = merge(local.argocd_app.spec.source.helm.valuesObject, {
    extraObjects = [local.root]
  })
}

provider "kubernetes" {
  host                   = var.cluster_endpoint
  cluster_ca_certificate = base64decode(var.cluster_ca_certificate)
  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes = {
    host                   = var.cluster_endpoint
    cluster_ca_certificate = base64decode(var.cluster_ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", var.cluster_name, "--region", var.region]
    }
  }
}

resource "kubernetes_namespace_v1" "argocd" {
  metadata {
    name = "argocd"
    labels = {
      "app.kubernetes.io/managed-by"       = "opentofu"
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }
}

resource "helm_release" "argocd" {
  name       = "argocd"
  namespace  = kubernetes_namespace_v1.argocd.metadata[0].name
  repository = local.argocd_app.spec.source.repoURL
  chart      = local.argocd_app.spec.source.chart
  version    = local.argocd_app.spec.source.targetRevision
  values     = [yamlencode(local.argocd_values)]
  wait       = true
  timeout    = 900
}
