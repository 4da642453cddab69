#!/usr/bin/env bash
# `make image`: Plinth's container image without a Docker engine, the same
# image deploy/docker/Dockerfile describes (same rootfs script, same config).
#
#   tools/image.sh [--binary PATH] [--out DIR] [--tag NAME:VERSION]
#
# 1. the binary: PATH, or a build of the repository in build-image/ (the
#    project's default -O2 build, as the Dockerfile's build stage; rootfs.sh
#    strips it). Not --buildtype=release: at -O3 GCC 12 reports
#    maybe-uninitialized warnings that -Werror turns into errors;
# 2. its root filesystem: deploy/docker/rootfs.sh (the binary, the shared
#    libraries ldd resolves, the loader, CA bundle, passwd/group);
# 3. one layer: an uncompressed tar with fixed times and owners (root, except
#    /var/lib/plinth: 10001), so the same files give the same digest;
# 4. crane (tools/deploy-tools.sh, built from its Go module): `crane append`
#    of the layer onto the empty OCI base and `crane mutate` of the config
#    (user, entrypoint, cmd, ports, env, workdir, labels, platform), both
#    against a throwaway `crane registry serve` on loopback (crane edits images
#    in a registry, not on disk), then `crane pull --format oci` (OCI layout)
#    and `crane pull` (a tarball for `docker load`/`podman load`).
#
# Output in DIR (default build-image/image): oci/ (OCI image layout), plinth.tar,
# rootfs/ (what the layer holds) and digest (the manifest digest). Prints the
# sizes on stderr.
set -eu
cd "$(dirname "$0")/.."
root=$PWD

die() {
	echo "image.sh: $*" >&2
	exit 1
}

binary=
out=$root/build-image/image
version=$(awk -F"'" '/^ *version *:/ { print $2; exit }' meson.build)
tag=plinth:$version
while [ $# -gt 0 ]; do
	case $1 in
	--binary) binary=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--tag) tag=$2; shift 2 ;;
	*) die "usage: $0 [--binary PATH] [--out DIR] [--tag NAME:VERSION]" ;;
	esac
done
[ -n "$version" ] || die "no version in meson.build"

if [ -z "$binary" ]; then
	if [ ! -f build-image/build.ninja ]; then
		meson setup build-image --buildtype=debugoptimized >&2 || die "meson setup build-image failed"
	fi
	nice -n 10 meson compile -C build-image plinth >&2 || die "the release build failed"
	binary=$root/build-image/plinth
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

tools=$(./tools/deploy-tools.sh) || die "tools/deploy-tools.sh failed"
eval "$tools"
crane=$PLINTH_CRANE

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
deploy/docker/rootfs.sh "$out/rootfs" "$binary" || die "deploy/docker/rootfs.sh failed"

# The layer: sorted, mtime 0, numeric owners; the data directory belongs to
# the image's user (the Dockerfile's COPY --chown=10001:10001).
python3 - "$out/rootfs" "$out/layer.tar" <<'PY' || die "cannot write the layer"
import os, sys, tarfile
src, dest = sys.argv[1:]
def fix(ti):
    ti.mtime = 0
    ti.uname = ti.gname = ""
    ti.uid = ti.gid = 10001 if ti.name in ("var/lib/plinth",) else 0
    return ti
with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
    for d, dirs, files in os.walk(src):
        dirs.sort()
        for n in sorted(dirs) + sorted(files):
            p = os.path.join(d, n)
            t.add(p, arcname=os.path.relpath(p, src), recursive=False, filter=fix)
PY

reg_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
setsid "$crane" registry serve --address "127.0.0.1:$port" --disk "$reg_dir" >"$out/registry.log" 2>&1 &
reg_pid=$!
# The registry goes with the script; the script's status is kept.
trap 'st=$?; kill -TERM "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; rm -rf "$reg_dir"; exit $st' EXIT
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && break
	kill -0 "$reg_pid" 2>/dev/null || die "crane registry serve exited: $(cat "$out/registry.log")"
	sleep 0.1
done
ref=127.0.0.1:$port/$tag
labels=(
	-l org.opencontainers.image.title=plinth
	-l "org.opencontainers.image.description=Prices GPU training jobs and approves them against team budgets and GPU capacity"
	-l "org.opencontainers.image.version=$version"
	-l org.opencontainers.image.licenses=Apache-2.0
	-l org.opencontainers.image.base.name=scratch
)
rev=$(git rev-parse HEAD 2>/dev/null || true)
[ -z "$rev" ] || labels+=(-l "org.opencontainers.image.revision=$rev")
arch=$(uname -m)
case $arch in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
"$crane" append --oci-empty-base -f "$out/layer.tar" -t "$ref" >/dev/null 2>"$out/crane.log" ||
	die "crane append failed: $(cat "$out/crane.log")"
"$crane" mutate "$ref" -t "$ref" --set-platform "linux/$arch" \
	--user 10001:10001 --workdir /var/lib/plinth \
	--entrypoint /usr/bin/plinth --cmd serve \
	--exposed-ports 8080/tcp,8443/tcp,9090/tcp \
	-e PLINTH_LISTEN=0.0.0.0:8080 -e PLINTH_DATA=/var/lib/plinth \
	"${labels[@]}" >"$out/digest.ref" 2>>"$out/crane.log" || die "crane mutate failed: $(cat "$out/crane.log")"
"$crane" pull --format oci "$ref" "$out/oci" 2>>"$out/crane.log" || die "crane pull (oci) failed"
"$crane" pull "$ref" "$out/plinth.tar" 2>>"$out/crane.log" || die "crane pull (tarball) failed"
sed 's/.*@//' "$out/digest.ref" >"$out/digest"
rm -f "$out/digest.ref" "$out/layer.tar"
echo "image.sh: $tag $(cat "$out/digest")" >&2
echo "image.sh: rootfs $(du -sk "$out/rootfs" | cut -f1) KiB, compressed image $(du -sk "$out/plinth.tar" | cut -f1) KiB ($out)" >&2
