#!/usr/bin/env bash
# Builds the tools of the 'deploy' test suite (tests/deploy: the image and the
# Helm chart) from the Go module proxy, once per machine, and caches them
# OUTSIDE the repository, keyed by module version:
#   ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/helm-v4.3.2/bin/helm
#   ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/kubeconform-v0.8.0/bin/kubeconform
#   ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/crane-v0.22.1/bin/crane
# and the CRDs of the chart's optional kinds, from the operators' Go modules
# (`go mod download`; their CRD YAML is in the module, with its LICENSE):
#   .../deploy-crds-<versions>/servicemonitors.yaml (prometheus-operator)
#   .../deploy-crds-<versions>/certificates.yaml    (cert-manager)
#
# Prints, on stdout, shell assignments to eval:
#   PLINTH_HELM=/.../helm  PLINTH_KUBECONFORM=/.../kubeconform  PLINTH_CRANE=/.../crane
#   PLINTH_DEPLOY_CRDS=/.../deploy-crds-...
# With the cache present it builds nothing. Progress and build times go to
# stderr. Concurrent callers serialise on a lock directory in the cache.
#
# Go: the `go` on PATH when it is >= 1.26 (helm v4's go.mod), else the
# toolchain tools/k8s-build.sh fetches into the same cache (tools/run-tests.sh
# runs that script first on a fresh machine).
#
# First, uncached run (measured on 2 shared cores with the k8s suite's Go
# module cache present): see docs/helm.md, "Tools".
set -eu
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
CRANE_VERSION=v0.22.1
GO_MIN=1.26
PROMOP_VERSION=v0.85.0
CERTMANAGER_VERSION=v1.21.2

die() {
	echo "deploy-tools: $*" >&2
	exit 1
}

cache=${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	[ -z "${PLINTH_TOOLS_CACHE:-}" ] || die "cannot write the cache $cache"
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/plinth-tools
	mkdir -p "$cache" || die "cannot create the cache $cache"
fi

# tool NAME MODULE VERSION PACKAGE: one line "NAME DIR MODULE@VERSION PACKAGE".
tools="helm $cache/helm-$HELM_VERSION helm.sh/helm/v4 $HELM_VERSION helm.sh/helm/v4/cmd/helm
kubeconform $cache/kubeconform-$KUBECONFORM_VERSION github.com/yannh/kubeconform $KUBECONFORM_VERSION github.com/yannh/kubeconform/cmd/kubeconform
crane $cache/crane-$CRANE_VERSION github.com/google/go-containerregistry $CRANE_VERSION github.com/google/go-containerregistry/cmd/crane"

# CRD FILE MODULE VERSION PATH: one line each.
crd_dir=$cache/deploy-crds-promop-$PROMOP_VERSION-certmanager-$CERTMANAGER_VERSION
crds="servicemonitors github.com/prometheus-operator/prometheus-operator $PROMOP_VERSION example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml
certificates github.com/cert-manager/cert-manager $CERTMANAGER_VERSION deploy/crds/cert-manager.io_certificates.yaml"

complete() {
	local name dir mod ver pkg
	while read -r name dir mod ver pkg; do
		[ -x "$dir/bin/$name" ] || return 1
	done <<<"$tools"
	while read -r name mod ver pkg; do
		[ -s "$crd_dir/$name.yaml" ] || return 1
	done <<<"$crds"
}

report() {
	local name dir mod ver pkg
	while read -r name dir mod ver pkg; do
		echo "PLINTH_$(echo "$name" | tr a-z A-Z)=$dir/bin/$name"
	done <<<"$tools"
	echo "PLINTH_DEPLOY_CRDS=$crd_dir"
}

if complete; then
	report
	exit 0
fi

# One builder at a time: flock(1) on a file in the cache (released when the
# holder exits, however it exits); others wait up to an hour.
exec 9>"$cache/.deploy-tools.lock"
flock -w 3600 9 || die "$cache/.deploy-tools.lock still held after an hour"
tmp=
trap 'rm -rf ${tmp:+"$tmp"}' EXIT
if complete; then # built by the process we waited for
	report
	exit 0
fi

go_ok() {
	local have
	have=$("$1" env GOVERSION 2>/dev/null) || return 1
	have=${have#go}
	[ "$(printf '%s\n%s\n' "$GO_MIN" "$have" | sort -V | head -n 1)" = "$GO_MIN" ]
}
gobin=
if command -v go >/dev/null && go_ok go; then
	gobin=$(command -v go)
else
	for g in "$cache"/go1.*/bin/go; do
		if [ -x "$g" ] && go_ok "$g"; then
			gobin=$g
			export GOROOT=${g%/bin/go}
		fi
	done
fi
[ -n "$gobin" ] || die "no Go >= $GO_MIN on PATH or in $cache (run tools/k8s-build.sh first: it fetches one)"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"
total=$SECONDS
while read -r name dir mod ver pkg; do
	[ ! -x "$dir/bin/$name" ] || continue
	start=$SECONDS
	tmp=$(mktemp -d "$cache/.deploy-tools.XXXXXX")
	echo "deploy-tools: building $pkg@$ver ..." >&2
	ldflags="-s -w"
	# helm reports its version from these (else v4.3 with no patch level).
	[ "$name" != helm ] || ldflags="$ldflags -X helm.sh/helm/v4/internal/version.version=$ver"
	GOBIN=$tmp nice -n 10 "$gobin" install -ldflags="$ldflags" "$pkg@$ver" ||
		die "go install $pkg@$ver failed"
	mkdir -p "$dir/bin"
	mv -f "$tmp/$name" "$dir/bin/$name"
	rm -rf "$tmp"
	tmp=
	echo "deploy-tools: built $name $ver in $((SECONDS - start)) s ($dir/bin)" >&2
done <<<"$tools"
mkdir -p "$crd_dir"
while read -r name mod ver pkg; do
	[ ! -s "$crd_dir/$name.yaml" ] || continue
	moddir=$(cd "$cache" && "$gobin" mod download -json "$mod@$ver" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') ||
		die "go mod download $mod@$ver failed"
	[ -s "$moddir/$pkg" ] || die "no $pkg in $mod@$ver"
	cp "$moddir/LICENSE" "$crd_dir/$name.LICENSE"
	cp "$moddir/$pkg" "$crd_dir/$name.yaml.tmp"
	mv -f "$crd_dir/$name.yaml.tmp" "$crd_dir/$name.yaml"
	echo "deploy-tools: $name CRD from $mod@$ver" >&2
done <<<"$crds"
echo "deploy-tools: done in $((SECONDS - total)) s" >&2
complete || die "tools missing after the build"
report
