#!/usr/bin/env bash
# bench/run.sh - `make bench`: builds the daemon and both benchmarks, runs the
# raw SQLite ceiling and the daemon in the same run (same machine, same disk,
# same temp directory), and prints them side by side with the goals:
#
#   at 8 clients: daemon decisions/s >= 50% of the raw SQLite ceiling,
#                 p99 latency < 10 ms;
#   idle RSS < 30 MB;
#   admission webhook at 64 clients: >= 50% of the /healthz ceiling, p99 < 5 ms.
#
# usage: bench/run.sh [BUILD_DIR]      (default: build)
# env:   BENCH_SECONDS  seconds per client level (default 5)
#        BENCH_ADMISSION=0  skip the admission webhook; BENCH_PG=0 skip PostgreSQL
#        BENCH_DAEMON_THREADS  --threads for the daemon (default: its own)
#        BENCH_PG=0, BENCH_SLOW=0  skip the PostgreSQL (decisions and costs) / slow-client benchmarks
#        BENCH_COMPARE=0  skip the comparison with the commit in bench/compare-ref
#        BENCH_K8S=0  skip the controller's lag on a real control plane
#                     (tests/k8s; the first run on a machine builds the binaries)
#        BENCH_KUEUE=0  skip Kueue admissions with/without Plinth's check
#                     (BENCH_KUEUE_WORKLOADS, default 1000)
#
# A benchmark, not a test: it exits non-zero only when something does not
# build or run, never because of the numbers (a missed goal says MISS).
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${BENCH_SECONDS:-5}

if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD"
fi
meson compile -C "$BUILD" plinth bench/bench_alloc bench/bench_sqlite_ceiling >/dev/null

OUT=$(mktemp -d "${TMPDIR:-/tmp}/plinth-benchrun-XXXXXX")
trap 'rm -rf "$OUT"' EXIT

echo "== raw SQLite ceiling (same transaction, same pragmas), ${SECS}s per level"
"$BUILD/bench/bench_sqlite_ceiling" "$SECS" | tee "$OUT/ceiling.txt" | grep -v '^RESULT'
echo
echo "== daemon: POST /v1/allocations over HTTP keep-alive, ${SECS}s per level"
"$BUILD/bench/bench_alloc" "$BUILD/plinth" "$SECS" | tee "$OUT/daemon.txt" | grep -v '^RESULT\|^RSS '
echo

# key=value field of a RESULT line for a client count.
field() { # file clients key
	awk -v c="$2" -v k="$3" '$1 == "RESULT" {
		split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		if (f["clients"] == c) print f[k] }' "$1"
}
# The goals of a bench_costs RESULT line (SQLite or PostgreSQL).
costs_goals() { # file
	awk 'function mark(ok) { return ok ? "PASS" : "MISS" }
	$1 == "RESULT" { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		r = f["roll_p50_us"] > 0 ? f["scan_p50_us"] / f["roll_p50_us"] : 0
		printf "  %s  GET /v1/costs p95 < 100 ms                          (%.2f ms)\n", mark(f["http_p95_us"] < 100000), f["http_p95_us"] / 1000
		printf "  %s  rollups >= 20x faster than the naive scan (p50)     (%.0fx)\n", mark(r >= 20), r
	}' "$1"
}
rss() { # key
	awk -v k="$1" '$1 == "RSS" { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' \
		"$OUT/daemon.txt"
}

printf '%-8s %16s %16s %7s %10s %10s\n' clients "daemon dec/s" "sqlite tx/s" ratio "p50 ms" "p99 ms"
for c in 1 8 64; do
	d=$(field "$OUT/daemon.txt" "$c" rate)
	s=$(field "$OUT/ceiling.txt" "$c" rate)
	p50=$(field "$OUT/daemon.txt" "$c" p50_us)
	p99=$(field "$OUT/daemon.txt" "$c" p99_us)
	awk -v c="$c" -v d="$d" -v s="$s" -v p50="$p50" -v p99="$p99" 'BEGIN {
		r = (s > 0) ? 100 * d / s : 0
		printf "%-8s %16.0f %16.0f %6.0f%% %10.2f %10.2f\n", c, d, s, r, p50 / 1000, p99 / 1000 }'
done
idle=$(rss idle_kb)
hwm=$(rss hwm_kb)
awk -v i="$idle" -v h="$hwm" 'BEGIN { printf "daemon RSS: idle %.1f MB, peak under load (VmHWM) %.1f MB\n", i / 1024, h / 1024 }'
echo

d8=$(field "$OUT/daemon.txt" 8 rate)
s8=$(field "$OUT/ceiling.txt" 8 rate)
p99_8=$(field "$OUT/daemon.txt" 8 p99_us)
echo "goals:"
awk -v d="$d8" -v s="$s8" -v p="$p99_8" -v i="$idle" 'function mark(ok) { return ok ? "PASS" : "MISS" }
BEGIN {
	r = (s > 0) ? 100 * d / s : 0
	printf "  %s  8 clients: daemon >= 50%% of the raw SQLite ceiling   (%.0f%%)\n", mark(r >= 50), r
	printf "  %s  8 clients: p99 latency < 10 ms                        (%.2f ms)\n", mark(p / 1000 < 10), p / 1000
	printf "  %s  idle RSS < 30 MB                                      (%.1f MB)\n", mark((i > 0) && (i / 1024 < 30)), i / 1024
}'

# The Kubernetes admission webhook (issue 13): reviews/s beside the /healthz
# ceiling of the same daemon in the same run; skipped with BENCH_ADMISSION=0.
if [ "${BENCH_ADMISSION:-1}" != 0 ]; then
	echo
	echo "== admission webhook: POST /v1/admission/review (a GPU Pod; its allocation read once, then cached for 1 s) vs GET /healthz, ${SECS}s per level"
	"$BUILD/bench/bench_alloc" --admission "$BUILD/plinth" "$SECS" >"$OUT/admission.txt"
	awk 'function mark(ok) { return ok ? "PASS" : "MISS" }
	$1 == "RESULT" { split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		k = f["shape"] "," f["clients"]; rate[k] = f["rate"]; p50[k] = f["p50_us"]; p99[k] = f["p99_us"] }
	END {
		printf "%-8s %14s %14s %7s %10s %10s\n", "clients", "reviews/s", "healthz/s", "ratio", "p50 ms", "p99 ms"
		split("1 64", levels, " ")
		for (i = 1; i <= 2; i++) {
			c = levels[i]; a = "admission," c; h = "healthz," c
			r[c] = rate[h] > 0 ? 100 * rate[a] / rate[h] : 0
			printf "%-8s %14.0f %14.0f %6.0f%% %10.2f %10.2f\n", c, rate[a], rate[h], r[c], p50[a] / 1000, p99[a] / 1000
		}
		print "goals:"
		printf "  %s  64 clients: reviews/s >= 50%% of the /healthz ceiling  (%.0f%%)\n", mark(r[64] >= 50), r[64]
		printf "  %s  64 clients: p99 < 5 ms                               (%.2f ms)\n", mark(p99["admission,64"] / 1000 < 5), p99["admission,64"] / 1000
	}' "$OUT/admission.txt"
fi

# PostgreSQL (issue 3): the daemon on a throwaway PostgreSQL beside pgbench running the
# equivalent transaction on the same server (bench/bench_pg.c); skipped with BENCH_PG=0.
if [ "${BENCH_PG:-1}" != 0 ]; then
	meson compile -C "$BUILD" bench/bench_pg bench/bench_costs >/dev/null
	pg_env=$(./tools/pg-start.sh) && eval "$pg_env"
	trap 'rm -rf "$OUT"; eval "${PLINTH_TEST_PG_STOP:-true}" >/dev/null 2>&1' EXIT
	echo
	echo "== PostgreSQL: daemon decisions/s vs pgbench (same transaction, loopback without TLS), ${SECS}s per level (the daemon after a 1 s warm-up per level)"
	"$BUILD/bench/bench_pg" "$BUILD/plinth" "$PLINTH_TEST_PG_URL" "$PLINTH_TEST_PGBENCH" "$SECS" >"$OUT/pg.txt"
	awk 'function mark(ok) { return ok ? "PASS" : "MISS" }
	$1 == "RESULT" { split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		if (f["who"] == "daemon" && f["shape"] == "healthz") http = f["rate"]
		else if (f["who"] == "daemon") { s = f["shape"]; c = f["clients"]; d = f["rate"]; p50 = f["p50_ms"]; p99 = f["p99_ms"] }
		else {
			r = f["rate"] > 0 ? 100 * d / f["rate"] : 0
			printf "%-6s %4s clients: daemon %7.0f/s (p50 %6.2f ms, p99 %7.2f ms)  pgbench %7.0f tx/s  ratio %4.0f%%\n",
				s, c, d, p50, p99, f["rate"], r
			if (c == 64 && s == "teams") teams64 = r
			if (c == 64 && s == "hot") hot64 = d
		} }
	END {
		printf "HTTP ceiling of this machine: GET /healthz (no token, no database), 64 clients: %.0f/s\n", http
		print "goals:"
		printf "  %s  100 teams, 64 clients: daemon >= 50%% of pgbench       (%.0f%%)\n", mark(teams64 >= 50), teams64
		printf "  %s  one hot team, 64 clients: >= 5000 decisions/s        (%.0f/s)\n", mark(hot64 >= 5000), hot64
	}' "$OUT/pg.txt"
	# The same cost query on PostgreSQL (issue 12): rollups vs naive scan, in a fresh schema.
	echo
	echo "== PostgreSQL: GET /v1/costs over ${BENCH_COST_ALLOCATIONS:-1000000} allocations spanning 12 months: rollups vs naive scan"
	"$BUILD/bench/bench_costs" "$BUILD/plinth" "${BENCH_COST_ALLOCATIONS:-1000000}" "$PLINTH_TEST_PG_URL" |
		tee "$OUT/costs-pg.txt" | grep -v '^RESULT'
	costs_goals "$OUT/costs-pg.txt"
fi

# Slow clients (issue 11): legitimate POST /v1/allocations with no attack, beside 1,100
# slowloris connections, then beside those and 10 slow readers (bench/bench_slow.c), on a
# daemon with its default connection settings; skipped with BENCH_SLOW=0.
if [ "${BENCH_SLOW:-1}" != 0 ]; then
	meson compile -C "$BUILD" bench/bench_slow >/dev/null
	SLOW_SECS=$(awk -v s="$SECS" 'BEGIN { print (s > 20) ? 20 : s }') # under the 30 s request deadline
	mkdir -p "$OUT/slow"
	PLINTH_ADMIN_TOKEN=bench-admin-secret-0123456789abcdef PLINTH_DATABASE_URL= \
		"$BUILD/plinth" serve --listen 127.0.0.1:0 --data "$OUT/slow/data" \
		--ready-file "$OUT/slow/ready" >"$OUT/slow/daemon.log" 2>&1 &
	slow_pid=$!
	for _ in $(seq 200); do [ -s "$OUT/slow/ready" ] && break; sleep 0.1; done
	echo
	echo "== slow clients: legitimate POST /v1/allocations (8 keep-alive clients), ${SLOW_SECS}s each: no attack, beside 1,100 slowloris connections, beside those and 10 slow readers"
	slow_rc=0
	if [ -s "$OUT/slow/ready" ]; then
		"$BUILD/bench/bench_slow" "$(cat "$OUT/slow/ready")" bench-admin-secret-0123456789abcdef \
			"$SLOW_SECS" | tee "$OUT/slow.txt" | grep -v '^RESULT\|^ATTACK' || slow_rc=$?
	else
		slow_rc=1
	fi
	kill "$slow_pid" 2>/dev/null || true
	wait "$slow_pid" 2>/dev/null || true
	if [ "$slow_rc" != 0 ]; then
		echo "bench_slow did not run; the daemon's log:"
		tail -5 "$OUT/slow/daemon.log"
		exit 1
	fi
	touch "$OUT/slow.txt"
	awk '$1 == "RESULT" { split("", f); for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		rate[f["phase"]] = f["rate"]; p99[f["phase"]] = f["p99_us"] }
	END {
		if (!("baseline" in rate)) exit
		printf "%-10s %12s %10s\n", "", "dec/s", "p99 ms"
		printf "%-10s %12.0f %10.2f\n", "no attack", rate["baseline"], p99["baseline"] / 1000
		printf "%-10s %12.0f %10.2f\n", "slowloris", rate["slowloris"], p99["slowloris"] / 1000
		printf "%-10s %12.0f %10.2f   (1,100 slowloris + 10 slow readers)\n", "attack", rate["attack"], p99["attack"] / 1000
		r = (rate["baseline"] > 0) ? 100 * rate["attack"] / rate["baseline"] : 0
		p = (p99["baseline"] > 0) ? p99["attack"] / p99["baseline"] : 0
		printf "ratio      %11.0f%% %9.1fx   (attack / no attack)\n", r, p
	}' "$OUT/slow.txt"
fi

# The controller's lag (issue 13): pod status change -> ledger transition with
# 1,000 Jobs watched, on a real API server; skipped with BENCH_K8S=0.
if [ "${BENCH_K8S:-1}" != 0 ]; then
	echo
	echo "== plinth controller: lag from a pod status change to the ledger transition, ${BENCH_K8S_JOBS:-1000} Jobs watched"
	python3 tests/k8s/bench_controller_lag.py "$BUILD/plinth" "${BENCH_K8S_JOBS:-1000}" 100 >"$OUT/k8s.txt" ||
		{ grep -v '^ok' "$OUT/k8s.txt" | tail -20; exit 1; }
	grep '^# lag\|^# goal' "$OUT/k8s.txt" | sed 's/^# /  /'
fi

# Kueue admissions through Plinth's budget check vs the same queue without it
# (issue 17), real Kueue on the same control plane; BENCH_KUEUE=0 skips it.
if [ "${BENCH_K8S:-1}" != 0 ] && [ "${BENCH_KUEUE:-1}" != 0 ]; then
	echo
	echo "== Kueue: Workloads admitted per second, ${BENCH_KUEUE_WORKLOADS:-1000} queued, with and without Plinth's AdmissionCheck"
	python3 tests/k8s/bench_kueue.py "$BUILD/plinth" "${BENCH_KUEUE_WORKLOADS:-1000}" >"$OUT/kueue.txt" ||
		{ grep -v '^ok' "$OUT/kueue.txt" | tail -20; exit 1; }
	grep '^# kueue' "$OUT/kueue.txt" | sed 's/^# /  /'
fi

echo
echo "== GET /v1/costs over ${BENCH_COST_ALLOCATIONS:-1000000} allocations spanning 12 months: daily rollups vs naive scan"
meson compile -C "$BUILD" bench/bench_costs >/dev/null
"$BUILD/bench/bench_costs" "$BUILD/plinth" "${BENCH_COST_ALLOCATIONS:-1000000}" | tee "$OUT/costs.txt" | grep -v '^RESULT'
costs_goals "$OUT/costs.txt"

# Issue 12 (the store written once over two drivers): the allocation path of
# this tree beside the commit before the redesign, built from that commit and
# run in turns in this same run (bench/compare.sh); skipped with BENCH_COMPARE=0.
if [ "${BENCH_COMPARE:-1}" != 0 ]; then
	echo
	echo "== this daemon beside the one of $(cut -c1-10 bench/compare-ref) (before the store redesign), in turns"
	./bench/compare.sh "$BUILD"
fi
