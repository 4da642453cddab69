/*
 * api_jobs.c - the self-service flow: POST /v1/jobs turns one request into
 * an approved allocation, a registered model in MLflow and a Job plus an
 * Argo CD Application committed to the GitOps repository.
 *
 * Order: validate the whole body (including a dry-run render of both
 * manifests), record the job, allocate (the store's atomic check and
 * reserve), MLflow, GitOps.  A failed step cancels the allocation through
 * the store's lifecycle (so nothing stays reserved), marks the MLflow model
 * cancelled when it was tagged, and answers 502 naming the step.  Every
 * finished answer is stored with the job, so a retry with the same
 * Idempotency-Key reports the same outcome; a retry of an unfinished job
 * (crash) finishes it, each step being idempotent.  It must never call a
 * neighbour before the request is fully validated, nor leave an allocation
 * approved after answering an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/admission.h"
#include "core/cost.h"
#include "core/err.h"
#include "core/money.h"
#include "http/jsonv.h"
#include "integrations/integrations.h"
#include "integrations/manifest.h"
#include "util/log.h"
#include "util/util.h"

#define JOB_LEASE_S 60 /* an unfinished job younger than this is in progress */

static const struct jv_field job_fields[] = {
	{"team", JV_STRING, true, 63},
	{"project", JV_STRING, true, 63},
	{"name", JV_STRING, true, 63},
	{"framework", JV_STRING, true, 16},
	{"image", JV_STRING, false, MANIFEST_IMAGE_MAX},
	{"command", JV_ARRAY, false, 0},
	{"gpu_type", JV_STRING, true, 63},
	{"gpu_count", JV_INTEGER, true, 0},
	{"max_runtime_hours", JV_NUMBER, true, 0},
	{"model_name", JV_STRING, false, MANIFEST_MODEL_MAX},
	{"namespace", JV_STRING, false, 63},
	{NULL, 0, false, 0},
};

/* A validated request; strings point into the request's JSON body. */
struct job_req {
	const char *team, *project, *name, *framework, *image, *gpu_type;
	const char *argv[MANIFEST_ARGS_MAX];
	size_t argc;
	int64_t gpu_count;
	int64_t max_runtime_us;
	char model_name[MANIFEST_MODEL_MAX + 1];
	char namespace_[64]; /* one of the team's namespaces: where the Job runs */
};

static void spec_from(const struct job_req *q, const struct integrations *in,
		      const char *alloc_id, struct job_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->team = q->team;
	s->namespace_ = q->namespace_;
	s->project = q->project;
	s->name = q->name;
	s->framework = q->framework;
	s->image = q->image;
	s->command = q->argv;
	s->ncommand = q->argc;
	s->gpu_type = q->gpu_type;
	s->gpu_count = q->gpu_count;
	s->max_runtime_s = (q->max_runtime_us + 999999) / 1000000;
	s->allocation_id = alloc_id;
	s->model_name = q->model_name;
	s->mlflow_uri = in->mlflow_enabled ? in->mlflow.uri : NULL;
	s->repo_url = in->repo_url;
	s->revision = GITOPS_BRANCH;
}

/* The Job's namespace: the one asked for, which must be the team's, or by
 * default the namespace named after the team if it owns it, else its first. */
static void pick_namespace(const char *asked, const struct team *t, struct job_req *q,
			   json_t *errors)
{
	if (asked != NULL && !admission_team_has_namespace(t->namespaces, asked)) {
		jsonv_error(errors, "namespace", "must be one of team %s's namespaces: %s", t->id,
			    t->namespaces);
		return;
	}
	if (asked == NULL)
		asked = admission_team_has_namespace(t->namespaces, t->id) ? t->id : t->namespaces;
	/* A namespace is a DNS label (<= 63 bytes): the first of the list fits. */
	snprintf(q->namespace_, sizeof(q->namespace_), "%.*s", (int)strcspn(asked, ","), asked);
}

/* Validates the body into q; replies and returns -1 on failure. */
static int job_parse(struct req *r, json_t *body, struct job_req *q)
{
	json_t *errors = json_array(), *extra = NULL;
	struct team team;
	struct gpu_type gpu;
	int ret = -1, rc;

	memset(q, 0, sizeof(*q));
	jsonv_check(body, job_fields, "", errors);
	q->team = json_string_value(json_object_get(body, "team"));
	q->project = json_string_value(json_object_get(body, "project"));
	q->name = json_string_value(json_object_get(body, "name"));
	q->framework = json_string_value(json_object_get(body, "framework"));
	q->image = json_string_value(json_object_get(body, "image"));
	q->gpu_type = json_string_value(json_object_get(body, "gpu_type"));
	const char *model = json_string_value(json_object_get(body, "model_name"));
	json_t *count = json_object_get(body, "gpu_count");
	json_t *hours = json_object_get(body, "max_runtime_hours");
	json_t *cmd = json_object_get(body, "command");
	if (q->team && !manifest_is_label(q->team))
		jsonv_error(errors, "team", "must be a DNS-1123 label (a-z, 0-9, '-', <= 63)");
	if (q->project && !manifest_is_label(q->project))
		jsonv_error(errors, "project", "must be a DNS-1123 label (a-z, 0-9, '-', <= 63)");
	if (q->name && !manifest_is_label(q->name))
		jsonv_error(errors, "name", "must be a DNS-1123 label (a-z, 0-9, '-', <= 63)");
	if (q->gpu_type && !manifest_is_label(q->gpu_type))
		jsonv_error(errors, "gpu_type", "must be a GPU type id");
	if (q->framework && !manifest_framework_ok(q->framework))
		jsonv_error(errors, "framework", "must be one of pytorch, tensorflow, jax, custom");
	if (q->image && !manifest_image_ok(q->image))
		jsonv_error(errors, "image", "must be 1 to %d printable characters without spaces",
			    MANIFEST_IMAGE_MAX);
	if (q->framework && manifest_framework_ok(q->framework) &&
	    !manifest_default_image(q->framework) && q->image == NULL)
		jsonv_error(errors, "image", "is required with framework custom");
	if (model && !manifest_model_name_ok(model))
		jsonv_error(errors, "model_name", "must be 1 to %d of A-Z a-z 0-9 . _ - (not starting with '.')",
			    MANIFEST_MODEL_MAX);
	if (json_is_integer(count) &&
	    (json_integer_value(count) < 1 || json_integer_value(count) > 1024))
		jsonv_error(errors, "gpu_count", "must be 1 to 1024");
	if (json_is_number(hours) &&
	    cost_runtime_from_hours(json_number_value(hours), r->app->max_runtime_hours,
				    &q->max_runtime_us) != 0)
		jsonv_error(errors, "max_runtime_hours",
			    "must be greater than 0 and at most %lld, with at most 6 decimals",
			    (long long)r->app->max_runtime_hours);
	if (json_is_array(cmd)) {
		size_t i, total = 0;
		json_t *v;
		if (json_array_size(cmd) > MANIFEST_ARGS_MAX)
			jsonv_error(errors, "command", "at most %d arguments", MANIFEST_ARGS_MAX);
		else
			json_array_foreach(cmd, i, v) {
				if (!json_is_string(v) || json_string_length(v) > MANIFEST_ARG_MAX ||
				    strlen(json_string_value(v)) != json_string_length(v)) {
					jsonv_error(errors, "command",
						    "must be strings of at most %d bytes without NUL",
						    MANIFEST_ARG_MAX);
					break;
				}
				total += json_string_length(v);
				q->argv[q->argc++] = json_string_value(v);
			}
		if (total > MANIFEST_COMMAND_TOTAL)
			jsonv_error(errors, "command", "at most %d bytes in all", MANIFEST_COMMAND_TOTAL);
	}
	if (json_array_size(errors) > 0)
		goto invalid;
	if (model)
		snprintf(q->model_name, sizeof(q->model_name), "%s", model);
	else
		snprintf(q->model_name, sizeof(q->model_name), "%s-%s", q->team, q->name);
	q->gpu_count = json_integer_value(count);
	if (!auth_team_allowed(r, q->team)) {
		reply_err(r, ERR_FORBIDDEN, "this token is not a member of that team");
		goto out;
	}
	struct store_conn *db;
	rc = req_db(r, &db);
	if (rc == 0) {
		rc = store_conn_ops(db)->team_get(db, q->team, &team);
		if (rc == ERR_NOT_FOUND) {
			jsonv_error(errors, "team", "unknown team '%s'", q->team);
			rc = 0;
		}
	}
	if (rc == 0) {
		rc = store_conn_ops(db)->gpu_type_get(db, q->gpu_type, &gpu);
		if (rc == ERR_NOT_FOUND) {
			struct alloc_suggest s;
			memset(&s, 0, sizeof(s));
			rc = alloc_catalog_suggest(r, false, &s);
			if (rc == 0)
				rc = alloc_unknown_gpu_type(errors, q->gpu_type, &s, &extra);
		} else if (rc == 0 && !gpu.retired_at && q->gpu_count > gpu.capacity) {
			jsonv_error(errors, "gpu_count", "exceeds the capacity of %s (%lld GPUs)",
				    gpu.id, (long long)gpu.capacity);
		}
	}
	if (rc != 0) {
		reply_err(r, rc, "cannot read the catalog");
		goto out;
	}
	/* Retired: no new job (409, as an allocation's refusal), nothing recorded. */
	if (json_array_size(errors) == 0 && (team.retired_at || gpu.retired_at)) {
		char d[STORE_ID_LEN + 64];
		snprintf(d, sizeof(d), team.retired_at ? "team '%s' is retired" : "GPU type '%s' is retired",
			 team.retired_at ? team.id : gpu.id);
		reply_retired(r, team.retired_at ? "team" : "gpu_type", d);
		goto out;
	}
	if (json_array_size(errors) == 0)
		pick_namespace(json_string_value(json_object_get(body, "namespace")), &team, q,
			       errors);
	if (json_array_size(errors) > 0)
		goto invalid;
	/* A dry run of both renderers: what cannot be rendered is refused now,
	 * before anything is reserved. */
	struct job_spec s;
	char detail[256] = "", *text = NULL;
	size_t len = 0;
	spec_from(q, r->app->integrations, "alloc_dryrun", &s);
	rc = manifest_job_render(&s, &text, &len, detail);
	free(text);
	text = NULL;
	if (rc == 0)
		rc = manifest_application_render(&s, &text, &len, detail);
	free(text);
	if (rc == ERR_INVALID) {
		jsonv_error(errors, "", "%s", detail);
		goto invalid;
	}
	if (rc != 0) {
		reply_err(r, rc, detail);
		goto out;
	}
	ret = 0;
	goto out;
invalid:
	reply_invalid_extra(r, errors, extra);
	errors = NULL;
	extra = NULL;
out:
	json_decref(errors);
	json_decref(extra);
	return ret;
}

/* A refusal as the job's final answer (409, as POST /v1/allocations). */
static json_t *refusal_problem(struct req *r, const char *kind, json_t *est, json_t *avail,
			       json_int_t gpus, const char *detail, const struct alloc_suggest *s)
{
	char type[128];
	bool budget = strcmp(kind, "budget-exceeded") == 0;
	snprintf(type, sizeof(type), "%s%s", HTTP_PROBLEM_BASE, kind);
	json_t *v = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:O, s:O, s:s, s:I}", "type", type,
			      "title", budget ? "Budget exceeded" : "GPU capacity exceeded", "status",
			      409, "detail", detail, "step", "allocate", "instance", r->id,
			      "estimated_cost", est, "available", avail, "currency", r->app->currency,
			      "gpus_available", gpus);
	if (v != NULL && s != NULL && render_suggest(v, s) != 0) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

/* The 502 (or 409) problem naming the failed step; name: the problem type. */
static json_t *step_problem(struct req *r, unsigned status, const char *name, const char *step,
			    const char *detail, const char *alloc_id, const char *alloc_status)
{
	char type[128], d[600];
	snprintf(type, sizeof(type), "%s%s", HTTP_PROBLEM_BASE, name);
	snprintf(d, sizeof(d), "%s: %s; the allocation is %s", step, detail, alloc_status);
	return json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "type", type, "title",
			 status == 502 ? "A step of the job failed" : "The job cannot be created",
			 "status", (int)status, "detail", d, "step", step, "instance", r->id,
			 "allocation_id", alloc_id, "allocation_status", alloc_status);
}

/*
 * 409 for a name that a job holds (its manifests are in the repository):
 * refused before anything is allocated, naming the job and its allocation.
 */
static void job_exists(struct req *r, struct store_conn *db, const struct job *old)
{
	struct allocation a;
	const char *st = "unknown";
	char d[4 * STORE_ID_LEN + 200];
	if (store_conn_ops(db)->alloc_get(db, old->allocation_id, &a) == 0)
		st = alloc_status_name(a.status);
	snprintf(d, sizeof(d),
		 "name: job '%s' of team '%s' exists (%s); its allocation %s is %s. Choose another "
		 "name, or wait until its allocation has ended and its manifests are removed",
		 old->name, old->team, old->id, old->allocation_id, st);
	reply_problem(r, 409, "job-exists", "The job exists", d,
		      json_pack("{s:s, s:s, s:s, s:s, s:s}", "field", "name", "name", old->name,
				"job_id", old->id, "allocation_id", old->allocation_id,
				"allocation_status", st));
}

/* Stores the final answer with the job and sends it. */
static void job_finish(struct req *r, struct job *j, unsigned status, json_t *v)
{
	char *text = v ? json_dumps(v, HTTP_JSON_FLAGS) : NULL;
	json_decref(v);
	if (text == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		return;
	}
	j->status = (int)status;
	snprintf(j->body, sizeof(j->body), "%s", text);
	j->updated_at = r->now;
	struct store_conn *db;
	char detail[STORE_DETAIL_LEN] = "";
	int rc = req_db(r, &db);
	if (rc == 0 && strlen(text) >= sizeof(j->body))
		rc = ERR_TOO_LARGE;
	if (rc == 0)
		rc = store_conn_ops(db)->job_update(db, j, detail);
	if (rc != 0)
		log_event("error", "cannot record the job's outcome",
			  json_pack("{s:s, s:s}", "job", j->id, "detail", detail));
	reply_take(r, status, status >= 400 ? "application/problem+json" : "application/json", text,
		   strlen(text));
}

/* Cancels the allocation (compensation); logs when even that fails. */
static void alloc_cancel(struct req *r, const char *alloc_id)
{
	struct store_conn *db;
	struct allocation a;
	bool repeat = false;
	char detail[STORE_DETAIL_LEN] = "";
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->alloc_transition(db, &r->actor, alloc_id, ALLOC_EV_CANCEL,
							  r->now, r->now, &a, &repeat, detail);
	if (rc != 0)
		log_event("error", "cannot cancel the allocation of a failed job",
			  json_pack("{s:s, s:s}", "allocation", alloc_id, "detail", detail));
}

/*
 * The job's allocate step recorded by a plinth before the decision was kept
 * as data: its Idempotency record holds the HTTP answer of that plinth's
 * render (201: the allocation; 409: {"refused", "estimated_cost",
 * "available", "gpus_available"}), read as that plinth read it.  An approval
 * becomes a replay of o->alloc.id (*rc 0, idem->replayed; returns 0: go on);
 * a refusal finishes the job (returns 1, answered); an unreadable record is
 * a 500 (returns 1).  Consumes idem->legacy_body.
 */
static int legacy_decision(struct req *r, struct job *j, struct idem *idem, struct alloc_outcome *o,
			   int *rc)
{
	json_t *v = json_loads(idem->legacy_body, 0, NULL);
	const char *id = json_string_value(json_object_get(v, "id"));
	const char *kind = json_string_value(json_object_get(v, "refused"));
	json_t *est = json_object_get(v, "estimated_cost"), *avail = json_object_get(v, "available");
	int done = 1;

	free(idem->legacy_body);
	idem->legacy_body = NULL;
	if (idem->legacy_status == 201 && id != NULL &&
	    util_fmt(o->alloc.id, sizeof(o->alloc.id), "%s", id) == 0) {
		idem->replayed = true;
		*rc = 0;
		done = 0;
	} else if (idem->legacy_status == 409 && kind != NULL && est != NULL && avail != NULL) {
		bool cap = strcmp(kind, "capacity-exceeded") == 0;
		job_finish(r, j, 409,
			   refusal_problem(r, cap ? "capacity-exceeded" : "budget-exceeded", est, avail,
					   json_integer_value(json_object_get(v, "gpus_available")),
					   "the allocation was refused", NULL));
	} else {
		reply_err(r, ERR_STORE, "this job's allocation record cannot be read");
	}
	json_decref(v);
	return done;
}

void api_job_create(struct req *r)
{
	struct integrations *in = r->app->integrations;
	struct job_req q;
	struct job *j = NULL, *jn = NULL;
	json_t *body = NULL, *alloc_json = NULL, *mlflow_json = NULL;
	char hash[STORE_HASH_LEN], detail[STORE_DETAIL_LEN] = "";
	const char *key = NULL;
	struct store_conn *db;
	int rc;

	if (in == NULL) {
		reply_err(r, ERR_UNAVAILABLE, "the job flow is not configured");
		return;
	}
	if (query_idempotency_key(r, &key) != 0)
		return;
	if (req_json_object(r, false, &body) != 0)
		return;
	if (job_parse(r, body, &q) != 0)
		goto out;

	/* The job record: a retry with the same key finds it. */
	j = calloc(1, sizeof(*j));
	jn = calloc(1, sizeof(*jn));
	if (j == NULL || jn == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		goto out;
	}
	rc = query_request_hash(r, hash);
	if (rc == 0)
		rc = util_random_id("job_", 20, jn->id, sizeof(jn->id));
	if (rc != 0) {
		reply_err(r, ERR_STORE, "cannot hash the request");
		goto out;
	}
	snprintf(jn->token_id, sizeof(jn->token_id), "%s", r->actor.token_id);
	snprintf(jn->idem_key, sizeof(jn->idem_key), "%s", key ? key : "");
	snprintf(jn->request_hash, sizeof(jn->request_hash), "%s", hash);
	snprintf(jn->team, sizeof(jn->team), "%s", q.team);
	snprintf(jn->name, sizeof(jn->name), "%s", q.name);
	jn->created_at = jn->updated_at = r->now;
	bool created = false;
	rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->job_begin(db, jn, j, &created, detail);
	if (rc == ERR_IDEMPOTENCY) {
		reply_err(r, rc, "this Idempotency-Key was used with a different request body");
		goto out;
	}
	if (rc == ERR_CONFLICT) {
		job_exists(r, db, j);
		goto out;
	}
	if (rc != 0) {
		reply_err(r, rc, detail[0] ? detail : "cannot record the job");
		goto out;
	}
	if (!created && j->status != 0) {
		reply_raw(r, (unsigned)j->status,
			  j->status >= 400 ? "application/problem+json" : "application/json",
			  j->body, strlen(j->body));
		goto out;
	}
	if (!created) { /* take over an abandoned attempt: of two retries, one */
		int64_t seen = j->updated_at;
		j->updated_at = r->now;
		rc = seen > r->now - JOB_LEASE_S ? ERR_CONFLICT
						 : store_conn_ops(db)->job_take(db, j, seen, detail);
		if (rc == ERR_CONFLICT) {
			reply_err(r, rc, "this job is being created by another request; retry later");
			goto out;
		}
		if (rc != 0) {
			reply_err(r, ERR_STORE, "cannot record the job");
			goto out;
		}
	}

	/* Step 1: allocate (atomic check and reserve; idempotent per job). */
	struct alloc_request ar;
	struct alloc_outcome o;
	char idem_key[STORE_IDEM_KEY_LEN + 8];
	memset(&ar, 0, sizeof(ar));
	memset(&o, 0, sizeof(o));
	snprintf(ar.team, sizeof(ar.team), "%s", q.team);
	snprintf(ar.project, sizeof(ar.project), "%s", q.project);
	snprintf(ar.gpu_type, sizeof(ar.gpu_type), "%s", q.gpu_type);
	ar.gpu_count = q.gpu_count;
	ar.max_runtime_us = q.max_runtime_us;
	snprintf(ar.purpose, sizeof(ar.purpose), "job %s/%s", q.team, q.name);
	snprintf(ar.labels_json, sizeof(ar.labels_json), "{\"plinth.io/job\":\"%s\"}", j->id);
	snprintf(idem_key, sizeof(idem_key), "job:%s", j->id);
	struct idem idem = {.key = idem_key, .hash = hash};
	detail[0] = '\0';
	rc = store_conn_ops(db)->allocate(db, &r->actor, &ar, r->app->start_timeout_s, r->now,
					  &idem, &o, detail);
	struct allocation a;
	if (idem.legacy_body && legacy_decision(r, j, &idem, &o, &rc) != 0)
		goto out; /* answered */
	if (idem.replayed && rc == 0) {
		rc = store_conn_ops(db)->alloc_get(db, o.alloc.id, &a);
		if (rc != 0) {
			reply_err(r, rc, "cannot read the job's allocation");
			goto out;
		}
		/* A retry must not deploy on an allocation that ended meanwhile. */
		if (a.status != ALLOC_APPROVED && a.status != ALLOC_RUNNING) {
			char d[160];
			snprintf(d, sizeof(d), "the job's allocation %s is %s", a.id,
				 alloc_status_name(a.status));
			job_finish(r, j, 409, step_problem(r, 409, "allocation-ended", "allocate", d, a.id,
							  alloc_status_name(a.status)));
			goto out;
		}
	} else if (rc == ERR_BUDGET || rc == ERR_CAPACITY) {
		json_t *est = render_money(o.estimated), *avail = render_money(o.available);
		/* The same words as POST /v1/allocations, fresh or replayed (the
		 * outcome is kept as data). */
		render_refusal_detail(rc == ERR_BUDGET, o.estimated, o.available, ar.gpu_count,
				      o.gpus_available, r->app->currency, detail, sizeof(detail));
		json_t *p = refusal_problem(r, rc == ERR_BUDGET ? "budget-exceeded" : "capacity-exceeded",
					    est, avail, (json_int_t)o.gpus_available, detail,
					    &o.suggest);
		json_decref(est);
		json_decref(avail);
		job_finish(r, j, 409, p);
		goto out;
	} else if (rc == ERR_CONFLICT && o.field[0]) {
		/* Retired since the request was checked: a refusal, the job ends. */
		json_t *p = json_pack("{s:s, s:s, s:i, s:s, s:s}", "type",
				      HTTP_PROBLEM_BASE "retired", "title", "Retired", "status", 409,
				      "detail", detail[0] ? detail : "retired", "field", o.field);
		job_finish(r, j, 409, p);
		goto out;
	} else if (rc != 0) {
		/* Nothing was reserved; release the job so a retry can go on. */
		j->updated_at = 0;
		(void)store_conn_ops(db)->job_update(db, j, NULL);
		reply_err(r, rc, detail[0] ? detail : "cannot allocate");
		goto out;
	} else {
		a = o.alloc;
	}
	snprintf(j->allocation_id, sizeof(j->allocation_id), "%s", a.id);
	j->updated_at = r->now;
	if (store_conn_ops(db)->job_update(db, j, detail) != 0) {
		alloc_cancel(r, a.id);
		reply_err(r, ERR_STORE, "cannot record the job");
		goto out;
	}
	alloc_json = render_allocation(&a, r->now);
	/* MLflow and git may take seconds (or hang until their timeouts): no
	 * pool connection is held across them; job_finish and alloc_cancel
	 * acquire one again. */
	req_db_release(r);
	db = NULL;
	char cost[MONEY_FMT_LEN], count[24], url[MLFLOW_URI_MAX + 200];
	money_format(a.estimated_micros, cost, sizeof(cost));
	snprintf(count, sizeof(count), "%lld", (long long)a.gpu_count);

	/* Step 2: MLflow. */
	if (in->mlflow_enabled) {
		struct mlflow_tag tags[] = {
			{"plinth.allocation_id", a.id}, {"plinth.team", a.team},
			{"plinth.project", a.project},  {"plinth.gpu_type", a.gpu_type},
			{"plinth.gpu_count", count},    {"plinth.estimated_cost", cost},
			{"plinth.job", j->id},          {"plinth.status", "approved"},
			{"plinth.currency", r->app->currency},
		};
		char md[MLFLOW_DETAIL_LEN] = "";
		rc = mlflow_model_ensure(&in->mlflow, q.model_name, "Registered by Plinth", tags,
					 sizeof(tags) / sizeof(tags[0]), md);
		if (rc != 0) {
			alloc_cancel(r, a.id);
			struct mlflow_tag t = {"plinth.status", "cancelled"};
			(void)mlflow_model_tag(&in->mlflow, q.model_name, &t, 1, md);
			job_finish(r, j, 502, step_problem(r, 502, "step-failed", "mlflow", md, a.id,
							      "cancelled"));
			goto out;
		}
		mlflow_model_url(&in->mlflow, q.model_name, url, sizeof(url));
		mlflow_json = json_pack("{s:s, s:s}", "registered_model", q.model_name, "url", url);
	} else {
		mlflow_json = json_pack("{s:s, s:b, s:s}", "registered_model", q.model_name, "skipped",
					1, "reason", "MLFLOW_TRACKING_URI is not set");
	}

	/* Step 3: GitOps. */
	struct job_spec s;
	char *job_yaml = NULL, *app_yaml = NULL, gd[GITOPS_DETAIL_LEN] = "";
	char commit[GITOPS_OID_LEN] = "", dir[160], msg[512], app_name[160];
	size_t job_len = 0, app_len = 0;
	spec_from(&q, in, a.id, &s);
	rc = manifest_job_render(&s, &job_yaml, &job_len, gd);
	if (rc == 0)
		rc = manifest_application_render(&s, &app_yaml, &app_len, gd);
	snprintf(dir, sizeof(dir), "apps/%s/%s", q.team, q.name);
	/* the runtime in hours, exactly, from micro-seconds */
	char hours[MONEY_FMT_LEN];
	money_format(a.max_runtime_us / 3600, hours, sizeof(hours));
	snprintf(msg, sizeof(msg),
		 "Job %s/%s: %lld x %s for up to %s h\n\nallocation: %s\nproject: %s\n"
		 "estimated cost: %s %s\njob: %s\n",
		 q.team, q.name, (long long)a.gpu_count, a.gpu_type, hours, a.id, q.project, cost,
		 r->app->currency, j->id);
	if (rc == 0) {
		struct gitops_file files[] = {
			{"job.yaml", job_yaml, job_len},
			{"application.yaml", app_yaml, app_len},
		};
		rc = gitops_commit_push(in->gitops, dir, files, 2, msg, commit, gd);
	}
	free(job_yaml);
	free(app_yaml);
	if (rc != 0) {
		alloc_cancel(r, a.id);
		if (in->mlflow_enabled) {
			struct mlflow_tag t = {"plinth.status", "cancelled"};
			char md[MLFLOW_DETAIL_LEN];
			(void)mlflow_model_tag(&in->mlflow, q.model_name, &t, 1, md);
		}
		unsigned st = rc == ERR_CONFLICT ? 409 : 502;
		job_finish(r, j, st, step_problem(r, st, st == 409 ? "job-exists" : "step-failed",
						     "gitops", gd, a.id, "cancelled"));
		goto out;
	}
	manifest_application_name(&s, app_name, sizeof(app_name));
	json_t *res = json_pack(
		"{s:s, s:O, s:o, s:s, s:O, s:{s:s, s:s, s:s, s:s, s:[s, s]}, s:{s:s, s:s, s:s}}",
		"id", j->id, "allocation", alloc_json, "estimated_cost",
		render_money(a.estimated_micros), "currency", r->app->currency, "mlflow", mlflow_json,
		"gitops", "repository",
		in->repo_url, "branch", GITOPS_BRANCH, "path", dir, "commit", commit,
		"files", "job.yaml", "application.yaml", "argocd", "application", app_name,
		"namespace", "argocd", "job_namespace", q.namespace_);
	job_finish(r, j, 201, res);
out:
	json_decref(alloc_json);
	json_decref(mlflow_json);
	json_decref(body);
	free(j);
	free(jn);
}

void api_job_get(struct req *r)
{
	struct store_conn *db;
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL) {
		reply_err(r, ERR_NOMEM, NULL);
		return;
	}
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->job_get(db, r->params[0], j);
	if (rc == 0 && !auth_team_allowed(r, j->team))
		rc = ERR_NOT_FOUND;
	if (rc != 0)
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such job" : "cannot read the job");
	else
		reply_json(r, 200, render_job(j));
	free(j);
}

static int add_job(void *ctx, const struct job *j)
{
	return query_page_add(ctx, render_job(j));
}

static int list_jobs(struct store_conn *db, const void *f, struct query_page *pg, char *next)
{
	return store_conn_ops(db)->job_list(db, f, add_job, pg, next);
}

/* GET /v1/jobs: a page of jobs, newest first; a member sees its teams' only. */
void api_jobs_list(struct req *r)
{
	struct job_filter f = {0};
	json_t *errors = json_array();
	query_list_args(r, errors, &f.team, &f.limit, &f.cursor);
	query_list_page(r, errors, f.team, &f.teams, &f.nteams, list_jobs, &f, "cannot list jobs");
}
