/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the whole C API (issue 6).
 *
 * Each fuzz input is a program: a sequence of operations (pool create and
 * destroy, alloc, put, frames_put, xmit, xmit_copy, queue read / unread /
 * count / wait(0), flush, device create / close, frame_check, pool_lookup,
 * info and stats, NULL buffers, and scribbles on the caller-writable parts of
 * a held frame's headroom) with arguments decoded from the input bytes.
 *
 * Now and then an input also scribbles random bytes anywhere in the metadata
 * of any frame, free, held or queued: the state byte, the ref, the queue
 * number. The headroom is the caller's memory, so the library cannot stop
 * that; bulktap.h promises only that it then confuses the caller's own
 * accounting and never makes the library read or write outside a pool.
 * From the first such scribble on ("wild" inputs) the harness therefore
 * stops predicting exact results and accounting, and checks what is still
 * promised: documented errnos, counts within bounds, no sanitizer report,
 * and that the pools can be put right (every frame returned) and destroyed.
 *
 * The harness keeps a model of what it holds and checks after every
 * operation that:
 *   - every failure is a negative errno the API documents, and bad input
 *     fails (predicted error codes are compared, not just "negative");
 *   - for every open pool, free + held + queued == frames, and held equals
 *     the number of frames the harness believes it holds;
 *   - a device close returns exactly the entries its queues held;
 *   - at the end of the input, after closing every device and returning
 *     every held frame, every pool is whole and destroys cleanly.
 * ASan and UBSan catch out-of-bounds accesses and undefined behaviour.
 *
 * Build: test/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../c/bulktap.h"

#define MAXP 6 /* pools tracked by the model */
#define MAXD 6 /* devices tracked by the model */
#define MAXF 512 /* largest pool the harness creates */
#define ARR 300 /* largest array the harness passes (> BT_MAX_BULK) */

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_api invariant broken: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(c, ...)                    \
	do {                             \
		if (!(c))                \
			fail(__VA_ARGS__); \
	} while (0)

/* Set by a wild scribble (see the top) for the rest of the input. */
static int wild;

/* A check that relies on the model's view of frame states: only while no
 * wild scribble has made that view unknowable. */
#define MCHECK(c, ...)                           \
	do {                                     \
		if (!wild && !(c))               \
			fail(__VA_ARGS__);       \
	} while (0)

/* ---- input decoding ---------------------------------------------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	return (uint16_t)(u8(in) | (u8(in) << 8));
}

static uint32_t u32(struct in *in)
{
	return (uint32_t)u16(in) | ((uint32_t)u16(in) << 16);
}

/* 0..n-1 (n <= 256 uses one byte) */
static uint32_t pick(struct in *in, uint32_t n)
{
	return n <= 256 ? u8(in) % n : u16(in) % n;
}

/* A count: small most of the time, up to ARR (beyond BT_MAX_BULK) often. */
static uint32_t some_count(struct in *in)
{
	return u8(in) % 2 ? pick(in, ARR + 1) : pick(in, 33);
}

/* ---- the model --------------------------------------------------------- */

struct mpool {
	int open;
	uint32_t handle, slot, nframes, frame_size, headroom;
	uint8_t *base;
	uint8_t held[MAXF]; /* the harness holds frame i */
	uint32_t nheld;
};

struct mdev {
	int open;
	uint32_t handle, nqueues, ring_size;
	int pool; /* index in pools[] */
};

static struct mpool pools[MAXP];
static struct mdev devs[MAXD];
/* Handles that used to be valid: stale on purpose. */
static uint32_t stale_pools[8], stale_devs[8];
static uint32_t nstale_pools, nstale_devs;

static struct mpool *pool_by_slot(uint32_t slot)
{
	for (int i = 0; i < MAXP; i++)
		if (pools[i].open && pools[i].slot == slot)
			return &pools[i];
	return NULL;
}

/* Is ref a frame the harness holds? */
static int model_holds(uint32_t ref)
{
	struct mpool *p = pool_by_slot(ref >> BT_REF_INDEX_BITS);
	uint32_t idx = ref & BT_REF_INDEX_MASK;

	return p && idx < p->nframes && p->held[idx];
}

static void model_take(uint32_t ref)
{
	struct mpool *p = pool_by_slot(ref >> BT_REF_INDEX_BITS);
	uint32_t idx = ref & BT_REF_INDEX_MASK;

	CHECK(p && idx < p->nframes, "took ref 0x%x of no tracked pool", ref);
	MCHECK(!p->held[idx], "ref 0x%x handed out twice", ref);
	if (p->held[idx])
		return;
	p->held[idx] = 1;
	p->nheld++;
}

static void model_drop(uint32_t ref)
{
	struct mpool *p = pool_by_slot(ref >> BT_REF_INDEX_BITS);
	uint32_t idx = ref & BT_REF_INDEX_MASK;

	if (p && idx < p->nframes && p->held[idx]) {
		p->held[idx] = 0;
		p->nheld--;
	}
}

static struct bt_frame_meta *meta_of(uint32_t ref)
{
	struct mpool *p = pool_by_slot(ref >> BT_REF_INDEX_BITS);

	return (struct bt_frame_meta *)(p->base + (size_t)(ref & BT_REF_INDEX_MASK) *
							   p->frame_size);
}

/* The library's own rule for a frame's data window (bt_meta_len_ok). */
static int len_ok(uint32_t ref)
{
	struct mpool *p = pool_by_slot(ref >> BT_REF_INDEX_BITS);
	struct bt_frame_meta *m = meta_of(ref);

	return m->data_off >= sizeof(*m) &&
	       (uint64_t)m->data_off + m->len <= p->frame_size;
}

/* A held ref (or 0 if none) chosen by the input. */
static uint32_t some_held(struct in *in)
{
	int start = (int)pick(in, MAXP);

	for (int k = 0; k < MAXP; k++) {
		struct mpool *p = &pools[(start + k) % MAXP];
		if (!p->open || !p->nheld)
			continue;
		uint32_t i = pick(in, p->nframes);
		for (uint32_t j = 0; j < p->nframes; j++) {
			uint32_t idx = (i + j) % p->nframes;
			if (p->held[idx])
				return (p->slot << BT_REF_INDEX_BITS) | idx;
		}
	}
	return 0;
}

/* Up to n distinct held refs, starting at an input-chosen place; returns
 * how many it found. */
static uint32_t distinct_held(struct in *in, uint32_t *refs, uint32_t n)
{
	int start = (int)pick(in, MAXP);
	uint32_t got = 0;

	for (int k = 0; k < MAXP && got < n; k++) {
		struct mpool *p = &pools[(start + k) % MAXP];
		if (!p->open || !p->nheld)
			continue;
		uint32_t i = pick(in, p->nframes);
		for (uint32_t j = 0; j < p->nframes && got < n; j++) {
			uint32_t idx = (i + j) % p->nframes;
			if (p->held[idx])
				refs[got++] = (p->slot << BT_REF_INDEX_BITS) |
					      idx;
		}
	}
	return got;
}

/* A ref of any kind: held, free/queued (not held), foreign slot, bad index,
 * no pool, or raw random. */
static uint32_t some_ref(struct in *in)
{
	uint32_t r;
	struct mpool *p;

	switch (u8(in) % 8) {
	case 0:
	case 1:
	case 2:
		r = some_held(in);
		return r ? r : u32(in);
	case 3: /* a frame of an open pool, whatever its state */
		p = &pools[pick(in, MAXP)];
		if (!p->open)
			return u32(in);
		return (p->slot << BT_REF_INDEX_BITS) | pick(in, p->nframes);
	case 4: /* index beyond the pool */
		p = &pools[pick(in, MAXP)];
		return (p->slot << BT_REF_INDEX_BITS) |
		       (p->nframes + (u16(in) % 1000));
	case 5: /* slot 0 or an unused slot */
		return ((uint32_t)(u8(in) % 2 ? 0 : 200 + u8(in) % 56)
			<< BT_REF_INDEX_BITS) |
		       (u16(in) & BT_REF_INDEX_MASK);
	default:
		return u32(in);
	}
}

static uint32_t some_pool_handle(struct in *in, int *which)
{
	uint32_t k = u8(in) % 8;

	*which = -1;
	if (k < 6) {
		int i = (int)(k % MAXP);
		if (pools[i].open) {
			*which = i;
			return pools[i].handle;
		}
	}
	if (k == 6 && nstale_pools)
		return stale_pools[u8(in) % nstale_pools];
	return u32(in);
}

static uint32_t some_dev_handle(struct in *in, int *which)
{
	uint32_t k = u8(in) % 8;

	*which = -1;
	if (k < 6) {
		int i = (int)(k % MAXD);
		if (devs[i].open) {
			*which = i;
			return devs[i].handle;
		}
	}
	if (k == 6 && nstale_devs)
		return stale_devs[u8(in) % nstale_devs];
	return u32(in);
}

/* Is this handle one of the open ones (a random u32 may collide)? */
static int pool_handle_open(uint32_t h)
{
	for (int i = 0; i < MAXP; i++)
		if (pools[i].open && pools[i].handle == h)
			return i;
	return -1;
}

static int dev_handle_open(uint32_t h)
{
	for (int i = 0; i < MAXD; i++)
		if (devs[i].open && devs[i].handle == h)
			return i;
	return -1;
}

/* Every error the API may return. */
static void check_errno(int32_t r, const char *what)
{
	if (r >= 0)
		return;
	switch (-r) {
	case EINVAL:
	case ENXIO:
	case E2BIG:
	case EFAULT:
	case EBUSY:
	case ENOSPC:
	case EMFILE:
	case ENOMEM:
		return;
	default:
		fail("%s returned %d, not a documented negative errno", what, r);
	}
}

static void expect(int32_t got, int32_t want, const char *what)
{
	check_errno(got, what);
	MCHECK(got == want, "%s returned %d, expected %d", what, got, want);
}

/* ---- invariants after every operation ---------------------------------- */

static void check_pools(const char *after)
{
	uint64_t s[BT_PS_COUNT];

	for (int i = 0; i < MAXP; i++) {
		struct mpool *p = &pools[i];
		if (!p->open)
			continue;
		int32_t r = bt_pool_stats(p->handle, s, BT_PS_COUNT);
		CHECK(r == BT_PS_COUNT, "after %s: pool_stats %d", after, r);
		CHECK(s[BT_PS_FRAMES] == p->nframes, "after %s: frames", after);
		/* Whatever was scribbled: the free stack never outgrows the
		 * pool, and the state walk counts each frame once. */
		CHECK(s[BT_PS_FREE] <= p->nframes &&
			      s[BT_PS_HELD] + s[BT_PS_QUEUED] <= p->nframes,
		      "after %s: pool %d free %lu held %lu queued %lu of %u",
		      after, i, (unsigned long)s[BT_PS_FREE],
		      (unsigned long)s[BT_PS_HELD],
		      (unsigned long)s[BT_PS_QUEUED], p->nframes);
		MCHECK(s[BT_PS_FREE] + s[BT_PS_HELD] + s[BT_PS_QUEUED] ==
			      s[BT_PS_FRAMES],
		      "after %s: pool %d free %lu + held %lu + queued %lu != %lu",
		      after, i, (unsigned long)s[BT_PS_FREE],
		      (unsigned long)s[BT_PS_HELD],
		      (unsigned long)s[BT_PS_QUEUED],
		      (unsigned long)s[BT_PS_FRAMES]);
		MCHECK(s[BT_PS_HELD] == p->nheld,
		      "after %s: pool %d says %lu held, harness holds %u", after,
		      i, (unsigned long)s[BT_PS_HELD], p->nheld);
	}
}

static int64_t dev_queued(struct mdev *d)
{
	int64_t total = 0;

	for (uint32_t q = 0; q < d->nqueues; q++) {
		int32_t c = bt_queue_count(d->handle, q);
		CHECK(c >= 0 && (uint32_t)c <= d->ring_size, "queue_count %d", c);
		total += c;
	}
	return total;
}

/* ---- operations -------------------------------------------------------- */

static void op_pool_create(struct in *in)
{
	static const uint32_t sizes[] = { 128, 192, 256, 2048, 65536, 64,
					  100, 65600, 0 };
	uint32_t nframes, fsize, headroom;
	int slot = -1;

	switch (u8(in) % 6) {
	case 0:
		nframes = 0;
		break;
	case 1:
		nframes = (u8(in) % 2) ? BT_REF_INDEX_MASK + 2u : 0xffffffffu;
		break;
	default:
		nframes = 1 + pick(in, MAXF);
	}
	fsize = sizes[u8(in) % (sizeof(sizes) / sizeof(sizes[0]))];
	if (fsize == 0)
		fsize = u32(in);
	switch (u8(in) % 4) {
	case 0:
		headroom = u8(in) % 40; /* often below the metadata */
		break;
	case 1:
		headroom = u32(in);
		break;
	default:
		headroom = 32 + (u16(in) % 256);
	}
	int valid = headroom >= sizeof(struct bt_frame_meta) && nframes &&
		    nframes <= BT_REF_INDEX_MASK + 1u && fsize >= 128 &&
		    fsize <= BT_MAX_FRAME_SIZE && fsize % 64 == 0 &&
		    headroom <= 65535 && headroom + 64 <= fsize;
	for (int i = 0; i < MAXP; i++)
		if (!pools[i].open) {
			slot = i;
			break;
		}
	if (valid && slot < 0)
		return; /* the model is full: do not leak a pool */
	int32_t h = bt_pool_create(nframes, fsize, headroom);
	check_errno(h, "pool_create");
	if (!valid) {
		CHECK(h < 0, "pool_create(%u, %u, %u) accepted bad geometry",
		      nframes, fsize, headroom);
		if (headroom < sizeof(struct bt_frame_meta))
			CHECK(h == -ENOSPC, "small headroom: %d", h);
		return;
	}
	CHECK(h > 0, "pool_create(%u, %u, %u) = %d", nframes, fsize, headroom,
	      h);
	struct mpool *p = &pools[slot];
	memset(p, 0, sizeof(*p));
	p->open = 1;
	p->handle = (uint32_t)h;
	p->slot = (uint32_t)h & 0xff;
	p->nframes = nframes;
	p->frame_size = fsize;
	p->headroom = headroom;
	p->base = bt_pool_base(p->handle);
	CHECK(p->base != NULL, "pool_base of a new pool");
	CHECK(bt_pool_lookup(p->slot) == h, "lookup of a new pool");
}

static void op_pool_destroy(struct in *in)
{
	int i;
	uint32_t h = some_pool_handle(in, &i);
	int32_t r;

	if (i < 0)
		i = pool_handle_open(h);
	uint64_t s[BT_PS_COUNT] = { 0 };

	if (i >= 0)
		bt_pool_stats(h, s, BT_PS_COUNT);
	r = bt_pool_destroy(h);
	check_errno(r, "pool_destroy");
	if (i < 0) {
		expect(r, -ENXIO, "pool_destroy(stale)");
		return;
	}
	struct mpool *p = &pools[i];
	/* Held frames, a device whose home it is, or frames queued in any
	 * device keep it busy. */
	int busy = p->nheld != 0 || s[BT_PS_QUEUED] != 0;
	for (int d = 0; d < MAXD; d++)
		if (devs[d].open && devs[d].pool == i)
			busy = 1;
	if (busy) {
		expect(r, -EBUSY, "pool_destroy(busy)");
		if (r != 0)
			return;
	} else {
		expect(r, 0, "pool_destroy(idle)");
		if (r != 0)
			return; /* wild: a frame the model thought free is not */
	}
	p->open = 0;
	stale_pools[nstale_pools++ % 8] = h;
	if (nstale_pools > 8)
		nstale_pools = 8;
	CHECK(bt_pool_base(h) == NULL, "pool_base of a destroyed pool");
}

static void op_alloc(struct in *in)
{
	uint32_t refs[ARR];
	int i;
	uint32_t h = some_pool_handle(in, &i);
	uint32_t n = some_count(in);
	uint64_t s[BT_PS_COUNT];
	int32_t r;

	if (i < 0)
		i = pool_handle_open(h);
	if (i >= 0)
		bt_pool_stats(h, s, BT_PS_COUNT);
	r = bt_pool_alloc(h, refs, n);
	check_errno(r, "pool_alloc");
	if (i < 0) {
		expect(r, -ENXIO, "pool_alloc(stale)");
		return;
	}
	expect(r, (int32_t)(n < s[BT_PS_FREE] ? n : s[BT_PS_FREE]),
	       "pool_alloc");
	for (int32_t k = 0; k < r; k++) {
		CHECK(refs[k] >> BT_REF_INDEX_BITS == pools[i].slot,
		      "alloc gave ref 0x%x of another pool", refs[k]);
		CHECK(bt_frame_check(refs[k]) == BT_FRAME_OK,
		      "fresh frame 0x%x not OK", refs[k]);
		model_take(refs[k]);
	}
}

/* An array of refs of every kind; returns how many distinct held refs of
 * pool slot `only` (or of any pool if only == 0) it contains. */
static uint32_t mixed_refs(struct in *in, uint32_t *refs, uint32_t n,
			   uint32_t only)
{
	uint32_t held = 0;

	for (uint32_t k = 0; k < n; k++) {
		refs[k] = some_ref(in);
		if (model_holds(refs[k]) &&
		    (!only || refs[k] >> BT_REF_INDEX_BITS == only)) {
			int dup = 0;
			for (uint32_t j = 0; j < k; j++)
				dup |= refs[j] == refs[k];
			held += !dup;
		}
	}
	return held;
}

static void op_put(struct in *in)
{
	uint32_t refs[ARR], bad[ARR];
	int i;
	uint32_t h = some_pool_handle(in, &i);
	uint32_t n = some_count(in);
	uint32_t bad_max = pick(in, ARR + 1);
	int32_t r;

	if (i < 0)
		i = pool_handle_open(h);
	uint32_t want = mixed_refs(in, refs, n, i >= 0 ? pools[i].slot : 0);
	r = bt_pool_put(h, refs, n, bad, bad_max);
	check_errno(r, "pool_put");
	if (i < 0) {
		expect(r, -ENXIO, "pool_put(stale)");
		return;
	}
	expect(r, (int32_t)want, "pool_put");
	for (uint32_t k = 0; k < n && k < bad_max && k < n - want; k++)
		CHECK(bad[k] < n, "bad[%u] = %u out of range", k, bad[k]);
	for (uint32_t k = 0; k < n; k++)
		if (refs[k] >> BT_REF_INDEX_BITS == pools[i].slot)
			model_drop(refs[k]);
}

static void op_frames_put(struct in *in)
{
	uint32_t refs[ARR], bad[ARR];
	uint32_t n = some_count(in);
	uint32_t bad_max = pick(in, ARR + 1);
	uint32_t want = mixed_refs(in, refs, n, 0);
	int32_t r = bt_frames_put(refs, n, bad, bad_max);

	expect(r, (int32_t)want, "frames_put");
	for (uint32_t k = 0; k < n - want && k < bad_max; k++)
		CHECK(bad[k] < n, "frames_put bad[%u] = %u", k, bad[k]);
	for (uint32_t k = 0; k < n; k++)
		model_drop(refs[k]);
}

static uint32_t some_flags(struct in *in)
{
	switch (u8(in) % 4) {
	case 0:
		return 0;
	case 1:
		return BT_XMIT_FLUSH;
	case 2:
		return 1u << (u8(in) % 32);
	default:
		return u32(in);
	}
}

static int32_t some_cpu(struct in *in)
{
	switch (u8(in) % 4) {
	case 0:
		return BT_CPU_SELF;
	case 1:
		return (int32_t)u32(in);
	default:
		return (int32_t)(u8(in) % 8);
	}
}

/* Are refs[0..n) all held, distinct and of valid length? */
static int all_sendable(const uint32_t *refs, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		if (!model_holds(refs[k]) || !len_ok(refs[k]))
			return 0;
		for (uint32_t j = 0; j < k; j++)
			if (refs[j] == refs[k])
				return 0;
	}
	return 1;
}

static void op_xmit(struct in *in)
{
	uint32_t refs[ARR];
	int i;
	uint32_t h = some_dev_handle(in, &i);
	uint32_t n = some_count(in);
	uint32_t flags = some_flags(in);
	int32_t cpu = some_cpu(in);
	uint32_t mode = u8(in) % 4;
	int32_t r, qi = -1, before = 0;

	if (i < 0)
		i = dev_handle_open(h);
	if (mode < 2) {
		/* Distinct held frames: the path that sends. */
		n = distinct_held(in, refs, n);
	} else {
		for (uint32_t k = 0; k < n; k++)
			refs[k] = mode == 2 && u8(in) % 16 ? some_held(in) :
							     some_ref(in);
	}
	if (i >= 0) {
		qi = bt_queue_for_cpu(h, cpu);
		CHECK(qi >= 0 && (uint32_t)qi < devs[i].nqueues,
		      "queue_for_cpu(%d) = %d", cpu, qi);
		before = bt_queue_count(h, (uint32_t)qi);
	}
	int sendable = all_sendable(refs, n);
	r = bt_xmit(h, refs, n, flags, cpu);
	check_errno(r, "xmit");
	if (flags & ~BT_XMIT_FLAGS_MASK) {
		expect(r, -EINVAL, "xmit(unknown flags)");
		return;
	}
	if (n > BT_MAX_BULK) {
		expect(r, -E2BIG, "xmit(> 256)");
		return;
	}
	if (i < 0) {
		/* Closed device: every held frame goes home. */
		expect(r, -ENXIO, "xmit(stale)");
		for (uint32_t k = 0; k < n; k++)
			model_drop(refs[k]);
		return;
	}
	if (!sendable) {
		expect(r, -EINVAL, "xmit(bad frame)");
		return;
	}
	/* After a wild scribble a frame the model holds may read as FREE or
	 * QUEUED to the library: refusing the bulk (taking nothing) is then
	 * right, and what the model believes is moot. */
	if (wild && r == -EINVAL)
		return;
	CHECK(r >= 0 && (uint32_t)r <= n, "xmit accepted %d of %u", r, n);
	CHECK(bt_queue_count(h, (uint32_t)qi) == before + r,
	      "queue %d grew by %d, xmit said %d",
	      qi, bt_queue_count(h, (uint32_t)qi) - before, r);
	/* Accepted frames left the caller; with BT_XMIT_KEEP the rest are
	 * still held (and must be), else they went home. */
	for (uint32_t k = 0; k < n; k++)
		if (k < (uint32_t)r || !(flags & BT_XMIT_KEEP))
			model_drop(refs[k]);
}

static void op_xmit_copy(struct in *in)
{
	uint32_t lens[ARR];
	int i;
	uint32_t h = some_dev_handle(in, &i);
	uint32_t n = some_count(in);
	uint32_t flags = some_flags(in);
	int32_t cpu = some_cpu(in);
	uint64_t total = 0;
	int32_t r;

	if (i < 0)
		i = dev_handle_open(h);
	uint32_t long_ones = u8(in) % 4 == 0; /* some too long for a frame */
	for (uint32_t k = 0; k < n; k++) {
		switch (u8(in) % 8) {
		case 0:
			lens[k] = long_ones ? u32(in) % 70000 : u16(in) % 2048;
			break;
		case 1:
			lens[k] = 0;
			break;
		default:
			lens[k] = u8(in);
		}
		total += lens[k];
	}
	uint8_t *data = malloc(total ? total : 1);
	CHECK(data != NULL, "malloc");
	memset(data, 0xa5, total);
	int fits = 1;
	if (i >= 0) {
		struct mpool *p = &pools[devs[i].pool];
		for (uint32_t k = 0; k < n; k++)
			fits &= lens[k] <= p->frame_size - p->headroom;
	}
	r = bt_xmit_copy(h, data, lens, n, flags, cpu);
	free(data);
	check_errno(r, "xmit_copy");
	if (flags & ~BT_XMIT_FLUSH)
		expect(r, -EINVAL, "xmit_copy(unknown flags)");
	else if (n > BT_MAX_BULK)
		expect(r, -E2BIG, "xmit_copy(> 256)");
	else if (i < 0)
		expect(r, -ENXIO, "xmit_copy(stale)");
	else if (!fits)
		expect(r, -EINVAL, "xmit_copy(too long)");
	else
		CHECK(r >= 0 && (uint32_t)r <= n, "xmit_copy %d of %u", r, n);
}

static uint32_t some_queue(struct in *in, int dev)
{
	if (dev >= 0 && u8(in) % 8)
		return pick(in, devs[dev].nqueues);
	return u8(in) % 2 ? u32(in) : 256 + u8(in);
}

static void op_read(struct in *in)
{
	uint32_t refs[ARR];
	int i;
	uint32_t h = some_dev_handle(in, &i);
	uint32_t max = some_count(in);
	int32_t r;

	if (i < 0)
		i = dev_handle_open(h);
	uint32_t q = some_queue(in, i);
	r = bt_queue_read(h, q, refs, max);
	check_errno(r, "queue_read");
	if (i < 0) {
		expect(r, -ENXIO, "queue_read(stale)");
		return;
	}
	if (q >= devs[i].nqueues) {
		expect(r, -EINVAL, "queue_read(no such queue)");
		return;
	}
	CHECK(r >= 0 && (uint32_t)r <= max, "queue_read %d of %u", r, max);
	for (int32_t k = 0; k < r; k++) {
		MCHECK(!model_holds(refs[k]), "read a frame already held");
		MCHECK(bt_frame_check(refs[k]) == BT_FRAME_OK,
		      "read frame 0x%x is not OK (%d)", refs[k],
		      bt_frame_check(refs[k]));
		CHECK(meta_of(refs[k])->queue == q, "frame's queue field");
		model_take(refs[k]);
	}
}

static void op_unread(struct in *in)
{
	uint32_t refs[ARR];
	int i;
	uint32_t h = some_dev_handle(in, &i);
	uint32_t n = some_count(in);
	int32_t r;

	if (i < 0)
		i = dev_handle_open(h);
	uint32_t q = some_queue(in, i);
	if (u8(in) % 2) {
		n = distinct_held(in, refs, n);
	} else {
		for (uint32_t k = 0; k < n; k++)
			refs[k] = u8(in) % 16 ? some_held(in) : some_ref(in);
	}
	int ok = all_sendable(refs, n);
	r = bt_queue_unread(h, q, refs, n);
	check_errno(r, "queue_unread");
	if (n > BT_MAX_BULK) {
		expect(r, -E2BIG, "unread(> 256)");
		return;
	}
	if (i < 0) {
		expect(r, -ENXIO, "unread(stale)");
		return;
	}
	if (q >= devs[i].nqueues) {
		expect(r, -EINVAL, "unread(no such queue)");
		return;
	}
	if (!ok) {
		expect(r, -EINVAL, "unread(bad frame)");
		return;
	}
	if (wild && r == -EINVAL)
		return; /* see op_xmit */
	CHECK(r >= 0 && (uint32_t)r <= n, "unread %d of %u", r, n);
	for (uint32_t k = 0; k < n; k++)
		model_drop(refs[k]);
}

static void op_count_wait_flush(struct in *in)
{
	int i;
	uint32_t h = some_dev_handle(in, &i);
	int32_t r;

	if (i < 0)
		i = dev_handle_open(h);
	switch (u8(in) % 3) {
	case 0: {
		uint32_t q = some_queue(in, i);
		r = bt_queue_count(h, q);
		check_errno(r, "queue_count");
		if (i < 0)
			expect(r, -ENXIO, "queue_count(stale)");
		else if (q >= devs[i].nqueues)
			expect(r, -EINVAL, "queue_count(no such queue)");
		break;
	}
	case 1: {
		uint32_t q = some_queue(in, i);
		r = bt_queue_wait(h, q, 0);
		check_errno(r, "queue_wait");
		if (i < 0) {
			expect(r, -ENXIO, "queue_wait(stale)");
		} else if (q >= devs[i].nqueues) {
			expect(r, -EINVAL, "queue_wait(no such queue)");
		} else {
			/* wait looks at the head slot, count at all slots:
			 * they disagree only if the ring has a hole. */
			int32_t c = bt_queue_count(h, q);
			expect(r, c > 0, "queue_wait(0) vs queue_count");
		}
		break;
	}
	default: {
		int32_t q = u8(in) % 4 ? (int32_t)(u8(in) % 10) - 2 :
					 (int32_t)u32(in);
		r = bt_flush(h, q);
		check_errno(r, "flush");
		if (i < 0)
			expect(r, -ENXIO, "flush(stale)");
		else if (q < -1 || q >= (int32_t)devs[i].nqueues)
			expect(r, -EINVAL, "flush(no such queue)");
		else
			expect(r, 0, "flush");
	}
	}
}

static void op_dev_create(struct in *in)
{
	int pi, slot = -1;
	uint32_t ph = some_pool_handle(in, &pi);
	uint32_t nq = u8(in) % 8 ? 1 + u8(in) % 4 : u32(in) % 300;
	uint32_t rs = u8(in) % 8 ? 2 + u16(in) % 300 : u32(in);

	if (pi < 0)
		pi = pool_handle_open(ph);
	int valid = nq >= 1 && nq <= BT_MAX_QUEUES && rs >= 2 &&
		    rs <= BT_MAX_RING;
	for (int k = 0; k < MAXD; k++)
		if (!devs[k].open) {
			slot = k;
			break;
		}
	if (slot < 0 || (uint64_t)nq * rs > 1u << 20)
		return; /* model full, or too much memory for a fuzz step */
	int32_t h = bt_dev_create(ph, nq, rs);
	check_errno(h, "dev_create");
	if (!valid) {
		expect(h, -EINVAL, "dev_create(bad geometry)");
		return;
	}
	if (pi < 0) {
		expect(h, -ENXIO, "dev_create(stale pool)");
		return;
	}
	CHECK(h > 0, "dev_create = %d", h);
	devs[slot] = (struct mdev){ .open = 1,
				    .handle = (uint32_t)h,
				    .nqueues = nq,
				    .ring_size = rs,
				    .pool = pi };
	uint64_t info[BT_DI_COUNT];
	expect(bt_dev_info((uint32_t)h, info, BT_DI_COUNT), BT_DI_COUNT,
	       "dev_info");
	CHECK(info[BT_DI_QUEUES] == nq && info[BT_DI_RING_SIZE] == rs &&
		      info[BT_DI_POOL] == ph,
	      "dev_info fields");
}

static void dev_close_model(int i)
{
	struct mdev *d = &devs[i];
	int64_t queued = dev_queued(d);
	int32_t r = bt_dev_close(d->handle);

	/* Exact even after wild scribbles: close counts ring entries, and
	 * the states in the frames' headroom do not change what a ring holds. */
	check_errno(r, "dev_close");
	CHECK(r == (int32_t)queued, "dev_close returned %d, its queues held %ld",
	      r, (long)queued);
	d->open = 0;
	stale_devs[nstale_devs++ % 8] = d->handle;
	if (nstale_devs > 8)
		nstale_devs = 8;
}

static void op_dev_close(struct in *in)
{
	int i;
	uint32_t h = some_dev_handle(in, &i);

	if (i < 0)
		i = dev_handle_open(h);
	if (i >= 0) {
		dev_close_model(i);
		expect(bt_dev_close(h), -ENXIO, "dev_close twice");
	} else {
		expect(bt_dev_close(h), -ENXIO, "dev_close(stale)");
	}
}

static void op_checks(struct in *in)
{
	uint64_t out[16];
	uint32_t n = u8(in) % 17;
	int i;

	switch (u8(in) % 6) {
	case 0: {
		uint32_t ref = some_ref(in);
		int32_t r = bt_frame_check(ref);
		CHECK(r >= BT_FRAME_OK && r <= BT_FRAME_BAD_OFFSET,
		      "frame_check = %d", r);
		if (r == BT_FRAME_OK)
			MCHECK(model_holds(ref),
			      "frame_check says 0x%x is held; harness does not "
			      "hold it",
			      ref);
		if (model_holds(ref))
			MCHECK(r == BT_FRAME_OK || r == BT_FRAME_BAD_LENGTH ||
				      r == BT_FRAME_BAD_OFFSET,
			      "held frame 0x%x checks as %d", ref, r);
		break;
	}
	case 1: {
		uint32_t slot = u8(in) % 2 ? u32(in) : u8(in);
		int32_t r = bt_pool_lookup(slot);
		struct mpool *p = slot && slot <= 255 ? pool_by_slot(slot) :
							NULL;
		check_errno(r, "pool_lookup");
		if (slot == 0 || slot > BT_MAX_POOLS)
			expect(r, -EINVAL, "pool_lookup(bad slot)");
		else if (p)
			expect(r, (int32_t)p->handle, "pool_lookup");
		else
			expect(r, -ENXIO, "pool_lookup(unused slot)");
		break;
	}
	case 2: {
		uint32_t h = some_pool_handle(in, &i);
		int32_t r = u8(in) % 2 ? bt_pool_info(h, out, n) :
					 bt_pool_stats(h, out, n);
		check_errno(r, "pool_info/stats");
		if (i < 0 && pool_handle_open(h) < 0)
			expect(r, -ENXIO, "pool_info(stale)");
		break;
	}
	case 3: {
		uint32_t h = some_dev_handle(in, &i);
		int32_t r = u8(in) % 2 ? bt_dev_info(h, out, n) :
					 bt_dev_stats(h, out, n);
		check_errno(r, "dev_info/stats");
		if (i < 0 && dev_handle_open(h) < 0)
			expect(r, -ENXIO, "dev_info(stale)");
		break;
	}
	case 4: { /* NULL buffers with n > 0 */
		uint32_t nn = 1 + u8(in);
		int pi, di;
		uint32_t ph = some_pool_handle(in, &pi);
		uint32_t dh = some_dev_handle(in, &di);
		int32_t r;
		if (pi < 0)
			pi = pool_handle_open(ph);
		if (di < 0)
			di = dev_handle_open(dh);
		r = bt_pool_alloc(ph, NULL, nn);
		expect(r, pi < 0 ? -ENXIO : -EFAULT, "alloc(NULL)");
		r = bt_pool_put(ph, NULL, nn, NULL, 4);
		expect(r, pi < 0 ? -ENXIO : -EFAULT, "put(NULL)");
		r = bt_pool_info(ph, NULL, nn);
		expect(r, pi < 0 ? -ENXIO : -EFAULT, "pool_info(NULL)");
		r = bt_pool_stats(ph, NULL, nn);
		expect(r, pi < 0 ? -ENXIO : -EFAULT, "pool_stats(NULL)");
		expect(bt_frames_put(NULL, nn, NULL, 0), -EFAULT,
		       "frames_put(NULL)");
		r = bt_xmit(dh, NULL, nn % 257, 0, 0);
		expect(r, -EFAULT, "xmit(NULL)");
		r = bt_xmit_copy(dh, NULL, NULL, nn % 257, 0, 0);
		expect(r, -EFAULT, "xmit_copy(NULL)");
		r = bt_queue_read(dh, 0, NULL, nn);
		expect(r, -EFAULT, "queue_read(NULL)");
		r = bt_queue_unread(dh, 0, NULL, nn % 257);
		expect(r, -EFAULT, "unread(NULL)");
		r = bt_dev_info(dh, NULL, nn);
		expect(r, di < 0 ? -ENXIO : -EFAULT, "dev_info(NULL)");
		r = bt_dev_stats(dh, NULL, nn);
		expect(r, -EFAULT, "dev_stats(NULL)");
		break;
	}
	default: {
		uint32_t h = some_dev_handle(in, &i);
		int32_t cpu = some_cpu(in);
		int32_t r = bt_queue_for_cpu(h, cpu);
		if (i < 0)
			i = dev_handle_open(h);
		if (i < 0)
			expect(r, -ENXIO, "queue_for_cpu(stale)");
		else
			CHECK(r >= 0 && (uint32_t)r < devs[i].nqueues,
			      "queue_for_cpu = %d", r);
	}
	}
}

/* Random bytes anywhere in the metadata of frames of any state (see the
 * top); half of the time aimed at the state byte, with a state value or
 * one the library never uses. */
static void op_wild_scribble(struct in *in)
{
	struct mpool *p = &pools[pick(in, MAXP)];

	if (!p->open)
		return;
	for (uint32_t k = 1 + u8(in) % 4; k; k--) {
		uint8_t *meta = p->base + (size_t)pick(in, p->nframes) *
						  p->frame_size;
		if (u8(in) % 2)
			meta[offsetof(struct bt_frame_meta, state)] =
				u8(in) % 5;
		else
			meta[u8(in) % sizeof(struct bt_frame_meta)] = u8(in);
	}
	wild = 1;
}

/* Write where a caller may write: len, data_off, mark, tstamp, vnet_len,
 * and (scribbling) ref and magic. The library must re-validate. */
static void op_scribble(struct in *in)
{
	uint32_t ref = some_held(in);

	if (!ref)
		return;
	struct bt_frame_meta *m = meta_of(ref);
	switch (u8(in) % 9) {
	case 0:
		m->len = u32(in);
		break;
	case 1:
		m->len = u16(in) % 300;
		break;
	case 2:
		m->data_off = u16(in);
		break;
	case 3:
		m->data_off = (uint16_t)(u8(in) % 64);
		break;
	case 4:
		m->ref = u32(in);
		break;
	case 5:
		m->magic = u32(in);
		break;
	case 6:
		m->vnet_len = u16(in);
		m->mark = u32(in);
		break;
	case 7:
		m->tstamp_ns = (uint64_t)u32(in) << 32 | u32(in);
		break;
	default:
		op_wild_scribble(in);
	}
}

/* ---- the driver -------------------------------------------------------- */

static void reset(void)
{
	/* Close every device (their queued frames return), return every held
	 * frame, and the pools must then be whole and destroy cleanly. */
	for (int i = 0; i < MAXD; i++)
		if (devs[i].open)
			dev_close_model(i);
	check_pools("closing every device");
	for (int i = 0; i < MAXP; i++) {
		struct mpool *p = &pools[i];
		if (!p->open)
			continue;
		if (wild) {
			/* Put the pool right the way its owner would have
			 * to: claim every frame back and return it. The free
			 * stack refuses to grow past the pool, so it ends
			 * whole whatever it held, and the pool destroys. */
			for (uint32_t k = 0; k < p->nframes; k++) {
				uint32_t ref = (p->slot << BT_REF_INDEX_BITS) | k;
				((struct bt_frame_meta *)(p->base +
							  (size_t)k *
								  p->frame_size))
					->state = 1; /* held */
				CHECK(bt_pool_put(p->handle, &ref, 1, NULL, 0) ==
					      1,
				      "returning frame %u of a repaired pool", k);
			}
			memset(p->held, 0, sizeof(p->held));
			p->nheld = 0;
			CHECK(bt_pool_destroy(p->handle) == 0,
			      "a repaired pool %d did not destroy", i);
			p->open = 0;
			continue;
		}
		for (uint32_t k = 0; k < p->nframes; k++) {
			if (!p->held[k])
				continue;
			uint32_t ref = (p->slot << BT_REF_INDEX_BITS) | k;
			expect(bt_pool_put(p->handle, &ref, 1, NULL, 0), 1,
			       "returning a held frame");
			p->held[k] = 0;
		}
		p->nheld = 0;
		uint64_t s[BT_PS_COUNT];
		bt_pool_stats(p->handle, s, BT_PS_COUNT);
		CHECK(s[BT_PS_FREE] == p->nframes,
		      "pool %d not whole at the end: %lu of %u free", i,
		      (unsigned long)s[BT_PS_FREE], p->nframes);
		expect(bt_pool_destroy(p->handle), 0, "destroying a whole pool");
		p->open = 0;
	}
	nstale_pools = nstale_devs = 0;
	wild = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	static const char *names[] = {
		"pool_create", "pool_destroy", "alloc",	 "put",
		"frames_put",  "xmit",	       "xmit_copy", "read",
		"unread",      "count/wait/flush", "dev_create", "dev_close",
		"checks",      "scribble",
	};
	static int trace = -1;
	int ops = 0;

	if (trace < 0)
		trace = getenv("FUZZ_API_TRACE") != NULL;
	while (in.n && ops++ < 200) {
		uint8_t op = u8(&in) % 16;
		if (trace)
			fprintf(stderr, "op %d: %s\n", ops,
				names[op == 14 ? 2 : op == 15 ? 5 : op]);
		switch (op) {
		case 0:
			op_pool_create(&in);
			break;
		case 1:
			op_pool_destroy(&in);
			break;
		case 2:
		case 14:
			op_alloc(&in);
			op = 2;
			break;
		case 3:
			op_put(&in);
			break;
		case 4:
			op_frames_put(&in);
			break;
		case 5:
		case 15:
			op_xmit(&in);
			op = 5;
			break;
		case 6:
			op_xmit_copy(&in);
			break;
		case 7:
			op_read(&in);
			break;
		case 8:
			op_unread(&in);
			break;
		case 9:
			op_count_wait_flush(&in);
			break;
		case 10:
			op_dev_create(&in);
			break;
		case 11:
			op_dev_close(&in);
			break;
		case 12:
			op_checks(&in);
			break;
		default:
			op_scribble(&in);
		}
		check_pools(names[op]);
	}
	reset();
	return 0;
}
