/*
 * itest.h - the integration-test harness: runs the REAL plinth daemon on a
 * random loopback port with a temporary data directory and talks HTTP to it.
 *
 * The harness must never touch anything outside its own temporary directory,
 * never talk to anything but 127.0.0.1, and never loop without a bound: every
 * wait has a deadline so a hung daemon fails the test instead of hanging it.
 *
 * Memory: responses and strings obtained through the itest_daemon helpers are
 * owned by the daemon object and freed by itest_daemon_free(), so test bodies
 * stay short.  Threads must not use those helpers; they use itest_http() with
 * their own CURL handle and struct itest_resp, and free it themselves.
 */
#ifndef PLINTH_ITEST_H
#define PLINTH_ITEST_H

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#define ITEST_PATH_LEN 512
#define ITEST_MAX_ARGS 24
#define ITEST_READY_TIMEOUT_MS 20000
#define ITEST_STOP_TIMEOUT_MS 20000

/* One HTTP exchange's result.  All pointers owned by the struct. */
struct itest_resp {
	long status;       /* 0 when no HTTP response arrived */
	CURLcode curl_rc;  /* CURLE_OK when a response arrived */
	char *body;        /* NUL-terminated body ("" when empty) */
	size_t body_len;
	json_t *json;      /* parsed body, NULL when not JSON */
	char content_type[128]; /* "" when absent */
	char *headers;     /* raw header block of the final response */
	int64_t connected_ms; /* itest_now_ms() when the connection was ready, 0 if never */
};

struct itest_garbage;

/* A daemon under test, with its temporary directory. */
struct itest_daemon {
	pid_t pid;                 /* 0 when not running */
	char root[ITEST_PATH_LEN]; /* mkdtemp directory, removed at free */
	char data[ITEST_PATH_LEN]; /* --data */
	char ready[ITEST_PATH_LEN];/* --ready-file */
	char log[ITEST_PATH_LEN];  /* daemon stdout+stderr */
	char base_url[128];        /* "http://127.0.0.1:PORT" */
	char admin[96];            /* admin token secret (PLINTH_ADMIN_TOKEN) */
	char *args[ITEST_MAX_ARGS]; /* extra serve args, owned copies, NULL-terminated */
	CURL *curl;                /* main-thread handle, reused for keep-alive */
	struct itest_garbage *garbage;
};

/* Must be called once before any thread starts (wraps curl_global_init). */
void itest_global_init(void);

/*
 * Creates the temporary directory and starts `plinth serve` with
 * PLINTH_ADMIN_TOKEN set to a fresh random secret, plus extra_args
 * (NULL-terminated, may be NULL).  PLINTH_DATABASE_URL passes through from the
 * environment.  Waits for the ready file (ITEST_READY_TIMEOUT_MS).  Returns a
 * new daemon owned by the caller (free with itest_daemon_free) or NULL, after
 * printing why and the daemon's log.
 */
struct itest_daemon *itest_daemon_new(const char *const *extra_args);

/* Starts the daemon again on the same data directory (after stop or kill).
 * Returns 0 or -1. */
int itest_daemon_restart(struct itest_daemon *d);

/* SIGTERM, then waits (bounded).  Returns the exit status (0..255), 128+sig
 * if killed by a signal, or -1 on timeout (then the daemon is SIGKILLed). */
int itest_daemon_stop(struct itest_daemon *d);

/* SIGKILL and reap.  Returns 0 or -1. */
int itest_daemon_kill(struct itest_daemon *d);

/* Kills the daemon if still running, frees every response and string it
 * owns, removes the temporary directory (kept if ITEST_KEEP is set). */
void itest_daemon_free(struct itest_daemon *d);

/* cmocka setup/teardown: a fresh daemon per test in *state; teardown stops
 * it with SIGTERM and fails the test unless it exits 0 (its log is dumped). */
int itest_setup_daemon(void **state);
int itest_teardown_daemon(void **state);

/* Prints the last `max` bytes of the daemon's log to stderr. */
void itest_daemon_dump_log(const struct itest_daemon *d, size_t max);

/*
 * One HTTP request.  h: the caller's handle (reset here).  token: bearer or
 * NULL.  body: NULL for none; with a body, "Content-Type: application/json"
 * is sent unless extra_headers (NULL-terminated "Name: value" strings) has a
 * Content-Type.  Fills *out (caller frees with itest_resp_clear).  Returns 0
 * when an HTTP response arrived, -1 otherwise (out->curl_rc says why).
 */
int itest_http(CURL *h, const char *base_url, const char *method, const char *path,
	       const char *token, const char *body, size_t body_len,
	       const char *const *extra_headers, struct itest_resp *out);
void itest_resp_clear(struct itest_resp *r);

/* itest_http with flags: ITEST_FRESH opens a new connection and closes it after. */
#define ITEST_FRESH 1u
int itest_http_ex(CURL *h, const char *base_url, const char *method, const char *path,
		  const char *token, const char *body, size_t body_len,
		  const char *const *extra_headers, unsigned flags, struct itest_resp *out);

/* Finds a response header (case-insensitive name); copies its value. 0 or -1. */
int itest_resp_header(const struct itest_resp *r, const char *name, char *buf, size_t len);

/* Main-thread helpers: the response is owned by d.  Never NULL. */
struct itest_resp *itest_req(struct itest_daemon *d, const char *method, const char *path,
			     const char *token, const char *body);
struct itest_resp *itest_req_h(struct itest_daemon *d, const char *method, const char *path,
			       const char *token, const char *body,
			       const char *const *extra_headers);

/* printf into a string owned by d. */
char *itest_strf(struct itest_daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Registers a malloc'd pointer to be freed with d. Returns p. */
void *itest_keep(struct itest_daemon *d, void *p);

/* JSON access by dotted path ("budget.amount").  NULL when absent. */
json_t *itest_jget(json_t *root, const char *path);
/* The string at path or NULL. */
const char *itest_jstr(json_t *root, const char *path);
/* The integer at path, or INT64_MIN when absent / not an integer. */
int64_t itest_jint(json_t *root, const char *path);
/* Money string at path parsed to micros, or INT64_MIN. */
int64_t itest_jmoney(json_t *root, const char *path);

/* Parses a non-negative decimal with <= 6 decimals to micros. 0 or -1. */
int itest_money_parse(const char *s, int64_t *out);

/* Parses "YYYY-MM-DDTHH:MM:SSZ" to epoch seconds, or -1. */
int64_t itest_time_parse(const char *s);
/* Formats epoch seconds as RFC 3339 UTC into buf (>= 21 bytes). */
void itest_time_format(int64_t t, char *buf);

/* Milliseconds on the monotonic clock. */
int64_t itest_now_ms(void);
void itest_sleep_ms(int ms);

/* Does r carry a problem of this name (type ends in "/name"), the problem
 * content type and a matching "status" member? */
int itest_is_problem(const struct itest_resp *r, long status, const char *name);
/* Does errors[] name a field containing `field`? */
int itest_problem_names_field(const struct itest_resp *r, const char *field);

/* Fails the current cmocka test when r's status differs, printing the body. */
#define ITEST_STATUS(r, st)                                                              \
	do {                                                                             \
		const struct itest_resp *r_ = (r);                                       \
		if (r_->status != (long)(st)) {                                          \
			fprintf(stderr, "%s:%d: expected HTTP %ld, got %ld (curl %d): %s\n", \
				__FILE__, __LINE__, (long)(st), r_->status, (int)r_->curl_rc, \
				r_->body ? r_->body : "");                               \
			fail();                                                          \
		}                                                                        \
	} while (0)

/* Fails unless r is the named problem with that status. */
#define ITEST_PROBLEM(r, st, name)                                                       \
	do {                                                                             \
		const struct itest_resp *r_ = (r);                                       \
		if (!itest_is_problem(r_, (st), (name))) {                               \
			fprintf(stderr,                                                  \
				"%s:%d: expected problem %ld %s, got HTTP %ld [%s]: %s\n",     \
				__FILE__, __LINE__, (long)(st), (name), r_->status,       \
				r_->content_type, r_->body ? r_->body : "");              \
			fail();                                                          \
		}                                                                        \
	} while (0)

/* String equality that reports (and survives) NULL. */
#define ITEST_STREQ(a, b)                                                                \
	do {                                                                             \
		const char *a_ = (a), *b_ = (b);                                         \
		if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                   \
			fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__,    \
				a_ ? a_ : "(null)", b_ ? b_ : "(null)");                  \
			fail();                                                          \
		}                                                                        \
	} while (0)

/* Compares a money string at a JSON path with an exact expected text. */
#define ITEST_MONEY(root, path, want)                                                    \
	do {                                                                             \
		const char *got_ = itest_jstr((root), (path));                           \
		if (got_ == NULL || strcmp(got_, (want)) != 0) {                         \
			fprintf(stderr, "%s:%d: %s: expected \"%s\", got \"%s\"\n",      \
				__FILE__, __LINE__, (path), (want), got_ ? got_ : "(null)"); \
			fail();                                                          \
		}                                                                        \
	} while (0)

/* Common fixtures (assert on failure; main thread only). */
void itest_put_gpu(struct itest_daemon *d, const char *id, const char *price, long capacity);
void itest_put_team(struct itest_daemon *d, const char *id, const char *amount);
/* Creates a token; returns its secret (owned by d) and sets *id_out (owned by d) if given. */
const char *itest_make_token(struct itest_daemon *d, const char *role, const char *teams_json,
			     const char **id_out);
/* POSTs an allocation and returns the response (any status). */
struct itest_resp *itest_allocate(struct itest_daemon *d, const char *token, const char *team,
				  const char *project, const char *gpu, long count,
				  const char *hours);

#endif
