/* SPDX-License-Identifier: MIT */
/*
 * The forwarder: threads that read batches from TAP queues and hand them
 * to another device without leaving C.
 *
 * One way (bt_forward_start): a thread per queue of A reads A and hands
 * to B. Both ways (bt_forward_pair_start): thread i reads queue i of A and
 * of B, each into the other. A request and its answer then cost one
 * wake-up, not two: writing into a TAP runs the receiving stack inside the
 * write, so a ping's reply (or a TCP ACK) is usually waiting on B's queue
 * when the write returns, and the same thread takes it at once.
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

/* What one forwarder thread does: read its sides, until told to stop. */
struct fwd_side {
	struct tap_queue *q; /* read here (the thread owns its rx) */
	uint32_t dst; /* hand to this device */
	int dst_tap; /* dst is a TAP: write into it directly */
	int done; /* its fd failed: read no more */
};

struct fwd_run {
	uint32_t bulk;
	uint32_t mode; /* BT_FWD_* */
	int nsides;
	struct fwd_side side[2];
	/* Any of these nonzero: stop. */
	const _Atomic int *stop[4];
	int nstop;
	/* Readable when told to stop. */
	int efd[3];
	int nefd;
};

static int fwd_told_to_stop(const struct fwd_run *r)
{
	for (int i = 0; i < r->nstop; i++)
		if (atomic_load_explicit(r->stop[i], memory_order_relaxed))
			return 1;
	return 0;
}

/* bt_xmit failed as a whole: the frames it did not give back itself go
 * home here. Either way they count as dropped. */
static void fwd_refused(int32_t r, const uint32_t *refs, uint32_t n)
{
	if (!bt_xmit_returned_frames(r))
		bt_release_refs(refs, n);
}

/* How long a forwarder naps while its target's ring is full. The ring has
 * no "room again" doorbell; meanwhile the frames wait in the source TAP's
 * kernel queue, which pushes back on its senders. */
static const struct timespec room_nap = { 0, 50000 };

/* Hand refs[0..n) to device s->dst through its ring, one bt_xmit per
 * batch (or per frame in single mode). A full ring is waited out, not
 * dropped: frames stay ours (BT_XMIT_KEEP) until they fit or we are told
 * to stop (then they go home, counted as dropped). */
static void fwd_via_ring(const struct fwd_run *run, struct fwd_side *s,
			 uint32_t *refs, uint32_t n)
{
	struct tap_queue *q = s->q;
	uint32_t step = (run->mode & BT_FWD_MODE_MASK) == BT_FWD_SINGLE ? 1 :
									  n;
	uint32_t off = 0, sent = 0;
	int waited = 0;

	while (off < n) {
		uint32_t k = n - off < step ? n - off : step;
		int32_t r = bt_xmit(s->dst, refs + off, k,
				    BT_XMIT_FLUSH | BT_XMIT_KEEP, q->qi);

		if (r < 0) {
			fwd_refused(r, refs + off, n - off);
			break;
		}
		off += (uint32_t)r;
		sent += (uint32_t)r;
		if ((uint32_t)r == k)
			continue;
		if (fwd_told_to_stop(run)) {
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

/* Write the batch refs[0..n) (frames of the source's pool) straight into
 * queue q->qi of TAP device s->dst from this thread, with its write
 * context w: no ring, no writer thread, no wake-up between reading and
 * writing. */
static void fwd_direct(const struct fwd_run *run, struct fwd_side *s,
		       struct tap_wctx *w, uint32_t *refs, uint32_t n)
{
	struct bt_frame_meta *metas[TAP_MAX_BATCH];
	struct tap_queue *q = s->q;
	struct bt_pool *p = q->t->d->pool;
	int ts = bt_thread_slot();
	struct bt_dev *dd;
	struct tap *dt = tap_enter(s->dst, ts, &dd);

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
	if ((run->mode & BT_FWD_MODE_MASK) == BT_FWD_BULK &&
	    !(run->mode & BT_FWD_NO_GRO) && dt->vnet_len)
		k = fwd_gro(dq, p, metas, n);
	tap_write(dq, w, (const uintptr_t *)metas, k);
	bt_leave(&dd->life, ts);
	stat_add(&q->fwd_packets, n);
}

_Static_assert(sizeof(uintptr_t) == sizeof(struct bt_frame_meta *),
	       "a pool frame's ring entry is its metadata's address");

/* Is dst a TAP (written into directly unless the mode says via rings)?
 * *uring: its writers use io_uring, and so will we. */
static int fwd_target_tap(uint32_t dst, uint32_t mode, int *uring)
{
	int ts = bt_thread_slot();
	struct bt_dev *dd;
	struct tap *dt;

	if (mode & BT_FWD_VIA_RING)
		return 0;
	dt = tap_enter(dst, ts, &dd);
	if (!dt)
		return 0;
	*uring = atomic_load(&dt->q[0].wx->uring);
	bt_leave(&dd->life, ts);
	return 1;
}

/* Read one batch from side s and hand it on. Returns the frames read (0:
 * nothing there), -1 if the pool had no frame, -2 if the fd failed. */
static int32_t fwd_step(const struct fwd_run *run, struct fwd_side *s,
			struct tap_wctx *w, uint32_t *refs)
{
	int noframe;
	int32_t n = tap_rx_batch(s->q, refs, run->bulk, &noframe);

	if (n > 0) {
		if (s->dst_tap && w)
			fwd_direct(run, s, w, refs, (uint32_t)n);
		else
			fwd_via_ring(run, s, refs, (uint32_t)n);
		return n;
	}
	if (n < 0 && !noframe)
		return -2;
	if (atomic_load(&s->q->t->error))
		return -2;
	return noframe ? -1 : 0;
}

/* The loop of every forwarder thread: read each side in turn while any
 * has frames; sleep on the fds when none has; stop when told to (or when
 * every side's fd failed). */
static void fwd_loop(struct fwd_run *run)
{
	uint32_t refs[TAP_MAX_BATCH];
	const struct timespec no_frames = { 0, 100000 };
	struct pollfd p[5];
	struct tap_wctx *w = NULL;
	int uring = 0, tap_dst = 0, single;

	single = (run->mode & BT_FWD_MODE_MASK) == BT_FWD_SINGLE;
	for (int i = 0; i < run->nsides; i++) {
		run->side[i].dst_tap = fwd_target_tap(run->side[i].dst,
						      run->mode, &uring);
		tap_dst |= run->side[i].dst_tap;
	}
	if (tap_dst)
		w = tap_wctx_new(uring && !single, single);
	for (;;) {
		int busy = 0, dry = 0, live = 0, np = 0;

		for (int i = 0; i < run->nsides; i++) {
			struct fwd_side *s = &run->side[i];
			int32_t r;

			if (s->done)
				continue;
			r = fwd_step(run, s, w, refs);
			if (r == -2) {
				s->done = 1; /* the error is sticky in s's tap */
				continue;
			}
			live++;
			busy |= r > 0;
			dry |= r == -1;
		}
		if (!live || fwd_told_to_stop(run))
			break;
		if (busy)
			continue;
		if (dry) {
			/* The pool is empty: frames are on their way back
			 * (writers, readers). Wait a little, not spin. */
			nanosleep(&no_frames, NULL);
			continue;
		}
		/* Nothing to read anywhere: sleep until readable or told to
		 * stop. */
		for (int i = 0; i < run->nsides; i++)
			if (!run->side[i].done)
				p[np++] = (struct pollfd){ run->side[i].q->fd,
							   POLLIN, 0 };
		for (int i = 0; i < run->nefd; i++)
			p[np++] = (struct pollfd){ run->efd[i], POLLIN, 0 };
		while (poll(p, (nfds_t)np, -1) < 0 && errno == EINTR)
			;
	}
	tap_wctx_free(w);
	for (int i = 0; i < run->nsides; i++)
		atomic_store(&run->side[i].q->rx_busy, 0);
}

/* ---- one way -------------------------------------------------------- */

static void *fwd_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	struct fwd_run run = {
		.bulk = t->fwd_bulk,
		.mode = t->fwd_mode,
		.nsides = 1,
		.side = { { .q = q, .dst = t->fwd_dst } },
		.stop = { &t->fwd_stopping, &t->stopping },
		.nstop = 2,
		.efd = { t->stop_efd, t->fwd_efd },
		.nefd = 2,
	};

	fwd_loop(&run);
	return NULL;
}

/* Take the receive side of every queue of t (a forwarder owns them), or
 * none: -EBUSY if one is being read. */
static int32_t claim_queues(struct tap *t)
{
	for (uint32_t i = 0; i < t->nqueues; i++) {
		int expect = 0;

		if (!atomic_compare_exchange_strong(&t->q[i].rx_busy, &expect,
						    1)) {
			for (uint32_t j = 0; j < i; j++)
				atomic_store(&t->q[j].rx_busy, 0);
			return -EBUSY;
		}
	}
	return 0;
}

static void release_queues(struct tap *t, uint32_t from)
{
	for (uint32_t j = from; j < t->nqueues; j++)
		atomic_store(&t->q[j].rx_busy, 0);
}

void tap_fwd_join(struct tap *t)
{
	eventfd_t v;

	if (!t->forwarding || t->pair)
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

static int fwd_args_ok(uint32_t bulk, uint32_t mode)
{
	return bulk >= 1 && bulk <= TAP_MAX_BATCH &&
	       !(mode & ~BT_FWD_FLAGS_MASK);
}

int32_t bt_forward_start(uint32_t src, uint32_t dst, uint32_t bulk,
			 uint32_t mode)
{
	int ts = bt_thread_slot();
	struct bt_dev *d, *dd;
	struct tap *t;
	int32_t r = 0;

	if (!fwd_args_ok(bulk, mode))
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
	if ((r = claim_queues(t)) < 0)
		goto out;
	t->fwd_dst = dst;
	t->fwd_bulk = bulk;
	t->fwd_mode = mode;
	t->forwarding = 1;
	for (uint32_t i = 0; i < t->nqueues; i++) {
		int e = pthread_create(&t->q[i].fwd, NULL, fwd_main, &t->q[i]);
		if (e) {
			release_queues(t, i);
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

/* ---- both ways ------------------------------------------------------ */

/*
 * A pair's threads use both devices, so the pair is known to both (t->pair)
 * and stopped by either: bt_forward_stop on either, or either's close
 * (tap_stop joins the threads before anything is freed). Pairs are made
 * and undone under one lock, taken before either device's fwd_lock.
 */
static pthread_mutex_t pair_lock = PTHREAD_MUTEX_INITIALIZER;

struct fwd_pair_thread {
	struct fwd_pair *p;
	uint32_t i;
	pthread_t th;
	int started;
};

struct fwd_pair {
	struct tap *t[2];
	uint32_t h[2];
	uint32_t bulk;
	uint32_t mode;
	_Atomic int stopping;
	int efd; /* readable once told to stop */
	uint32_t nthreads;
	struct fwd_pair_thread th[];
};

static void *pair_main(void *arg)
{
	struct fwd_pair_thread *pt = arg;
	struct fwd_pair *p = pt->p;
	struct fwd_run run = {
		.bulk = p->bulk,
		.mode = p->mode,
		.stop = { &p->stopping, &p->t[0]->stopping,
			  &p->t[1]->stopping },
		.nstop = 3,
		.efd = { p->efd, p->t[0]->stop_efd, p->t[1]->stop_efd },
		.nefd = 3,
	};

	/* Queue i of each device that has one; the thread owns its rx. */
	for (int k = 0; k < 2; k++)
		if (pt->i < p->t[k]->nqueues)
			run.side[run.nsides++] = (struct fwd_side){
				.q = &p->t[k]->q[pt->i], .dst = p->h[1 - k]
			};
	fwd_loop(&run);
	return NULL;
}

/* Stop t's pair, if it is in one: join its threads, undo it on both
 * devices. Caller holds neither device's fwd_lock. */
void tap_fwd_stop_pair(struct tap *t)
{
	pthread_mutex_lock(&pair_lock);
	struct fwd_pair *p = t->pair;
	if (p) {
		atomic_store(&p->stopping, 1);
		eventfd_write(p->efd, 1);
		for (uint32_t i = 0; i < p->nthreads; i++)
			if (p->th[i].started)
				pthread_join(p->th[i].th, NULL);
		for (int k = 0; k < 2; k++) {
			p->t[k]->pair = NULL;
			p->t[k]->forwarding = 0;
		}
		close(p->efd);
		free(p);
	}
	pthread_mutex_unlock(&pair_lock);
}

int32_t bt_forward_pair_start(uint32_t a, uint32_t b, uint32_t bulk,
			      uint32_t mode)
{
	int ts = bt_thread_slot();
	struct bt_dev *da, *db;
	struct tap *ta, *tb;
	struct fwd_pair *p = NULL;
	uint32_t n;
	int32_t r = 0;

	if (!fwd_args_ok(bulk, mode))
		return -EINVAL;
	ta = tap_enter(a, ts, &da);
	if (!ta)
		return -ENXIO;
	tb = tap_enter(b, ts, &db);
	if (!tb) {
		bt_leave(&da->life, ts);
		return -ENXIO;
	}
	if (ta == tb) {
		r = -EINVAL;
		goto leave;
	}
	n = ta->nqueues > tb->nqueues ? ta->nqueues : tb->nqueues;
	pthread_mutex_lock(&pair_lock);
	pthread_mutex_lock(&ta->fwd_lock);
	pthread_mutex_lock(&tb->fwd_lock);
	if (ta->forwarding || tb->forwarding || atomic_load(&ta->stopping) ||
	    atomic_load(&tb->stopping)) {
		r = -EBUSY;
		goto out;
	}
	if ((r = atomic_load(&ta->error)) < 0 ||
	    (r = atomic_load(&tb->error)) < 0)
		goto out;
	p = calloc(1, sizeof(*p) + n * sizeof(p->th[0]));
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	p->efd = eventfd(0, EFD_CLOEXEC);
	if (p->efd < 0) {
		r = -errno;
		free(p);
		goto out;
	}
	if ((r = claim_queues(ta)) < 0) {
		close(p->efd);
		free(p);
		goto out;
	}
	if ((r = claim_queues(tb)) < 0) {
		release_queues(ta, 0);
		close(p->efd);
		free(p);
		goto out;
	}
	p->t[0] = ta;
	p->t[1] = tb;
	p->h[0] = a;
	p->h[1] = b;
	p->bulk = bulk;
	p->mode = mode;
	p->nthreads = n;
	ta->pair = tb->pair = p;
	ta->forwarding = tb->forwarding = 1;
	for (uint32_t i = 0; i < n; i++) {
		p->th[i].p = p;
		p->th[i].i = i;
		int e = pthread_create(&p->th[i].th, NULL, pair_main, &p->th[i]);
		if (e) {
			/* Threads not started leave their queues claimed. */
			release_queues(ta, i);
			release_queues(tb, i);
			r = -e;
			break;
		}
		p->th[i].started = 1;
	}
out:
	pthread_mutex_unlock(&tb->fwd_lock);
	pthread_mutex_unlock(&ta->fwd_lock);
	pthread_mutex_unlock(&pair_lock);
	if (r < 0 && p && ta->pair == p)
		tap_fwd_stop_pair(ta);
leave:
	bt_leave(&db->life, ts);
	bt_leave(&da->life, ts);
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
	pthread_mutex_unlock(&t->fwd_lock);
	tap_fwd_stop_pair(t);
	pthread_mutex_lock(&t->fwd_lock);
	tap_fwd_join(t);
	pthread_mutex_unlock(&t->fwd_lock);
	bt_leave(&d->life, ts);
	return was;
}
