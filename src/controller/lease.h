/*
 * lease.h - leader election between controller replicas with a
 * coordination.k8s.io/v1 Lease, the way client-go does it: the holder renews
 * the lease every few seconds; another replica takes it over only when it
 * has seen the lease unchanged for a whole lease duration (by its own
 * monotonic clock, so clocks of different machines never matter).
 *
 * Over kube.c only; never decides anything but "am I the leader now".
 */
#ifndef PLINTH_CONTROLLER_LEASE_H
#define PLINTH_CONTROLLER_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#include "controller/kube.h"

struct kube_lease {
	const struct kube_config *cfg;
	char path[512];      /* /apis/coordination.k8s.io/v1/namespaces/NS/leases/NAME */
	char collection[320]; /* .../namespaces/NS/leases */
	char name[254];
	char identity[256];  /* holderIdentity: hostname + pid */
	long duration_s;     /* leaseDurationSeconds */
	/* What we saw last, and when (monotonic microseconds). */
	char seen_rv[64];
	int64_t seen_at_us;
	bool leader;
	int64_t renewed_at_us; /* our last successful acquire or renew */
};

/*
 * Prepares l for the lease ns/name with the given identity (copied) and
 * duration.  Returns 0, or ERR_INVALID when a name does not fit.
 */
int kube_lease_init(struct kube_lease *l, const struct kube_config *cfg, const char *ns,
	const char *name, const char *identity, long duration_s);

/*
 * One round: creates, renews or takes over the lease when it may.  now_us is
 * the monotonic clock.  Returns whether this replica is the leader after the
 * round; a failed renew keeps the leadership until two thirds of the
 * duration have passed since the last success.  detail gets a line when
 * something went wrong (else "").
 */
bool kube_lease_round(struct kube_lease *l, int64_t now_us, char *detail);

/* Gives the lease up (holderIdentity emptied) when we hold it, so another
 * replica takes over at once.  Best effort. */
void kube_lease_release(struct kube_lease *l);

#endif
