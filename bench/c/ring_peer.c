/* SPDX-License-Identifier: MIT */
/*
 * ring_peer: our ring beside DPDK's rte_ring, measured in the same process,
 * the same run, with the same harness.
 *
 * Implementations (peer.h): bt_ring (our raw ring + lock, pointers),
 * bulktap_api (the public transmit path), and, when DPDK is installed,
 * dpdk_mpmc and dpdk_rts (rte_ring on plain memory, no EAL).
 *
 * Shape of a measured point, equal to bench/c/ring_bench.c:
 *   - 1 queue of 4096 slots, 2048 objects in flight (the pool), so the ring
 *     never fills and backpressure comes from the pool;
 *   - scenarios 1p1c (1 producer + 1 consumer), 2p1q (2 producers share the
 *     queue), 4p1q_2cores (4 producers + the consumer pinned to 2 CPUs);
 *   - single mode: producers take 16 objects from the pool, enqueue them one
 *     per call; bulk mode: take B, enqueue B in one call. The consumer always
 *     dequeues up to --consumer-burst (256) per call and returns them to the
 *     pool in one call. Only the enqueue granularity differs between modes.
 *   - every producer writes a 64-byte length into each object (touching its
 *     first line); the consumer reads it back.
 *   - latency: every --sample-every (1024) frames a producer stamps the first
 *     object of an enqueue with CLOCK_MONOTONIC; the consumer records
 *     dequeue time minus stamp in a log-linear histogram (32 sub-buckets per
 *     power of two, ~3% resolution). One clock read per 1024 frames on each
 *     side, so the sampling does not change the throughput figure. With
 *     2048 objects in flight this is latency under saturation (queueing
 *     included), the same for every implementation.
 *   - per run also: CPU time of the whole process (CLOCK_PROCESS_CPUTIME_ID,
 *     every thread) over the measured window, frames offered and dropped,
 *     enqueue calls per frame, producer lock acquisitions per frame (null
 *     for lockless rte_ring) and reader wake-ups per frame (null where the
 *     queue has no doorbell).
 *
 * Every run is one JSON line on stdout (type "run"); nothing is aggregated
 * here, the caller (bench/peers.ts) computes medians and spreads from the
 * raw repeats. Within a repeat the order of modes alternates and the order of
 * implementations rotates, so drift hits all alike.
 *
 * Usage: ring_peer [--quick] [--duration S] [--repeats N] [--bulk LIST]
 *                  [--impl LIST] [--scenario LIST] [--consumer-burst N]
 *                  [--sample-every N] [--list]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lat_hist.h"
#include "peer.h"

#define SINGLE_CHUNK 16
#define MAX_PRODUCERS 4
#define MAX_LIST 16

struct scenario {
	const char *name;
	int producers;
	int pin_two_cores;
};

static const struct scenario scenarios[] = {
	{ "1p1c", 1, 0 },
	{ "2p1q", 2, 0 },
	{ "4p1q_2cores", 4, 1 },
};
#define NSCEN (int)(sizeof(scenarios) / sizeof(scenarios[0]))

static const struct peer_impl *const all_impls[] = {
	&peer_bt_ring,
	&peer_bulktap_api,
#ifdef BT_PEER_HAVE_DPDK
	&peer_dpdk_mpmc,
	&peer_dpdk_rts,
#endif
};
#define NIMPL (int)(sizeof(all_impls) / sizeof(all_impls[0]))

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------- one run */

struct run {
	const struct peer_impl *impl;
	void *state;
	int bulk; /* 0 = single mode */
	int pin;
	int cpus[2];
	uint32_t consumer_burst;
	uint32_t sample_every;
	atomic_int go;
	atomic_int stop;
	atomic_int ready;
	/* results */
	uint64_t delivered;
	uint64_t bytes;
	struct lat_hist lat;
};

struct producer {
	alignas(64) struct run *run;
	int id;
	uint64_t offered;
	uint64_t dropped;
	uint64_t calls;
};

static void pin_self(struct run *r, int i)
{
	cpu_set_t set;

	if (!r->pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(r->cpus[i % 2], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void wait_go(struct run *r)
{
	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		sched_yield();
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct run *r = p->run;
	const struct peer_impl *im = r->impl;
	uintptr_t objs[PEER_MAX_BULK];
	uint32_t chunk = r->bulk ? (uint32_t)r->bulk : SINGLE_CHUNK;
	uint32_t since = 0;

	pin_self(r, p->id);
	wait_go(r);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint32_t got = im->alloc(r->state, objs, chunk);

		if (!got) {
			sched_yield(); /* everything is in flight */
			continue;
		}
		for (uint32_t i = 0; i < got; i++)
			*im->fields(r->state, objs[i]).len = PEER_FRAME_LEN;
		p->offered += got;
		uint32_t step = r->bulk ? got : 1;
		for (uint32_t i = 0; i < got; i += step) {
			uint32_t n = got - i < step ? got - i : step;
			if (since >= r->sample_every) {
				*im->fields(r->state, objs[i]).stamp = now_ns();
				since = 0;
			}
			since += n;
			uint32_t ok = im->enqueue(r->state, &objs[i], n,
						  i + n == got, p->id);
			p->calls++;
			if (ok < n) {
				p->dropped += n - ok;
				if (!im->frees_refused) {
					for (uint32_t k = i + ok; k < i + n; k++)
						*im->fields(r->state, objs[k])
							 .stamp = 0;
					im->put(r->state, &objs[i + ok],
						n - ok);
				}
			}
		}
	}
	return NULL;
}

static void consume(struct run *r, uintptr_t *objs, uint32_t n)
{
	const struct peer_impl *im = r->impl;
	uint64_t t = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct peer_fields f = im->fields(r->state, objs[i]);
		r->bytes += *f.len;
		if (*f.stamp) {
			if (!t)
				t = now_ns();
			lat_hist_add(&r->lat, t > *f.stamp ? t - *f.stamp : 0);
			*f.stamp = 0;
		}
	}
	im->put(r->state, objs, n);
}

static void *consumer_main(void *arg)
{
	struct run *r = arg;
	const struct peer_impl *im = r->impl;
	uintptr_t objs[PEER_MAX_BULK];
	uint64_t total = 0;

	pin_self(r, 1);
	wait_go(r);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint32_t n = im->dequeue(r->state, objs, r->consumer_burst);

		if (n) {
			consume(r, objs, n);
			total += n;
		} else {
			sched_yield(); /* let a producer have the core */
		}
	}
	r->delivered = total;
	/* Drain so the pool is whole before teardown. */
	for (;;) {
		uint32_t n = im->dequeue(r->state, objs, r->consumer_burst);
		if (!n)
			break;
		consume(r, objs, n);
	}
	return NULL;
}

struct options {
	double duration;
	int repeats;
	int bulks[MAX_LIST];
	int nbulk;
	const struct peer_impl *impls[MAX_LIST];
	int nimpl;
	int scen[NSCEN];
	int nscen;
	uint32_t consumer_burst;
	uint32_t sample_every;
};

static int run_point(const struct options *o, const struct peer_impl *im,
		     const struct scenario *sc, int bulk, const int cpus[2],
		     int repeat, int emit)
{
	static struct run r; /* large (histogram): not on the stack */
	pthread_t prod[MAX_PRODUCERS], cons;
	struct producer pa[MAX_PRODUCERS];
	uint64_t t0, t1, cpu0, cpu1;
	struct peer_counters ctr = { 0, 0, 0, 0 };
	int rc;

	memset(&r, 0, sizeof(r));
	memset(pa, 0, sizeof(pa));
	r.impl = im;
	r.bulk = bulk;
	r.pin = sc->pin_two_cores;
	r.cpus[0] = cpus[0];
	r.cpus[1] = cpus[1];
	r.consumer_burst = o->consumer_burst;
	r.sample_every = o->sample_every;
	rc = im->setup(&r.state);
	if (rc < 0) {
		fprintf(stderr, "ring_peer: %s setup failed: %s\n", im->name,
			strerror(-rc));
		return -1;
	}
	pthread_create(&cons, NULL, consumer_main, &r);
	for (int i = 0; i < sc->producers; i++) {
		pa[i].run = &r;
		pa[i].id = i;
		pthread_create(&prod[i], NULL, producer_main, &pa[i]);
	}
	while (atomic_load(&r.ready) < sc->producers + 1)
		sched_yield();
	cpu0 = process_cpu_ns();
	t0 = now_ns();
	atomic_store_explicit(&r.go, 1, memory_order_release);
	struct timespec ts = { (time_t)o->duration,
			       (long)((o->duration - (double)(time_t)o->duration) *
				      1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, 1);
	t1 = now_ns();
	cpu1 = process_cpu_ns();
	for (int i = 0; i < sc->producers; i++)
		pthread_join(prod[i], NULL);
	pthread_join(cons, NULL);
	if (im->counters)
		im->counters(r.state, &ctr);
	im->teardown(r.state);

	uint64_t offered = 0, dropped = 0, calls = 0;
	for (int i = 0; i < sc->producers; i++) {
		offered += pa[i].offered;
		dropped += pa[i].dropped;
		calls += pa[i].calls;
	}
	if (!emit)
		return 0;
	double secs = (double)(t1 - t0) / 1e9;
	double mpps = (double)r.delivered / secs / 1e6;
	if (r.bytes / PEER_FRAME_LEN < r.delivered) {
		fprintf(stderr, "ring_peer: %s lost lengths\n", im->name);
		return -1;
	}
	/* Producer lock acquisitions: one per enqueue call where the
	 * implementation takes exactly one (bt_ring), the library's own count
	 * where it keeps one (bulktap_api), null where there is no lock
	 * (rte_ring is lockless). Wake-ups: null without a doorbell. */
	double denom = offered ? (double)offered : 1;
	char locks[32] = "null", wakeups[32] = "null";
	if (im->lock_per_call)
		snprintf(locks, sizeof(locks), "%.5f", (double)calls / denom);
	else if (ctr.has_locks)
		snprintf(locks, sizeof(locks), "%.5f", (double)ctr.locks / denom);
	if (ctr.has_wakeups)
		snprintf(wakeups, sizeof(wakeups), "%.6f",
			 (double)ctr.wakeups / denom);
	printf("{\"type\":\"run\",\"impl\":\"%s\",\"scenario\":\"%s\","
	       "\"producers\":%d,\"pinned\":%s,\"mode\":\"%s\",\"bulk\":%d,"
	       "\"repeat\":%d,\"seconds\":%.6f,\"delivered\":%llu,"
	       "\"mpps\":%.4f,\"ns_per_frame\":%.3f,\"calls_per_frame\":%.5f,"
	       "\"locks_per_frame\":%s,\"wakeups_per_frame\":%s,"
	       "\"offered\":%llu,\"dropped\":%llu,\"drop_rate\":%.6f,"
	       "\"cpu_ns\":%llu,\"wall_ns\":%llu,\"lat\":{",
	       im->name, sc->name, sc->producers,
	       sc->pin_two_cores ? "true" : "false", bulk ? "bulk" : "single",
	       bulk ? bulk : 1, repeat, secs, (unsigned long long)r.delivered,
	       mpps, mpps > 0 ? 1e3 / mpps : 0,
	       offered ? (double)calls / (double)offered : 0, locks, wakeups,
	       (unsigned long long)offered, (unsigned long long)dropped,
	       offered ? (double)dropped / (double)offered : 0,
	       (unsigned long long)(cpu1 - cpu0), (unsigned long long)(t1 - t0));
	lat_hist_print(&r.lat, stdout);
	printf("}}\n");
	fflush(stdout);
	return 0;
}

/* The first two CPUs this process may run on. */
static void two_cpus(int cpus[2])
{
	cpu_set_t set;
	int k = 0;

	cpus[0] = 0;
	cpus[1] = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
		if (CPU_ISSET(c, &set))
			cpus[k++] = c;
	if (k == 1)
		cpus[1] = cpus[0];
}

static void usage(const char *why)
{
	fprintf(stderr,
		"ring_peer: %s\nusage: ring_peer [--quick] [--duration S] "
		"[--repeats N] [--bulk 16|1,4,16] [--impl LIST] "
		"[--scenario LIST] [--consumer-burst N] [--sample-every N] "
		"[--list]\n",
		why);
	exit(2);
}

static int parse_list(char *s, char **out, int max)
{
	char *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(s, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			usage("list too long");
		out[n++] = tok;
	}
	return n;
}

int main(int argc, char **argv)
{
	struct options o = { .duration = 1.0,
			     .repeats = 5,
			     .bulks = { 16 },
			     .nbulk = 1,
			     .consumer_burst = 256,
			     .sample_every = 1024 };
	char *items[MAX_LIST];
	int cpus[2];

	for (int i = 0; i < NIMPL; i++)
		o.impls[o.nimpl++] = all_impls[i];
	for (int i = 0; i < NSCEN; i++)
		o.scen[o.nscen++] = i;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int more = i + 1 < argc;
		if (!strcmp(a, "--quick")) {
			o.duration = 0.2;
			o.repeats = 3;
		} else if (!strcmp(a, "--list")) {
			for (int k = 0; k < NIMPL; k++)
				printf("%s\t%s\n", all_impls[k]->name,
				       all_impls[k]->describe);
			return 0;
		} else if (!strcmp(a, "--duration") && more) {
			o.duration = atof(argv[++i]);
		} else if (!strcmp(a, "--repeats") && more) {
			o.repeats = atoi(argv[++i]);
		} else if (!strcmp(a, "--consumer-burst") && more) {
			o.consumer_burst = (uint32_t)atoi(argv[++i]);
		} else if (!strcmp(a, "--sample-every") && more) {
			o.sample_every = (uint32_t)atoi(argv[++i]);
		} else if (!strcmp(a, "--bulk") && more) {
			int n = parse_list(argv[++i], items, MAX_LIST);
			o.nbulk = n;
			for (int k = 0; k < n; k++) {
				o.bulks[k] = atoi(items[k]);
				if (o.bulks[k] < 1 ||
				    o.bulks[k] > PEER_MAX_BULK)
					usage("bulk must be 1..256");
			}
		} else if (!strcmp(a, "--impl") && more) {
			int n = parse_list(argv[++i], items, MAX_LIST);
			o.nimpl = 0;
			for (int k = 0; k < n; k++) {
				int found = 0;
				for (int m = 0; m < NIMPL; m++)
					if (!strcmp(items[k],
						    all_impls[m]->name)) {
						o.impls[o.nimpl++] =
							all_impls[m];
						found = 1;
					}
				if (!found) {
					fprintf(stderr,
						"ring_peer: no implementation "
						"%s in this build (--list)\n",
						items[k]);
					return 2;
				}
			}
		} else if (!strcmp(a, "--scenario") && more) {
			int n = parse_list(argv[++i], items, MAX_LIST);
			o.nscen = 0;
			for (int k = 0; k < n; k++) {
				int found = 0;
				for (int m = 0; m < NSCEN; m++)
					if (!strcmp(items[k],
						    scenarios[m].name)) {
						o.scen[o.nscen++] = m;
						found = 1;
					}
				if (!found)
					usage("unknown scenario");
			}
		} else {
			usage("unknown or incomplete argument");
		}
	}
	if (o.duration <= 0 || o.repeats < 1 || !o.nbulk || !o.nimpl ||
	    !o.nscen || o.consumer_burst < 1 ||
	    o.consumer_burst > PEER_MAX_BULK || o.sample_every < 1)
		usage("bad value");
	two_cpus(cpus);

	int nmodes = 1 + o.nbulk;
	printf("{\"type\":\"header\",\"bench\":\"ring_peer\","
	       "\"online_cpus\":%ld,\"pinned_cpus\":[%d,%d],"
	       "\"duration_s\":%.3f,\"repeats\":%d,\"frame_len\":%d,"
	       "\"ring_size\":%d,\"objects_in_flight\":%d,"
	       "\"single_alloc_chunk\":%d,\"consumer_burst\":%u,"
	       "\"sample_every\":%u,\"total_runs\":%d,\"impls\":[",
	       sysconf(_SC_NPROCESSORS_ONLN), cpus[0], cpus[1], o.duration,
	       o.repeats, PEER_FRAME_LEN, PEER_RING_SIZE, PEER_POOL_OBJECTS,
	       SINGLE_CHUNK, o.consumer_burst, o.sample_every,
	       o.repeats * o.nscen * nmodes * o.nimpl);
	for (int k = 0; k < o.nimpl; k++)
		printf("%s{\"name\":\"%s\",\"describe\":\"%s\"}", k ? "," : "",
		       o.impls[k]->name, o.impls[k]->describe);
	printf("]}\n");
	fflush(stdout);

	/* Warm up caches, page tables and thread slots (not recorded). */
	{
		struct options w = o;
		w.duration = o.duration / 4;
		for (int k = 0; k < o.nimpl; k++)
			if (run_point(&w, o.impls[k], &scenarios[0], 16, cpus,
				      -1, 0))
				return 1;
	}

	/* Modes outermost, then scenarios, implementations innermost: the
	 * runs a ratio compares (ours vs DPDK in one placement, 4 vs 2
	 * producers of one implementation) run close together, so the
	 * machine's drift hits both alike. Even repeats go single first and
	 * in scenario order; odd repeats reverse both. */
	for (int r = 0; r < o.repeats; r++) {
		for (int k = 0; k < nmodes; k++) {
			int m = r % 2 ? nmodes - 1 - k : k;
			int bulk = m == 0 ? 0 : o.bulks[m - 1];
			for (int i = 0; i < o.nscen; i++) {
				int s = r % 2 ? o.nscen - 1 - i : i;
				for (int j = 0; j < o.nimpl; j++) {
					/* Rotate which implementation goes
					 * first. */
					const struct peer_impl *im =
						o.impls[(j + r + k) % o.nimpl];
					if (run_point(&o, im,
						      &scenarios[o.scen[s]],
						      bulk, cpus, r, 1))
						return 1;
				}
			}
		}
	}
	printf("{\"type\":\"done\"}\n");
	return 0;
}
