#!/bin/sh
# Runs tests/e2e/test_costviz.py (FOCUS export, /metrics, alerts) with the
# pinned Python packages of tests/requirements.txt (tools/venv.sh).  Prints TAP.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=$("$here/../../tools/venv.sh") || {
	echo "1..1"
	echo "not ok 1 - tools/venv.sh could not create the Python test environment"
	exit 1
}
exec "$python" "$here/test_costviz.py"
