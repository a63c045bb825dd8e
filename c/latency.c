/* SPDX-License-Identifier: MIT */
/*
 * Latency of a batch of frames, for the readers' histograms.
 *
 * Reading each frame's 64-bit timestamp from TypeScript costs a pool lookup
 * and two typed-array reads per frame; here it is one load per frame from a
 * line bt_queue_read has just touched. Consecutive frames with the same
 * timestamp (a generator stamps a whole batch with one clock reading) are
 * folded into runs, so TypeScript records one histogram entry per run, not
 * per frame, and the result stays exact.
 *
 * Latencies are returned as doubles: exact below 2^53 ns (104 days), and a
 * Float64Array read allocates nothing in V8, where a BigUint64Array read
 * would allocate a BigInt.
 */
#include <errno.h>

#include "bt_internal.h"

/*
 * For refs[0..n): latency = now - tstamp_ns, as runs of equal timestamps.
 * vals[k] / counts[k] get run k (at most max_runs; a batch with more
 * distinct runs records the first max_runs - 1 runs and folds the rest
 * into the last slot's count with the last value: callers size max_runs
 * to n to stay exact). now is read here once. Frames with no timestamp
 * (0) or an invalid ref are skipped and counted in *skipped. Returns the
 * number of runs.
 */
int32_t bt_frames_latency(const uint32_t *refs, uint32_t n, double *vals,
			  uint32_t *counts, uint32_t max_runs,
			  uint32_t *skipped)
{
	uint64_t now, run_ts = 0;
	uint32_t runs = 0, skip = 0, slot = UINT32_MAX;
	struct bt_pool *p = NULL;

	if ((n && !refs) || !vals || !counts || !skipped || max_runs == 0)
		return -EFAULT;
	now = bt_now_ns();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t ref = refs[i];
		uint32_t idx = ref & BT_REF_INDEX_MASK;
		uint64_t ts;

		/* Frames of a batch are nearly always of one pool: look the
		 * pool up once per run of its slot, not per frame. */
		if (BT_UNLIKELY(ref >> BT_REF_INDEX_BITS != slot)) {
			struct bt_pool *q;
			slot = ref >> BT_REF_INDEX_BITS;
			p = bt_ref_meta(ref, &q) ? q : NULL;
		}
		if (BT_UNLIKELY(!p || idx >= p->nframes)) {
			skip++;
			continue;
		}
		ts = bt_frame_at(p, idx)->tstamp_ns;
		if (BT_LIKELY(runs && ts == run_ts)) {
			counts[runs - 1]++;
			continue;
		}
		if (BT_UNLIKELY(ts == 0)) {
			skip++;
			continue;
		}
		if (runs == max_runs) {
			counts[runs - 1]++;
			continue;
		}
		run_ts = ts;
		/* A clock read before the stamp (another CPU's clock skew) is
		 * recorded as 1 ns, the histogram's floor. */
		vals[runs] = now > ts ? (double)(now - ts) : 1.0;
		counts[runs] = 1;
		runs++;
	}
	*skipped += skip;
	return (int32_t)runs;
}

/*
 * A reader's whole step in one call: read up to max frames from a queue,
 * measure their latency as runs (when max_runs > 0), and return them to
 * their pools. Three crossings (read, latency, return) become one, which
 * is most of what recording costs a reader. Returns frames consumed, or a
 * negative errno from the read.
 */
int32_t bt_queue_consume(uint32_t dev, uint32_t queue, uint32_t *refs,
			 uint32_t max, double *vals, uint32_t *counts,
			 uint32_t max_runs, uint32_t *runs_out,
			 uint32_t *skipped)
{
	int32_t n, runs = 0;

	if (!runs_out || !skipped)
		return -EFAULT;
	*runs_out = 0;
	n = bt_queue_read(dev, queue, refs, max);
	if (n <= 0)
		return n;
	if (max_runs > 0) {
		runs = bt_frames_latency(refs, (uint32_t)n, vals, counts,
					 max_runs, skipped);
		if (runs < 0)
			runs = 0;
	}
	*runs_out = (uint32_t)runs;
	bt_frames_put(refs, (uint32_t)n, NULL, 0);
	return n;
}
