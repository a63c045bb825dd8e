/* SPDX-License-Identifier: MIT */
/*
 * bt_lock: a small adaptive lock for queues that several "CPUs" share.
 *
 * Why not a plain spin lock: our machines have 2 cores and users run 4
 * producer Workers. A spinner that waits for a holder who has been preempted
 * burns its whole time slice, and throughput collapses. Why not a plain
 * mutex: on the uncontended path (one producer per queue, the common case)
 * we want a single compare-and-swap, no syscall.
 *
 * So: one CAS on the fast path; on contention spin briefly (the holder keeps
 * the lock for one bulk, a few hundred nanoseconds), then park in the kernel
 * on a futex until the holder wakes us. The state word says whether anyone is
 * parked, so an uncontended release is one atomic exchange and no syscall.
 *
 *   state 0: free
 *   state 1: held, nobody parked
 *   state 2: held, somebody may be parked (release must wake one)
 */
#ifndef BT_LOCK_H
#define BT_LOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spins before parking. A bulk of 64 frames holds the lock for well under a
 * microsecond; 128 rounds of `pause` cover that without wasting a slice. */
#define BT_LOCK_SPINS 128

struct bt_lock {
	_Atomic uint32_t state;
};

static inline void bt_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void bt_lock_init(struct bt_lock *l)
{
	atomic_init(&l->state, 0);
}

/* 1 if the thread slept, 0 if the kernel found *addr != expect and
 * returned at once (EAGAIN): no lost wake-up between our exchange below and
 * the sleep. */
static inline int bt_futex_wait(_Atomic uint32_t *addr, uint32_t expect)
{
	return syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expect, NULL, NULL,
		       0) == 0 ||
	       errno != EAGAIN;
}

static inline void bt_futex_wake_one(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* What bt_lock_acquire had to do, for contention statistics: nothing
 * (0), spin for a holder (BT_LOCK_CONTENDED), or also sleep in the kernel
 * (BT_LOCK_CONTENDED | BT_LOCK_PARKED). Callers that do not count ignore
 * it. */
#define BT_LOCK_CONTENDED 1
#define BT_LOCK_PARKED 2

static int bt_lock_acquire_slow(struct bt_lock *l)
{
	uint32_t c;

	/* Phase 1: spin. Read before CAS so waiters share the line instead
	 * of bouncing it between cores with failed writes. */
	for (int i = 0; i < BT_LOCK_SPINS; i++) {
		bt_cpu_relax();
		c = atomic_load_explicit(&l->state, memory_order_relaxed);
		if (c == 0 &&
		    atomic_compare_exchange_weak_explicit(&l->state, &c, 1,
							  memory_order_acquire,
							  memory_order_relaxed))
			return BT_LOCK_CONTENDED;
	}
	/* Phase 2: park. Marking the word 2 before sleeping tells the holder
	 * to wake someone; if the exchange returns 0 we took the lock (in
	 * state 2, which costs at most one spurious wake later). Only an
	 * actual futex sleep counts as parked. */
	int ret = BT_LOCK_CONTENDED;
	c = atomic_exchange_explicit(&l->state, 2, memory_order_acquire);
	while (c != 0) {
		if (bt_futex_wait(&l->state, 2))
			ret = BT_LOCK_CONTENDED | BT_LOCK_PARKED;
		c = atomic_exchange_explicit(&l->state, 2,
					     memory_order_acquire);
	}
	return ret;
}

/* Acquire ordering: everything the previous holder wrote before releasing
 * is visible to us (the ring's producer index, the slots it filled).
 * Returns 0 when the lock was free (one CAS), else BT_LOCK_CONTENDED,
 * possibly with BT_LOCK_PARKED. */
static inline int bt_lock_acquire(struct bt_lock *l)
{
	uint32_t c = 0;

	if (__builtin_expect(atomic_compare_exchange_strong_explicit(
				     &l->state, &c, 1, memory_order_acquire,
				     memory_order_relaxed),
			     1))
		return 0;
	return bt_lock_acquire_slow(l);
}

/* Release ordering pairs with the acquire above. */
static inline void bt_lock_release(struct bt_lock *l)
{
	if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
		bt_futex_wake_one(&l->state);
}

#endif /* BT_LOCK_H */
