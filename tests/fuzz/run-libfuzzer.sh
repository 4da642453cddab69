#!/usr/bin/env bash
# run-libfuzzer.sh - `make fuzz`: builds tests/fuzz/fuzz_request.c as a
# libFuzzer target with clang (-fsanitize=fuzzer,address,undefined) in
# build-fuzz/, fuzzes a COPY of tests/fuzz/corpus for a bounded time, then
# merges the inputs that add coverage back into tests/fuzz/corpus.
#
# Environment:
#   FUZZ_SECONDS   total fuzzing time (default 60)
#   FUZZ_MAX_LEN   longest generated input in bytes (default 16384; the target
#                  itself accepts up to 1 MiB + 4 KiB)
#   FUZZ_JOBS      parallel fuzzing jobs (default 1)
#   FUZZ_NO_MERGE  set to 1 to leave tests/fuzz/corpus untouched
#   BUILD_FUZZ     build directory (default build-fuzz)
#
# A crash leaves its input in $BUILD_FUZZ/artifacts/ and the script exits
# non-zero.  It never writes outside $BUILD_FUZZ and tests/fuzz/corpus.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${BUILD_FUZZ:-build-fuzz}
SECONDS_TOTAL=${FUZZ_SECONDS:-60}
MAX_LEN=${FUZZ_MAX_LEN:-16384}
JOBS=${FUZZ_JOBS:-1}
CC=${FUZZ_CC:-clang}

command -v "$CC" >/dev/null || { echo "run-libfuzzer.sh: $CC is required" >&2; exit 2; }
mkdir -p "$OUT/obj" "$OUT/artifacts"

# The generated data file (catalog CSV and OpenAPI document as C arrays).
"$CC" -O1 -o "$OUT/embed" tools/embed.c
"$OUT/embed" "$OUT/embedded.c" catalog_csv data/aws-gpu-prices.csv openapi_json docs/openapi.json

# Every module the request path needs, minus src/http/server.c (the harness
# defines req_query/req_header itself) and the CLI.
SRC=(src/core/*.c src/util/*.c src/store/store.c src/store/store_sqlite.c src/seed/*.c
     src/api/*.c)
for f in src/http/*.c; do
	[ "$f" = src/http/server.c ] || SRC+=("$f")
done

PKGS="sqlite3 jansson libcrypto"
CFLAGS=(-std=c17 -g -O1 -D_GNU_SOURCE -DPLINTH_VERSION='"fuzz"' -Isrc
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
	-fno-omit-frame-pointer -Wall -Wno-unused-parameter $(pkg-config --cflags $PKGS))
LIBS=($(pkg-config --libs $PKGS) -lpthread -lm)

echo "run-libfuzzer.sh: building $OUT/fuzz_request"
"$CC" "${CFLAGS[@]}" -o "$OUT/fuzz_request" tests/fuzz/fuzz_request.c "${SRC[@]}" \
	"$OUT/embedded.c" "${LIBS[@]}"

# Fuzz a copy: the checked-in corpus changes only through the merge below.
WORK="$OUT/corpus-work"
rm -rf "$WORK"
mkdir -p "$WORK"
cp tests/fuzz/corpus/* "$WORK/"

# The store lives in a temp dir; on tmpfs its fsyncs are cheap.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "run-libfuzzer.sh: fuzzing for ${SECONDS_TOTAL}s (max_len $MAX_LEN, jobs $JOBS)"
status=0
FUZZ_ARGS=(-max_total_time="$SECONDS_TOTAL" -max_len="$MAX_LEN" -timeout=20
	   -dict=tests/fuzz/request.dict -artifact_prefix="$OUT/artifacts/" -print_final_stats=1)
if [ "$JOBS" -gt 1 ]; then
	FUZZ_ARGS+=(-jobs="$JOBS" -workers="$JOBS")
fi
"$OUT/fuzz_request" "${FUZZ_ARGS[@]}" "$WORK" || status=$?

if [ "$status" -ne 0 ]; then
	echo "run-libfuzzer.sh: the fuzzer stopped with status $status; inputs in $OUT/artifacts/:" >&2
	ls -l "$OUT/artifacts/" >&2 || true
	echo "minimize one with: $OUT/fuzz_request -minimize_crash=1 -runs=10000 FILE" >&2
fi

if [ "${FUZZ_NO_MERGE:-0}" != 1 ]; then
	before=$(ls tests/fuzz/corpus | wc -l)
	"$OUT/fuzz_request" -merge=1 -max_len=$((1024 * 1024 + 4096)) \
		-artifact_prefix="$OUT/artifacts/" tests/fuzz/corpus "$WORK" || status=$?
	after=$(ls tests/fuzz/corpus | wc -l)
	echo "run-libfuzzer.sh: corpus $before -> $after files (tests/fuzz/corpus)"
fi
echo "run-libfuzzer.sh: store and build under $ROOT/$OUT"
exit "$status"
