/* SPDX-License-Identifier: MIT */
/*
 * The forwarder: a thread per queue of a TAP reads batches and hands them
 * to another device without leaving C.
 *
 * Into a TAP, the reading thread writes the batch itself, into the
 * target's queue of the same index (the per-CPU queue choice: forwarder
 * thread i is CPU i's), with its own io_uring ring: a frame read from A is
 * in B's kernel after one wake-up, not two (reader, then B's writer
 * thread through B's ring and doorbell). The kernel runs B's receive path
 * inside that write, so a busy B slows the forwarder, which then reads A
 * later: backpressure, not drops. In bulk mode a batch's TCP segments are
 * first coalesced into super-frames when B has a vnet header (GRO).
 *
 * Into any other device (or with BT_FWD_VIA_RING), the batch goes through
 * the target's ring with bt_xmit, one lock per bulk; a full ring is waited
 * out (BT_XMIT_KEEP), so frames wait in A's kernel queue instead of being
 * dropped here.
 */
#define _GNU_SOURCE
#include "tap_internal.h"
#include "bt_offload.h"

/* bt_xmit failed as a whole: the frames it did not give back itself go
 * home here. Either way they count as dropped. */
static void fwd_refused(int32_t r, const uint32_t *refs, uint32_t n)
{
	if (!bt_xmit_returned_frames(r))
		bt_release_refs(refs, n);
}

static int fwd_told_to_stop(struct tap *t)
{
	return atomic_load_explicit(&t->fwd_stopping, memory_order_relaxed) ||
	       atomic_load_explicit(&t->stopping, memory_order_relaxed);
}

/* How long a forwarder naps while its target's ring is full. The ring has
 * no "room again" doorbell; meanwhile the frames wait in the source TAP's
 * kernel queue, which pushes back on its senders. */
static const struct timespec room_nap = { 0, 50000 };

/* Hand refs[0..n) to device dst through its ring, one bt_xmit per batch
 * (or per frame in single mode). A full ring is waited out, not dropped:
 * frames stay ours (BT_XMIT_KEEP) until they fit or we are told to stop
 * (then they go home, counted as dropped). */
static void fwd_via_ring(struct tap_queue *q, uint32_t dst, uint32_t *refs,
			 uint32_t n)
{
	struct tap *t = q->t;
	uint32_t step = (t->fwd_mode & BT_FWD_MODE_MASK) == BT_FWD_SINGLE ?
				1 :
				n;
	uint32_t off = 0, sent = 0;
	int waited = 0;

	while (off < n) {
		uint32_t k = n - off < step ? n - off : step;
		int32_t r = bt_xmit(dst, refs + off, k,
				    BT_XMIT_FLUSH | BT_XMIT_KEEP, q->qi);

		if (r < 0) {
			fwd_refused(r, refs + off, n - off);
			break;
		}
		off += (uint32_t)r;
		sent += (uint32_t)r;
		if ((uint32_t)r == k)
			continue;
		if (fwd_told_to_stop(t)) {
			bt_release_refs(refs + off, n - off);
			break;
		}
		if (!waited++)
			stat_add(&q->fwd_waits, 1);
		nanosleep(&room_nap, NULL);
	}
	stat_add(&q->fwd_packets, sent);
	if (sent < n)
		stat_add(&q->fwd_dropped, n - sent);
}

/* Bulk mode into a TAP with a vnet header: coalesce the batch's TCP
 * segments into super-frames (one write each instead of one per
 * segment). metas[0..n) is compacted; the merged-away frames go home. */
static uint32_t fwd_gro(struct tap_queue *dq, struct bt_pool *p,
			struct bt_frame_meta **metas, uint32_t n)
{
	struct bt_frame_meta *freed[TAP_MAX_BATCH];
	uint32_t nfreed = 0, before = 0, after = 0;

	for (uint32_t i = 0; i < n; i++)
		before += metas[i]->gso_type != BT_GSO_NONE;
	n = bt_gro_batch(metas, n, p->frame_size, BT_MAX_SUPER_FRAME, freed,
			 &nfreed);
	if (!nfreed)
		return n;
	for (uint32_t i = 0; i < n; i++)
		after += metas[i]->gso_type != BT_GSO_NONE;
	bt_release_metas(freed, nfreed);
	stat_add_shared(&dq->gro_frames, after - before);
	stat_add_shared(&dq->gro_segments, nfreed + after - before);
	return n;
}

/* Write the batch refs[0..n) (frames of pool p) straight into queue
 * q->qi of TAP device dst from this thread, with its write context w: no
 * ring, no writer thread, no wake-up between reading and writing. */
static void fwd_direct(struct tap_queue *q, struct tap_wctx *w,
		       uint32_t dst, uint32_t *refs, uint32_t n)
{
	struct bt_frame_meta *metas[TAP_MAX_BATCH];
	struct bt_pool *p = q->t->d->pool;
	int ts = bt_thread_slot();
	struct bt_dev *dd;
	struct tap *dt = tap_enter(dst, ts, &dd);

	if (!dt) {
		/* The target closed under us: its frames go home, dropped. */
		bt_release_refs(refs, n);
		stat_add(&q->fwd_dropped, n);
		return;
	}
	struct tap_queue *dq = &dt->q[(uint32_t)q->qi % dt->nqueues];
	for (uint32_t i = 0; i < n; i++)
		metas[i] = bt_frame_at(p, refs[i] & BT_REF_INDEX_MASK);
	uint32_t k = n;
	if ((q->t->fwd_mode & BT_FWD_MODE_MASK) == BT_FWD_BULK &&
	    !(q->t->fwd_mode & BT_FWD_NO_GRO) && dt->vnet_len)
		k = fwd_gro(dq, p, metas, n);
	tap_write(dq, w, (const uintptr_t *)metas, k);
	bt_leave(&dd->life, ts);
	stat_add(&q->fwd_packets, n);
}

_Static_assert(sizeof(uintptr_t) == sizeof(struct bt_frame_meta *),
	       "a pool frame's ring entry is its metadata's address");

/* The target's writers use io_uring (and so will we), and it is a TAP. */
static int fwd_target_tap(uint32_t dst, int *uring)
{
	int ts = bt_thread_slot();
	struct bt_dev *dd;
	struct tap *dt = tap_enter(dst, ts, &dd);

	if (!dt)
		return 0;
	*uring = atomic_load(&dt->q[0].wx->uring);
	bt_leave(&dd->life, ts);
	return 1;
}

static void *fwd_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	uint32_t refs[TAP_MAX_BATCH];
	struct pollfd p[3] = { { q->fd, POLLIN, 0 },
			       { t->stop_efd, POLLIN, 0 },
			       { t->fwd_efd, POLLIN, 0 } };
	const struct timespec no_frames = { 0, 100000 };
	int single = (t->fwd_mode & BT_FWD_MODE_MASK) == BT_FWD_SINGLE;
	struct tap_wctx *w = NULL;
	int uring = 0;

	if (!(t->fwd_mode & BT_FWD_VIA_RING) &&
	    fwd_target_tap(t->fwd_dst, &uring))
		w = tap_wctx_new(uring && !single, single);
	for (;;) {
		int noframe;
		int32_t n = tap_rx_batch(q, refs, t->fwd_bulk, &noframe);

		if (n < 0 && !noframe)
			break; /* fd failed: the error is sticky in t */
		if (n <= 0) {
			if (atomic_load(&t->error))
				break;
			if (noframe) {
				/* The pool is empty: the destination's
				 * writers are returning frames. Wait a
				 * little rather than spin. */
				nanosleep(&no_frames, NULL);
				p[1].revents = p[2].revents = 0;
			} else {
				/* Nothing to read: sleep until readable or
				 * told to stop. */
				while (poll(p, 3, -1) < 0 && errno == EINTR)
					;
			}
			if (p[1].revents || p[2].revents ||
			    fwd_told_to_stop(t))
				break;
			continue;
		}
		if (w)
			fwd_direct(q, w, t->fwd_dst, refs, (uint32_t)n);
		else
			fwd_via_ring(q, t->fwd_dst, refs, (uint32_t)n);
		if (fwd_told_to_stop(t))
			break;
	}
	tap_wctx_free(w);
	atomic_store(&q->rx_busy, 0);
	return NULL;
}

void tap_fwd_join(struct tap *t)
{
	eventfd_t v;

	if (!t->forwarding)
		return;
	atomic_store(&t->fwd_stopping, 1);
	eventfd_write(t->fwd_efd, 1);
	for (uint32_t i = 0; i < t->nqueues; i++) {
		if (t->q[i].fwd_started)
			pthread_join(t->q[i].fwd, NULL);
		t->q[i].fwd_started = 0;
	}
	eventfd_read(t->fwd_efd, &v);
	atomic_store(&t->fwd_stopping, 0);
	t->forwarding = 0;
}

int32_t bt_forward_start(uint32_t src, uint32_t dst, uint32_t bulk,
			 uint32_t mode)
{
	int ts = bt_thread_slot();
	struct bt_dev *d, *dd;
	struct tap *t;
	int32_t r = 0;

	if (bulk < 1 || bulk > TAP_MAX_BATCH || (mode & ~BT_FWD_FLAGS_MASK))
		return -EINVAL;
	t = tap_enter(src, ts, &d);
	if (!t)
		return -ENXIO;
	dd = bt_dev_enter(dst, ts);
	if (!dd) {
		bt_leave(&d->life, ts);
		return -ENXIO;
	}
	bt_leave(&dd->life, ts);
	pthread_mutex_lock(&t->fwd_lock);
	if (t->forwarding || atomic_load(&t->stopping)) {
		r = -EBUSY;
		goto out;
	}
	if ((r = atomic_load(&t->error)) < 0)
		goto out;
	for (uint32_t i = 0; i < t->nqueues; i++) {
		int expect = 0;
		if (!atomic_compare_exchange_strong(&t->q[i].rx_busy, &expect,
						    1)) {
			for (uint32_t j = 0; j < i; j++)
				atomic_store(&t->q[j].rx_busy, 0);
			r = -EBUSY;
			goto out;
		}
	}
	t->fwd_dst = dst;
	t->fwd_bulk = bulk;
	t->fwd_mode = mode;
	t->forwarding = 1;
	for (uint32_t i = 0; i < t->nqueues; i++) {
		int e = pthread_create(&t->q[i].fwd, NULL, fwd_main, &t->q[i]);
		if (e) {
			for (uint32_t j = i; j < t->nqueues; j++)
				atomic_store(&t->q[j].rx_busy, 0);
			tap_fwd_join(t);
			r = -e;
			goto out;
		}
		t->q[i].fwd_started = 1;
	}
out:
	pthread_mutex_unlock(&t->fwd_lock);
	bt_leave(&d->life, ts);
	return r;
}

int32_t bt_forward_stop(uint32_t src)
{
	int ts = bt_thread_slot();
	struct bt_dev *d;
	struct tap *t = tap_enter(src, ts, &d);
	int32_t was;

	if (!t)
		return -ENXIO;
	pthread_mutex_lock(&t->fwd_lock);
	was = t->forwarding;
	tap_fwd_join(t);
	pthread_mutex_unlock(&t->fwd_lock);
	bt_leave(&d->life, ts);
	return was;
}
