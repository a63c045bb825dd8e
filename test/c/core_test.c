/* SPDX-License-Identifier: MIT */
/*
 * Spec tests of the bulktap C API, one behaviour per test.
 *
 * Build: see run.sh (the library sources in c/ are compiled in directly).
 *
 * Every test runs inside a small fixture: pools and devices it creates are
 * registered, and after the test the runner checks the accounting invariant
 * (every frame is free, held or queued; queued frames are exactly what the
 * rings hold) and then tears everything down, so a test that fails early
 * cannot poison the next one.
 *
 * Output: "ok NAME" or "FAIL NAME: reason" per test, then "N passed, N failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bulktap.h"

/* ------------------------------------------------------------------ */
/* Failure reporting                                                   */

#include "expect.h"

/* ------------------------------------------------------------------ */
/* Fixture: resources a test created, torn down after it               */

#define FX_MAX 4
static struct {
	int32_t pools[FX_MAX];
	int npools;
	int32_t devs[FX_MAX];
	int ndevs;
	/* Copied entries (bt_xmit_copy) the test leaves queued: they sit in
	 * rings but are not pool frames, so the invariant must add them. */
	uint32_t copies_queued;
} fx;

static int32_t fx_pool(uint32_t nframes, uint32_t frame_size,
		       uint32_t headroom)
{
	int32_t p = bt_pool_create(nframes, frame_size, headroom);

	if (p > 0 && fx.npools < FX_MAX)
		fx.pools[fx.npools++] = p;
	return p;
}

static int32_t fx_dev(int32_t pool, uint32_t nqueues, uint32_t ring_size)
{
	int32_t d = bt_dev_create((uint32_t)pool, nqueues, ring_size);

	if (d > 0 && fx.ndevs < FX_MAX)
		fx.devs[fx.ndevs++] = d;
	return d;
}

/* ------------------------------------------------------------------ */
/* Small accessors                                                     */

static uint64_t pool_stat(int32_t pool, int i)
{
	uint64_t s[BT_PS_COUNT] = { 0 };

	bt_pool_stats((uint32_t)pool, s, BT_PS_COUNT);
	return s[i];
}

static uint64_t dev_stat(int32_t dev, int i)
{
	uint64_t s[BT_DS_COUNT] = { 0 };

	bt_dev_stats((uint32_t)dev, s, BT_DS_COUNT);
	return s[i];
}

static uint64_t pool_info(int32_t pool, int i)
{
	uint64_t v[BT_PI_COUNT] = { 0 };

	bt_pool_info((uint32_t)pool, v, BT_PI_COUNT);
	return v[i];
}

/* The metadata of a frame, found the way TypeScript finds it: base plus
 * index times frame size. */
static struct bt_frame_meta *meta_of(int32_t pool, uint32_t ref)
{
	uint8_t *base = bt_pool_base((uint32_t)pool);

	return (struct bt_frame_meta *)(base +
					(size_t)(ref & BT_REF_INDEX_MASK) *
						pool_info(pool, BT_PI_FRAME_SIZE));
}

static uint8_t *data_of(int32_t pool, uint32_t ref)
{
	struct bt_frame_meta *m = meta_of(pool, ref);

	return (uint8_t *)m + m->data_off;
}

static uint8_t state_of(int32_t pool, uint32_t ref)
{
	return meta_of(pool, ref)->state;
}

/* Library-private state values, as documented in bulktap.h's ownership
 * paragraph; the tests read them through the public meta layout. */
enum { ST_FREE = 0, ST_HELD = 1, ST_QUEUED = 2 };

static uint32_t slot_of(int32_t pool)
{
	return (uint32_t)pool_info(pool, BT_PI_SLOT);
}

static uint32_t ref_for(int32_t pool, uint32_t idx)
{
	return (slot_of(pool) << BT_REF_INDEX_BITS) | idx;
}

static uint32_t dev_queues(int32_t dev)
{
	uint64_t v[BT_DI_COUNT] = { 0 };

	if (bt_dev_info((uint32_t)dev, v, BT_DI_COUNT) < 0)
		return 0;
	return (uint32_t)v[BT_DI_QUEUES];
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Allocate n frames and give each a length and a recognisable payload. */
static int alloc_filled(int32_t pool, uint32_t *refs, uint32_t n,
			uint32_t len, uint8_t tag)
{
	if (bt_pool_alloc((uint32_t)pool, refs, n) != (int32_t)n)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		meta_of(pool, refs[i])->len = len;
		memset(data_of(pool, refs[i]), tag + (int)i, len);
	}
	return 0;
}

/*
 * The accounting invariant, checked after every test (and inside some):
 *   for each pool: free + held + queued == frames;
 *   queued pool frames + queued copies == entries in the open devices'
 *   rings (sum of bt_queue_count), which also equals BT_DS_QUEUED.
 */
static int accounting_ok(char *why, size_t len)
{
	uint64_t queued_frames = 0, ring_entries = 0;

	for (int i = 0; i < fx.npools; i++) {
		uint64_t s[BT_PS_COUNT];

		if (bt_pool_stats((uint32_t)fx.pools[i], s, BT_PS_COUNT) < 0)
			continue; /* destroyed by the test */
		if (s[BT_PS_FREE] + s[BT_PS_HELD] + s[BT_PS_QUEUED] !=
		    s[BT_PS_FRAMES]) {
			snprintf(why, len,
				 "pool %d: free %llu + held %llu + queued %llu "
				 "!= frames %llu",
				 fx.pools[i], (unsigned long long)s[BT_PS_FREE],
				 (unsigned long long)s[BT_PS_HELD],
				 (unsigned long long)s[BT_PS_QUEUED],
				 (unsigned long long)s[BT_PS_FRAMES]);
			return 0;
		}
		queued_frames += s[BT_PS_QUEUED];
	}
	for (int i = 0; i < fx.ndevs; i++) {
		uint32_t nq = dev_queues(fx.devs[i]);
		uint64_t sum = 0;

		for (uint32_t q = 0; q < nq; q++) {
			int32_t c = bt_queue_count((uint32_t)fx.devs[i], q);
			if (c < 0) {
				snprintf(why, len, "bt_queue_count -> %d", c);
				return 0;
			}
			sum += (uint64_t)c;
		}
		if (nq && dev_stat(fx.devs[i], BT_DS_QUEUED) != sum) {
			snprintf(why, len, "dev %d: BT_DS_QUEUED %llu != %llu",
				 fx.devs[i],
				 (unsigned long long)dev_stat(fx.devs[i],
							      BT_DS_QUEUED),
				 (unsigned long long)sum);
			return 0;
		}
		ring_entries += sum;
	}
	if (queued_frames + fx.copies_queued != ring_entries) {
		snprintf(why, len,
			 "queued frames %llu + copies %u != ring entries %llu",
			 (unsigned long long)queued_frames, fx.copies_queued,
			 (unsigned long long)ring_entries);
		return 0;
	}
	return 1;
}

#define EXPECT_ACCOUNTING()                                    \
	do {                                                   \
		char why_[256];                                \
		if (!accounting_ok(why_, sizeof(why_))) {      \
			fail_at(__LINE__, "accounting: %s", why_); \
			return;                                \
		}                                              \
	} while (0)

/* Close devices, hand back every frame a test left held (found by walking
 * the frames' metadata), destroy the pools. A pool that will not go away
 * has frames stuck in the QUEUED state: that is a library bug. */
static void fx_teardown(void)
{
	for (int i = 0; i < fx.ndevs; i++)
		bt_dev_close((uint32_t)fx.devs[i]);
	for (int i = 0; i < fx.npools; i++) {
		int32_t p = fx.pools[i];
		uint64_t n = pool_info(p, BT_PI_FRAMES);
		uint32_t ref;

		if (!bt_pool_base((uint32_t)p))
			continue;
		for (uint32_t idx = 0; idx < n; idx++) {
			ref = ref_for(p, idx);
			if (state_of(p, ref) == ST_HELD)
				bt_pool_put((uint32_t)p, &ref, 1, NULL, 0);
		}
		int32_t r = bt_pool_destroy((uint32_t)p);
		if (r != 0)
			fail_at(__LINE__, "teardown: pool %d destroy -> %d", p,
				r);
	}
	memset(&fx, 0, sizeof(fx));
}

/* ================================================================== */
/* Pools: creation                                                     */

static void pool_create_rejects_headroom_below_meta_with_enospc(void)
{
	EXPECT_EQ(bt_meta_size(), 64);
	EXPECT_EQ(bt_pool_create(8, 256, 63), -ENOSPC);
	EXPECT_EQ(bt_pool_create(8, 256, 0), -ENOSPC);
	/* Exactly the metadata size is enough. */
	EXPECT(fx_pool(8, 256, 64) > 0);
}

static void pool_create_rejects_frame_size_not_multiple_of_64(void)
{
	EXPECT_EQ(bt_pool_create(8, 200, 64), -EINVAL);
	EXPECT_EQ(bt_pool_create(8, 256 + 32, 64), -EINVAL);
	EXPECT_EQ(bt_pool_create(8, 255, 64), -EINVAL);
}

static void pool_create_rejects_too_small_frame(void)
{
	/* Multiples of 64 but too small to hold headroom plus data. */
	EXPECT_EQ(bt_pool_create(8, 64, 64), -EINVAL);
	EXPECT_EQ(bt_pool_create(8, 0, 64), -EINVAL);
	/* Headroom must leave at least 64 bytes of data. */
	EXPECT_EQ(bt_pool_create(8, 128, 96), -EINVAL);
}

static void pool_create_rejects_zero_frames(void)
{
	EXPECT_EQ(bt_pool_create(0, 256, 64), -EINVAL);
}

static void pool_info_reports_geometry(void)
{
	int32_t p = fx_pool(10, 192, 64);
	uint64_t v[BT_PI_COUNT];

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_info((uint32_t)p, v, BT_PI_COUNT), BT_PI_COUNT);
	EXPECT_EQ(v[BT_PI_SLOT], (uint32_t)p & 0xff);
	EXPECT_EQ(v[BT_PI_FRAMES], 10);
	EXPECT_EQ(v[BT_PI_FRAME_SIZE], 192);
	EXPECT_EQ(v[BT_PI_HEADROOM], 64);
	/* Page-rounded region covering every frame. */
	EXPECT(v[BT_PI_REGION_BYTES] >= 10 * 192);
	EXPECT_EQ(v[BT_PI_REGION_BYTES] % 4096, 0);
	/* Frames are cache-line aligned: the ring's tag bit relies on it. */
	EXPECT_EQ((uintptr_t)bt_pool_base((uint32_t)p) % 64, 0);
}

/* ================================================================== */
/* Pools: allocation                                                   */

static void pool_alloc_hands_out_slot_and_index_refs(void)
{
	int32_t p = fx_pool(16, 256, 64);
	uint32_t refs[16];
	int seen[16] = { 0 };

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 16), 16);
	for (int i = 0; i < 16; i++) {
		uint32_t idx = refs[i] & BT_REF_INDEX_MASK;
		EXPECT_EQ(refs[i] >> BT_REF_INDEX_BITS, slot_of(p));
		EXPECT(idx < 16);
		EXPECT_EQ(seen[idx], 0);
		seen[idx] = 1;
	}
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), 16);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 0);
}

static void pool_alloc_initialises_frame_meta(void)
{
	int32_t p = fx_pool(4, 256, 96);
	uint32_t ref;
	struct bt_frame_meta *m;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	/* Scribble on everything a caller may write, return the frame, and
	 * take it again: allocation must reset the metadata. */
	m = meta_of(p, ref);
	m->len = 77;
	m->data_off = 40;
	m->mark = 5;
	m->tstamp_ns = 9;
	EXPECT_EQ(bt_pool_put((uint32_t)p, &ref, 1, NULL, 0), 1);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	m = meta_of(p, ref);
	EXPECT_EQ(m->magic, BT_FRAME_MAGIC);
	EXPECT_EQ(m->ref, ref);
	EXPECT_EQ(m->data_off, 96);
	EXPECT_EQ(m->len, 0);
	EXPECT_EQ(m->mark, 0);
	EXPECT_EQ(m->tstamp_ns, 0);
	EXPECT_EQ(m->state, ST_HELD);
}

static void pool_alloc_beyond_free_returns_fewer_and_counts_failure(void)
{
	int32_t p = fx_pool(8, 256, 64);
	uint32_t refs[20];

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 5), 5);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs + 5, 10), 3);
	EXPECT_EQ(pool_stat(p, BT_PS_ALLOC_FAILED), 7);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs + 8, 4), 0);
	EXPECT_EQ(pool_stat(p, BT_PS_ALLOC_FAILED), 11);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 0);
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), 8);
}

/* ================================================================== */
/* Pools: return                                                       */

static void pool_put_returns_held_frames(void)
{
	int32_t p = fx_pool(8, 256, 64);
	uint32_t refs[8];

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 8), 8);
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs, 3, NULL, 0), 3);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 3);
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), 5);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(state_of(p, refs[i]), ST_FREE);
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs + 3, 5, NULL, 0), 5);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 8);
	EXPECT_EQ(pool_stat(p, BT_PS_DOUBLE_RETURN), 0);
}

static void pool_put_detects_double_return_and_stays_whole(void)
{
	int32_t p = fx_pool(8, 256, 64);
	uint32_t refs[8], again[8], bad[4];
	int seen[8] = { 0 };

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 8), 8);
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs, 2, NULL, 0), 2);
	/* refs[0] again (already free), refs[2] twice in the same call. */
	uint32_t ret[4] = { refs[2], refs[0], refs[2], refs[3] };
	memset(bad, 0xff, sizeof(bad));
	EXPECT_EQ(bt_pool_put((uint32_t)p, ret, 4, bad, 4), 2);
	EXPECT_EQ(pool_stat(p, BT_PS_DOUBLE_RETURN), 2);
	EXPECT_EQ(bad[0], 1);
	EXPECT_EQ(bad[1], 2);
	EXPECT_EQ(bad[2], 0xffffffffu); /* nothing else written */
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 4);
	/* The free stack was not corrupted: every index exactly once. */
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs + 4, 4, NULL, 0), 4);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, again, 8), 8);
	for (int i = 0; i < 8; i++) {
		uint32_t idx = again[i] & BT_REF_INDEX_MASK;
		EXPECT(idx < 8);
		EXPECT_EQ(seen[idx], 0);
		seen[idx] = 1;
	}
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, again, 1), 0);
}

static void pool_put_detects_foreign_frame_and_leaves_it_held(void)
{
	int32_t a = fx_pool(4, 256, 64);
	int32_t b = fx_pool(4, 256, 64);
	uint32_t ra, rb, bad = 99;

	EXPECT(a > 0 && b > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)a, &ra, 1), 1);
	EXPECT_EQ(bt_pool_alloc((uint32_t)b, &rb, 1), 1);
	uint32_t mixed[2] = { ra, rb };
	EXPECT_EQ(bt_pool_put((uint32_t)a, mixed, 2, &bad, 1), 1);
	EXPECT_EQ(bad, 1);
	EXPECT_EQ(pool_stat(a, BT_PS_FOREIGN_RETURN), 1);
	EXPECT_EQ(pool_stat(a, BT_PS_FREE), 4);
	/* b's frame is untouched and still usable by its owner. */
	EXPECT_EQ(state_of(b, rb), ST_HELD);
	EXPECT_EQ(bt_frame_check(rb), BT_FRAME_OK);
	EXPECT_EQ(pool_stat(b, BT_PS_HELD), 1);
	EXPECT_EQ(bt_pool_put((uint32_t)b, &rb, 1, NULL, 0), 1);
}

static void pool_put_counts_out_of_range_refs_as_invalid(void)
{
	int32_t p = fx_pool(4, 256, 64);
	uint32_t bad[3];

	EXPECT(p > 0);
	uint32_t refs[3] = {
		ref_for(p, 4), /* index == nframes */
		ref_for(p, BT_REF_INDEX_MASK),
		5, /* slot 0: never a pool */
	};
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs, 3, bad, 3), 0);
	EXPECT_EQ(pool_stat(p, BT_PS_INVALID_REF), 3);
	EXPECT_EQ(bad[0], 0);
	EXPECT_EQ(bad[1], 1);
	EXPECT_EQ(bad[2], 2);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 4);
}

static void pool_put_reports_bad_positions_up_to_bad_max(void)
{
	int32_t p = fx_pool(4, 256, 64);
	/* Heap-allocated with room for exactly one: ASan flags any write
	 * past bad_max. */
	uint32_t *bad = malloc(sizeof(*bad));
	uint32_t refs[3];

	EXPECT(p > 0 && bad);
	refs[0] = refs[1] = refs[2] = ref_for(p, 0); /* all free */
	int32_t r = bt_pool_put((uint32_t)p, refs, 3, bad, 1);
	uint32_t first = *bad;
	free(bad);
	EXPECT_EQ(r, 0);
	EXPECT_EQ(first, 0);
	EXPECT_EQ(pool_stat(p, BT_PS_DOUBLE_RETURN), 3);
	/* bad == NULL is allowed whatever bad_max says. */
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs, 1, NULL, 8), 0);
}

static void pool_calls_with_stale_handle_fail_with_enxio(void)
{
	int32_t p = bt_pool_create(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_destroy((uint32_t)p), 0);
	EXPECT_EQ(bt_pool_destroy((uint32_t)p), -ENXIO);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), -ENXIO);
	EXPECT_EQ(bt_pool_put((uint32_t)p, &ref, 0, NULL, 0), -ENXIO);
	EXPECT(bt_pool_base((uint32_t)p) == NULL);
	/* A later pool reuses the slot (whatever order slots are handed out
	 * in, cycling through create/destroy gets back to it); the old
	 * handle still fails. */
	int32_t q = -1;
	for (int i = 0; i <= BT_MAX_POOLS; i++) {
		q = bt_pool_create(4, 256, 64);
		if (q < 0 || ((uint32_t)q & 0xff) == ((uint32_t)p & 0xff))
			break;
		bt_pool_destroy((uint32_t)q);
	}
	EXPECT(q > 0);
	fx.pools[fx.npools++] = q;
	EXPECT_EQ((uint32_t)q & 0xff, (uint32_t)p & 0xff);
	EXPECT(q != p);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), -ENXIO);
	EXPECT_EQ(pool_stat(q, BT_PS_FREE), 4);
}

static void pool_destroy_refuses_while_frames_out_or_device_attached(void)
{
	int32_t p = fx_pool(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	EXPECT_EQ(bt_pool_destroy((uint32_t)p), -EBUSY);
	EXPECT_EQ(bt_pool_put((uint32_t)p, &ref, 1, NULL, 0), 1);
	int32_t d = fx_dev(p, 1, 8);
	EXPECT(d > 0);
	EXPECT_EQ(bt_pool_destroy((uint32_t)p), -EBUSY);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 0);
	/* Teardown destroys it and fails the test if that does not work. */
}

/* ================================================================== */
/* bt_frame_check                                                       */

static void frame_check_accepts_fresh_frame(void)
{
	int32_t p = fx_pool(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_OK);
	/* The largest window that fits is fine too. */
	meta_of(p, ref)->len = 256 - 64;
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_OK);
}

static void frame_check_reports_free_frame(void)
{
	int32_t p = fx_pool(4, 256, 64);

	EXPECT(p > 0);
	EXPECT_EQ(bt_frame_check(ref_for(p, 2)), BT_FRAME_NOT_HELD);
}

static void frame_check_reports_queued_frame(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t ref;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_QUEUED);
}

static void frame_check_reports_length_beyond_frame(void)
{
	int32_t p = fx_pool(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	meta_of(p, ref)->len = 256 - 64 + 1;
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_BAD_LENGTH);
	/* A huge len must not wrap the bounds check. */
	meta_of(p, ref)->len = 0xffffffffu;
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_BAD_LENGTH);
}

static void frame_check_reports_offset_inside_meta(void)
{
	int32_t p = fx_pool(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, &ref, 1), 1);
	meta_of(p, ref)->data_off = 63;
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_BAD_OFFSET);
	/* 64 (just past the metadata) is allowed: a pushed header. */
	meta_of(p, ref)->data_off = 64;
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_OK);
}

static void frame_check_reports_index_beyond_pool(void)
{
	int32_t p = fx_pool(4, 256, 64);

	EXPECT(p > 0);
	EXPECT_EQ(bt_frame_check(ref_for(p, 4)), BT_FRAME_BAD_INDEX);
	EXPECT_EQ(bt_frame_check(ref_for(p, BT_REF_INDEX_MASK)),
		  BT_FRAME_BAD_INDEX);
}

static void frame_check_reports_unknown_pool(void)
{
	int32_t p = bt_pool_create(4, 256, 64);
	uint32_t ref;

	EXPECT(p > 0);
	ref = ref_for(p, 0);
	EXPECT_EQ(bt_pool_destroy((uint32_t)p), 0);
	EXPECT_EQ(bt_frame_check(ref), BT_FRAME_NO_POOL); /* destroyed */
	EXPECT_EQ(bt_frame_check(0), BT_FRAME_NO_POOL); /* slot 0 */
	EXPECT_EQ(bt_frame_check(7), BT_FRAME_NO_POOL);
}

/* ================================================================== */
/* Devices                                                             */

static void dev_create_rejects_bad_geometry(void)
{
	int32_t p = fx_pool(4, 256, 64);

	EXPECT(p > 0);
	EXPECT_EQ(bt_dev_create((uint32_t)p, 0, 8), -EINVAL);
	EXPECT_EQ(bt_dev_create((uint32_t)p, BT_MAX_QUEUES + 1, 8), -EINVAL);
	EXPECT_EQ(bt_dev_create((uint32_t)p, 1, 1), -EINVAL);
	EXPECT_EQ(bt_dev_create((uint32_t)p, 1, BT_MAX_RING + 1), -EINVAL);
	EXPECT_EQ(bt_dev_create(0, 1, 8), -ENXIO);
	EXPECT_EQ(bt_dev_create((uint32_t)p + (1u << 8), 1, 8), -ENXIO);
}

static void dev_info_reports_geometry(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 3, 10);
	uint64_t v[BT_DI_COUNT];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_dev_info((uint32_t)d, v, BT_DI_COUNT), BT_DI_COUNT);
	EXPECT_EQ(v[BT_DI_QUEUES], 3);
	EXPECT_EQ(v[BT_DI_RING_SIZE], 10);
	EXPECT_EQ(v[BT_DI_POOL], (uint32_t)p);
}

/* ================================================================== */
/* Transmit                                                            */

static void xmit_accepts_prefix_and_drops_rest_when_ring_fills(void)
{
	enum { R = 8, K = 5 };
	int32_t p = fx_pool(32, 256, 64);
	int32_t d = fx_dev(p, 1, R);
	uint32_t refs[R + K];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, R + K, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, R + K, 0, 0), R);
	for (int i = 0; i < R; i++)
		EXPECT_EQ(state_of(p, refs[i]), ST_QUEUED);
	/* The core, not the caller, returned the suffix to the pool. */
	for (int i = R; i < R + K; i++)
		EXPECT_EQ(state_of(p, refs[i]), ST_FREE);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_DROPPED), K);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_PACKETS), R);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_BYTES), R * 10);
	EXPECT_EQ(dev_stat(d, BT_DS_XMIT_CALLS), 1);
	EXPECT_EQ(dev_stat(d, BT_DS_LOCK_ACQUISITIONS), 1);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), R);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 32 - R);
	EXPECT_ACCOUNTING();
	/* A full ring accepts nothing more: all dropped, return 0. */
	EXPECT_EQ(alloc_filled(p, refs, 2, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 2, 0, 0), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_DROPPED), K + 2);
	EXPECT_EQ(state_of(p, refs[0]), ST_FREE);
}

/* Helper for the all-or-nothing tests: frames 0..n-1 held, one of them
 * broken by the caller, and the call must leave every state unchanged. */
static void xmit_rejects_batch_with(void (*spoil)(int32_t p, uint32_t *refs))
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[4];
	uint8_t before[4];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, 4, 10, 1), 0);
	spoil(p, refs);
	for (int i = 0; i < 4; i++)
		before[i] = state_of(p, refs[i]);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 4, 0, 0), -EINVAL);
	for (int i = 0; i < 4; i++)
		EXPECT_EQ(state_of(p, refs[i]), before[i]);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_PACKETS), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_DROPPED), 0);
}

static void spoil_free(int32_t p, uint32_t *refs)
{
	bt_pool_put((uint32_t)p, &refs[2], 1, NULL, 0);
}

static void spoil_len(int32_t p, uint32_t *refs)
{
	meta_of(p, refs[3])->len = 256;
}

static void spoil_off(int32_t p, uint32_t *refs)
{
	meta_of(p, refs[1])->data_off = 16;
}

static void spoil_dup(int32_t p, uint32_t *refs)
{
	(void)p;
	refs[3] = refs[1];
}

static void xmit_rejects_free_frame_taking_nothing(void)
{
	xmit_rejects_batch_with(spoil_free);
}

static void xmit_rejects_length_beyond_frame_taking_nothing(void)
{
	xmit_rejects_batch_with(spoil_len);
}

static void xmit_rejects_offset_inside_meta_taking_nothing(void)
{
	xmit_rejects_batch_with(spoil_off);
}

/* The same frame twice in one bulk would put one buffer in the ring twice
 * (or queue it and free it at once if the ring fills between the two):
 * the caller no longer owns it after the first entry, so it is invalid. */
static void xmit_rejects_same_frame_twice_in_one_bulk(void)
{
	xmit_rejects_batch_with(spoil_dup);
}

static void xmit_rejects_unknown_flags_taking_nothing(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[2];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, 2, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 2, 8, 0), -EINVAL);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 2, 0x80000000u | BT_XMIT_FLUSH,
			  0),
		  -EINVAL);
	EXPECT_EQ(state_of(p, refs[0]), ST_HELD);
	EXPECT_EQ(state_of(p, refs[1]), ST_HELD);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
}

static void xmit_rejects_more_than_max_bulk_with_e2big(void)
{
	int32_t p = fx_pool(BT_MAX_BULK + 1, 128, 64);
	int32_t d = fx_dev(p, 1, 1024);
	uint32_t refs[BT_MAX_BULK + 1];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, BT_MAX_BULK + 1),
		  BT_MAX_BULK + 1);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, BT_MAX_BULK + 1, 0, 0), -E2BIG);
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), BT_MAX_BULK + 1);
	/* Exactly the maximum is fine. */
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, BT_MAX_BULK, 0, 0), BT_MAX_BULK);
	EXPECT_EQ(pool_stat(p, BT_PS_QUEUED), BT_MAX_BULK);
}

static void xmit_on_closed_device_fails_and_returns_frames(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[3];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, 3, 10, 1), 0);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 3, BT_XMIT_FLUSH, 0), -ENXIO);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(state_of(p, refs[i]), ST_FREE);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 8);
}

static void xmit_of_zero_frames_is_a_no_op(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, NULL, 0, 0, 0), 0);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
}

/* ================================================================== */
/* Queue selection                                                     */

static void queue_for_cpu_is_cpu_modulo_queues(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 3, 8);

	EXPECT(p > 0 && d > 0);
	for (int32_t cpu = 0; cpu < 12; cpu++)
		EXPECT_EQ(bt_queue_for_cpu((uint32_t)d, cpu), cpu % 3);
	EXPECT_EQ(bt_queue_for_cpu((uint32_t)d, 1000001), 1000001 % 3);
	/* BT_CPU_SELF uses the calling thread's CPU; it may migrate, so only
	 * the range is certain. */
	int32_t q = bt_queue_for_cpu((uint32_t)d, BT_CPU_SELF);
	EXPECT(q >= 0 && q < 3);
}

static void xmit_lands_frames_on_cpu_modulo_queues(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 3, 8);
	uint32_t refs[7], got[8];

	EXPECT(p > 0 && d > 0);
	/* One frame per cpu 0..6, marked with its cpu. */
	for (uint32_t cpu = 0; cpu < 7; cpu++) {
		EXPECT_EQ(bt_pool_alloc((uint32_t)p, &refs[cpu], 1), 1);
		meta_of(p, refs[cpu])->mark = cpu;
		EXPECT_EQ(bt_xmit((uint32_t)d, &refs[cpu], 1, 0, (int32_t)cpu),
			  1);
	}
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 3); /* cpus 0, 3, 6 */
	EXPECT_EQ(bt_queue_count((uint32_t)d, 1), 2); /* cpus 1, 4 */
	EXPECT_EQ(bt_queue_count((uint32_t)d, 2), 2); /* cpus 2, 5 */
	EXPECT_ACCOUNTING();
	for (uint32_t q = 0; q < 3; q++) {
		int32_t n = bt_queue_read((uint32_t)d, q, got, 8);
		EXPECT(n >= 2);
		for (int32_t i = 0; i < n; i++) {
			EXPECT_EQ(meta_of(p, got[i])->mark % 3, q);
			EXPECT_EQ(meta_of(p, got[i])->queue, q);
		}
		EXPECT_EQ(bt_pool_put((uint32_t)p, got, (uint32_t)n, NULL, 0),
			  n);
	}
}

/* ================================================================== */
/* Reading                                                             */

static void queue_ready_looks_at_one_slot_and_names_bad_queues(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	uint32_t refs[2];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_queue_ready((uint32_t)d, 0), 0);
	EXPECT_EQ(alloc_filled(p, refs, 2, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 2, 0, 0), 2);
	EXPECT_EQ(bt_queue_ready((uint32_t)d, 0), 1);
	EXPECT_EQ(bt_queue_ready((uint32_t)d, 1), 0);
	EXPECT_EQ(bt_queue_ready((uint32_t)d, 2), -EINVAL);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, refs, 2), 2);
	EXPECT_EQ(bt_queue_ready((uint32_t)d, 0), 0);
	EXPECT_EQ(bt_pool_put((uint32_t)p, refs, 2, NULL, 0), 2);
	EXPECT_EQ(bt_queue_ready(0, 0), -ENXIO);
}

static void queue_read_spin_reads_at_once_or_gives_up_after_its_spin(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[4], got[4];
	uint64_t t0, waited;

	EXPECT(p > 0 && d > 0);
	/* Something queued: read at once, as bt_queue_read. */
	EXPECT_EQ(alloc_filled(p, refs, 3, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 3, 0, 0), 3);
	EXPECT_EQ(bt_queue_read_spin((uint32_t)d, 0, got, 4, 500000), 3);
	EXPECT_EQ(got[2], refs[2]);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 3, NULL, 0), 3);
	/* Nothing queued: 0 after watching for (at least) the spin. */
	t0 = bt_now_ns();
	EXPECT_EQ(bt_queue_read_spin((uint32_t)d, 0, got, 4, 200000), 0);
	waited = bt_now_ns() - t0;
	EXPECT(waited >= 200000);
	/* A spin beyond the cap is cut to it, not refused. */
	t0 = bt_now_ns();
	EXPECT_EQ(bt_queue_read_spin((uint32_t)d, 0, got, 4, UINT32_MAX), 0);
	waited = bt_now_ns() - t0;
	EXPECT(waited >= BT_MAX_SPIN_NS);
	EXPECT_EQ(bt_queue_read_spin((uint32_t)d, 1, got, 4, 1000), -EINVAL);
	EXPECT_EQ(bt_queue_read_spin(0, 0, got, 4, 1000), -ENXIO);
	/* max 0 reads nothing and does not spin. */
	EXPECT_EQ(bt_queue_read_spin((uint32_t)d, 0, got, 0, BT_MAX_SPIN_NS), 0);
}

static void queue_read_returns_frames_in_order_with_lengths(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 2, 16);
	uint32_t refs[10], got[10];
	int32_t n1, n2;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 10), 10);
	for (uint32_t i = 0; i < 10; i++) {
		meta_of(p, refs[i])->len = 7 * i + 1;
		memset(data_of(p, refs[i]), (int)(0xa0 + i), 7 * i + 1);
	}
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 10, 0, 1), 10);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 10), 0); /* other q */
	n1 = bt_queue_read((uint32_t)d, 1, got, 4);
	EXPECT_EQ(n1, 4);
	n2 = bt_queue_read((uint32_t)d, 1, got + 4, 10);
	EXPECT_EQ(n2, 6);
	for (uint32_t i = 0; i < 10; i++) {
		struct bt_frame_meta *m = meta_of(p, got[i]);
		EXPECT_EQ(got[i], refs[i]);
		EXPECT_EQ(m->state, ST_HELD);
		EXPECT_EQ(m->len, 7 * i + 1);
		EXPECT_EQ(m->queue, 1);
		EXPECT_EQ(data_of(p, got[i])[7 * i], 0xa0 + i);
	}
	EXPECT_EQ(dev_stat(d, BT_DS_RX_PACKETS), 10);
	EXPECT_EQ(dev_stat(d, BT_DS_RX_BATCHES), 2);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 1, got, 10), 0);
	EXPECT_ACCOUNTING();
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 10, NULL, 0), 10);
}

static void queue_read_rejects_queue_out_of_range(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	uint32_t got[1], ref = 0;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 2, got, 1), -EINVAL);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 2), -EINVAL);
	EXPECT_EQ(bt_queue_wait((uint32_t)d, 2, 0), -EINVAL);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 2, &ref, 0), -EINVAL);
	EXPECT_EQ(bt_flush((uint32_t)d, 2), -EINVAL);
}

/*
 * The ring frees consumed slots in batches of 16 (two cache lines of
 * pointers), so after the consumer takes one entry from a full ring the
 * producer still sees "full": consumed does not mean produce succeeds.
 */
static void ring_consume_does_not_guarantee_next_produce(void)
{
	enum { R = 32 };
	int32_t p = fx_pool(64, 128, 64);
	int32_t d = fx_dev(p, 1, R);
	uint32_t refs[R], got[R], more[16];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, R), R);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, R, 0, 0), R);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 1), 1);
	/* Consumed one, but its slot is not zeroed yet. */
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), R - 1);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, more, 1), 1);
	EXPECT_EQ(bt_xmit((uint32_t)d, more, 1, 0, 0), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_DROPPED), 1);
	EXPECT_ACCOUNTING();
	/* Consuming the rest of the batch of 16 frees all 16 slots at once. */
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got + 1, 15), 15);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, more, 16), 16);
	EXPECT_EQ(bt_xmit((uint32_t)d, more, 16, 0, 0), 16);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), R);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 16, NULL, 0), 16);
	EXPECT_ACCOUNTING();
}

static void queue_unread_puts_frames_back_at_head_in_order(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 1, 16);
	uint32_t refs[7], got[8];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 7), 7);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 6, 0, 0), 6);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 3), 3);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, got, 3), 3);
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(state_of(p, got[i]), ST_QUEUED);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 6);
	EXPECT_ACCOUNTING();
	/* A later frame goes behind them. */
	EXPECT_EQ(bt_xmit((uint32_t)d, &refs[6], 1, 0, 0), 1);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 8), 7);
	for (int i = 0; i < 7; i++)
		EXPECT_EQ(got[i], refs[i]);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 7, NULL, 0), 7);
}

static void queue_unread_works_across_ring_wrap(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[8], got[8];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 8), 8);
	/* Read all 8, so the consumer head wraps to slot 0, then hand the
	 * last 3 back: they go to slots 5..7, behind the head. */
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 8, 0, 0), 8);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 8), 8);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, got + 5, 3), 3);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 5, NULL, 0), 5);
	/* Two new frames go in at slots 0 and 1, after the unread ones. */
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 2), 2);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 2, 0, 0), 2);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 8), 5);
	EXPECT_EQ(got[0], refs[5]);
	EXPECT_EQ(got[1], refs[6]);
	EXPECT_EQ(got[2], refs[7]);
	EXPECT_EQ(got[3], refs[0]);
	EXPECT_EQ(got[4], refs[1]);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 5, NULL, 0), 5);
}

/*
 * With a ring of 32 the consumer zeroes slots in batches of 16, so after a
 * partial read some consumed slots are still un-zeroed when the reader
 * hands frames back. The unread frames must sit directly before the
 * unread ones: a zeroed gap between them would make the reader stop at the
 * gap and strand everything behind it.
 */
static void queue_unread_with_pending_zero_batch_leaves_no_gap(void)
{
	enum { R = 32 };
	int32_t p = fx_pool(64, 128, 64);
	int32_t d = fx_dev(p, 1, R);
	uint32_t refs[10], got[10];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 10), 10);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 10, 0, 0), 10);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 5), 5);
	/* Hand back only the last two read (refs[3], refs[4]). */
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, got + 3, 2), 2);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 3, NULL, 0), 3);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 7);
	EXPECT_ACCOUNTING();
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 10), 7);
	for (int i = 0; i < 7; i++)
		EXPECT_EQ(got[i], refs[3 + i]);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 7, NULL, 0), 7);
}

static void queue_unread_drops_frames_that_no_longer_fit(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 1, 4); /* small ring: slots freed one by one */
	uint32_t refs[6], got[4];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 6), 6);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 4, 0, 0), 4);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 2), 2);
	/* Producers refill the two free slots; nothing fits behind the head. */
	EXPECT_EQ(bt_xmit((uint32_t)d, refs + 4, 2, 0, 0), 2);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, got, 2), 0);
	EXPECT_EQ(state_of(p, got[0]), ST_FREE);
	EXPECT_EQ(state_of(p, got[1]), ST_FREE);
	EXPECT_EQ(dev_stat(d, BT_DS_RX_DROPPED), 2);
	EXPECT_ACCOUNTING();
}

static void queue_unread_rejects_frame_not_held_taking_nothing(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[2];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, refs, 2), 2);
	EXPECT_EQ(bt_pool_put((uint32_t)p, &refs[1], 1, NULL, 0), 1);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, refs, 2), -EINVAL);
	EXPECT_EQ(state_of(p, refs[0]), ST_HELD);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
	/* A duplicate would queue one frame twice. */
	refs[1] = refs[0];
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, refs, 2), -EINVAL);
	EXPECT_EQ(state_of(p, refs[0]), ST_HELD);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
}

/* ================================================================== */
/* Tagged entries: copies next to pool frames                          */

static void xmit_copy_queues_copies_next_to_pool_frames(void)
{
	int32_t p = fx_pool(16, 256, 64);
	int32_t d = fx_dev(p, 2, 16);
	uint32_t f[2], got[8];
	uint8_t bytes[5 + 9];
	uint32_t lens[2] = { 5, 9 };

	EXPECT(p > 0 && d > 0);
	for (int i = 0; i < 14; i++)
		bytes[i] = (uint8_t)(0x10 + i);
	EXPECT_EQ(alloc_filled(p, f, 2, 3, 0x70), 0);
	/* frame, copy, copy, frame: all on cpu 1 -> queue 1. */
	EXPECT_EQ(bt_xmit((uint32_t)d, &f[0], 1, 0, 1), 1);
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, bytes, lens, 2, 0, 1), 2);
	EXPECT_EQ(bt_xmit((uint32_t)d, &f[1], 1, 0, 1), 1);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 1), 4);
	fx.copies_queued = 2;
	EXPECT_ACCOUNTING();
	/* The copies take two pool frames only when they are read. */
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 14);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 1, got, 8), 4);
	fx.copies_queued = 0;
	EXPECT_EQ(got[0], f[0]);
	EXPECT_EQ(got[3], f[1]);
	EXPECT_EQ(data_of(p, got[0])[0], 0x70);
	EXPECT_EQ(data_of(p, got[3])[0], 0x71);
	/* The copies landed in pool frames with the right bytes. */
	for (int k = 1; k <= 2; k++) {
		struct bt_frame_meta *m = meta_of(p, got[k]);
		const uint8_t *src = k == 1 ? bytes : bytes + 5;
		EXPECT_EQ(got[k] >> BT_REF_INDEX_BITS, slot_of(p));
		EXPECT_EQ(m->state, ST_HELD);
		EXPECT_EQ(m->len, lens[k - 1]);
		EXPECT_EQ(m->queue, 1);
		EXPECT(m->tstamp_ns != 0);
		EXPECT(memcmp(data_of(p, got[k]), src, lens[k - 1]) == 0);
	}
	EXPECT_EQ(dev_stat(d, BT_DS_TX_BYTES), 3 + 5 + 9 + 3);
	EXPECT_EQ(dev_stat(d, BT_DS_RX_BYTES), 3 + 5 + 9 + 3);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 4, NULL, 0), 4);
}

static void xmit_copy_rejects_data_longer_than_frame(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	static uint8_t bytes[256];
	uint32_t lens[2] = { 1, 256 - 64 + 1 };

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, bytes, lens, 2, 0, 0), -EINVAL);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
	lens[1] = 256 - 64; /* exactly fits */
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, bytes, lens, 2, 0, 0), 2);
	fx.copies_queued = 2;
}

static void xmit_copy_drops_what_does_not_fit(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 1, 4);
	uint8_t bytes[6] = { 1, 2, 3, 4, 5, 6 };
	uint32_t lens[6] = { 1, 1, 1, 1, 1, 1 };

	EXPECT(p > 0 && d > 0);
	/* The 2 copies that do not fit are freed at once (LSan checks). */
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, bytes, lens, 6, 0, 0), 4);
	EXPECT_EQ(dev_stat(d, BT_DS_TX_DROPPED), 2);
	fx.copies_queued = 4;
}

static void queue_read_drops_copy_when_pool_is_empty(void)
{
	int32_t p = fx_pool(4, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t all[4], got[4];
	uint8_t b = 42;
	uint32_t len = 1;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, all, 4), 4);
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, &b, &len, 1, 0, 0), 1);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 4), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_RX_DROPPED), 1);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
}

static void close_frees_queued_copies_and_returns_frames(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	uint32_t f[3];
	uint8_t bytes[3] = { 1, 2, 3 };
	uint32_t lens[3] = { 1, 1, 1 };

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, f, 3, 4, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, f, 2, 0, 0), 2);
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, bytes, lens, 3, 0, 0), 3);
	EXPECT_EQ(bt_xmit((uint32_t)d, f + 2, 1, 0, 1), 1);
	/* Close returns every entry; the copies are freed (a leak would be
	 * reported by LeakSanitizer at exit). */
	EXPECT_EQ(bt_dev_close((uint32_t)d), 6);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 8);
}

/* ================================================================== */
/* Flush and wake-up                                                   */

struct waiter {
	int32_t dev;
	uint32_t queue;
	int32_t timeout_ms;
	int32_t ret;
	uint64_t elapsed_ms;
};

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = bt_now_ns();

	w->ret = bt_queue_wait((uint32_t)w->dev, w->queue, w->timeout_ms);
	w->elapsed_ms = (bt_now_ns() - t0) / 1000000;
	return NULL;
}

/* Wait until the reader has announced that it sleeps (BT_DS_RX_SLEEPS
 * grows), so what we send next arrives after its last look at the ring. */
static int await_sleep(int32_t dev, uint64_t before)
{
	for (int i = 0; i < 5000; i++) {
		if (dev_stat(dev, BT_DS_RX_SLEEPS) > before)
			return 0;
		sleep_ms(1);
	}
	return -1;
}

static void flush_wakes_sleeping_reader(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	struct waiter w = { d, 0, 5000, -100, 0 };
	pthread_t t;
	uint32_t ref;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(pthread_create(&t, NULL, waiter_main, &w), 0);
	if (await_sleep(d, 0)) {
		bt_dev_close((uint32_t)d); /* unblocks the waiter */
		pthread_join(t, NULL);
		fail_at(__LINE__, "reader never slept");
		return;
	}
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, BT_XMIT_FLUSH, 0), 1);
	pthread_join(t, NULL);
	EXPECT_EQ(w.ret, 1);
	EXPECT(w.elapsed_ms < 2000);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_SENT), 1);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_AVOIDED), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_FLUSHES), 1);
}

/* The doorbell is a broadcast: the first reader out must not hide the
 * flush from the second (an eventfd reset by the first read did). */
static void flush_wakes_every_sleeping_reader(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	struct waiter w[2] = { { d, 0, 5000, -100, 0 }, { d, 0, 5000, -100, 0 } };
	pthread_t t[2];
	uint32_t ref;
	int slept = 0;

	EXPECT(p > 0 && d > 0);
	for (int i = 0; i < 2; i++)
		EXPECT_EQ(pthread_create(&t[i], NULL, waiter_main, &w[i]), 0);
	for (int i = 0; i < 5000 && !slept; i++) {
		slept = dev_stat(d, BT_DS_RX_SLEEPS) >= 2;
		if (!slept)
			sleep_ms(1);
	}
	if (!slept) {
		bt_dev_close((uint32_t)d);
		for (int i = 0; i < 2; i++)
			pthread_join(t[i], NULL);
		fail_at(__LINE__, "readers never slept");
		return;
	}
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, BT_XMIT_FLUSH, 0), 1);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(w[i].ret, 1);
		/* Well before the 5 s timeout: woken, not timed out. */
		EXPECT(w[i].elapsed_ms < 2500);
	}
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_SENT), 1);
}

struct cwaiter {
	struct waiter w;
	uint32_t cancel;
};

static void *cwaiter_main(void *arg)
{
	struct cwaiter *c = arg;
	uint64_t t0 = bt_now_ns();

	c->w.ret = bt_queue_wait_cancellable((uint32_t)c->w.dev, c->w.queue,
					     c->w.timeout_ms, &c->cancel);
	c->w.elapsed_ms = (bt_now_ns() - t0) / 1000000;
	return NULL;
}

static void kick_ends_a_cancelled_wait_and_no_other(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	struct cwaiter c = { { d, 1, -1, -100, 0 }, 0 };
	struct waiter w = { d, 1, 300, -100, 0 };
	pthread_t tc, tw;
	int slept = 0;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_queue_kick((uint32_t)d, 2), -EINVAL);
	EXPECT_EQ(bt_queue_kick((uint32_t)d, -2), -EINVAL);
	EXPECT_EQ(pthread_create(&tc, NULL, cwaiter_main, &c), 0);
	EXPECT_EQ(pthread_create(&tw, NULL, waiter_main, &w), 0);
	for (int i = 0; i < 5000 && !slept; i++) {
		slept = dev_stat(d, BT_DS_RX_SLEEPS) >= 2;
		if (!slept)
			sleep_ms(1);
	}
	if (!slept) {
		bt_dev_close((uint32_t)d);
		pthread_join(tc, NULL);
		pthread_join(tw, NULL);
		fail_at(__LINE__, "readers never slept");
		return;
	}
	/* A kick alone ends nothing: the cancellable wait sleeps on. */
	EXPECT_EQ(bt_queue_kick((uint32_t)d, -1), 0);
	__atomic_store_n(&c.cancel, 1, __ATOMIC_SEQ_CST);
	EXPECT_EQ(bt_queue_kick((uint32_t)d, 1), 0);
	pthread_join(tc, NULL);
	EXPECT_EQ(c.w.ret, 0);
	/* The plain wait was woken too, looked, and slept to its timeout. */
	pthread_join(tw, NULL);
	EXPECT_EQ(w.ret, 0);
	EXPECT(w.elapsed_ms >= 250);
	/* A kick is not a flush. */
	EXPECT_EQ(dev_stat(d, BT_DS_FLUSHES), 0);
	/* A wait whose word is already set returns at once. */
	EXPECT_EQ(bt_queue_wait_cancellable((uint32_t)d, 0, -1, &c.cancel), 0);
	bt_dev_close((uint32_t)d);
	EXPECT_EQ(bt_queue_kick((uint32_t)d, 0), -ENXIO);
}

static void flush_without_sleeping_reader_sends_no_wakeup(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t ref, got;
	uint64_t t0, ms;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, BT_XMIT_FLUSH, 0), 1);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_AVOIDED), 1);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_SENT), 0);
	/* Nothing was rung: once the queue is empty, a wait sleeps for its
	 * whole timeout instead of returning on a stale doorbell. */
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, &got, 1), 1);
	t0 = bt_now_ns();
	EXPECT_EQ(bt_queue_wait((uint32_t)d, 0, 60), 0);
	ms = (bt_now_ns() - t0) / 1000000;
	EXPECT(ms >= 50);
	EXPECT_EQ(bt_pool_put((uint32_t)p, &got, 1, NULL, 0), 1);
}

static void xmit_without_flush_does_not_wake_reader(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	struct waiter w = { d, 0, 300, -100, 0 };
	pthread_t t;
	uint32_t ref;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(pthread_create(&t, NULL, waiter_main, &w), 0);
	if (await_sleep(d, 0)) {
		bt_dev_close((uint32_t)d);
		pthread_join(t, NULL);
		fail_at(__LINE__, "reader never slept");
		return;
	}
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	pthread_join(t, NULL);
	/* Queued but no doorbell: the reader slept its full timeout (and
	 * then reports the frame it finds). */
	EXPECT(w.elapsed_ms >= 250);
	EXPECT_EQ(w.ret, 1);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_SENT), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_FLUSHES), 0);
}

static void flush_call_wakes_sleeping_reader(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	struct waiter w = { d, 1, 5000, -100, 0 };
	pthread_t t;
	uint32_t ref;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(pthread_create(&t, NULL, waiter_main, &w), 0);
	if (await_sleep(d, 0)) {
		bt_dev_close((uint32_t)d);
		pthread_join(t, NULL);
		fail_at(__LINE__, "reader never slept");
		return;
	}
	/* Send without the flag, then ring every queue's doorbell. */
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 1), 1);
	EXPECT_EQ(bt_flush((uint32_t)d, -1), 0);
	pthread_join(t, NULL);
	EXPECT_EQ(w.ret, 1);
	EXPECT(w.elapsed_ms < 2000);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_SENT), 1);
	EXPECT_EQ(dev_stat(d, BT_DS_WAKEUPS_AVOIDED), 1); /* queue 0 */
}

static void queue_wait_returns_at_once_when_frames_queued(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t ref;
	uint64_t t0;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	t0 = bt_now_ns();
	EXPECT_EQ(bt_queue_wait((uint32_t)d, 0, 5000), 1);
	EXPECT((bt_now_ns() - t0) / 1000000 < 1000);
	EXPECT_EQ(dev_stat(d, BT_DS_RX_SLEEPS), 0);
}

static void close_wakes_waiting_reader_with_enxio(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	struct waiter w = { d, 0, -1, -100, 0 }; /* no timeout */
	pthread_t t;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(pthread_create(&t, NULL, waiter_main, &w), 0);
	int slept = await_sleep(d, 0);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 0);
	pthread_join(t, NULL);
	EXPECT_EQ(slept, 0);
	EXPECT_EQ(w.ret, -ENXIO);
}

/* ================================================================== */
/* Close                                                               */

static void close_returns_queued_frames_and_pool_is_whole(void)
{
	int32_t p = fx_pool(32, 256, 64);
	int32_t d = fx_dev(p, 3, 8);
	uint32_t refs[20];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, 20, 16, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 5, 0, 0), 5);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs + 5, 8, 0, 1), 8);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs + 13, 7, 0, 2), 7);
	EXPECT_EQ(pool_stat(p, BT_PS_QUEUED), 20);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 20);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 32);
	EXPECT_EQ(pool_stat(p, BT_PS_QUEUED), 0);
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), 0);
}

static void close_leaves_frames_held_by_reader_with_reader(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t refs[4], got[2];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, refs, 4, 16, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, refs, 4, 0, 0), 4);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 2), 2);
	/* Only the 2 still queued come back; the reader owns the others. */
	EXPECT_EQ(bt_dev_close((uint32_t)d), 2);
	EXPECT_EQ(pool_stat(p, BT_PS_HELD), 2);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 2, NULL, 0), 2);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 8);
}

static void calls_on_closed_device_fail_with_enxio(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 2, 8);
	uint32_t ref = 0;
	uint64_t v[BT_DS_COUNT];
	uint8_t b = 0;
	uint32_t len = 1;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 0);
	EXPECT_EQ(bt_dev_close((uint32_t)d), -ENXIO);
	EXPECT_EQ(bt_xmit((uint32_t)d, NULL, 0, 0, 0), -ENXIO);
	EXPECT_EQ(bt_xmit_copy((uint32_t)d, &b, &len, 1, 0, 0), -ENXIO);
	EXPECT_EQ(bt_flush((uint32_t)d, -1), -ENXIO);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, &ref, 1), -ENXIO);
	EXPECT_EQ(bt_queue_wait((uint32_t)d, 0, 0), -ENXIO);
	EXPECT_EQ(bt_queue_unread((uint32_t)d, 0, &ref, 0), -ENXIO);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), -ENXIO);
	EXPECT_EQ(bt_queue_for_cpu((uint32_t)d, 0), -ENXIO);
	EXPECT_EQ(bt_dev_info((uint32_t)d, v, BT_DI_COUNT), -ENXIO);
	EXPECT_EQ(bt_dev_stats((uint32_t)d, v, BT_DS_COUNT), -ENXIO);
}

static void reused_device_slot_rejects_old_handle(void)
{
	int32_t p = fx_pool(8, 256, 64);
	int32_t old = bt_dev_create((uint32_t)p, 1, 8);
	uint32_t ref, got;

	EXPECT(p > 0 && old > 0);
	EXPECT_EQ(bt_dev_close((uint32_t)old), 0);
	/* Cycle until a new device lands in the old one's slot. */
	int32_t d = -1;
	for (int i = 0; i < BT_MAX_DEVS; i++) {
		d = bt_dev_create((uint32_t)p, 1, 8);
		if (d < 0 || ((uint32_t)d & (BT_MAX_DEVS - 1)) ==
				     ((uint32_t)old & (BT_MAX_DEVS - 1)))
			break;
		bt_dev_close((uint32_t)d);
	}
	EXPECT(d > 0);
	fx.devs[fx.ndevs++] = d;
	EXPECT_EQ((uint32_t)d & (BT_MAX_DEVS - 1),
		  (uint32_t)old & (BT_MAX_DEVS - 1));
	EXPECT(d != old);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	/* The old handle neither sends into, reads from, nor closes the
	 * new device. */
	EXPECT_EQ(bt_xmit((uint32_t)old, &ref, 1, 0, 0), -ENXIO);
	EXPECT_EQ(state_of(p, ref), ST_FREE);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 8, 0), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	EXPECT_EQ(bt_queue_read((uint32_t)old, 0, &got, 1), -ENXIO);
	EXPECT_EQ(bt_dev_close((uint32_t)old), -ENXIO);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 1);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, &got, 1), 1);
	EXPECT_EQ(got, ref);
	EXPECT_EQ(bt_pool_put((uint32_t)p, &got, 1, NULL, 0), 1);
}

/* ================================================================== */
/* Lock statistics and frame states                                    */

static void xmit_from_one_thread_never_contends_the_lock(void)
{
	int32_t p = fx_pool(64, 256, 64);
	int32_t d = fx_dev(p, 1, 64);
	uint32_t refs[16], got[16];

	EXPECT(p > 0 && d > 0);
	for (int i = 0; i < 100; i++) {
		EXPECT_EQ(alloc_filled(p, refs, 16, 10, 1), 0);
		EXPECT_EQ(bt_xmit((uint32_t)d, refs, 16, 0, 0), 16);
		EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 16), 16);
		EXPECT_EQ(bt_pool_put((uint32_t)p, got, 16, NULL, 0), 16);
	}
	EXPECT_EQ(dev_stat(d, BT_DS_LOCK_ACQUISITIONS), 100);
	EXPECT_EQ(dev_stat(d, BT_DS_LOCK_CONTENDED), 0);
	EXPECT_EQ(dev_stat(d, BT_DS_LOCK_PARKS), 0);
}

static void queue_read_hands_out_a_frame_queued_twice_only_once(void)
{
	/* A caller scribbles HELD over a queued frame's state and sends it
	 * again, so the frame sits in the ring twice. The reader hands it
	 * out once; the second entry is skipped and counted as corrupt. */
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = fx_dev(p, 1, 8);
	uint32_t ref, got[4];

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	meta_of(p, ref)->state = ST_HELD; /* the scribble */
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	EXPECT_EQ(bt_queue_read((uint32_t)d, 0, got, 4), 1);
	EXPECT_EQ(got[0], ref);
	EXPECT_EQ(pool_stat(p, BT_PS_CORRUPT), 1);
	EXPECT_EQ(state_of(p, ref), ST_HELD);
	EXPECT_EQ(bt_queue_count((uint32_t)d, 0), 0);
	EXPECT_EQ(bt_pool_put((uint32_t)p, got, 1, NULL, 0), 1);
}

static void close_returns_a_frame_queued_twice_to_its_pool_once(void)
{
	/* Same scribble, but the device is closed with both entries still
	 * queued: the drain frees the frame once and counts the second. */
	int32_t p = fx_pool(8, 256, 64);
	int32_t d = bt_dev_create((uint32_t)p, 1, 8);
	uint32_t ref;

	EXPECT(p > 0 && d > 0);
	EXPECT_EQ(alloc_filled(p, &ref, 1, 10, 1), 0);
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	meta_of(p, ref)->state = ST_HELD;
	EXPECT_EQ(bt_xmit((uint32_t)d, &ref, 1, 0, 0), 1);
	EXPECT_EQ(bt_dev_close((uint32_t)d), 2);
	EXPECT_EQ(pool_stat(p, BT_PS_FREE), 8);
	EXPECT_EQ(pool_stat(p, BT_PS_CORRUPT), 1);
	uint32_t all[8];
	EXPECT_EQ(bt_pool_alloc((uint32_t)p, all, 8), 8);
	EXPECT_EQ(pool_stat(p, BT_PS_CORRUPT), 1);
	EXPECT_EQ(bt_pool_put((uint32_t)p, all, 8, NULL, 0), 8);
}

/* ================================================================== */

#define T(fn) { #fn, fn }
static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	T(pool_create_rejects_headroom_below_meta_with_enospc),
	T(pool_create_rejects_frame_size_not_multiple_of_64),
	T(pool_create_rejects_too_small_frame),
	T(pool_create_rejects_zero_frames),
	T(pool_info_reports_geometry),
	T(pool_alloc_hands_out_slot_and_index_refs),
	T(pool_alloc_initialises_frame_meta),
	T(pool_alloc_beyond_free_returns_fewer_and_counts_failure),
	T(pool_put_returns_held_frames),
	T(pool_put_detects_double_return_and_stays_whole),
	T(pool_put_detects_foreign_frame_and_leaves_it_held),
	T(pool_put_counts_out_of_range_refs_as_invalid),
	T(pool_put_reports_bad_positions_up_to_bad_max),
	T(pool_calls_with_stale_handle_fail_with_enxio),
	T(pool_destroy_refuses_while_frames_out_or_device_attached),
	T(frame_check_accepts_fresh_frame),
	T(frame_check_reports_free_frame),
	T(frame_check_reports_queued_frame),
	T(frame_check_reports_length_beyond_frame),
	T(frame_check_reports_offset_inside_meta),
	T(frame_check_reports_index_beyond_pool),
	T(frame_check_reports_unknown_pool),
	T(dev_create_rejects_bad_geometry),
	T(dev_info_reports_geometry),
	T(xmit_accepts_prefix_and_drops_rest_when_ring_fills),
	T(xmit_rejects_free_frame_taking_nothing),
	T(xmit_rejects_length_beyond_frame_taking_nothing),
	T(xmit_rejects_offset_inside_meta_taking_nothing),
	T(xmit_rejects_same_frame_twice_in_one_bulk),
	T(xmit_rejects_unknown_flags_taking_nothing),
	T(xmit_rejects_more_than_max_bulk_with_e2big),
	T(xmit_on_closed_device_fails_and_returns_frames),
	T(xmit_of_zero_frames_is_a_no_op),
	T(queue_for_cpu_is_cpu_modulo_queues),
	T(xmit_lands_frames_on_cpu_modulo_queues),
	T(queue_read_returns_frames_in_order_with_lengths),
	T(queue_ready_looks_at_one_slot_and_names_bad_queues),
	T(queue_read_spin_reads_at_once_or_gives_up_after_its_spin),
	T(queue_read_rejects_queue_out_of_range),
	T(ring_consume_does_not_guarantee_next_produce),
	T(queue_unread_puts_frames_back_at_head_in_order),
	T(queue_unread_works_across_ring_wrap),
	T(queue_unread_with_pending_zero_batch_leaves_no_gap),
	T(queue_unread_drops_frames_that_no_longer_fit),
	T(queue_unread_rejects_frame_not_held_taking_nothing),
	T(xmit_copy_queues_copies_next_to_pool_frames),
	T(xmit_copy_rejects_data_longer_than_frame),
	T(xmit_copy_drops_what_does_not_fit),
	T(queue_read_drops_copy_when_pool_is_empty),
	T(close_frees_queued_copies_and_returns_frames),
	T(flush_wakes_sleeping_reader),
	T(flush_wakes_every_sleeping_reader),
	T(kick_ends_a_cancelled_wait_and_no_other),
	T(flush_without_sleeping_reader_sends_no_wakeup),
	T(xmit_without_flush_does_not_wake_reader),
	T(flush_call_wakes_sleeping_reader),
	T(queue_wait_returns_at_once_when_frames_queued),
	T(close_wakes_waiting_reader_with_enxio),
	T(close_returns_queued_frames_and_pool_is_whole),
	T(close_leaves_frames_held_by_reader_with_reader),
	T(calls_on_closed_device_fail_with_enxio),
	T(reused_device_slot_rejects_old_handle),
	T(xmit_from_one_thread_never_contends_the_lock),
	T(queue_read_hands_out_a_frame_queued_twice_only_once),
	T(close_returns_a_frame_queued_twice_to_its_pool_once),
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *only = argc > 1 ? argv[1] : NULL; /* substring filter */

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		char why[256];

		if (only && !strstr(tests[i].name, only))
			continue;
		failed_now = 0;
		memset(&fx, 0, sizeof(fx));
		tests[i].fn();
		/* The invariant holds after every test, pass or fail. */
		if (!failed_now && !accounting_ok(why, sizeof(why)))
			fail_at(0, "accounting after test: %s", why);
		fx_teardown();
		if (failed_now) {
			printf("FAIL %s: %s\n", tests[i].name, fail_msg);
			failed++;
		} else {
			printf("ok %s\n", tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
