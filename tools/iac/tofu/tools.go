//go:build tools

// Pins the version of github.com/opentofu/opentofu/cmd/tofu that tools/iac-tools.sh builds
// (go.mod holds the version; this file only keeps the import required).
package tools

import _ "github.com/opentofu/opentofu/cmd/tofu"
