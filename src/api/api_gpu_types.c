/*
 * api_gpu_types.c - the price catalog: GPU types with price, price date and
 * capacity.  A price change applies to new allocations only (each allocation
 * keeps the price it was approved at, in the store).  PUT creates or
 * replaces a type, PATCH (a JSON merge patch, RFC 7396) changes the fields it
 * names, retire takes a type out of service while its history stays.  The
 * price's provenance (price_source, price_date) changes only with the price.
 */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "api/query.h"
#include "core/err.h"
#include "core/timeutil.h"
#include "http/jsonv.h"
#include "util/util.h"

#define GPU_CAPACITY_MAX 1000000

static int add_item(void *ctx, const struct gpu_type *g)
{
	struct req *r = ((void **)ctx)[0];
	json_t *items = ((void **)ctx)[1];
	if (g->retired_at && !*(bool *)((void **)ctx)[2])
		return 0;
	return json_array_append_new(items, render_gpu_type(g, r->app->currency));
}

void api_gpu_types_list(struct req *r)
{
	struct store_conn *db;
	bool all = false;
	if (query_include_retired(r, &all) != 0)
		return;
	json_t *items = json_array();
	void *ctx[3] = {r, items, &all};
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_list(db, add_item, ctx);
	if (rc != 0) {
		json_decref(items);
		reply_err(r, rc, "cannot list GPU types");
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "items", items));
}

void api_gpu_type_get(struct req *r)
{
	struct store_conn *db;
	struct gpu_type g;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_get(db, r->params[0], &g);
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such GPU type" : "cannot read GPU type");
		return;
	}
	reply_json(r, 200, render_gpu_type(&g, r->app->currency));
}

static const struct jv_field gpu_type_fields[] = {
	{"name", JV_STRING, true, STORE_NAME_LEN - 1},
	{"price_per_gpu_hour", JV_MONEY, true, 32},
	{"capacity", JV_INTEGER, true, 0},
	{"price_date", JV_STRING, false, 10},
	{NULL, 0, false, 0},
};

/* PATCH: any subset (nulls are handled before, see gpu_parse). */
static const struct jv_field gpu_type_patch_fields[] = {
	{"name", JV_STRING, false, STORE_NAME_LEN - 1},
	{"price_per_gpu_hour", JV_MONEY, false, 32},
	{"capacity", JV_INTEGER, false, 0},
	{"price_date", JV_STRING, false, 10},
	{NULL, 0, false, 0},
};

/*
 * Validates a PUT (patch false: every required field) or PATCH body into g
 * and the fields it names (enum gpu_field); errors get every invalid field.
 * A merge patch's null removes a member (RFC 7396): no field of a GPU type
 * can be removed but retired_at, whose null reactivates the type.
 */
static void gpu_parse(struct req *r, json_t *body, bool patch, struct gpu_type *g,
		      unsigned *fields, json_t *errors)
{
	const char *key;
	json_t *v;
	void *tmp;
	if (!jsonv_is_label(r->params[0]))
		jsonv_error(errors, "id", "must be a lower-case DNS label (a-z, 0-9, '-', <= 63)");
	if (util_fmt(g->id, sizeof(g->id), "%s", r->params[0]) != 0)
		return; /* reported above: not a label */
	if (patch)
		json_object_foreach_safe(body, tmp, key, v) {
			if (strcmp(key, "retired_at") == 0) {
				if (!json_is_null(v))
					jsonv_error(errors, key,
						    "only null (reactivate the GPU type); retire it "
						    "with POST /v1/gpu-types/{id}/retire");
				*fields |= GPU_F_RETIRED; /* g->retired_at stays 0 */
				json_object_del(body, key);
			} else if (json_is_null(v)) {
				jsonv_error(errors, key, "cannot be removed");
				json_object_del(body, key);
			}
		}
	jsonv_check(body, patch ? gpu_type_patch_fields : gpu_type_fields, "", errors);
	json_t *name = json_object_get(body, "name");
	if (json_is_string(name)) {
		*fields |= GPU_F_NAME;
		if (util_fmt(g->name, sizeof(g->name), "%s", json_string_value(name)) != 0)
			jsonv_error(errors, "name", "does not fit");
	}
	json_t *cap = json_object_get(body, "capacity");
	if (json_is_integer(cap)) {
		*fields |= GPU_F_CAPACITY;
		g->capacity = json_integer_value(cap);
		if (g->capacity < 0 || g->capacity > GPU_CAPACITY_MAX)
			jsonv_error(errors, "capacity", "must be between 0 and %d", GPU_CAPACITY_MAX);
	}
	if (json_object_get(body, "price_per_gpu_hour") != NULL &&
	    json_is_string(json_object_get(body, "price_per_gpu_hour"))) {
		*fields |= GPU_F_PRICE;
		g->price_micros = jsonv_money(body, "price_per_gpu_hour");
		/* Used by the store only when the price changes: provenance moves with it. */
		if (util_fmt(g->price_source, sizeof(g->price_source), "set by %s", r->actor.name) != 0)
			jsonv_error(errors, "price_per_gpu_hour", "the setter's name does not fit");
	}
	const char *date = json_string_value(json_object_get(body, "price_date"));
	if (date != NULL) {
		char full[32];
		int64_t t;
		*fields |= GPU_F_PRICE_DATE;
		snprintf(full, sizeof(full), "%sT00:00:00Z", date);
		if (strlen(date) != 10 || time_parse_rfc3339(full, &t) != 0)
			jsonv_error(errors, "price_date", "must be a date YYYY-MM-DD");
		else
			memcpy(g->price_date, date, 11);
	}
	/* price_date "" = none given: the store dates a new price today and
	 * keeps the date of an unchanged one. */
}

/* The answer to a write of a GPU type: the type after it, or the error. */
static void gpu_reply(struct req *r, int rc, const struct gpu_type *g, unsigned status)
{
	char d[STORE_DETAIL_LEN + 160];
	if (rc == ERR_CONFLICT) {
		snprintf(d, sizeof(d),
			 "GPU type '%s' is retired; an admin reactivates it with PATCH "
			 "/v1/gpu-types/%s {\"retired_at\": null}",
			 g->id, g->id);
		reply_retired(r, "retired_at", d);
		return;
	}
	if (rc != 0) {
		reply_err(r, rc, rc == ERR_NOT_FOUND ? "no such GPU type" : "cannot store the GPU type");
		return;
	}
	reply_json(r, status, render_gpu_type(g, r->app->currency));
}

void api_gpu_type_put(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	struct gpu_type g;
	unsigned fields = 0;
	memset(&g, 0, sizeof(g));
	if (errors == NULL || req_json_object(r, false, &body) != 0)
		goto out;
	gpu_parse(r, body, false, &g, &fields, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	struct store_conn *db;
	bool created = false;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_put(db, &r->actor, &g, r->now, &created);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_get(db, g.id, &g);
	gpu_reply(r, rc, &g, created ? 201 : 200);
out:
	json_decref(body);
	json_decref(errors);
}

void api_gpu_type_patch(struct req *r)
{
	json_t *body = NULL, *errors = json_array();
	struct gpu_type g, after;
	unsigned fields = 0;
	memset(&g, 0, sizeof(g));
	if (errors == NULL || req_json_object(r, false, &body) != 0)
		goto out;
	gpu_parse(r, body, true, &g, &fields, errors);
	if (json_array_size(errors) > 0) {
		reply_invalid(r, errors);
		errors = NULL;
		goto out;
	}
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_patch(db, &r->actor, &g, fields, r->now, &after);
	gpu_reply(r, rc, rc == 0 ? &after : &g, 200);
out:
	json_decref(body);
	json_decref(errors);
}

void api_gpu_type_retire(struct req *r)
{
	struct gpu_type g, after;
	memset(&g, 0, sizeof(g));
	if (util_fmt(g.id, sizeof(g.id), "%s", r->params[0]) != 0) {
		reply_err(r, ERR_NOT_FOUND, "no such GPU type");
		return;
	}
	g.retired_at = r->now;
	struct store_conn *db;
	int rc = req_db(r, &db);
	if (rc == 0)
		rc = store_conn_ops(db)->gpu_type_patch(db, &r->actor, &g, GPU_F_RETIRED, r->now,
							 &after);
	gpu_reply(r, rc, rc == 0 ? &after : &g, 200);
}
