#!/bin/sh
# Creates (or refreshes) .venv-schemathesis at the repository root: the
# property-based API fuzzer of tests/schemathesis (schemathesis and its
# dependencies, every version pinned in tests/requirements-schemathesis.txt).
# Kept apart from .venv because schemathesis pins its own jsonschema stack.
# Idempotent: a copy of the requirements in the venv (requirements.stamp)
# says it is up to date.  Prints the interpreter path on success; it must
# never install anything outside .venv-schemathesis.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-schemathesis"
req="$root/tests/requirements-schemathesis.txt"

fresh() {
	[ -x "$venv/bin/schemathesis" ] && cmp -s "$req" "$venv/requirements.stamp"
}

if ! fresh; then
	# meson may start several users at once: one builds, the others wait.
	lock="$root/.venv-schemathesis.lock"
	tries=0
	until mkdir "$lock" 2>/dev/null; do
		tries=$((tries + 1))
		[ "$tries" -le 900 ] || {
			echo "venv-schemathesis.sh: $lock held for 15 minutes; remove it if stale" >&2
			exit 1
		}
		sleep 1
	done
	trap 'rmdir "$lock"' EXIT INT TERM
	if ! fresh; then
		[ -x "$venv/bin/python" ] || ${PYTHON:-python3} -m venv "$venv" >&2 || {
			echo "venv-schemathesis.sh: cannot create $venv (apt-get install python3-venv)" >&2
			exit 1
		}
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
		cp "$req" "$venv/requirements.stamp"
	fi
fi
echo "$venv/bin/python"
