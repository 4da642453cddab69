/*
 * ops_jobs.c - (being written: issue 12)
 */
#include "store/db.h"
#include "store/ops.h"
