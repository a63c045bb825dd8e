/* SPDX-License-Identifier: MIT */
/* Library-wide pieces: thread slots, the clock, object retirement. */
#define _GNU_SOURCE
#include <sched.h>
#include <time.h>

#include "bt_internal.h"

#if defined(__SANITIZE_THREAD__)
_Atomic int bt_tsan_fence_word;
#endif

/* One bit per exclusive slot; a set bit is leased to a live thread. */
static _Atomic uint64_t slot_leases;
static __thread int my_slot = -1;
static pthread_key_t slot_key;
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;

static void slot_give_back(void *v)
{
	int slot = (int)(uintptr_t)v - 1;

	/* Release: this thread's last counter writes are visible to the next
	 * thread that leases the slot (its acquire below). */
	atomic_fetch_and_explicit(&slot_leases, ~(1ull << slot),
				  memory_order_release);
}

static void slot_key_create(void)
{
	pthread_key_create(&slot_key, slot_give_back);
}

int bt_thread_slot(void)
{
	if (BT_LIKELY(my_slot >= 0))
		return my_slot;

	pthread_once(&slot_key_once, slot_key_create);
	uint64_t m = atomic_load_explicit(&slot_leases, memory_order_acquire);
	for (;;) {
		if (m == ~0ull) {
			my_slot = BT_SLOT_SHARED;
			return my_slot;
		}
		int b = __builtin_ctzll(~m);
		if (atomic_compare_exchange_weak_explicit(
			    &slot_leases, &m, m | (1ull << b),
			    memory_order_acquire, memory_order_acquire)) {
			my_slot = b;
			pthread_setspecific(slot_key, (void *)(uintptr_t)(b + 1));
			return my_slot;
		}
	}
}

void bt_retire(struct bt_life *l)
{
	atomic_store_explicit(&l->open, 0, memory_order_seq_cst);
	for (int s = 0; s <= BT_SLOTS; s++)
		while (atomic_load_explicit(&l->in[s].n, memory_order_acquire))
			sched_yield();
}

uint32_t bt_version(void)
{
	return BT_VERSION;
}

uint64_t bt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int32_t bt_current_cpu(void)
{
	int cpu = sched_getcpu();

	return cpu < 0 ? -errno : cpu;
}

uint32_t bt_meta_size(void)
{
	return sizeof(struct bt_frame_meta);
}

_Static_assert(sizeof(struct bt_frame_meta) == BT_META_SIZE, "frame meta is BT_META_SIZE bytes");
_Static_assert(offsetof(struct bt_frame_meta, len) == BT_META_OFF_LEN,
	       "len offset");
_Static_assert(offsetof(struct bt_frame_meta, data_off) ==
		       BT_META_OFF_DATA_OFF,
	       "data_off offset");
_Static_assert(offsetof(struct bt_frame_meta, tstamp_ns) ==
		       BT_META_OFF_TSTAMP,
	       "tstamp offset");
_Static_assert(offsetof(struct bt_frame_meta, state) == BT_META_OFF_STATE,
	       "state offset");
_Static_assert(offsetof(struct bt_frame_meta, queue) == BT_META_OFF_QUEUE,
	       "queue offset");
_Static_assert(offsetof(struct bt_frame_meta, mark) == BT_META_OFF_MARK,
	       "mark offset");
_Static_assert(offsetof(struct bt_frame_meta, vnet_len) ==
		       BT_META_OFF_VNET_LEN,
	       "vnet_len offset");
_Static_assert(offsetof(struct bt_frame_meta, vnet_flags) ==
		       BT_META_OFF_VNET_FLAGS,
	       "vnet_flags offset");
_Static_assert(offsetof(struct bt_frame_meta, gso_type) ==
		       BT_META_OFF_GSO_TYPE,
	       "gso_type offset");
_Static_assert(offsetof(struct bt_frame_meta, hdr_len) == BT_META_OFF_HDR_LEN,
	       "hdr_len offset");
_Static_assert(offsetof(struct bt_frame_meta, gso_size) ==
		       BT_META_OFF_GSO_SIZE,
	       "gso_size offset");
_Static_assert(offsetof(struct bt_frame_meta, csum_start) ==
		       BT_META_OFF_CSUM_START,
	       "csum_start offset");
_Static_assert(offsetof(struct bt_frame_meta, csum_offset) ==
		       BT_META_OFF_CSUM_OFFSET,
	       "csum_offset offset");

/* The clock as a double, for the hot paths of the TypeScript side: a u64
 * result crosses Deno's FFI as a BigInt (an allocation per call), a double
 * does not. Exact while below 2^53 ns (104 days since boot). */
double bt_now_ns_f64(void)
{
	return (double)bt_now_ns();
}
