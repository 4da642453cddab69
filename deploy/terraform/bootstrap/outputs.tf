output "argocd_chart_version" {
  description = "The argo-cd chart version installed (the one deploy/argocd/platform/argocd.yaml pins)."
  value       = helm_release.argocd.version
}
