/*
 * lease.c - leader election with a coordination.k8s.io/v1 Lease (lease.h).
 *
 * Every write carries the resourceVersion it read, so two replicas can never
 * both win the same round: the API server answers 409 to the slower one.  It
 * must never trust another machine's clock (expiry is judged on our own
 * monotonic clock) and never block longer than one request.
 */
#include "controller/lease.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/err.h"
#include "util/util.h"

/* A MicroTime, "2026-12-06T07:00:00.123456Z", from the wall clock. */
static void micro_now(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || gmtime_r(&ts.tv_sec, &tm) == NULL) {
		snprintf(buf, n, "1970-01-01T00:00:00.000000Z");
		return;
	}
	if (util_fmt(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     (int)(ts.tv_nsec / 1000)) != 0)
		snprintf(buf, n, "1970-01-01T00:00:00.000000Z");
}

int kube_lease_init(struct kube_lease *l, const struct kube_config *cfg, const char *ns,
	const char *name, const char *identity, long duration_s)
{
	int n1, n2, n3, n4;

	memset(l, 0, sizeof *l);
	l->cfg = cfg;
	l->duration_s = duration_s;
	n1 = snprintf(l->collection, sizeof l->collection,
		"/apis/coordination.k8s.io/v1/namespaces/%s/leases", ns);
	n2 = snprintf(l->path, sizeof l->path, "%s/%s", l->collection, name);
	n3 = snprintf(l->name, sizeof l->name, "%s", name);
	n4 = snprintf(l->identity, sizeof l->identity, "%s", identity);
	if (n1 < 0 || (size_t)n1 >= sizeof l->collection || n2 < 0 || (size_t)n2 >= sizeof l->path ||
	    n3 < 0 || (size_t)n3 >= sizeof l->name || n4 < 0 || (size_t)n4 >= sizeof l->identity)
		return ERR_INVALID;
	return 0;
}

/* Writes spec with us as the holder: POST (create) when lease is NULL, else
 * PUT over the version read.  Returns the HTTP status, or -1. */
static long lease_write(struct kube_lease *l, const json_t *lease, bool takeover, char *detail)
{
	char now[40];
	json_t *body = NULL, *res = NULL, *spec;
	long status = -1;
	json_int_t transitions = 0;

	micro_now(now, sizeof now);
	if (lease != NULL) {
		body = json_deep_copy(lease);
		transitions = json_integer_value(json_object_get(json_object_get(lease, "spec"),
			"leaseTransitions"));
	} else {
		body = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "coordination.k8s.io/v1", "kind",
			"Lease", "metadata", "name", l->name);
	}
	if (body == NULL)
		return -1;
	spec = json_object_get(body, "spec");
	if (spec == NULL) {
		spec = json_object();
		if (spec == NULL || json_object_set_new(body, "spec", spec) != 0)
			goto out;
	}
	if (json_object_set_new(spec, "holderIdentity", json_string(l->identity)) != 0 ||
	    json_object_set_new(spec, "leaseDurationSeconds", json_integer(l->duration_s)) != 0 ||
	    json_object_set_new(spec, "renewTime", json_string(now)) != 0)
		goto out;
	if ((lease == NULL || takeover) &&
	    (json_object_set_new(spec, "acquireTime", json_string(now)) != 0 ||
	     json_object_set_new(spec, "leaseTransitions",
		     json_integer(lease == NULL ? 0 : transitions + 1)) != 0))
		goto out;
	if (kube_request(l->cfg, lease ? "PUT" : "POST", lease ? l->path : l->collection, body,
		    &status, &res, detail) != 0) {
		status = -1;
		goto out;
	}
	if (status == 200 || status == 201) {
		const char *rv = json_string_value(json_object_get(json_object_get(res, "metadata"),
			"resourceVersion"));
		if (util_fmt(l->seen_rv, sizeof l->seen_rv, "%s", rv ? rv : "") != 0) {
			/* An opaque version we cannot hold: read it again next round. */
			l->seen_rv[0] = '\0';
			snprintf(detail, KUBE_DETAIL_LEN, "lease %.200s: resourceVersion too long",
				 l->path);
			status = -1;
		}
	} else {
		const char *msg = json_string_value(json_object_get(res, "message"));
		snprintf(detail, KUBE_DETAIL_LEN, "lease %.200s: HTTP %ld %.200s", l->path, status,
			msg ? msg : "");
	}
out:
	json_decref(res);
	json_decref(body);
	return status;
}

bool kube_lease_round(struct kube_lease *l, int64_t now_us, char *detail)
{
	json_t *lease = NULL;
	long status = 0;
	const char *holder, *rv;
	int64_t duration_us = (int64_t)l->duration_s * 1000000;
	bool won = false;

	detail[0] = '\0';
	if (kube_request(l->cfg, "GET", l->path, NULL, &status, &lease, detail) != 0)
		goto keep;
	if (status == 404) {
		long st = lease_write(l, NULL, true, detail);
		won = st == 201;
		goto decided;
	}
	if (status != 200 || !json_is_object(lease)) {
		const char *msg = json_string_value(json_object_get(lease, "message"));
		snprintf(detail, KUBE_DETAIL_LEN, "lease %.200s: HTTP %ld %.200s", l->path, status,
			msg ? msg : "");
		goto keep;
	}
	holder = json_string_value(json_object_get(json_object_get(lease, "spec"), "holderIdentity"));
	rv = json_string_value(json_object_get(json_object_get(lease, "metadata"), "resourceVersion"));
	if (rv == NULL)
		rv = "";
	if (strcmp(rv, l->seen_rv) != 0) {
		/* It changed since we last looked: its holder is alive. */
		if (util_fmt(l->seen_rv, sizeof l->seen_rv, "%s", rv) != 0) {
			snprintf(detail, KUBE_DETAIL_LEN, "lease %.200s: resourceVersion too long",
				 l->path);
			goto keep;
		}
		l->seen_at_us = now_us;
	}
	if (holder != NULL && strcmp(holder, l->identity) == 0) {
		won = lease_write(l, lease, false, detail) == 200;
		if (!won && l->leader)
			goto keep; /* a failed renew: hold on until the renew deadline */
	} else if (holder == NULL || holder[0] == '\0' || now_us - l->seen_at_us >= duration_us) {
		/* Released, or nobody renewed it for a whole duration as we saw it. */
		won = lease_write(l, lease, true, detail) == 200;
	}
decided:
	if (won)
		l->renewed_at_us = now_us;
	l->leader = won;
	json_decref(lease);
	return l->leader;
keep:
	if (l->leader && now_us - l->renewed_at_us >= duration_us * 2 / 3)
		l->leader = false;
	json_decref(lease);
	return l->leader;
}

void kube_lease_release(struct kube_lease *l)
{
	json_t *lease = NULL, *res = NULL;
	char detail[KUBE_DETAIL_LEN];
	long status = 0;

	if (!l->leader)
		return;
	l->leader = false;
	if (kube_request(l->cfg, "GET", l->path, NULL, &status, &lease, detail) != 0 || status != 200)
		goto out;
	{
		json_t *spec = json_object_get(lease, "spec");
		const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
		if (holder == NULL || strcmp(holder, l->identity) != 0)
			goto out;
		if (json_object_set_new(spec, "holderIdentity", json_string("")) != 0 ||
		    json_object_set_new(spec, "leaseDurationSeconds", json_integer(1)) != 0)
			goto out;
		(void)kube_request(l->cfg, "PUT", l->path, lease, &status, &res, detail);
	}
out:
	json_decref(res);
	json_decref(lease);
}
