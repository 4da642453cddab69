/*
 * money.h - exact decimal money in integer micro-units.
 *
 * Money never touches floating point.  On the wire it is a decimal string with
 * at most 6 fractional digits ("50000", "12.5", "0.003414"); inside it is an
 * int64_t count of micro-units (1 unit = 1 000 000 micros).
 * Pure: no I/O, no allocation.
 */
#ifndef PLINTH_MONEY_H
#define PLINTH_MONEY_H

#include <stddef.h>
#include <stdint.h>

#define MONEY_MICROS_PER_UNIT INT64_C(1000000)
/* The largest amount accepted on input: one trillion units.  Sums of many
 * such amounts still fit comfortably in int64 micros (9.2e18). */
#define MONEY_MAX_MICROS INT64_C(1000000000000000000)
/* Buffer size that holds any formatted amount, sign and NUL included. */
#define MONEY_FMT_LEN 32

/*
 * Parses a non-negative decimal amount: digits, optionally '.' and 1..6
 * digits.  No sign, no exponent, no spaces, no leading '+', at least one
 * integer digit ("0.5" ok, ".5" refused, "5." refused).  No leading zeros
 * ("0" and "0.5" ok, "01.00" and "00" refused); trailing fractional zeros are
 * fine ("12.50", what money_format prints).  Returns 0 and sets *out, ERR_INVALID for bad syntax or
 * more than 6 decimals, ERR_OVERFLOW above MONEY_MAX_MICROS.  *out is left
 * untouched on failure.
 */
int money_parse(const char *s, int64_t *out);

/*
 * Formats micros as a decimal string with at least 2 and at most 6
 * fractional digits, trailing zeros beyond the 2nd trimmed:
 * 12500000 -> "12.50", 3414 -> "0.003414", -1500000 -> "-1.50".
 * Writes at most len bytes including the NUL; returns the string length, or
 * ERR_INVALID if len is too small (use MONEY_FMT_LEN).
 */
int money_format(int64_t micros, char *buf, size_t len);

/*
 * As money_format, rounded half-up (on the magnitude) to max_decimals (2..6)
 * fractional digits first: the way a person reads an amount.
 * 640819200 with 2 -> "640.82", 1668800 with 4 -> "1.6688", 7912000 with 4
 * -> "7.912", -5000 with 2 -> "-0.01", -4999 with 2 -> "0.00".  For text
 * only: a machine-readable amount keeps all six decimals (money_format).
 * Returns the string length, or ERR_INVALID for a max_decimals out of range
 * or a len too small (use MONEY_FMT_LEN).
 */
int money_format_round(int64_t micros, int max_decimals, char *buf, size_t len);

#endif
