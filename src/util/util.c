/*
 * util.c - randomness, hashing and the clock: the shell-side helpers.
 *
 * This is where the OS is touched so that src/core never is.  Must never
 * fall back to a weak random source: if getrandom(2) fails, the caller gets
 * an error, not a predictable id or secret.
 */
#include "util/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/err.h"

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char base64url_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Fills buf with n bytes from the kernel CSPRNG, retrying short reads and EINTR. */
static int random_fill(unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return ERR_STORE;
		}
		got += (size_t)r;
	}
	return 0;
}

int util_random_id(const char *prefix, size_t n, char *out, size_t len)
{
	unsigned char rnd[128];
	size_t plen = prefix != NULL ? strlen(prefix) : 0;
	if (out == NULL || n > sizeof(rnd) || plen + n + 1 > len)
		return ERR_INVALID;
	int rc = random_fill(rnd, n);
	if (rc != 0)
		return rc;
	if (plen > 0)
		memcpy(out, prefix, plen);
	/* 256 is a multiple of 32, so masking keeps every char equally likely. */
	for (size_t i = 0; i < n; i++)
		out[plen + i] = base32_alphabet[rnd[i] & 31];
	out[plen + n] = '\0';
	return 0;
}

int util_random_secret(char *out, size_t len)
{
	unsigned char rnd[32];
	if (out == NULL || len < UTIL_SECRET_LEN)
		return ERR_INVALID;
	int rc = random_fill(rnd, sizeof(rnd));
	if (rc != 0)
		return rc;

	char *p = out;
	memcpy(p, "plt_", 4);
	p += 4;
	/* base64url without padding: 32 bytes -> 43 chars. */
	size_t i = 0;
	for (; i + 3 <= sizeof(rnd); i += 3) {
		uint32_t v = (uint32_t)rnd[i] << 16 | (uint32_t)rnd[i + 1] << 8 | rnd[i + 2];
		*p++ = base64url_alphabet[v >> 18 & 63];
		*p++ = base64url_alphabet[v >> 12 & 63];
		*p++ = base64url_alphabet[v >> 6 & 63];
		*p++ = base64url_alphabet[v & 63];
	}
	/* 32 = 30 + 2 remaining bytes -> 3 chars. */
	uint32_t v = (uint32_t)rnd[i] << 16 | (uint32_t)rnd[i + 1] << 8;
	*p++ = base64url_alphabet[v >> 18 & 63];
	*p++ = base64url_alphabet[v >> 12 & 63];
	*p++ = base64url_alphabet[v >> 6 & 63];
	*p = '\0';
	return 0;
}

/* Returns 0, or ERR_NOMEM when OpenSSL fails (in practice: out of memory). */
int util_sha256_hex(const void *data, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (out == NULL || (data == NULL && len > 0))
		return ERR_INVALID;
	if (EVP_Digest(data != NULL ? data : "", len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen != 32)
		return ERR_NOMEM;
	for (unsigned int i = 0; i < mdlen; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[2 * mdlen] = '\0';
	return 0;
}

/* clock_gettime cannot fail for these clocks on Linux; 0 is returned if it does. */
int util_fmt(char *out, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (out == NULL || len == 0)
		return ERR_INVALID;
	va_start(ap, fmt);
	n = vsnprintf(out, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		return ERR_INVALID;
	return 0;
}

int64_t util_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec;
}

int64_t util_mono_us(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
