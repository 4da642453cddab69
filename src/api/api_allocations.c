/*
 * api_allocations.c - allocations: the approve-or-refuse decision and the
 * lifecycle (start, complete, cancel).
 *
 * The whole request is validated before the store is asked for anything
 * that changes state; the decision itself (check and reserve) happens in one
 * store transaction.  Members reach only their teams' allocations: another
 * team's allocation is 404, as if it did not exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/admission_cache.h"
#include "api/api.h"
#include "api/query.h"
#include "core/cost.h"
#include "core/err.h"
#include "core/money.h"
#include "core/timeutil.h"
#include "http/jsonv.h"
#include "integrations/integrations.h"
#include "integrations/jobclean.h"
#include "util/metrics.h"
#include "util/util.h"

#define ALLOC_MAX_LABELS 32
#define ALLOC_MAX_PURPOSE 1000

static const struct jv_field alloc_fields[] = {
	{"team", JV_STRING, true, 63},
	{"project", JV_STRING, true, 63},
	{"gpu_type", JV_STRING, true, 63},
	{"gpu_count", JV_INTEGER, true, 0},
	{"max_runtime_hours", JV_NUMBER, true, 0},
	{"purpose", JV_STRING, false, ALLOC_MAX_PURPOSE},
	{"labels", JV_OBJECT, false, 0},
	{NULL, 0, false, 0},
};

static const struct jv_field quote_fields[] = {
	{"team", JV_STRING, true, 63},
	{"project", JV_STRING, false, 63},
	{"gpu_type", JV_STRING, true, 63},
	{"gpu_count", JV_INTEGER, true, 0},
	{"max_runtime_hours", JV_NUMBER, true, 0},
	{NULL, 0, false, 0},
};

/*
 * Labels end up on Kubernetes objects, so they follow Kubernetes label
 * syntax: a name is 1..63 of [A-Za-z0-9-_.] starting and ending with an
 * alphanumeric; a key is a name with an optional DNS-subdomain prefix
 * ("example.com/name"), 63 bytes at most in all; a value is "" or a name.
 * No character needs escaping in JSON, so the stored text of the largest
 * set that validation accepts has a known size, and it fits the record.
 */
#define ALLOC_LABEL_MAX 63
_Static_assert(ALLOC_MAX_LABELS * (2 * ALLOC_LABEL_MAX + 5) + 2 < STORE_LABELS_LEN,
	       "the largest valid label set must fit labels_json");

static bool label_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A Kubernetes label name (or value when n > 0) of n bytes. */
static bool label_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ALLOC_LABEL_MAX || !label_alnum(s[0]) || !label_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!label_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

/* A key: [prefix/]name, the prefix a lower-case DNS subdomain. */
static bool label_key_ok(const char *k)
{
	size_t n = strlen(k);
	const char *slash = memchr(k, '/', n);
	if (n == 0 || n > ALLOC_LABEL_MAX)
		return false;
	if (slash == NULL)
		return label_name_ok(k, n);
	size_t p = (size_t)(slash - k);
	if (p == 0 || k[0] == '.' || k[0] == '-' || k[p - 1] == '.' || k[p - 1] == '-')
		return false;
	for (size_t i = 0; i < p; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '-' ||
		      k[i] == '.'))
			return false;
	return label_name_ok(slash + 1, n - p - 1);
}

static void check_labels(json_t *labels, json_t *errors)
{
	if (json_object_size(labels) > ALLOC_MAX_LABELS) {
		jsonv_error(errors, "labels", "at most %d labels", ALLOC_MAX_LABELS);
		return;
	}
	const char *k;
	json_t *v;
	json_object_foreach(labels, k, v) {
		char field[96];
		/* The field name quotes the key only when it is a valid one. */
		bool kok = label_key_ok(k);
		snprintf(field, sizeof(field), "labels%s%s", kok ? "." : "", kok ? k : "");
		if (!kok)
			jsonv_error(errors, field,
				    "label keys must be Kubernetes label keys: [prefix/]name, at most "
				    "63 bytes, name of A-Z a-z 0-9 - _ . starting and ending with a "
				    "letter or digit");
		else if (strcmp(k, ALLOC_JOB_LABEL) == 0)
			jsonv_error(errors, field,
				    "is set by POST /v1/jobs only (it marks an allocation whose usage "
				    "plinth controller reports)");
		else if (!json_is_string(v) ||
			 (json_string_length(v) > 0 &&
			  (strlen(json_string_value(v)) != json_string_length(v) ||
			   !label_name_ok(json_string_value(v), json_string_length(v)))))
			jsonv_error(errors, field,
				    "label values must be Kubernetes label values: empty or at most 63 "
				    "of A-Z a-z 0-9 - _ . starting and ending with a letter or digit");
	}
}

int alloc_catalog_suggest(struct req *r, bool free_only, struct alloc_suggest *s)
{
	struct gpu_type *cat = NULL;
	size_t n = 0;
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_gpu_catalog(db, &cat, &n);
	if (rc == 0)
		store_suggest_types(cat, n, free_only, s);
	free(cat);
	return rc;
}

int alloc_unknown_gpu_type(json_t *errors, const char *gpu_id, const struct alloc_suggest *s,
			   json_t **extra)
{
	char valid[STORE_SUGGEST_TYPES * (STORE_ID_LEN + 2) + 32];
	render_valid_types_text(s, valid, sizeof(valid));
	jsonv_error(errors, "gpu_type", "unknown GPU type '%s'; valid: %s", gpu_id,
		    valid[0] ? valid : "none (the catalog is empty)");
	json_decref(*extra);
	*extra = json_object();
	return *extra != NULL && render_suggest(*extra, s) == 0 ? 0 : ERR_NOMEM;
}

/* Reads the team and GPU type of a quote; unknown ones become field errors
 * (an unknown GPU type with the valid ids, *extra gets them as members).
 * Returns -1 when it has replied (the database failed). */
static int catalog_read(struct req *r, const char *team_id, const char *gpu_id, json_int_t count,
			struct team *team, struct gpu_type *gpu, json_t *errors, json_t **extra)
{
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0) {
		rc = store_conn_ops(db)->team_get(db, team_id, team);
		if (rc == ERR_NOT_FOUND)
			jsonv_error(errors, "team", "unknown team '%s'", team_id);
	}
	if (rc == 0 || rc == ERR_NOT_FOUND) {
		rc = store_conn_ops(db)->gpu_type_get(db, gpu_id, gpu);
		if (rc == ERR_NOT_FOUND) {
			struct alloc_suggest s;
			memset(&s, 0, sizeof(s));
			rc = alloc_catalog_suggest(r, false, &s);
			if (rc == 0)
				rc = alloc_unknown_gpu_type(errors, gpu_id, &s, extra);
		} else if (rc == 0 && !gpu->retired_at && count > gpu->capacity) /* retired: 409 below */
			jsonv_error(errors, "gpu_count", "exceeds the capacity of %s (%lld GPUs)",
				    gpu->id, (long long)gpu->capacity);
	}
	if (rc != 0 && rc != ERR_NOT_FOUND) {
		reply_err(r, rc, rc == ERR_UNAVAILABLE ? "database unavailable" : "cannot read the catalog");
		return -1;
	}
	/* Retired: no new quote (409, as the allocation's refusal). */
	if (json_array_size(errors) == 0 && (team->retired_at || gpu->retired_at)) {
		char d[STORE_ID_LEN + 64];
		snprintf(d, sizeof(d), team->retired_at ? "team '%s' is retired" : "GPU type '%s' is retired",
			 team->retired_at ? team->id : gpu->id);
		reply_retired(r, team->retired_at ? "team" : "gpu_type", d);
		return -1;
	}
	return 0;
}

int alloc_request_parse(struct req *r, bool for_quote, struct alloc_request *out, struct team *team,
			struct gpu_type *gpu)
{
	json_t *body = NULL, *errors = json_array(), *extra = NULL;
	int ret = -1;
	memset(out, 0, sizeof(*out));
	if (req_json_object(r, false, &body) != 0)
		goto out;
	jsonv_check(body, for_quote ? quote_fields : alloc_fields, "", errors);
	const char *team_id = json_string_value(json_object_get(body, "team"));
	const char *project = json_string_value(json_object_get(body, "project"));
	const char *gpu_id = json_string_value(json_object_get(body, "gpu_type"));
	json_t *count = json_object_get(body, "gpu_count");
	json_t *hours = json_object_get(body, "max_runtime_hours");
	if (team_id != NULL && !jsonv_is_label(team_id))
		jsonv_error(errors, "team", "must be a team id (lower-case DNS label)");
	if (project != NULL && !jsonv_is_label(project))
		jsonv_error(errors, "project", "must be a lower-case DNS label (a-z, 0-9, '-', <= 63)");
	if (gpu_id != NULL && !jsonv_is_label(gpu_id))
		jsonv_error(errors, "gpu_type", "must be a GPU type id");
	if (json_is_integer(count) && json_integer_value(count) < 1)
		jsonv_error(errors, "gpu_count", "must be at least 1");
	if (json_is_number(hours) &&
	    cost_runtime_from_hours(json_number_value(hours), r->app->max_runtime_hours,
				    &out->max_runtime_us) != 0)
		jsonv_error(errors, "max_runtime_hours",
			    "must be greater than 0 and at most %lld, with at most 6 decimals",
			    (long long)r->app->max_runtime_hours);
	json_t *labels = json_object_get(body, "labels");
	if (json_is_object(labels))
		check_labels(labels, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	/* The caller's scope comes before existence: a member learns nothing
	 * about teams it does not belong to. */
	if (!auth_team_allowed(r, team_id)) {
		reply_err(r, ERR_FORBIDDEN, "this token is not a member of that team");
		goto out;
	}
	/* A quote reads the catalog here; an allocation leaves it to the store,
	 * which reads the team and GPU type inside its (batched) transaction
	 * anyway and reports unknown ones and gpu_count over the capacity as
	 * ERR_NOT_FOUND / ERR_INVALID (api_allocation_create maps them to 422):
	 * two round trips fewer per decision. */
	if (for_quote && catalog_read(r, team_id, gpu_id, json_integer_value(count), team, gpu,
				      errors, &extra) != 0)
		goto out;
	if (json_array_size(errors) > 0) {
		reply_invalid_extra(r, errors, extra);
		errors = NULL;
		extra = NULL;
		goto out;
	}
	snprintf(out->team, sizeof(out->team), "%s", team_id);
	snprintf(out->project, sizeof(out->project), "%s", project ? project : "");
	snprintf(out->gpu_type, sizeof(out->gpu_type), "%s", gpu_id);
	out->gpu_count = json_integer_value(count);
	const char *purpose = json_string_value(json_object_get(body, "purpose"));
	snprintf(out->purpose, sizeof(out->purpose), "%s", purpose ? purpose : "");
	/* Validation bounds the text (see ALLOC_LABEL_MAX); should it still not
	 * fit, the request is refused: a cut JSON text would poison the ledger. */
	char *lt = labels ? json_dumps(labels, HTTP_JSON_FLAGS | JSON_SORT_KEYS) : NULL;
	if ((labels != NULL && lt == NULL) ||
	    util_fmt(out->labels_json, sizeof(out->labels_json), "%s", lt ? lt : "{}") != 0) {
		free(lt);
		errors = json_array();
		jsonv_error(errors, "labels", "the labels do not fit in %d bytes of JSON",
			    STORE_LABELS_LEN - 1);
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	free(lt);
	ret = 0;
out:
	json_decref(body);
	json_decref(errors);
	json_decref(extra);
	return ret;
}

/*
 * The response text for an allocation outcome, fresh or replayed from its
 * Idempotency-Key (then without an instance).  An approval is written with jsonw
 * (the hot path); a refusal is a problem document with the figures.
 */
static char *outcome_text(struct req *r, int rc, const struct alloc_outcome *o, int *status,
			  const char *instance)
{
	if (rc == 0) {
		*status = 201;
		return render_allocation_text(&o->alloc, r->now, NULL);
	}
	char detail[256];
	bool budget = rc == ERR_BUDGET;
	render_refusal_detail(budget, o->estimated, o->available, o->alloc.gpu_count,
			      o->gpus_available, r->app->currency, detail, sizeof(detail));
	char type[128];
	snprintf(type, sizeof(type), "%s%s", HTTP_PROBLEM_BASE,
		 budget ? "budget-exceeded" : "capacity-exceeded");
	*status = 409;
	json_t *v = json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:s, s:I}", "type", type, "title",
			      budget ? "Budget exceeded" : "GPU capacity exceeded", "status", 409,
			      "detail", detail, "estimated_cost", render_money(o->estimated),
			      "available", render_money(o->available), "currency",
			      r->app->currency, "gpus_available", (json_int_t)o->gpus_available);
	if (v != NULL && render_suggest(v, &o->suggest) != 0) {
		json_decref(v);
		v = NULL;
	}
	if (v != NULL && instance != NULL)
		json_object_set_new(v, "instance", json_string(instance));
	char *text = v ? json_dumps(v, HTTP_JSON_FLAGS) : NULL;
	json_decref(v);
	return text;
}

void api_allocation_create(struct req *r)
{
	struct alloc_request ar;
	struct alloc_outcome o;
	char detail[STORE_DETAIL_LEN] = "", hash[STORE_HASH_LEN];
	const char *key = NULL;
	if (query_idempotency_key(r, &key) != 0)
		return;
	if (alloc_request_parse(r, false, &ar, NULL, NULL) != 0)
		return;
	struct idem idem = {.key = key, .hash = hash};
	if (key != NULL && query_request_hash(r, hash) != 0) {
		reply_err(r, ERR_STORE, "cannot hash the request");
		return;
	}
	memset(&o, 0, sizeof(o));
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->allocate(db, &r->actor, &ar, r->app->start_timeout_s, r->now,
						  &idem, &o, detail);
	if (idem.legacy_body) { /* recorded by an older plinth: its answer as it was */
		reply_take(r, (unsigned)idem.legacy_status,
			   idem.legacy_status >= 400 ? "application/problem+json" : "application/json",
			   idem.legacy_body, strlen(idem.legacy_body));
		return;
	}
	if (!idem.replayed)
		metrics_alloc_count(rc == 0 ? METRICS_ALLOC_APPROVED
				    : rc == ERR_BUDGET ? METRICS_ALLOC_BUDGET_EXCEEDED
				    : rc == ERR_CAPACITY ? METRICS_ALLOC_CAPACITY_EXCEEDED
							 : METRICS_ALLOC_ERROR);
	if (rc == 0 || rc == ERR_BUDGET || rc == ERR_CAPACITY) {
		int status = 0;
		o.alloc.gpu_count = rc == 0 ? o.alloc.gpu_count : ar.gpu_count;
		/* A replay is the same answer (without this request's instance). */
		char *text = outcome_text(r, rc, &o, &status, idem.replayed ? NULL : r->id);
		if (text == NULL)
			reply_take(r, 500, "text/plain", NULL, 0);
		else
			reply_take(r, (unsigned)status,
				   status >= 400 ? "application/problem+json" : "application/json", text,
				   strlen(text));
		return;
	}
	if (rc == ERR_IDEMPOTENCY) {
		reply_err(r, rc, "this Idempotency-Key was used with a different request body");
		return;
	}
	if (rc == ERR_CONFLICT && o.field[0]) { /* a retired team or GPU type */
		reply_retired(r, o.field, detail);
		return;
	}
	if (rc == ERR_NOT_FOUND || rc == ERR_INVALID) {
		json_t *errors = json_array(), *extra = NULL;
		const char *field = o.field[0] ? o.field : rc == ERR_INVALID ? "gpu_count" : "team";
		if (rc == ERR_NOT_FOUND && strcmp(field, "gpu_type") == 0) {
			if (alloc_unknown_gpu_type(errors, ar.gpu_type, &o.suggest, &extra) != 0) {
				json_decref(errors);
				json_decref(extra);
				reply_err(r, ERR_NOMEM, NULL);
				return;
			}
		} else {
			jsonv_error(errors, field, "%s", detail);
		}
		reply_invalid_extra(r, errors, extra);
		return;
	}
	reply_err(r, rc, detail[0] ? detail : "cannot allocate");
}

/* Loads an allocation the caller may see; replies 404 otherwise. */
static int load_visible(struct req *r, struct allocation *a)
{
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->alloc_get(db, r->params[0], a);
	if (rc == 0 && !auth_team_allowed(r, a->team))
		rc = ERR_NOT_FOUND;
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such allocation" : "cannot read allocation");
		return -1;
	}
	return 0;
}

void api_allocation_get(struct req *r)
{
	struct allocation a;
	if (load_visible(r, &a) != 0)
		return;
	json_t *v = render_allocation(&a, r->now);
	if (v == NULL)
		reply_err(r, ERR_NOMEM, "cannot render the allocation");
	else
		reply_json(r, 200, v);
}

/* A row that cannot be rendered fails the whole answer (500), never a short
 * page without a cursor. */
static int add_alloc(void *ctx, const struct allocation *a)
{
	return query_page_add(ctx, render_allocation(a, ((struct query_page *)ctx)->r->now));
}

static int list_allocs(struct store_conn *db, const void *f, struct query_page *pg, char *next)
{
	return store_conn_ops(db)->alloc_list(db, f, add_alloc, pg, next);
}

void api_allocations_list(struct req *r)
{
	json_t *errors = json_array();
	struct alloc_filter f = {.status = -1};
	query_list_args(r, errors, &f.team, &f.limit, &f.cursor);
	const char *status = req_query(r, "status");
	enum alloc_status st;
	if (status != NULL) {
		if (alloc_status_parse(status, &st) != 0)
			jsonv_error(errors, "status",
				    "must be one of approved, running, completed, cancelled, expired");
		else
			f.status = (int)st;
	}
	query_list_page(r, errors, f.team, &f.teams, &f.nteams, list_allocs, &f,
			"cannot list allocations");
}

/*
 * Who may report usage.  The member's team pays, so a member's start and
 * complete happen at the server's clock; only the component that watches the
 * real workload (a service token) or an admin may say when a job started or
 * ended, and then only within the allocation's life: a start not before the
 * approval and before the expiry, a start or end never in the future (up to
 * ALLOC_CLOCK_SKEW_S for the reporter's clock), an end not before the start.
 */
#define ALLOC_CLOCK_SKEW_S 5

static bool may_report_times(const struct req *r)
{
	return r->actor.role == ROLE_SERVICE || r->actor.role == ROLE_ADMIN;
}

/* Checks a reported started_at/ended_at against the allocation. */
static void check_reported_time(struct req *r, enum alloc_event ev, const char *at_field, int64_t at,
				const struct allocation *a, json_t *errors)
{
	char when[TIME_FMT_LEN];
	if (at > r->now + ALLOC_CLOCK_SKEW_S) {
		time_format_rfc3339(r->now, when);
		jsonv_error(errors, at_field, "must not be in the future (the server's time is %s)",
			    when);
	} else if (ev == ALLOC_EV_START && at < a->approved_at) {
		time_format_rfc3339(a->approved_at, when);
		/* Names whose time it quotes: the allocation's, never the caller's value. */
		jsonv_error(errors, at_field,
			    "must not be before the allocation was approved (its approved_at is %s)",
			    when);
	} else if (ev == ALLOC_EV_START && a->status == ALLOC_APPROVED && at >= a->expires_at) {
		time_format_rfc3339(a->expires_at, when);
		jsonv_error(errors, at_field, "must be before the allocation expires (%s)", when);
	}
}

/* Common path of start, complete and cancel. */
static void transition(struct req *r, enum alloc_event ev, const char *at_field)
{
	json_t *body = NULL, *errors = json_array();
	struct allocation a;
	int64_t at = r->now;
	if (req_json_object(r, true, &body) != 0)
		goto out;
	struct jv_field fields[] = {{at_field, JV_STRING, false, 40}, {NULL, 0, false, 0}};
	jsonv_check(body, at_field ? fields : fields + 1, "", errors);
	const char *at_s = at_field ? json_string_value(json_object_get(body, at_field)) : NULL;
	if (at_s != NULL && time_parse_rfc3339(at_s, &at) != 0)
		jsonv_error(errors, at_field, "must be an RFC 3339 time");
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	if (load_visible(r, &a) != 0)
		goto out;
	/* A job's usage comes from the cluster: its members may cancel it but
	 * not say when it started or ended (issue 13). */
	if (ev != ALLOC_EV_CANCEL && r->actor.role == ROLE_MEMBER &&
	    render_alloc_managed_by(&a) != NULL) {
		reply_err(r, ERR_CONFLICT,
			  "usage of this allocation is reported by plinth controller from the "
			  "cluster; a member token may only cancel it");
		goto out;
	}
	if (at_s != NULL && !may_report_times(r)) {
		reply_err(r, ERR_FORBIDDEN,
			  ev == ALLOC_EV_START
				  ? "only a service or admin token may give started_at; leave it out "
				    "to start at the server's clock"
				  : "only a service or admin token may give ended_at; leave it out "
				    "to complete at the server's clock");
		goto out;
	}
	if (at_s != NULL)
		check_reported_time(r, ev, at_field, at, &a, errors);
	/* A repeat of a completed transition returns the stored result, so its
	 * default `now` is not checked against a started_at in the near future. */
	if (ev == ALLOC_EV_COMPLETE && a.status == ALLOC_RUNNING && at < a.started_at)
		jsonv_error(errors, at_field, "must not be before started_at");
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	struct store_conn *db;
	bool repeat = false;
	char detail[STORE_DETAIL_LEN] = "";
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->alloc_transition(db, &r->actor, a.id, ev, at, r->now, &a,
							  &repeat, detail);
	if (rc == 0 && !repeat && (ev == ALLOC_EV_COMPLETE || ev == ALLOC_EV_CANCEL))
		metrics_alloc_count(ev == ALLOC_EV_COMPLETE ? METRICS_ALLOC_COMPLETED
							    : METRICS_ALLOC_CANCELLED);
	if (rc != 0) {
		if (rc == ERR_CONFLICT && detail[0] == '\0')
			snprintf(detail, sizeof(detail), "cannot %s an allocation that is %s",
				 alloc_event_name(ev), alloc_status_name(a.status));
		reply_err(r, rc, detail[0] ? detail : "cannot change the allocation");
		goto out;
	}
	/* The webhook must not answer from what it read before this. */
	admission_cache_forget(a.id);
	/* The ledger moved: a job's manifests leave the GitOps repository now,
	 * without a pool connection; a failure is left to the sweeper. */
	if ((ev == ALLOC_EV_COMPLETE || ev == ALLOC_EV_CANCEL) && r->app->integrations != NULL &&
	    render_alloc_managed_by(&a) != NULL) {
		req_db_release(r);
		(void)jobclean_run(r->app->store, r->app->integrations->gitops, a.id, NULL);
	}
	json_t *v = render_allocation(&a, r->now);
	if (a.status == ALLOC_COMPLETED)
		json_object_set_new(v, "released", render_money(a.estimated_micros - a.actual_micros));
	else if (a.status == ALLOC_CANCELLED || a.status == ALLOC_EXPIRED)
		json_object_set_new(v, "released", render_money(a.estimated_micros));
	reply_json(r, 200, v);
out:
	json_decref(body);
	json_decref(errors);
}

void api_allocation_start(struct req *r)
{
	transition(r, ALLOC_EV_START, "started_at");
}

void api_allocation_complete(struct req *r)
{
	transition(r, ALLOC_EV_COMPLETE, "ended_at");
}

void api_allocation_cancel(struct req *r)
{
	transition(r, ALLOC_EV_CANCEL, NULL);
}
