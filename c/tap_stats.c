/* SPDX-License-Identifier: MIT */
/*
 * TAP statistics: every queue's single-writer counters, summed.
 */
#define _GNU_SOURCE
#include "tap_internal.h"

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
		v[BT_TS_TX_URING_QUEUES] += (uint64_t)atomic_load(&q->wx->uring);
		v[BT_TS_RX_BAD_VNET] += atomic_load(&q->rx_bad_vnet);
		v[BT_TS_RX_SUPER] += atomic_load(&q->rx_super);
		v[BT_TS_GSO_FRAMES] += atomic_load(&q->gso_frames);
		v[BT_TS_GSO_SEGMENTS] += atomic_load(&q->gso_segments);
		v[BT_TS_GRO_FRAMES] += atomic_load(&q->gro_frames);
		v[BT_TS_GRO_SEGMENTS] += atomic_load(&q->gro_segments);
		v[BT_TS_CSUM_DONE] += atomic_load(&q->csum_done);
		v[BT_TS_OFFLOAD_DROPPED] += atomic_load(&q->offload_dropped);
		v[BT_TS_FWD_WAITS] += atomic_load(&q->fwd_waits);
		v[BT_TS_TX_SUPER] += atomic_load(&q->tx_super);
		if (atomic_load(&q->tx_last_errno))
			v[BT_TS_TX_LAST_ERRNO] =
				(uint64_t)atomic_load(&q->tx_last_errno);
		v[BT_TS_RX_URING_QUEUES] += (uint64_t)atomic_load(&q->rx_uring);
	}
	v[BT_TS_ERROR] = (uint64_t)-atomic_load(&t->error);
	/* True only if every writer uses io_uring right now. */
	v[BT_TS_IO_URING] = v[BT_TS_TX_URING_QUEUES] == t->nqueues;
	v[BT_TS_VNET_LEN] = t->vnet_len;
	v[BT_TS_OFFLOADS] = atomic_load(&t->offloads);
	bt_leave(&d->life, ts);
	if (n > BT_TS_COUNT)
		n = BT_TS_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_TS_COUNT;
}
