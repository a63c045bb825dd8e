/* SPDX-License-Identifier: MIT */
/*
 * Frame pools: one mmap'd region of fixed-size frames and a stack of free
 * frame indexes. Allocation and return take the pool lock once per bulk;
 * there is no malloc and no reference count per frame. Each frame's state
 * (free, held, queued) lives in its own headroom, so checking it touches the
 * cache line the caller is about to use anyway and no line is shared
 * between frames.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bt_internal.h"

_Static_assert(BT_FRAME_ALIGN % BT_CACHE_LINE == 0,
	       "no two frames share a cache line");

struct bt_pool *_Atomic bt_pools[BT_MAX_POOLS + 1];
pthread_mutex_t bt_table_lock = PTHREAD_MUTEX_INITIALIZER;

/* bt_pool_handles(): the open handle per slot, 0 when closed. Written only
 * under bt_table_lock; read without a lock by callers that compare it with
 * the handle they hold (a word written whole, so a reader sees the old or
 * the new handle, never a mix). */
static _Atomic uint32_t pool_handles[BT_MAX_POOLS + 1];

const uint32_t *bt_pool_handles(void)
{
	return (const uint32_t *)pool_handles;
}

#define POOL_GEN_SHIFT 8
#define POOL_GEN_MASK ((1u << 23) - 1)

struct bt_pool *bt_pool_get(uint32_t handle)
{
	uint32_t slot = handle & 0xff;
	struct bt_pool *p;

	if (slot == 0 || slot > BT_MAX_POOLS)
		return NULL;
	p = bt_pools[slot];
	if (!p || !atomic_load_explicit(&p->open, memory_order_acquire) ||
	    atomic_load_explicit(&p->gen, memory_order_relaxed) !=
		    (handle >> POOL_GEN_SHIFT))
		return NULL;
	return p;
}

/* Everything but the state, which the caller sets or moves itself. */
static void meta_init(struct bt_pool *p, uint32_t idx)
{
	struct bt_frame_meta *m = bt_frame_at(p, idx);

	m->magic = BT_FRAME_MAGIC;
	m->ref = (p->slot << BT_REF_INDEX_BITS) | idx;
	m->data_off = p->headroom;
	m->len = 0;
	m->tstamp_ns = 0;
	m->mark = 0;
	m->queue = 0;
	m->reserved = 0;
	bt_meta_clear_offload(m);
}

/* A free stack and the smaller one it replaced in the same slot. */
struct stack_block {
	struct stack_block *older;
	uint32_t idx[];
};

/* Make p's memory fit nframes x frame_size, reusing what the slot had.
 * Old regions are kept mapped (see bt_internal.h); only their pages go. */
static int pool_memory(struct bt_pool *p, uint32_t nframes,
		       uint32_t frame_size)
{
	size_t bytes = (size_t)nframes * frame_size;
	size_t page = 4096;

	bytes = (bytes + page - 1) & ~(page - 1);
	if (bytes > p->region_cap) {
		/* Creation writes every frame's metadata: when frames are at
		 * most a page, that is every page, and populating them in one
		 * go is far cheaper than a fault each (measured: 1M frames of
		 * 2 KiB, 15 s of faults on a 2-core VM). Bigger frames touch
		 * one page in several: let those fault. */
		int populate = frame_size <= page ? MAP_POPULATE : 0;
		void *r = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | populate, -1, 0);
		if (r == MAP_FAILED)
			return -ENOMEM;
		p->base = r;
		p->region_cap = bytes;
	}
#ifdef MADV_POPULATE_WRITE
	else if (frame_size <= page) {
		/* A reused region lost its pages: the same, in one go (a
		 * kernel without it just faults them in). */
		madvise(p->base, bytes, MADV_POPULATE_WRITE);
	}
#endif
	if (nframes > p->stack_cap) {
		struct stack_block *s =
			malloc(sizeof(*s) + sizeof(uint32_t) * nframes);
		if (!s)
			return -ENOMEM;
		/* The old stack is kept for the same reason as the region:
		 * a racing stale call may still read it. It stays linked from
		 * the new block, so it is kept, not lost (leak checkers). */
		s->older = p->free_stack ?
				   (struct stack_block *)((uint8_t *)p->free_stack -
							  offsetof(struct stack_block,
								   idx)) :
				   NULL;
		p->free_stack = s->idx;
		p->stack_cap = nframes;
	}
	p->region_bytes = bytes;
	return 0;
}

int32_t bt_pool_create(uint32_t nframes, uint32_t frame_size, uint32_t headroom)
{
	struct bt_pool *p;
	uint32_t slot;
	int err;

	if (headroom < sizeof(struct bt_frame_meta))
		return -ENOSPC;
	if (nframes == 0 || nframes > BT_REF_INDEX_MASK + 1u)
		return -EINVAL;
	if (frame_size < BT_MIN_FRAME_SIZE || frame_size > BT_MAX_FRAME_SIZE ||
	    frame_size % BT_FRAME_ALIGN)
		return -EINVAL;
	if (headroom > BT_MAX_HEADROOM ||
	    headroom + BT_MIN_DATA_ROOM > frame_size)
		return -EINVAL;

	pthread_mutex_lock(&bt_table_lock);
	/* Next fit: a slot just freed is reused last, so a stale ref kept by
	 * a buggy caller is unlikely to name a frame of the next pool. */
	static uint32_t last_slot;
	uint32_t tried;
	for (tried = 0, slot = last_slot; tried < BT_MAX_POOLS; tried++) {
		slot = slot % BT_MAX_POOLS + 1;
		if (!bt_pools[slot] || !atomic_load(&bt_pools[slot]->open))
			break;
	}
	if (tried == BT_MAX_POOLS) {
		pthread_mutex_unlock(&bt_table_lock);
		return -EMFILE;
	}
	p = bt_pools[slot];
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&bt_table_lock);
			return -ENOMEM;
		}
		p->slot = slot;
		bt_lock_init(&p->lock);
		bt_pools[slot] = p;
	}
	last_slot = slot;
	err = pool_memory(p, nframes, frame_size);
	if (err) {
		pthread_mutex_unlock(&bt_table_lock);
		return err;
	}
	p->nframes = nframes;
	p->frame_size = frame_size;
	p->headroom = headroom;
	p->devices = 0;
	atomic_store(&p->alloc_failed, 0);
	atomic_store(&p->double_return, 0);
	atomic_store(&p->foreign_return, 0);
	atomic_store(&p->invalid_ref, 0);
	atomic_store(&p->corrupt, 0);
	/* Highest index at the bottom: allocation hands out 0, 1, 2, ... */
	for (uint32_t i = 0; i < nframes; i++) {
		p->free_stack[i] = nframes - 1 - i;
		meta_init(p, i);
		bt_state_set(bt_frame_at(p, i), BT_FREE);
	}
	p->nfree = nframes;

	uint32_t gen = (atomic_load(&p->gen) + 1) & POOL_GEN_MASK;
	if (gen == 0)
		gen = 1;
	atomic_store(&p->gen, gen);
	/* Release: a thread that sees open=1 sees the initialised pool. */
	atomic_store_explicit(&p->open, 1, memory_order_release);
	atomic_store_explicit(&pool_handles[slot], slot | (gen << POOL_GEN_SHIFT),
			      memory_order_release);
	pthread_mutex_unlock(&bt_table_lock);
	return (int32_t)(slot | (gen << POOL_GEN_SHIFT));
}

int32_t bt_pool_destroy(uint32_t handle)
{
	struct bt_pool *p;
	int32_t ret = 0;

	pthread_mutex_lock(&bt_table_lock);
	p = bt_pool_get(handle);
	if (!p) {
		ret = -ENXIO;
	} else if (p->devices) {
		ret = -EBUSY;
	} else {
		bt_lock_acquire(&p->lock);
		if (p->nfree != p->nframes)
			ret = -EBUSY;
		else
			atomic_store_explicit(&p->open, 0,
					      memory_order_release);
		if (ret == 0)
			atomic_store_explicit(&pool_handles[p->slot], 0,
					      memory_order_release);
		bt_lock_release(&p->lock);
		if (ret == 0)
			madvise(p->base, p->region_cap, MADV_DONTNEED);
	}
	pthread_mutex_unlock(&bt_table_lock);
	return ret;
}

void *bt_pool_base(uint32_t handle)
{
	struct bt_pool *p = bt_pool_get(handle);

	return p ? p->base : NULL;
}

int32_t bt_pool_info(uint32_t handle, uint64_t *out, uint32_t n)
{
	struct bt_pool *p = bt_pool_get(handle);
	uint64_t v[BT_PI_COUNT];

	if (!p)
		return -ENXIO;
	if (!out && n)
		return -EFAULT;
	v[BT_PI_SLOT] = p->slot;
	v[BT_PI_FRAMES] = p->nframes;
	v[BT_PI_FRAME_SIZE] = p->frame_size;
	v[BT_PI_HEADROOM] = p->headroom;
	v[BT_PI_REGION_BYTES] = p->region_bytes;
	if (n > BT_PI_COUNT)
		n = BT_PI_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_PI_COUNT;
}

int32_t bt_pool_stats(uint32_t handle, uint64_t *out, uint32_t n)
{
	struct bt_pool *p = bt_pool_get(handle);
	uint64_t v[BT_PS_COUNT] = { 0 };

	if (!p)
		return -ENXIO;
	if (!out && n)
		return -EFAULT;
	/* Held and queued are summed on read by walking the frames: nothing
	 * is counted per frame on the hot path. */
	for (uint32_t i = 0; i < p->nframes; i++) {
		uint8_t s = bt_state_peek(bt_frame_at(p, i));
		if (s == BT_HELD)
			v[BT_PS_HELD]++;
		else if (s == BT_QUEUED)
			v[BT_PS_QUEUED]++;
	}
	bt_lock_acquire(&p->lock);
	v[BT_PS_FREE] = p->nfree;
	bt_lock_release(&p->lock);
	v[BT_PS_FRAMES] = p->nframes;
	v[BT_PS_ALLOC_FAILED] = atomic_load(&p->alloc_failed);
	v[BT_PS_DOUBLE_RETURN] = atomic_load(&p->double_return);
	v[BT_PS_FOREIGN_RETURN] = atomic_load(&p->foreign_return);
	v[BT_PS_INVALID_REF] = atomic_load(&p->invalid_ref);
	v[BT_PS_CORRUPT] = atomic_load(&p->corrupt);
	if (n > BT_PS_COUNT)
		n = BT_PS_COUNT;
	memcpy(out, v, n * sizeof(*v));
	return BT_PS_COUNT;
}

/* Pop up to n indexes under the lock; initialise their metadata outside it
 * (the frames are ours once popped, so FREE -> HELD is the owner's checked
 * move: see bt_internal.h). A frame whose state says it is not free (a
 * caller scribbled on the headroom) is counted and skipped. */
/* Pop up to n frames of open pool p as HELD: refs[] get their refs and,
 * if metas is not NULL, metas[] their metadata. */
static int32_t pool_take(struct bt_pool *p, uint32_t *refs,
			 struct bt_frame_meta **metas, uint32_t n)
{
	uint32_t k, got = 0;

	bt_lock_acquire(&p->lock);
	if (!atomic_load_explicit(&p->open, memory_order_relaxed)) {
		bt_lock_release(&p->lock);
		return -ENXIO;
	}
	k = n < p->nfree ? n : p->nfree;
	/* Top of the stack first: the most recently returned frames are the
	 * ones most likely still in cache. */
	for (uint32_t i = 0; i < k; i++)
		refs[i] = p->free_stack[p->nfree - 1 - i];
	p->nfree -= k;
	bt_lock_release(&p->lock);

	/* The frames' metadata lines were last written by whoever returned
	 * them (a reader on another CPU, often): request them all before the
	 * first state check, so the misses overlap. */
	for (uint32_t i = 0; i < k; i++)
		__builtin_prefetch(bt_frame_at(p, refs[i]), 1);
	for (uint32_t i = 0; i < k; i++) {
		uint32_t idx = refs[i];
		if (BT_UNLIKELY(!bt_state_take(bt_frame_at(p, idx), BT_FREE,
					       BT_HELD))) {
			atomic_fetch_add(&p->corrupt, 1);
			continue;
		}
		meta_init(p, idx);
		if (metas)
			metas[got] = bt_frame_at(p, idx);
		refs[got++] = (p->slot << BT_REF_INDEX_BITS) | idx;
	}
	if (k < n)
		atomic_fetch_add_explicit(&p->alloc_failed, n - k,
					  memory_order_relaxed);
	return (int32_t)got;
}

int32_t bt_pool_alloc(uint32_t handle, uint32_t *refs, uint32_t n)
{
	struct bt_pool *p = bt_pool_get(handle);

	if (!p)
		return -ENXIO;
	if (!refs && n)
		return -EFAULT;
	return pool_take(p, refs, NULL, n);
}

int32_t bt_pool_take(struct bt_pool *p, struct bt_frame_meta **metas,
		     uint32_t n)
{
	uint32_t refs[BT_MAX_BULK];
	int32_t got = 0;

	while ((uint32_t)got < n) {
		uint32_t want = n - (uint32_t)got;
		int32_t k = pool_take(p, refs, metas + got,
				      want < BT_MAX_BULK ? want : BT_MAX_BULK);
		if (k <= 0)
			return got ? got : k;
		got += k;
		if ((uint32_t)k < (want < BT_MAX_BULK ? want : BT_MAX_BULK))
			break;
	}
	return got;
}

struct bt_frame_meta *bt_pool_take_one(struct bt_pool *p)
{
	uint32_t idx;

	for (;;) {
		bt_lock_acquire(&p->lock);
		if (!p->nfree) {
			bt_lock_release(&p->lock);
			atomic_fetch_add_explicit(&p->alloc_failed, 1,
						  memory_order_relaxed);
			return NULL;
		}
		idx = p->free_stack[--p->nfree];
		bt_lock_release(&p->lock);
		/* As in bt_pool_alloc: skip (and count) a frame that is not
		 * really free. */
		if (BT_LIKELY(bt_state_take(bt_frame_at(p, idx), BT_FREE,
					    BT_HELD)))
			break;
		atomic_fetch_add(&p->corrupt, 1);
	}
	meta_init(p, idx);
	return bt_frame_at(p, idx);
}

/* Push one index, under the pool lock, onto a stack that cannot overflow
 * unless a caller forged frame states (then the entry is dropped rather
 * than written out of bounds, and counted). */
static inline void push_locked(struct bt_pool *p, uint32_t idx)
{
	if (BT_LIKELY(p->nfree < p->nframes))
		p->free_stack[p->nfree++] = idx;
	else
		atomic_fetch_add(&p->corrupt, 1);
}

/* Frames per pool-lock hold in put and release: bounds how long an alloc
 * can wait behind a big return. */
#define PUT_CHUNK 256

/*
 * Return held frames. The HELD -> FREE move is made under the pool lock
 * (see "Frame state transitions" in bt_internal.h), so of two threads
 * returning the same frame one wins; the other finds it not HELD and
 * counts a double return.
 */
int32_t bt_pool_put(uint32_t handle, const uint32_t *refs, uint32_t n,
		    uint32_t *bad, uint32_t bad_max)
{
	struct bt_pool *p = bt_pool_get(handle);
	uint32_t done = 0, nbad = 0;

	if (!p)
		return -ENXIO;
	if (!refs && n)
		return -EFAULT;
	if (!bad)
		bad_max = 0;
	for (uint32_t i = 0; i < n;) {
		uint32_t end = n - i > PUT_CHUNK ? i + PUT_CHUNK : n;

		/* Take the state lines' misses before the lock, not while
		 * holding it: the lock is held for stores only. */
		for (uint32_t j = i; j < end; j++) {
			uint32_t ix = refs[j] & BT_REF_INDEX_MASK;

			if (refs[j] >> BT_REF_INDEX_BITS == p->slot &&
			    ix < p->nframes)
				__builtin_prefetch(bt_frame_at(p, ix), 1);
		}
		bt_lock_acquire(&p->lock);
		for (; i < end; i++) {
			uint32_t ref = refs[i];
			uint32_t slot = ref >> BT_REF_INDEX_BITS;
			uint32_t ix = ref & BT_REF_INDEX_MASK;

			if (slot != p->slot) {
				atomic_fetch_add(slot && slot <= BT_MAX_POOLS &&
								 bt_pools[slot] &&
								 atomic_load(&bt_pools[slot]
										      ->open) ?
							 &p->foreign_return :
							 &p->invalid_ref,
						 1);
			} else if (ix >= p->nframes) {
				atomic_fetch_add(&p->invalid_ref, 1);
			} else if (!bt_state_take(bt_frame_at(p, ix), BT_HELD,
						  BT_FREE)) {
				atomic_fetch_add(&p->double_return, 1);
			} else {
				push_locked(p, ix);
				done++;
				continue;
			}
			if (nbad < bad_max)
				bad[nbad] = i;
			nbad++;
		}
		bt_lock_release(&p->lock);
	}
	return (int32_t)done;
}

int32_t bt_frame_check(uint32_t ref)
{
	struct bt_pool *p;
	struct bt_frame_meta *m;
	uint32_t slot = ref >> BT_REF_INDEX_BITS;

	if (slot == 0 || slot > BT_MAX_POOLS || !bt_pools[slot] ||
	    !atomic_load(&bt_pools[slot]->open))
		return BT_FRAME_NO_POOL;
	m = bt_ref_meta(ref, &p);
	if (!m)
		return BT_FRAME_BAD_INDEX;
	uint8_t st = bt_state_peek(m);
	if (st == BT_FREE)
		return BT_FRAME_NOT_HELD;
	if (st == BT_QUEUED)
		return BT_FRAME_QUEUED;
	if (m->data_off < sizeof(struct bt_frame_meta))
		return BT_FRAME_BAD_OFFSET;
	if (!bt_meta_len_ok(p, m))
		return BT_FRAME_BAD_LENGTH;
	return BT_FRAME_OK;
}

/* Library-internal return of frames the library owns (dropped, drained,
 * written to a TAP, or allocated and not filled): they are QUEUED or HELD,
 * and go back whichever, under the pool lock like any return; runs of one
 * pool share a lock hold. A frame already FREE is not pushed a second time
 * (a scribbled headroom, or a ring entry the library was handed twice): it
 * is counted and skipped. */
void bt_release_metas(struct bt_frame_meta *const *metas, uint32_t n)
{
	struct bt_pool *cur = NULL;
	uint32_t held = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct bt_pool *p;
		struct bt_frame_meta *m =
			bt_frame_from_ptr((uintptr_t)metas[i], &p);

		if (!m)
			continue; /* not ours: counted by bt_frame_from_ptr */
		if (p != cur || held == PUT_CHUNK) {
			if (cur)
				bt_lock_release(&cur->lock);
			cur = p;
			held = 0;
			bt_lock_acquire(&cur->lock);
		}
		held++;
		if (BT_UNLIKELY(bt_state_peek(m) == BT_FREE)) {
			atomic_fetch_add(&p->corrupt, 1);
			continue;
		}
		bt_state_set(m, BT_FREE);
		push_locked(p, (uint32_t)(((uint8_t *)m - p->base) /
					  p->frame_size));
	}
	if (cur)
		bt_lock_release(&cur->lock);
}

/*
 * Claim held frames for the library: HELD -> QUEUED (see "Frame state
 * transitions" in bt_internal.h). With BT_CLAIM_ALL, every ref must be a
 * held frame with a valid data window, or nothing is claimed and -EINVAL
 * returned; metas[] gets every frame. Without it, refs that are not held
 * frames are skipped; metas[] gets the claimed ones and their number is
 * returned. A ref twice in one call is claimed once (the second finds it
 * QUEUED).
 */
#ifdef BT_STRICT_OWNERSHIP
/* Strict builds: under each frame's pool lock, one lock hold per run of
 * refs of one pool, never two pool locks at once, so racing callers that
 * pass the same ref are serialised and exactly one wins. */
int32_t bt_claim_held(const uint32_t *refs, uint32_t n,
		      struct bt_frame_meta **metas, int flags)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n;) {
		struct bt_pool *p;
		uint32_t slot = refs[i] >> BT_REF_INDEX_BITS;

		if (BT_UNLIKELY(!bt_ref_meta(refs[i], &p))) {
			if (flags & BT_CLAIM_ALL)
				return bt_claim_undo(metas, k);
			i++;
			continue;
		}
		bt_lock_acquire(&p->lock);
		for (; i < n && refs[i] >> BT_REF_INDEX_BITS == slot; i++) {
			struct bt_pool *q;
			struct bt_frame_meta *m = bt_ref_meta(refs[i], &q);

			/* Re-looked up under the lock: the pool cannot be
			 * destroyed now while a frame of it is held. */
			if (BT_LIKELY(m && q == p &&
				      bt_claim_one(p, m, flags))) {
				metas[k++] = m;
			} else if (flags & BT_CLAIM_ALL) {
				bt_lock_release(&p->lock);
				return bt_claim_undo(metas, k);
			}
		}
		bt_lock_release(&p->lock);
	}
	return (int32_t)k;
}
#endif

void bt_release_refs(const uint32_t *refs, uint32_t n)
{
	struct bt_frame_meta *metas[PUT_CHUNK];
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct bt_pool *p;
		struct bt_frame_meta *m = bt_ref_meta(refs[i], &p);

		if (!m)
			continue;
		metas[k++] = m;
		if (k == PUT_CHUNK) {
			bt_release_metas(metas, k);
			k = 0;
		}
	}
	if (k)
		bt_release_metas(metas, k);
}

struct bt_frame_meta *bt_frame_from_ptr(uintptr_t ptr, struct bt_pool **pool)
{
	struct bt_frame_meta *m = (struct bt_frame_meta *)ptr;
	uint32_t ref = m->ref;
	uint32_t slot = ref >> BT_REF_INDEX_BITS;
	struct bt_pool *p = slot <= BT_MAX_POOLS ? bt_pools[slot] : NULL;

	/* Fast path: the ref in the headroom names this very address. */
	if (BT_LIKELY(p && (ref & BT_REF_INDEX_MASK) < p->nframes &&
		      (uintptr_t)bt_frame_at(p, ref & BT_REF_INDEX_MASK) ==
			      ptr)) {
		*pool = p;
		return m;
	}
	/* Slow path: the headroom was overwritten. Find the owner by
	 * address and repair the ref. */
	for (slot = 1; slot <= BT_MAX_POOLS; slot++) {
		p = bt_pools[slot];
		if (!p || !atomic_load(&p->open))
			continue;
		if (ptr >= (uintptr_t)p->base &&
		    ptr < (uintptr_t)p->base + (size_t)p->nframes * p->frame_size &&
		    (ptr - (uintptr_t)p->base) % p->frame_size == 0) {
			atomic_fetch_add(&p->corrupt, 1);
			m->ref = (slot << BT_REF_INDEX_BITS) |
				 (uint32_t)((ptr - (uintptr_t)p->base) /
					    p->frame_size);
			*pool = p;
			return m;
		}
	}
	return NULL;
}

int32_t bt_pool_lookup(uint32_t slot)
{
	struct bt_pool *p;

	if (slot == 0 || slot > BT_MAX_POOLS)
		return -EINVAL;
	p = bt_pools[slot];
	if (!p || !atomic_load_explicit(&p->open, memory_order_acquire))
		return -ENXIO;
	return (int32_t)(slot | (atomic_load(&p->gen) << POOL_GEN_SHIFT));
}

/* Return held frames of any pools: runs of one pool go through bt_pool_put
 * (one lock per run). bad[] gets the positions of refused refs. */
int32_t bt_frames_put(const uint32_t *refs, uint32_t n, uint32_t *bad,
		      uint32_t bad_max)
{
	uint32_t done = 0, nbad = 0, i = 0;

	if (!refs && n)
		return -EFAULT;
	if (!bad)
		bad_max = 0;
	while (i < n) {
		uint32_t slot = refs[i] >> BT_REF_INDEX_BITS;
		uint32_t j = i + 1;
		int32_t h, r;

		while (j < n && refs[j] >> BT_REF_INDEX_BITS == slot)
			j++;
		h = bt_pool_lookup(slot);
		if (h < 0) {
			for (uint32_t k = i; k < j; k++, nbad++)
				if (nbad < bad_max)
					bad[nbad] = k;
			i = j;
			continue;
		}
		uint32_t run_bad[BT_MAX_BULK];
		uint32_t run = j - i < BT_MAX_BULK ? j - i : BT_MAX_BULK;
		j = i + run;
		r = bt_pool_put((uint32_t)h, refs + i, run, run_bad,
				BT_MAX_BULK);
		if (r < 0) {
			r = 0;
			for (uint32_t k = 0; k < run; k++)
				run_bad[k] = k;
		}
		done += (uint32_t)r;
		for (uint32_t k = 0; k < run - (uint32_t)r; k++, nbad++)
			if (nbad < bad_max)
				bad[nbad] = i + run_bad[k];
		i = j;
	}
	return (int32_t)done;
}
