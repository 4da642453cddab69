/*
 * httpc.c - the blocking HTTP client behind httpc.h, built on libcurl.
 *
 * This is the ONLY file in Plinth that includes <curl/curl.h>: every curl
 * error is translated here into enum err plus a one-line detail.  It must
 * never print, never follow redirects, never speak anything but http/https,
 * and never hold more than max_body bytes of a response.
 */
#include "net/httpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "core/err.h"
#include "util/buf.h"

/* curl_global_init is not thread-safe and must run once per process. */
static pthread_once_t httpc_once = PTHREAD_ONCE_INIT;
static CURLcode httpc_global_rc = CURLE_FAILED_INIT;

static void httpc_global_init(void)
{
	httpc_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The growing response body; capped so a hostile server cannot exhaust memory. */
struct httpc_buf {
	struct buf b; /* owned until handed to the response */
	size_t max;
	int too_large;
};

static size_t httpc_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct httpc_buf *hb = userdata;
	size_t n = size * nmemb;

	if (n > hb->max || hb->b.len > hb->max - n) {
		hb->too_large = 1;
		return 0; /* makes curl abort with CURLE_WRITE_ERROR */
	}
	return buf_add(&hb->b, ptr, n) ? n : 0;
}

static void httpc_detail_set(char *detail, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void httpc_detail_set(char *detail, const char *fmt, ...)
{
	va_list ap;

	if (detail == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, HTTPC_DETAIL_LEN, fmt, ap);
	va_end(ap);
}

/* Applies the TLS settings of tls (may be NULL) to h; blobs are copied by curl. */
static CURLcode httpc_tls_apply(CURL *h, const struct httpc_tls *tls)
{
	CURLcode cc = CURLE_OK;

	if (tls == NULL)
		return CURLE_OK;
	if (tls->ca_pem != NULL) {
		struct curl_blob b = { (void *)tls->ca_pem, tls->ca_pem_len, CURL_BLOB_COPY };
		cc = curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (tls->ca_file != NULL) {
		cc = curl_easy_setopt(h, CURLOPT_CAINFO, tls->ca_file);
	}
	if (cc == CURLE_OK && tls->cert_pem != NULL) {
		struct curl_blob b = { (void *)tls->cert_pem, tls->cert_pem_len, CURL_BLOB_COPY };
		cc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
	} else if (cc == CURLE_OK && tls->cert_file != NULL) {
		cc = curl_easy_setopt(h, CURLOPT_SSLCERT, tls->cert_file);
	}
	if (cc == CURLE_OK && tls->key_pem != NULL) {
		struct curl_blob b = { (void *)tls->key_pem, tls->key_pem_len, CURL_BLOB_COPY };
		cc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
	} else if (cc == CURLE_OK && tls->key_file != NULL) {
		cc = curl_easy_setopt(h, CURLOPT_SSLKEY, tls->key_file);
	}
	return cc;
}

/* Runs curl_global_init once; 0 when libcurl is usable. */
static int httpc_global_check(char *detail)
{
	pthread_once(&httpc_once, httpc_global_init);
	if (httpc_global_rc != CURLE_OK) {
		httpc_detail_set(detail, "libcurl init failed: %s",
			curl_easy_strerror(httpc_global_rc));
		return -1;
	}
	return 0;
}

/* The request headers: "Expect:" (no waiting for 100-continue on larger
 * bodies) then the caller's.  Returns 0, or -1 when out of memory (*hl is
 * then still the caller's to free). */
static int httpc_headers(const char *const *headers, struct curl_slist **hl)
{
	struct curl_slist *n = curl_slist_append(*hl, "Expect:");

	if (n == NULL)
		return -1;
	*hl = n;
	for (size_t i = 0; headers != NULL && headers[i] != NULL; i++) {
		n = curl_slist_append(*hl, headers[i]);
		if (n == NULL)
			return -1;
		*hl = n;
	}
	return 0;
}

/* What every request shares: the URL, http(s) only, no signals, no redirects,
 * curl's error text in errbuf, the headers and the TLS settings. */
static CURLcode httpc_base_setopt(CURL *h, const char *url, struct curl_slist *hl, char *errbuf,
	const struct httpc_tls *tls)
{
	CURLcode cc = curl_easy_setopt(h, CURLOPT_URL, url);

	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (cc == CURLE_OK)
		cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (cc == CURLE_OK)
		cc = httpc_tls_apply(h, tls);
	return cc;
}

int httpc_request(const char *method, const char *url, const char *const *headers,
	const char *body, size_t body_len, long timeout_ms, size_t max_body,
	struct httpc_response *out, char *detail)
{
	return httpc_request_tls(method, url, headers, body, body_len, timeout_ms, max_body,
		NULL, out, detail);
}

int httpc_request_tls(const char *method, const char *url, const char *const *headers,
	const char *body, size_t body_len, long timeout_ms, size_t max_body,
	const struct httpc_tls *tls, struct httpc_response *out, char *detail)
{
	CURL *h = NULL;
	struct curl_slist *hl = NULL;
	struct httpc_buf buf = { .max = max_body };
	char errbuf[CURL_ERROR_SIZE] = "";
	char shorturl[160];
	int rc = ERR_UNAVAILABLE;
	CURLcode cc;

	if (method == NULL || url == NULL || out == NULL || (body == NULL && body_len > 0)) {
		httpc_detail_set(detail, "invalid request arguments");
		return ERR_INVALID;
	}
	snprintf(shorturl, sizeof shorturl, "%s", url);

	if (httpc_global_check(detail) != 0)
		return ERR_UNAVAILABLE;

	h = curl_easy_init();
	if (h == NULL) {
		rc = ERR_NOMEM;
		httpc_detail_set(detail, "out of memory");
		goto out;
	}

	if (httpc_headers(headers, &hl) != 0) {
		rc = ERR_NOMEM;
		httpc_detail_set(detail, "out of memory");
		goto out;
	}

	if (httpc_base_setopt(h, url, hl, errbuf, tls) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, httpc_write_cb) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &buf) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 0L) != CURLE_OK ||
	    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body) != CURLE_OK) {
		rc = ERR_INVALID;
		httpc_detail_set(detail, "cannot configure request to %s", shorturl);
		goto out;
	}

	if (strcmp(method, "GET") == 0 && body == NULL) {
		cc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else {
		/* POSTFIELDS with an explicit size carries binary-safe bodies and an
		 * empty body alike; CUSTOMREQUEST then names the real method. */
		cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if (cc == CURLE_OK)
			cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		if (cc == CURLE_OK && strcmp(method, "POST") != 0)
			cc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		if (cc == CURLE_OK && strcmp(method, "DELETE") == 0 && body == NULL)
			cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (cc != CURLE_OK) {
		rc = ERR_INVALID;
		httpc_detail_set(detail, "cannot configure %s request", method);
		goto out;
	}

	cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		long os_errno = 0;
		const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);

		if (buf.too_large || cc == CURLE_FILESIZE_EXCEEDED) {
			rc = ERR_TOO_LARGE;
			httpc_detail_set(detail, "response from %s is larger than %zu bytes",
				shorturl, max_body);
			goto out;
		}
		if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL) {
			rc = ERR_INVALID;
			httpc_detail_set(detail, "bad url %s: %s", shorturl, why);
			goto out;
		}
		if (cc == CURLE_OPERATION_TIMEDOUT) {
			rc = ERR_UNAVAILABLE;
			httpc_detail_set(detail, "no answer from %s in time: %s", shorturl, why);
			goto out;
		}
		if (cc == CURLE_WRITE_ERROR) {
			rc = ERR_NOMEM;
			httpc_detail_set(detail, "out of memory reading %s", shorturl);
			goto out;
		}
		rc = ERR_UNAVAILABLE;
		if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST) {
			if (curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
			    os_errno != 0)
				why = strerror((int)os_errno);
			httpc_detail_set(detail, "cannot reach %s: %s", shorturl, why);
		} else {
			/* Connected, but the exchange broke (e.g. the peer closed early). */
			httpc_detail_set(detail, "request to %s failed: %s", shorturl, why);
		}
		goto out;
	}

	{
		long status = 0;
		char *ct = NULL;

		if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
		    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK) {
			rc = ERR_UNAVAILABLE;
			httpc_detail_set(detail, "bad response from %s", shorturl);
			goto out;
		}
		if (buf.b.p == NULL) {
			buf.b.p = calloc(1, 1);
			if (buf.b.p == NULL) {
				rc = ERR_NOMEM;
				httpc_detail_set(detail, "out of memory");
				goto out;
			}
		}
		memset(out, 0, sizeof *out);
		out->status = status;
		out->body = buf.b.p; /* ownership moves to the caller */
		out->len = buf.b.len;
		buf.b.p = NULL;
		if (ct != NULL)
			snprintf(out->content_type, sizeof out->content_type, "%s", ct);
	}
	rc = 0;
out:
	free(buf.b.p);
	curl_slist_free_all(hl);
	if (h != NULL)
		curl_easy_cleanup(h);
	return rc;
}

/* The state of one streamed transfer, shared by its curl callbacks. */
struct httpc_stream_state {
	CURL *h;
	int (*on_data)(void *ctx, long status, const char *data, size_t len);
	int (*should_stop)(void *ctx);
	void *ctx;
	int stopped; /* a callback asked to stop: not an error */
};

static size_t httpc_stream_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct httpc_stream_state *st = userdata;
	long status = 0;

	if (curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (st->on_data(st->ctx, status, ptr, size * nmemb) != 0) {
		st->stopped = 1;
		return 0;
	}
	return size * nmemb;
}

static int httpc_stream_progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
	curl_off_t ultotal, curl_off_t ulnow)
{
	struct httpc_stream_state *st = userdata;

	if (st->should_stop != NULL && st->should_stop(st->ctx) != 0) {
		st->stopped = 1;
		return 1;
	}
	return 0;
}

int httpc_stream(const char *url, const char *const *headers, const struct httpc_tls *tls,
	long connect_timeout_ms, long stall_s,
	int (*on_data)(void *ctx, long status, const char *data, size_t len),
	int (*should_stop)(void *ctx), void *ctx, long *status, char *detail)
{
	struct httpc_stream_state st = { .on_data = on_data, .should_stop = should_stop, .ctx = ctx };
	struct curl_slist *hl = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	char shorturl[160];
	int rc = ERR_UNAVAILABLE;
	CURLcode cc;

	if (url == NULL || on_data == NULL) {
		httpc_detail_set(detail, "invalid request arguments");
		return ERR_INVALID;
	}
	snprintf(shorturl, sizeof shorturl, "%s", url);
	if (httpc_global_check(detail) != 0)
		return ERR_UNAVAILABLE;
	st.h = curl_easy_init();
	if (st.h == NULL) {
		httpc_detail_set(detail, "out of memory");
		return ERR_NOMEM;
	}
	if (httpc_headers(headers, &hl) != 0) {
		rc = ERR_NOMEM;
		httpc_detail_set(detail, "out of memory");
		goto out;
	}
	if (httpc_base_setopt(st.h, url, hl, errbuf, tls) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_HTTPGET, 1L) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_WRITEFUNCTION, httpc_stream_write_cb) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_WRITEDATA, &st) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_NOPROGRESS, 0L) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_XFERINFOFUNCTION, httpc_stream_progress_cb) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_XFERINFODATA, &st) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_CONNECTTIMEOUT_MS,
		    connect_timeout_ms > 0 ? connect_timeout_ms : 0L) != CURLE_OK ||
	    curl_easy_setopt(st.h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
	    (stall_s > 0 && (curl_easy_setopt(st.h, CURLOPT_LOW_SPEED_LIMIT, 1L) != CURLE_OK ||
			     curl_easy_setopt(st.h, CURLOPT_LOW_SPEED_TIME, stall_s) != CURLE_OK))) {
		rc = ERR_INVALID;
		httpc_detail_set(detail, "cannot configure request to %s", shorturl);
		goto out;
	}
	cc = curl_easy_perform(st.h);
	if (status != NULL && curl_easy_getinfo(st.h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK)
		*status = 0;
	if (cc == CURLE_OK || st.stopped) {
		rc = 0;
		goto out;
	}
	rc = cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL ? ERR_INVALID
									     : ERR_UNAVAILABLE;
	httpc_detail_set(detail, "watch %s failed: %s", shorturl,
		errbuf[0] ? errbuf : curl_easy_strerror(cc));
out:
	curl_slist_free_all(hl);
	curl_easy_cleanup(st.h);
	return rc;
}

void httpc_response_done(struct httpc_response *r)
{
	if (r == NULL)
		return;
	free(r->body);
	memset(r, 0, sizeof *r);
}
