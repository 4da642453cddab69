#!/usr/bin/env bash
# Builds the Kubernetes control plane the 'k8s' test suite runs against
# (kube-apiserver, kube-controller-manager, etcd) from the Go module proxy, once
# per machine, and caches the binaries OUTSIDE the repository, keyed by module
# version:
#   ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/k8s-vX.Y.Z/bin/{kube-apiserver,kube-controller-manager}
#   ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/etcd-vX.Y.Z/bin/etcd
# The versions come from tools/k8s/go.mod and tools/k8s/etcd/go.mod.
#
# Prints, on stdout, shell assignments to eval:
#   PLINTH_K8S_BIN=/.../k8s-v1.37.2/bin
#   PLINTH_ETCD_BIN=/.../etcd-v3.7.3/bin
# With the cache present it builds nothing. Progress and build times go to
# stderr. Concurrent callers serialise on a lock directory in the cache.
#
# First, uncached run (measured on 2 shared cores, empty Go build cache):
# etcd 1 min, kube-apiserver + kube-controller-manager 7 min; budget 15 min
# on a slower machine. It also fills the Go module cache (~1 GB) and the Go
# build cache (~3.7 GB). Set PLINTH_K8S_KUBECTL=1 to also build kubectl
# (optional; the tests use Python). GOFLAGS=-p=1 leaves a core for others.
#
# PLINTH_K8S_KUEUE=1 also builds Kueue's manager (sigs.k8s.io/kueue/cmd/kueue
# at $kueue_version below, `go install` from the module proxy, checked against
# the Go checksum database) into .../kueue-vX.Y.Z/bin/kueue, copies its CRDs
# from the module (config/components/crd/bases) to .../kueue-vX.Y.Z/crd and
# prints PLINTH_KUEUE_DIR=... (docs/kueue.md).
set -eu
cd "$(dirname "$0")/.."
root=$PWD

die() {
	echo "k8s-build: $*" >&2
	exit 1
}

# The version a go.mod requires of a module: modversion FILE MODULE.
modversion() {
	awk -v m="$2" '$1 == "require" && $2 == m { print $3; exit }
		$1 == m && $2 ~ /^v/ { print $2; exit }' "$1"
}
k8s_version=$(modversion tools/k8s/go.mod k8s.io/kubernetes)
etcd_version=$(modversion tools/k8s/etcd/go.mod go.etcd.io/etcd/server/v3)
[ -n "$k8s_version" ] || die "no k8s.io/kubernetes version in tools/k8s/go.mod"
[ -n "$etcd_version" ] || die "no go.etcd.io/etcd/server/v3 version in tools/k8s/etcd/go.mod"

cache=${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
	[ -z "${PLINTH_TOOLS_CACHE:-}" ] || die "cannot write the cache $cache"
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/plinth-tools
	mkdir -p "$cache" || die "cannot create the cache $cache"
fi
k8s_dir=$cache/k8s-$k8s_version
etcd_dir=$cache/etcd-$etcd_version
# Kueue: the first release serving kueue.x-k8s.io/v1beta2 with its storage there.
kueue_version=v0.17.0
kueue_dir=$cache/kueue-$kueue_version
want_kueue=${PLINTH_K8S_KUEUE:-0}

# Go: the one on PATH if it is recent enough for tools/k8s/go.mod's `go`
# line, else the toolchain PLINTH_GO_TOOLCHAIN (a golang.org/toolchain
# module, a whole GOROOT) fetched once from the Go module proxy into the cache.
# Debian 12's golang-go (1.19) is too old, so a fresh CI machine gets it here.
go_min=$(awk '$1 == "go" { print $2; exit }' tools/k8s/go.mod)
go_toolchain=${PLINTH_GO_TOOLCHAIN:-go1.26.8}
go_recent() {
	local have
	have=$("$1" env GOVERSION 2>/dev/null) || return 1
	have=${have#go}
	[ "$(printf '%s\n%s\n' "$go_min" "$have" | sort -V | head -n 1)" = "$go_min" ]
}
ensure_go() {
	if command -v go >/dev/null && go_recent go; then
		return 0
	fi
	local goroot=$cache/$go_toolchain
	if [ ! -x "$goroot/bin/go" ]; then
		local arch
		case $(uname -m) in
		x86_64) arch=amd64 ;;
		aarch64) arch=arm64 ;;
		*) die "no Go >= $go_min on PATH and no toolchain for $(uname -m)" ;;
		esac
		local mod=v0.0.1-$go_toolchain.linux-$arch
		local proxy=${GOPROXY:-https://proxy.golang.org}
		proxy=${proxy%%[,|]*}
		echo "k8s-build: no Go >= $go_min on PATH; fetching $go_toolchain from $proxy" >&2
		local dl fetch_start=$SECONDS
		dl=$(mktemp -d "$cache/.go.XXXXXX")
		curl -fsSL --retry 3 -o "$dl/go.zip" "$proxy/golang.org/toolchain/@v/$mod.zip" ||
			{ rm -rf "$dl"; die "cannot download $proxy/golang.org/toolchain/@v/$mod.zip"; }
		# The module zip holds golang.org/toolchain@$mod/{bin,pkg,src,...};
		# keep the files' modes (zipfile alone drops them).
		python3 - "$dl/go.zip" "$dl/root" "golang.org/toolchain@$mod/" <<'PY' ||
import os, sys, zipfile
src, dest, prefix = sys.argv[1:]
with zipfile.ZipFile(src) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        path = os.path.join(dest, info.filename[len(prefix):])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with z.open(info) as f, open(path, "wb") as out:
            out.write(f.read())
        mode = (info.external_attr >> 16) & 0o777
        os.chmod(path, mode or 0o644)
PY
			{ rm -rf "$dl"; die "cannot unpack the Go toolchain"; }
		rm -rf "$goroot"
		mv "$dl/root" "$goroot"
		rm -rf "$dl"
		echo "k8s-build: $go_toolchain in $goroot ($((SECONDS - fetch_start)) s)" >&2
	fi
	export PATH=$goroot/bin:$PATH GOROOT=$goroot
	go_recent go || die "the Go toolchain in $goroot does not run"
}

# `tools/k8s-build.sh --go`: only make sure a recent Go exists (fetching the
# toolchain if needed) and print the directory of its `go`; other tool
# builders (tools/iac-tools.sh) use it instead of repeating the above.
if [ "${1:-}" = --go ]; then
	ensure_go
	dirname "$(command -v go)"
	exit 0
fi

want_kubectl=${PLINTH_K8S_KUBECTL:-0}
complete() {
	[ -x "$k8s_dir/bin/kube-apiserver" ] && [ -x "$k8s_dir/bin/kube-controller-manager" ] &&
		[ -x "$etcd_dir/bin/etcd" ] &&
		{ [ "$want_kubectl" != 1 ] || [ -x "$k8s_dir/bin/kubectl" ]; } &&
		{ [ "$want_kueue" != 1 ] || [ -x "$kueue_dir/bin/kueue" ]; }
}

report() {
	echo "PLINTH_K8S_BIN=$k8s_dir/bin"
	echo "PLINTH_ETCD_BIN=$etcd_dir/bin"
	[ "$want_kueue" != 1 ] || echo "PLINTH_KUEUE_DIR=$kueue_dir"
}

if complete; then
	report
	exit 0
fi

# One builder at a time: mkdir is atomic. A lock whose owner is gone is
# taken over; others wait (bounded: a build that takes more than 3 hours is
# broken anyway).
lock=$cache/.k8s-build.lock
waited=0
until mkdir "$lock" 2>/dev/null; do
	owner=$(cat "$lock/pid" 2>/dev/null || true)
	if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
		echo "k8s-build: removing the stale lock of process $owner" >&2
		rm -rf "$lock"
		continue
	fi
	[ "$waited" -lt 10800 ] || die "still locked by process ${owner:-?} after 3 hours: $lock"
	[ $((waited % 60)) -ne 0 ] || echo "k8s-build: waiting for the build of process ${owner:-?} ($lock)" >&2
	sleep 5
	waited=$((waited + 5))
done
echo $$ >"$lock/pid"
tmp=
trap 'rm -rf "$lock" ${tmp:+"$tmp"}' EXIT

if complete; then # built by the process we waited for
	report
	exit 0
fi

export GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"
export CGO_ENABLED=${CGO_ENABLED:-0}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
ensure_go
echo "k8s-build: $(go version)" >&2

# build DESTDIR MODULEDIR OUT LDFLAGS PACKAGE...: builds into a temporary
# directory next to DESTDIR and moves each binary in place, so a killed build
# leaves no half-written binary in the cache. OUT names the binary of a single
# package ("" keeps go's names); LDFLAGS are added to -s -w.
build() {
	local dest=$1 moddir=$2 out=$3 ldflags=$4
	shift 4
	local start=$SECONDS
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	echo "k8s-build: building $* (in $moddir) ..." >&2
	(cd "$moddir" && nice -n 10 go build -ldflags="-s -w $ldflags" -o "$tmp/$out" "$@") ||
		die "go build of $* failed"
	mkdir -p "$dest/bin"
	local f
	for f in "$tmp"/*; do
		mv -f "$f" "$dest/bin/"
	done
	rm -rf "$tmp"
	tmp=
	local took=$((SECONDS - start))
	local names="${*##*/}"
	echo "k8s-build: built ${out:-$names} in $((took / 60))m$((took % 60))s ($dest/bin)" >&2
}

total_start=$SECONDS
if [ ! -x "$etcd_dir/bin/etcd" ]; then
	build "$etcd_dir" "$root/tools/k8s/etcd" etcd "" go.etcd.io/etcd/server/v3
fi
pkgs=()
[ -x "$k8s_dir/bin/kube-apiserver" ] || pkgs+=(k8s.io/kubernetes/cmd/kube-apiserver)
[ -x "$k8s_dir/bin/kube-controller-manager" ] || pkgs+=(k8s.io/kubernetes/cmd/kube-controller-manager)
if [ "$want_kubectl" = 1 ] && [ ! -x "$k8s_dir/bin/kubectl" ]; then
	pkgs+=(k8s.io/kubernetes/cmd/kubectl)
fi
# The version the binaries report (/version, --version), as Kubernetes'
# release builds stamp it; otherwise it reads v0.0.0-master.
major=${k8s_version#v}
minor=${major#*.}
major=${major%%.*}
minor=${minor%%.*}
stamp=
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	stamp="$stamp -X $p.gitVersion=$k8s_version -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
[ ${#pkgs[@]} -eq 0 ] || build "$k8s_dir" "$root/tools/k8s" "" "$stamp" "${pkgs[@]}"
if [ "$want_kueue" = 1 ] && [ ! -x "$kueue_dir/bin/kueue" ]; then
	# `go install pkg@version` builds with Kueue's own go.mod and go.sum; the
	# CRDs travel with the binary so the module cache may be cleaned.
	kstart=$SECONDS
	tmp=$(mktemp -d "$cache/.build.XXXXXX")
	echo "k8s-build: building sigs.k8s.io/kueue/cmd/kueue@$kueue_version ..." >&2
	(cd "$tmp" && GOBIN=$tmp/bin nice -n 10 go install \
		-ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$kueue_version" \
		"sigs.k8s.io/kueue/cmd/kueue@$kueue_version") || die "go install of kueue failed"
	kmod=$(go env GOMODCACHE)/sigs.k8s.io/kueue@$kueue_version
	mkdir -p "$tmp/crd" && cp "$kmod"/config/components/crd/bases/*.yaml "$tmp/crd/" ||
		die "no CRDs in $kmod"
	mkdir -p "$kueue_dir"
	rm -rf "$kueue_dir/crd" && mv "$tmp/crd" "$kueue_dir/crd"
	rm -rf "$kueue_dir/bin" && mv "$tmp/bin" "$kueue_dir/bin"
	rm -rf "$tmp"
	tmp=
	echo "k8s-build: built kueue in $(((SECONDS - kstart) / 60))m$(((SECONDS - kstart) % 60))s" >&2
fi
took=$((SECONDS - total_start))
echo "k8s-build: done in $((took / 60))m$((took % 60))s; sizes:" >&2
ls -l "$k8s_dir/bin" "$etcd_dir/bin" | grep -v '^total' >&2
complete || die "binaries missing after the build"
report
