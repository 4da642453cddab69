/*
 * costsum.h - cost totals by group key: the rows of GET /v1/costs (and of
 * the rollup rebuild's sums), exact 128-bit sums of integer micros, kept
 * sorted by key.  Pure: the caller owns the rows; no I/O.
 */
#ifndef PLINTH_CORE_COSTSUM_H
#define PLINTH_CORE_COSTSUM_H

#include <stddef.h>
#include <stdint.h>

enum cost_group {
	COST_BY_TEAM,
	COST_BY_PROJECT,
	COST_BY_GPU_TYPE,
	COST_BY_DAY,
	COST_BY_MONTH,
};

/* Sums over many allocations and teams exceed int64 micros (11 teams holding
 * the largest budget, 1e18 micros each, already do): cost rows are 128-bit,
 * exact for any number of rows. */
typedef __int128 cost_sum_t;

#define COST_KEY_LEN 128 /* two ids (STORE_ID_LEN) */

struct cost_row {
	char key[COST_KEY_LEN]; /* team id, "team/project", gpu type id, "YYYY-MM-DD" or "YYYY-MM" */
	cost_sum_t spent;          /* micros */
	cost_sum_t accrued;        /* micros, running allocations at `now` */
	cost_sum_t reserved;       /* micros */
	cost_sum_t gpu_microhours; /* GPU-hours x 1e6: used (completed) + so far (running) */
};

/* Rows kept sorted by key (strcmp); rows owned (free) by the caller. */
struct cost_table {
	struct cost_row *rows;
	size_t n, cap;
};

/* Adds to the row of key, inserted zeroed when missing.  0, ERR_NOMEM, or
 * ERR_OVERFLOW when a 128-bit total would overflow. */
int cost_table_add(struct cost_table *acc, const char *key, int64_t spent, int64_t accrued,
		 int64_t reserved, int64_t gpu_mh);

/* The group key of a cost by g: the team, "team/project", the GPU type, or
 * the UTC day / month ("YYYY-MM-DD" / "YYYY-MM") of instant t, into key
 * (COST_KEY_LEN bytes).  The rollup rows and the scans spell it alike. */
void cost_group_key(enum cost_group g, int64_t t, const char *team, const char *project,
		    const char *gpu, char *key);

#endif
