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
#include "tap_internal.h"

/* Enter h as a TAP device; on success the caller must bt_leave. */
struct tap *tap_enter(uint32_t h, int ts, struct bt_dev **dp)
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
	tap_fwd_stop_pair(t);
	pthread_mutex_lock(&t->fwd_lock);
	tap_fwd_join(t);
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
		if (atomic_load(&q->rx_uring))
			io_uring_queue_exit(&q->rx_ring);
#endif
		tap_wctx_free(q->wx);
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
	.direct = tap_xmit_direct,
};

struct tap *tap_of(struct bt_dev *d)
{
	return d->ops == &tap_ops ? d->backend : NULL;
}

/* Why this thread's last bt_tap_open failed, beyond its errno. */
static __thread uint32_t open_why[BT_TAP_WHY_WORDS];
_Static_assert((BT_TAP_WHY_WORDS - BT_TAP_WHY_W_DRIVER) * sizeof(uint32_t) ==
		       sizeof(((struct ethtool_drvinfo *)0)->driver),
	       "the driver's name fills the words from BT_TAP_WHY_W_DRIVER");
_Static_assert(BT_IFF_VNET_HDR == IFF_VNET_HDR &&
		       BT_IFF_LOOPBACK == IFF_LOOPBACK,
	       "BT_IFF_* are the kernel's");

static int32_t why(int32_t err, uint32_t reason, uint32_t flags,
		   uint32_t vnet)
{
	memset(open_why, 0, sizeof(open_why));
	open_why[BT_TAP_WHY_W_REASON] = reason;
	open_why[BT_TAP_WHY_W_FLAGS] = flags;
	open_why[BT_TAP_WHY_W_SIZE] = vnet;
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
			memcpy(&open_why[BT_TAP_WHY_W_DRIVER], info.driver,
			       (BT_TAP_WHY_WORDS - BT_TAP_WHY_W_DRIVER) *
				       sizeof(uint32_t));
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
	/* Rings now, not in the threads: the stats then say from the first
	 * call which queues use io_uring (a queue whose ring cannot be set
	 * up uses plain syscalls, and the stats say so). */
	for (uint32_t i = 0; i < nqueues; i++) {
		struct tap_queue *q = &t->q[i];

		q->wx = tap_wctx_new(!(flags & BT_TAP_WRITE), 0);
		if (!q->wx) {
			r = -ENOMEM;
			goto fail;
		}
#ifdef BT_HAVE_LIBURING
		if (!(flags & BT_TAP_WRITE) &&
		    io_uring_queue_init(TAP_MAX_BATCH, &q->rx_ring, 0) == 0)
			atomic_store(&q->rx_uring, 1);
#endif
	}

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
		int e = pthread_create(&t->q[i].writer, NULL, tap_writer_main,
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
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
_Static_assert(BT_TAP_OFF_CSUM == TUN_F_CSUM && BT_TAP_OFF_TSO4 == TUN_F_TSO4 &&
		       BT_TAP_OFF_TSO6 == TUN_F_TSO6 &&
		       BT_TAP_OFF_TSO_ECN == TUN_F_TSO_ECN &&
		       BT_TAP_OFF_USO4 == TUN_F_USO4 &&
		       BT_TAP_OFF_USO6 == TUN_F_USO6,
	       "BT_TAP_OFF_* are TUN_F_*");

/* The offloads apply to the device, so one queue's fd sets them. A kernel
 * without USO refuses the whole request with EINVAL: then ask again
 * without it. */
static int32_t set_offloads(struct tap *t, uint32_t want)
{
	if (ioctl(t->q[0].fd, TUNSETOFFLOAD, (unsigned long)want) == 0)
		return (int32_t)want;
	if (errno == EINVAL && (want & (BT_TAP_OFF_USO4 | BT_TAP_OFF_USO6))) {
		want &= ~(BT_TAP_OFF_USO4 | BT_TAP_OFF_USO6);
		if (ioctl(t->q[0].fd, TUNSETOFFLOAD, (unsigned long)want) == 0)
			return (int32_t)want;
	}
	return -errno;
}

int32_t bt_tap_set_offloads(uint32_t h, uint32_t want)
{
	const uint32_t gso = BT_TAP_OFF_TSO4 | BT_TAP_OFF_TSO6 |
			     BT_TAP_OFF_TSO_ECN | BT_TAP_OFF_USO4 |
			     BT_TAP_OFF_USO6;
	int ts = bt_thread_slot();
	struct bt_dev *d;
	struct tap *t = tap_enter(h, ts, &d);
	int32_t r;

	if (!t)
		return -ENXIO;
	if ((want & ~BT_TAP_OFF_ALL) || !t->vnet_len ||
	    ((want & gso) && !(want & BT_TAP_OFF_CSUM))) {
		r = -EINVAL;
	} else if ((want & gso) &&
		   d->pool->frame_size - d->pool->headroom <
			   BT_MAX_SUPER_FRAME) {
		r = -EMSGSIZE;
	} else if ((r = atomic_load(&t->error)) == 0) {
		r = set_offloads(t, want);
		if (r >= 0)
			atomic_store(&t->offloads, (uint32_t)r);
	}
	bt_leave(&d->life, ts);
	return r;
}

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
