#!/bin/sh
# Runs the dashboard in Debian's headless Chromium (tests/e2e/dashboard.mjs)
# with the pinned playwright-core of tests/e2e/package-lock.json
# (tools/npm-ci.sh installs it; no browser is downloaded).  Prints TAP.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
"$here/../../tools/npm-ci.sh" >&2 || {
	echo "1..1"
	echo "not ok 1 - tools/npm-ci.sh could not install playwright-core"
	exit 1
}
if [ ! -x /usr/bin/chromium ]; then
	echo "1..1"
	echo "not ok 1 - /usr/bin/chromium is missing (make deps installs Debian's chromium)"
	exit 1
fi
exec node "$here/dashboard.mjs"
