#!/bin/sh
# Installs the pinned npm packages of the dashboard (web/: Chart.js, copied
# into the binary at build time) and of the browser tests (tests/e2e/:
# playwright-core) with `npm ci` from their committed package-lock.json.
# Idempotent: a directory whose node_modules was installed from exactly the
# current lockfile (a copy is kept in node_modules/.plinth-stamp) is skipped.
# It never installs anything outside those two node_modules directories and
# never downloads a browser (Chromium comes from Debian: see the Makefile).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
for d in web tests/e2e; do
	dir="$root/$d"
	if cmp -s "$dir/package-lock.json" "$dir/node_modules/.plinth-stamp" 2>/dev/null; then
		continue
	fi
	(cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund >/dev/null) || {
		echo "npm-ci.sh: npm ci failed in $d" >&2
		exit 1
	}
	cp "$dir/package-lock.json" "$dir/node_modules/.plinth-stamp"
done
