#!/bin/sh
# Prepares the 'backstage' test suite (backstage/, docs/backstage.md):
#   1. Node.js 22 LTS from the npm registry (package node-linux-<arch>, the
#      binary package behind the `node` package), cached OUTSIDE the
#      repository in ${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}/node-<version>/.
#      Backstage supports the two newest Node LTS lines (22 and 24); Debian 12's
#      Node 20 is past its end of life, so the Backstage packages run on this one.
#   2. `npm ci` in backstage/ from its committed package-lock.json, run by that
#      Node (better-sqlite3 is compiled against its headers, no download).
#      Skipped when node_modules was installed from exactly this lockfile.
#   tools/backstage-setup.sh            install (idempotent)
#   tools/backstage-setup.sh --node     print the Node binary's path (installs nothing;
#                                       exit 1 if missing)
# First, uncached run: ~20 s for Node (27 MB download), ~5 min for npm ci
# (1,380 packages, ~820 MB in node_modules, better-sqlite3 compiled) on 2 shared cores.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
version=22.23.5
case $(uname -m) in
x86_64) arch=x64 ;;
aarch64) arch=arm64 ;;
*) echo "backstage-setup.sh: no Node build for $(uname -m)" >&2; exit 1 ;;
esac
cache=${PLINTH_TOOLS_CACHE:-/var/cache/plinth-tools}
home="$cache/node-$version"
pkg="$home/node_modules/node-linux-$arch"
node="$pkg/bin/node"

if [ "${1:-}" = "--node" ]; then
	[ -x "$node" ] || { echo "backstage-setup.sh: Node $version is not installed; run tools/backstage-setup.sh" >&2; exit 1; }
	echo "$node"
	exit 0
fi

if [ ! -x "$node" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.node-$version.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT INT TERM
	(cd "$tmp" && npm install --no-save --no-audit --no-fund --ignore-scripts --prefix . \
		"node-linux-$arch@$version" >/dev/null) || {
		echo "backstage-setup.sh: cannot install node-linux-$arch@$version from the npm registry" >&2
		exit 1
	}
	[ "$("$tmp/node_modules/node-linux-$arch/bin/node" --version)" = "v$version" ] || {
		echo "backstage-setup.sh: the installed Node is not v$version" >&2
		exit 1
	}
	# Another run may have won the race: keep the first complete copy.
	mv "$tmp" "$home" 2>/dev/null || rm -rf "$tmp"
	trap - EXIT INT TERM
fi

dir="$root/backstage"
if cmp -s "$dir/package-lock.json" "$dir/node_modules/.plinth-stamp" 2>/dev/null; then
	exit 0
fi
(cd "$dir" && PATH="$pkg/bin:$PATH" npm_config_nodedir="$pkg" npm ci --no-audit --no-fund >/dev/null) || {
	echo "backstage-setup.sh: npm ci failed in backstage/" >&2
	exit 1
}
cp "$dir/package-lock.json" "$dir/node_modules/.plinth-stamp"
