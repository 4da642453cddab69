/*
 * fuzz_jscan.c - libFuzzer target for util/jscan.c, the admission webhook's
 * JSON parser: jansson is the oracle (tests/fuzz/jscan_oracle.h); any
 * disagreement aborts.  Seeds: tests/fuzz/corpus-jscan/, which the unit test
 * (tests/unit/test_jscan.c) also replays, with its own mutation loop, in
 * every test run; this target runs under libFuzzer with `make fuzz` (clang).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "jscan_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;

	if (size > (1u << 20))
		return 0;
	if (jscan_oracle(data, size, &why) != 0) {
		fprintf(stderr, "jscan disagrees with jansson: %s\n", why);
		abort();
	}
	return 0;
}
