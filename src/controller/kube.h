/*
 * kube.h - a small Kubernetes API client for `plinth controller`: where the
 * API server is and how to authenticate (a kubeconfig or the pod's service
 * account), one-shot JSON requests, and list-then-watch of one resource.
 *
 * It speaks HTTP only through src/net/httpc.c (never libcurl itself), never
 * follows redirects, and never holds an unbounded amount of a response.
 */
#ifndef PLINTH_CONTROLLER_KUBE_H
#define PLINTH_CONTROLLER_KUBE_H

#include <signal.h>
#include <stddef.h>

#include <jansson.h>

#include "net/httpc.h"

#define KUBE_DETAIL_LEN HTTPC_DETAIL_LEN

/* Where the API server is and who we are to it; every string is owned. */
struct kube_config {
	char *server;    /* "https://host:port", no trailing slash */
	char *token;     /* bearer token or NULL */
	char *namespace; /* the context's namespace or NULL */
	char *ca_file, *cert_file, *key_file; /* paths, or NULL */
	char *ca_pem, *cert_pem, *key_pem;    /* decoded *-data, or NULL */
	size_t ca_pem_len, cert_pem_len, key_pem_len;
	int insecure;    /* insecure-skip-tls-verify: refused, see kube_config_load_file */
};

/*
 * Reads a kubeconfig file: the current context's cluster (server,
 * certificate-authority or certificate-authority-data) and user (token,
 * tokenFile, client-certificate(-data) and client-key(-data)); relative paths
 * are taken from the file's directory.  Returns 0 and fills *out (release
 * with kube_config_done), or ERR_INVALID / ERR_NOT_FOUND / ERR_NOMEM with a
 * one-line reason in detail (KUBE_DETAIL_LEN bytes).
 */
int kube_config_load_file(const char *path, struct kube_config *out, char *detail);

/*
 * The in-cluster configuration: KUBERNETES_SERVICE_HOST/PORT, the service
 * account's token and CA under /var/run/secrets/kubernetes.io/serviceaccount
 * (dir overrides that directory, for tests; NULL = the standard one).
 * Same contract as kube_config_load_file.
 */
int kube_config_in_cluster(const char *dir, struct kube_config *out, char *detail);

/* Frees what a kube_config holds and zeroes it; safe on a zeroed struct. */
void kube_config_done(struct kube_config *c);

/*
 * One request: method path (starting with "/", query included) with an
 * optional JSON body (borrowed).  Returns 0 and sets *status and *out (the
 * parsed answer, owned by the caller; NULL if the body is not JSON) for any
 * HTTP status; ERR_UNAVAILABLE / ERR_TOO_LARGE / ERR_NOMEM with a detail.
 */
int kube_request(const struct kube_config *c, const char *method, const char *path,
	const json_t *body, long *status, json_t **out, char *detail);

/* What an informer tells its owner. */
enum kube_event {
	KUBE_EV_LIST_BEGIN, /* a full list follows (obj NULL) */
	KUBE_EV_ADDED,      /* listed or added */
	KUBE_EV_MODIFIED,
	KUBE_EV_DELETED,    /* obj is its last state */
	KUBE_EV_LIST_END,   /* the list is complete: what it did not name is gone (obj NULL) */
};

/*
 * List-then-watch of one resource with a label selector.  on_event is called
 * from the thread running kube_informer_run, obj borrowed for the call.  A
 * watch that expires (410 Gone, or an ERROR event with code 410) lists again;
 * a broken or refused one reconnects with exponential backoff and full jitter
 * (0.5 s doubling to 30 s); bookmarks only advance the resourceVersion.
 */
struct kube_informer {
	const struct kube_config *cfg;
	const char *path;           /* collection, e.g. "/apis/batch/v1/jobs" */
	const char *label_selector; /* e.g. "plinth.io/allocation-id" */
	long watch_timeout_s;       /* asked of the server per watch (timeoutSeconds) */
	void (*on_event)(void *ctx, enum kube_event ev, json_t *obj);
	void *ctx;
	volatile sig_atomic_t *stop; /* non-zero: return as soon as possible */
	void (*log)(void *ctx, const char *msg); /* one line per reconnect or relist; may be NULL */
};

/* Runs inf until *inf->stop becomes non-zero.  Returns 0, or ERR_NOMEM. */
int kube_informer_run(const struct kube_informer *inf);

#endif
