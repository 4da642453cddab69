//go:build tools

// Pins the version of github.com/hashicorp/terraform-provider-helm that tools/iac-tools.sh builds
// (go.mod holds the version; this file only keeps the import required).
package tools

import _ "github.com/hashicorp/terraform-provider-helm"
