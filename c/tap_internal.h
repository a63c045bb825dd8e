/* SPDX-License-Identifier: MIT */
/*
 * What the TAP files share: the device and queue structures, the counters'
 * single-writer add, and the functions one file calls in another.
 *
 *   tap.c         open, netdev setup, close; the backend ops
 *   tap_uring.c   the io_uring batch runner (one submit, every completion)
 *   tap_tx.c      the writer threads: queue ring -> fd
 *   tap_rx.c      receive: fd -> pool frames; waiting for readable
 *   forward.c     forwarder threads: one device's fd -> another device
 *   tap_stats.c   statistics
 */
#ifndef BT_TAP_INTERNAL_H
#define BT_TAP_INTERNAL_H
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

/* One frame to write: up to two pieces (a header for copies, data). */
struct tx_slot {
	struct iovec iov[2];
	int niov; /* 0: not written, only returned */
	int keep; /* its completion was never reaped: never reuse it */
	int super; /* a GSO super-frame (the kernel segments it) */
	size_t len; /* bytes a complete write writes */
	uintptr_t entry;
};

/* How one thread writes into TAP queues: its own io_uring ring (never
 * shared: a ring has one submitter) or write() per frame. The writer
 * thread of every queue has one, and so has every forwarder thread that
 * writes into its target directly. */
struct tap_wctx {
#ifdef BT_HAVE_LIBURING
	struct io_uring ring;
#endif
	_Atomic int uring; /* 1 while the ring is set up and works */
	int single; /* one write() per frame, whatever the ring */
	struct tx_slot s[TAP_MAX_BATCH];
	struct bt_frame_meta *seg[TAP_MAX_BATCH];
};

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
	/* 1 while the receiver uses its io_uring ring. Cleared only by it
	 * (when its ring fails); stats read it. */
	_Atomic int rx_uring;
	uint32_t rx_hint; /* reads to submit next time (receiver only) */
	struct tap_wctx *wx; /* the writer thread's */
#ifdef BT_HAVE_LIBURING
	struct io_uring rx_ring; /* the receiver's (whoever holds rx_busy) */
	/* A read's iovecs must live until its completion is reaped. */
	struct iovec rx_iov[TAP_MAX_BATCH][2];
#endif
	/* Where a packet too big for its frame spills; never read. The
	 * kernel may write it from several reads at once: harmless. */
	uint8_t spill[TAP_SPILL];
	/* Transmit side: written by the queue's writer thread and by any
	 * forwarder writing into this queue directly (atomic adds, once per
	 * batch). */
	alignas(BT_CACHE_LINE) _Atomic uint64_t tx_written;
	_Atomic uint64_t tx_bytes;
	_Atomic uint64_t tx_errors;
	_Atomic uint64_t tx_submits;
	_Atomic uint64_t tx_pollouts;
	_Atomic uint64_t tx_stranded;
	_Atomic uint64_t tx_super;
	_Atomic uint64_t gso_frames;
	_Atomic uint64_t gso_segments;
	_Atomic uint64_t gro_frames;
	_Atomic uint64_t gro_segments;
	_Atomic uint64_t csum_done;
	_Atomic uint64_t offload_dropped;
	_Atomic int32_t tx_last_errno;
	/* Receive side, written by the queue's single receiver. */
	alignas(BT_CACHE_LINE) _Atomic uint64_t rx_packets;
	_Atomic uint64_t rx_bytes;
	_Atomic uint64_t rx_batches;
	_Atomic uint64_t rx_noframe;
	_Atomic uint64_t rx_truncated;
	_Atomic uint64_t rx_stranded;
	_Atomic uint64_t rx_bad_vnet;
	_Atomic uint64_t rx_super;
	_Atomic uint64_t fwd_packets;
	_Atomic uint64_t fwd_dropped;
	_Atomic uint64_t fwd_waits;
};

struct tap {
	struct bt_dev *d;
	uint32_t handle;
	uint32_t nqueues;
	uint32_t vnet_len;
	uint32_t batch;
	_Atomic uint32_t offloads; /* BT_TAP_OFF_* the kernel accepted */
	int stop_efd; /* readable forever once the device stops */
	int fwd_efd; /* readable while forwarders are told to stop */
	_Atomic int stopping;
	_Atomic int fwd_stopping;
	_Atomic int32_t error; /* first fatal fd error, negative errno */
	pthread_mutex_t fwd_lock;
	uint32_t fwd_dst;
	uint32_t fwd_bulk;
	uint32_t fwd_mode; /* BT_FWD_* mode and flags */
	int forwarding;
	struct fwd_pair *pair; /* forwarding both ways with another TAP
				* (forward.c; under its pair lock) */
	char name[IFNAMSIZ];
	struct tap_queue q[];
};

/* Errors that mean the device is gone (the fd lost its device: EBADFD),
 * not that one frame was bad. EIO is not one: the kernel refuses writes
 * with it while the link is down (e.g. while it moves to another netns),
 * and the link may come back up. */
static inline int fatal_fd_error(int err)
{
	return err == EBADFD || err == ENODEV || err == ENXIO || err == EBADF;
}

static inline void tap_fail(struct tap *t, int err)
{
	int32_t expected = 0;

	if (atomic_compare_exchange_strong(&t->error, &expected, -err))
		/* From now on bt_xmit refuses frames (giving them back) instead
		 * of queueing them for a writer that can only fail them. */
		atomic_store_explicit(&t->d->backend_dead, -ENODEV,
				      memory_order_relaxed);
}

/* A counter of the receive side: one writer (the queue's receiver), so a
 * relaxed load + store is enough; readers only want a snapshot. */
static inline void stat_add(_Atomic uint64_t *c, uint64_t v)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
					 v,
			      memory_order_relaxed);
}

/* A counter of the transmit side: several writers (the writer thread,
 * forwarders), so an atomic add; called once per batch. */
static inline void stat_add_shared(_Atomic uint64_t *c, uint64_t v)
{
	if (v)
		atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

/*
 * The virtio-net header (struct virtio_net_hdr, 10 bytes, or 12 with
 * num_buffers) in the byte order the kernel uses for a TAP: little endian
 * (legacy virtio on a little-endian host; bulktap never sets
 * TUNSETVNETBE). Offsets: flags 0, gso_type 1, hdr_len 2, gso_size 4,
 * csum_start 6, csum_offset 8, num_buffers 10.
 */
static inline uint16_t vnet_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline void vnet_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Header h (len bytes) into m's offload metadata. */
static inline void tap_vnet_decode(const uint8_t *h, struct bt_frame_meta *m)
{
	m->vnet_flags = h[0];
	m->gso_type = h[1];
	m->hdr_len = vnet_le16(h + 2);
	m->gso_size = vnet_le16(h + 4);
	m->csum_start = vnet_le16(h + 6);
	m->csum_offset = vnet_le16(h + 8);
}

/* m's offload metadata into header h (len bytes, the rest zero). */
static inline void tap_vnet_encode(uint8_t *h, const struct bt_frame_meta *m,
				   uint32_t len)
{
	memset(h, 0, len);
	h[0] = m->vnet_flags;
	h[1] = m->gso_type;
	vnet_put_le16(h + 2, m->hdr_len);
	vnet_put_le16(h + 4, m->gso_size);
	vnet_put_le16(h + 6, m->csum_start);
	vnet_put_le16(h + 8, m->csum_offset);
}

#ifdef BT_HAVE_LIBURING
#define URING_PENDING INT32_MIN /* submitted, completion not reaped */
#define URING_NOT_SENT (INT32_MIN + 1) /* prepared, never submitted */
int tap_uring_run(struct io_uring *ring, const uint16_t *order, uint32_t n,
		  int32_t *res, uint64_t *when, uint64_t *submits);
int tap_uring_unsupported(const int32_t *res, uint32_t n);
#endif

/* tap.c */
struct tap *tap_of(struct bt_dev *d);
struct tap *tap_enter(uint32_t h, int ts, struct bt_dev **dp);
/* tap_tx.c */
void *tap_writer_main(void *arg);
/* A write context; uring: set up an io_uring ring (else write() only). */
struct tap_wctx *tap_wctx_new(int uring, int single);
void tap_wctx_free(struct tap_wctx *w);
/* Write ring entries e[0..n) (pool frames or copies) into queue q's fd
 * with w, in order, fixing in software what q's TAP cannot take (GSO,
 * partial checksums, for a TAP without a vnet header). Every entry goes
 * home afterwards, written or not; all of it counted on q. Returns the
 * frames written. */
uint32_t tap_write(struct tap_queue *q, struct tap_wctx *w,
		   const uintptr_t *e, uint32_t n);
/* The TAP backend's direct op (BT_XMIT_DIRECT): tap_write from the calling
 * thread with its own context. */
void tap_xmit_direct(struct bt_dev *d, uint32_t qi,
		     struct bt_frame_meta **metas, uint32_t n);
/* tap_rx.c */
int32_t tap_rx_batch(struct tap_queue *q, uint32_t *refs, uint32_t n,
		     int *noframe);
/* forward.c: stop t's one-way forwarder (caller holds t->fwd_lock), and
 * the two-way pair t is in (caller holds no fwd_lock). */
void tap_fwd_join(struct tap *t);
void tap_fwd_stop_pair(struct tap *t);

#endif /* BT_TAP_INTERNAL_H */
