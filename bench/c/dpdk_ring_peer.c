/* SPDX-License-Identifier: MIT */
/*
 * The DPDK rte_ring peer: the same harness (ring_peer.c), the same pool of
 * objects (peer.h), the same thread placement as bt_ring; only the queue is
 * DPDK's. The ring lives on plain aligned memory, sized with
 * rte_ring_get_memsize and set up with rte_ring_init: no EAL, no hugepages,
 * no rte_ring_create (which needs the EAL's memzones).
 *
 *   dpdk_mpmc  flags 0: the default multi-producer / multi-consumer
 *              lockless head/tail CAS mode;
 *   dpdk_rts   RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ: "relaxed tail sync",
 *              DPDK's mode for overcommitted threads (a preempted producer
 *              does not stall the others as long).
 *
 * Single mode is rte_ring_enqueue (one object); bulk mode is
 * rte_ring_enqueue_burst (as many as fit, the same "accepted prefix"
 * contract as bt_xmit). The consumer uses rte_ring_dequeue_burst.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ring.h>

#include "peer.h"

struct dpdk_state {
	struct rte_ring *ring;
	struct peer_pool *pool;
};

static int dpdk_setup_flags(void **state, unsigned int flags)
{
	struct dpdk_state *s = calloc(1, sizeof(*s));
	ssize_t size;

	if (!s)
		return -ENOMEM;
	size = rte_ring_get_memsize(PEER_RING_SIZE);
	if (size < 0) {
		free(s);
		return (int)size;
	}
	/* rte_ring wants cache-line alignment; round the size up so
	 * aligned_alloc accepts it. */
	s->ring = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);
	s->pool = peer_pool_new();
	if (!s->ring || !s->pool) {
		free(s->ring);
		peer_pool_free(s->pool);
		free(s);
		return -ENOMEM;
	}
	int rc = rte_ring_init(s->ring, "bulktap_peer", PEER_RING_SIZE, flags);
	if (rc < 0) {
		free(s->ring);
		peer_pool_free(s->pool);
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int dpdk_setup_mpmc(void **state)
{
	return dpdk_setup_flags(state, 0);
}

static int dpdk_setup_rts(void **state)
{
	return dpdk_setup_flags(state, RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ);
}

static void dpdk_teardown(void *state)
{
	struct dpdk_state *s = state;

	free(s->ring);
	peer_pool_free(s->pool);
	free(s);
}

static uint32_t dpdk_alloc(void *state, uintptr_t *objs, uint32_t n)
{
	return peer_pool_alloc(((struct dpdk_state *)state)->pool, objs, n);
}

static void dpdk_put(void *state, const uintptr_t *objs, uint32_t n)
{
	peer_pool_put(((struct dpdk_state *)state)->pool, objs, n);
}

static uint32_t dpdk_enqueue(void *state, const uintptr_t *objs, uint32_t n,
			     int last, int producer)
{
	struct dpdk_state *s = state;

	(void)last;
	(void)producer;
	if (n == 1)
		return rte_ring_enqueue(s->ring, (void *)objs[0]) == 0;
	return rte_ring_enqueue_burst(s->ring, (void *const *)objs, n, NULL);
}

static uint32_t dpdk_dequeue(void *state, uintptr_t *objs, uint32_t max)
{
	struct dpdk_state *s = state;

	return rte_ring_dequeue_burst(s->ring, (void **)objs, max, NULL);
}

static struct peer_fields dpdk_fields(void *state, uintptr_t obj)
{
	(void)state;
	return peer_pool_fields(obj);
}

const struct peer_impl peer_dpdk_mpmc = {
	.name = "dpdk_mpmc",
	.describe = "DPDK rte_ring, default MP/MC (CAS), rte_ring_init on "
		    "plain memory",
	.setup = dpdk_setup_mpmc,
	.teardown = dpdk_teardown,
	.alloc = dpdk_alloc,
	.put = dpdk_put,
	.enqueue = dpdk_enqueue,
	.dequeue = dpdk_dequeue,
	.fields = dpdk_fields,
	.frees_refused = 0,
	.lock_per_call = 0, /* lockless: a CAS loop, no lock */
	.counters = NULL,
};

const struct peer_impl peer_dpdk_rts = {
	.name = "dpdk_rts",
	.describe = "DPDK rte_ring, MP/MC relaxed tail sync (RTS)",
	.setup = dpdk_setup_rts,
	.teardown = dpdk_teardown,
	.alloc = dpdk_alloc,
	.put = dpdk_put,
	.enqueue = dpdk_enqueue,
	.dequeue = dpdk_dequeue,
	.fields = dpdk_fields,
	.frees_refused = 0,
	.lock_per_call = 0, /* lockless: a CAS loop, no lock */
	.counters = NULL,
};
