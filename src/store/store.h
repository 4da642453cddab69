/*
 * store.h - the one storage interface.
 *
 * Every backend (store_sqlite.c today, store_pg.c next) implements struct
 * store_ops.  Each write operation is ONE transaction: it either commits all
 * of its rows (domain rows + audit row + idempotency row) or none.  The
 * ledger rule (check and reserve) is evaluated inside the transaction with
 * ledger_decide(), so it holds under any concurrency, across processes
 * sharing the database, and through crashes.
 *
 * Connections: store_conn_acquire() hands out a connection owned by the
 * caller until store_conn_release().  A connection is used by one thread at a
 * time.
 *
 * Strings in the records are fixed-size, NUL-terminated arrays so a record
 * has no owner beyond whoever holds the struct.  Sizes are the validation
 * limits, enforced by the API layer before calling the store.
 *
 * Errors: 0, ERR_NOT_FOUND, ERR_CONFLICT, ERR_BUDGET, ERR_CAPACITY,
 * ERR_IDEMPOTENCY, ERR_STORE (the statement failed; the transaction was
 * rolled back), ERR_UNAVAILABLE (busy/unreachable), ERR_NOMEM.  A one-line
 * detail is written to the caller's `detail` buffer when one is given
 * (STORE_DETAIL_LEN bytes).
 */
#ifndef PLINTH_STORE_H
#define PLINTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/costsum.h"
#include "core/lifecycle.h"
#include "core/period.h"
#include "core/role.h"
#include "core/suggest.h"

#define STORE_ID_LEN 64       /* ids: team, gpu type, allocation, token, project */
#define STORE_NAME_LEN 128    /* display names */
#define STORE_PURPOSE_LEN 1024
#define STORE_LABELS_LEN 4352 /* labels as compact JSON object text (api_allocations.c: the largest valid set fits) */
#define STORE_THRESHOLDS_LEN 256
#define STORE_MAX_NAMESPACES 16 /* Kubernetes namespaces a team may own */
#define STORE_NAMESPACES_LEN (STORE_MAX_NAMESPACES * 64) /* comma-joined DNS labels (<= 63 each) */
#define STORE_TEAMS_LEN 1024  /* token team list, JSON array text */
#define STORE_DETAIL_LEN 256
#define STORE_HASH_LEN 65     /* sha-256 hex + NUL */
#define STORE_MAX_PAGE 500
/* A team's admins: at most STORE_ADMINS_MAX strings of at most
 * STORE_ADMIN_MAXLEN characters (e-mail or Backstage entity ref, printable
 * ASCII without quotes or backslashes), kept as compact JSON array text. */
#define STORE_ADMINS_MAX 20
#define STORE_ADMIN_MAXLEN 200
#define STORE_ADMINS_LEN 4096 /* >= 20 x (200 + 3) + 3 */

/* Who makes a change: recorded in the audit log. */
struct actor {
	char token_id[STORE_ID_LEN];
	char name[STORE_NAME_LEN];
	enum role role;
};

struct token {
	char id[STORE_ID_LEN];
	char name[STORE_NAME_LEN];
	enum role role;
	char teams_json[STORE_TEAMS_LEN]; /* e.g. ["nlp","vision"]; "[]" if none */
	int64_t created_at;
	int64_t revoked_at; /* 0 = active */
};

struct gpu_type {
	char id[STORE_ID_LEN]; /* "h100-80gb" */
	char name[STORE_NAME_LEN];
	int64_t price_micros; /* per GPU-hour */
	char price_date[16];  /* "2026-07-20" */
	char price_source[STORE_NAME_LEN]; /* "aws p5.48xlarge us-east-1", "admin" */
	int64_t capacity;
	int64_t allocated; /* GPUs held by approved/running allocations */
	int64_t updated_at;
	int64_t retired_at; /* 0 = active; else retired then: no new allocations */
};

/* The fields of a GPU type a patch names (gpu_type_patch). */
enum gpu_field {
	GPU_F_NAME = 1 << 0,
	GPU_F_PRICE = 1 << 1,
	GPU_F_PRICE_DATE = 1 << 2,
	GPU_F_CAPACITY = 1 << 3,
	GPU_F_RETIRED = 1 << 4, /* retired_at: > 0 retires (kept if already), 0 reactivates */
};

struct team {
	char id[STORE_ID_LEN];
	char display_name[STORE_NAME_LEN];
	int64_t budget_micros;
	enum period_kind period;
	char thresholds_json[STORE_THRESHOLDS_LEN]; /* e.g. [0.5,0.8,1.0] */
	int64_t created_at;
	int64_t updated_at;
	char admins_json[STORE_ADMINS_LEN]; /* whom to ask about the budget; "[]" if none */
	int64_t retired_at; /* 0 = active; else retired then: no new allocations */
	/* Its Kubernetes namespaces, sorted and comma-joined ("nlp,nlp-dev"); each
	 * belongs to one team.  "" in team_put: keep the team's (a new one: its id). */
	char namespaces[STORE_NAMESPACES_LEN];
};

/* The fields of a team a patch names (team_patch). */
enum team_field {
	TEAM_F_DISPLAY_NAME = 1 << 0,
	TEAM_F_BUDGET = 1 << 1,
	TEAM_F_PERIOD = 1 << 2,
	TEAM_F_THRESHOLDS = 1 << 3,
	TEAM_F_ADMINS = 1 << 4,
	TEAM_F_RETIRED = 1 << 5, /* retired_at: > 0 retires (kept if already), 0 reactivates */
	TEAM_F_NAMESPACES = 1 << 6,
};

/* A team's ledger for one period: what is charged and what is held. */
struct team_ledger {
	int64_t period_start;
	int64_t period_end;
	int64_t spent;    /* actual costs of allocations approved in the period */
	int64_t reserved; /* estimates of approved/running allocations of the period */
	int64_t accrued;  /* running allocations' cost so far, at `now` */
	int64_t running;  /* number of running allocations of the period */
};

struct allocation {
	char id[STORE_ID_LEN]; /* "alloc_<26 chars>" */
	char team[STORE_ID_LEN];
	char project[STORE_ID_LEN];
	char gpu_type[STORE_ID_LEN];
	int64_t gpu_count;
	int64_t max_runtime_us;
	int64_t price_micros;     /* price per GPU-hour at approval, kept forever */
	int64_t estimated_micros; /* gpu_count x price x max runtime */
	enum alloc_status status;
	char purpose[STORE_PURPOSE_LEN];
	char labels_json[STORE_LABELS_LEN]; /* "{}" when none */
	char created_by[STORE_ID_LEN];      /* token id */
	int64_t period_start; /* the team period this allocation belongs to */
	int64_t approved_at;
	int64_t expires_at;   /* approved_at + start timeout */
	int64_t started_at;   /* 0 = not started */
	int64_t ended_at;     /* 0 = not ended (also the cancel/expiry instant) */
	int64_t actual_micros; /* -1 until completed; 0 when cancelled/expired */
};

struct alloc_request {
	char team[STORE_ID_LEN];
	char project[STORE_ID_LEN];
	char gpu_type[STORE_ID_LEN];
	int64_t gpu_count;
	int64_t max_runtime_us;
	char purpose[STORE_PURPOSE_LEN];
	char labels_json[STORE_LABELS_LEN];
};

/*
 * What a refusal suggests instead, computed from data in the decision's
 * transaction (ops_allocate.c) and kept in its idempotency record, so a
 * replay says the same.  Rendered as problem extension members (API.md).
 */
#define STORE_SUGGEST_TYPES SUGGEST_TYPES /* GPU types a refusal names at most */
struct alloc_suggest {
	/* ERR_BUDGET: what fits the budget left now (and the free GPUs). */
	bool budget;
	int64_t max_gpus;          /* most GPUs of the type at the asked runtime */
	int64_t max_runtime_us;    /* most runtime at the asked GPU count (whole micro-hours) */
	int64_t renews_at;         /* the team's next period start */
	char admins_json[STORE_ADMINS_LEN]; /* the team's admins, JSON array text */
	/* ERR_CAPACITY: types with free GPUs, most free first. */
	int nfree;
	struct alloc_free_type free[STORE_SUGGEST_TYPES];
	/* ERR_NOT_FOUND on gpu_type: the valid ids, by id. */
	int nvalid;
	char valid[STORE_SUGGEST_TYPES][STORE_ID_LEN];
	int ntypes; /* types that qualified (may exceed the ones listed) */
};

/* The team's admins (whom a refusal names) as JSON array text ("[]" when none). */
const char *store_team_admins_json(const struct team *t);

/* Every GPU type by id, read now, into *out (malloc'd, *n rows): 0 or an error.
 * A row it cannot read is reported (store_bad_row) and left out: the
 * catalog only feeds suggestions, which must not fail on another type. */
struct store_conn;
int store_gpu_catalog(struct store_conn *c, struct gpu_type **out, size_t *n);

/*
 * Fills s's type lists from a catalog cat[n] (current allocated counts):
 * capacity (free_only): the types with free GPUs, most free first; else the
 * valid ids, by id.  Pure; the decision and the quote both use it.
 */
void store_suggest_types(const struct gpu_type *cat, size_t n, bool free_only,
			 struct alloc_suggest *s);

/*
 * What an allocation attempt decided.  On refusal (ERR_BUDGET /
 * ERR_CAPACITY) the numbers say how much was available.
 */
struct alloc_outcome {
	struct allocation alloc; /* filled when approved (or replayed) */
	int64_t available;       /* budget left before this request, micros */
	int64_t gpus_available;  /* GPUs of the type free before this request */
	int64_t estimated;       /* micros this request would have cost */
	bool budget_ok;
	bool capacity_ok;
	/* ERR_NOT_FOUND / ERR_INVALID: the request field it is about
	 * ("team", "gpu_type", "gpu_count"); "" otherwise. */
	char field[16];
	/* What would fit instead (ERR_BUDGET, ERR_CAPACITY, unknown gpu_type). */
	struct alloc_suggest suggest;
};

/*
 * Idempotency: the API layer computes key and request hash; the store keeps
 * (token_id, key) -> (hash, the decision as data) in the same transaction as
 * the allocation, so a retry after a crash or a concurrent duplicate sees
 * either nothing or the finished decision.  A replay returns the original
 * decision's code and outcome, which the caller renders as it renders a
 * fresh one: the store never renders an answer.
 */
struct idem {
	const char *key;  /* NULL = no Idempotency-Key header */
	const char *hash; /* sha-256 hex of method, path and body */
	/* Out: the answer is a replay of the stored decision. */
	bool replayed;
	/* Out: a record of an older plinth held its HTTP answer: the caller sends
	 * it as is, or reads it as that plinth did (the jobs flow), and frees
	 * legacy_body; NULL otherwise. */
	int legacy_status;
	char *legacy_body;
};

struct alloc_filter {
	const char *team;    /* NULL = any (still limited by teams below) */
	const char *const *teams; /* NULL = no restriction; else only these (member scope) */
	size_t nteams;
	int status;          /* -1 = any, else enum alloc_status */
	const char *cursor;  /* NULL = from the start; opaque, from a previous page */
	int limit;           /* 1..STORE_MAX_PAGE */
};

/*
 * When a cost counts (docs/cost-visibility.md, "One month, one number"):
 * COST_VIEW_USE (the default) puts it on the UTC days the GPUs were used,
 * split by seconds exactly as the FOCUS export splits it, over the days that
 * overlap [from, to); COST_VIEW_BUDGET puts an allocation's whole cost at its
 * approval time, in [from, to) (the budget period it is charged to).
 */
enum cost_view {
	COST_VIEW_USE,
	COST_VIEW_BUDGET,
};

/* Cost rows (struct cost_row, 128-bit sums) and their groups: core/costsum.h. */
typedef cost_sum_t store_sum_t;
_Static_assert(COST_KEY_LEN >= 2 * STORE_ID_LEN, "a cost key holds team/project");

struct cost_query {
	int64_t from, to; /* by `view`: days of use overlapping [from, to), or approval in it */
	enum cost_group group;
	enum cost_view view;
	/* false = running allocations' cost so far (accrued, at `now`) is left
	 * out: of GET /v1/costs (accrued 0) and of the export (no rows) alike. */
	bool exclude_running;
	const char *const *teams; /* NULL = all teams, else only these */
	size_t nteams;
	int64_t now;
	/* true = ignore the daily rollups and read every allocation: the
	 * reference the rollups are checked against (tests, benches). */
	bool scan;
};

/*
 * One allocation's use on one UTC day (FOCUS export): a completed one's
 * actual cost, or a running one's accrued cost at `now` (unless
 * exclude_running).  The parts of an allocation are split by seconds exactly
 * as COST_VIEW_USE splits them, so the rows of a range sum to the spent +
 * accrued that GET /v1/costs reports for the same range.
 */
struct usage_row {
	const struct allocation *alloc; /* borrowed for the callback */
	int64_t day;            /* start of the UTC day */
	int64_t cost;           /* micros charged for that day */
	int64_t gpu_microhours; /* GPU-hours x 1e6 used that day */
	bool running;           /* accrued so far, not a final charge */
};

/*
 * A budget alert: team `team` crossed `threshold_ppm` (parts per million of
 * the budget) in the period starting at `period_start`; one row per webhook
 * URL so each receiver gets it exactly once.
 */
struct alert {
	char team[STORE_ID_LEN];
	int64_t period_start;
	int64_t threshold_ppm;
	char url[1024];
	int64_t budget;    /* micros, when it crossed */
	int64_t committed; /* spent + reserved, micros, when it crossed */
	int64_t crossed_at;
	int64_t attempts;
};

/*
 * A self-service job (POST /v1/jobs): the request's identity, its
 * allocation and, once finished, the answer it gave.  With an
 * Idempotency-Key, (token_id, idem_key) is unique so a retry finds it.
 */
#define STORE_JOB_BODY_LEN 16384
#define STORE_IDEM_KEY_LEN 256
struct job {
	char id[STORE_ID_LEN];             /* "job_<20 chars>" */
	char token_id[STORE_ID_LEN];
	char idem_key[STORE_IDEM_KEY_LEN]; /* "" = none */
	char request_hash[STORE_HASH_LEN];
	char team[STORE_ID_LEN];
	char name[STORE_ID_LEN];
	char allocation_id[STORE_ID_LEN]; /* "" until allocated */
	int status;                       /* 0 = in progress, else the final HTTP status */
	char body[STORE_JOB_BODY_LEN];    /* the final answer when status != 0 */
	int64_t created_at;
	int64_t updated_at;
};

/*
 * A job whose manifests should leave the GitOps repository: it answered 201
 * (its manifests were committed), its allocation ended (cancelled, expired,
 * completed) and the removal has not been recorded yet.
 */
struct job_cleanup {
	char id[STORE_ID_LEN];
	char team[STORE_ID_LEN];
	char name[STORE_ID_LEN];
	char allocation_id[STORE_ID_LEN];
	enum alloc_status status; /* the allocation's */
};

struct audit_entry {
	int64_t seq;
	int64_t at;
	char actor_id[STORE_ID_LEN];
	char actor_name[STORE_NAME_LEN];
	char action[64];      /* "allocation.approve", "team.put", ... */
	char object_type[32]; /* "allocation", "team", "gpu_type", "token" */
	char object_id[STORE_ID_LEN];
	char team[STORE_ID_LEN]; /* "" when none */
	char *before_json;   /* malloc'd compact JSON or NULL; freed by store_audit_entry_done */
	char *after_json;
};
void store_audit_entry_done(struct audit_entry *e);

/* Which audit rows a page holds: every filter is optional (NULL or 0). */
struct audit_filter {
	const char *team;   /* only this team's rows */
	const char *actor;  /* only rows whose actor id or actor name is this */
	const char *action; /* only this action, exactly ("team.update") */
	int64_t since;      /* only rows at or after this instant (0 = no bound) */
	int64_t until;      /* only rows before this instant (0 = no bound) */
	const char *cursor; /* NULL = from the start; next_cursor of a page with the same filters */
	int limit;          /* 1..STORE_MAX_PAGE */
};

/* Which jobs a page holds, newest first. */
struct job_filter {
	const char *team;         /* NULL = any (still limited by teams below) */
	const char *const *teams; /* NULL = no restriction; else only these (member scope) */
	size_t nteams;
	const char *cursor; /* NULL = from the start; opaque, from a previous page */
	int limit;          /* 1..STORE_MAX_PAGE */
};

struct store;
struct store_conn;

/* Callbacks for list operations: return 0 to go on, non-zero to stop. */
typedef int (*store_gpu_type_cb)(void *ctx, const struct gpu_type *g);
typedef int (*store_team_cb)(void *ctx, const struct team *t);
typedef int (*store_alloc_cb)(void *ctx, const struct allocation *a);
typedef int (*store_cost_cb)(void *ctx, const struct cost_row *r);
typedef int (*store_audit_cb)(void *ctx, const struct audit_entry *e);
typedef int (*store_token_cb)(void *ctx, const struct token *t);
typedef int (*store_usage_cb)(void *ctx, const struct usage_row *u);
typedef int (*store_job_cb)(void *ctx, const struct job *j);

/*
 * The operations, the same table for every backend but for its name: each
 * is written once over the driver interface (src/store/db.h, ops_*.c).
 */
struct store_ops {
	const char *name; /* "sqlite", "postgres" */

	/* Applies pending migrations; refuses (ERR_STORE + detail) a newer schema. */
	int (*migrate)(struct store_conn *c, char *detail);
	/* Cheap liveness probe for /readyz. */
	int (*ping)(struct store_conn *c);

	/* Tokens. hash = sha-256 hex of the secret; the secret is never stored. */
	int (*token_create)(struct store_conn *c, const struct actor *who, const struct token *t,
			    const char *hash, int64_t now);
	int (*token_by_hash)(struct store_conn *c, const char *hash, struct token *out);
	int (*token_revoke)(struct store_conn *c, const struct actor *who, const char *id, int64_t now);
	int (*admin_exists)(struct store_conn *c, bool *out); /* an active admin token */

	/* Catalog. put creates or replaces (allocated is kept); *created says which.
	 * A price equal to the stored one keeps price_source and price_date (its
	 * provenance); price_date "" = the date of `now` for a new price.  A
	 * retired type is ERR_CONFLICT (reactivate it with a patch first). */
	int (*gpu_type_put)(struct store_conn *c, const struct actor *who, const struct gpu_type *g,
			    int64_t now, bool *created);
	/*
	 * Changes only the fields named in `fields` (enum gpu_field) of the
	 * existing type g->id to g's values, in one transaction with its audit
	 * row ("gpu_type.update", ".retire", ".reactivate"); provenance as put.
	 * ERR_NOT_FOUND for an unknown id; ERR_CONFLICT when it is retired and the
	 * patch does not reactivate it.  Retiring a retired type changes nothing.
	 * *out gets the record after the call.
	 */
	int (*gpu_type_patch)(struct store_conn *c, const struct actor *who,
			      const struct gpu_type *g, unsigned fields, int64_t now,
			      struct gpu_type *out);
	int (*gpu_type_get)(struct store_conn *c, const char *id, struct gpu_type *out);
	int (*gpu_type_list)(struct store_conn *c, store_gpu_type_cb cb, void *ctx);
	/* Inserts only types whose id does not exist yet (first-start seeding). */
	int (*gpu_type_seed)(struct store_conn *c, const struct gpu_type *g, size_t n, int64_t now);

	/* Teams.  put creates or replaces; a retired team is ERR_CONFLICT. */
	int (*team_put)(struct store_conn *c, const struct actor *who, const struct team *t,
			int64_t now, bool *created);
	/* Changes only the fields named in `fields` (enum team_field) of the
	 * existing team t->id, as gpu_type_patch does ("team.update", ".retire",
	 * ".reactivate"). */
	int (*team_patch)(struct store_conn *c, const struct actor *who, const struct team *t,
			  unsigned fields, int64_t now, struct team *out);
	int (*team_get)(struct store_conn *c, const char *id, struct team *out);
	int (*team_list)(struct store_conn *c, const char *const *only, size_t nonly,
			 store_team_cb cb, void *ctx);
	/* The ledger of the period containing `now` (zeros if nothing yet). */
	int (*team_ledger)(struct store_conn *c, const struct team *t, int64_t now,
			   struct team_ledger *out);

	/*
	 * The heart: in one transaction, (replay idempotent answer | expire due
	 * allocations of this team and GPU type | read ledger and capacity |
	 * ledger_decide | insert allocation, add to reserved and allocated,
	 * append audit) and remember the decision.  Returns 0 when approved,
	 * ERR_BUDGET / ERR_CAPACITY when refused (o filled), ERR_NOT_FOUND for an
	 * unknown team or GPU type (detail names which), ERR_IDEMPOTENCY.  A
	 * replay (idem->replayed) returns the stored decision the same way,
	 * unless idem->legacy_body is set (see struct idem).
	 */
	int (*allocate)(struct store_conn *c, const struct actor *who, const struct alloc_request *r,
			int64_t start_timeout_s, int64_t now, struct idem *idem,
			struct alloc_outcome *o, char *detail);
	int (*alloc_get)(struct store_conn *c, const char *id, struct allocation *out);
	/* Pages newest first; *next_cursor ("" when no more) is STORE_ID_LEN*2 bytes. */
	int (*alloc_list)(struct store_conn *c, const struct alloc_filter *f, store_alloc_cb cb,
			  void *ctx, char *next_cursor);
	/*
	 * Applies a lifecycle event at instant `at` (start: started_at; complete:
	 * ended_at; cancel/expire: ended_at) in one transaction: money moves
	 * between reserved and spent of the allocation's own period, GPUs leave
	 * allocated, an audit row is appended.  A start after expires_at expires
	 * the allocation instead and returns ERR_CONFLICT.  complete with
	 * at < started_at is ERR_INVALID.  *repeat is set for an idempotent repeat
	 * (nothing changed).  out holds the allocation after the call.
	 */
	int (*alloc_transition)(struct store_conn *c, const struct actor *who, const char *id,
				enum alloc_event ev, int64_t at, int64_t now,
				struct allocation *out, bool *repeat, char *detail);
	/* Expires every approved allocation with expires_at <= now; *n = how many. */
	int (*alloc_expire_due)(struct store_conn *c, int64_t now, int *n);

	/* Costs, grouped, sorted by key. */
	int (*costs)(struct store_conn *c, const struct cost_query *q, store_cost_cb cb, void *ctx);

	/* Audit, oldest first from the cursor (a sequence number as text). */
	int (*audit_list)(struct store_conn *c, const char *team, const char *cursor, int limit,
			  store_audit_cb cb, void *ctx, char *next_cursor);
	/* The same with every filter of f (the filters are applied in SQL); a
	 * page's next_cursor continues the same filtered walk. */
	int (*audit_find)(struct store_conn *c, const struct audit_filter *f, store_audit_cb cb,
			  void *ctx, char *next_cursor);

	/* Every token (active and revoked), oldest first; never the hash. */
	int (*token_list)(struct store_conn *c, store_token_cb cb, void *ctx);

	/* --- cost visibility (rollups, export, alerts) --- */
	/* Completed allocations' use per UTC day for days overlapping [from, to)
	 * within q->teams, ordered by allocation then day.  Only q->from, q->to,
	 * q->teams and q->nteams are read. */
	int (*cost_usage)(struct store_conn *c, const struct cost_query *q, store_usage_cb cb,
			  void *ctx);
	/* Recomputes the daily cost rollups from the allocations (repair; bulk loads). */
	int (*cost_rollup_rebuild)(struct store_conn *c);
	/* Records a crossing for each URL unless already recorded; *created = how many new. */
	int (*alert_record)(struct store_conn *c, const struct alert *a, const char *const *urls,
			    size_t nurls, int64_t now, int *created);
	/* Claims up to max undelivered alerts due at now (next attempt <= now) for
	 * lease_s seconds so one replica sends each; *n = how many were written to out. */
	int (*alert_claim)(struct store_conn *c, int64_t now, int64_t lease_s, struct alert *out,
			   int max, int *n);
	/* After an attempt: delivered, or retry at next_at with the error noted. */
	int (*alert_done)(struct store_conn *c, const struct alert *a, bool delivered,
			  int64_t next_at, const char *error, int64_t now);

	/* --- self-service jobs --- */
	/* Inserts j.  If j->idem_key is set and (token_id, idem_key) exists, *out
	 * gets the stored job and *created is false; a different request_hash is
	 * ERR_IDEMPOTENCY.  A new job whose team and name belong to a job that
	 * answered 201 and whose manifests are still in the repository is
	 * ERR_CONFLICT with that job in *out (nothing is inserted).  Otherwise
	 * *out = *j and *created is true. */
	int (*job_begin)(struct store_conn *c, const struct job *j, struct job *out, bool *created,
			 char *detail);
	/* Saves allocation_id, status, body and updated_at of the job j->id. */
	int (*job_update)(struct store_conn *c, const struct job *j, char *detail);
	/* Takes over an unfinished job (status 0) whose updated_at is still seen,
	 * the value read before: sets it to j->updated_at.  One of several
	 * retries wins; the others get ERR_CONFLICT and change nothing. */
	int (*job_take)(struct store_conn *c, const struct job *j, int64_t seen, char *detail);
	int (*job_get)(struct store_conn *c, const char *id, struct job *out);
	/* A page of jobs, newest first (created_at, id); next_cursor as alloc_list's. */
	int (*job_list)(struct store_conn *c, const struct job_filter *f, store_job_cb cb,
			void *ctx, char *next_cursor);
	/* Up to max jobs whose manifests are due for removal (struct job_cleanup),
	 * oldest first; alloc_id non-NULL: only the job of that allocation.
	 * *n = how many were written to out. */
	int (*job_cleanup_due)(struct store_conn *c, const char *alloc_id, struct job_cleanup *out,
			       int max, int *n);
	/* Records that the job's manifests are gone from the repository (at > 0). */
	int (*job_cleanup_done)(struct store_conn *c, const char *job_id, int64_t at);
};

struct store_pool; /* private to store.c */

struct db_driver; /* store/db.h: what a backend provides */

/* Backends embed this as their first member. */
struct store {
	const struct store_ops *ops;
	const struct db_driver *drv;
	struct store_pool *pool;
	long fault_after; /* accessed atomically; < 0 = no fault injection */
	long full_at;     /* accessed atomically; util_now() of the last disk-full write, 0 = none */
};

/* Backends call this before executing each statement; true = fail it. */
bool store_fault_hit(struct store *s);

/* Every setting of a store: the one way they reach the backends. */
struct store_config {
	const char *url; /* "sqlite:PATH" (or a plain path), "postgres://..." / "postgresql://..." */
	int pool_size;   /* open connections at most (>= 1) */
	/* PostgreSQL statement and lock timeout in ms, 1..STORE_PG_TIMEOUT_MAX_MS (0 = 5000). */
	long pg_statement_timeout_ms;
};
#define STORE_PG_TIMEOUT_MAX_MS 3600000L

/*
 * Opens the store cfg describes and applies pending migrations.  Returns 0
 * and *out (owned by the caller, freed with store_close), or an error with
 * detail (ERR_INVALID for a bad setting).
 */
int store_open_config(const struct store_config *cfg, struct store **out, char *detail);
/* The same with every other setting at its default. */
int store_open(const char *url, int pool_size, struct store **out, char *detail);
void store_close(struct store *s);

/*
 * Backend constructor used by store_open() (added by the store module): a
 * SQLite store on the file at `path`, with no pool and no migrations yet.
 * Returns 0 and *out (owned by store_open's caller), ERR_NOMEM, or ERR_STORE
 * when a mutex or condition variable cannot be made.
 */
int store_sqlite_new(const char *path, struct store **out);

/*
 * SQLite group commit counters (tests, benches): allocate batch COMMITs that
 * succeeded and the allocate calls they made durable.  decisions > commits
 * means batches formed.  `s` must be a SQLite store.
 */
void store_sqlite_stats(struct store *s, long *commits, long *decisions);

/* Pool: acquire blocks until a connection is free; release returns it. */
int store_conn_acquire(struct store *s, struct store_conn **out);
/* acquire with a deadline: waits at most timeout_ms (< 0: no limit) for a
 * connection, then returns ERR_UNAVAILABLE.  The caller owns *out. */
int store_conn_acquire_within(struct store *s, long timeout_ms, struct store_conn **out);
void store_conn_release(struct store *s, struct store_conn *c);

/* The operations of the store a connection belongs to. */
const struct store_ops *store_conn_ops(struct store_conn *c);

/* "a,b" as the JSON array ["a","b"] ("" is []); NULL when out of memory. */
struct json_t *store_json_list(const char *joined);

/*
 * Bulk loading (the demo seed, thousands of small transactions):
 * durable=false makes this connection's commits stop waiting for the disk
 * (each is still atomic and the ledger rules hold; a power loss may lose
 * the last ones, a crash of the process does not); durable=true restores
 * the default, and the next commit flushes everything before it.  Call
 * outside a transaction; 0 or ERR_STORE.
 */
int store_conn_durable(struct store_conn *c, bool durable);

/* Backends embed this as the first member of their connection struct. */
struct store_conn {
	struct store *store;
	struct store_conn *next_free; /* pool free list, owned by store.c */
	char err[STORE_DETAIL_LEN];   /* the last failure's one-line detail */
	bool in_tx;                   /* a transaction is open (db.h) */
	bool keep;                    /* db_run: commit although the operation failed */
};

/* Drivers embed this as the first member of their rows cursor (db.h). */
struct db_rows {
	struct store_conn *conn;
};

/*
 * Fault injection for tests: after `n` more statements executed through this
 * store, the next one fails with ERR_STORE (n < 0 disables).  Used to prove
 * that every partial write rolls back.
 */
void store_fault_after(struct store *s, long n);

/*
 * Rows the store cannot read (a text that does not fit its field, labels
 * that are not a JSON object, an unknown status ...), written by something
 * other than this program.  Readers that walk many rows (the expiry sweep,
 * the allocate path's expiry, lists, the FOCUS export) get past such a row
 * after reporting it here, so one bad row never stops other requests; reading it
 * alone (GET) fails with ERR_STORE.  Thread-safe; the count is process-wide
 * (GET /metrics: plinth_store_bad_rows_total).
 */
void store_bad_row(const char *table, const char *id, const char *why);
long store_bad_rows_total(void);
/* Where store_bad_row reports (the daemon's log); NULL = stderr. */
void store_set_bad_row_log(void (*fn)(const char *table, const char *id, const char *why));
/* Where a failure to open a pool connection is reported (with the database's
 * words; the caller gets ERR_UNAVAILABLE, a 503); NULL = stderr. */
void store_set_conn_fail_log(void (*fn)(const char *why));

/*
 * The store's write health: a write that failed because the disk (or the
 * database's space) is full is reported here by the backend, which answers
 * ERR_UNAVAILABLE (503) for it.  store_write_full() is true while such a
 * failure happened within the last STORE_FULL_WINDOW_S seconds and no write
 * succeeded since (GET /readyz reports not-ready then).
 */
#define STORE_FULL_WINDOW_S 10
void store_note_write(struct store *s, bool full);
bool store_write_full(struct store *s);

#endif
