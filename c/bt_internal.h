/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by pool.c, device.c and lib.c. Not part of the API.
 */
#ifndef BT_INTERNAL_H
#define BT_INTERNAL_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bt_lock.h"
#include "bt_ring.h"
#include "bulktap.h"

/*
 * A full memory barrier, for the doorbell protocol's store-then-load on
 * both sides (see device.c). gcc's ThreadSanitizer does not model
 * atomic_thread_fence and refuses to build it (-Werror=tsan); under it we
 * use a sequentially consistent read-modify-write of a private word, which
 * is a full barrier too and which TSan does model. Every other build uses
 * the fence itself.
 */
#if defined(__SANITIZE_THREAD__)
extern _Atomic int bt_tsan_fence_word;
#define bt_full_fence()                                                       \
	((void)atomic_fetch_add_explicit(&bt_tsan_fence_word, 0,              \
					 memory_order_seq_cst))
#else
#define bt_full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

#define BT_LIKELY(x) __builtin_expect(!!(x), 1)
#define BT_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Frame states (enum bt_frame_state) are in bulktap.h: callers read them. */

/*
 * Frame state transitions.
 *
 * A frame's state says who owns it: FREE (its pool), HELD (a caller),
 * QUEUED (a ring, or the library on its way to one).
 *
 *   HELD -> QUEUED   bt_xmit, bt_queue_unread,    bt_claim_held
 *                    give_back_held
 *   HELD -> FREE     bt_pool_put                   under the pool lock
 *   any  -> FREE     bt_release_metas (frames      under the pool lock
 *                    the library owns)
 *   QUEUED -> HELD   bt_queue_read                 owner's checked move
 *   FREE -> HELD     bt_pool_alloc, take_one       owner's checked move
 *
 * Every move is checked (bt_state_take): a frame not in the expected state
 * is refused (xmit and unread: -EINVAL, taking nothing; put: a counted
 * double return) or, where the library finds it in a ring or on the free
 * stack, skipped and counted as corrupt. So a frame returned twice, a ref
 * twice in one bulk, a frame of another pool, or a state byte a caller
 * scribbled on never puts a frame in two places. Two puts of one frame
 * racing in two threads meet at the pool lock: one wins.
 *
 * The contract, as in the kernel: a HELD ref belongs to ONE thread at a
 * time. If two threads pass the same held ref to xmit (or xmit and put) at
 * the same instant, a release build does not arbitrate: both may see HELD.
 * Arbitrating costs the fast path either a second lock per xmit (the
 * frame's pool lock: then xmit is no longer one lock per bulk, and the pool
 * lock's line bounces between producer and reader cores) or a locked
 * read-modify-write per frame. Measured in this repository (ring_bench,
 * 1 producer + 1 reader on 2 cores, 64-byte frames, 5 x 0.3 s, medians, two
 * alternating rounds on a quiet machine):
 *
 *                                1p1c single   1p1c bulk16   2p1q bulk16
 *   checked moves (release)       33.6-36.4     57.1-58.7     61.9-71.7
 *   pool lock in xmit (strict)    19.8-21.5     46.7-48.2     52.1-56.5
 *   CAS out of HELD               28.0-31.0     42.6-50.1     37.2-54.4
 *
 * (Mpps; the same run's figures on one line.) So release builds keep the
 * kernel's design, and BT_STRICT_OWNERSHIP builds (the debug and asan
 * flavours, the sanitizer and fuzz tests) take the pool lock in
 * bt_claim_held and serialise racing owners: exactly one wins, the other
 * gets -EINVAL or a counted double return. Lock order: a ring lock may be
 * held while taking a pool lock (read's copy landing, unread's drops),
 * never the reverse, and never two pool locks.
 *
 * All accesses are relaxed atomics (a plain mov on x86) so that statistics
 * and diagnostics reading the state from other threads are not data races
 * for the compiler or ThreadSanitizer. Ordering comes from the locks and
 * from the ring slot's release/acquire pair (xmit to read).
 */
static inline uint8_t bt_state_peek(const struct bt_frame_meta *m)
{
	return __atomic_load_n(&m->state, __ATOMIC_RELAXED);
}

static inline void bt_state_set(struct bt_frame_meta *m, uint8_t s)
{
	__atomic_store_n(&m->state, s, __ATOMIC_RELAXED);
}

/* A checked move by whoever may make it (the owner, or the holder of the
 * pool lock for moves out of HELD): 1 if the frame was in `from` and is now
 * in `to`, 0 (untouched) if not. */
static inline int bt_state_take(struct bt_frame_meta *m, uint8_t from,
				uint8_t to)
{
	if (BT_UNLIKELY(bt_state_peek(m) != from))
		return 0;
	bt_state_set(m, to);
	return 1;
}

/*
 * Thread slots. Statistics are "per CPU" in the sense that matters in user
 * space: per thread. A thread leases one of BT_SLOTS exclusive slots on first
 * use and gives it back when it exits, so counters in its slot are written by
 * that thread only (plain load + store, no lock prefix, no shared line).
 * Threads beyond BT_SLOTS share the last slot and use atomic adds there.
 * (Per sched_getcpu() counters would need restartable sequences to be exact:
 * a thread can be preempted between reading its CPU and writing the counter.)
 */
#define BT_SLOTS 64
#define BT_SLOT_SHARED BT_SLOTS
int bt_thread_slot(void);

#define BT_COUNTERS 10

struct bt_counters {
	alignas(BT_CACHE_LINE) _Atomic uint64_t c[BT_COUNTERS];
};

static inline void bt_count(struct bt_counters *s, int slot, int i, uint64_t v)
{
	if (BT_LIKELY(slot != BT_SLOT_SHARED))
		atomic_store_explicit(&s->c[i],
				      atomic_load_explicit(&s->c[i],
							   memory_order_relaxed) +
					      v,
				      memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&s->c[i], v, memory_order_relaxed);
}

/*
 * Object lifetime for devices, in the spirit of sleepable RCU. Every call
 * that uses a device "enters" it: it bumps the in-flight count of its thread
 * slot, then checks that the device is still open and of the same
 * generation as the handle. Close marks the device closed, then waits for
 * every slot's count to fall to zero before it frees anything.
 *
 * Why this is safe: enter is (increment; load open) and close is
 * (store closed; load counts), all sequentially consistent. Whatever the
 * interleaving, either the caller sees "closed" and backs out, or close sees
 * the caller's increment and waits for it. The device struct itself is never
 * freed (a closed slot is reused by the next device), so even a stale
 * handle only ever reads valid memory.
 */
struct bt_inflight {
	alignas(BT_CACHE_LINE) _Atomic int64_t n;
};

struct bt_life {
	_Atomic uint32_t gen;
	_Atomic uint32_t open;
	struct bt_inflight in[BT_SLOTS + 1];
};

static inline int bt_enter(struct bt_life *l, uint32_t gen, int slot)
{
	atomic_fetch_add_explicit(&l->in[slot].n, 1, memory_order_seq_cst);
	if (BT_LIKELY(atomic_load_explicit(&l->open, memory_order_seq_cst) &&
		      atomic_load_explicit(&l->gen, memory_order_relaxed) ==
			      gen))
		return 0;
	atomic_fetch_sub_explicit(&l->in[slot].n, 1, memory_order_release);
	return -ENXIO;
}

static inline void bt_leave(struct bt_life *l, int slot)
{
	/* Release: our last reads of the device happen before close can see
	 * the count drop and free the rings. */
	atomic_fetch_sub_explicit(&l->in[slot].n, 1, memory_order_release);
}

void bt_retire(struct bt_life *l);

/*
 * Pools. A pool's struct, frame region and free stack are never handed back
 * to the allocator: destroy returns the physical pages (MADV_DONTNEED) and a
 * later pool reuses the slot. A TypeScript view or a stale ref in another
 * Worker can therefore never fault; it reads zeros and fails validation.
 * Every pool operation runs under the pool's lock, once per bulk.
 */
struct bt_pool {
	_Atomic uint32_t gen;
	_Atomic uint32_t open;
	uint32_t slot;
	uint32_t nframes;
	uint32_t frame_size;
	uint32_t headroom;
	uint8_t *base;
	size_t region_bytes; /* in use */
	size_t region_cap; /* mapped */
	struct bt_lock lock;
	uint32_t *free_stack;
	uint32_t nfree;
	uint32_t stack_cap;
	uint32_t devices; /* devices whose home pool this is (table lock) */
	_Atomic uint64_t alloc_failed;
	_Atomic uint64_t double_return;
	_Atomic uint64_t foreign_return;
	_Atomic uint64_t invalid_ref;
	_Atomic uint64_t corrupt;
};

extern struct bt_pool *_Atomic bt_pools[BT_MAX_POOLS + 1];
extern pthread_mutex_t bt_table_lock;

struct bt_pool *bt_pool_get(uint32_t handle);

static inline struct bt_frame_meta *bt_frame_at(struct bt_pool *p,
						uint32_t idx)
{
	return (struct bt_frame_meta *)(p->base + (size_t)idx * p->frame_size);
}

/* The meta of a ref's frame, or NULL if the ref names no frame of an open
 * pool. Sets *pool. */
static inline struct bt_frame_meta *bt_ref_meta(uint32_t ref,
						struct bt_pool **pool)
{
	uint32_t slot = ref >> BT_REF_INDEX_BITS;
	uint32_t idx = ref & BT_REF_INDEX_MASK;
	struct bt_pool *p = bt_pools[slot];

	if (BT_UNLIKELY(!p || !atomic_load_explicit(&p->open,
						    memory_order_acquire) ||
			idx >= p->nframes))
		return NULL;
	*pool = p;
	return bt_frame_at(p, idx);
}

/* Is the frame's data window inside the frame? Summed in 64 bits: len is
 * caller-written, and a 32-bit sum would wrap for len near 2^32. */
static inline int bt_meta_len_ok(const struct bt_pool *p,
				 const struct bt_frame_meta *m)
{
	return m->data_off >= sizeof(struct bt_frame_meta) &&
	       (uint64_t)m->data_off + m->len <= p->frame_size;
}

/* A plain frame: no vnet header, no offload (what allocation gives). */
static inline void bt_meta_clear_offload(struct bt_frame_meta *m)
{
	m->vnet_len = 0;
	m->vnet_flags = 0;
	m->gso_type = 0;
	m->hdr_len = 0;
	m->gso_size = 0;
	m->csum_start = 0;
	m->csum_offset = 0;
	memset(m->spare, 0, sizeof(m->spare));
}

/* Resolve a ring entry (frame address) to its meta and pool, trusting the
 * ref in the headroom only after checking it against the address. */
struct bt_frame_meta *bt_frame_from_ptr(uintptr_t ptr, struct bt_pool **pool);

/* Return frames that the library owns (queued or dropped) to their pools,
 * grouping runs of the same pool under one lock. */
void bt_release_refs(const uint32_t *refs, uint32_t n);
void bt_release_metas(struct bt_frame_meta *const *metas, uint32_t n);

/* Claim held frames HELD -> QUEUED (see "Frame state transitions"). With
 * BT_CLAIM_ALL: all valid (data window too) or none, -EINVAL; without:
 * the held ones, returns how many. Strict builds do it under the frames'
 * pool locks (pool.c); release builds inline the owner's checked move, so
 * xmit's only lock is the queue's. */
#define BT_CLAIM_ALL 1

/* Claim frame m of pool p (HELD -> QUEUED); with BT_CLAIM_ALL its data
 * window must be valid too. 1 if claimed. */
static inline int bt_claim_one(struct bt_pool *p, struct bt_frame_meta *m,
			       int flags)
{
	return (!(flags & BT_CLAIM_ALL) || bt_meta_len_ok(p, m)) &&
	       bt_state_take(m, BT_HELD, BT_QUEUED);
}

/* Give back the claims of metas[0..k): the frames are ours (QUEUED, in no
 * ring), so nobody else moves them and plain stores do. Returns -EINVAL. */
static inline int32_t bt_claim_undo(struct bt_frame_meta **metas, uint32_t k)
{
	for (uint32_t j = 0; j < k; j++)
		bt_state_set(metas[j], BT_HELD);
	return -EINVAL;
}

#ifdef BT_STRICT_OWNERSHIP
int32_t bt_claim_held(const uint32_t *refs, uint32_t n,
		      struct bt_frame_meta **metas, int flags);
#else
static inline int32_t bt_claim_held(const uint32_t *refs, uint32_t n,
				    struct bt_frame_meta **metas, int flags)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct bt_pool *p;
		struct bt_frame_meta *m = bt_ref_meta(refs[i], &p);

		if (BT_LIKELY(m && bt_claim_one(p, m, flags)))
			metas[k++] = m;
		else if (flags & BT_CLAIM_ALL)
			return bt_claim_undo(metas, k);
	}
	return (int32_t)k;
}
#endif

/* Did a bt_xmit that failed as a whole give the frames back itself?
 * -ENXIO (the device is closed) and -ENODEV (its kernel end is gone) did;
 * any other error (-EINVAL, ...) took none of them: the caller still holds
 * them. */
static inline int bt_xmit_returned_frames(int32_t r)
{
	return r == -ENXIO || r == -ENODEV;
}

/* Take one frame of pool p for the library's own use (copied entries). */
struct bt_frame_meta *bt_pool_take_one(struct bt_pool *p);
/* Up to n frames of p, HELD, into metas[]: how many (fewer when p runs
 * out, counted as alloc_failed), or -ENXIO if p is closed. */
int32_t bt_pool_take(struct bt_pool *p, struct bt_frame_meta **metas,
		     uint32_t n);

/* Copied entries: bytes from outside any pool, tagged with BT_TAG_COPY. */
struct bt_copy {
	uint32_t len;
	uint32_t pad;
	uint64_t tstamp_ns;
	uint8_t data[];
};

/* Devices (device.c). Per-thread transmit counters, in bt_counters.c[]. */
enum {
	TX_PACKETS,
	TX_BYTES,
	TX_DROPPED,
	TX_CALLS,
	TX_FLUSHES,
	TX_WAKEUPS_SENT,
	TX_WAKEUPS_AVOIDED,
	TX_LOCKS,
	TX_LOCK_CONTENDED, /* producer lock was held: spun or parked */
	TX_LOCK_PARKS, /* producer lock wait slept on the futex */
};
_Static_assert(TX_LOCK_PARKS < BT_COUNTERS, "bt_counters too small");

struct bt_queue {
	struct bt_ring ring;
	/* The doorbell (device.c): BT_DB_ARMED, set by a reader before it
	 * sleeps and cleared by the producer that rings, plus the number of
	 * readers inside bt_queue_sleep (BT_DB_SLEEPER each); wake_seq is the
	 * futex word they sleep on, bumped by every ring. Their own line,
	 * touched once per flush, not per frame. */
	alignas(BT_CACHE_LINE) _Atomic uint32_t doorbell;
	_Atomic uint32_t wake_seq;
	/* Reader-side counters, written under the consumer lock. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t rx_packets;
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t rx_batches;
	_Atomic uint64_t rx_sleeps;
	_Atomic uint64_t rx_dropped;
};

/*
 * A device backend (tap.c): the kernel end of a device's queues. stop runs
 * in bt_dev_close after the device is marked closed and its doorbells rung,
 * BEFORE the in-flight calls are waited for and the rings drained: it wakes
 * callers sleeping in backend waits and joins the backend's threads, so the
 * rings have no reader left when they are drained. release runs last, after
 * the drain, and frees what the backend owns (fds, memory).
 */
struct bt_dev;
struct bt_backend_ops {
	void (*stop)(struct bt_dev *d);
	void (*release)(struct bt_dev *d);
	/* BT_XMIT_DIRECT: hand the claimed (QUEUED) frames metas[0..n) to
	 * queue qi's kernel end now, from the calling thread; every frame
	 * goes home. NULL: the backend has no direct path. */
	void (*direct)(struct bt_dev *d, uint32_t qi,
		       struct bt_frame_meta **metas, uint32_t n);
};

struct bt_dev {
	struct bt_life life;
	uint32_t slot;
	uint32_t nqueues;
	uint32_t ring_size;
	uint32_t pool_handle;
	struct bt_pool *pool;
	struct bt_queue *queues;
	_Atomic uintptr_t *slots;
	struct bt_counters tx[BT_SLOTS + 1];
	const struct bt_backend_ops *ops; /* NULL: in-memory device */
	void *backend;
	/* Set (negative errno) by a backend that can never transmit again
	 * (a deleted TAP): bt_xmit then returns it and gives the frames back. */
	_Atomic int32_t backend_dead;
	/* Set (under bt_table_lock) while bt_dev_close works outside the
	 * lock: the slot is not free for bt_dev_create until it is clear. */
	uint32_t closing;
};

/* Enter device h (see struct bt_life); NULL if it is not open. Pair with
 * bt_leave(&d->life, ts). */
struct bt_dev *bt_dev_enter(uint32_t h, int ts);

#define BT_DB_ARMED 1u
#define BT_DB_SLEEPER 2u

/* Sleep on queue q's doorbell (protocol at the top of device.c) until it
 * has entries (1), deadline_ns (bt_now_ns time, 0: none) passes or
 * *cancel (if not NULL) is set (0), or gone(ctx) says the owner is going
 * away (-1); gone and *cancel are read after each look at the wake
 * sequence, so whoever sets them and then rings is heard. A ring that
 * finds the queue empty again (another reader was first) sleeps on. */
int bt_queue_sleep(struct bt_queue *q, uint64_t deadline_ns,
		   int (*gone)(void *ctx), void *ctx,
		   const _Atomic uint32_t *cancel);
/* Wake every reader sleeping on q, whatever the ring holds. */
void bt_queue_ring(struct bt_queue *q);

#endif /* BT_INTERNAL_H */
