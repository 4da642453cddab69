#!/usr/bin/env bash
# bench/compare.sh - the allocation path of this tree beside an older commit's,
# in one run on this machine: the older daemon is built from its commit
# (git archive into a temporary directory) and the two daemons take turns,
# ROUNDS times each (old, new, old, new ...), so a noisy neighbour hurts both.
# Figures (decisions/s): SQLite at 8 and 64 clients (bench_alloc), PostgreSQL
# one hot team and 100 teams at 64 clients (bench_pg, daemon only).  The best
# round of each daemon is compared; the goal is new >= 90% of old.
#
# usage: bench/compare.sh [BUILD_DIR] [OLD_REF]
#   OLD_REF default: the commit in bench/compare-ref (main before the store
#   redesign of issue 12).
# env:   BENCH_SECONDS (default 5), BENCH_COMPARE_ROUNDS (default 2),
#        BENCH_PG=0 skips PostgreSQL.
# A benchmark, not a test: it fails only when something does not build or run.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${1:-build}
REF=${2:-$(cat bench/compare-ref)}
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_COMPARE_ROUNDS:-2}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/plinth-compare-XXXXXX")
cleanup() {
	eval "${PLINTH_TEST_PG_STOP:-true}" >/dev/null 2>&1 || true
	rm -rf "$OUT"
}
trap cleanup EXIT

meson compile -C "$BUILD" plinth bench/bench_alloc bench/bench_pg >/dev/null
echo "== building the old daemon from $(git rev-parse --short "$REF")"
mkdir -p "$OUT/old"
git archive "$REF" | tar -x -C "$OUT/old"
# The dashboard's Chart.js is an input of the build (npm ci in web/).
ln -s "$PWD/web/node_modules" "$OUT/old/web/node_modules"
(cd "$OUT/old" && meson setup build >/dev/null && meson compile -C build plinth >/dev/null)
OLD_BIN=$OUT/old/build/plinth
NEW_BIN=$BUILD/plinth

# best FILE... KEY FILTER: the highest rate among RESULT lines matching FILTER.
best() {
	local filter=$1
	shift
	cat "$@" | awk -v flt="$filter" '$1 == "RESULT" && $0 ~ flt {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "rate" && kv[2] > m) m = kv[2] } }
		END { print m + 0 }'
}

if [ "${BENCH_PG:-1}" != 0 ]; then
	pg_env=$(./tools/pg-start.sh) && eval "$pg_env"
fi
for r in $(seq "$ROUNDS"); do
	for who in old new; do
		bin=$OLD_BIN
		[ "$who" = new ] && bin=$NEW_BIN
		echo "-- round $r: $who daemon"
		"$BUILD/bench/bench_alloc" "$bin" "$SECS" >"$OUT/sqlite-$who-$r.txt"
		if [ "${BENCH_PG:-1}" != 0 ]; then
			for lvl in hot64 teams64; do
				BENCH_PG_ONLY=$lvl "$BUILD/bench/bench_pg" "$bin" "$PLINTH_TEST_PG_URL" \
					"$PLINTH_TEST_PGBENCH" "$SECS" >"$OUT/pg-$lvl-$who-$r.txt"
			done
		fi
	done
done

printf '\n%-34s %12s %12s %8s\n' "decisions/s (best of $ROUNDS)" old new new/old
row() { # label old new
	awk -v l="$1" -v o="$2" -v n="$3" 'BEGIN {
		r = o > 0 ? 100 * n / o : 0
		printf "%-34s %12.0f %12.0f %7.0f%%  %s\n", l, o, n, r, (r >= 90) ? "PASS" : "MISS" }'
}
for c in 8 64; do
	row "SQLite, $c clients" "$(best "clients=$c " "$OUT"/sqlite-old-*.txt)" \
		"$(best "clients=$c " "$OUT"/sqlite-new-*.txt)"
done
if [ "${BENCH_PG:-1}" != 0 ]; then
	row "PostgreSQL, one hot team, 64 cl." "$(best "who=daemon" "$OUT"/pg-hot64-old-*.txt)" \
		"$(best "who=daemon" "$OUT"/pg-hot64-new-*.txt)"
	row "PostgreSQL, 100 teams, 64 cl." "$(best "who=daemon" "$OUT"/pg-teams64-old-*.txt)" \
		"$(best "who=daemon" "$OUT"/pg-teams64-new-*.txt)"
fi
echo "goal: every figure of the new daemon >= 90% of the old one's (PASS/MISS)"
