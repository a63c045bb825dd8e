/* SPDX-License-Identifier: MIT */
/*
 * bulktap: frame pools, multi-queue devices and bulk transmit.
 *
 * Conventions (liburing style):
 *   - every call returns a non-negative value on success and a negative
 *     errno on failure; nothing is reported through errno;
 *   - objects are named by small integer handles, never raw pointers, so a
 *     stale handle (closed object, other Worker) fails with -ENXIO instead of
 *     touching freed memory;
 *   - a frame is named by a 32-bit ref: pool slot in the top 8 bits, frame
 *     index in the low 24. Refs are what TypeScript keeps in Uint32Arrays.
 *
 * Ownership: a frame is FREE (in its pool), HELD (by the caller) or QUEUED
 * (in a device queue). bt_pool_alloc hands out HELD frames; bt_xmit takes
 * them (every frame is either queued or returned to its pool and counted as
 * dropped); bt_queue_read hands queued frames back as HELD; bt_pool_put
 * returns HELD frames. Nothing else moves a frame.
 */
#ifndef BULKTAP_H
#define BULKTAP_H

#include <stdint.h>

#define BT_API __attribute__((visibility("default")))

#define BT_VERSION 3

#define BT_MAX_POOLS 255 /* pool slots 1..255; slot 0 is never used */
#define BT_MAX_DEVS 4096
#define BT_MAX_QUEUES 256
#define BT_MIN_RING 2 /* slots of a queue ring */
#define BT_MAX_RING 65536
#define BT_MAX_BULK 256 /* largest bulk accepted by one xmit call */
#define BT_REF_INDEX_BITS 24
#define BT_REF_INDEX_MASK ((1u << BT_REF_INDEX_BITS) - 1)

/* xmit flags */
#define BT_XMIT_FLUSH 1u /* wake the queue's reader if it sleeps */
#define BT_XMIT_KEEP 2u /* frames that do not fit stay the caller's (HELD),
			 * not dropped: the caller waits and retries */
#define BT_XMIT_DIRECT 4u /* a TAP device: write the frames into the kernel
			   * from the calling thread, now, skipping the
			   * queue's ring and writer thread (no wake-up; the
			   * kernel pushes back on a busy caller); every
			   * frame is taken, written or counted as a write
			   * error or offload drop. Other devices ignore it */
#define BT_XMIT_FLAGS_MASK (BT_XMIT_FLUSH | BT_XMIT_KEEP | BT_XMIT_DIRECT)

/* cpu argument: use sched_getcpu() of the calling thread */
#define BT_CPU_SELF (-1)

/*
 * Frame metadata, at the start of every frame, inside its headroom (64
 * bytes). The library writes magic, ref, state and data_off at allocation;
 * the caller writes len (and data_off, to push or pull headers) and may stamp
 * tstamp_ns and mark.
 *
 * The frame's ownership state (free, held, queued) lives here too, in memory
 * the caller can write: there is no separate, protected copy, because
 * checking it must touch only the line the caller is about to use. Every
 * move is checked: xmit and unread refuse a frame that is not held
 * (-EINVAL), put counts a double return (made under the pool lock, so two
 * threads returning one frame cannot both win), and read and alloc skip
 * and count a frame found in the wrong state (BT_PS_CORRUPT). A held ref
 * belongs to one thread at a time: two threads passing the same ref to xmit
 * at the same instant are arbitrated only in BT_STRICT_OWNERSHIP builds
 * (see "Frame state transitions" in bt_internal.h for why and what it
 * costs).
 *
 * Because the caller can write here, the library also re-validates every
 * field it reads. A caller that scribbles on magic, ref, state, data_off or
 * len confuses only its own accounting: a frame may then be refused, skipped
 * or counted as corrupt, and the pool's free + held + queued may no longer
 * add up. It never makes the library read or write outside a pool: frame
 * addresses come from the pool's geometry, never from the headroom, and
 * the free stack refuses to grow past the pool.
 */
struct bt_frame_meta {
	uint32_t magic; /* BT_FRAME_MAGIC */
	uint32_t ref; /* this frame's ref */
	uint32_t data_off; /* offset of the data from the frame start */
	uint32_t len; /* bytes of data */
	uint64_t tstamp_ns; /* CLOCK_MONOTONIC creation/receive time */
	uint32_t mark; /* free for programs */
	uint16_t queue; /* queue the frame was read from */
	uint8_t state; /* library-owned: free, held or queued */
	uint8_t reserved;
	/* Offload metadata: the virtio-net header the frame came with (TAP
	 * with a vnet header) or that a program set, in host byte order.
	 * All zero: a plain frame, complete checksums, no segmentation. */
	uint16_t vnet_len; /* bytes of virtio-net header it was read with */
	uint8_t vnet_flags; /* BT_VNET_F_* */
	uint8_t gso_type; /* BT_GSO_* (| BT_GSO_ECN) */
	uint16_t hdr_len; /* bytes of Ethernet + IP + L4 headers (GSO) */
	uint16_t gso_size; /* payload bytes per segment (GSO) */
	uint16_t csum_start; /* NEEDS_CSUM: checksum from here (data-relative) */
	uint16_t csum_offset; /* ... stored this far past csum_start */
	uint32_t spare[5]; /* zero; room for later fields */
};
#define BT_FRAME_MAGIC 0x62746672u /* "btfr" */

/* Byte offsets of the metadata fields, for TypeScript views. */
#define BT_META_SIZE 64 /* sizeof(struct bt_frame_meta), what bt_meta_size() returns */
#define BT_META_OFF_MAGIC 0
#define BT_META_OFF_REF 4
#define BT_META_OFF_DATA_OFF 8
#define BT_META_OFF_LEN 12
#define BT_META_OFF_TSTAMP 16
#define BT_META_OFF_MARK 24
#define BT_META_OFF_QUEUE 28
#define BT_META_OFF_STATE 30
#define BT_META_OFF_VNET_LEN 32
#define BT_META_OFF_VNET_FLAGS 34
#define BT_META_OFF_GSO_TYPE 35
#define BT_META_OFF_HDR_LEN 36
#define BT_META_OFF_GSO_SIZE 38
#define BT_META_OFF_CSUM_START 40
#define BT_META_OFF_CSUM_OFFSET 42

/* vnet_flags: the virtio-net header's flags (same values). */
#define BT_VNET_F_NEEDS_CSUM 1u /* L4 checksum is partial: see csum_* */
#define BT_VNET_F_DATA_VALID 2u /* checksums already verified */

/* gso_type: the virtio-net header's GSO types (same values). */
enum bt_gso_type {
	BT_GSO_NONE = 0,
	BT_GSO_TCPV4 = 1,
	BT_GSO_UDP = 3, /* UFO (IP fragmentation): refused, never produced */
	BT_GSO_TCPV6 = 4,
	BT_GSO_UDP_L4 = 5, /* USO: UDP segmentation, IPv4 or IPv6 */
};
#define BT_GSO_ECN 0x80u /* TCP: the super-frame carries CWR */

/* Largest frame a pool can have (bytes, headroom included): a 64 KiB
 * super-frame, its headroom and metadata fit. */
#define BT_MAX_FRAME_SIZE 131072
/* Smallest frame a pool can have; frame sizes are multiples of a cache
 * line, so no two frames share one. */
#define BT_MIN_FRAME_SIZE 128
#define BT_FRAME_ALIGN 64
/* Headroom: at least the metadata, at most this, and BT_MIN_DATA_ROOM
 * bytes of the frame left past it for data. */
#define BT_MAX_HEADROOM 65535
#define BT_MIN_DATA_ROOM 64
/* Largest packet a super-frame may be: 64 KiB (the kernel's GSO limit
 * for a TAP), an Ethernet header and a VLAN tag. */
#define BT_MAX_SUPER_FRAME 65554

/* Frame states, kept in the frame's headroom at BT_META_OFF_STATE. */
enum bt_frame_state {
	BT_FREE = 0, /* in its pool */
	BT_HELD = 1, /* held by a caller */
	BT_QUEUED = 2, /* in a device queue */
};

/* Pool statistics, in this order (bt_pool_stats). */
enum bt_pool_stat {
	BT_PS_FRAMES,
	BT_PS_FREE,
	BT_PS_HELD,
	BT_PS_QUEUED,
	BT_PS_ALLOC_FAILED, /* frames asked for but not available */
	BT_PS_DOUBLE_RETURN, /* returns of frames that were not held */
	BT_PS_FOREIGN_RETURN, /* returns of frames of another pool */
	BT_PS_INVALID_REF, /* refs that name no frame of this pool */
	BT_PS_CORRUPT, /* frames whose state said otherwise than where the
			* library found them (a scribbled headroom, or two
			* threads passing the same ref): skipped, not used */
	BT_PS_COUNT
};

/* Pool geometry, in this order (bt_pool_info). */
enum bt_pool_info_field {
	BT_PI_SLOT,
	BT_PI_FRAMES,
	BT_PI_FRAME_SIZE,
	BT_PI_HEADROOM,
	BT_PI_REGION_BYTES,
	BT_PI_COUNT
};

/* Device statistics, in this order (bt_dev_stats): transmit side summed
 * over per-CPU slots, receive side summed over queues. */
enum bt_dev_stat {
	BT_DS_TX_PACKETS,
	BT_DS_TX_BYTES,
	BT_DS_TX_DROPPED, /* not accepted by a full ring: back in the pool */
	BT_DS_XMIT_CALLS,
	BT_DS_FLUSHES,
	BT_DS_WAKEUPS_SENT,
	BT_DS_WAKEUPS_AVOIDED,
	BT_DS_LOCK_ACQUISITIONS,
	BT_DS_RX_PACKETS,
	BT_DS_RX_BYTES,
	BT_DS_RX_BATCHES,
	BT_DS_RX_SLEEPS, /* times a reader announced it sleeps */
	BT_DS_RX_DROPPED, /* copied entries with no pool frame to land in */
	BT_DS_QUEUED, /* entries in the queues right now */
	BT_DS_LOCK_CONTENDED, /* xmit calls that found the producer lock held */
	BT_DS_LOCK_PARKS, /* ... and slept on its futex (not just spun) */
	BT_DS_COUNT
};

/* Device geometry (bt_dev_info). */
enum bt_dev_info_field {
	BT_DI_QUEUES,
	BT_DI_RING_SIZE,
	BT_DI_POOL, /* handle of the device's own pool */
	BT_DI_COUNT
};

/* Why a ref was refused (bt_frame_check). */
enum bt_frame_problem {
	BT_FRAME_OK = 0,
	BT_FRAME_NO_POOL = 1, /* the slot names no open pool */
	BT_FRAME_BAD_INDEX = 2, /* index beyond the pool */
	BT_FRAME_NOT_HELD = 3, /* free (double return) */
	BT_FRAME_QUEUED = 4, /* still in a device queue */
	BT_FRAME_BAD_LENGTH = 5, /* data_off + len beyond the frame */
	BT_FRAME_BAD_OFFSET = 6, /* data_off inside the metadata */
};

/* Library */
BT_API uint32_t bt_version(void);
BT_API uint64_t bt_now_ns(void);
BT_API double bt_now_ns_f64(void);
BT_API int32_t bt_current_cpu(void);
BT_API uint32_t bt_meta_size(void);

/* Frame pools */
BT_API int32_t bt_pool_create(uint32_t nframes, uint32_t frame_size,
			      uint32_t headroom);
BT_API int32_t bt_pool_destroy(uint32_t pool);
BT_API void *bt_pool_base(uint32_t pool);
BT_API int32_t bt_pool_info(uint32_t pool, uint64_t *out, uint32_t n);
BT_API int32_t bt_pool_stats(uint32_t pool, uint64_t *out, uint32_t n);
BT_API int32_t bt_pool_alloc(uint32_t pool, uint32_t *refs, uint32_t n);
BT_API int32_t bt_pool_put(uint32_t pool, const uint32_t *refs, uint32_t n,
			   uint32_t *bad, uint32_t bad_max);
BT_API int32_t bt_pool_lookup(uint32_t slot);
BT_API int32_t bt_frames_put(const uint32_t *refs, uint32_t n, uint32_t *bad,
			     uint32_t bad_max);
BT_API int32_t bt_frame_check(uint32_t ref);

/* Devices */
BT_API int32_t bt_dev_create(uint32_t pool, uint32_t nqueues,
			     uint32_t ring_size);
BT_API int32_t bt_dev_close(uint32_t dev);
BT_API int32_t bt_dev_info(uint32_t dev, uint64_t *out, uint32_t n);
BT_API int32_t bt_dev_stats(uint32_t dev, uint64_t *out, uint32_t n);
BT_API int32_t bt_queue_for_cpu(uint32_t dev, int32_t cpu);

/* Transmit */
BT_API int32_t bt_xmit(uint32_t dev, const uint32_t *refs, uint32_t n,
		       uint32_t flags, int32_t cpu);
BT_API int32_t bt_xmit_copy(uint32_t dev, const uint8_t *data,
			    const uint32_t *lens, uint32_t n, uint32_t flags,
			    int32_t cpu);
BT_API int32_t bt_flush(uint32_t dev, int32_t queue);

/* Readers */
BT_API int32_t bt_queue_read(uint32_t dev, uint32_t queue, uint32_t *refs,
			     uint32_t max);
/* bt_queue_read that, finding the queue empty, watches it for up to
 * spin_ns (yielding the CPU between looks, so a producer sharing it runs)
 * and reads again once something arrives. Busy polling's trade: a reader
 * that would otherwise go to sleep and be woken stays on its CPU a little
 * longer. spin_ns is capped at BT_MAX_SPIN_NS. */
#define BT_MAX_SPIN_NS 1000000u /* longest spin of bt_queue_read_spin */
BT_API int32_t bt_queue_read_spin(uint32_t dev, uint32_t queue,
				  uint32_t *refs, uint32_t max,
				  uint32_t spin_ns);
/* 1 if queue has an entry to read, 0 if not: looks at one slot, where
 * bt_queue_count walks the ring. */
BT_API int32_t bt_queue_ready(uint32_t dev, uint32_t queue);
BT_API int32_t bt_queue_wait(uint32_t dev, uint32_t queue, int32_t timeout_ms);
/* bt_queue_wait that also returns 0 once *cancel is nonzero: set it, then
 * call bt_queue_kick to wake the sleeper (a wait that has not started yet
 * returns at once). cancel must stay valid until the call returns. */
BT_API int32_t bt_queue_wait_cancellable(uint32_t dev, uint32_t queue,
					 int32_t timeout_ms,
					 const uint32_t *cancel);
/* Wake every reader asleep on queue (-1: all queues), in any thread,
 * without a flush: each looks again; only cancelled waits return. */
BT_API int32_t bt_queue_kick(uint32_t dev, int32_t queue);
BT_API int32_t bt_queue_unread(uint32_t dev, uint32_t queue,
			       const uint32_t *refs, uint32_t n);
BT_API int32_t bt_queue_count(uint32_t dev, uint32_t queue);

/*
 * TAP devices (tap.c). A TAP device is a device like any other (same
 * handle, xmit, flush, stats, close); its queues end in the kernel: a writer
 * thread per queue writes what the ring holds to the queue's fd, and
 * bt_tap_rx reads what the kernel sends into pool frames.
 */
#define BT_TAP_CREATE 1u /* create the device if it does not exist */
#define BT_TAP_WRITE 2u /* write() per frame instead of io_uring batches */
#define BT_TAP_MAX_QUEUES 64 /* queues (file descriptors) of one TAP device */

/* Forwarding modes (bt_forward_start): the mode, plus flags. */
#define BT_FWD_BULK 0u /* batches: one write submit (or xmit) per batch */
#define BT_FWD_SINGLE 1u /* one frame per write (or xmit), no coalescing */
#define BT_FWD_MODE_MASK 1u
#define BT_FWD_VIA_RING 0x100u /* hand frames to the target's queue rings
				* (bt_xmit, its writer threads write them)
				* instead of writing them from the reading
				* thread (TAP targets only; others always
				* take the ring) */
#define BT_FWD_NO_GRO 0x200u /* bulk mode: do not coalesce TCP segments */
#define BT_FWD_FLAGS_MASK (BT_FWD_MODE_MASK | BT_FWD_VIA_RING | BT_FWD_NO_GRO)

/*
 * TAP offloads (bt_tap_set_offloads): what the kernel may hand this TAP's
 * reader with a virtio-net header: partial checksums (CSUM) and TCP/UDP
 * super-frames (TSO4/6 need CSUM; USO needs Linux 6.2). The values are
 * TUN_F_*'s. Frames written into a TAP with a vnet header may carry any of
 * them whatever was negotiated: the kernel accepts them all on write.
 */
#define BT_TAP_OFF_CSUM 0x01u
#define BT_TAP_OFF_TSO4 0x02u
#define BT_TAP_OFF_TSO6 0x04u
#define BT_TAP_OFF_TSO_ECN 0x08u
#define BT_TAP_OFF_USO4 0x20u
#define BT_TAP_OFF_USO6 0x40u
#define BT_TAP_OFF_ALL 0x6fu

/* TAP statistics, in this order (bt_tap_stats). */
enum bt_tap_stat {
	BT_TS_TX_WRITTEN, /* frames written into the kernel */
	BT_TS_TX_BYTES, /* their data bytes (without vnet header) */
	BT_TS_TX_ERRORS, /* frames whose write failed: back in the pool */
	BT_TS_TX_SUBMITS, /* write syscalls or io_uring submits */
	BT_TS_TX_POLLOUTS, /* waits for writability after EAGAIN */
	BT_TS_RX_PACKETS, /* frames read from the kernel */
	BT_TS_RX_BYTES,
	BT_TS_RX_BATCHES,
	BT_TS_RX_NOFRAME, /* reads skipped: the pool had no free frame */
	BT_TS_FWD_PACKETS, /* frames a forwarder handed to its target */
	BT_TS_FWD_DROPPED, /* frames the target did not accept */
	BT_TS_ERROR, /* errno that stopped the device (deleted), else 0 */
	BT_TS_IO_URING, /* 1 if every writer uses io_uring right now */
	BT_TS_VNET_LEN,
	BT_TS_RX_TRUNCATED, /* packets too big for a frame: dropped */
	BT_TS_STRANDED, /* frames kept out of the pool: their io_uring
			 * completion could not be reaped (a failed ring) */
	BT_TS_TX_URING_QUEUES, /* writers using io_uring */
	BT_TS_RX_URING_QUEUES, /* receive sides using io_uring batches */
	BT_TS_OFFLOADS, /* BT_TAP_OFF_* the kernel accepted */
	BT_TS_RX_BAD_VNET, /* frames whose vnet header was refused
			    * (bt_offload_check): dropped */
	BT_TS_RX_SUPER, /* super-frames (GSO) received */
	BT_TS_GSO_FRAMES, /* super-frames segmented in software for this
			   * TAP (it could not take them) */
	BT_TS_GSO_SEGMENTS, /* segments they became */
	BT_TS_GRO_FRAMES, /* super-frames coalesced in software into this
			   * TAP (bulk forwarding) */
	BT_TS_GRO_SEGMENTS, /* frames they were made of */
	BT_TS_CSUM_DONE, /* partial checksums completed in software */
	BT_TS_OFFLOAD_DROPPED, /* frames that could not be made fit for
				* this TAP (no frames to segment into, too
				* many segments, bad metadata): dropped */
	BT_TS_FWD_WAITS, /* times a forwarder waited for room in its
			  * target (backpressure) instead of dropping */
	BT_TS_TX_SUPER, /* super-frames written (the kernel segments) */
	BT_TS_TX_LAST_ERRNO, /* errno of the last failed write (0: none;
			      * a short write counts as EIO) */
	BT_TS_COUNT
};

/* Why the calling thread's last bt_tap_open failed, beyond its errno
 * (bt_tap_open_why fills these words). */
enum bt_tap_why_word {
	BT_TAP_WHY_W_REASON, /* enum bt_tap_why */
	BT_TAP_WHY_W_FLAGS, /* the existing device's TUN flags; for
			     * BT_TAP_WHY_NOT_TAP its IFF_* link flags */
	BT_TAP_WHY_W_SIZE, /* its vnet header size, or the MTU it had */
	BT_TAP_WHY_W_DRIVER, /* BT_TAP_WHY_NOT_TAP: from here to the end, its
			      * driver's name as ethtool reports it,
			      * NUL-padded (empty if it reports none) */
	BT_TAP_WHY_WORDS = BT_TAP_WHY_W_DRIVER + 8, /* words it can fill */
};
/* The kernel's flags these words carry, for readers without its headers
 * (tap.c checks them against linux/if.h and linux/if_tun.h). */
#define BT_IFF_VNET_HDR 0x4000u /* TUN flag: frames carry a virtio-net header */
#define BT_IFF_LOOPBACK 0x8u /* link flag: the loopback interface */
enum bt_tap_why {
	BT_TAP_WHY_NONE,
	BT_TAP_WHY_KIND, /* -EEXIST: not a multi-queue TAP */
	BT_TAP_WHY_VNET_FLAG, /* -EEXIST: IFF_VNET_HDR differs */
	BT_TAP_WHY_PI_FLAG, /* -EEXIST: without IFF_NO_PI */
	BT_TAP_WHY_VNET_SIZE, /* -EEXIST: another vnet header size */
	BT_TAP_WHY_MTU, /* setting the MTU failed */
	BT_TAP_WHY_UP, /* bringing the link up failed */
	BT_TAP_WHY_NOT_TAP, /* -EEXIST: an interface that is no TUN/TAP */
};

BT_API int32_t bt_tap_open(uint32_t pool, const char *name, uint32_t nqueues,
			   uint32_t ring_size, uint32_t mtu, uint32_t vnet_len,
			   uint32_t flags, uint32_t batch);
BT_API int32_t bt_tap_name_check(const char *name);
BT_API int32_t bt_tap_open_why(uint32_t *out, uint32_t n);
BT_API int32_t bt_tap_set_sndbuf(uint32_t dev, int32_t bytes);
/* Ask for offloads `want` (BT_TAP_OFF_*; 0 turns them off): returns the
 * set the kernel accepted (USO is dropped, not refused, on kernels without
 * it), -EINVAL without a vnet header or for TSO/USO without CSUM or
 * unknown bits, -EMSGSIZE for TSO/USO when the pool's frames cannot hold a
 * 64 KiB super-frame (BT_MAX_SUPER_FRAME after headroom). */
BT_API int32_t bt_tap_set_offloads(uint32_t dev, uint32_t want);
BT_API int32_t bt_tap_rx(uint32_t dev, uint32_t queue, uint32_t *refs,
			 uint32_t max);
BT_API int32_t bt_tap_rx_wait(uint32_t dev, uint32_t queue,
			      int32_t timeout_ms);
/* bt_tap_rx_wait that also returns 0 once *cancel is nonzero (noticed
 * within 50 ms: the fd cannot be woken from outside). cancel must stay
 * valid until the call returns. */
BT_API int32_t bt_tap_rx_wait_cancellable(uint32_t dev, uint32_t queue,
					  int32_t timeout_ms,
					  const uint32_t *cancel);
BT_API int32_t bt_tap_stats(uint32_t dev, uint64_t *out, uint32_t n);
BT_API int32_t bt_forward_start(uint32_t src, uint32_t dst, uint32_t bulk,
				uint32_t mode);
/* Forward both ways between TAPs a and b: thread i reads queue i of each
 * into the other (one wake-up per request and answer). Stopped by
 * bt_forward_stop on either, or either's close. -EBUSY if either already
 * forwards or is read, -EINVAL for a == b. */
BT_API int32_t bt_forward_pair_start(uint32_t a, uint32_t b, uint32_t bulk,
				     uint32_t mode);
BT_API int32_t bt_forward_stop(uint32_t src);

/*
 * Device map transmit (devmap.c): one call per poll cycle for every target.
 * Frame refs[i] goes to target targets[i], i.e. device devs[targets[i]].
 * Frames are staged per target in stages of `bulk` (1..BT_MAX_BULK); a full
 * stage is sent without flush, and each target's last stage with `flags`.
 * counts holds BT_DEVMAP_COUNTS words per target (target t's at
 * t * BT_DEVMAP_COUNTS), added to. Frames naming a target >= ntargets are
 * returned to their pool. Returns the number of frames sent.
 */
#define BT_DEVMAP_MAX_TARGETS 64
enum bt_devmap_count {
	BT_DEVMAP_SENT,		/* frames the target accepted */
	BT_DEVMAP_DROPPED,	/* frames it did not: back in their pool */
	BT_DEVMAP_FAILED_CALLS,	/* xmit calls that failed as a whole */
	BT_DEVMAP_XMIT_CALLS,	/* xmit calls, one per stage sent */
	BT_DEVMAP_COUNTS,	/* words per target */
};
BT_API int32_t bt_devmap_xmit(const uint32_t *devs, uint32_t ntargets,
			      const uint32_t *refs, const uint32_t *targets,
			      uint32_t n, uint32_t bulk, uint32_t flags,
			      int32_t cpu, uint32_t *counts);

/*
 * Latency histograms (latency.c): per-frame latency (now - tstamp_ns)
 * accumulated into a log-linear histogram in caller-owned memory of
 * BT_LAT_WORDS 64-bit words: a header of BT_LAT_HEADER words, then
 * BT_LAT_BUCKETS counters. Values below 256 ns have a bucket each; above,
 * each power-of-two range has 128 buckets (width <= value / 128, so a
 * bucket's midpoint is within 1/256 of any value in it). Latencies of
 * BT_LAT_MAX_NS or more are counted in BT_LAT_H_CLAMPED, not bucketed.
 * One writer per histogram; other threads may read it at any time (every
 * word only grows and is written whole).
 */
#define BT_LAT_SUB_BITS 7
#define BT_LAT_BUCKETS 4608
#define BT_LAT_HEADER 8
#define BT_LAT_WORDS (BT_LAT_HEADER + BT_LAT_BUCKETS)
#define BT_LAT_MAX_NS 3600000000000ull /* 1 hour */
#define BT_LAT_MAGIC_TAG 0x42544c48u /* "BTLH", the magic's high 32 bits */
enum {
	BT_LAT_H_MAGIC = 0, /* layout check, written by bt_lat_init */
	BT_LAT_H_FRAMES = 1, /* frames recorded (bucketed + clamped) */
	BT_LAT_H_SKIPPED = 2, /* frames without timestamp or valid ref */
	BT_LAT_H_CLAMPED = 3, /* frames of BT_LAT_MAX_NS or more */
};

/* Zero a histogram of `bytes` bytes and write its magic ("BTLH",
 * BT_LAT_SUB_BITS, BT_LAT_BUCKETS: a caller built for another layout can
 * tell). -EINVAL if it is smaller than BT_LAT_WORDS words. */
BT_API int32_t bt_lat_init(uint64_t *h, uint32_t bytes);

/* Add the latency of refs[0..n), now, to histogram h. Frames without a
 * timestamp or with an invalid ref are counted as skipped. -EINVAL if h is
 * not an initialised histogram. */
BT_API int32_t bt_frames_latency(const uint32_t *refs, uint32_t n,
				 uint64_t *h, uint32_t bytes);

/* The same, at a given time now_ns (a double: exact below 2^53). */
BT_API int32_t bt_frames_latency_at(const uint32_t *refs, uint32_t n,
				    double now_ns, uint64_t *h,
				    uint32_t bytes);

/* A reader's step in one call: read up to max frames of a queue, add their
 * latency to h (unless h is NULL), return them to their pools. Returns the
 * frames consumed, or a negative errno (-EINVAL for a bad h, before any
 * frame is read). */
BT_API int32_t bt_queue_consume(uint32_t dev, uint32_t queue, uint32_t *refs,
				uint32_t max, uint64_t *h, uint32_t bytes);

/* Pin the calling thread to one CPU (affinity.c). */
BT_API int32_t bt_pin_thread(int32_t cpu);

/*
 * Entry points for foreign callers (ffi_abi.c): the calls above that take
 * arrays, each array followed by its length in elements. The count is
 * checked against that length before anything is read or written: a count
 * past its array fails with -EFAULT and moves no frame.
 */
BT_API int32_t bt_ffi_pool_alloc(uint32_t pool, uint32_t *refs,
				 uint32_t refs_len, uint32_t n);
BT_API int32_t bt_ffi_pool_put(uint32_t pool, const uint32_t *refs,
			       uint32_t refs_len, uint32_t n, uint32_t *bad,
			       uint32_t bad_len);
BT_API int32_t bt_ffi_frames_put(const uint32_t *refs, uint32_t refs_len,
				 uint32_t n, uint32_t *bad, uint32_t bad_len);
BT_API int32_t bt_ffi_xmit(uint32_t dev, const uint32_t *refs,
			   uint32_t refs_len, uint32_t n, uint32_t flags,
			   int32_t cpu);
BT_API int32_t bt_ffi_xmit_copy(uint32_t dev, const uint8_t *data,
				uint32_t data_len, const uint32_t *lens,
				uint32_t lens_len, uint32_t n, uint32_t flags,
				int32_t cpu);
BT_API int32_t bt_ffi_queue_read(uint32_t dev, uint32_t queue, uint32_t *refs,
				 uint32_t refs_len, uint32_t max);
BT_API int32_t bt_ffi_queue_read_spin(uint32_t dev, uint32_t queue,
				      uint32_t *refs, uint32_t refs_len,
				      uint32_t max, uint32_t spin_ns);
BT_API int32_t bt_ffi_queue_unread(uint32_t dev, uint32_t queue,
				   const uint32_t *refs, uint32_t refs_len,
				   uint32_t n);
BT_API int32_t bt_ffi_tap_rx(uint32_t dev, uint32_t queue, uint32_t *refs,
			     uint32_t refs_len, uint32_t max);
BT_API int32_t bt_ffi_frames_latency(const uint32_t *refs, uint32_t refs_len,
				     uint32_t n, uint64_t *h, uint32_t h_len);
BT_API int32_t bt_ffi_frames_latency_at(const uint32_t *refs,
					uint32_t refs_len, uint32_t n,
					double now_ns, uint64_t *h,
					uint32_t h_len);
BT_API int32_t bt_ffi_queue_consume(uint32_t dev, uint32_t queue,
				    uint32_t *refs, uint32_t refs_len,
				    uint32_t max, uint64_t *h, uint32_t h_len);
BT_API int32_t bt_ffi_devmap_xmit(const uint32_t *devs, uint32_t devs_len,
				  uint32_t ntargets, const uint32_t *refs,
				  uint32_t refs_len, const uint32_t *targets,
				  uint32_t targets_len, uint32_t n,
				  uint32_t bulk, uint32_t flags, int32_t cpu,
				  uint32_t *counts, uint32_t counts_len);

/*
 * The handle of the pool open in each slot, 0 for a closed slot: an array
 * of BT_MAX_POOLS + 1 words the library updates under its table lock.
 * Readers in other threads use it to tell that a pool object they hold is
 * stale (closed, or its slot reused by a new pool) without a call: one
 * word to compare before touching a frame.
 */
BT_API const uint32_t *bt_pool_handles(void);

#endif /* BULKTAP_H */
