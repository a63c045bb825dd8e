/* SPDX-License-Identifier: MIT */
/*
 * TAP io_uring batches: one submit for a batch of reads or writes, every
 * completion reaped before the batch's frames are used again.
 */
#define _GNU_SOURCE
#include "tap_internal.h"

#ifdef BT_HAVE_LIBURING

/* Wait for at least one completion, then reap every completion posted,
 * one CQ head advance for the lot: each result (and, if asked, the time it
 * was reaped) goes under its user data, an index into res. Returns how
 * many were reaped, or a negative errno. Every request is RWF_NOWAIT, so
 * its completion is posted before the submit returns; the timeout is only
 * a net that keeps a broken ring from hanging a thread (and close, which
 * joins it): -ETIME then fails the ring. */
static int uring_reap(struct io_uring *ring, int32_t *res, uint64_t *when)
{
	struct __kernel_timespec ts = { .tv_sec = 2, .tv_nsec = 0 };
	struct io_uring_cqe *cqe;
	uint64_t now = 0;
	unsigned head, k = 0;
	int w;

	do
		w = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	while (w == -EINTR);
	if (w < 0)
		return w;
	if (when)
		now = bt_now_ns();
	io_uring_for_each_cqe(ring, head, cqe)
	{
		uint64_t i = io_uring_cqe_get_data64(cqe);

		if (i < TAP_MAX_BATCH) {
			res[i] = cqe->res;
			if (when)
				when[i] = now;
		}
		k++;
	}
	io_uring_cq_advance(ring, k);
	return (int)k;
}

/*
 * Submit the n SQEs prepared on ring (order[k]: user data of the k-th
 * prepared, an index into res) and reap a completion for every one the
 * kernel took. Submits until the submission queue is empty: a short submit
 * is followed by another, after reaping if the kernel is short of room.
 *
 * Returns 0, or a negative errno if the ring failed. Then res says what is
 * known of each entry: its result, URING_NOT_SENT (the kernel never saw it,
 * the caller may do it another way) or URING_PENDING (the kernel took it
 * but its completion could not be reaped: its buffer may still be in use
 * and must never be reused). A failed ring may still hold unsubmitted SQEs:
 * the caller must tear it down and not submit on it again.
 */
int tap_uring_run(struct io_uring *ring, const uint16_t *order, uint32_t n,
		  int32_t *res, uint64_t *when, uint64_t *submits)
{
	uint32_t sent = 0, reaped = 0;
	int err = 0;

	for (uint32_t k = 0; k < n; k++)
		res[order[k]] = URING_PENDING;
	while (sent < n) {
		int r = io_uring_submit(ring);

		if (r > 0) {
			sent += (uint32_t)r;
			(*submits)++;
			continue;
		}
		if (r == -EINTR)
			continue;
		/* Out of room for completions or short of kernel memory:
		 * reaping what is in flight makes room. */
		if ((r == -EAGAIN || r == -EBUSY) && reaped < sent) {
			int k = uring_reap(ring, res, when);

			if (k < 0) {
				err = k;
				break;
			}
			reaped += (uint32_t)k;
			continue;
		}
		err = r < 0 ? r : -EIO;
		break;
	}
	while (!err && reaped < sent) {
		int k = uring_reap(ring, res, when);

		if (k < 0)
			err = k;
		else
			reaped += (uint32_t)k;
	}
	/* SQEs are consumed in the order they were prepared. */
	for (uint32_t k = sent; k < n; k++)
		res[order[k]] = URING_NOT_SENT;
	return err;
}

/* Did the kernel refuse RWF_NOWAIT requests on this fd (an old kernel)? */
int tap_uring_unsupported(const int32_t *res, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (res[i] == -EOPNOTSUPP)
			return 1;
	return 0;
}
#endif
