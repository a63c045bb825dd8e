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

#include "peer.h"

#define SINGLE_CHUNK 16
#define MAX_PRODUCERS 4
#define MAX_LIST 16
#define HIST_SUB 32
#define HIST_BUCKETS (HIST_SUB + 59 * HIST_SUB)

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

/* ------------------------------------------------------------ histogram */

static int hist_index(uint64_t v)
{
	if (v < HIST_SUB)
		return (int)v;
	int e = 63 - __builtin_clzll(v); /* >= 5 */
	int m = (int)(v >> (e - 5)); /* 32..63 */
	int i = HIST_SUB + (e - 5) * HIST_SUB + (m - HIST_SUB);
	return i < HIST_BUCKETS ? i : HIST_BUCKETS - 1;
}

/* Middle of a bucket, in ns. */
static double hist_value(int i)
{
	if (i < HIST_SUB)
		return i;
	int e = (i - HIST_SUB) / HIST_SUB + 5;
	uint64_t m = (uint64_t)((i - HIST_SUB) % HIST_SUB + HIST_SUB);
	double lo = (double)(m << (e - 5));
	return lo + (double)(1ull << (e - 5)) / 2;
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
	uint64_t hist[HIST_BUCKETS];
	uint64_t samples;
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
			uint64_t d = t > *f.stamp ? t - *f.stamp : 0;
			r->hist[hist_index(d)]++;
			r->samples++;
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
	uint64_t t0, t1;
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
	t0 = now_ns();
	atomic_store_explicit(&r.go, 1, memory_order_release);
	struct timespec ts = { (time_t)o->duration,
			       (long)((o->duration - (double)(time_t)o->duration) *
				      1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, 1);
	t1 = now_ns();
	for (int i = 0; i < sc->producers; i++)
		pthread_join(prod[i], NULL);
	pthread_join(cons, NULL);
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
	printf("{\"type\":\"run\",\"impl\":\"%s\",\"scenario\":\"%s\","
	       "\"producers\":%d,\"pinned\":%s,\"mode\":\"%s\",\"bulk\":%d,"
	       "\"repeat\":%d,\"seconds\":%.6f,\"delivered\":%llu,"
	       "\"mpps\":%.4f,\"ns_per_frame\":%.3f,\"calls_per_frame\":%.5f,"
	       "\"drop_rate\":%.6f,\"lat\":{\"samples\":%llu",
	       im->name, sc->name, sc->producers,
	       sc->pin_two_cores ? "true" : "false", bulk ? "bulk" : "single",
	       bulk ? bulk : 1, repeat, secs, (unsigned long long)r.delivered,
	       mpps, mpps > 0 ? 1e3 / mpps : 0,
	       offered ? (double)calls / (double)offered : 0,
	       offered ? (double)dropped / (double)offered : 0,
	       (unsigned long long)r.samples);
	if (r.samples) {
		/* HDR-style percentile curve: 0, 50, 75, 87.5, ... % and the
		 * largest sample. */
		static const double want[] = { 0.5, 0.99, 0.999 };
		double at[3] = { 0, 0, 0 };
		uint64_t seen = 0;
		int wi = 0, maxi = 0;
		for (int i = 0; i < HIST_BUCKETS; i++) {
			if (!r.hist[i])
				continue;
			maxi = i;
			seen += r.hist[i];
			while (wi < 3 &&
			       (double)seen >= want[wi] * (double)r.samples)
				at[wi++] = hist_value(i);
		}
		printf(",\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f,"
		       "\"curve\":[",
		       at[0], at[1], at[2], hist_value(maxi));
		seen = 0;
		int k = 0, first = 1, bi = 0;
		for (;;) {
			double q = 1.0 - 1.0 / (double)(1ull << k);
			if (q * (double)r.samples > (double)r.samples - 1 ||
			    k > 20)
				break;
			while (bi < HIST_BUCKETS &&
			       (double)(seen + r.hist[bi]) <=
				       q * (double)r.samples) {
				seen += r.hist[bi];
				bi++;
			}
			if (bi >= HIST_BUCKETS)
				break;
			printf("%s[%.6f,%.0f]", first ? "" : ",", q * 100,
			       hist_value(bi));
			first = 0;
			k++;
		}
		printf("%s[100,%.0f]]", first ? "" : ",", hist_value(maxi));
	}
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

	for (int r = 0; r < o.repeats; r++) {
		for (int s = 0; s < o.nscen; s++) {
			for (int k = 0; k < nmodes; k++) {
				/* Even repeats: single first; odd: bulk
				 * first. */
				int m = r % 2 ? nmodes - 1 - k : k;
				int bulk = m == 0 ? 0 : o.bulks[m - 1];
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
