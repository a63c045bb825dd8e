/* SPDX-License-Identifier: MIT */
/*
 * bt_ring: a bounded ring of tagged pointers, shaped after the kernel's
 * ptr_ring design (the ideas, written anew here).
 *
 * The whole design in five rules:
 *
 * 1. A slot's value is its full/empty flag. Zero means empty. The producer
 *    never reads the consumer's index and the consumer never reads the
 *    producer's: each side looks only at the slot it is about to use. So the
 *    two indexes live on separate cache lines and never bounce.
 *
 * 2. The producer publishes an entry with a release store; the consumer reads
 *    it with an acquire load. Everything the producer wrote to the frame
 *    (data, length in the headroom, timestamp) before the store is visible to
 *    the consumer after the load.
 *
 * 3. The consumer does not zero each slot as it reads it. It zeroes them in
 *    batches of two cache lines (16 pointers), and in reverse order: the last
 *    slot it zeroes is the first one the producer will test. A producer that
 *    is waiting for room therefore finds the whole batch free at once and
 *    does not fight the consumer for lines the consumer is still writing.
 *    Consequence: after a consume the ring may still look full to the
 *    producer until the batch is zeroed. "Consumed one" does not mean "the
 *    next produce succeeds".
 *
 * 4. Zeroing uses relaxed stores. The consumer has already loaded the entry
 *    (same location, so coherence orders that load before the zeroing store);
 *    the slot carries no other data, so no stronger ordering is needed.
 *
 * 5. Producers serialise on producer_lock, consumers on consumer_lock. Callers
 *    take the lock once per bulk, not per entry: that is the point of the
 *    library. Unconsume writes slots behind the consumer head that a producer
 *    may be about to test, so it takes both locks.
 *
 * Entries are tagged in bit 0 (BT_TAG_COPY): pool frames are 64-byte aligned,
 * so bit 0 of their address is always clear; copied buffers set it. The
 * reader uses the tag to free each kind the right way.
 */
#ifndef BT_RING_H
#define BT_RING_H

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bt_lock.h"

#define BT_CACHE_LINE 64
#define BT_TAG_COPY ((uintptr_t)1)
#define BT_TAG_MASK ((uintptr_t)1)

struct bt_ring {
	/* Producer side: touched only under producer_lock. */
	alignas(BT_CACHE_LINE) uint32_t producer;
	struct bt_lock producer_lock;

	/* Consumer side: touched only under consumer_lock. */
	alignas(BT_CACHE_LINE) uint32_t consumer_head; /* next slot to read */
	uint32_t consumer_tail; /* first consumed slot not yet zeroed */
	struct bt_lock consumer_lock;

	/* Read-only after init. */
	alignas(BT_CACHE_LINE) uint32_t size;
	uint32_t batch;
	_Atomic uintptr_t *queue;
};

static inline void bt_ring_init(struct bt_ring *r, _Atomic uintptr_t *slots,
				uint32_t size)
{
	r->producer = 0;
	r->consumer_head = 0;
	r->consumer_tail = 0;
	bt_lock_init(&r->producer_lock);
	bt_lock_init(&r->consumer_lock);
	r->size = size;
	r->queue = slots;
	for (uint32_t i = 0; i < size; i++)
		atomic_init(&slots[i], 0);
	/* Two cache lines of pointers per zeroing batch. A batch larger than
	 * half the ring would make the producer see "full" for half the ring
	 * after consumes, so small rings zero slot by slot. */
	r->batch = 2 * BT_CACHE_LINE / sizeof(uintptr_t);
	if (r->batch > size / 2 || r->batch == 0)
		r->batch = 1;
}

/* Producer, under producer_lock. 0 on success, -ENOSPC when the slot is
 * still occupied (full, or consumed but not yet zeroed). */
static inline int bt_ring_produce(struct bt_ring *r, uintptr_t entry)
{
	_Atomic uintptr_t *slot = &r->queue[r->producer];

	/* Relaxed: a stale non-zero value only makes us report "full" a
	 * little early, which callers must handle anyway (rule 3). */
	if (atomic_load_explicit(slot, memory_order_relaxed))
		return -ENOSPC;
	/* Release: publish the frame's contents together with the pointer. */
	atomic_store_explicit(slot, entry, memory_order_release);
	if (++r->producer >= r->size)
		r->producer = 0;
	return 0;
}

/* Consumer, under consumer_lock: the entry at the head, or 0 if empty.
 * Acquire pairs with the producer's release (rule 2). */
static inline uintptr_t bt_ring_peek(struct bt_ring *r)
{
	return atomic_load_explicit(&r->queue[r->consumer_head],
				    memory_order_acquire);
}

/* Consumer, under consumer_lock: step past the entry just peeked, zeroing
 * the finished batch in reverse when it is complete (rule 3). */
static inline void bt_ring_advance(struct bt_ring *r)
{
	uint32_t head = r->consumer_head++;

	if (r->consumer_head - r->consumer_tail >= r->batch ||
	    r->consumer_head >= r->size) {
		/* head .. tail, highest first: the producer tests the tail
		 * slot first, so it becomes free last. */
		for (;;) {
			atomic_store_explicit(&r->queue[head], 0,
					      memory_order_relaxed);
			if (head == r->consumer_tail)
				break;
			head--;
		}
		r->consumer_tail = r->consumer_head;
	}
	if (r->consumer_head >= r->size) {
		r->consumer_head = 0;
		r->consumer_tail = 0;
	}
}

/* Consumer, under consumer_lock: take up to n entries. */
static inline uint32_t bt_ring_consume_batch(struct bt_ring *r, uintptr_t *out,
					     uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		uintptr_t e = bt_ring_peek(r);

		if (!e)
			break;
		out[i] = e;
		bt_ring_advance(r);
	}
	return i;
}

/* Consumer, under consumer_lock: is there anything to read? */
static inline int bt_ring_empty(struct bt_ring *r)
{
	return bt_ring_peek(r) == 0;
}

/* Entries currently held (consumed-but-unzeroed slots not counted). Takes
 * no lock: a snapshot for statistics and accounting, exact only when the
 * ring is quiet. */
static inline uint32_t bt_ring_count(struct bt_ring *r)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < r->size; i++)
		if (atomic_load_explicit(&r->queue[i], memory_order_relaxed))
			n++;
	/* Consumed but not yet zeroed slots still hold stale pointers. */
	uint32_t stale = r->consumer_head - r->consumer_tail;
	return n > stale ? n - stale : 0;
}

/*
 * Hand n entries back to the consumer side so they are read again first,
 * in their original order. Caller holds BOTH locks (rule 5). Entries that do
 * not fit (the producer has filled the slots behind the head) are passed to
 * drop() and the count of those is returned.
 */
static inline uint32_t bt_ring_unconsume(struct bt_ring *r, uintptr_t *entries,
					 uint32_t n,
					 void (*drop)(uintptr_t entry, void *ctx),
					 void *ctx)
{
	uint32_t head;
	uint32_t dropped = 0;

	/* Zero the pending batch first, so every slot behind the head is
	 * empty unless a producer has wrapped around and refilled it. */
	head = r->consumer_head;
	while (head > r->consumer_tail)
		atomic_store_explicit(&r->queue[--head], 0,
				      memory_order_relaxed);
	r->consumer_tail = r->consumer_head;

	/* Walk backwards from the head, last entry first, while slots are
	 * empty. The entries end up directly before the unread ones: no hole
	 * the reader could stop at. */
	while (n) {
		head = r->consumer_head ? r->consumer_head - 1 : r->size - 1;
		if (atomic_load_explicit(&r->queue[head], memory_order_relaxed))
			break;
		atomic_store_explicit(&r->queue[head], entries[--n],
				      memory_order_relaxed);
		r->consumer_head = head;
		r->consumer_tail = head;
	}
	while (n) {
		drop(entries[--n], ctx);
		dropped++;
	}
	return dropped;
}

#endif /* BT_RING_H */
