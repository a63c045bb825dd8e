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

/* Frame states, kept in the frame's headroom (struct bt_frame_meta). */
enum { BT_FREE = 0, BT_HELD = 1, BT_QUEUED = 2 };

/*
 * Frame state transitions.
 *
 * A frame's state is the word that says who owns it, and callers can race
 * on it: two Workers may pass the same HELD ref to xmit, unread or put at the
 * same time (a caller bug, but one that must not corrupt the pool). With a
 * plain "if (state == HELD) state = QUEUED" and no lock in common, both can
 * see HELD; the frame then enters a ring twice or the free stack twice, and
 * bt_queue_read hands it out twice. So:
 *
 *   HELD -> QUEUED   bt_xmit, bt_queue_unread,    bt_claim_held: under the
 *                    give_back_held                frame's pool lock
 *   HELD -> FREE     bt_pool_put                   under the pool lock
 *   any  -> FREE     bt_release_metas (frames      under the pool lock
 *                    the library owns)
 *   QUEUED -> HELD   bt_queue_read                 owner's checked move
 *   FREE -> HELD     bt_pool_alloc, take_one       owner's checked move
 *
 * Every move OUT OF HELD (the state in which the ref is in callers' hands)
 * is made with the frame's pool lock held, so for any one frame they are
 * serialised and exactly one racer wins; the loser finds the frame not HELD
 * (xmit and unread fail with -EINVAL, put counts a double return). The
 * other two moves need no lock: a QUEUED frame is owned by the one thread
 * that removed its ring slot under the consumer lock, a FREE frame by the
 * one that popped it off the free stack under the pool lock, and no other
 * move starts from QUEUED or FREE except the owner's own. They check the
 * state anyway (bt_state_take), so an entry whose headroom a caller
 * scribbled on is skipped and counted as corrupt, not handed out twice.
 *
 * Why a lock and not a compare-and-swap per frame: a CAS is a locked
 * instruction on x86, paid per frame; the pool lock is paid per bulk (per
 * run of one pool's frames), and put already took it per bulk to push.
 * Measured in one session on a shared 2-core machine, alternating builds,
 * 64-byte frames (ring_bench: best of 7 repeats, median over the runs the
 * machine left undisturbed; cycle: alloc/xmit/read/put of 16 in one
 * thread, ns per frame, best of 7):
 *
 *                        ring_bench Mpps                    cycle
 *                        1p1c bulk16  2p1q bulk16  1p1c single  ns/frame
 *   unchecked (before)      71.7         70.7         45.0        11.8
 *   CAS on every move       55.8         56.5         34.2        14.2
 *   CAS out of HELD only    59.8         58.5         39.4        13.3
 *   pool lock (this)        71.0         69.7         38.9        12.1
 *
 * Bulk 16 costs about 1-2%; single-packet mode pays a second lock per
 * frame (-13%), as much as the CAS designs do. That is the price of one
 * xmit call per packet, which is what single-packet mode exists to show.
 * Lock order: a ring lock may be held while taking a pool lock (read's copy
 * landing, unread's drops), never the reverse, and never two pool locks.
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

/* Resolve a ring entry (frame address) to its meta and pool, trusting the
 * ref in the headroom only after checking it against the address. */
struct bt_frame_meta *bt_frame_from_ptr(uintptr_t ptr, struct bt_pool **pool);

/* Return frames that the library owns (queued or dropped) to their pools,
 * grouping runs of the same pool under one lock. */
void bt_release_refs(const uint32_t *refs, uint32_t n);
void bt_release_metas(struct bt_frame_meta *const *metas, uint32_t n);

/* Claim held frames HELD -> QUEUED under their pool locks (pool.c). With
 * BT_CLAIM_ALL: all valid (data window too) or none, -EINVAL; without:
 * the held ones, returns how many. */
#define BT_CLAIM_ALL 1
int32_t bt_claim_held(const uint32_t *refs, uint32_t n,
		      struct bt_frame_meta **metas, int flags);

/* Take one frame of pool p for the library's own use (copied entries). */
struct bt_frame_meta *bt_pool_take_one(struct bt_pool *p);

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
	/* Written by the reader (set before sleeping) and producers (clear
	 * when waking): its own line, touched once per flush, not per frame. */
	alignas(BT_CACHE_LINE) _Atomic uint32_t need_wakeup;
	int efd;
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

#endif /* BT_INTERNAL_H */
