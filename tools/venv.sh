#!/bin/sh
# Creates (or refreshes) the Python virtual environment used by the test
# harnesses: .venv at the repository root, with the pinned packages of
# tests/requirements.txt.  Idempotent: when .venv already holds exactly that
# requirements file (a copy is kept in .venv/requirements.stamp), it does
# nothing.  Prints the interpreter path on success.
# It must never install anything outside .venv.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
req="$root/tests/requirements.txt"
python=${PYTHON:-python3}

if [ -x "$venv/bin/python" ] && [ -f "$venv/requirements.stamp" ] &&
	cmp -s "$req" "$venv/requirements.stamp"; then
	echo "$venv/bin/python"
	exit 0
fi

# A lock directory so parallel callers (meson runs tests concurrently) do not
# build the venv twice at once.
lock="$root/.venv.lock"
i=0
while ! mkdir "$lock" 2>/dev/null; do
	i=$((i + 1))
	if [ "$i" -gt 600 ]; then
		echo "venv.sh: $lock held for 10 minutes; remove it if stale" >&2
		exit 1
	fi
	sleep 1
done
trap 'rmdir "$lock"' EXIT INT TERM

# Another caller may have finished while we waited.
if [ -x "$venv/bin/python" ] && [ -f "$venv/requirements.stamp" ] &&
	cmp -s "$req" "$venv/requirements.stamp"; then
	echo "$venv/bin/python"
	exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
	"$python" -m venv "$venv" >&2 || {
		echo "venv.sh: '$python -m venv' failed (on Debian: apt-get install python3-venv)" >&2
		exit 1
	}
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
cp "$req" "$venv/requirements.stamp"
echo "$venv/bin/python"
