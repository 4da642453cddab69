/*
 * util.h - small shell-side helpers: randomness, hashing, the clock.
 * These touch the OS, so they live outside src/core.
 */
#ifndef PLINTH_UTIL_H
#define PLINTH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Writes prefix + n random lower-case base32 chars + NUL into out (len bytes).
 * Uses getrandom(2).  Returns 0 or ERR_INVALID (too small) / ERR_STORE. */
int util_random_id(const char *prefix, size_t n, char *out, size_t len);

/* A token secret: "plt_" + 43 chars of base64url (32 random bytes). */
#define UTIL_SECRET_LEN 48
int util_random_secret(char *out, size_t len);

/* SHA-256 of data as 64 lower-case hex chars + NUL into out (>= 65 bytes). */
int util_sha256_hex(const void *data, size_t len, char *out);

/*
 * snprintf that refuses to truncate: formats into out (len bytes) and
 * returns 0, or ERR_INVALID when the text does not fit (out then holds a
 * cut copy that must not be used) or the format fails.  The caller fails
 * its operation; a fixed-size field never silently holds a cut value.
 */
int util_fmt(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Wall clock, seconds since the epoch (UTC). */
int64_t util_now(void);
/* Monotonic clock in microseconds, for latency measurement. */
int64_t util_mono_us(void);

#endif
