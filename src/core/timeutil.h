/*
 * timeutil.h - civil time and RFC 3339 in UTC, without the C library's
 * time zone machinery (pure: no I/O, no clock, no locale).
 *
 * All instants are int64_t seconds since the Unix epoch, UTC.
 */
#ifndef PLINTH_TIMEUTIL_H
#define PLINTH_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TIME_FMT_LEN 21 /* "2026-11-29T20:40:00Z" + NUL */
#define TIME_DAY INT64_C(86400) /* seconds in a UTC day */

/* Days since 1970-01-01 for a proleptic Gregorian date (month 1..12). */
int64_t time_days_from_civil(int64_t y, unsigned m, unsigned d);
/* The inverse: a day number to year, month 1..12, day 1..31. */
void time_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);
/* Seconds since the epoch for a UTC date at 00:00:00. */
int64_t time_from_civil(int64_t y, unsigned m, unsigned d);

/*
 * Parses an RFC 3339 timestamp: "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)",
 * 't'/'z' and ' ' as separator accepted, fractional seconds truncated.
 * Years 1970..9999 only.  Returns 0 and sets *out, or ERR_INVALID (including
 * impossible dates like 2026-02-30 and hours > 23).
 */
int time_parse_rfc3339(const char *s, int64_t *out);

/* Formats as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= TIME_FMT_LEN bytes). */
void time_format_rfc3339(int64_t t, char *buf);

/* Formats the date part only, "YYYY-MM-DD", into buf (>= 11 bytes). */
void time_format_date(int64_t t, char *buf);

/* The start (00:00:00 UTC) of the day containing t. */
int64_t time_day_start(int64_t t);
/* The first day start at or after t. */
int64_t time_day_ceil(int64_t t);

#endif
