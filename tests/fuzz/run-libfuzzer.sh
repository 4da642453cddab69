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
#   FUZZ_NO_MERGE  set to 1 to leave the corpus untouched
#   FUZZ_CORPUS    the corpus to start from and merge into (tests/fuzz/corpus)
#   FUZZ_SKIP_BAD_UTF8_PATH=1  skip inputs whose path is not UTF-8 (a known
#                  finding, see tests/fuzz/crashes/, while it is being fixed)
#   FUZZ_TARGET    the target (default fuzz_request; also fuzz_manifest,
#                  fuzz_jscan with FUZZ_CORPUS=tests/fuzz/corpus-jscan)
#   BUILD_FUZZ     build directory (default build-fuzz)
#
# A crash leaves its input in $BUILD_FUZZ/artifacts/ and the script exits
# non-zero.  It never writes outside $BUILD_FUZZ and the corpus.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${BUILD_FUZZ:-build-fuzz}
SECONDS_TOTAL=${FUZZ_SECONDS:-60}
MAX_LEN=${FUZZ_MAX_LEN:-16384}
JOBS=${FUZZ_JOBS:-1}
CORPUS=${FUZZ_CORPUS:-tests/fuzz/corpus}
CC=${FUZZ_CC:-clang}

command -v "$CC" >/dev/null || { echo "run-libfuzzer.sh: $CC is required" >&2; exit 2; }

# Meson builds everything with clang, ASan+UBSan and coverage instrumentation
# (-fsanitize=fuzzer-no-link), and the target itself with -fsanitize=fuzzer
# (tests/fuzz/meson.build), so the source and library lists stay Meson's.
# The harness replaces src/http/server.c (see fuzz_request.c): server.o is
# never linked and libmicrohttpd is never called.
if [ ! -f "$OUT/build.ninja" ]; then
	CC="$CC" meson setup "$OUT" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror=false -Dbuildtype=debugoptimized \
		-Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer" \
		>/dev/null
fi
TARGET=${FUZZ_TARGET:-fuzz_request}
echo "run-libfuzzer.sh: building $OUT/tests/fuzz/$TARGET"
meson compile -C "$OUT" "tests/fuzz/$TARGET" >/dev/null
FUZZER="$OUT/tests/fuzz/$TARGET"

# Fuzz a copy: the checked-in corpus changes only through the merge below.
WORK="$OUT/corpus-work"
mkdir -p "$OUT/artifacts"
rm -rf "$WORK"
mkdir -p "$WORK"
cp "$CORPUS"/* "$WORK/"

# The store lives in a temp dir; on tmpfs its fsyncs are cheap.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	export TMPDIR=/dev/shm
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "run-libfuzzer.sh: fuzzing for ${SECONDS_TOTAL}s (max_len $MAX_LEN, jobs $JOBS)"
status=0
FUZZ_ARGS=(-max_total_time="$SECONDS_TOTAL" -max_len="$MAX_LEN" -timeout=20
	   -artifact_prefix="$OUT/artifacts/" -print_final_stats=1)
if [ "$TARGET" = fuzz_request ]; then
	FUZZ_ARGS+=(-dict=tests/fuzz/request.dict)
fi
if [ "$JOBS" -gt 1 ]; then
	FUZZ_ARGS+=(-jobs="$JOBS" -workers="$JOBS")
fi
"$FUZZER" "${FUZZ_ARGS[@]}" "$WORK" || status=$?

if [ "$status" -ne 0 ]; then
	echo "run-libfuzzer.sh: the fuzzer stopped with status $status; inputs in $OUT/artifacts/:" >&2
	ls -l "$OUT/artifacts/" >&2 || true
	echo "minimize one with: $FUZZER -minimize_crash=1 -runs=10000 FILE" >&2
fi

if [ "${FUZZ_NO_MERGE:-0}" != 1 ]; then
	before=$(ls "$CORPUS" | wc -l)
	"$FUZZER" -merge=1 -max_len=$((1024 * 1024 + 4096)) \
		-artifact_prefix="$OUT/artifacts/" "$CORPUS" "$WORK" || status=$?
	after=$(ls "$CORPUS" | wc -l)
	echo "run-libfuzzer.sh: corpus $before -> $after files ($CORPUS)"
fi
echo "run-libfuzzer.sh: store and build under $ROOT/$OUT"
exit "$status"
