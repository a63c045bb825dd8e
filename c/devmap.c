/* SPDX-License-Identifier: MIT */
/*
 * Device map transmit: a whole poll cycle's verdicts in one call.
 *
 * A Worker's poll cycle ends with frames for several targets. Staging them
 * per target in TypeScript costs one FFI call per full stage and one more
 * per touched target at the end of the cycle. bt_devmap_xmit takes the
 * cycle's frames and their target indexes instead, stages them per target
 * here (the kernel devmap's per-CPU bulk queues), and transmits each stage
 * with bt_xmit: one lock per stage, the accepted prefix queued, the rest
 * returned to its pool by bt_xmit and counted against that target.
 *
 * Staging rule (as the kernel's bq_enqueue): a stage is sent without flush
 * when a frame arrives and finds it full, so at the end of the call every
 * touched target has a non-empty stage, and that last stage carries the
 * caller's flags. With BT_XMIT_FLUSH a cycle with frames for three targets
 * therefore rings exactly three doorbells.
 *
 * The stages live in thread-local storage and are empty again when the call
 * returns: the library never holds a frame between calls, so a Worker that
 * stops can account for every frame from TypeScript alone.
 */
#include <errno.h>
#include <string.h>

#include "bt_internal.h"

struct devmap_stage {
	uint32_t n;
	uint32_t refs[BT_MAX_BULK];
};

static __thread struct devmap_stage stages[BT_DEVMAP_MAX_TARGETS];

/* Send one stage. Frames bt_xmit refused as a whole (a frame not held, a
 * length past its frame) are returned here if they are still held, so a
 * caller bug costs frames of that stage, never a leak. */
static int32_t stage_send(uint32_t dev, struct devmap_stage *s,
			  uint32_t flags, int32_t cpu, uint32_t *counts)
{
	int32_t r = bt_xmit(dev, s->refs, s->n, flags, cpu);

	counts[BT_DEVMAP_XMIT_CALLS] += 1;
	if (r >= 0) {
		counts[BT_DEVMAP_SENT] += (uint32_t)r;
		counts[BT_DEVMAP_DROPPED] += s->n - (uint32_t)r;
	} else {
		if (!bt_xmit_returned_frames(r))
			bt_frames_put(s->refs, s->n, NULL, 0);
		counts[BT_DEVMAP_DROPPED] += s->n;
		counts[BT_DEVMAP_FAILED_CALLS] += 1;
	}
	s->n = 0;
	return r < 0 ? 0 : r;
}

int32_t bt_devmap_xmit(const uint32_t *devs, uint32_t ntargets,
		       const uint32_t *refs, const uint32_t *targets,
		       uint32_t n, uint32_t bulk, uint32_t flags, int32_t cpu,
		       uint32_t *counts)
{
	uint32_t touched[BT_DEVMAP_MAX_TARGETS];
	uint32_t ntouched = 0;
	int32_t sent = 0;

	if (ntargets > BT_DEVMAP_MAX_TARGETS || bulk < 1 ||
	    bulk > BT_MAX_BULK || (flags & ~(BT_XMIT_FLUSH | BT_XMIT_DIRECT)))
		return -EINVAL;
	if ((n && (!refs || !targets)) || (ntargets && (!devs || !counts)))
		return -EFAULT;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t t = targets[i];
		struct devmap_stage *s;

		if (BT_UNLIKELY(t >= ntargets)) {
			/* No such target: the frame goes home. Returned one
			 * by one because this is the error path. */
			bt_frames_put(&refs[i], 1, NULL, 0);
			continue;
		}
		s = &stages[t];
		if (s->n == 0)
			touched[ntouched++] = t;
		else if (s->n == bulk)
			/* Full: send without the doorbell; the cycle's last
			 * stage for this target rings it. */
			sent += stage_send(devs[t], s, 0, cpu,
					   &counts[BT_DEVMAP_COUNTS * t]);
		s->refs[s->n++] = refs[i];
	}
	for (uint32_t k = 0; k < ntouched; k++) {
		uint32_t t = touched[k];
		sent += stage_send(devs[t], &stages[t], flags, cpu,
				   &counts[BT_DEVMAP_COUNTS * t]);
	}
	return sent;
}
