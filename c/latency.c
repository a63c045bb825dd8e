/* SPDX-License-Identifier: MIT */
/*
 * Latency of frames, accumulated in C into a log-linear histogram that
 * lives in memory the caller owns (a SharedArrayBuffer in TypeScript).
 *
 * Why in C: recording one HDR histogram entry per frame from TypeScript
 * costs ~40 ns per frame once timestamps differ (TAP receive, queue
 * sources, copies): half the throughput at ~28 Mpps. Here a frame costs a
 * timestamp load from a line bt_queue_read has just touched, a subtraction,
 * a count-leading-zeros and, unless it lands in the same bucket as the
 * frame before it, one add to a counter: a few ns, no per-frame JS work.
 * TypeScript folds the non-zero buckets into an hdr-histogram-js histogram
 * when someone asks for percentiles (see dataplane/latency.ts).
 *
 * Buckets (HDR-style, BT_LAT_SUB_BITS = 7): values below 256 ns have one
 * bucket each (exact). Above, each power-of-two range [2^e, 2^(e+1)) is cut
 * into 128 equal buckets of width w = 2^(e-7), so w <= value / 128. Taking
 * a bucket's midpoint as its value, a latency is known to within
 * w / 2 <= value / 256 (0.39%). Latencies of BT_LAT_MAX_NS (1 hour) or more
 * are not bucketed: they are counted in BT_LAT_H_CLAMPED (TypeScript records
 * them as exactly 1 hour). The last bucket needed is the one of 2^42 - 1,
 * so BT_LAT_BUCKETS = 128 * (42 - 7 + 1) = 4608 (36 KiB).
 *
 * Concurrency: one writer per histogram (the thread that owns the reader
 * or the recorder), any number of readers in other threads (the
 * scheduler's main thread builds live percentiles from it). Every word is
 * only ever increased, by its one writer, with a relaxed load + store: no
 * locked instruction is needed because nobody else writes, and relaxed
 * atomics make each 64-bit word read whole (never torn) by a concurrent
 * reader. A concurrent reader can see some words of a batch updated and
 * others not yet: a live view is off by at most the frames being recorded
 * while it reads. Once the writer has stopped (and the reader synchronised
 * with it, e.g. by a message), the view is exact.
 */
#include <errno.h>

#include "bt_internal.h"

#define LAT_MAGIC                                                             \
	(((uint64_t)BT_LAT_MAGIC_TAG << 32) |                                 \
	 ((uint64_t)BT_LAT_SUB_BITS << 16) | (uint64_t)BT_LAT_BUCKETS)

_Static_assert(BT_LAT_BUCKETS ==
		       (1u << BT_LAT_SUB_BITS) * (42 - BT_LAT_SUB_BITS + 1),
	       "buckets cover 1 ns .. 2^42 ns");
_Static_assert(BT_LAT_MAX_NS < (1ull << 42), "the clamp is inside the buckets");

int32_t bt_lat_init(uint64_t *h, uint32_t bytes)
{
	if (!h)
		return -EFAULT;
	if (bytes < BT_LAT_WORDS * sizeof(uint64_t))
		return -EINVAL;
	for (uint32_t i = 0; i < BT_LAT_WORDS; i++)
		atomic_store_explicit((_Atomic uint64_t *)&h[i], 0,
				      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&h[BT_LAT_H_MAGIC], LAT_MAGIC,
			      memory_order_relaxed);
	return 0;
}

/* Is h a histogram bt_lat_init made, of at least the right size? */
static int lat_check(const uint64_t *h, uint32_t bytes)
{
	if (bytes < BT_LAT_WORDS * sizeof(uint64_t) ||
	    h[BT_LAT_H_MAGIC] != LAT_MAGIC)
		return -EINVAL;
	return 0;
}

/*
 * The bucket of a latency v (1 <= v < 2^42). With e = floor(log2(v | 128))
 * (at least 7) and s = e - 7, the bucket is s * 128 + (v >> s): for
 * v < 256, s = 0 and the bucket is v itself; above, v >> s is in
 * [128, 256), so each power-of-two range gets 128 buckets after the
 * previous one's. No branch.
 */
static inline uint32_t lat_bucket(uint64_t v)
{
	uint32_t e = (uint32_t)(63 - __builtin_clzll(v | 128));
	uint32_t s = e - BT_LAT_SUB_BITS;

	return (s << BT_LAT_SUB_BITS) + (uint32_t)(v >> s);
}

/* One writer: a plain add, kept whole for concurrent readers (see top). */
static inline void lat_add(uint64_t *w, uint64_t n)
{
	_Atomic uint64_t *a = (_Atomic uint64_t *)w;
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	atomic_store_explicit(a, old + n, memory_order_relaxed);
}

/*
 * The pool of a pool slot, if open. Looked up once per run of frames of
 * one slot; a frame's index is checked against the pool per frame, so one
 * bad ref skips that frame only, not the rest of its slot's frames.
 */
static inline struct bt_pool *lat_pool(uint32_t slot)
{
	struct bt_pool *p = atomic_load_explicit(&bt_pools[slot],
						 memory_order_acquire);

	if (!p || !atomic_load_explicit(&p->open, memory_order_acquire))
		return NULL;
	return p;
}

/*
 * Add the latencies (now - tstamp_ns) of refs[0..n) to h. Frames without
 * a timestamp (0) or with an invalid ref are counted in BT_LAT_SKIPPED.
 * Consecutive frames that land in one bucket (a generator stamps a whole
 * batch with one clock reading; frames queued together have close
 * timestamps) are added with one store.
 */
static void lat_account(const uint32_t *refs, uint32_t n, uint64_t now,
			uint64_t *h)
{
	uint64_t *b = h + BT_LAT_HEADER;
	uint64_t run_ts = 0;
	uint32_t run_bucket = 0, run_n = 0, slot = UINT32_MAX;
	uint32_t recorded = 0, skipped = 0, clamped = 0;
	struct bt_pool *p = NULL;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t ref = refs[i];
		uint32_t idx = ref & BT_REF_INDEX_MASK;
		uint64_t ts, v;
		uint32_t k;

		if (BT_UNLIKELY(ref >> BT_REF_INDEX_BITS != slot)) {
			slot = ref >> BT_REF_INDEX_BITS;
			p = lat_pool(slot);
		}
		if (BT_UNLIKELY(!p || idx >= p->nframes)) {
			skipped++;
			continue;
		}
		ts = bt_frame_at(p, idx)->tstamp_ns;
		/* Same timestamp as the run's last frame: same bucket. */
		if (BT_LIKELY(run_n && ts == run_ts)) {
			run_n++;
			continue;
		}
		if (BT_UNLIKELY(ts == 0)) {
			skipped++;
			continue;
		}
		/* A clock read before the stamp (another CPU's clock skew)
		 * counts as 1 ns, the histogram's floor. */
		v = now > ts ? now - ts : 1;
		if (BT_UNLIKELY(v >= BT_LAT_MAX_NS)) {
			clamped++;
			continue;
		}
		k = lat_bucket(v);
		run_ts = ts;
		if (run_n && k == run_bucket) {
			run_n++;
			continue;
		}
		if (run_n) {
			lat_add(&b[run_bucket], run_n);
			recorded += run_n;
		}
		run_bucket = k;
		run_n = 1;
	}
	if (run_n) {
		lat_add(&b[run_bucket], run_n);
		recorded += run_n;
	}
	if (BT_UNLIKELY(clamped))
		lat_add(&h[BT_LAT_H_CLAMPED], clamped);
	if (BT_UNLIKELY(skipped))
		lat_add(&h[BT_LAT_H_SKIPPED], skipped);
	lat_add(&h[BT_LAT_H_FRAMES], recorded + clamped);
}

int32_t bt_frames_latency(const uint32_t *refs, uint32_t n, uint64_t *h,
			  uint32_t bytes)
{
	if ((n && !refs) || !h)
		return -EFAULT;
	if (lat_check(h, bytes))
		return -EINVAL;
	lat_account(refs, n, bt_now_ns(), h);
	return 0;
}

int32_t bt_frames_latency_at(const uint32_t *refs, uint32_t n, double now_ns,
			     uint64_t *h, uint32_t bytes)
{
	if ((n && !refs) || !h)
		return -EFAULT;
	/* Doubles are exact integers below 2^53 ns (104 days of uptime);
	 * the negated test also refuses NaN. */
	if (lat_check(h, bytes) ||
	    !(now_ns >= 0 && now_ns < 9007199254740992.0))
		return -EINVAL;
	lat_account(refs, n, (uint64_t)now_ns, h);
	return 0;
}

int32_t bt_queue_consume(uint32_t dev, uint32_t queue, uint32_t *refs,
			 uint32_t max, uint64_t *h, uint32_t bytes)
{
	int32_t n;

	/* Check the histogram before taking anything: a bad one must not
	 * cost frames. */
	if (h && lat_check(h, bytes))
		return -EINVAL;
	n = bt_queue_read(dev, queue, refs, max);
	if (n <= 0)
		return n;
	if (h)
		lat_account(refs, (uint32_t)n, bt_now_ns(), h);
	bt_frames_put(refs, (uint32_t)n, NULL, 0);
	return n;
}
