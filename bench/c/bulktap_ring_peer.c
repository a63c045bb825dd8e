/* SPDX-License-Identifier: MIT */
/*
 * Our two sides of the ring comparison:
 *
 *   bt_ring      the raw ring and lock of c/bt_ring.h + c/bt_lock.h moving
 *                pointers, exactly what rte_ring moves: one producer-lock
 *                acquisition per enqueue call, one consumer-lock acquisition
 *                per dequeue call. Apples to apples with rte_ring.
 *   bulktap_api  the public transmit path: bt_pool_alloc -> bt_xmit ->
 *                bt_queue_read -> bt_pool_put on an in-memory device with one
 *                queue (validation, frame states, counters, doorbell
 *                included). What a program using the library pays.
 *
 * Also the object pool the raw implementations share (peer.h).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "bt_lock.h"
#include "bt_ring.h"
#include "bulktap.h"
#include "peer.h"

/* ---------------------------------------------------------------- pool */

struct peer_obj {
	alignas(64) uint64_t stamp;
	uint32_t len;
	uint8_t pad[PEER_OBJECT_SIZE - 12];
};

struct peer_pool {
	alignas(64) struct bt_lock lock;
	uint32_t top;
	uintptr_t *stack;
	struct peer_obj *objs;
};

struct peer_pool *peer_pool_new(void)
{
	struct peer_pool *p = aligned_alloc(64, sizeof(*p));

	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	bt_lock_init(&p->lock);
	p->objs = aligned_alloc(64, sizeof(struct peer_obj) * PEER_POOL_OBJECTS);
	p->stack = calloc(PEER_POOL_OBJECTS, sizeof(uintptr_t));
	if (!p->objs || !p->stack) {
		peer_pool_free(p);
		return NULL;
	}
	memset(p->objs, 0, sizeof(struct peer_obj) * PEER_POOL_OBJECTS);
	for (uint32_t i = 0; i < PEER_POOL_OBJECTS; i++)
		p->stack[i] = (uintptr_t)&p->objs[PEER_POOL_OBJECTS - 1 - i];
	p->top = PEER_POOL_OBJECTS;
	return p;
}

void peer_pool_free(struct peer_pool *p)
{
	if (!p)
		return;
	free(p->objs);
	free(p->stack);
	free(p);
}

uint32_t peer_pool_alloc(struct peer_pool *p, uintptr_t *objs, uint32_t n)
{
	bt_lock_acquire(&p->lock);
	if (n > p->top)
		n = p->top;
	p->top -= n;
	memcpy(objs, &p->stack[p->top], n * sizeof(uintptr_t));
	bt_lock_release(&p->lock);
	return n;
}

void peer_pool_put(struct peer_pool *p, const uintptr_t *objs, uint32_t n)
{
	bt_lock_acquire(&p->lock);
	memcpy(&p->stack[p->top], objs, n * sizeof(uintptr_t));
	p->top += n;
	bt_lock_release(&p->lock);
}

struct peer_fields peer_pool_fields(uintptr_t obj)
{
	struct peer_obj *o = (struct peer_obj *)obj;

	return (struct peer_fields){ &o->len, &o->stamp };
}

/* ------------------------------------------------------------- bt_ring */

struct raw_state {
	struct bt_ring ring;
	struct peer_pool *pool;
	_Atomic uintptr_t *slots;
};

static int raw_setup(void **state)
{
	struct raw_state *s = aligned_alloc(64, sizeof(*s));

	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->slots = aligned_alloc(64, sizeof(uintptr_t) * PEER_RING_SIZE);
	s->pool = peer_pool_new();
	if (!s->slots || !s->pool) {
		free(s->slots);
		peer_pool_free(s->pool);
		free(s);
		return -ENOMEM;
	}
	bt_ring_init(&s->ring, s->slots, PEER_RING_SIZE);
	*state = s;
	return 0;
}

static void raw_teardown(void *state)
{
	struct raw_state *s = state;

	peer_pool_free(s->pool);
	free(s->slots);
	free(s);
}

static uint32_t raw_alloc(void *state, uintptr_t *objs, uint32_t n)
{
	return peer_pool_alloc(((struct raw_state *)state)->pool, objs, n);
}

static void raw_put(void *state, const uintptr_t *objs, uint32_t n)
{
	peer_pool_put(((struct raw_state *)state)->pool, objs, n);
}

static uint32_t raw_enqueue(void *state, const uintptr_t *objs, uint32_t n,
			    int last, int producer)
{
	struct raw_state *s = state;
	uint32_t i;

	(void)last;
	(void)producer;
	bt_lock_acquire(&s->ring.producer_lock);
	for (i = 0; i < n; i++)
		if (bt_ring_produce(&s->ring, objs[i]))
			break;
	bt_lock_release(&s->ring.producer_lock);
	return i;
}

static uint32_t raw_dequeue(void *state, uintptr_t *objs, uint32_t max)
{
	struct raw_state *s = state;
	uint32_t n;

	bt_lock_acquire(&s->ring.consumer_lock);
	n = bt_ring_consume_batch(&s->ring, objs, max);
	bt_lock_release(&s->ring.consumer_lock);
	return n;
}

static struct peer_fields raw_fields(void *state, uintptr_t obj)
{
	(void)state;
	return peer_pool_fields(obj);
}

const struct peer_impl peer_bt_ring = {
	.name = "bt_ring",
	.describe = "c/bt_ring.h + c/bt_lock.h, pointers, one lock per call",
	.setup = raw_setup,
	.teardown = raw_teardown,
	.alloc = raw_alloc,
	.put = raw_put,
	.enqueue = raw_enqueue,
	.dequeue = raw_dequeue,
	.fields = raw_fields,
	.frees_refused = 0,
	.lock_per_call = 1,
	.counters = NULL,
};

/* --------------------------------------------------------- bulktap API */

struct api_state {
	int32_t pool;
	int32_t dev;
	uint8_t *base;
};

static int api_setup(void **state)
{
	struct api_state *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->pool = bt_pool_create(PEER_POOL_OBJECTS, PEER_OBJECT_SIZE,
				 PEER_HEADROOM);
	if (s->pool < 0) {
		int e = s->pool;
		free(s);
		return e;
	}
	s->dev = bt_dev_create((uint32_t)s->pool, 1, PEER_RING_SIZE);
	if (s->dev < 0) {
		int e = s->dev;
		bt_pool_destroy((uint32_t)s->pool);
		free(s);
		return e;
	}
	s->base = bt_pool_base((uint32_t)s->pool);
	*state = s;
	return 0;
}

static void api_teardown(void *state)
{
	struct api_state *s = state;

	bt_dev_close((uint32_t)s->dev);
	bt_pool_destroy((uint32_t)s->pool);
	free(s);
}

/* The harness speaks uintptr_t; refs are uint32_t. Converting a bulk of at
 * most 256 entries costs a few nanoseconds per call, in both modes. */
static uint32_t api_alloc(void *state, uintptr_t *objs, uint32_t n)
{
	struct api_state *s = state;
	uint32_t refs[PEER_MAX_BULK];
	int32_t got = bt_pool_alloc((uint32_t)s->pool, refs, n);

	if (got <= 0)
		return 0;
	for (int32_t i = 0; i < got; i++)
		objs[i] = refs[i];
	return (uint32_t)got;
}

static void api_put(void *state, const uintptr_t *objs, uint32_t n)
{
	struct api_state *s = state;
	uint32_t refs[PEER_MAX_BULK];

	for (uint32_t i = 0; i < n; i++)
		refs[i] = (uint32_t)objs[i];
	bt_pool_put((uint32_t)s->pool, refs, n, NULL, 0);
}

static uint32_t api_enqueue(void *state, const uintptr_t *objs, uint32_t n,
			    int last, int producer)
{
	struct api_state *s = state;
	uint32_t refs[PEER_MAX_BULK];
	int32_t sent;

	for (uint32_t i = 0; i < n; i++)
		refs[i] = (uint32_t)objs[i];
	/* bt_xmit has already returned the refused suffix to the pool
	 * (frees_refused = 1), so the harness only counts it. */
	sent = bt_xmit((uint32_t)s->dev, refs, n, last ? BT_XMIT_FLUSH : 0,
		       producer);
	return sent < 0 ? 0 : (uint32_t)sent;
}

static uint32_t api_dequeue(void *state, uintptr_t *objs, uint32_t max)
{
	struct api_state *s = state;
	uint32_t refs[PEER_MAX_BULK];
	int32_t n = bt_queue_read((uint32_t)s->dev, 0, refs, max);

	if (n <= 0)
		return 0;
	for (int32_t i = 0; i < n; i++)
		objs[i] = refs[i];
	return (uint32_t)n;
}

static struct peer_fields api_fields(void *state, uintptr_t obj)
{
	struct api_state *s = state;
	struct bt_frame_meta *m =
		(struct bt_frame_meta *)(s->base + (size_t)(obj &
							    BT_REF_INDEX_MASK) *
							   PEER_OBJECT_SIZE);

	return (struct peer_fields){ &m->len, &m->tstamp_ns };
}

/* The device's own counters: producer lock acquisitions and doorbells that
 * had to wake a sleeping reader (the harness's consumer polls, so these
 * stay near zero; they are counted, not assumed). */
static void api_counters(void *state, struct peer_counters *out)
{
	struct api_state *s = state;
	uint64_t st[BT_DS_COUNT];

	if (bt_dev_stats((uint32_t)s->dev, st, BT_DS_COUNT) < 0)
		return;
	out->locks = st[BT_DS_LOCK_ACQUISITIONS];
	out->wakeups = st[BT_DS_WAKEUPS_SENT];
	out->has_locks = 1;
	out->has_wakeups = 1;
}

const struct peer_impl peer_bulktap_api = {
	.name = "bulktap_api",
	.describe = "bt_pool_alloc -> bt_xmit -> bt_queue_read -> bt_pool_put",
	.setup = api_setup,
	.teardown = api_teardown,
	.alloc = api_alloc,
	.put = api_put,
	.enqueue = api_enqueue,
	.dequeue = api_dequeue,
	.fields = api_fields,
	.frees_refused = 1,
	.lock_per_call = 0,
	.counters = api_counters,
};
