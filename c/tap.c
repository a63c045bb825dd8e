/* SPDX-License-Identifier: MIT */
/*
 * TAP devices: a struct bt_dev whose queues end in the kernel.
 *
 * One file descriptor per queue (IFF_MULTI_QUEUE). Each queue gets:
 *
 *   - a writer thread, the reader of the queue's ring. It sleeps with the
 *     same doorbell protocol as bt_queue_wait (need_wakeup, full fence,
 *     re-check, poll the eventfd), drains the ring in batches and writes the
 *     frames to the fd: one io_uring submit per batch, or one write() per
 *     frame. Frames go back to their pool when their write has completed.
 *
 *   - a receive side: bt_tap_rx reads frames from the fd into pool frames
 *     (one FFI crossing per batch), bt_tap_rx_wait sleeps until the fd is
 *     readable, and bt_forward_start runs a thread per queue that reads a
 *     batch and hands it to another device's bt_xmit without leaving C.
 *
 * With IFF_VNET_HDR every frame on the fd starts with a virtio-net header.
 * Transmit zeroes that many bytes of headroom right before the data and
 * writes from there (no copy); receive reads to the same place, so the data
 * lands at data_off as usual and the header sits just before it, its size
 * in meta->vnet_len.
 *
 * A device deleted under us (ip link del) makes the fd fail with EBADFD
 * (or ENODEV). The first such error is kept in the device (sticky);
 * threads stop using the fd, writers keep draining their ring so frames go
 * home, and every later rx/stats call returns the error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifdef BT_HAVE_LIBURING
#include <liburing.h>
#endif

#include "bt_internal.h"

#define TAP_MAX_QUEUES 64
#define TAP_MAX_BATCH BT_MAX_BULK

struct tap_queue {
	int fd;
	int qi;
	struct tap *t;
	pthread_t writer;
	pthread_t fwd;
	int writer_started;
	int fwd_started;
	/* One receiver at a time per fd: bt_tap_rx or a forwarder. */
	_Atomic int rx_busy;
	/* Writer side, written by the writer thread only. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t tx_written;
	_Atomic uint64_t tx_bytes;
	_Atomic uint64_t tx_errors;
	_Atomic uint64_t tx_submits;
	_Atomic uint64_t tx_pollouts;
	/* Receive side, written by the queue's single receiver. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t rx_packets;
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t rx_batches;
	_Atomic uint64_t rx_noframe;
	_Atomic uint64_t fwd_packets;
	_Atomic uint64_t fwd_dropped;
};

struct tap {
	struct bt_dev *d;
	uint32_t handle;
	uint32_t nqueues;
	uint32_t vnet_len;
	uint32_t batch;
	int use_uring;
	int stop_efd; /* readable forever once the device stops */
	int fwd_efd; /* readable while forwarders are told to stop */
	_Atomic int stopping;
	_Atomic int fwd_stopping;
	_Atomic int32_t error; /* first fatal fd error, negative errno */
	pthread_mutex_t fwd_lock;
	uint32_t fwd_dst;
	uint32_t fwd_bulk;
	uint32_t fwd_mode;
	int forwarding;
	char name[IFNAMSIZ];
	struct tap_queue q[];
};

/* Errors that mean the device is gone (the fd lost its device: EBADFD),
 * not that one frame was bad. EIO is not one: the kernel refuses writes
 * with it while the link is down (e.g. while it moves to another netns),
 * and the link may come back up. */
static int fatal_fd_error(int err)
{
	return err == EBADFD || err == ENODEV || err == ENXIO || err == EBADF;
}

static void tap_fail(struct tap *t, int err)
{
	int32_t expected = 0;

	atomic_compare_exchange_strong(&t->error, &expected, -err);
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
	/* Each counter has one writer (the queue's thread or receiver), so a
	 * relaxed load + store is enough; readers only want a snapshot. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
					 v,
			      memory_order_relaxed);
}

/* ---- transmit: the writer thread ------------------------------------ */

/* One frame to write: up to two pieces (a zero header for copies, data). */
struct tx_slot {
	struct iovec iov[2];
	int niov;
	uintptr_t entry;
};

static const uint8_t zero_hdr[16];

/* Turn a ring entry into iovecs. Pool frames: zero the header in the
 * headroom and write from there (the frame is ours while QUEUED, nobody
 * else reads that headroom). Returns 0, or -EINVAL (niov 0: not written,
 * only returned) if a program moved data_off so low that the header would
 * overwrite the metadata. */
static int tx_prepare(struct tap *t, uintptr_t e, struct tx_slot *s)
{
	s->entry = e;
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
		return 0;
	}
	struct bt_pool *pool;
	struct bt_frame_meta *m = bt_frame_from_ptr(e, &pool);
	/* Re-validate what a program could have scribbled on after xmit
	 * checked it: never write from outside the frame. */
	if (!m || !bt_meta_len_ok(pool, m) ||
	    m->data_off < sizeof(*m) + t->vnet_len) {
		s->niov = 0;
		return -EINVAL;
	}
	uint8_t *p = (uint8_t *)m + m->data_off - t->vnet_len;
	memset(p, 0, t->vnet_len);
	s->iov[0].iov_base = p;
	s->iov[0].iov_len = m->len + t->vnet_len;
	s->niov = 1;
	return 0;
}

/* Return written (or failed) entries: frames to their pools in one go,
 * copies to the allocator. */
static void tx_finish(struct tx_slot *s, uint32_t n)
{
	struct bt_frame_meta *metas[TAP_MAX_BATCH];
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (s[i].entry & BT_TAG_COPY)
			free((void *)(s[i].entry & ~BT_TAG_MASK));
		else
			metas[k++] = (struct bt_frame_meta *)s[i].entry;
	}
	bt_release_metas(metas, k);
}

/* Wait until fd is writable or the device stops. 0 or -ESHUTDOWN. */
static int wait_writable(struct tap_queue *q)
{
	struct pollfd p[2] = { { q->fd, POLLOUT, 0 },
			       { q->t->stop_efd, POLLIN, 0 } };

	add(&q->tx_pollouts, 1);
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

/* Account for one write result; returns -1 if the fd is dead. */
static int tx_result(struct tap_queue *q, ssize_t r)
{
	if (r >= 0) {
		add(&q->tx_written, 1);
		add(&q->tx_bytes, (uint64_t)r - q->t->vnet_len);
		return 0;
	}
	add(&q->tx_errors, 1);
	if (fatal_fd_error((int)-r)) {
		tap_fail(q->t, (int)-r);
		return -1;
	}
	return 0;
}

/* One frame with write()/writev(); EAGAIN waits for POLLOUT, never spins. */
static ssize_t write_one(struct tap_queue *q, struct tx_slot *s)
{
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
		int w = wait_writable(q);
		if (w)
			return w;
	}
}

static void tx_write_batch(struct tap_queue *q, struct tx_slot *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (atomic_load_explicit(&q->t->error, memory_order_relaxed)) {
			add(&q->tx_errors, n - i);
			return;
		}
		if (!s[i].niov)
			continue;
		add(&q->tx_submits, 1);
		tx_result(q, write_one(q, &s[i]));
	}
}

#ifdef BT_HAVE_LIBURING
/* One submit for the whole batch, then reap every completion. Writes that
 * came back EAGAIN are retried one by one with write_one (which waits for
 * POLLOUT): rare on a TAP, whose writes do not block, so simple wins. */
static void tx_uring_batch(struct tap_queue *q, struct io_uring *ring,
			   struct tx_slot *s, uint32_t n)
{
	uint32_t done = 0, want = 0;
	int32_t res[TAP_MAX_BATCH];

	if (atomic_load_explicit(&q->t->error, memory_order_relaxed)) {
		add(&q->tx_errors, n);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe;

		res[i] = 0;
		if (!s[i].niov)
			continue;
		/* The ring has as many entries as the largest batch. */
		sqe = io_uring_get_sqe(ring);
		want++;
		if (s[i].niov == 1)
			io_uring_prep_write(sqe, q->fd, s[i].iov[0].iov_base,
					    (unsigned)s[i].iov[0].iov_len, 0);
		else
			io_uring_prep_writev(sqe, q->fd, s[i].iov,
					     (unsigned)s[i].niov, 0);
		io_uring_sqe_set_data64(sqe, i);
	}
	add(&q->tx_submits, 1);
	if (!want)
		return;
	int r = io_uring_submit_and_wait(ring, want);
	while (r == -EINTR)
		r = io_uring_submit_and_wait(ring, 0);
	if (r < 0) {
		/* Nothing was submitted: fall back for this batch. */
		tx_write_batch(q, s, n);
		return;
	}
	while (done < want) {
		struct io_uring_cqe *cqe;
		int w = io_uring_wait_cqe(ring, &cqe);
		if (w == -EINTR)
			continue;
		if (w < 0)
			break;
		res[io_uring_cqe_get_data64(cqe)] = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		done++;
	}
	for (uint32_t i = 0; i < n; i++) {
		ssize_t rr = res[i];
		if (!s[i].niov)
			continue;
		if (rr == -EAGAIN)
			rr = write_one(q, &s[i]);
		tx_result(q, rr);
	}
}
#endif

/* Take up to n entries under the consumer lock (once per batch). */
static uint32_t ring_take(struct bt_queue *bq, uintptr_t *e, uint32_t n)
{
	uint32_t k;

	bt_lock_acquire(&bq->ring.consumer_lock);
	k = bt_ring_consume_batch(&bq->ring, e, n);
	bt_lock_release(&bq->ring.consumer_lock);
	return k;
}

static int ring_has(struct bt_queue *bq)
{
	int r;

	bt_lock_acquire(&bq->ring.consumer_lock);
	r = !bt_ring_empty(&bq->ring);
	bt_lock_release(&bq->ring.consumer_lock);
	return r;
}

/* Sleep until a producer rings the doorbell or the device stops. The
 * protocol of device.c: announce (need_wakeup = 1), full fence, look again;
 * a producer publishes, fences, then reads need_wakeup. One of the two
 * sees the other's store, so the doorbell is never lost. */
static void writer_sleep(struct tap *t, struct bt_queue *bq)
{
	struct pollfd p[2] = { { bq->efd, POLLIN, 0 },
			       { t->stop_efd, POLLIN, 0 } };
	eventfd_t v;

	atomic_store_explicit(&bq->need_wakeup, 1, memory_order_relaxed);
	bt_full_fence();
	if (!ring_has(bq) && !atomic_load(&t->stopping)) {
		add(&bq->rx_sleeps, 1);
		while (poll(p, 2, -1) < 0 && errno == EINTR)
			;
		eventfd_read(bq->efd, &v); /* nonblocking: reset the count */
	}
	atomic_store_explicit(&bq->need_wakeup, 0, memory_order_relaxed);
}

static void *writer_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	struct bt_queue *bq = &t->d->queues[q->qi];
	uintptr_t e[TAP_MAX_BATCH];
	struct tx_slot s[TAP_MAX_BATCH];
#ifdef BT_HAVE_LIBURING
	int uring = 0;
	struct io_uring ring;

	if (t->use_uring)
		uring = io_uring_queue_init(t->batch, &ring, 0) == 0;
#endif

	while (!atomic_load_explicit(&t->stopping, memory_order_acquire)) {
		uint32_t k = ring_take(bq, e, t->batch);

		if (!k) {
			writer_sleep(t, bq);
			continue;
		}
		/* Counted like a ring reader, so dev stats show the drain. */
		add(&bq->rx_packets, k);
		add(&bq->rx_batches, 1);
		for (uint32_t i = 0; i < k; i++)
			if (tx_prepare(t, e[i], &s[i]))
				add(&q->tx_errors, 1);
#ifdef BT_HAVE_LIBURING
		if (uring)
			tx_uring_batch(q, &ring, s, k);
		else
#endif
			tx_write_batch(q, s, k);
		/* Written (completed) or failed: either way they go home. */
		tx_finish(s, k);
	}
#ifdef BT_HAVE_LIBURING
	if (uring)
		io_uring_queue_exit(&ring);
#endif
	return NULL;
}

/* ---- receive -------------------------------------------------------- */

/* Read up to n frames from q's fd into frames of pool. Returns how many
 * (refs[] filled, frames HELD and stamped), or a negative errno when the
 * fd failed before anything was read. Never blocks. */
static int32_t rx_batch(struct tap_queue *q, uint32_t *refs, uint32_t n,
			int *noframe)
{
	struct tap *t = q->t;
	struct bt_pool *p = t->d->pool;
	struct bt_frame_meta *unused[TAP_MAX_BATCH];
	int32_t got, have;
	uint64_t bytes = 0, now;
	int err = 0;

	if (n > TAP_MAX_BATCH)
		n = TAP_MAX_BATCH;
	*noframe = 0;
	have = bt_pool_alloc(t->d->pool_handle, refs, n);
	if (have <= 0) {
		add(&q->rx_noframe, 1);
		*noframe = 1;
		return have < 0 ? have : 0;
	}
	for (got = 0; got < have; got++) {
		struct bt_frame_meta *m = bt_frame_at(p, refs[got] &
								 BT_REF_INDEX_MASK);
		uint8_t *at = (uint8_t *)m + m->data_off - t->vnet_len;
		size_t cap = p->frame_size - m->data_off + t->vnet_len;
		ssize_t r = read(q->fd, at, cap);

		if (r < 0) {
			err = errno;
			break;
		}
		if ((size_t)r < t->vnet_len) {
			err = EIO; /* cannot happen with the header set */
			break;
		}
		m->len = (uint32_t)r - t->vnet_len;
		m->vnet_len = (uint16_t)t->vnet_len;
		m->queue = (uint16_t)q->qi;
		bytes += m->len;
	}
	/* Frames we did not fill go straight back. */
	for (int32_t i = got; i < have; i++)
		unused[i - got] =
			bt_frame_at(p, refs[i] & BT_REF_INDEX_MASK);
	bt_release_metas(unused, (uint32_t)(have - got));
	if (got) {
		now = bt_now_ns();
		for (int32_t i = 0; i < got; i++)
			bt_frame_at(p, refs[i] & BT_REF_INDEX_MASK)->tstamp_ns =
				now;
		add(&q->rx_packets, (uint64_t)got);
		add(&q->rx_bytes, bytes);
		add(&q->rx_batches, 1);
	}
	if (err && err != EAGAIN && err != EINTR) {
		if (fatal_fd_error(err))
			tap_fail(t, err);
		if (!got)
			return -err;
	}
	return got;
}

static struct tap *tap_of(struct bt_dev *d);

/* Enter h as a TAP device; on success the caller must bt_leave. */
static struct tap *tap_enter(uint32_t h, int ts, struct bt_dev **dp)
{
	struct bt_dev *d = bt_dev_enter(h, ts);
	struct tap *t;

	if (!d)
		return NULL;
	t = tap_of(d);
	if (!t) {
		bt_leave(&d->life, ts);
		return NULL;
	}
	*dp = d;
	return t;
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
		r = rx_batch(&t->q[qi], refs, max, &noframe);
		atomic_store(&t->q[qi].rx_busy, 0);
	}
	bt_leave(&d->life, ts);
	return r;
}

/* Sleep until queue qi's fd is readable (1), the timeout passes (0), the
 * device closes (-ENXIO) or fails (its error). Call it nonblocking. */
int32_t bt_tap_rx_wait(uint32_t h, uint32_t qi, int32_t timeout_ms)
{
	int ts = bt_thread_slot();
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
	struct pollfd p[2] = { { t->q[qi].fd, POLLIN, 0 },
			       { t->stop_efd, POLLIN, 0 } };
	r = atomic_load(&t->error);
	if (r == 0) {
		r = poll(p, 2, timeout_ms);
		if (r < 0)
			r = errno == EINTR ? 0 : -errno;
		else if (p[1].revents)
			r = -ENXIO; /* closing: leave so close can finish */
		else if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			r = 1; /* the next rx reports the error */
		else
			r = r > 0;
	}
	bt_leave(&d->life, ts);
	return r;
}

/* ---- forwarding ----------------------------------------------------- */

static void *fwd_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	uint32_t refs[TAP_MAX_BATCH];
	struct pollfd p[3] = { { q->fd, POLLIN, 0 },
			       { t->stop_efd, POLLIN, 0 },
			       { t->fwd_efd, POLLIN, 0 } };
	const struct timespec no_frames = { 0, 100000 };

	for (;;) {
		int noframe;
		int32_t n = rx_batch(q, refs, t->fwd_bulk, &noframe);

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
			    atomic_load(&t->fwd_stopping) ||
			    atomic_load(&t->stopping))
				break;
			continue;
		}
		int32_t sent = 0;
		int cpu = q->qi;
		if (t->fwd_mode == BT_FWD_SINGLE) {
			for (int32_t i = 0; i < n; i++) {
				int32_t r = bt_xmit(t->fwd_dst, &refs[i], 1,
						    i == n - 1 ? BT_XMIT_FLUSH :
								 0,
						    cpu);
				sent += r > 0 ? r : 0;
			}
		} else {
			/* One call, one lock, one doorbell per batch. On
			 * error (destination closed) xmit gave the frames
			 * back already. */
			int32_t r = bt_xmit(t->fwd_dst, refs, (uint32_t)n,
					    BT_XMIT_FLUSH, cpu);
			sent = r > 0 ? r : 0;
		}
		add(&q->fwd_packets, (uint64_t)sent);
		if (sent < n)
			add(&q->fwd_dropped, (uint64_t)(n - sent));
		if (atomic_load_explicit(&t->fwd_stopping,
					 memory_order_relaxed) ||
		    atomic_load_explicit(&t->stopping, memory_order_relaxed))
			break;
	}
	atomic_store(&q->rx_busy, 0);
	return NULL;
}

static void fwd_join(struct tap *t)
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

	if (bulk < 1 || bulk > TAP_MAX_BATCH || mode > BT_FWD_SINGLE)
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
			fwd_join(t);
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
	fwd_join(t);
	pthread_mutex_unlock(&t->fwd_lock);
	bt_leave(&d->life, ts);
	return was;
}

/* ---- statistics ----------------------------------------------------- */

int32_t bt_tap_stats(uint32_t h, uint64_t *out, uint32_t n)
{
	int ts = bt_thread_slot();
	uint64_t v[BT_TS_COUNT] = { 0 };
	struct bt_dev *d;
	struct tap *t;

	if (!out && n)
		return -EFAULT;
	t = tap_enter(h, ts, &d);
	if (!t)
		return -ENXIO;
	for (uint32_t i = 0; i < t->nqueues; i++) {
		struct tap_queue *q = &t->q[i];
		v[BT_TS_TX_WRITTEN] += atomic_load(&q->tx_written);
		v[BT_TS_TX_BYTES] += atomic_load(&q->tx_bytes);
		v[BT_TS_TX_ERRORS] += atomic_load(&q->tx_errors);
		v[BT_TS_TX_SUBMITS] += atomic_load(&q->tx_submits);
		v[BT_TS_TX_POLLOUTS] += atomic_load(&q->tx_pollouts);
		v[BT_TS_RX_PACKETS] += atomic_load(&q->rx_packets);
		v[BT_TS_RX_BYTES] += atomic_load(&q->rx_bytes);
		v[BT_TS_RX_BATCHES] += atomic_load(&q->rx_batches);
		v[BT_TS_RX_NOFRAME] += atomic_load(&q->rx_noframe);
		v[BT_TS_FWD_PACKETS] += atomic_load(&q->fwd_packets);
		v[BT_TS_FWD_DROPPED] += atomic_load(&q->fwd_dropped);
	}
	v[BT_TS_ERROR] = (uint64_t)-atomic_load(&t->error);
	v[BT_TS_IO_URING] = (uint64_t)t->use_uring;
	v[BT_TS_VNET_LEN] = t->vnet_len;
	bt_leave(&d->life, ts);
	if (n > BT_TS_COUNT)
		n = BT_TS_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_TS_COUNT;
}

/* ---- open and close ------------------------------------------------- */

static void tap_stop(struct bt_dev *d)
{
	struct tap *t = d->backend;

	/* stopping before the eventfd write: a thread woken by it (or one
	 * that has not slept yet) reads stopping == 1 and leaves. */
	atomic_store_explicit(&t->stopping, 1, memory_order_seq_cst);
	eventfd_write(t->stop_efd, 1);
	pthread_mutex_lock(&t->fwd_lock);
	fwd_join(t);
	pthread_mutex_unlock(&t->fwd_lock);
	for (uint32_t i = 0; i < t->nqueues; i++) {
		if (t->q[i].writer_started)
			pthread_join(t->q[i].writer, NULL);
		t->q[i].writer_started = 0;
	}
}

static void tap_release(struct bt_dev *d)
{
	struct tap *t = d->backend;

	for (uint32_t i = 0; i < t->nqueues; i++)
		if (t->q[i].fd >= 0)
			close(t->q[i].fd);
	close(t->stop_efd);
	close(t->fwd_efd);
	pthread_mutex_destroy(&t->fwd_lock);
	free(t);
}

static const struct bt_backend_ops tap_ops = {
	.stop = tap_stop,
	.release = tap_release,
};

static struct tap *tap_of(struct bt_dev *d)
{
	return d->ops == &tap_ops ? d->backend : NULL;
}

/* IFNAMSIZ includes the NUL; the kernel also refuses '/', ':' and
 * whitespace (dev_valid_name), and "." / "..". */
static int name_ok(const char *name)
{
	size_t n = strnlen(name, IFNAMSIZ);

	if (n == 0 || n >= IFNAMSIZ)
		return 0;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == ':' || c <= ' ' || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Bring the link up and set its MTU, touching only what differs, so an
 * unprivileged owner of a persistent TAP that is already configured needs
 * no CAP_NET_ADMIN. */
static int link_setup(const char *name, uint32_t mtu)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (mtu) {
		if (ioctl(s, SIOCGIFMTU, &ifr) < 0) {
			r = -errno;
			goto out;
		}
		if ((uint32_t)ifr.ifr_mtu != mtu) {
			ifr.ifr_mtu = (int)mtu;
			if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
				r = -errno;
				goto out;
			}
		}
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		r = -errno;
		goto out;
	}
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = -errno;
	}
out:
	close(s);
	return r;
}

static int exists(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	r = ioctl(s, SIOCGIFINDEX, &ifr) == 0 ? 1 : (errno == ENODEV ? 0 : -errno);
	close(s);
	return r;
}

static int open_queue(const char *name, uint32_t vnet_len)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE;
	if (vnet_len)
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	if (vnet_len) {
		int sz = (int)vnet_len;
		if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
	}
	return fd;
}

int32_t bt_tap_open(uint32_t pool, const char *name, uint32_t nqueues,
		    uint32_t ring_size, uint32_t mtu, uint32_t vnet_len,
		    uint32_t flags, uint32_t batch)
{
	struct bt_pool *p;
	struct bt_dev *d;
	struct tap *t;
	int32_t h, r;
	int ts = bt_thread_slot();
	char nm[IFNAMSIZ];

	if (!name)
		return -EFAULT;
	if (!name_ok(name))
		return -EINVAL;
	memset(nm, 0, sizeof(nm));
	memcpy(nm, name, strlen(name));
	if (nqueues < 1 || nqueues > TAP_MAX_QUEUES)
		return -EINVAL;
	if (vnet_len != 0 && vnet_len != 10 && vnet_len != 12)
		return -EINVAL;
	if (flags & ~(BT_TAP_CREATE | BT_TAP_WRITE))
		return -EINVAL;
	if (batch < 1 || batch > TAP_MAX_BATCH)
		return -EINVAL;
	if (mtu && (mtu < 68 || mtu > 65535))
		return -EINVAL;
	p = bt_pool_get(pool);
	if (!p)
		return -ENXIO;
	/* The header goes below the data, above the metadata. */
	if (p->headroom < sizeof(struct bt_frame_meta) + vnet_len)
		return -ENOSPC;
	/* A frame must hold the largest frame the kernel can hand us. */
	if (mtu && mtu + 18 > p->frame_size - p->headroom)
		return -EINVAL;
	r = exists(nm);
	if (r < 0)
		return r;
	if (r == 0 && !(flags & BT_TAP_CREATE))
		return -ENOENT;

	t = calloc(1, sizeof(*t) + nqueues * sizeof(struct tap_queue));
	if (!t)
		return -ENOMEM;
	memcpy(t->name, nm, sizeof(nm));
	t->nqueues = nqueues;
	t->vnet_len = vnet_len;
	t->batch = batch;
#ifdef BT_HAVE_LIBURING
	t->use_uring = !(flags & BT_TAP_WRITE);
#endif
	pthread_mutex_init(&t->fwd_lock, NULL);
	t->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->fwd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (uint32_t i = 0; i < nqueues; i++) {
		t->q[i].fd = -1;
		t->q[i].qi = (int)i;
		t->q[i].t = t;
	}
	if (t->stop_efd < 0 || t->fwd_efd < 0) {
		r = -errno;
		goto fail_fds;
	}
	for (uint32_t i = 0; i < nqueues; i++) {
		r = open_queue(nm, vnet_len);
		if (r < 0) {
			/* An existing device of another kind or without
			 * multi_queue: the kernel says EINVAL; say what it
			 * means. */
			if (r == -EINVAL && i == 0 && exists(nm) == 1)
				r = -EEXIST;
			goto fail_fds;
		}
		t->q[i].fd = r;
	}
	r = link_setup(nm, mtu);
	if (r < 0)
		goto fail_fds;
	/* uring wanted: check once that it works here, else fall back. */
#ifdef BT_HAVE_LIBURING
	if (t->use_uring) {
		struct io_uring probe;
		if (io_uring_queue_init(batch, &probe, 0) == 0)
			io_uring_queue_exit(&probe);
		else
			t->use_uring = 0;
	}
#endif

	h = bt_dev_create(pool, nqueues, ring_size);
	if (h < 0) {
		r = h;
		goto fail_fds;
	}
	d = bt_dev_enter((uint32_t)h, ts);
	if (!d) {
		r = -ENXIO;
		goto fail_fds;
	}
	t->d = d;
	t->handle = (uint32_t)h;
	/* The handle is not returned yet, so nobody else can close the
	 * device while the backend is being attached. */
	d->backend = t;
	d->ops = &tap_ops;
	for (uint32_t i = 0; i < nqueues; i++) {
		int e = pthread_create(&t->q[i].writer, NULL, writer_main,
				       &t->q[i]);
		if (e) {
			bt_leave(&d->life, ts);
			bt_dev_close((uint32_t)h); /* stops the started ones */
			return -e;
		}
		t->q[i].writer_started = 1;
	}
	bt_leave(&d->life, ts);
	return h;

fail_fds:
	for (uint32_t i = 0; i < nqueues; i++)
		if (t->q[i].fd >= 0)
			close(t->q[i].fd);
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	if (t->fwd_efd >= 0)
		close(t->fwd_efd);
	pthread_mutex_destroy(&t->fwd_lock);
	free(t);
	return r;
}

/* What bt_tap_open would do with a name, without opening: 0 if valid. */
int32_t bt_tap_name_check(const char *name)
{
	if (!name)
		return -EFAULT;
	return name_ok(name) ? 0 : -EINVAL;
}
