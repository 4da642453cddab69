#!/bin/sh
# The 'backstage' suite: builds the plugins (backstage/scripts/build.mjs) and
# runs backstage/test with Node's test runner (TAP) under the Node 22 that
# tools/backstage-setup.sh installed.  Env: PLINTH_BINARY (the daemon under
# test), PLINTH_CARD_SCREENSHOT (where the card's screenshots go).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
node=$("$root/tools/backstage-setup.sh" --node)
cd "$root/backstage"
[ -f node_modules/.plinth-stamp ] || { echo "Bail out! backstage/node_modules missing: run tools/backstage-setup.sh"; exit 1; }
[ -n "${PLINTH_CARD_SCREENSHOT:-}" ] && mkdir -p "$PLINTH_CARD_SCREENSHOT"
"$node" scripts/build.mjs
# Its own PATH entry so child processes (the test backends) run on the same Node.
PATH="$(dirname "$node"):$PATH" exec "$node" --test --test-reporter=tap --test-concurrency=1 \
	test/scaffolder.test.mjs dist/card.test.mjs dist/quote.test.mjs
