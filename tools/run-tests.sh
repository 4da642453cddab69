#!/usr/bin/env bash
# The whole test suite, as `make test` runs it:
#   1. a plain build: every suite (unit, store, integration, cli, openapi, fuzz corpus replay);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build: every suite again;
#   3. valgrind (leaks and memory errors) over the unit and store suites.
# Prints one closing line "N passed, N failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
status=0

# Adds the counts of one `meson test` log to the totals.
count() {
	local log=$1 ok fail to
	ok=$(grep -E '^Ok: +[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)
	fail=$(grep -E '^Fail: +[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)
	to=$(grep -E '^Timeout: +[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1)
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0} + ${to:-0}))
}

# run NAME BUILDDIR [meson test args...]
run() {
	local name=$1 dir=$2
	shift 2
	local log
	log=$(mktemp)
	echo "=== $name ==="
	if ! meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$log"; then
		status=1
	fi
	grep -qE '^(Fail|Timeout): +[1-9]' "$log" && status=1
	count "$log"
	rm -f "$log"
}

setup() {
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || { echo "meson setup $dir failed" >&2; exit 1; }
	fi
	meson compile -C "$dir" || { echo "build in $dir failed" >&2; exit 1; }
}

./tools/venv.sh >/dev/null || { echo "cannot create the Python test venv" >&2; exit 1; }
# Chart.js for the embedded dashboard and playwright-core for the 'e2e' suite.
./tools/npm-ci.sh || { echo "cannot install the npm packages (tools/npm-ci.sh)" >&2; exit 1; }
# The 'jobs' suite: MLflow in .venv-mlflow and the schema validators (npm ci).
./tools/mlflow-start.sh --install || { echo "cannot install MLflow (tools/mlflow-start.sh)" >&2; exit 1; }
# The 'schemathesis' suite: the API fuzzer in .venv-schemathesis.
./tools/venv-schemathesis.sh >/dev/null || { echo "cannot create the schemathesis venv" >&2; exit 1; }
# The 'k8s' suite: etcd, kube-apiserver and kube-controller-manager built from
# the Go module proxy and cached outside the repository, keyed by version
# (tools/k8s-build.sh; docs/kubernetes-testing.md). The first, uncached run on
# a machine costs about 8 minutes of 2 cores (15 on a slow one), ~1 GB of Go
# modules and ~3.7 GB of Go build cache; with the cache present it costs nothing.
./tools/k8s-build.sh >/dev/null || { echo "cannot build the Kubernetes binaries (tools/k8s-build.sh)" >&2; exit 1; }
# The 'deploy' suite: helm, kubeconform and crane from the Go module proxy, cached
# the same way (tools/deploy-tools.sh; first run about 8 minutes, docs/helm.md).
./tools/deploy-tools.sh >/dev/null || { echo "cannot build helm, kubeconform, crane (tools/deploy-tools.sh)" >&2; exit 1; }
# The 'deploy-iac' suite: OpenTofu, tflint, the kubernetes/helm providers
# (Go module proxy) and checkov (PyPI), cached outside the repository by
# version (tools/iac-tools.sh; docs/deploy.md, "Tests").
./tools/iac-tools.sh >/dev/null || { echo "cannot build the IaC tools (tools/iac-tools.sh)" >&2; exit 1; }
# Kueue's manager for the k8s-kueue test (docs/kueue.md): the first, uncached run
# took 13 min 45 s here (4 min CPU, 2 cores shared, load 16); cached: nothing.
PLINTH_K8S_KUEUE=1 ./tools/k8s-build.sh >/dev/null || { echo "cannot build Kueue (tools/k8s-build.sh)" >&2; exit 1; }
if ! cmp -s tests/schema/package-lock.json tests/schema/node_modules/.plinth-stamp; then
	(cd tests/schema && npm ci --no-audit --no-fund >/dev/null &&
		cp package-lock.json node_modules/.plinth-stamp) ||
		{ echo "npm ci in tests/schema failed" >&2; exit 1; }
fi

# PostgreSQL for the 'integration-pg' suite: a throwaway cluster and database
# for this run (tools/pg-start.sh), removed when the run ends.
pg_env=$(./tools/pg-start.sh) || { echo "cannot start PostgreSQL (tools/pg-start.sh)" >&2; exit 1; }
eval "$pg_env"
export PLINTH_TEST_PG_URL PLINTH_TEST_PG_CTL PLINTH_TEST_PGBENCH
trap 'eval "$PLINTH_TEST_PG_STOP" >/dev/null 2>&1' EXIT

setup build
run "plain build" build

setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	run "ASan+UBSan build" build-asan

run "valgrind (unit, store)" build --suite unit --suite store \
	--wrap 'valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite -q' \
	--timeout-multiplier 10

echo
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
