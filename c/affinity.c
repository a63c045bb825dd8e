/* SPDX-License-Identifier: MIT */
/*
 * CPU pinning for scheduler Workers. A Deno Worker runs on its own OS
 * thread and synchronous FFI calls run on that thread, so pinning "this
 * thread" from inside the Worker pins the Worker.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>

#include "bulktap.h"

int32_t bt_pin_thread(int32_t cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* pid 0 is the calling thread, not the whole process. */
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}
