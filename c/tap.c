/* SPDX-License-Identifier: MIT */
/*
 * TAP devices: a struct bt_dev whose queues end in the kernel.
 *
 * One file descriptor per queue (IFF_MULTI_QUEUE). Each queue gets:
 *
 *   - a writer thread, the reader of the queue's ring. It sleeps on the
 *     queue's doorbell like bt_queue_wait (bt_queue_sleep: arm, full fence,
 *     re-check, futex), drains the ring in batches and writes the
 *     frames to the fd: one io_uring submit per batch, or one write() per
 *     frame. Frames go back to their pool when their write has completed
 *     (for io_uring: when its completion has been reaped, never earlier).
 *
 *   - a receive side: bt_tap_rx reads frames from the fd into pool frames
 *     (one FFI crossing per batch): one io_uring submit of a batch of reads,
 *     or one readv() per frame. bt_tap_rx_wait sleeps until the fd is
 *     readable and the pool has a frame to read into, and bt_forward_start
 *     runs a thread per queue that reads a batch and hands it to another
 *     device's bt_xmit without leaving C.
 *
 * io_uring rings are set up at open, one pair per queue, so the statistics
 * say from the first call which side uses them. A ring that fails later is
 * torn down and that side goes on with plain syscalls (also visible in the
 * statistics).
 *
 * With IFF_VNET_HDR every frame on the fd starts with a virtio-net header.
 * Transmit zeroes that many bytes of headroom right before the data and
 * writes from there (no copy); receive reads to the same place, so the data
 * lands at data_off as usual and the header sits just before it, its size
 * in meta->vnet_len.
 *
 * A read into a buffer smaller than the packet returns the buffer's size
 * (the rest is lost), so a too-big packet looks like one that fits exactly.
 * Every read therefore has a second, small iovec after the frame (spill):
 * a result beyond the frame's room means the packet did not fit. It is
 * counted (rx_truncated) and its frame reused, never handed on cut short.
 *
 * A device deleted under us (ip link del) makes the fd fail with EBADFD
 * (or ENODEV). The first such error is kept in the device (sticky);
 * threads stop using the fd, writers keep draining their ring so frames go
 * home, bt_xmit refuses new frames with -ENODEV (returning them), and every
 * later rx/stats call returns the error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
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

#define TAP_MAX_QUEUES BT_TAP_MAX_QUEUES
#define TAP_MAX_BATCH BT_MAX_BULK
#define TAP_SPILL 64 /* bytes past a frame that show a read did not fit */

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
	/* 1 while the writer / the receiver use their io_uring ring. Each is
	 * cleared only by its side (when its ring fails); stats read them. */
	_Atomic int tx_uring;
	_Atomic int rx_uring;
	uint32_t rx_hint; /* reads to submit next time (receiver only) */
#ifdef BT_HAVE_LIBURING
	struct io_uring tx_ring; /* the writer's */
	struct io_uring rx_ring; /* the receiver's (whoever holds rx_busy) */
	/* A read's iovecs must live until its completion is reaped. */
	struct iovec rx_iov[TAP_MAX_BATCH][2];
#endif
	/* Where a packet too big for its frame spills; never read. The
	 * kernel may write it from several reads at once: harmless. */
	uint8_t spill[TAP_SPILL];
	/* Writer side, written by the writer thread only. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t tx_written;
	_Atomic uint64_t tx_bytes;
	_Atomic uint64_t tx_errors;
	_Atomic uint64_t tx_submits;
	_Atomic uint64_t tx_pollouts;
	_Atomic uint64_t tx_stranded;
	/* Receive side, written by the queue's single receiver. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t rx_packets;
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t rx_batches;
	_Atomic uint64_t rx_noframe;
	_Atomic uint64_t rx_truncated;
	_Atomic uint64_t rx_stranded;
	_Atomic uint64_t fwd_packets;
	_Atomic uint64_t fwd_dropped;
};

struct tap {
	struct bt_dev *d;
	uint32_t handle;
	uint32_t nqueues;
	uint32_t vnet_len;
	uint32_t batch;
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

	if (atomic_compare_exchange_strong(&t->error, &expected, -err))
		/* From now on bt_xmit refuses frames (giving them back) instead
		 * of queueing them for a writer that can only fail them. */
		atomic_store_explicit(&t->d->backend_dead, -ENODEV,
				      memory_order_relaxed);
}

static void add(_Atomic uint64_t *c, uint64_t v)
{
	/* Each counter has one writer (the queue's thread or receiver), so a
	 * relaxed load + store is enough; readers only want a snapshot. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
					 v,
			      memory_order_relaxed);
}

/* ---- io_uring: one submit, every completion reaped ------------------- */

#ifdef BT_HAVE_LIBURING
#define URING_PENDING INT32_MIN /* submitted, completion not reaped */
#define URING_NOT_SENT (INT32_MIN + 1) /* prepared, never submitted */

/* Wait for one completion and record its result (and, if asked, the time
 * it was reaped) under its user data, an index into res. Every request is
 * RWF_NOWAIT, so its completion is posted before the submit returns; the
 * timeout is only a net that keeps a broken ring from hanging a thread
 * (and close, which joins it): -ETIME then fails the ring. */
static int uring_reap_one(struct io_uring *ring, int32_t *res, uint64_t *when)
{
	struct __kernel_timespec ts = { .tv_sec = 2, .tv_nsec = 0 };
	struct io_uring_cqe *cqe;
	uint64_t i;
	int w;

	do
		w = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	while (w == -EINTR);
	if (w < 0)
		return w;
	i = io_uring_cqe_get_data64(cqe);
	if (i < TAP_MAX_BATCH) {
		res[i] = cqe->res;
		if (when)
			when[i] = bt_now_ns();
	}
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/*
 * Submit the n SQEs prepared on ring (order[k]: user data of the k-th
 * prepared, an index into res) and reap a completion for every one the
 * kernel took. Submits until the submission queue is empty: a short submit
 * is followed by another, after reaping if the kernel is short of room.
 *
 * Returns 0, or a negative errno if the ring failed. Then res says what is
 * known of each entry: its result, URING_NOT_SENT (the kernel never saw it,
 * the caller may do it another way) or URING_PENDING (the kernel took it
 * but its completion could not be reaped: its buffer may still be in use
 * and must never be reused). A failed ring may still hold unsubmitted SQEs:
 * the caller must tear it down and not submit on it again.
 */
static int uring_run(struct io_uring *ring, const uint16_t *order, uint32_t n,
		     int32_t *res, uint64_t *when, uint64_t *submits)
{
	uint32_t sent = 0, reaped = 0;
	int err = 0;

	for (uint32_t k = 0; k < n; k++)
		res[order[k]] = URING_PENDING;
	while (sent < n) {
		int r = io_uring_submit(ring);

		if (r > 0) {
			sent += (uint32_t)r;
			(*submits)++;
			continue;
		}
		if (r == -EINTR)
			continue;
		/* Out of room for completions or short of kernel memory:
		 * reaping what is in flight makes room. */
		if ((r == -EAGAIN || r == -EBUSY) && reaped < sent) {
			err = uring_reap_one(ring, res, when);
			if (err)
				break;
			reaped++;
			continue;
		}
		err = r < 0 ? r : -EIO;
		break;
	}
	while (!err && reaped < sent) {
		err = uring_reap_one(ring, res, when);
		if (!err)
			reaped++;
	}
	/* SQEs are consumed in the order they were prepared. */
	for (uint32_t k = sent; k < n; k++)
		res[order[k]] = URING_NOT_SENT;
	return err;
}

/* Did the kernel refuse RWF_NOWAIT requests on this fd (an old kernel)? */
static int uring_unsupported(const int32_t *res, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (res[i] == -EOPNOTSUPP)
			return 1;
	return 0;
}
#endif

/* ---- transmit: the writer thread ------------------------------------ */

/* One frame to write: up to two pieces (a zero header for copies, data). */
struct tx_slot {
	struct iovec iov[2];
	int niov;
	int keep; /* its completion was never reaped: never reuse it */
	size_t len; /* bytes a complete write writes */
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
	s->keep = 0;
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

/* Account for one write result: a write counts only if it wrote the whole
 * frame (a short write is an error, like a failed one). */
static void tx_result(struct tap_queue *q, const struct tx_slot *s, ssize_t r)
{
	if (r >= 0 && (size_t)r == s->len) {
		add(&q->tx_written, 1);
		add(&q->tx_bytes, s->len - q->t->vnet_len);
		return;
	}
	add(&q->tx_errors, 1);
	if (r < 0 && fatal_fd_error((int)-r))
		tap_fail(q->t, (int)-r);
}

/* One frame with write()/writev(); EAGAIN waits for POLLOUT, never spins. */
static ssize_t write_one(struct tap_queue *q, struct tx_slot *s)
{
	add(&q->tx_submits, 1);
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
		add(&q->tx_submits, 1);
	}
}

/* Entries still to write once the device failed: counted as errors (those
 * tx_prepare refused were counted already) and only returned. */
static int tx_failed(struct tap_queue *q, const struct tx_slot *s, uint32_t n)
{
	uint64_t k = 0;

	if (!atomic_load_explicit(&q->t->error, memory_order_relaxed))
		return 0;
	for (uint32_t i = 0; i < n; i++)
		k += s[i].niov != 0;
	add(&q->tx_errors, k);
	return 1;
}

static void tx_write_batch(struct tap_queue *q, struct tx_slot *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (tx_failed(q, s + i, n - i))
			return;
		if (s[i].niov)
			tx_result(q, &s[i], write_one(q, &s[i]));
	}
}

#ifdef BT_HAVE_LIBURING
/* One submit for the whole batch, then reap every completion. Writes that
 * came back EAGAIN (the kernel's send buffer is full) are then written one
 * by one, in order, with write_one (which waits for POLLOUT); so are any
 * the kernel never took because the ring failed, after which this writer
 * uses write() for good.
 *
 * The writes are not linked (IOSQE_IO_LINK would stop the batch at the
 * first EAGAIN, but linked requests run one after another through the
 * link machinery: measured here, io_uring then lost its whole advantage
 * over write()). So under EAGAIN a frame can be overtaken by a later one of
 * the same batch, if the kernel frees send-buffer room between two writes
 * of one submit. Without a small sndbuf a TAP write does not EAGAIN. */
static void tx_uring_batch(struct tap_queue *q, struct tx_slot *s, uint32_t n)
{
	int32_t res[TAP_MAX_BATCH];
	uint16_t order[TAP_MAX_BATCH];
	uint64_t submits = 0;
	uint32_t k = 0;
	int err;

	if (tx_failed(q, s, n))
		return;
	for (uint32_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = NULL;

		res[i] = URING_NOT_SENT;
		if (!s[i].niov)
			continue;
		/* The ring holds a whole batch and is empty between batches,
		 * so this does not fail; if it did, write() takes the frame. */
		sqe = io_uring_get_sqe(&q->tx_ring);
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
	err = uring_run(&q->tx_ring, order, k, res, NULL, &submits);
	add(&q->tx_submits, submits);
	if (err) {
		io_uring_queue_exit(&q->tx_ring);
		atomic_store_explicit(&q->tx_uring, 0, memory_order_relaxed);
	}
	if (!err && uring_unsupported(res, n)) {
		/* This kernel cannot do nonblocking io_uring writes here. */
		io_uring_queue_exit(&q->tx_ring);
		atomic_store_explicit(&q->tx_uring, 0, memory_order_relaxed);
	}
	for (uint32_t i = 0; i < n; i++) {
		int32_t r = res[i];

		if (!s[i].niov)
			continue;
		if (r == URING_PENDING) {
			s[i].keep = 1;
			add(&q->tx_stranded, 1);
			continue;
		}
		/* Not written (the send buffer was full, or the kernel never
		 * saw it): now, one by one. */
		if (r == URING_NOT_SENT || r == -EAGAIN || r == -EOPNOTSUPP) {
			if (tx_failed(q, s + i, 1))
				continue;
			tx_result(q, &s[i], write_one(q, &s[i]));
			continue;
		}
		tx_result(q, &s[i], r);
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

static void *writer_main(void *arg)
{
	struct tap_queue *q = arg;
	struct tap *t = q->t;
	struct bt_queue *bq = &t->d->queues[q->qi];
	uintptr_t e[TAP_MAX_BATCH];
	struct tx_slot s[TAP_MAX_BATCH];

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
		if (atomic_load_explicit(&q->tx_uring, memory_order_relaxed))
			tx_uring_batch(q, s, k);
		else
#endif
			tx_write_batch(q, s, k);
		/* Written (completed) or failed: either way they go home. */
		tx_finish(s, k);
	}
	return NULL;
}

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
 * Returns 1 (m holds a frame), 0 (the packet did not fit: counted, m is
 * free for another read) or -EIO (shorter than the vnet header). */
static int rx_fill(struct tap_queue *q, struct bt_frame_meta *m, size_t r,
		   size_t cap, uint64_t now)
{
	uint32_t vnet = q->t->vnet_len;

	if (r > cap) {
		add(&q->rx_truncated, 1);
		return 0;
	}
	if (r < vnet)
		return -EIO; /* cannot happen with the header set */
	m->len = (uint32_t)(r - vnet);
	m->vnet_len = (uint16_t)vnet;
	m->queue = (uint16_t)q->qi;
	m->tstamp_ns = now;
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
		add(&q->rx_packets, got);
		add(&q->rx_bytes, bytes);
		add(&q->rx_batches, 1);
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
					add(&q->rx_noframe, 1);
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
	if (uring_run(&q->rx_ring, order, k, res, when, &submits) ||
	    uring_unsupported(res, have)) {
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
			add(&q->rx_stranded, 1);
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
		q->rx_hint = got * 2 > 4 ? got * 2 : 4;
	return got;
}
#endif

/* Read up to n frames from q's fd into frames of the device's pool.
 * Returns how many (refs[] filled, frames HELD and stamped), or a negative
 * errno when the fd failed before anything was read. Never blocks. Sets
 * *noframe when the pool had no frame to read into. */
static int32_t rx_batch(struct tap_queue *q, uint32_t *refs, uint32_t n,
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
		if (got == 1 && n > 1 && !err)
			got += rx_uring(q, refs + 1, n - 1, &bytes, &err);
		return rx_done(q, got, bytes, err);
	}
#endif
	got = rx_read(q, refs, n, noframe, &bytes, &err);
	return rx_done(q, got, bytes, err);
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

/* ---- forwarding ----------------------------------------------------- */

/* bt_xmit failed as a whole: the frames it did not give back itself go
 * home here. Either way they count as dropped. */
static void fwd_refused(int32_t r, const uint32_t *refs, uint32_t n)
{
	if (!bt_xmit_returned_frames(r))
		bt_release_refs(refs, n);
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
				if (r < 0)
					fwd_refused(r, &refs[i], 1);
				sent += r > 0 ? r : 0;
			}
		} else {
			/* One call, one lock, one doorbell per batch. */
			int32_t r = bt_xmit(t->fwd_dst, refs, (uint32_t)n,
					    BT_XMIT_FLUSH, cpu);
			if (r < 0)
				fwd_refused(r, refs, (uint32_t)n);
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
		v[BT_TS_RX_TRUNCATED] += atomic_load(&q->rx_truncated);
		v[BT_TS_STRANDED] += atomic_load(&q->tx_stranded) +
				     atomic_load(&q->rx_stranded);
		v[BT_TS_TX_URING_QUEUES] += (uint64_t)atomic_load(&q->tx_uring);
		v[BT_TS_RX_URING_QUEUES] += (uint64_t)atomic_load(&q->rx_uring);
	}
	v[BT_TS_ERROR] = (uint64_t)-atomic_load(&t->error);
	/* True only if every writer uses io_uring right now. */
	v[BT_TS_IO_URING] = v[BT_TS_TX_URING_QUEUES] == t->nqueues;
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

	/* stopping before the eventfd write and the doorbells: a thread
	 * woken by them (or one that has not slept yet) reads stopping == 1
	 * and leaves. */
	atomic_store_explicit(&t->stopping, 1, memory_order_seq_cst);
	eventfd_write(t->stop_efd, 1);
	for (uint32_t i = 0; i < t->nqueues; i++)
		bt_queue_ring(&d->queues[i]);
	pthread_mutex_lock(&t->fwd_lock);
	fwd_join(t);
	pthread_mutex_unlock(&t->fwd_lock);
	for (uint32_t i = 0; i < t->nqueues; i++) {
		if (t->q[i].writer_started)
			pthread_join(t->q[i].writer, NULL);
		t->q[i].writer_started = 0;
	}
}

/* Free what the backend owns: rings, fds, memory. No thread uses them. */
static void tap_free(struct tap *t)
{
	for (uint32_t i = 0; i < t->nqueues; i++) {
		struct tap_queue *q = &t->q[i];
#ifdef BT_HAVE_LIBURING
		if (atomic_load(&q->tx_uring))
			io_uring_queue_exit(&q->tx_ring);
		if (atomic_load(&q->rx_uring))
			io_uring_queue_exit(&q->rx_ring);
#endif
		if (q->fd >= 0)
			close(q->fd);
	}
	if (t->stop_efd >= 0)
		close(t->stop_efd);
	if (t->fwd_efd >= 0)
		close(t->fwd_efd);
	pthread_mutex_destroy(&t->fwd_lock);
	free(t);
}

static void tap_release(struct bt_dev *d)
{
	tap_free(d->backend); /* bt_dev_create clears backend_dead on reuse */
}

static const struct bt_backend_ops tap_ops = {
	.stop = tap_stop,
	.release = tap_release,
};

static struct tap *tap_of(struct bt_dev *d)
{
	return d->ops == &tap_ops ? d->backend : NULL;
}

/* Why this thread's last bt_tap_open failed, beyond its errno. */
static __thread uint32_t open_why[BT_TAP_WHY_WORDS];

static int32_t why(int32_t err, uint32_t reason, uint32_t flags,
		   uint32_t vnet)
{
	memset(open_why, 0, sizeof(open_why));
	open_why[0] = reason;
	open_why[1] = flags;
	open_why[2] = vnet;
	return err;
}

int32_t bt_tap_open_why(uint32_t *out, uint32_t n)
{
	if (!out && n)
		return -EFAULT;
	if (n > BT_TAP_WHY_WORDS)
		n = BT_TAP_WHY_WORDS;
	memcpy(out, open_why, n * sizeof(*out));
	return BT_TAP_WHY_WORDS;
}

/* The bytes the kernel's isspace() is true for: its ctype table classes
 * \t \n \v \f \r, ' ' and 0xA0 (Latin-1 no-break space) as space, and
 * nothing else (not the other control bytes, not DEL). */
static int kernel_space(unsigned char c)
{
	return (c >= '\t' && c <= '\r') || c == ' ' || c == 0xa0;
}

/* The kernel's rule for interface names (dev_valid_name), byte for byte:
 * 1..15 bytes before the NUL (IFNAMSIZ holds the NUL), not "." or "..",
 * and no '/', ':' or byte the kernel's isspace() is true for. Any other
 * byte is fine, control bytes and bytes of UTF-8 sequences included. */
static int name_ok(const char *name)
{
	size_t n = strnlen(name, IFNAMSIZ);

	if (n == 0 || n >= IFNAMSIZ)
		return 0;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '/' || c == ':' || kernel_space(c))
			return 0;
	}
	return 1;
}

/* Is the existing interface `name` something other than a TUN/TAP? Asks
 * its driver (ETHTOOL_GDRVINFO, which needs no privilege): the tun driver
 * answers "tun". 1 (not a TUN/TAP: its link flags and driver name are left
 * in open_why), 0 (a TUN/TAP) or -1 (cannot tell). */
static int not_tuntap(const char *name)
{
	struct ethtool_drvinfo info;
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = -1, e = 0;
	uint32_t lflags = 0;

	if (s < 0)
		return -1;
	memset(&info, 0, sizeof(info));
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0)
		lflags = (uint16_t)ifr.ifr_flags;
	info.cmd = ETHTOOL_GDRVINFO;
	ifr.ifr_data = (void *)&info;
	if (ioctl(s, SIOCETHTOOL, &ifr) < 0)
		e = errno;
	close(s);
	info.driver[sizeof(info.driver) - 1] = 0;
	if (!e)
		r = strcmp(info.driver, "tun") != 0;
	else if (e == EOPNOTSUPP) /* the tun driver always answers */
		r = 1;
	if (r == 1) {
		why(0, BT_TAP_WHY_NOT_TAP, lflags, 0);
		if (!e)
			memcpy(&open_why[3], info.driver,
			       (BT_TAP_WHY_WORDS - 3) * sizeof(uint32_t));
	}
	return r;
}

/* Bring the link up and set its MTU, touching only what differs, so an
 * unprivileged owner of a persistent TAP that is already configured needs
 * no CAP_NET_ADMIN. A failure says which step failed (bt_tap_open_why). */
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
			r = why(-errno, BT_TAP_WHY_MTU, 0, 0);
			goto out;
		}
		if ((uint32_t)ifr.ifr_mtu != mtu) {
			uint32_t old = (uint32_t)ifr.ifr_mtu;
			ifr.ifr_mtu = (int)mtu;
			if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
				r = why(-errno, BT_TAP_WHY_MTU, 0, old);
				goto out;
			}
		}
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		r = why(-errno, BT_TAP_WHY_UP, 0, 0);
		goto out;
	}
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			r = why(-errno, BT_TAP_WHY_UP, 0, 0);
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

/* The flags of an existing TUN/TAP device, from sysfs (readable without
 * attaching, so before we change anything). -1 if unknown. */
static long sysfs_tun_flags(const char *name)
{
	char path[64], buf[32];
	long f = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/sys/class/net/%s/tun_flags", name);
	fp = fopen(path, "re");
	if (!fp)
		return -1;
	if (fgets(buf, sizeof(buf), fp))
		f = strtol(buf, NULL, 16);
	fclose(fp);
	return f;
}

/* Do an existing device's flags fit what we ask for? IFF_VNET_HDR and
 * IFF_NO_PI are device-wide: the first queue to attach sets them for every
 * queue, and a later queue gets the device's, whatever it asked for. Either
 * way attaching with other flags would change how every frame is framed,
 * for others or for us; refuse instead. */
static int32_t flags_fit(long f, uint32_t vnet_len)
{
	uint32_t uf = (uint32_t)f;

	if (f < 0)
		return 0;
	if (!(f & IFF_TAP) || !(f & IFF_MULTI_QUEUE))
		return why(-EEXIST, BT_TAP_WHY_KIND, uf, 0);
	if (!(f & IFF_VNET_HDR) != !vnet_len)
		return why(-EEXIST, BT_TAP_WHY_VNET_FLAG, uf, 0);
	if (!(f & IFF_NO_PI))
		return why(-EEXIST, BT_TAP_WHY_PI_FLAG, uf, 0);
	return 0;
}

/* Attach one queue fd. For a device that existed, the first queue checks
 * the device's flags and header size (TUNGETIFF, TUNGETVNETHDRSZ) before
 * setting anything; later queues and created devices set the header size. */
static int open_queue(const char *name, uint32_t vnet_len, int check)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	int e;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, name, strlen(name));
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_MULTI_QUEUE;
	if (vnet_len)
		ifr.ifr_flags |= IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		e = -errno;
		goto fail;
	}
	if (check) {
		int sz = 0;
		memset(&ifr, 0, sizeof(ifr));
		if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
			e = -errno;
			goto fail;
		}
		e = flags_fit((long)(uint16_t)ifr.ifr_flags, vnet_len);
		if (e)
			goto fail;
		if (vnet_len) {
			if (ioctl(fd, TUNGETVNETHDRSZ, &sz) < 0) {
				e = -errno;
				goto fail;
			}
			if ((uint32_t)sz != vnet_len) {
				e = why(-EEXIST, BT_TAP_WHY_VNET_SIZE,
					(uint16_t)ifr.ifr_flags, (uint32_t)sz);
				goto fail;
			}
		}
	} else if (vnet_len) {
		int sz = (int)vnet_len;
		if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0) {
			e = -errno;
			goto fail;
		}
	}
	return fd;
fail:
	close(fd);
	return e;
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
	int existed;
	char nm[IFNAMSIZ];

	why(0, BT_TAP_WHY_NONE, 0, 0);
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
	/* A frame must hold the largest frame the kernel can hand us (a
	 * larger one, after the MTU is raised, is counted and dropped). */
	if (mtu && mtu + 18 > p->frame_size - p->headroom)
		return -EINVAL;
	existed = exists(nm);
	if (existed < 0)
		return existed;
	if (existed == 0 && !(flags & BT_TAP_CREATE))
		return -ENOENT;
	/* An interface of another kind (a veth, a bridge, lo): say so before
	 * touching /dev/net/tun, whose refusal would speak of permissions. */
	if (existed && sysfs_tun_flags(nm) < 0 && not_tuntap(nm) == 1)
		return -EEXIST; /* open_why says what it is */
	if (existed && (r = flags_fit(sysfs_tun_flags(nm), vnet_len)) < 0)
		return r;

	t = calloc(1, sizeof(*t) + nqueues * sizeof(struct tap_queue));
	if (!t)
		return -ENOMEM;
	memcpy(t->name, nm, sizeof(nm));
	t->nqueues = nqueues;
	t->vnet_len = vnet_len;
	t->batch = batch;
	pthread_mutex_init(&t->fwd_lock, NULL);
	t->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->fwd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	for (uint32_t i = 0; i < nqueues; i++) {
		t->q[i].fd = -1;
		t->q[i].qi = (int)i;
		t->q[i].t = t;
		t->q[i].rx_hint = 16;
	}
	if (t->stop_efd < 0 || t->fwd_efd < 0) {
		r = -errno;
		goto fail;
	}
	for (uint32_t i = 0; i < nqueues; i++) {
		r = open_queue(nm, vnet_len, existed && i == 0);
		if (r < 0) {
			/* An existing device of another kind or without
			 * multi_queue: the kernel says EINVAL; say what it
			 * means. */
			if (r == -EINVAL && i == 0 && exists(nm) == 1)
				r = why(-EEXIST, BT_TAP_WHY_KIND,
					(uint32_t)(sysfs_tun_flags(nm) & 0xffff),
					0);
			goto fail;
		}
		t->q[i].fd = r;
	}
	r = link_setup(nm, mtu);
	if (r < 0)
		goto fail;
#ifdef BT_HAVE_LIBURING
	/* Rings now, not in the threads: the stats then say from the first
	 * call which queues use io_uring (a queue whose ring cannot be set
	 * up uses plain syscalls, and the stats say so). */
	if (!(flags & BT_TAP_WRITE)) {
		for (uint32_t i = 0; i < nqueues; i++) {
			struct tap_queue *q = &t->q[i];
			if (io_uring_queue_init(batch, &q->tx_ring, 0) == 0)
				atomic_store(&q->tx_uring, 1);
			if (io_uring_queue_init(TAP_MAX_BATCH, &q->rx_ring,
						0) == 0)
				atomic_store(&q->rx_uring, 1);
		}
	}
#endif

	h = bt_dev_create(pool, nqueues, ring_size);
	if (h < 0) {
		r = h;
		goto fail;
	}
	d = bt_dev_enter((uint32_t)h, ts);
	if (!d) {
		bt_dev_close((uint32_t)h); /* no backend attached yet */
		r = -ENXIO;
		goto fail;
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

fail:
	tap_free(t);
	return r;
}

/* The kernel send buffer of the device's queues (TUNSETSNDBUF, device-
 * wide): frames written into the kernel and still queued there count
 * against it, and a write beyond it fails EAGAIN (the writer then waits
 * for POLLOUT). */
int32_t bt_tap_set_sndbuf(uint32_t h, int32_t bytes)
{
	int ts = bt_thread_slot();
	struct bt_dev *d;
	struct tap *t;
	int32_t r = 0;

	if (bytes <= 0)
		return -EINVAL;
	t = tap_enter(h, ts, &d);
	if (!t)
		return -ENXIO;
	if ((r = atomic_load(&t->error)) == 0 &&
	    ioctl(t->q[0].fd, TUNSETSNDBUF, &bytes) < 0)
		r = -errno;
	bt_leave(&d->life, ts);
	return r;
}

/* What bt_tap_open would do with a name, without opening: 0 if valid. */
int32_t bt_tap_name_check(const char *name)
{
	if (!name)
		return -EFAULT;
	return name_ok(name) ? 0 : -EINVAL;
}
