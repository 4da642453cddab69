/*
 * timeutil.c - civil dates and RFC 3339 in UTC.
 *
 * Uses Howard Hinnant's days-from-civil algorithms so nothing depends on the
 * C library's time zone state or locale.  Must never read the clock, TZ or do
 * I/O: callers pass instants in.
 */
#include "core/timeutil.h"

#include <stdbool.h>

#include "core/err.h"


/* Floor division, for instants before the epoch. */
static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = floor_div(y, 400);
	const int64_t yoe = y - era * 400;                                     /* [0, 399] */
	const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;             /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

void time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
	days += 719468;
	const int64_t era = floor_div(days, 146097);
	const int64_t doe = days - era * 146097;
	const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const int64_t mp = (5 * doy + 2) / 153;
	const unsigned dd = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	const unsigned mm = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (mm <= 2);
	*m = mm;
	*d = dd;
}

int64_t time_from_civil(int64_t y, unsigned m, unsigned d)
{
	return time_days_from_civil(y, m, d) * TIME_DAY;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly n decimal digits at *p and advances; false if any is not a digit. */
static bool read_digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return false;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return true;
}

int time_parse_rfc3339(const char *s, int64_t *out)
{
	if (s == NULL || out == NULL)
		return ERR_INVALID;
	const char *p = s;
	int y, mo, d, h, mi, se;

	if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
	    !read_digits(&p, 2, &d))
		return ERR_INVALID;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return ERR_INVALID;
	p++;
	if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
	    !read_digits(&p, 2, &se))
		return ERR_INVALID;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return ERR_INVALID; /* at least one fractional digit */
		while (*p >= '0' && *p <= '9')
			p++; /* truncated: instants are whole seconds */
	}

	int64_t offset = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		int oh, om;
		p++;
		if (!read_digits(&p, 2, &oh) || *p++ != ':' || !read_digits(&p, 2, &om))
			return ERR_INVALID;
		if (oh > 23 || om > 59)
			return ERR_INVALID;
		offset = sign * (int64_t)(oh * 3600 + om * 60);
	} else {
		return ERR_INVALID;
	}
	if (*p != '\0')
		return ERR_INVALID;

	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    (unsigned)d > days_in_month(y, (unsigned)mo) || h > 23 || mi > 59 || se > 59)
		return ERR_INVALID;

	/* Local time minus its offset from UTC gives UTC. */
	*out = time_from_civil(y, (unsigned)mo, (unsigned)d) + h * 3600 + mi * 60 + se - offset;
	return 0;
}

/* Writes v as exactly n digits (v >= 0, v < 10^n). */
static void put_digits(char *buf, int n, int64_t v)
{
	for (int i = n - 1; i >= 0; i--) {
		buf[i] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* Instants outside years 0001..9999 are clamped so the output keeps its shape. */
static int64_t clamp_formattable(int64_t t)
{
	const int64_t lo = INT64_C(-62135596800);  /* 0001-01-01T00:00:00Z */
	const int64_t hi = INT64_C(253402300799);  /* 9999-12-31T23:59:59Z */
	return t < lo ? lo : t > hi ? hi : t;
}

void time_format_rfc3339(int64_t t, char *buf)
{
	t = clamp_formattable(t);
	int64_t days = floor_div(t, TIME_DAY);
	int64_t sod = t - days * TIME_DAY;
	int64_t y;
	unsigned m, d;
	time_civil_from_days(days, &y, &m, &d);
	/* "YYYY-MM-DDTHH:MM:SSZ" */
	put_digits(buf, 4, y);
	buf[4] = '-';
	put_digits(buf + 5, 2, m);
	buf[7] = '-';
	put_digits(buf + 8, 2, d);
	buf[10] = 'T';
	put_digits(buf + 11, 2, sod / 3600);
	buf[13] = ':';
	put_digits(buf + 14, 2, sod / 60 % 60);
	buf[16] = ':';
	put_digits(buf + 17, 2, sod % 60);
	buf[19] = 'Z';
	buf[20] = '\0';
}

void time_format_date(int64_t t, char *buf)
{
	char full[TIME_FMT_LEN];
	time_format_rfc3339(t, full);
	for (int i = 0; i < 10; i++)
		buf[i] = full[i];
	buf[10] = '\0';
}

int64_t time_day_start(int64_t t)
{
	return floor_div(t, TIME_DAY) * TIME_DAY;
}

int64_t time_day_ceil(int64_t t)
{
	int64_t d = time_day_start(t);

	return d == t ? d : d + TIME_DAY;
}
