#!/bin/sh
# Runs the OpenAPI conformance harness with the pinned Python packages of
# tests/requirements.txt (the repository's .venv, made by tools/venv.sh).
# Needs PLINTH_BIN; prints TAP.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=$("$here/../../tools/venv.sh") || {
	echo "1..1"
	echo "not ok 1 - tools/venv.sh could not create the Python test environment"
	exit 1
}
exec "$python" "$here/test_openapi.py"
