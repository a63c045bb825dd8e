/* SPDX-License-Identifier: MIT */
/*
 * TAP receive: frames read from a queue's fd into pool frames, one FFI
 * crossing per batch, and the wait for a readable fd.
 */
#define _GNU_SOURCE
#include "tap_internal.h"
#include "bt_offload.h"

/* ---- receive -------------------------------------------------------- */

/* The iovecs of one read into frame m: the frame's room from the vnet
 * header on, then the spill. Returns the frame's room. */
static size_t rx_iov(struct tap_queue *q, struct bt_pool *p,
		     struct bt_frame_meta *m, struct iovec *iov)
{
	uint32_t vnet = q->t->vnet_len;

	iov[0].iov_base = (uint8_t *)m + m->data_off - vnet;
	iov[0].iov_len = p->frame_size - m->data_off + vnet;
	iov[1].iov_base = q->spill;
	iov[1].iov_len = sizeof(q->spill);
	return iov[0].iov_len;
}

/* Account for one read of r bytes into m (room cap), received at now.
 * Returns 1 (m holds a frame), 0 (the packet did not fit, or its vnet
 * header was refused: counted, m is free for another read) or -EIO
 * (shorter than the vnet header). */
static int rx_fill(struct tap_queue *q, struct bt_frame_meta *m, size_t r,
		   size_t cap, uint64_t now)
{
	uint32_t vnet = q->t->vnet_len;

	if (r > cap) {
		stat_add(&q->rx_truncated, 1);
		return 0;
	}
	if (r < vnet)
		return -EIO; /* cannot happen with the header set */
	m->len = (uint32_t)(r - vnet);
	m->vnet_len = (uint16_t)vnet;
	m->queue = (uint16_t)q->qi;
	m->tstamp_ns = now;
	if (vnet) {
		tap_vnet_decode((uint8_t *)m + m->data_off - vnet, m);
		/* The kernel wrote it, but nothing trusts an offset before
		 * it is checked against the data. */
		if ((m->gso_type || m->vnet_flags) && bt_offload_check(m)) {
			stat_add(&q->rx_bad_vnet, 1);
			bt_meta_clear_offload(m);
			return 0;
		}
		if (m->gso_type)
			stat_add(&q->rx_super, 1);
	}
	return 1;
}

static struct bt_frame_meta *rx_meta(struct bt_pool *p, uint32_t ref)
{
	return bt_frame_at(p, ref & BT_REF_INDEX_MASK);
}

/* Give back frames refs[0..n) that were allocated but not filled. */
static void rx_unused(struct bt_pool *p, const uint32_t *refs, uint32_t n)
{
	struct bt_frame_meta *m[TAP_MAX_BATCH];

	for (uint32_t i = 0; i < n; i++)
		m[i] = rx_meta(p, refs[i]);
	bt_release_metas(m, n);
}

/* Count a batch and turn an fd error into the result: frames read win,
 * the error is reported by the next call (sticky if the device is gone). */
static int32_t rx_done(struct tap_queue *q, uint32_t got, uint64_t bytes,
		       int err)
{
	if (got) {
		stat_add(&q->rx_packets, got);
		stat_add(&q->rx_bytes, bytes);
		stat_add(&q->rx_batches, 1);
	}
	if (err && err != EAGAIN && err != EINTR) {
		if (fatal_fd_error(err))
			tap_fail(q->t, err);
		if (!got)
			return -err;
	}
	return (int32_t)got;
}

/* One readv() per frame into refs[0..n): how many were filled (adding
 * their bytes to *bytes; *err: the errno that ended the batch). Frames are
 * taken lazily: one first (the fd may hold nothing), then the rest of the
 * batch once a read succeeded. */
static uint32_t rx_read(struct tap_queue *q, uint32_t *refs, uint32_t n,
			int *noframe, uint64_t *bytes, int *err)
{
	struct tap *t = q->t;
	struct bt_pool *p = t->d->pool;
	uint32_t got = 0, have = 0;

	while (got < n) {
		struct bt_frame_meta *m;
		struct iovec iov[2];
		size_t cap;
		ssize_t r;
		int a;

		if (got == have) {
			int32_t k = bt_pool_alloc(t->d->pool_handle,
						  refs + have,
						  have ? n - have : 1);
			if (k <= 0) {
				if (!have) {
					stat_add(&q->rx_noframe, 1);
					*noframe = 1;
				}
				break;
			}
			have += (uint32_t)k;
		}
		m = rx_meta(p, refs[got]);
		cap = rx_iov(q, p, m, iov);
		r = readv(q->fd, iov, 2);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			break;
		}
		a = rx_fill(q, m, (size_t)r, cap, bt_now_ns());
		if (a < 0) {
			*err = -a;
			break;
		}
		if (a == 0)
			continue; /* too big: the frame takes the next read */
		*bytes += m->len;
		got++;
	}
	rx_unused(p, refs + got, have - got);
	return got;
}

#ifdef BT_HAVE_LIBURING
/* The rest of a batch whose first frame a readv() found: n reads in one
 * submit, into refs[0..n). As many reads as the last batch suggests:
 * double after a full batch, twice what arrived after a short one. Reads
 * that found nothing (-EAGAIN) give their frames back; each frame is
 * stamped when its completion is reaped. Same results as rx_read. */
static uint32_t rx_uring(struct tap_queue *q, uint32_t *refs, uint32_t n,
			 uint64_t *bytes, int *err)
{
	struct tap *t = q->t;
	struct bt_pool *p = t->d->pool;
	struct bt_frame_meta *unused[TAP_MAX_BATCH];
	int32_t res[TAP_MAX_BATCH];
	uint64_t when[TAP_MAX_BATCH];
	uint16_t order[TAP_MAX_BATCH];
	uint64_t submits = 0;
	uint32_t want, have, k = 0, got = 0, nunused = 0;
	int32_t a;

	want = q->rx_hint < n ? q->rx_hint : n;
	a = bt_pool_alloc(t->d->pool_handle, refs, want);
	if (a <= 0)
		return 0; /* the pool ran dry after the first frame */
	have = (uint32_t)a;
	for (uint32_t i = 0; i < have; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->rx_ring);

		res[i] = URING_NOT_SENT;
		if (!sqe)
			continue; /* cannot happen: the ring holds a batch */
		rx_iov(q, p, rx_meta(p, refs[i]), q->rx_iov[i]);
		/* RWF_NOWAIT: an empty queue completes -EAGAIN at once (with
		 * O_NONBLOCK alone io_uring would wait for a packet). */
		io_uring_prep_readv2(sqe, q->fd, q->rx_iov[i], 2, 0,
				     RWF_NOWAIT);
		io_uring_sqe_set_data64(sqe, i);
		order[k++] = (uint16_t)i;
	}
	if (tap_uring_run(&q->rx_ring, order, k, res, when, &submits) ||
	    tap_uring_unsupported(res, have)) {
		/* Broken ring, or no nonblocking io_uring reads here:
		 * plain readv() from now on. */
		io_uring_queue_exit(&q->rx_ring);
		atomic_store_explicit(&q->rx_uring, 0, memory_order_relaxed);
	}
	/* Keep the frames that hold a packet, in order, at the front. */
	for (uint32_t i = 0; i < have; i++) {
		struct bt_frame_meta *m = rx_meta(p, refs[i]);
		int32_t rr = res[i];

		if (rr == URING_PENDING) {
			/* The kernel may still write it: never reuse it. */
			stat_add(&q->rx_stranded, 1);
			continue;
		}
		if (rr >= 0) {
			int f = rx_fill(q, m, (size_t)rr, q->rx_iov[i][0].iov_len,
					when[i]);
			if (f > 0) {
				*bytes += m->len;
				refs[got++] = refs[i];
				continue;
			}
			if (f < 0 && !*err)
				*err = -f;
		} else if (rr != URING_NOT_SENT && rr != -EAGAIN &&
			   rr != -EOPNOTSUPP && !*err) {
			*err = -rr;
		}
		unused[nunused++] = m;
	}
	bt_release_metas(unused, nunused);
	if (got == want)
		q->rx_hint = want * 2 < TAP_MAX_BATCH ? want * 2 : TAP_MAX_BATCH;
	else
		/* Nothing more came: next time probe with one readv first
		 * (a lone packet, a ping, then costs no batch of reads that
		 * all come back empty). */
		q->rx_hint = !got ? 1 : got * 2 > 4 ? got * 2 : 4;
	return got;
}
#endif

/* Read up to n frames from q's fd into frames of the device's pool.
 * Returns how many (refs[] filled, frames HELD and stamped), or a negative
 * errno when the fd failed before anything was read. Never blocks. Sets
 * *noframe when the pool had no frame to read into. */
int32_t tap_rx_batch(struct tap_queue *q, uint32_t *refs, uint32_t n,
			int *noframe)
{
	uint64_t bytes = 0;
	uint32_t got;
	int err = 0;

	*noframe = 0;
	if (n > TAP_MAX_BATCH)
		n = TAP_MAX_BATCH;
	if (!n)
		return 0;
#ifdef BT_HAVE_LIBURING
	/* io_uring: the first frame by readv(). It says whether anything is
	 * there at all (an idle queue costs one syscall and no frames, not a
	 * batch of reads that all come back EAGAIN) and takes that frame;
	 * the rest of the batch is one submit. */
	if (atomic_load_explicit(&q->rx_uring, memory_order_relaxed)) {
		got = rx_read(q, refs, 1, noframe, &bytes, &err);
		if (got != 1 || n == 1 || err)
			return rx_done(q, got, bytes, err);
		if (q->rx_hint <= 1) {
			/* Probing: only a second frame says a batch is
			 * coming. */
			got += rx_read(q, refs + 1, 1, noframe, &bytes, &err);
			if (got == 1 || n == 2 || err)
				return rx_done(q, got, bytes, err);
			q->rx_hint = 4;
		}
		got += rx_uring(q, refs + got, n - got, &bytes, &err);
		return rx_done(q, got, bytes, err);
	}
#endif
	got = rx_read(q, refs, n, noframe, &bytes, &err);
	return rx_done(q, got, bytes, err);
}

int32_t bt_tap_rx(uint32_t h, uint32_t qi, uint32_t *refs, uint32_t max)
{
	int ts = bt_thread_slot();
	struct bt_dev *d;
	struct tap *t;
	int32_t r;
	int expect = 0;

	if (!refs && max)
		return -EFAULT;
	t = tap_enter(h, ts, &d);
	if (!t)
		return -ENXIO;
	if (qi >= t->nqueues) {
		r = -EINVAL;
	} else if ((r = atomic_load(&t->error)) < 0) {
		/* sticky: the device is gone */
	} else if (!atomic_compare_exchange_strong(&t->q[qi].rx_busy, &expect,
						   1)) {
		r = -EBUSY; /* a forwarder (or another reader) owns it */
	} else {
		int noframe;
		r = tap_rx_batch(&t->q[qi], refs, max, &noframe);
		atomic_store(&t->q[qi].rx_busy, 0);
	}
	bt_leave(&d->life, ts);
	return r;
}

static int pool_has_free(struct bt_pool *p)
{
	uint32_t n;

	bt_lock_acquire(&p->lock);
	n = p->nfree;
	bt_lock_release(&p->lock);
	return n > 0;
}

/* Milliseconds left until deadline (ns), for poll(); -1: no deadline. */
static int ms_left(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = bt_now_ns();
	if (now >= deadline)
		return 0;
	return (int)((deadline - now + 999999) / 1000000);
}

/* Sleep until queue qi's fd is readable and the pool has a frame to read
 * into (1), the timeout passes (0), the device closes (-ENXIO) or fails
 * (its error). Call it nonblocking.
 *
 * Readable with an empty pool is not "ready": bt_tap_rx would return 0 at
 * once and a caller looping wait/rx would spin. The pool has no doorbell,
 * so this backs off in 1 ms naps (close still wakes it) until a frame is
 * back or the timeout passes. */
int32_t bt_tap_rx_wait(uint32_t h, uint32_t qi, int32_t timeout_ms)
{
	return bt_tap_rx_wait_cancellable(h, qi, timeout_ms, NULL);
}

/* The fd cannot be woken from outside, so a cancellable wait polls in
 * slices this long and looks at *cancel between them: a cancelled wait
 * gives its thread back within one slice. Several waiters of one queue
 * all wake when the fd turns readable (poll is level-triggered and
 * nothing here consumes the readiness), so no broadcast is needed. */
#define TAP_CANCEL_SLICE_MS 50

int32_t bt_tap_rx_wait_cancellable(uint32_t h, uint32_t qi, int32_t timeout_ms,
				   const uint32_t *cancel_word)
{
	const _Atomic uint32_t *cancel = (const _Atomic uint32_t *)cancel_word;
	int ts = bt_thread_slot();
	uint64_t deadline = 0;
	struct bt_dev *d;
	struct tap *t;
	int32_t r;

	t = tap_enter(h, ts, &d);
	if (!t)
		return -ENXIO;
	if (qi >= t->nqueues) {
		bt_leave(&d->life, ts);
		return -EINVAL;
	}
	if (timeout_ms > 0)
		deadline = bt_now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct pollfd p[2] = { { t->q[qi].fd, POLLIN, 0 },
			       { t->stop_efd, POLLIN, 0 } };
	for (;;) {
		int left = timeout_ms == 0 ? 0 : ms_left(deadline);

		if ((r = atomic_load(&t->error)) < 0)
			break;
		if (cancel && atomic_load_explicit(cancel,
						   memory_order_acquire)) {
			r = 0;
			break;
		}
		if (cancel && (left < 0 || left > TAP_CANCEL_SLICE_MS)) {
			r = poll(p, 2, TAP_CANCEL_SLICE_MS);
			if (r == 0)
				continue; /* a slice, not the timeout */
		} else {
			r = poll(p, 2, left);
		}
		if (r < 0) {
			r = errno == EINTR ? 0 : -errno;
			break;
		}
		if (p[1].revents) {
			r = -ENXIO; /* closing: leave so close can finish */
			break;
		}
		if (r == 0)
			break; /* timed out */
		r = 1;
		if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			break; /* the next rx reports the error */
		if (pool_has_free(d->pool))
			break;
		left = timeout_ms == 0 ? 0 : ms_left(deadline);
		if (left == 0) {
			r = 0;
			break;
		}
		if (poll(&p[1], 1, left < 0 || left > 1 ? 1 : left) > 0) {
			r = -ENXIO;
			break;
		}
	}
	bt_leave(&d->life, ts);
	return r;
}
