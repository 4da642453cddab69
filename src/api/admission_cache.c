/*
 * admission_cache.c - the webhook's short-lived allocation cache (see
 * admission_cache.h for the staleness bound).
 */
#include "api/admission_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define STRIPES 64 /* locks; slot i is under lock i % STRIPES */

struct slot {
	bool used;
	int64_t born_us; /* when the read that filled it began */
	struct admission_cached v;
};

static struct slot slots[ADMISSION_CACHE_SLOTS];
static pthread_mutex_t locks[STRIPES] = {[0 ... STRIPES - 1] = PTHREAD_MUTEX_INITIALIZER};
static atomic_uint_fast64_t generation;

/* FNV-1a: ids are short and random enough. */
static size_t slot_of(const char *id)
{
	uint64_t h = 1469598103934665603ULL;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	return (size_t)(h % ADMISSION_CACHE_SLOTS);
}

static bool copy_str(char *dst, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (src == NULL || n >= ADMISSION_CACHE_ID_LEN)
		return false;
	memcpy(dst, src, n + 1);
	return true;
}

/* Points v->facts' strings at v's own copies. */
static void rebase(struct admission_cached *v)
{
	v->facts.id = v->id;
	v->facts.team = v->team;
	v->facts.team_namespaces = v->team_namespaces;
	v->facts.gpu_type = v->gpu_type;
}

uint64_t admission_cache_generation(void)
{
	return atomic_load(&generation);
}

void admission_cache_put(const struct admission_alloc *a, int64_t read_start_us, uint64_t gen)
{
	struct admission_cached v;
	size_t nsl = a->team_namespaces ? strlen(a->team_namespaces) : 0;
	if (!copy_str(v.id, a->id) || !copy_str(v.team, a->team) ||
	    !copy_str(v.gpu_type, a->gpu_type) || a->team_namespaces == NULL ||
	    nsl >= sizeof(v.team_namespaces))
		return;
	memcpy(v.team_namespaces, a->team_namespaces, nsl + 1);
	v.facts = *a;
	rebase(&v);
	size_t i = slot_of(v.id);
	pthread_mutex_lock(&locks[i % STRIPES]);
	/* Checked under the lock forget() takes too: a transition since `gen`
	 * may be newer than what the read saw. */
	if (atomic_load(&generation) == gen) {
		slots[i].used = true;
		slots[i].born_us = read_start_us;
		slots[i].v = v;
		rebase(&slots[i].v);
	}
	pthread_mutex_unlock(&locks[i % STRIPES]);
}

bool admission_cache_get(const char *id, int64_t now_us, struct admission_cached *out)
{
	if (id == NULL || strlen(id) >= ADMISSION_CACHE_ID_LEN)
		return false;
	size_t i = slot_of(id);
	bool hit = false;
	pthread_mutex_lock(&locks[i % STRIPES]);
	struct slot *s = &slots[i];
	if (s->used && strcmp(s->v.id, id) == 0 && now_us >= s->born_us &&
	    now_us - s->born_us < ADMISSION_CACHE_TTL_US) {
		*out = s->v;
		hit = true;
	}
	pthread_mutex_unlock(&locks[i % STRIPES]);
	if (hit)
		rebase(out);
	return hit;
}

void admission_cache_forget(const char *id)
{
	if (id == NULL || strlen(id) >= ADMISSION_CACHE_ID_LEN)
		return;
	size_t i = slot_of(id);
	pthread_mutex_lock(&locks[i % STRIPES]);
	atomic_fetch_add(&generation, 1);
	if (slots[i].used && strcmp(slots[i].v.id, id) == 0)
		slots[i].used = false;
	pthread_mutex_unlock(&locks[i % STRIPES]);
}

void admission_cache_clear(void)
{
	for (size_t k = 0; k < STRIPES; k++)
		pthread_mutex_lock(&locks[k]);
	atomic_fetch_add(&generation, 1);
	for (size_t i = 0; i < ADMISSION_CACHE_SLOTS; i++)
		slots[i].used = false;
	for (size_t k = STRIPES; k-- > 0;)
		pthread_mutex_unlock(&locks[k]);
}
