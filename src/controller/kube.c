/*
 * kube.c - the Kubernetes API client behind kube.h: configuration (libyaml
 * for kubeconfig files), requests and list-then-watch over src/net/httpc.c.
 *
 * It must never include curl (httpc.c is the one place), never trust an
 * insecure-skip-tls-verify cluster, and never keep more than KUBE_MAX_BODY
 * bytes of a list or KUBE_MAX_LINE of one watch event.
 */
#include "util/util.h"
#include "controller/kube.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "core/err.h"
#include "util/buf.h"

#define KUBE_MAX_BODY (64u << 20) /* one list page */
#define KUBE_MAX_LINE (16u << 20) /* one watch event */
#define KUBE_MAX_FILE (1u << 20)  /* a kubeconfig, token or certificate */
#define KUBE_TIMEOUT_MS 30000L
#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

static void detail_set(char *detail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void detail_set(char *detail, const char *fmt, ...)
{
	va_list ap;

	if (detail == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, KUBE_DETAIL_LEN, fmt, ap);
	va_end(ap);
}

/* Reads a whole small file into a NUL-terminated buffer. */
static int file_read(const char *path, char **out, size_t *len, char *detail)
{
	FILE *f = fopen(path, "rb");
	struct buf b = { 0 };
	char chunk[4096];
	size_t n;
	int rc = 0;

	if (f == NULL) {
		detail_set(detail, "cannot read %s: %s", path, strerror(errno));
		return ERR_NOT_FOUND;
	}
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (b.len + n > KUBE_MAX_FILE) {
			detail_set(detail, "%s is larger than %u bytes", path, KUBE_MAX_FILE);
			rc = ERR_TOO_LARGE;
			goto out;
		}
		if (!buf_add(&b, chunk, n)) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	if (ferror(f)) {
		detail_set(detail, "cannot read %s", path);
		rc = ERR_INVALID;
		goto out;
	}
	if (!buf_add(&b, "", 1)) {
		rc = ERR_NOMEM;
		goto out;
	}
	*out = b.p;
	*len = b.len - 1;
	b.p = NULL;
out:
	free(b.p);
	fclose(f);
	return rc;
}

/* Drops trailing white space (a token file ends with a newline). */
static void trim_right(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

/* --- kubeconfig ------------------------------------------------------------ */

static yaml_node_t *ymap_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *yscalar(yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* In a list of {name, <field>: {...}} (clusters, users, contexts), the named one's <field>. */
static yaml_node_t *ynamed(yaml_document_t *d, yaml_node_t *root, const char *list,
	const char *name, const char *field)
{
	yaml_node_t *seq = ymap_get(d, root, list);

	if (seq == NULL || seq->type != YAML_SEQUENCE_NODE || name == NULL)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
	     i++) {
		yaml_node_t *item = yaml_document_get_node(d, *i);
		const char *n = yscalar(ymap_get(d, item, "name"));
		if (n != NULL && strcmp(n, name) == 0)
			return ymap_get(d, item, field);
	}
	return NULL;
}

/* A copy of s, or of dir/s when s is a relative path and dir is given. */
static int path_dup(const char *dir, const char *s, char **out)
{
	if (s == NULL)
		return 0;
	if (s[0] == '/' || dir == NULL)
		*out = strdup(s);
	else if (asprintf(out, "%s/%s", dir, s) < 0)
		*out = NULL;
	return *out == NULL ? ERR_NOMEM : 0;
}

/* Decodes base64 PEM data (the *-data fields). */
static int b64_dup(const char *s, char **out, size_t *len, const char *what, char *detail)
{
	size_t n, cap;
	unsigned char *p;
	int m;

	if (s == NULL)
		return 0;
	n = strlen(s);
	if (n == 0 || n % 4 != 0 || n > KUBE_MAX_FILE) {
		detail_set(detail, "%s is not base64", what);
		return ERR_INVALID;
	}
	cap = n / 4 * 3 + 1;
	p = malloc(cap);
	if (p == NULL)
		return ERR_NOMEM;
	m = EVP_DecodeBlock(p, (const unsigned char *)s, (int)n);
	if (m < 0) {
		free(p);
		detail_set(detail, "%s is not base64", what);
		return ERR_INVALID;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes. */
	if (n >= 1 && s[n - 1] == '=')
		m--;
	if (n >= 2 && s[n - 2] == '=')
		m--;
	p[m] = '\0';
	*out = (char *)p;
	*len = (size_t)m;
	return 0;
}

int kube_config_load_file(const char *path, struct kube_config *out, char *detail)
{
	struct kube_config c = { 0 };
	yaml_parser_t parser;
	yaml_document_t doc;
	int parser_ok = 0, doc_ok = 0, rc;
	char *text = NULL, *dircopy = NULL;
	const char *dir, *ctx_name, *cluster_name, *user_name;
	yaml_node_t *root, *ctx, *cluster, *user;
	size_t len = 0;
	FILE *f = NULL;

	rc = file_read(path, &text, &len, detail);
	if (rc != 0)
		goto out;
	dircopy = strdup(path);
	if (dircopy == NULL) {
		rc = ERR_NOMEM;
		goto out;
	}
	dir = dirname(dircopy);
	if (!yaml_parser_initialize(&parser)) {
		rc = ERR_NOMEM;
		goto out;
	}
	parser_ok = 1;
	f = fmemopen(text, len, "rb");
	if (f == NULL) {
		rc = ERR_NOMEM;
		goto out;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		detail_set(detail, "%s: not YAML: %s (line %zu)", path,
			parser.problem ? parser.problem : "parse error", parser.problem_mark.line + 1);
		rc = ERR_INVALID;
		goto out;
	}
	doc_ok = 1;
	root = yaml_document_get_root_node(&doc);
	rc = ERR_INVALID;
	ctx_name = yscalar(ymap_get(&doc, root, "current-context"));
	if (ctx_name == NULL) {
		detail_set(detail, "%s: no current-context", path);
		goto out;
	}
	ctx = ynamed(&doc, root, "contexts", ctx_name, "context");
	cluster_name = yscalar(ymap_get(&doc, ctx, "cluster"));
	user_name = yscalar(ymap_get(&doc, ctx, "user"));
	cluster = ynamed(&doc, root, "clusters", cluster_name, "cluster");
	user = ynamed(&doc, root, "users", user_name, "user");
	if (ctx == NULL || cluster == NULL) {
		detail_set(detail, "%s: context '%s' or its cluster is not defined", path, ctx_name);
		goto out;
	}
	if (yscalar(ymap_get(&doc, cluster, "server")) == NULL) {
		detail_set(detail, "%s: cluster '%s' has no server", path,
			cluster_name ? cluster_name : "");
		goto out;
	}
	{
		const char *v = yscalar(ymap_get(&doc, cluster, "insecure-skip-tls-verify"));
		if (v != NULL && strcmp(v, "true") == 0) {
			detail_set(detail, "%s: insecure-skip-tls-verify is not supported; give the "
					   "cluster's certificate-authority", path);
			goto out;
		}
	}
	rc = ERR_NOMEM;
	c.server = strdup(yscalar(ymap_get(&doc, cluster, "server")));
	if (c.server == NULL)
		goto out;
	trim_right(c.server);
	if (c.server[0] != '\0' && c.server[strlen(c.server) - 1] == '/')
		c.server[strlen(c.server) - 1] = '\0';
	if (yscalar(ymap_get(&doc, ctx, "namespace")) != NULL &&
	    (c.namespace = strdup(yscalar(ymap_get(&doc, ctx, "namespace")))) == NULL)
		goto out;
	if ((rc = path_dup(dir, yscalar(ymap_get(&doc, cluster, "certificate-authority")),
		     &c.ca_file)) != 0 ||
	    (rc = b64_dup(yscalar(ymap_get(&doc, cluster, "certificate-authority-data")),
		     &c.ca_pem, &c.ca_pem_len, "certificate-authority-data", detail)) != 0 ||
	    (rc = path_dup(dir, yscalar(ymap_get(&doc, user, "client-certificate")),
		     &c.cert_file)) != 0 ||
	    (rc = b64_dup(yscalar(ymap_get(&doc, user, "client-certificate-data")),
		     &c.cert_pem, &c.cert_pem_len, "client-certificate-data", detail)) != 0 ||
	    (rc = path_dup(dir, yscalar(ymap_get(&doc, user, "client-key")), &c.key_file)) != 0 ||
	    (rc = b64_dup(yscalar(ymap_get(&doc, user, "client-key-data")), &c.key_pem,
		     &c.key_pem_len, "client-key-data", detail)) != 0)
		goto out;
	if (yscalar(ymap_get(&doc, user, "token")) != NULL) {
		c.token = strdup(yscalar(ymap_get(&doc, user, "token")));
		if (c.token == NULL) {
			rc = ERR_NOMEM;
			goto out;
		}
	} else if (yscalar(ymap_get(&doc, user, "tokenFile")) != NULL) {
		char *tf = NULL;
		size_t tl;

		rc = path_dup(dir, yscalar(ymap_get(&doc, user, "tokenFile")), &tf);
		if (rc == 0)
			rc = file_read(tf, &c.token, &tl, detail);
		free(tf);
		if (rc != 0)
			goto out;
		trim_right(c.token);
	}
	rc = 0;
	*out = c;
	memset(&c, 0, sizeof c);
out:
	kube_config_done(&c);
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (f != NULL)
		fclose(f);
	free(dircopy);
	free(text);
	return rc;
}

int kube_config_in_cluster(const char *dir, struct kube_config *out, char *detail)
{
	struct kube_config c = { 0 };
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *path = NULL;
	size_t len;
	int rc = ERR_INVALID;

	if (dir == NULL)
		dir = KUBE_SA_DIR;
	if (host == NULL || host[0] == '\0' || port == NULL || port[0] == '\0') {
		detail_set(detail, "not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set "
				   "(give --kubeconfig)");
		return ERR_NOT_FOUND;
	}
	/* An IPv6 service address needs brackets in a URL. */
	if (asprintf(&c.server, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
		     port) < 0) {
		c.server = NULL;
		rc = ERR_NOMEM;
		goto out;
	}
	if (asprintf(&path, "%s/token", dir) < 0) {
		path = NULL;
		rc = ERR_NOMEM;
		goto out;
	}
	rc = file_read(path, &c.token, &len, detail);
	if (rc != 0)
		goto out;
	trim_right(c.token);
	if (asprintf(&c.ca_file, "%s/ca.crt", dir) < 0) {
		c.ca_file = NULL;
		rc = ERR_NOMEM;
		goto out;
	}
	if (access(c.ca_file, R_OK) != 0) {
		detail_set(detail, "cannot read %s: %s", c.ca_file, strerror(errno));
		rc = ERR_NOT_FOUND;
		goto out;
	}
	*out = c;
	memset(&c, 0, sizeof c);
	rc = 0;
out:
	free(path);
	kube_config_done(&c);
	return rc;
}

void kube_config_done(struct kube_config *c)
{
	if (c == NULL)
		return;
	free(c->server);
	free(c->token);
	free(c->namespace);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->ca_pem);
	free(c->cert_pem);
	free(c->key_pem);
	memset(c, 0, sizeof *c);
}

/* --- requests -------------------------------------------------------------- */

static void tls_of(const struct kube_config *c, struct httpc_tls *t)
{
	*t = (struct httpc_tls){
		.ca_file = c->ca_file, .ca_pem = c->ca_pem, .ca_pem_len = c->ca_pem_len,
		.cert_file = c->cert_file, .cert_pem = c->cert_pem, .cert_pem_len = c->cert_pem_len,
		.key_file = c->key_file, .key_pem = c->key_pem, .key_pem_len = c->key_pem_len,
	};
}

/* "Authorization: Bearer ..." (or NULL without a token); the caller frees it. */
static int auth_header(const struct kube_config *c, char **out)
{
	*out = NULL;
	if (c->token == NULL)
		return 0;
	if (asprintf(out, "Authorization: Bearer %s", c->token) < 0) {
		*out = NULL;
		return ERR_NOMEM;
	}
	return 0;
}

int kube_request(const struct kube_config *c, const char *method, const char *path,
	const json_t *body, long *status, json_t **out, char *detail)
{
	struct httpc_response r = { 0 };
	struct httpc_tls tls;
	char *auth = NULL, *url = NULL, *text = NULL;
	const char *headers[4] = { "Accept: application/json", NULL, NULL, NULL };
	int rc, nh = 1;

	tls_of(c, &tls);
	if (auth_header(c, &auth) != 0 || asprintf(&url, "%s%s", c->server, path) < 0) {
		url = NULL;
		rc = ERR_NOMEM;
		goto out;
	}
	if (auth != NULL)
		headers[nh++] = auth;
	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT);
		if (text == NULL) {
			rc = ERR_NOMEM;
			goto out;
		}
		headers[nh++] = "Content-Type: application/json";
	}
	rc = httpc_request_tls(method, url, headers, text, text ? strlen(text) : 0, KUBE_TIMEOUT_MS,
		KUBE_MAX_BODY, &tls, &r, detail);
	if (rc != 0)
		goto out;
	*status = r.status;
	*out = json_loadb(r.body, r.len, 0, NULL);
out:
	httpc_response_done(&r);
	free(text);
	free(url);
	free(auth);
	return rc;
}

/* --- list and watch -------------------------------------------------------- */

/* Percent-encodes s for a query value. */
static int query_escape(const char *s, char *out, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t j = 0;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			if (j + 1 >= n)
				return ERR_TOO_LARGE;
			out[j++] = (char)ch;
		} else {
			if (j + 3 >= n)
				return ERR_TOO_LARGE;
			out[j++] = '%';
			out[j++] = hex[ch >> 4];
			out[j++] = hex[ch & 15];
		}
	}
	out[j] = '\0';
	return 0;
}

/* Sleeps ms milliseconds in small steps, returning early when asked to stop. */
static void sleep_ms(const struct kube_informer *inf, long ms)
{
	while (ms > 0 && !*inf->stop) {
		long step = ms < 100 ? ms : 100;
		struct timespec ts = { 0, step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void inf_log(const struct kube_informer *inf, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void inf_log(const struct kube_informer *inf, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (inf->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	inf->log(inf->ctx, line);
}

/* One full list (all pages); sets rv to the list's resourceVersion. */
static int informer_list(const struct kube_informer *inf, const char *sel, char *rv, size_t rvlen)
{
	char *cont = NULL, path[4096], detail[KUBE_DETAIL_LEN] = "";
	json_t *res = NULL;
	long status = 0;
	int rc, began = 0;

	for (;;) {
		char cesc[2048] = "";
		const char *c, *v;
		json_t *items;
		size_t i;
		int n;

		if (cont != NULL && query_escape(cont, cesc, sizeof cesc) != 0) {
			rc = ERR_TOO_LARGE;
			goto out;
		}
		n = snprintf(path, sizeof path, "%s?labelSelector=%s&limit=500%s%s", inf->path, sel,
			cont ? "&continue=" : "", cesc);
		if (n < 0 || (size_t)n >= sizeof path) {
			rc = ERR_TOO_LARGE;
			goto out;
		}
		json_decref(res);
		res = NULL;
		rc = kube_request(inf->cfg, "GET", path, NULL, &status, &res, detail);
		if (rc != 0) {
			inf_log(inf, "list %s: %s", inf->path, detail);
			goto out;
		}
		if (status != 200 || !json_is_object(res)) {
			const char *msg = json_string_value(json_object_get(res, "message"));
			inf_log(inf, "list %s: HTTP %ld %s", inf->path, status, msg ? msg : "");
			rc = status == 410 ? ERR_CONFLICT : ERR_UNAVAILABLE;
			goto out;
		}
		if (!began) {
			inf->on_event(inf->ctx, KUBE_EV_LIST_BEGIN, NULL);
			began = 1;
		}
		items = json_object_get(res, "items");
		for (i = 0; i < json_array_size(items); i++)
			inf->on_event(inf->ctx, KUBE_EV_ADDED, json_array_get(items, i));
		v = json_string_value(json_object_get(json_object_get(res, "metadata"),
			"resourceVersion"));
		if (util_fmt(rv, rvlen, "%s", v ? v : "") != 0) {
			inf_log(inf, "list %s: resourceVersion longer than %zu bytes", inf->path, rvlen);
			rc = ERR_TOO_LARGE;
			goto out;
		}
		c = json_string_value(json_object_get(json_object_get(res, "metadata"), "continue"));
		free(cont);
		cont = NULL;
		if (c == NULL || c[0] == '\0')
			break;
		cont = strdup(c);
		if (cont == NULL) {
			rc = ERR_NOMEM;
			goto out;
		}
	}
	inf->on_event(inf->ctx, KUBE_EV_LIST_END, NULL);
	rc = 0;
out:
	free(cont);
	json_decref(res);
	return rc;
}

/* The state of one watch stream: a partial line and what it learned. */
struct watch_state {
	const struct kube_informer *inf;
	struct buf line;
	char *rv;
	size_t rvlen;
	long status;
	int gone;      /* 410: list again */
	int events;    /* events delivered (a healthy watch resets the backoff) */
	int bad;       /* a line was not an event, or too long */
	struct buf errbody; /* a non-200 answer's body, capped */
};

static void watch_line(struct watch_state *w, const char *s, size_t n)
{
	const struct kube_informer *inf = w->inf;
	json_t *ev = json_loadb(s, n, 0, NULL);
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"),
		"resourceVersion"));

	if (type == NULL || !json_is_object(obj)) {
		w->bad = 1;
	} else if (strcmp(type, "ERROR") == 0) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));
		inf_log(inf, "watch %s: ERROR %lld %s", inf->path, (long long)code, msg ? msg : "");
		if (code == 410)
			w->gone = 1;
		else
			w->bad = 1;
	} else {
		if (rv != NULL && util_fmt(w->rv, w->rvlen, "%s", rv) != 0)
			w->bad = 1; /* a version we cannot hold: list again */
		if (strcmp(type, "ADDED") == 0)
			inf->on_event(inf->ctx, KUBE_EV_ADDED, obj);
		else if (strcmp(type, "MODIFIED") == 0)
			inf->on_event(inf->ctx, KUBE_EV_MODIFIED, obj);
		else if (strcmp(type, "DELETED") == 0)
			inf->on_event(inf->ctx, KUBE_EV_DELETED, obj);
		/* BOOKMARK: only the resourceVersion moves. */
		w->events++;
	}
	json_decref(ev);
}

static int watch_data(void *ctx, long status, const char *data, size_t len)
{
	struct watch_state *w = ctx;
	const char *nl;

	w->status = status;
	if (status != 200) {
		/* Keep the start of the answer for the log (a Status object). */
		if (w->errbody.len < 4096 && !buf_add(&w->errbody, data, len < 4096 ? len : 4096))
			return 1;
		return 0;
	}
	/* One event per line; a line may span chunks. */
	while ((nl = memchr(data, '\n', len)) != NULL) {
		size_t n = (size_t)(nl - data);

		if (w->line.len > 0) {
			if (w->line.len + n > KUBE_MAX_LINE || !buf_add(&w->line, data, n)) {
				w->bad = 1;
				return 1;
			}
			watch_line(w, w->line.p, w->line.len);
			w->line.len = 0;
		} else if (n > 0) {
			watch_line(w, data, n);
		}
		data += n + 1;
		len -= n + 1;
		if (w->gone || w->bad)
			return 1;
	}
	if (len > 0 && (w->line.len + len > KUBE_MAX_LINE || !buf_add(&w->line, data, len))) {
		w->bad = 1;
		return 1;
	}
	return 0;
}

static int watch_should_stop(void *ctx)
{
	struct watch_state *w = ctx;
	return *w->inf->stop != 0;
}

/* Full jitter: a random wait in [0, cap] (random() is thread-safe in glibc). */
static long jitter_ms(long cap)
{
	return cap > 0 ? (long)((unsigned long)random() % (unsigned long)(cap + 1)) : 0;
}

int kube_informer_run(const struct kube_informer *inf)
{
	char sel[512], rv[128] = "", path[4096];
	char *auth = NULL, *url = NULL;
	struct httpc_tls tls;
	long backoff = 500;
	int rc = 0, need_list = 1;

	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	if (query_escape(inf->label_selector, sel, sizeof sel) != 0)
		return ERR_INVALID;
	tls_of(inf->cfg, &tls);
	if (auth_header(inf->cfg, &auth) != 0)
		return ERR_NOMEM;

	while (!*inf->stop) {
		struct watch_state w = { .inf = inf, .rv = rv, .rvlen = sizeof rv };
		const char *headers[3] = { "Accept: application/json", auth, NULL };
		char detail[KUBE_DETAIL_LEN] = "";
		long status = 0;
		int n;

		if (need_list) {
			rc = informer_list(inf, sel, rv, sizeof rv);
			if (rc == ERR_NOMEM)
				break;
			if (rc != 0) {
				sleep_ms(inf, jitter_ms(backoff));
				backoff = backoff < 15000 ? backoff * 2 : 30000;
				continue;
			}
			need_list = 0;
		}
		n = snprintf(path, sizeof path,
			"%s%s?watch=1&allowWatchBookmarks=true&labelSelector=%s&resourceVersion=%s"
			"&timeoutSeconds=%ld",
			inf->cfg->server, inf->path, sel, rv,
			inf->watch_timeout_s > 0 ? inf->watch_timeout_s : 300L);
		if (n < 0 || (size_t)n >= sizeof path) {
			rc = ERR_INVALID;
			break;
		}
		free(url);
		url = strdup(path);
		if (url == NULL) {
			rc = ERR_NOMEM;
			break;
		}
		rc = httpc_stream(url, headers, &tls, 10000L, 0L, watch_data, watch_should_stop, &w,
			&status, detail);
		if (rc == 0 && status == 410)
			w.gone = 1;
		if (w.gone) {
			inf_log(inf, "watch %s: resourceVersion %s expired (410 Gone): listing again",
				inf->path, rv);
			need_list = 1;
		} else if (rc != 0 || status != 200 || w.bad) {
			if (rc != 0)
				inf_log(inf, "watch %s: %s", inf->path, detail);
			else if (status != 200)
				inf_log(inf, "watch %s: HTTP %ld %.*s", inf->path, status,
					(int)(w.errbody.len < 300 ? w.errbody.len : 300),
					w.errbody.p ? w.errbody.p : "");
			sleep_ms(inf, jitter_ms(backoff));
			backoff = backoff < 15000 ? backoff * 2 : 30000;
			/* A refused watch (e.g. 500 after an etcd compaction) lists again. */
			if (status >= 400 && status != 401 && status != 403)
				need_list = 1;
		} else if (w.events > 0) {
			backoff = 500;
		}
		free(w.line.p);
		free(w.errbody.p);
		rc = 0;
	}
	free(url);
	free(auth);
	return rc == ERR_NOMEM ? rc : 0;
}
