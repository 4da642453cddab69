#!/bin/sh
# Starts a real MLflow tracking server for the job-flow tests:
#   tools/mlflow-start.sh DIR PORT
# Creates (or reuses) .venv-mlflow at the repository root with the pinned
# packages of tests/requirements-mlflow.txt, then runs
#   mlflow server --backend-store-uri sqlite:///DIR/mlflow.db
#     --default-artifact-root DIR/art --host 127.0.0.1 --port PORT --workers 1
# in the background (pid = process group in DIR/mlflow.pid, log in DIR/mlflow.log) and waits
# until GET /health answers OK (at most 180 s).  With only DIR=--install it
# just prepares the venv.  It must never install anything outside
# .venv-mlflow, nor listen on anything but loopback.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-mlflow"
req="$root/tests/requirements-mlflow.txt"
python=${PYTHON:-python3}

install_venv() {
	if [ -x "$venv/bin/mlflow" ] && [ -f "$venv/requirements.stamp" ] &&
		cmp -s "$req" "$venv/requirements.stamp"; then
		return 0
	fi
	lock="$root/.venv-mlflow.lock"
	i=0
	while ! mkdir "$lock" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 900 ]; then
			echo "mlflow-start.sh: $lock held for 15 minutes; remove it if stale" >&2
			exit 1
		fi
		sleep 1
	done
	trap 'rmdir "$lock"' EXIT INT TERM
	if ! { [ -x "$venv/bin/mlflow" ] && [ -f "$venv/requirements.stamp" ] &&
		cmp -s "$req" "$venv/requirements.stamp"; }; then
		[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
		"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
		cp "$req" "$venv/requirements.stamp"
	fi
	rmdir "$lock"
	trap - EXIT INT TERM
}

dir=${1:?usage: mlflow-start.sh DIR PORT | --install}
install_venv
[ "$dir" = "--install" ] && exit 0
port=${2:?usage: mlflow-start.sh DIR PORT}
mkdir -p "$dir/art"
# Its own session and process group (pid = pgid), so the caller can stop the
# server and its workers (uvicorn, job runner) with one kill -TERM -PID.
setsid "$venv/bin/mlflow" server --backend-store-uri "sqlite:///$dir/mlflow.db" \
	--default-artifact-root "$dir/art" --host 127.0.0.1 --port "$port" --workers 1 \
	>"$dir/mlflow.log" 2>&1 &
echo $! >"$dir/mlflow.pid"
i=0
while [ "$i" -lt 360 ]; do
	if curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null | grep -q OK; then
		echo "http://127.0.0.1:$port"
		exit 0
	fi
	if ! kill -0 "$(cat "$dir/mlflow.pid")" 2>/dev/null; then
		echo "mlflow-start.sh: mlflow server exited; log:" >&2
		tail -20 "$dir/mlflow.log" >&2
		exit 1
	fi
	sleep 0.5
	i=$((i + 1))
done
echo "mlflow-start.sh: no /health after 180 s" >&2
exit 1
