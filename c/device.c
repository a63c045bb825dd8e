/* SPDX-License-Identifier: MIT */
/*
 * In-memory multi-queue devices: a TAP device without the kernel. Each queue
 * is a ring plus a doorbell that wakes its readers.
 *
 * Transmit (bt_xmit) follows the kernel's bulk ndo_xdp_xmit:
 *   1. validate every frame (all or nothing: -EINVAL leaves them with the
 *      caller);
 *   2. pick the queue once, cpu % nqueues: several CPUs may share a queue,
 *      so the ring stays multi-producer;
 *   3. take that queue's producer lock once, enqueue until the ring is full,
 *      release;
 *   4. return the frames that did not fit to their pools, count them as
 *      tx_dropped, and return how many were accepted (a prefix);
 *   5. with BT_XMIT_FLUSH, ring the doorbell: wake the readers, but only if
 *      one said it sleeps.
 *
 * The doorbell (no lost wake-up, no syscall while readers work, and a
 * broadcast: one flush wakes EVERY reader asleep on the queue, in any
 * Worker). Per queue: doorbell = an ARMED bit plus a count of sleepers,
 * and wake_seq, a futex word that only ever grows.
 *
 *   reader (bt_queue_sleep)             producer (queue_kick)
 *   doorbell += SLEEPER
 *   loop:
 *     seen = wake_seq (acquire)         publish entries (release)
 *     doorbell |= ARMED (seq_cst RMW)   full fence
 *     full fence                        ARMED? -> fetch_and ~ARMED (seq_cst);
 *     ring non-empty? -> out, 1           if it was set: wake_seq++ (release),
 *     device gone? -> out, -1             FUTEX_WAKE every sleeper
 *     futex_wait(wake_seq, seen)
 *     (kicked -> out, 0; else loop)
 *   doorbell -= SLEEPER, and the last sleeper out clears ARMED (one CAS)
 *
 * Why no wake-up is lost:
 *   - Store, fence, load on both sides (ARMED then the ring; the entries
 *     then ARMED): at least one side sees the other's store. Either the
 *     reader finds the entries, or the producer's RMW comes after the
 *     reader's in the doorbell's order. Then it finds ARMED set, unless an
 *     earlier producer cleared it in between, and a producer that clears
 *     it always rings. Nothing else clears ARMED while a sleeper is
 *     counted (the last-out CAS needs the count at one, its own).
 *   - The futex: the bump follows an RMW that read (through the doorbell's
 *     release sequence) the reader's seq_cst ARMED store, so the reader's
 *     load of seen happens before the bump and cannot return it.
 *     futex_wait either finds wake_seq != seen and returns at once, or
 *     sleeps first (the kernel compares and queues under one lock) and the
 *     FUTEX_WAKE after the bump wakes it.
 *   - A woken reader loops: it re-arms, fences and looks again. So a ring
 *     by another producer (whose entries another reader took first) that
 *     cleared ARMED before our producer looked costs a turn, not a wake-up:
 *     the re-arm is a new store-fence-load against our producer.
 *   - Broadcast: nothing is consumed. Each sleeper compares wake_seq with
 *     its own seen, so the first reader out cannot hide the ring from the
 *     others. (The eventfd this replaces lost that: the first reader's
 *     read reset the count and the second slept on.)
 *   - seen read after a bump sees, by its release, everything before it:
 *     the entries (flush), open == 0 (close), stopping (TAP stop).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <limits.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "bt_internal.h"

static struct bt_dev *_Atomic devs[BT_MAX_DEVS];

#define DEV_SLOT_MASK (BT_MAX_DEVS - 1)
#define DEV_GEN_SHIFT 12
#define DEV_GEN_MASK ((1u << 19) - 1)

static struct bt_dev *dev_enter(uint32_t h, int ts)
{
	struct bt_dev *d = devs[h & DEV_SLOT_MASK];

	if (!d || bt_enter(&d->life, h >> DEV_GEN_SHIFT, ts))
		return NULL;
	return d;
}

struct bt_dev *bt_dev_enter(uint32_t h, int ts)
{
	return dev_enter(h, ts);
}

static uint32_t queue_index(struct bt_dev *d, int32_t cpu)
{
	if (cpu < 0) {
		cpu = sched_getcpu();
		if (cpu < 0)
			cpu = 0;
	}
	return (uint32_t)cpu % d->nqueues;
}

static void drop_entry(uintptr_t e, void *ctx)
{
	(void)ctx;
	if (e & BT_TAG_COPY) {
		free((void *)(e & ~BT_TAG_MASK));
	} else {
		struct bt_frame_meta *m = (struct bt_frame_meta *)e;
		bt_release_metas(&m, 1);
	}
}

/* Free every entry left in a ring; returns how many there were. Caller
 * holds both locks or knows nobody else can touch the ring. */
static uint32_t ring_drain(struct bt_ring *r)
{
	uintptr_t e[64];
	struct bt_frame_meta *frames[64];
	uint32_t k, total = 0;

	while ((k = bt_ring_consume_batch(r, e, 64)) > 0) {
		uint32_t nf = 0;
		for (uint32_t i = 0; i < k; i++) {
			if (e[i] & BT_TAG_COPY)
				free((void *)(e[i] & ~BT_TAG_MASK));
			else
				frames[nf++] = (struct bt_frame_meta *)e[i];
		}
		bt_release_metas(frames, nf);
		total += k;
	}
	return total;
}

static void dev_free_queues(struct bt_dev *d)
{
	free(d->queues);
	free(d->slots);
	d->queues = NULL;
	d->slots = NULL;
}

int32_t bt_dev_create(uint32_t pool_handle, uint32_t nqueues,
		      uint32_t ring_size)
{
	struct bt_dev *d;
	struct bt_pool *pool;
	uint32_t slot;
	int32_t ret;

	if (nqueues < 1 || nqueues > BT_MAX_QUEUES)
		return -EINVAL;
	if (ring_size < BT_MIN_RING || ring_size > BT_MAX_RING)
		return -EINVAL;

	pthread_mutex_lock(&bt_table_lock);
	pool = bt_pool_get(pool_handle);
	if (!pool) {
		ret = -ENXIO;
		goto out;
	}
	/* A slot whose device is closing is still in use: its close has
	 * dropped the table lock and is draining the rings. */
	for (slot = 1; slot < BT_MAX_DEVS; slot++)
		if (!devs[slot] || (!atomic_load(&devs[slot]->life.open) &&
				    !devs[slot]->closing))
			break;
	if (slot == BT_MAX_DEVS) {
		ret = -EMFILE;
		goto out;
	}
	d = devs[slot];
	if (!d) {
		d = aligned_alloc(BT_CACHE_LINE, sizeof(*d));
		if (!d) {
			ret = -ENOMEM;
			goto out;
		}
		memset(d, 0, sizeof(*d));
		d->slot = slot;
		devs[slot] = d;
	}
	d->queues = aligned_alloc(BT_CACHE_LINE,
				  sizeof(struct bt_queue) * nqueues);
	d->slots = calloc((size_t)nqueues * ring_size, sizeof(uintptr_t));
	if (!d->queues || !d->slots) {
		free(d->queues);
		free(d->slots);
		d->queues = NULL;
		d->slots = NULL;
		ret = -ENOMEM;
		goto out;
	}
	memset(d->queues, 0, sizeof(struct bt_queue) * nqueues);
	for (uint32_t i = 0; i < nqueues; i++) {
		struct bt_queue *q = &d->queues[i];
		bt_ring_init(&q->ring, d->slots + (size_t)i * ring_size,
			     ring_size);
	}
	memset(d->tx, 0, sizeof(d->tx));
	d->ops = NULL;
	d->backend = NULL;
	atomic_store(&d->backend_dead, 0);
	d->nqueues = nqueues;
	d->ring_size = ring_size;
	d->pool = pool;
	d->pool_handle = pool_handle;
	pool->devices++;

	uint32_t gen = (atomic_load(&d->life.gen) + 1) & DEV_GEN_MASK;
	if (gen == 0)
		gen = 1;
	atomic_store(&d->life.gen, gen);
	atomic_store_explicit(&d->life.open, 1, memory_order_seq_cst);
	ret = (int32_t)(slot | (gen << DEV_GEN_SHIFT));
out:
	pthread_mutex_unlock(&bt_table_lock);
	return ret;
}

/*
 * Returns how many queued entries were returned to their pools.
 *
 * The table lock is held only to decide (mark the device closed and its
 * slot closing) and to finish (give the slot back): never while waiting.
 * Waiting for in-flight calls and joining a backend's threads can take as
 * long as a reader's batch or a TAP write, and every create, close and
 * pool destroy of every Worker would stall behind it. In between, the slot
 * cannot be reused (bt_dev_create skips closing slots), a second close of
 * the same handle fails with -ENXIO (open is 0), and the home pool cannot
 * be destroyed (its device count still includes this device).
 */
int32_t bt_dev_close(uint32_t h)
{
	struct bt_dev *d;
	uint32_t drained = 0;

	pthread_mutex_lock(&bt_table_lock);
	d = devs[h & DEV_SLOT_MASK];
	if (!d || !atomic_load(&d->life.open) ||
	    atomic_load(&d->life.gen) != (h >> DEV_GEN_SHIFT)) {
		pthread_mutex_unlock(&bt_table_lock);
		return -ENXIO;
	}
	/* Closed first: from here every new call backs out with -ENXIO. */
	d->closing = 1;
	atomic_store_explicit(&d->life.open, 0, memory_order_seq_cst);
	pthread_mutex_unlock(&bt_table_lock);

	/* Wake sleeping readers so they notice and leave (open is 0 before
	 * the ring: see the doorbell). */
	for (uint32_t i = 0; i < d->nqueues; i++)
		bt_queue_ring(&d->queues[i]);
	/* The backend's threads read the rings without entering the device:
	 * join them before the drain, or they would race it. */
	if (d->ops)
		d->ops->stop(d);
	/* Then wait until no call is inside the device. */
	bt_retire(&d->life);
	for (uint32_t i = 0; i < d->nqueues; i++)
		drained += ring_drain(&d->queues[i].ring);
	if (d->ops)
		d->ops->release(d);
	d->ops = NULL;
	d->backend = NULL;
	dev_free_queues(d);

	pthread_mutex_lock(&bt_table_lock);
	d->pool->devices--;
	d->closing = 0; /* the slot is free for the next device */
	pthread_mutex_unlock(&bt_table_lock);
	return (int32_t)drained;
}

int32_t bt_dev_info(uint32_t h, uint64_t *out, uint32_t n)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);
	uint64_t v[BT_DI_COUNT];

	if (!d)
		return -ENXIO;
	v[BT_DI_QUEUES] = d->nqueues;
	v[BT_DI_RING_SIZE] = d->ring_size;
	v[BT_DI_POOL] = d->pool_handle;
	bt_leave(&d->life, ts);
	if (!out && n)
		return -EFAULT;
	if (n > BT_DI_COUNT)
		n = BT_DI_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_DI_COUNT;
}

int32_t bt_queue_for_cpu(uint32_t h, int32_t cpu)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);
	int32_t q;

	if (!d)
		return -ENXIO;
	q = (int32_t)queue_index(d, cpu);
	bt_leave(&d->life, ts);
	return q;
}

void bt_queue_ring(struct bt_queue *q)
{
	atomic_fetch_add_explicit(&q->wake_seq, 1, memory_order_release);
	syscall(SYS_futex, &q->wake_seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL,
		NULL, 0);
}

/* Ring the doorbell of one queue if a reader armed it (see the protocol at
 * the top). The plain load first keeps a busy queue's flushes to a read of
 * a shared line. */
static void queue_kick(struct bt_queue *q, struct bt_counters *c, int ts)
{
	bt_count(c, ts, TX_FLUSHES, 1);
	bt_full_fence();
	if ((atomic_load_explicit(&q->doorbell, memory_order_relaxed) &
	     BT_DB_ARMED) &&
	    (atomic_fetch_and_explicit(&q->doorbell, ~BT_DB_ARMED,
				       memory_order_seq_cst) &
	     BT_DB_ARMED)) {
		bt_queue_ring(q);
		bt_count(c, ts, TX_WAKEUPS_SENT, 1);
	} else {
		bt_count(c, ts, TX_WAKEUPS_AVOIDED, 1);
	}
}

/* Frames handed to a closed device go home, so nothing is lost. Each is
 * claimed as it is collected (fuzz_api found this: the same ref twice in
 * the bulk used to be pushed twice onto the free stack). Returns how many
 * went home. */
static uint32_t give_back_held(const uint32_t *refs, uint32_t n)
{
	struct bt_frame_meta *metas[BT_MAX_BULK];
	int32_t k = bt_claim_held(refs, n, metas, 0);

	if (k <= 0)
		return 0;
	bt_release_metas(metas, (uint32_t)k);
	return (uint32_t)k;
}

/* One producer-lock acquisition, and what it cost (bt_lock_acquire's
 * return): contended (a holder was there), parked (we slept on it). */
static void count_lock(struct bt_counters *c, int ts, int lk)
{
	bt_count(c, ts, TX_LOCKS, 1);
	if (BT_UNLIKELY(lk)) {
		bt_count(c, ts, TX_LOCK_CONTENDED, 1);
		if (lk & BT_LOCK_PARKED)
			bt_count(c, ts, TX_LOCK_PARKS, 1);
	}
}

int32_t bt_xmit(uint32_t h, const uint32_t *refs, uint32_t n, uint32_t flags,
		int32_t cpu)
{
	struct bt_frame_meta *metas[BT_MAX_BULK];
	struct bt_dev *d;
	struct bt_queue *q;
	struct bt_counters *c;
	uint64_t bytes = 0;
	uint32_t sent;
	int ts, lk;

	if (flags & ~BT_XMIT_FLAGS_MASK)
		return -EINVAL;
	if (n > BT_MAX_BULK)
		return -E2BIG;
	if (!refs && n)
		return -EFAULT;
	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d) {
		give_back_held(refs, n);
		return -ENXIO;
	}
	/* A backend that lost its kernel end (a deleted TAP) takes nothing
	 * more: the frames go home, counted as dropped. */
	int32_t dead = atomic_load_explicit(&d->backend_dead,
					    memory_order_relaxed);
	if (BT_UNLIKELY(dead)) {
		bt_count(&d->tx[ts], ts, TX_DROPPED, give_back_held(refs, n));
		bt_leave(&d->life, ts);
		return dead;
	}

	/* 1. Validate all before touching any: -EINVAL takes nothing. Each
	 * frame is claimed (HELD -> QUEUED) as it passes, so the same ref
	 * twice in one bulk is claimed once and fails the second time instead
	 * of entering the ring twice (two threads' bulks too, in strict
	 * builds). On failure the claims made so far are undone. */
	if (BT_UNLIKELY(bt_claim_held(refs, n, metas, BT_CLAIM_ALL) < 0)) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}

	/* 2-3 for a backend's kernel end, with BT_XMIT_DIRECT: written now,
	 * from this thread, without the ring. */
	if ((flags & BT_XMIT_DIRECT) && d->ops && d->ops->direct) {
		c = &d->tx[ts];
		for (sent = 0; sent < n; sent++)
			bytes += metas[sent]->len;
		d->ops->direct(d, queue_index(d, cpu), metas, n);
		bt_count(c, ts, TX_PACKETS, n);
		bt_count(c, ts, TX_BYTES, bytes);
		bt_count(c, ts, TX_CALLS, 1);
		bt_leave(&d->life, ts);
		return (int32_t)n;
	}

	/* 2-3. One queue, one lock, as many as fit. */
	q = &d->queues[queue_index(d, cpu)];
	lk = bt_lock_acquire(&q->ring.producer_lock);
	for (sent = 0; sent < n; sent++) {
		struct bt_frame_meta *m = metas[sent];
		/* Read len before the release store that publishes the
		 * frame: after it the reader may take the frame, return it,
		 * and another thread may allocate and rewrite it. */
		uint32_t len = m->len;

		/* The frame is already QUEUED (step 1), before the release
		 * store that publishes it: the reader may take it at once. */
		if (bt_ring_produce(&q->ring, (uintptr_t)m))
			break; /* m and the rest stay QUEUED: ours, dropped */
		bytes += len;
	}
	bt_lock_release(&q->ring.producer_lock);

	/* 4. The rest goes home, counted; or, with BT_XMIT_KEEP, back to
	 * the caller (they are QUEUED and ours: nobody else moves them). */
	c = &d->tx[ts];
	if (sent < n && (flags & BT_XMIT_KEEP)) {
		bt_claim_undo(metas + sent, n - sent);
	} else if (sent < n) {
		bt_release_metas(metas + sent, n - sent);
		bt_count(c, ts, TX_DROPPED, n - sent);
	}
	bt_count(c, ts, TX_PACKETS, sent);
	bt_count(c, ts, TX_BYTES, bytes);
	bt_count(c, ts, TX_CALLS, 1);
	count_lock(c, ts, lk);

	/* 5. Doorbell. */
	if (flags & BT_XMIT_FLUSH)
		queue_kick(q, c, ts);
	bt_leave(&d->life, ts);
	return (int32_t)sent;
}

int32_t bt_xmit_copy(uint32_t h, const uint8_t *data, const uint32_t *lens,
		     uint32_t n, uint32_t flags, int32_t cpu)
{
	uintptr_t copies[BT_MAX_BULK];
	struct bt_dev *d;
	struct bt_queue *q;
	struct bt_counters *c;
	uint64_t bytes = 0, off = 0;
	uint32_t sent, maxlen;
	int ts, lk;

	if (flags & ~BT_XMIT_FLUSH) /* copies are never the caller's to keep */
		return -EINVAL;
	if (n > BT_MAX_BULK)
		return -E2BIG;
	if ((!lens || !data) && n)
		return -EFAULT;
	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	int32_t dead = atomic_load_explicit(&d->backend_dead,
					    memory_order_relaxed);
	if (BT_UNLIKELY(dead)) {
		bt_leave(&d->life, ts); /* see bt_xmit: nothing copied */
		return dead;
	}
	/* A copy must fit a frame of the device's pool when it is read. */
	maxlen = d->pool->frame_size - d->pool->headroom;
	for (uint32_t i = 0; i < n; i++) {
		if (lens[i] > maxlen) {
			bt_leave(&d->life, ts);
			return -EINVAL;
		}
	}
	uint64_t now = bt_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		struct bt_copy *cp = malloc(sizeof(*cp) + lens[i]);
		if (!cp) {
			for (uint32_t j = 0; j < i; j++)
				free((void *)(copies[j] & ~BT_TAG_MASK));
			bt_leave(&d->life, ts);
			return -ENOMEM;
		}
		cp->len = lens[i];
		cp->tstamp_ns = now;
		memcpy(cp->data, data + off, lens[i]);
		off += lens[i];
		copies[i] = (uintptr_t)cp | BT_TAG_COPY;
	}
	q = &d->queues[queue_index(d, cpu)];
	lk = bt_lock_acquire(&q->ring.producer_lock);
	for (sent = 0; sent < n; sent++) {
		if (bt_ring_produce(&q->ring, copies[sent]))
			break;
		bytes += lens[sent];
	}
	bt_lock_release(&q->ring.producer_lock);
	c = &d->tx[ts];
	for (uint32_t i = sent; i < n; i++)
		free((void *)(copies[i] & ~BT_TAG_MASK));
	if (sent < n)
		bt_count(c, ts, TX_DROPPED, n - sent);
	bt_count(c, ts, TX_PACKETS, sent);
	bt_count(c, ts, TX_BYTES, bytes);
	bt_count(c, ts, TX_CALLS, 1);
	count_lock(c, ts, lk);
	if (flags & BT_XMIT_FLUSH)
		queue_kick(q, c, ts);
	bt_leave(&d->life, ts);
	return (int32_t)sent;
}

int32_t bt_flush(uint32_t h, int32_t queue)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);

	if (!d)
		return -ENXIO;
	/* -1 names every queue; any other number must be a queue. (-2 and
	 * below used to ring every queue too: a bad queue number that did
	 * not fail.) */
	if (queue < -1 || queue >= (int32_t)d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	if (queue >= 0) {
		queue_kick(&d->queues[queue], &d->tx[ts], ts);
	} else {
		for (uint32_t i = 0; i < d->nqueues; i++)
			queue_kick(&d->queues[i], &d->tx[ts], ts);
	}
	bt_leave(&d->life, ts);
	return 0;
}

/* Land a copied entry in a frame of the device's pool, so TypeScript readers
 * only ever see pool frames. NULL (counted) when the pool is empty. */
static struct bt_frame_meta *copy_to_frame(struct bt_dev *d, uintptr_t e)
{
	struct bt_copy *cp = (struct bt_copy *)(e & ~BT_TAG_MASK);
	struct bt_frame_meta *m = bt_pool_take_one(d->pool);

	if (m) {
		/* At the pool's headroom, not m->data_off: the headroom is
		 * caller-writable even while the frame is free, and the
		 * length was checked against frame_size - headroom. */
		m->data_off = d->pool->headroom;
		memcpy((uint8_t *)m + d->pool->headroom, cp->data, cp->len);
		m->len = cp->len;
		m->tstamp_ns = cp->tstamp_ns;
	}
	free(cp);
	return m;
}

int32_t bt_queue_read(uint32_t h, uint32_t qi, uint32_t *refs, uint32_t max)
{
	uintptr_t e[64];
	struct bt_dev *d;
	struct bt_queue *q;
	uint64_t bytes = 0;
	uint32_t got = 0, k, dropped = 0;
	int ts;

	if (!refs && max)
		return -EFAULT;
	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	if (qi >= d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	q = &d->queues[qi];
	bt_lock_acquire(&q->ring.consumer_lock);
	while (got < max) {
		uint32_t want = max - got < 64 ? max - got : 64;
		k = bt_ring_consume_batch(&q->ring, e, want);
		/* Every frame's metadata line was last written by its producer,
		 * on another CPU as often as not: ask for all of them before
		 * touching the first, so the misses overlap instead of
		 * following one another. */
		for (uint32_t i = 0; i < k; i++)
			if (!(e[i] & BT_TAG_COPY))
				__builtin_prefetch((const void *)e[i], 1);
		for (uint32_t i = 0; i < k; i++) {
			struct bt_frame_meta *m;
			struct bt_pool *p;

			if (e[i] & BT_TAG_COPY) {
				m = copy_to_frame(d, e[i]);
				if (!m) {
					dropped++;
					continue;
				}
			} else {
				m = bt_frame_from_ptr(e[i], &p);
				if (!m)
					continue; /* counted by the lookup */
				/* QUEUED -> HELD. We own the frame: we took
				 * its ring slot under the consumer lock, and
				 * nobody else moves a QUEUED frame, so no
				 * lock (bt_internal.h). An entry whose frame is not
				 * QUEUED (a scribbled headroom let it into a
				 * ring twice) is skipped and counted, not
				 * handed out a second time. */
				if (BT_UNLIKELY(!bt_state_take(m, BT_QUEUED,
							       BT_HELD))) {
					atomic_fetch_add(&p->corrupt, 1);
					continue;
				}
			}
			m->queue = (uint16_t)qi;
			bytes += m->len;
			refs[got++] = m->ref;
		}
		if (k < want)
			break;
	}
	/* Single reader per queue in practice, but the counters are read
	 * concurrently by stats: relaxed atomics, no RMW needed under lock. */
	atomic_store_explicit(&q->rx_packets, q->rx_packets + got,
			      memory_order_relaxed);
	atomic_store_explicit(&q->rx_bytes, q->rx_bytes + bytes,
			      memory_order_relaxed);
	if (got)
		atomic_store_explicit(&q->rx_batches, q->rx_batches + 1,
				      memory_order_relaxed);
	if (dropped)
		atomic_store_explicit(&q->rx_dropped, q->rx_dropped + dropped,
				      memory_order_relaxed);
	bt_lock_release(&q->ring.consumer_lock);
	bt_leave(&d->life, ts);
	return (int32_t)got;
}

static int queue_nonempty(struct bt_queue *q)
{
	int r;

	bt_lock_acquire(&q->ring.consumer_lock);
	r = !bt_ring_empty(&q->ring);
	bt_lock_release(&q->ring.consumer_lock);
	return r;
}

/*
 * The spin of bt_queue_read_spin. Looks take the consumer lock (ours in
 * practice: one reader per queue) and read one slot, the one the producer
 * writes next to us, so a look costs a cache miss only when something
 * changed. Between rounds of looks the CPU is offered to whoever else is
 * runnable on it: with the producer on the same CPU, spinning without
 * yielding would only delay the frames we wait for. The device stays
 * entered (a close waits for us) for at most spin_ns.
 */
#define SPIN_LOOKS 32

static int queue_spin(struct bt_queue *q, uint64_t spin_ns)
{
	uint64_t deadline = bt_now_ns() + spin_ns;

	for (;;) {
		for (int i = 0; i < SPIN_LOOKS; i++) {
			if (queue_nonempty(q))
				return 1;
			bt_cpu_relax();
		}
		if (bt_now_ns() >= deadline)
			return 0;
		sched_yield();
	}
}

int32_t bt_queue_read_spin(uint32_t h, uint32_t qi, uint32_t *refs,
			   uint32_t max, uint32_t spin_ns)
{
	int32_t n = bt_queue_read(h, qi, refs, max);
	struct bt_dev *d;
	int ts, ready;

	if (n != 0 || max == 0 || spin_ns == 0)
		return n;
	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	/* qi was checked by the read above, against the same device. */
	ready = queue_spin(&d->queues[qi],
			   spin_ns < BT_MAX_SPIN_NS ? spin_ns : BT_MAX_SPIN_NS);
	bt_leave(&d->life, ts);
	return ready ? bt_queue_read(h, qi, refs, max) : 0;
}

int32_t bt_queue_ready(uint32_t h, uint32_t qi)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);
	int32_t r;

	if (!d)
		return -ENXIO;
	if (qi >= d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	r = queue_nonempty(&d->queues[qi]);
	bt_leave(&d->life, ts);
	return r;
}

/* One futex sleep on wake_seq while it still reads seen, at most until
 * deadline (ns, 0: none). Returns when woken, interrupted, timed out or
 * the value differs; the caller looks again either way. */
static void seq_sleep(_Atomic uint32_t *seq, uint32_t seen, uint64_t deadline)
{
	struct timespec rel, *tp = NULL;

	if (deadline) {
		uint64_t now = bt_now_ns();
		if (now >= deadline)
			return;
		rel.tv_sec = (time_t)((deadline - now) / 1000000000ull);
		rel.tv_nsec = (long)((deadline - now) % 1000000000ull);
		tp = &rel;
	}
	syscall(SYS_futex, seq, FUTEX_WAIT_PRIVATE, seen, tp, NULL, 0);
}

int bt_queue_sleep(struct bt_queue *q, uint64_t deadline_ns,
		   int (*gone)(void *ctx), void *ctx,
		   const _Atomic uint32_t *cancel)
{
	uint32_t old, next;
	int ret, slept = 0;

	atomic_fetch_add_explicit(&q->doorbell, BT_DB_SLEEPER,
				  memory_order_seq_cst);
	for (;;) {
		/* seen before ARMED: see "The futex" at the top. */
		uint32_t seen = atomic_load_explicit(&q->wake_seq,
						     memory_order_acquire);
		atomic_fetch_or_explicit(&q->doorbell, BT_DB_ARMED,
					 memory_order_seq_cst);
		bt_full_fence();
		if (queue_nonempty(q)) {
			ret = 1;
			break;
		}
		if (gone(ctx)) {
			ret = -1;
			break;
		}
		/* The canceller stores *cancel before bt_queue_kick rings: a
		 * sleeper that saw the ring's bump sees the store, one that
		 * did not is woken by it (see "The futex" at the top). */
		if ((cancel && atomic_load_explicit(cancel,
						    memory_order_acquire)) ||
		    (deadline_ns && bt_now_ns() >= deadline_ns)) {
			ret = 0;
			break;
		}
		if (!slept++)
			atomic_fetch_add_explicit(&q->rx_sleeps, 1,
						  memory_order_relaxed);
		seq_sleep(&q->wake_seq, seen, deadline_ns);
	}
	/* Out: one fewer sleeper; the last one out disarms, so a busy reader
	 * costs producers no syscall. One CAS on the word that counts the
	 * sleepers: a reader that arrives meanwhile is either counted first
	 * (ARMED stays) or arms after us. */
	old = atomic_load_explicit(&q->doorbell, memory_order_relaxed);
	do {
		next = old - BT_DB_SLEEPER;
		if (next < BT_DB_SLEEPER)
			next = 0;
	} while (!atomic_compare_exchange_weak_explicit(
		&q->doorbell, &old, next, memory_order_seq_cst,
		memory_order_relaxed));
	return ret;
}

static int dev_gone(void *ctx)
{
	struct bt_dev *d = ctx;

	return !atomic_load_explicit(&d->life.open, memory_order_seq_cst);
}

/* Block until the queue has entries (1), the timeout passes (0), or the
 * device closes (-ENXIO). Every reader asleep on the queue wakes on a flush
 * (the doorbell is a broadcast). Meant to be called from a thread that may
 * sleep: Deno calls it as a nonblocking FFI symbol on its blocking pool. */
int32_t bt_queue_wait(uint32_t h, uint32_t qi, int32_t timeout_ms)
{
	return bt_queue_wait_cancellable(h, qi, timeout_ms, NULL);
}

int32_t bt_queue_wait_cancellable(uint32_t h, uint32_t qi, int32_t timeout_ms,
				  const uint32_t *cancel)
{
	struct bt_dev *d;
	int ts, ret;
	uint64_t deadline = 0;

	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	if (qi >= d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	if (queue_nonempty(&d->queues[qi])) {
		bt_leave(&d->life, ts);
		return 1;
	}
	if (timeout_ms >= 0)
		deadline = bt_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	/* deadline 0 is "none": timeout 0 at time 0 cannot happen. */
	ret = bt_queue_sleep(&d->queues[qi], deadline, dev_gone, d,
			     (const _Atomic uint32_t *)cancel);
	bt_leave(&d->life, ts);
	return ret < 0 ? -ENXIO : ret;
}

/* Wake every reader asleep on queue qi (-1: every queue) without a flush:
 * each looks again, and a cancellable wait whose word is set returns 0
 * (the others sleep on). */
int32_t bt_queue_kick(uint32_t h, int32_t qi)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);

	if (!d)
		return -ENXIO;
	if (qi < -1 || qi >= (int32_t)d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < d->nqueues; i++)
		if (qi < 0 || i == (uint32_t)qi)
			bt_queue_ring(&d->queues[i]);
	bt_leave(&d->life, ts);
	return 0;
}

/* Hand frames a reader took but could not use back to the head of their
 * queue, in order, so they are read again first (ptr_ring's unconsume).
 * Frames that no longer fit (producers filled the ring meanwhile) go back
 * to their pool and are counted as rx_dropped. Returns how many went back
 * to the queue. -EINVAL (taking nothing) if any ref is not a held frame. */
int32_t bt_queue_unread(uint32_t h, uint32_t qi, const uint32_t *refs,
			uint32_t n)
{
	struct bt_frame_meta *metas[BT_MAX_BULK];
	uintptr_t e[BT_MAX_BULK];
	struct bt_dev *d;
	struct bt_queue *q;
	uint32_t dropped;
	int ts;

	if (n > BT_MAX_BULK)
		return -E2BIG;
	if (!refs && n)
		return -EFAULT;
	ts = bt_thread_slot();
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	if (qi >= d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	/* Claim as we validate (see bt_xmit): a duplicate ref fails. */
	if (bt_claim_held(refs, n, metas, BT_CLAIM_ALL) < 0) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n; i++)
		e[i] = (uintptr_t)metas[i];
	q = &d->queues[qi];
	/* Both locks: unconsume writes slots a producer may test next. */
	bt_lock_acquire(&q->ring.consumer_lock);
	bt_lock_acquire(&q->ring.producer_lock);
	dropped = bt_ring_unconsume(&q->ring, e, n, drop_entry, NULL);
	bt_lock_release(&q->ring.producer_lock);
	if (dropped)
		atomic_store_explicit(&q->rx_dropped, q->rx_dropped + dropped,
				      memory_order_relaxed);
	bt_lock_release(&q->ring.consumer_lock);
	bt_leave(&d->life, ts);
	return (int32_t)(n - dropped);
}

/* bt_ring_count reads the consumer's indexes, which the reader changes
 * under consumer_lock: take it, so a stats call from another thread while
 * traffic flows is not a data race (stats calls are rare; the reader
 * waits at most one count). */
static uint32_t queue_depth(struct bt_queue *q)
{
	uint32_t n;

	bt_lock_acquire(&q->ring.consumer_lock);
	n = bt_ring_count(&q->ring);
	bt_lock_release(&q->ring.consumer_lock);
	return n;
}

int32_t bt_queue_count(uint32_t h, uint32_t qi)
{
	int ts = bt_thread_slot();
	struct bt_dev *d = dev_enter(h, ts);
	int32_t n;

	if (!d)
		return -ENXIO;
	if (qi >= d->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	n = (int32_t)queue_depth(&d->queues[qi]);
	bt_leave(&d->life, ts);
	return n;
}

int32_t bt_dev_stats(uint32_t h, uint64_t *out, uint32_t n)
{
	int ts = bt_thread_slot();
	struct bt_dev *d;
	uint64_t v[BT_DS_COUNT] = { 0 };

	if (!out && n)
		return -EFAULT;
	d = dev_enter(h, ts);
	if (!d)
		return -ENXIO;
	/* Per-thread transmit counters, in bt_dev_stat's order. */
	static const uint8_t tx_stat[BT_COUNTERS] = {
		[TX_PACKETS] = BT_DS_TX_PACKETS,
		[TX_BYTES] = BT_DS_TX_BYTES,
		[TX_DROPPED] = BT_DS_TX_DROPPED,
		[TX_CALLS] = BT_DS_XMIT_CALLS,
		[TX_FLUSHES] = BT_DS_FLUSHES,
		[TX_WAKEUPS_SENT] = BT_DS_WAKEUPS_SENT,
		[TX_WAKEUPS_AVOIDED] = BT_DS_WAKEUPS_AVOIDED,
		[TX_LOCKS] = BT_DS_LOCK_ACQUISITIONS,
		[TX_LOCK_CONTENDED] = BT_DS_LOCK_CONTENDED,
		[TX_LOCK_PARKS] = BT_DS_LOCK_PARKS,
	};
	for (int s = 0; s <= BT_SLOTS; s++) {
		for (int i = 0; i < BT_COUNTERS; i++)
			v[tx_stat[i]] += atomic_load_explicit(
				&d->tx[s].c[i], memory_order_relaxed);
	}
	for (uint32_t i = 0; i < d->nqueues; i++) {
		struct bt_queue *q = &d->queues[i];
		v[BT_DS_RX_PACKETS] += atomic_load(&q->rx_packets);
		v[BT_DS_RX_BYTES] += atomic_load(&q->rx_bytes);
		v[BT_DS_RX_BATCHES] += atomic_load(&q->rx_batches);
		v[BT_DS_RX_SLEEPS] += atomic_load(&q->rx_sleeps);
		v[BT_DS_RX_DROPPED] += atomic_load(&q->rx_dropped);
		v[BT_DS_QUEUED] += queue_depth(q);
	}
	bt_leave(&d->life, ts);
	if (n > BT_DS_COUNT)
		n = BT_DS_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_DS_COUNT;
}
