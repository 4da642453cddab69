/*
 * money.c - exact decimal money <-> int64 micro-units.
 *
 * The only gate through which amounts enter and leave the daemon.  It must
 * never use floating point, never accept anything a strict reader would
 * not (signs, exponents, blanks), and never wrap around on overflow.
 * Pure: no I/O, no allocation.
 */
#include "core/money.h"

#include <stdbool.h>

#include "core/err.h"

/* The integer part above which the amount is over MONEY_MAX_MICROS anyway. */
#define MONEY_MAX_UNITS (MONEY_MAX_MICROS / MONEY_MICROS_PER_UNIT)

int money_parse(const char *s, int64_t *out)
{
	if (s == NULL || out == NULL)
		return ERR_INVALID;

	const char *p = s;
	int64_t units = 0;
	int64_t frac = 0;
	bool too_big = false;
	int ndigits = 0;

	/* Syntax is checked to the end before overflow is reported, so
	 * "99999999999999999999x" is invalid, not an overflow. */
	while (*p >= '0' && *p <= '9') {
		if (!too_big) {
			units = units * 10 + (*p - '0');
			if (units > MONEY_MAX_UNITS)
				too_big = true; /* stop accumulating: it cannot come back */
		}
		ndigits++;
		p++;
	}
	if (ndigits == 0)
		return ERR_INVALID;
	/* Canonical only: "01.00" or "00" could be read as another amount by a
	 * reader that takes a leading zero for octal, and two spellings of one
	 * amount make audits and idempotency hashes disagree. */
	if (ndigits > 1 && *s == '0')
		return ERR_INVALID;

	if (*p == '.') {
		p++;
		int nfrac = 0;
		while (*p >= '0' && *p <= '9') {
			if (nfrac == 6)
				return ERR_INVALID; /* more than 6 decimals */
			frac = frac * 10 + (*p - '0');
			nfrac++;
			p++;
		}
		if (nfrac == 0)
			return ERR_INVALID; /* "5." */
		for (; nfrac < 6; nfrac++)
			frac *= 10;
	}
	if (*p != '\0')
		return ERR_INVALID;
	if (too_big)
		return ERR_OVERFLOW;

	/* units <= 1e12, so units * 1e6 + frac <= 1e18 + 999999: no int64 overflow. */
	int64_t v = units * MONEY_MICROS_PER_UNIT + frac;
	if (v > MONEY_MAX_MICROS)
		return ERR_OVERFLOW;
	*out = v;
	return 0;
}

int money_format(int64_t micros, char *buf, size_t len)
{
	return money_format_round(micros, 6, buf, len);
}

int money_format_round(int64_t micros, int max_decimals, char *buf, size_t len)
{
	char tmp[MONEY_FMT_LEN];
	size_t n = 0;
	bool neg = micros < 0;
	/* Negate in unsigned arithmetic so INT64_MIN has a magnitude too. */
	uint64_t mag = neg ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
	uint64_t units = mag / (uint64_t)MONEY_MICROS_PER_UNIT;
	uint64_t frac = mag % (uint64_t)MONEY_MICROS_PER_UNIT;

	if (buf == NULL || max_decimals < 2 || max_decimals > 6)
		return ERR_INVALID;

	/* Half-up on the magnitude at the last kept decimal, so -0.005 is
	 * "-0.01" as 0.005 is "0.01"; a carry moves into the units (units is
	 * at most 2^64 / 1e6, far from wrapping). */
	uint64_t step = 1;
	for (int i = max_decimals; i < 6; i++)
		step *= 10;
	uint64_t rest = frac % step;
	frac -= rest;
	if (rest * 2 >= step)
		frac += step;
	if (frac == (uint64_t)MONEY_MICROS_PER_UNIT) {
		units++;
		frac = 0;
	}
	if (units == 0 && frac == 0)
		neg = false; /* never "-0.00" */

	/* Fraction: six digits, then trim trailing zeros down to two. */
	char fd[6];
	for (int i = 5; i >= 0; i--) {
		fd[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	int nf = 6;
	while (nf > 2 && fd[nf - 1] == '0')
		nf--;

	/* Integer part, built backwards. */
	char id[24];
	int ni = 0;
	do {
		id[ni++] = (char)('0' + units % 10);
		units /= 10;
	} while (units != 0);

	if (neg)
		tmp[n++] = '-';
	while (ni > 0)
		tmp[n++] = id[--ni];
	tmp[n++] = '.';
	for (int i = 0; i < nf; i++)
		tmp[n++] = fd[i];
	tmp[n] = '\0';

	if (n + 1 > len)
		return ERR_INVALID;
	for (size_t i = 0; i <= n; i++)
		buf[i] = tmp[i];
	return (int)n;
}
