#!/usr/bin/env bash
# Assembles the root filesystem of Plinth's container image in ROOTFS:
#   /usr/bin/plinth (stripped), the shared libraries `ldd` resolves for it (each at the
#   path the loader looks it up, with its real contents) and the loader;
#   /etc/passwd, /etc/group (user and group plinth, 10001), /etc/nsswitch.conf,
#   the CA bundle (libcurl's MLflow/alert calls, libpq's sslmode=verify-full,
#   libgit2's https remotes) and empty /tmp and /var/lib/plinth.
# Nothing else: no shell, no package manager. The Dockerfile's build stage and
# `make image` (tools/image.sh) both call it, so the two images hold the same
# files.
#
#   deploy/docker/rootfs.sh ROOTFS BINARY
set -eu

die() {
	echo "rootfs.sh: $*" >&2
	exit 1
}
[ $# -eq 2 ] || die "usage: $0 ROOTFS BINARY"
rootfs=$1
binary=$2
[ -x "$binary" ] || die "no executable $binary"
[ ! -e "$rootfs" ] || [ -z "$(ls -A "$rootfs")" ] || die "$rootfs exists and is not empty"
ca=${PLINTH_IMAGE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$ca" ] || die "no CA bundle at $ca (Debian: ca-certificates)"

mkdir -p "$rootfs/usr/bin" "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/var/lib/plinth"
# Stripped: the debug information stays with the build, not in the image.
install -m 0755 "$binary" "$rootfs/usr/bin/plinth"
strip --strip-unneeded "$rootfs/usr/bin/plinth" || die "strip failed"

# Every library ldd resolves (lines "name => /path (addr)") and the loader
# (a line "/lib64/ld-linux-x86-64.so.2 (addr)"). A library ldd cannot find
# ("not found") is an error, not an image that fails at its first start.
out=$(ldd "$binary") || die "ldd $binary failed"
! grep -q 'not found' <<<"$out" || die "ldd: unresolved libraries: $(grep 'not found' <<<"$out")"
libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out")
[ -n "$libs" ] || die "ldd found no libraries for $binary"
n=0
for lib in $libs; do
	mkdir -p "$rootfs$(dirname "$lib")"
	# The real file under the name the loader asks for (symlinks resolved).
	cp -L "$lib" "$rootfs$lib" || die "cannot copy $lib"
	n=$((n + 1))
done
# /lib64 and /lib are symlinks on merged-/usr Debian: the loader's path must
# work either way, so it is a file here.

cp -L "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
plinth:x:10001:10001:plinth:/var/lib/plinth:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
plinth:x:10001:
nogroup:x:65534:
GROUP
# glibc >= 2.34 has the files and dns NSS modules built in: no libnss_*.so.
echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
chmod 1777 "$rootfs/tmp"
echo "rootfs.sh: $rootfs: plinth and $n libraries" >&2
