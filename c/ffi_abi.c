/* SPDX-License-Identifier: MIT */
/*
 * The entry points a foreign caller (Deno FFI) binds: the calls of
 * bulktap.h that take arrays, each array followed by its length in
 * elements as the caller's runtime knows it. Every count is checked against
 * that length here, before the call it wraps can read or write a single
 * element, so a count that outgrew its array fails with -EFAULT instead of
 * reaching memory the caller did not name.
 *
 * C callers hold their pointers themselves and call bulktap.h directly;
 * a binding for a language with bounds-checked arrays calls these, and
 * passes lengths it read from the runtime (never from a field a user could
 * reassign). One rule throughout: `x_len` is the number of elements x holds;
 * a NULL x with a non-zero count is -EFAULT too.
 */
#include <errno.h>

#include "bt_internal.h"

/* n elements of an array of len elements, at p: all there? */
static inline int fits(const void *p, uint32_t len, uint64_t n)
{
	return n <= len && (n == 0 || p != NULL);
}

int32_t bt_ffi_pool_alloc(uint32_t pool, uint32_t *refs, uint32_t refs_len,
			  uint32_t n)
{
	if (!fits(refs, refs_len, n))
		return -EFAULT;
	return bt_pool_alloc(pool, refs, n);
}

int32_t bt_ffi_pool_put(uint32_t pool, const uint32_t *refs, uint32_t refs_len,
			uint32_t n, uint32_t *bad, uint32_t bad_len)
{
	if (!fits(refs, refs_len, n) || (bad_len && !bad))
		return -EFAULT;
	return bt_pool_put(pool, refs, n, bad, bad_len);
}

int32_t bt_ffi_frames_put(const uint32_t *refs, uint32_t refs_len, uint32_t n,
			  uint32_t *bad, uint32_t bad_len)
{
	if (!fits(refs, refs_len, n) || (bad_len && !bad))
		return -EFAULT;
	return bt_frames_put(refs, n, bad, bad_len);
}

int32_t bt_ffi_xmit(uint32_t dev, const uint32_t *refs, uint32_t refs_len,
		    uint32_t n, uint32_t flags, int32_t cpu)
{
	/* A count past the array takes no frame: the caller still holds
	 * every frame it named, and its binding reports the bad count. */
	if (!fits(refs, refs_len, n))
		return -EFAULT;
	return bt_xmit(dev, refs, n, flags, cpu);
}

int32_t bt_ffi_xmit_copy(uint32_t dev, const uint8_t *data, uint32_t data_len,
			 const uint32_t *lens, uint32_t lens_len, uint32_t n,
			 uint32_t flags, int32_t cpu)
{
	uint64_t total = 0;

	if (!fits(lens, lens_len, n))
		return -EFAULT;
	/* bt_xmit_copy reads the frames back to back: their lengths must add
	 * up to no more than data holds (summed in 64 bits: no wrap). */
	for (uint32_t i = 0; i < n; i++)
		total += lens[i];
	if (!fits(data, data_len, total))
		return -EFAULT;
	return bt_xmit_copy(dev, data, lens, n, flags, cpu);
}

int32_t bt_ffi_queue_read(uint32_t dev, uint32_t queue, uint32_t *refs,
			  uint32_t refs_len, uint32_t max)
{
	if (!fits(refs, refs_len, max))
		return -EFAULT;
	return bt_queue_read(dev, queue, refs, max);
}

int32_t bt_ffi_queue_read_spin(uint32_t dev, uint32_t queue, uint32_t *refs,
			       uint32_t refs_len, uint32_t max, uint32_t spin_ns)
{
	if (!fits(refs, refs_len, max))
		return -EFAULT;
	return bt_queue_read_spin(dev, queue, refs, max, spin_ns);
}

int32_t bt_ffi_queue_unread(uint32_t dev, uint32_t queue, const uint32_t *refs,
			    uint32_t refs_len, uint32_t n)
{
	if (!fits(refs, refs_len, n))
		return -EFAULT;
	return bt_queue_unread(dev, queue, refs, n);
}

int32_t bt_ffi_tap_rx(uint32_t dev, uint32_t queue, uint32_t *refs,
		      uint32_t refs_len, uint32_t max)
{
	if (!fits(refs, refs_len, max))
		return -EFAULT;
	return bt_tap_rx(dev, queue, refs, max);
}

/* Histograms cross as arrays of 64-bit words: h_len words, 8 bytes each
 * (below 2^29 words, so the byte count cannot wrap 32 bits). */
static inline int hist_bytes(const uint64_t *h, uint32_t h_len, uint32_t *bytes)
{
	if (!h || h_len >= (1u << 29))
		return -EFAULT;
	*bytes = h_len * 8u;
	return 0;
}

int32_t bt_ffi_frames_latency(const uint32_t *refs, uint32_t refs_len,
			      uint32_t n, uint64_t *h, uint32_t h_len)
{
	uint32_t bytes;

	if (!fits(refs, refs_len, n) || hist_bytes(h, h_len, &bytes))
		return -EFAULT;
	return bt_frames_latency(refs, n, h, bytes);
}

int32_t bt_ffi_frames_latency_at(const uint32_t *refs, uint32_t refs_len,
				 uint32_t n, double now_ns, uint64_t *h,
				 uint32_t h_len)
{
	uint32_t bytes;

	if (!fits(refs, refs_len, n) || hist_bytes(h, h_len, &bytes))
		return -EFAULT;
	return bt_frames_latency_at(refs, n, now_ns, h, bytes);
}

int32_t bt_ffi_queue_consume(uint32_t dev, uint32_t queue, uint32_t *refs,
			     uint32_t refs_len, uint32_t max, uint64_t *h,
			     uint32_t h_len)
{
	uint32_t bytes = 0;

	if (!fits(refs, refs_len, max))
		return -EFAULT;
	/* No histogram (h NULL, h_len 0) is allowed: consume without one. */
	if ((h || h_len) && hist_bytes(h, h_len, &bytes))
		return -EFAULT;
	return bt_queue_consume(dev, queue, refs, max, h, bytes);
}

int32_t bt_ffi_devmap_xmit(const uint32_t *devs, uint32_t devs_len,
			   uint32_t ntargets, const uint32_t *refs,
			   uint32_t refs_len, const uint32_t *targets,
			   uint32_t targets_len, uint32_t n, uint32_t bulk,
			   uint32_t flags, int32_t cpu, uint32_t *counts,
			   uint32_t counts_len)
{
	if (!fits(devs, devs_len, ntargets) || !fits(refs, refs_len, n) ||
	    !fits(targets, targets_len, n) ||
	    !fits(counts, counts_len, (uint64_t)BT_DEVMAP_COUNTS * ntargets))
		return -EFAULT;
	return bt_devmap_xmit(devs, ntargets, refs, targets, n, bulk, flags,
			      cpu, counts);
}
