#!/usr/bin/env bash
# Builds the infrastructure-as-code tools the 'deploy-iac' test suite runs
# (OpenTofu, tflint, and the hashicorp/kubernetes and hashicorp/helm providers)
# from the Go module proxy, once per machine, and caches them OUTSIDE the
# repository, keyed by module version:
#   $cache/tofu-vX/bin/tofu
#   $cache/tflint-vX/bin/tflint
#   $cache/tofu-providers-<kubernetes ver>-<helm ver>/mirror/   a provider
#       filesystem mirror (registry.opentofu.org/hashicorp/<name>/<ver>/<os>_<arch>/)
#   $cache/checkov-<ver>/venv/bin/checkov   (PyPI, tests/deploy/requirements-checkov.txt)
# where $cache is ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}. The versions
# are the `require` lines of tools/iac/<tool>/go.mod (scratch modules: OpenTofu's
# go.mod has a `replace`, so `go install tofu@v` refuses it).
#
# The providers: the Go proxy serves no v2+ tag of either (their module paths
# have no /vN suffix), only pseudo-versions of commits; the ones pinned are the
# main branch just after kubernetes 3.2.1 and helm 3.2.0 (their CHANGELOG.md
# heads), installed in the mirror under those versions.
#
# Prints shell assignments to eval:
#   PLINTH_TOFU=/.../tofu  PLINTH_TFLINT=/.../tflint  PLINTH_TOFU_MIRROR=/.../mirror
#   PLINTH_CHECKOV=/.../checkov
# With the cache present it builds nothing. Go comes from tools/k8s-build.sh --go.
# First, uncached run: see docs/deploy.md ("Tests"), measured figures there.
set -eu
cd "$(dirname "$0")/.."
root=$PWD

die() {
	echo "iac-tools: $*" >&2
	exit 1
}
modversion() {
	awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}
tofu_v=$(modversion tools/iac/tofu/go.mod github.com/opentofu/opentofu)
tflint_v=$(modversion tools/iac/tflint/go.mod github.com/terraform-linters/tflint)
[ -n "$tofu_v" ] && [ -n "$tflint_v" ] || die "no versions in tools/iac/*/go.mod"
# provider NAME VERSION-IN-MIRROR (the mirror needs a release version)
k8s_prov=3.2.1
helm_prov=3.2.0

cache=${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	[ -z "${PLINTH_TOOLS_CACHE:-}" ] || die "cannot write the cache $cache"
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/plinth-tools
	mkdir -p "$cache" || die "cannot create the cache $cache"
fi
tofu_bin=$cache/tofu-$tofu_v/bin/tofu
tflint_bin=$cache/tflint-$tflint_v/bin/tflint
mirror=$cache/tofu-providers-k$k8s_prov-h$helm_prov/mirror
case $(uname -m) in
x86_64) plat=linux_amd64 ;;
aarch64) plat=linux_arm64 ;;
*) die "unsupported machine $(uname -m)" ;;
esac
req=tests/deploy/requirements-checkov.txt
checkov_v=$(awk -F'==' '$1 == "checkov" { print $2 }' "$req")
[ -n "$checkov_v" ] || die "no checkov version in $req"
checkov_venv=$cache/checkov-$checkov_v/venv
k8s_exe=$mirror/registry.opentofu.org/hashicorp/kubernetes/$k8s_prov/$plat/terraform-provider-kubernetes_v$k8s_prov
helm_exe=$mirror/registry.opentofu.org/hashicorp/helm/$helm_prov/$plat/terraform-provider-helm_v$helm_prov

checkov_ok() {
	[ -x "$checkov_venv/bin/checkov" ] && cmp -s "$req" "$checkov_venv/requirements.stamp"
}
complete() {
	[ -x "$tofu_bin" ] && [ -x "$tflint_bin" ] && [ -x "$k8s_exe" ] && [ -x "$helm_exe" ] && checkov_ok
}
report() {
	echo "PLINTH_TOFU=$tofu_bin"
	echo "PLINTH_TFLINT=$tflint_bin"
	echo "PLINTH_TOFU_MIRROR=$mirror"
	echo "PLINTH_CHECKOV=$checkov_venv/bin/checkov"
}
if complete; then
	report
	exit 0
fi

# One builder at a time (mkdir is atomic); a dead owner's lock is taken over.
lock=$cache/.iac-tools.lock
waited=0
until mkdir "$lock" 2>/dev/null; do
	owner=$(cat "$lock/pid" 2>/dev/null || true)
	if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
		rm -rf "$lock"
		continue
	fi
	[ "$waited" -lt 7200 ] || die "still locked by process ${owner:-?} after 2 hours: $lock"
	sleep 5
	waited=$((waited + 5))
done
echo $$ >"$lock/pid"
tmp=
trap 'rm -rf "$lock" ${tmp:+"$tmp"}' EXIT
if complete; then
	report
	exit 0
fi

# checkov: a venv of its own (it pins ~100 packages that must not meet the
# test harness's .venv), rebuilt when the requirements file changes.
if ! checkov_ok; then
	start=$SECONDS
	rm -rf "$checkov_venv"
	python3 -m venv "$checkov_venv" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
	nice -n 10 "$checkov_venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 ||
		die "pip install -r $req failed"
	cp "$req" "$checkov_venv/requirements.stamp"
	echo "iac-tools: checkov $checkov_v installed in $((SECONDS - start)) s" >&2
fi

godir=$(tools/k8s-build.sh --go) || die "no Go toolchain"
export PATH=$godir:$PATH
export GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"
export CGO_ENABLED=0 GOTOOLCHAIN=${GOTOOLCHAIN:-local}
echo "iac-tools: $(go version)" >&2

# build OUTFILE MODULEDIR PACKAGE [LDFLAGS]: builds into a temporary file in
# the cache and moves it in place, so a killed build leaves nothing half-written.
build() {
	local out=$1 moddir=$2 pkg=$3 ldflags=${4:-}
	[ -x "$out" ] && return 0
	local start=$SECONDS
	mkdir -p "$(dirname "$out")"
	tmp=$(mktemp "$cache/.iac-build.XXXXXX")
	echo "iac-tools: building $pkg ..." >&2
	(cd "$root/tools/iac/$moddir" && nice -n 10 go build -ldflags="-s -w $ldflags" -o "$tmp" "$pkg") ||
		die "go build of $pkg failed"
	mv -f "$tmp" "$out"
	tmp=
	echo "iac-tools: built ${out##*/} in $((SECONDS - start)) s" >&2
}
total=$SECONDS
build "$tofu_bin" tofu github.com/opentofu/opentofu/cmd/tofu \
	"-X github.com/opentofu/opentofu/version.dev=no"
build "$tflint_bin" tflint github.com/terraform-linters/tflint
build "$k8s_exe" provider-kubernetes github.com/hashicorp/terraform-provider-kubernetes "-X main.Version=$k8s_prov"
build "$helm_exe" provider-helm github.com/hashicorp/terraform-provider-helm "-X main.Version=$helm_prov"
echo "iac-tools: done in $((SECONDS - total)) s" >&2
complete || die "tools missing after the build"
report
