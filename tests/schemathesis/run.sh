#!/bin/sh
# Runs the schemathesis API fuzzer (fuzz_api.py) in .venv-schemathesis
# (tools/venv-schemathesis.sh, pinned tests/requirements-schemathesis.txt).
# Usage: run.sh sqlite|pg.  Needs PLINTH_BIN; prints TAP.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=$("$here/../../tools/venv-schemathesis.sh") || {
	echo "1..1"
	echo "not ok 1 - tools/venv-schemathesis.sh could not create the schemathesis venv"
	exit 1
}
exec "$python" "$here/fuzz_api.py" "$@"
