/* SPDX-License-Identifier: MIT */
/*
 * TAP transmit: frames written into a queue's fd.
 *
 * Two kinds of thread write: the queue's writer thread, which drains the
 * queue's ring (what bt_xmit put there), and forwarder threads writing the
 * batch they read straight into their target's queue (forward.c). Each
 * has its own write context (struct tap_wctx: an io_uring ring has one
 * submitter); the kernel takes writes on one fd from several threads,
 * each write a whole frame.
 *
 * A frame that carries offload metadata gets it as its virtio-net header
 * when the TAP has one (the kernel then segments a super-frame or
 * completes a partial checksum itself). A TAP without a vnet header cannot
 * be told, so the frame is fixed here first: a partial checksum completed
 * in place, a super-frame cut into segments (new frames of its pool,
 * written as one batch). What cannot be fixed is dropped and counted
 * (offload_dropped), never written wrong.
 */
#define _GNU_SOURCE
#include "tap_internal.h"
#include "bt_offload.h"

static const uint8_t zero_hdr[16];

/* Can t take m as it is? Anything, with a vnet header; without one, only
 * plain frames. */
static int takes_as_is(const struct tap *t, const struct bt_frame_meta *m)
{
	return t->vnet_len ||
	       (!m->gso_type && !(m->vnet_flags & BT_VNET_F_NEEDS_CSUM));
}

/* Turn a ring entry into iovecs. Pool frames: write the header into the
 * headroom right before the data and write from there (the frame is ours,
 * nobody else reads that headroom). Returns 0, or -EINVAL (niov 0: not
 * written, only returned) if a program moved data_off so low that the
 * header would overwrite the metadata; -EPROTO (the same) if its offload
 * metadata is inconsistent with its data (bt_offload_check) or needs a fix
 * (see takes_as_is) that failed: the kernel is never handed an offset
 * outside the frame. */
static int tx_prepare(struct tap_queue *q, uintptr_t e, struct tx_slot *s)
{
	struct tap *t = q->t;

	s->entry = e;
	s->keep = 0;
	s->super = 0;
	if (e & BT_TAG_COPY) {
		struct bt_copy *cp = (struct bt_copy *)(e & ~BT_TAG_MASK);
		s->niov = 0;
		if (t->vnet_len) {
			s->iov[0].iov_base = (void *)zero_hdr;
			s->iov[0].iov_len = t->vnet_len;
			s->niov = 1;
		}
		s->iov[s->niov].iov_base = cp->data;
		s->iov[s->niov].iov_len = cp->len;
		s->niov++;
		s->len = (size_t)cp->len + t->vnet_len;
		return 0;
	}
	struct bt_pool *pool;
	struct bt_frame_meta *m = bt_frame_from_ptr(e, &pool);
	/* Re-validate what a program could have scribbled on after xmit
	 * checked it: never write from outside the frame. */
	s->niov = 0;
	if (!m || !bt_meta_len_ok(pool, m) ||
	    m->data_off < sizeof(*m) + t->vnet_len)
		return -EINVAL;
	if ((m->gso_type || m->vnet_flags) && bt_offload_check(m))
		return -EPROTO;
	if (!t->vnet_len && (m->vnet_flags & BT_VNET_F_NEEDS_CSUM)) {
		if (bt_csum_complete(m))
			return -EPROTO;
		stat_add_shared(&q->csum_done, 1);
	}
	uint8_t *p = (uint8_t *)m + m->data_off - t->vnet_len;
	if (t->vnet_len)
		tap_vnet_encode(p, m, t->vnet_len);
	s->super = m->gso_type != BT_GSO_NONE;
	s->iov[0].iov_base = p;
	s->iov[0].iov_len = m->len + t->vnet_len;
	s->niov = 1;
	s->len = s->iov[0].iov_len;
	return 0;
}

/* Return written (or failed) entries: frames to their pools in one go,
 * copies to the allocator. Entries whose completion was never reaped stay
 * out (counted as stranded): the kernel may still read them. */
static void tx_finish(struct tx_slot *s, uint32_t n)
{
	struct bt_frame_meta *metas[TAP_MAX_BATCH];
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (s[i].keep)
			continue;
		if (s[i].entry & BT_TAG_COPY)
			free((void *)(s[i].entry & ~BT_TAG_MASK));
		else
			metas[k++] = (struct bt_frame_meta *)s[i].entry;
	}
	bt_release_metas(metas, k);
}

/* What a batch did, added to the queue's counters once. */
struct tx_tally {
	uint64_t written, bytes, errors, submits, pollouts, stranded, super;
};

static void tally_flush(struct tap_queue *q, const struct tx_tally *c)
{
	stat_add_shared(&q->tx_written, c->written);
	stat_add_shared(&q->tx_bytes, c->bytes);
	stat_add_shared(&q->tx_errors, c->errors);
	stat_add_shared(&q->tx_submits, c->submits);
	stat_add_shared(&q->tx_pollouts, c->pollouts);
	stat_add_shared(&q->tx_stranded, c->stranded);
	stat_add_shared(&q->tx_super, c->super);
}

/* Wait until fd is writable or the device stops. 0 or -ESHUTDOWN. */
static int wait_writable(struct tap_queue *q, struct tx_tally *c)
{
	struct pollfd p[2] = { { q->fd, POLLOUT, 0 },
			       { q->t->stop_efd, POLLIN, 0 } };

	c->pollouts++;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (p[1].revents)
			return -ESHUTDOWN;
		return 0;
	}
}

/* Account for one write result: a write counts only if it wrote the whole
 * frame (a short write is an error, like a failed one). */
static void tx_result(struct tap_queue *q, const struct tx_slot *s, ssize_t r,
		      struct tx_tally *c)
{
	if (r >= 0 && (size_t)r == s->len) {
		c->written++;
		c->bytes += s->len - q->t->vnet_len;
		c->super += (uint64_t)s->super;
		return;
	}
	c->errors++;
	atomic_store_explicit(&q->tx_last_errno, r < 0 ? (int32_t)-r : EIO,
			      memory_order_relaxed);
	if (r < 0 && fatal_fd_error((int)-r))
		tap_fail(q->t, (int)-r);
}

/* One frame with write()/writev(); EAGAIN waits for POLLOUT, never spins. */
static ssize_t write_one(struct tap_queue *q, struct tx_slot *s,
			 struct tx_tally *c)
{
	c->submits++;
	for (;;) {
		ssize_t r = s->niov == 1 ?
				    write(q->fd, s->iov[0].iov_base,
					  s->iov[0].iov_len) :
				    writev(q->fd, s->iov, s->niov);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		int w = wait_writable(q, c);
		if (w)
			return w;
		c->submits++;
	}
}

/* Entries still to write once the device failed: counted as errors (those
 * tx_prepare refused were counted already) and only returned. */
static int tx_failed(struct tap_queue *q, const struct tx_slot *s, uint32_t n,
		     struct tx_tally *c)
{
	if (!atomic_load_explicit(&q->t->error, memory_order_relaxed))
		return 0;
	for (uint32_t i = 0; i < n; i++)
		c->errors += s[i].niov != 0;
	return 1;
}

static void tx_write_batch(struct tap_queue *q, struct tx_slot *s, uint32_t n,
			   struct tx_tally *c)
{
	for (uint32_t i = 0; i < n; i++) {
		if (tx_failed(q, s + i, n - i, c))
			return;
		if (s[i].niov)
			tx_result(q, &s[i], write_one(q, &s[i], c), c);
	}
}

#ifdef BT_HAVE_LIBURING
static void ring_down(struct tap_wctx *w)
{
	io_uring_queue_exit(&w->ring);
	atomic_store_explicit(&w->uring, 0, memory_order_relaxed);
}

/* One submit for the whole batch, then reap every completion. Writes that
 * came back EAGAIN (the kernel's send buffer is full) are then written one
 * by one, in order, with write_one (which waits for POLLOUT); so are any
 * the kernel never took because the ring failed, after which this context
 * uses write() for good.
 *
 * The writes are not linked (IOSQE_IO_LINK would stop the batch at the
 * first EAGAIN, but linked requests run one after another through the
 * link machinery: measured here, io_uring then lost its whole advantage
 * over write()). So under EAGAIN a frame can be overtaken by a later one of
 * the same batch, if the kernel frees send-buffer room between two writes
 * of one submit. Without a small sndbuf a TAP write does not EAGAIN. */
static void tx_uring_batch(struct tap_queue *q, struct tap_wctx *w,
			   struct tx_slot *s, uint32_t n, struct tx_tally *c)
{
	int32_t res[TAP_MAX_BATCH];
	uint16_t order[TAP_MAX_BATCH];
	uint64_t submits = 0;
	uint32_t k = 0;
	int err;

	if (tx_failed(q, s, n, c))
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = NULL;

		res[i] = URING_NOT_SENT;
		if (!s[i].niov)
			continue;
		/* The ring holds a whole batch and is empty between batches,
		 * so this does not fail; if it did, write() takes the frame. */
		sqe = io_uring_get_sqe(&w->ring);
		if (!sqe)
			continue;
		if (s[i].niov == 1)
			io_uring_prep_write(sqe, q->fd, s[i].iov[0].iov_base,
					    (unsigned)s[i].iov[0].iov_len, 0);
		else
			io_uring_prep_writev(sqe, q->fd, s[i].iov,
					     (unsigned)s[i].niov, 0);
		/* O_NONBLOCK is not enough: io_uring would wait for POLLOUT
		 * itself (a completion that may never come). RWF_NOWAIT
		 * makes a full queue come back -EAGAIN, handled below. */
		sqe->rw_flags = RWF_NOWAIT;
		io_uring_sqe_set_data64(sqe, i);
		order[k++] = (uint16_t)i;
	}
	err = tap_uring_run(&w->ring, order, k, res, NULL, &submits);
	c->submits += submits;
	if (err || tap_uring_unsupported(res, n))
		/* Broken, or this kernel cannot do nonblocking io_uring
		 * writes here. */
		ring_down(w);
	for (uint32_t i = 0; i < n; i++) {
		int32_t r = res[i];

		if (!s[i].niov)
			continue;
		if (r == URING_PENDING) {
			s[i].keep = 1;
			c->stranded++;
			continue;
		}
		/* Not written (the send buffer was full, or the kernel never
		 * saw it): now, one by one. */
		if (r == URING_NOT_SENT || r == -EAGAIN || r == -EOPNOTSUPP) {
			if (tx_failed(q, s + i, 1, c))
				continue;
			tx_result(q, &s[i], write_one(q, &s[i], c), c);
			continue;
		}
		tx_result(q, &s[i], r, c);
	}
}
#endif

/* Write the prepared slots s[0..n) with w, then return their entries. */
static void tx_flush(struct tap_queue *q, struct tap_wctx *w,
		     struct tx_slot *s, uint32_t n, struct tx_tally *c)
{
	if (!n)
		return;
#ifdef BT_HAVE_LIBURING
	if (!w->single && n > 1 &&
	    atomic_load_explicit(&w->uring, memory_order_relaxed))
		tx_uring_batch(q, w, s, n, c);
	else
#else
	(void)w;
#endif
		tx_write_batch(q, s, n, c);
	tx_finish(s, n);
}

/* A frame tx_prepare refused (r < 0) is returned unwritten: counted as a
 * write error, or as an offload drop when its offload metadata was bad. */
static void tx_count_refused(struct tap_queue *q, int r, struct tx_tally *c)
{
	if (r == -EPROTO)
		stat_add_shared(&q->offload_dropped, 1);
	else if (r)
		c->errors++;
}

/* Super-frame m (a pool frame of pool) for a TAP that cannot take it: cut
 * into segments, written as one batch. m goes home either way. */
static uint32_t tx_segmented(struct tap_queue *q, struct tap_wctx *w,
			     struct bt_pool *pool, struct bt_frame_meta *m,
			     struct tx_tally *c)
{
	int32_t k = bt_gso_count(m, 0), got = 0, made = -1;
	uint32_t before = (uint32_t)c->written;

	if (k > 0 && k <= TAP_MAX_BATCH)
		got = bt_pool_take(pool, w->seg, (uint32_t)k);
	if (got == k && k > 0)
		made = bt_gso_segment(m, 0, w->seg, (uint32_t)k,
				      pool->frame_size, 0);
	if (made != k) {
		/* Bad metadata, too many segments, or the pool ran dry. */
		if (got > 0)
			bt_release_metas(w->seg, (uint32_t)got);
		bt_release_metas(&m, 1);
		stat_add_shared(&q->offload_dropped, 1);
		return 0;
	}
	bt_release_metas(&m, 1);
	stat_add_shared(&q->gso_frames, 1);
	stat_add_shared(&q->gso_segments, (uint64_t)k);
	uint32_t n = 0;
	for (int32_t i = 0; i < k; i++)
		tx_count_refused(q, tx_prepare(q, (uintptr_t)w->seg[i], &w->s[n++]),
				 c);
	tx_flush(q, w, w->s, n, c);
	return (uint32_t)c->written - before;
}

uint32_t tap_write(struct tap_queue *q, struct tap_wctx *w,
		   const uintptr_t *e, uint32_t n)
{
	struct tx_tally c = { 0 };
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (!(e[i] & BT_TAG_COPY)) {
			struct bt_pool *pool;
			struct bt_frame_meta *m = bt_frame_from_ptr(e[i], &pool);

			if (m && bt_meta_len_ok(pool, m) &&
			    m->gso_type != BT_GSO_NONE &&
			    !takes_as_is(q->t, m)) {
				/* In order: what came before goes first. */
				tx_flush(q, w, w->s, k, &c);
				k = 0;
				tx_segmented(q, w, pool, m, &c);
				continue;
			}
		}
		tx_count_refused(q, tx_prepare(q, e[i], &w->s[k]), &c);
		k++;
	}
	tx_flush(q, w, w->s, k, &c);
	tally_flush(q, &c);
	return (uint32_t)c.written;
}

struct tap_wctx *tap_wctx_new(int uring, int single)
{
	struct tap_wctx *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->single = single;
#ifdef BT_HAVE_LIBURING
	/* A ring that cannot be set up leaves write(): visible in stats. */
	if (uring && io_uring_queue_init(TAP_MAX_BATCH, &w->ring, 0) == 0)
		atomic_store(&w->uring, 1);
#else
	(void)uring;
#endif
	return w;
}

void tap_wctx_free(struct tap_wctx *w)
{
	if (!w)
		return;
#ifdef BT_HAVE_LIBURING
	if (atomic_load(&w->uring))
		io_uring_queue_exit(&w->ring);
#endif
	free(w);
}

/* ---- direct writes (BT_XMIT_DIRECT) --------------------------------- */

/* Each thread that writes directly has its own write context (an io_uring
 * ring has one submitter), made on first use and freed when the thread
 * exits. */
static pthread_key_t wctx_key;
static pthread_once_t wctx_once = PTHREAD_ONCE_INIT;

static void wctx_key_free(void *w)
{
	tap_wctx_free(w);
}

static void wctx_key_make(void)
{
	pthread_key_create(&wctx_key, wctx_key_free);
}

void tap_xmit_direct(struct bt_dev *d, uint32_t qi,
		     struct bt_frame_meta **metas, uint32_t n)
{
	struct tap *t = d->backend;
	struct tap_queue *q = &t->q[qi];
	struct tap_wctx *w;

	pthread_once(&wctx_once, wctx_key_make);
	w = pthread_getspecific(wctx_key);
	if (!w) {
		w = tap_wctx_new(atomic_load(&q->wx->uring), 0);
		if (w && pthread_setspecific(wctx_key, w)) {
			tap_wctx_free(w);
			w = NULL;
		}
	}
	if (!w) {
		/* No memory for a context: the frames go home, counted. */
		bt_release_metas(metas, n);
		stat_add_shared(&q->tx_errors, n);
		return;
	}
	for (uint32_t i = 0; i < n; i += TAP_MAX_BATCH)
		tap_write(q, w, (const uintptr_t *)metas + i,
			  n - i < TAP_MAX_BATCH ? n - i : TAP_MAX_BATCH);
}

/* ---- the writer thread ---------------------------------------------- */

/* Take up to n entries under the consumer lock (once per batch). */
static uint32_t ring_take(struct bt_queue *bq, uintptr_t *e, uint32_t n)
{
	uint32_t k;

	bt_lock_acquire(&bq->ring.consumer_lock);
	k = bt_ring_consume_batch(&bq->ring, e, n);
	bt_lock_release(&bq->ring.consumer_lock);
	return k;
}

static int tap_stopping(void *ctx)
{
	struct tap *t = ctx;

	return atomic_load_explicit(&t->stopping, memory_order_seq_cst);
}

/* Sleep until a producer rings the doorbell or the device stops: the
 * protocol of device.c (bt_queue_sleep). tap_stop sets stopping before it
 * rings, so a writer that saw the ring sees stopping. */
static void writer_sleep(struct tap *t, struct bt_queue *bq)
{
	bt_queue_sleep(bq, 0, tap_stopping, t, NULL);
}

void *tap_writer_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	struct bt_queue *bq = &t->d->queues[q->qi];
	uintptr_t e[TAP_MAX_BATCH];

	while (!atomic_load_explicit(&t->stopping, memory_order_acquire)) {
		uint32_t k = ring_take(bq, e, t->batch);

		if (!k) {
			writer_sleep(t, bq);
			continue;
		}
		/* Counted like a ring reader, so dev stats show the drain. */
		stat_add(&bq->rx_packets, k);
		stat_add(&bq->rx_batches, 1);
		/* Written (completed) or failed: either way they go home. */
		tap_write(q, q->wx, e, k);
	}
	return NULL;
}
