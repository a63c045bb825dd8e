/* SPDX-License-Identifier: MIT */
/*
 * The interface every ring implementation measured by ring_peer provides.
 *
 * An implementation moves "objects" (pointer-sized values) from producer
 * threads to one consumer thread through ONE shared queue, and keeps a pool
 * the objects come from and go back to. ring_peer.c owns the threads, the
 * clock, the thread placement and the output; an implementation owns only
 * these calls, so two implementations differ in their queue and nothing else.
 */
#ifndef BT_PEER_H
#define BT_PEER_H

#include <stdint.h>

/* Geometry shared by every implementation, equal to bench/c/ring_bench.c:
 * a ring of 4096 slots and 2048 objects in flight, so the ring never fills
 * and backpressure comes from the pool. */
#define PEER_RING_SIZE 4096
#define PEER_POOL_OBJECTS 2048
#define PEER_OBJECT_SIZE 128
#define PEER_HEADROOM 64 /* BT_META_SIZE: the frame metadata, nothing more */
#define PEER_FRAME_LEN 64
#define PEER_MAX_BULK 256

/* What a producer writes into an object and the consumer reads back. */
struct peer_fields {
	uint32_t *len;
	uint64_t *stamp;
};

/* What an implementation counted itself during one run (see counters). */
struct peer_counters {
	uint64_t locks; /* producer lock acquisitions */
	uint64_t wakeups; /* doorbells that woke a sleeping reader */
	int has_locks;
	int has_wakeups;
};

struct peer_impl {
	const char *name; /* JSON "impl" */
	const char *describe; /* one line for the header */
	/* Set up a pool and one queue for one measured point. 0 or -errno. */
	int (*setup)(void **state);
	void (*teardown)(void *state);
	/* Take up to n objects from the pool. Returns how many. */
	uint32_t (*alloc)(void *state, uintptr_t *objs, uint32_t n);
	/* Give n objects back to the pool. */
	void (*put)(void *state, const uintptr_t *objs, uint32_t n);
	/* Enqueue n objects as ONE operation (one lock, one CAS loop, one
	 * call): a prefix is accepted; the caller returns the rest to the
	 * pool and counts them as dropped. `last` marks the last enqueue of
	 * a chunk (the flush of a poll cycle). */
	uint32_t (*enqueue)(void *state, const uintptr_t *objs, uint32_t n,
			    int last, int producer);
	/* Dequeue up to max objects as ONE operation. */
	uint32_t (*dequeue)(void *state, uintptr_t *objs, uint32_t max);
	/* Where an object keeps its length and timestamp. */
	struct peer_fields (*fields)(void *state, uintptr_t obj);
	/* 1 if enqueue itself returns the refused suffix to the pool (as
	 * bt_xmit does); 0 if the caller must. */
	int frees_refused;
	/* 1 if every enqueue call takes exactly one producer lock, so the
	 * harness's call count is the lock count (bt_ring). */
	int lock_per_call;
	/* Read the implementation's own counters after a run, before
	 * teardown; NULL if it keeps none (rte_ring: lockless, no doorbell). */
	void (*counters)(void *state, struct peer_counters *out);
};

/* A pool every raw ring implementation shares: PEER_POOL_OBJECTS objects of
 * PEER_OBJECT_SIZE bytes, 64-byte aligned, on a stack under one bt_lock.
 * Using the same pool for bt_ring and rte_ring means the only code that
 * differs between those two measurements is the ring. */
struct peer_pool;
struct peer_pool *peer_pool_new(void);
void peer_pool_free(struct peer_pool *p);
uint32_t peer_pool_alloc(struct peer_pool *p, uintptr_t *objs, uint32_t n);
void peer_pool_put(struct peer_pool *p, const uintptr_t *objs, uint32_t n);
struct peer_fields peer_pool_fields(uintptr_t obj);

extern const struct peer_impl peer_bt_ring;
extern const struct peer_impl peer_bulktap_api;
#ifdef BT_PEER_HAVE_DPDK
extern const struct peer_impl peer_dpdk_mpmc;
extern const struct peer_impl peer_dpdk_rts;
#endif

#endif /* BT_PEER_H */
