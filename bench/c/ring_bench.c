/* SPDX-License-Identifier: MIT */
/*
 * ring_bench: throughput of the real transmit path (bt_pool_alloc ->
 * bt_xmit -> bt_queue_read -> bt_pool_put), one lock per frame versus one
 * lock per bulk.
 *
 * Scenarios (all producers share ONE queue, as CPUs do when cpu % nqueues
 * collides, and one consumer thread reads it):
 *   1p1c          1 producer  + 1 consumer
 *   2p1q          2 producers + 1 consumer
 *   4p1q_2cores   4 producers + 1 consumer, all pinned to 2 cores
 *                 (oversubscribed: a lock holder can be preempted)
 *
 * Modes:
 *   single  every bt_xmit carries 1 frame: one producer-lock acquisition
 *           per frame (the original per-packet design);
 *   bulk    every bt_xmit carries B frames (default 16; --bulk 1,8,16,64
 *           sweeps).
 * Only the xmit granularity differs between modes: producers allocate in
 * chunks of 16 in single mode and B in bulk mode, the consumer always reads
 * up to 256 and returns them with one bt_pool_put, and the last xmit of
 * every chunk carries BT_XMIT_FLUSH (end of a "poll cycle").
 *
 * Every point is measured --repeats times (>= 5); within a repeat every mode
 * runs every scenario back to back, and odd repeats reverse the order of
 * modes and of scenarios, so slow drift (thermal, noisy neighbours) hits
 * single and bulk, and 2 and 4 producers, alike.
 *
 * Per run: Mpps, producer lock acquisitions, reader wake-ups and drops per
 * frame offered (from the device's counters), the CPU time of the whole
 * process over the measured window (CLOCK_PROCESS_CPUTIME_ID), and
 * enqueue -> dequeue latency of sampled frames: every SAMPLE_EVERY frames a
 * producer posts one frame's ref and the time just before its bt_xmit in
 * its mailbox; the consumer, which already holds each batch's refs, compares
 * them with the posted refs and records read time minus posted time in a
 * log-linear histogram. No frame is touched for this and one clock read is
 * taken per sample on each side, so sampling does not change the figure.
 *
 * Output: one JSON object per line on stdout (a header, one "run" line per
 * run with every metric, one line per point with medians, the 4p/2p ratios
 * for single and bulk); a readable table on stderr.
 *
 * Usage: ring_bench [--quick] [--duration S] [--repeats N] [--bulk LIST]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bulktap.h"
#include "lat_hist.h"

/* Fewer frames than ring slots: the ring can never fill, so nothing is
 * dropped and backpressure comes from the pool (a producer that finds it
 * empty yields until the consumer returns frames). With a ring smaller
 * than the pool, producers on a shared core would keep getting their
 * dropped frames straight back, hog the CPU and starve the consumer, and
 * the figure would measure the scheduler, not the transmit path. */
#define POOL_FRAMES 2048
#define FRAME_SIZE 128
#define HEADROOM 64 /* BT_META_SIZE */
#define RING_SIZE 4096
#define FRAME_LEN 64
#define SINGLE_CHUNK 16
#define READ_MAX 256
#define MAX_PRODUCERS 4
#define MAX_BULKS 8
#define MAX_REPEATS 64
#define SAMPLE_EVERY 1024
#define NO_SAMPLE UINT32_MAX

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

/* ------------------------------------------------------------------ */

/* One producer's latency sample in flight: the ref it posted and when. */
struct sample_box {
	alignas(64) _Atomic uint32_t ref; /* NO_SAMPLE when empty */
	uint64_t t_ns;
};

struct point_run {
	struct sample_box box[MAX_PRODUCERS];
	int producers;
	int32_t pool;
	int32_t dev;
	uint8_t *base;
	int bulk; /* 0 = single mode */
	int pin;
	int cpus[2];
	atomic_int go;
	atomic_int stop;
	atomic_int ready;
	uint64_t delivered; /* consumer only */
	struct lat_hist lat; /* consumer only */
};

static void pin_self(struct point_run *r, int i)
{
	cpu_set_t set;

	if (!r->pin)
		return;
	CPU_ZERO(&set);
	CPU_SET(r->cpus[i % 2], &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void wait_go(struct point_run *r)
{
	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		sched_yield();
}

struct producer_arg {
	struct point_run *run;
	int id;
};

static void *producer_main(void *arg)
{
	struct producer_arg *pa = arg;
	struct point_run *r = pa->run;
	uint32_t refs[BT_MAX_BULK];
	uint32_t chunk = r->bulk ? (uint32_t)r->bulk : SINGLE_CHUNK;
	struct sample_box *box = &r->box[pa->id];
	uint32_t since = 0;

	pin_self(r, pa->id);
	wait_go(r);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		int32_t got = bt_pool_alloc((uint32_t)r->pool, refs, chunk);

		if (got <= 0) {
			sched_yield(); /* everything is in flight */
			continue;
		}
		/* A 64-byte packet: set its length (touches the frame's
		 * first line, as a real producer would). */
		for (int32_t i = 0; i < got; i++)
			((struct bt_frame_meta *)(r->base +
						  (size_t)(refs[i] &
							   BT_REF_INDEX_MASK) *
							  FRAME_SIZE))
				->len = FRAME_LEN;
		/* Post the first frame of this chunk as a latency sample
		 * once SAMPLE_EVERY frames have gone by and the last sample
		 * was taken. Acquire pairs with the consumer's release of
		 * NO_SAMPLE: its read of t_ns is done before we overwrite
		 * it. The release store publishes t_ns before the ref; the
		 * ref itself reaches the consumer through the ring, whose
		 * release/acquire orders this store before its read. */
		int sampled = 0;
		since += (uint32_t)got;
		if (since >= SAMPLE_EVERY &&
		    atomic_load_explicit(&box->ref, memory_order_acquire) ==
			    NO_SAMPLE) {
			box->t_ns = bt_now_ns();
			atomic_store_explicit(&box->ref, refs[0],
					      memory_order_release);
			since = 0;
			sampled = 1;
		}
		int32_t sent0;
		if (r->bulk) {
			sent0 = bt_xmit((uint32_t)r->dev, refs, (uint32_t)got,
					BT_XMIT_FLUSH, pa->id);
		} else {
			sent0 = bt_xmit((uint32_t)r->dev, &refs[0], 1,
					got == 1 ? BT_XMIT_FLUSH : 0, pa->id);
			for (int32_t i = 1; i < got; i++)
				bt_xmit((uint32_t)r->dev, &refs[i], 1,
					i == got - 1 ? BT_XMIT_FLUSH : 0,
					pa->id);
		}
		/* A refused sampled frame is back in the pool and will never
		 * be read: withdraw the sample (the ring is larger than the
		 * pool, so this does not happen, but a stuck box would stop
		 * sampling for the rest of the run). */
		if (sampled && sent0 <= 0)
			atomic_store_explicit(&box->ref, NO_SAMPLE,
					      memory_order_relaxed);
	}
	return NULL;
}

/* Record posted samples found among the n refs just read. The acquire load
 * of a box's ref pairs with the producer's release store, so t_ns is the
 * producer's; the release of NO_SAMPLE hands the box back. */
static void take_samples(struct point_run *r, const uint32_t *refs, int32_t n)
{
	uint64_t now = 0;

	for (int p = 0; p < r->producers; p++) {
		struct sample_box *box = &r->box[p];
		uint32_t want =
			atomic_load_explicit(&box->ref, memory_order_acquire);

		if (want == NO_SAMPLE)
			continue;
		for (int32_t i = 0; i < n; i++) {
			if (refs[i] != want)
				continue;
			if (!now)
				now = bt_now_ns();
			lat_hist_add(&r->lat,
				     now > box->t_ns ? now - box->t_ns : 0);
			atomic_store_explicit(&box->ref, NO_SAMPLE,
					      memory_order_release);
			break;
		}
	}
}

static void *consumer_main(void *arg)
{
	struct point_run *r = arg;
	uint32_t refs[READ_MAX];
	uint64_t n_total = 0;

	pin_self(r, 1);
	wait_go(r);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		int32_t n = bt_queue_read((uint32_t)r->dev, 0, refs, READ_MAX);

		if (n > 0) {
			take_samples(r, refs, n);
			bt_pool_put((uint32_t)r->pool, refs, (uint32_t)n, NULL,
				    0);
			n_total += (uint64_t)n;
		} else {
			sched_yield(); /* let a producer have the core */
		}
	}
	r->delivered = n_total;
	/* Drain so the pool is whole for the next point. */
	for (;;) {
		int32_t n = bt_queue_read((uint32_t)r->dev, 0, refs, READ_MAX);
		if (n <= 0)
			break;
		bt_pool_put((uint32_t)r->pool, refs, (uint32_t)n, NULL, 0);
	}
	return NULL;
}

struct sample {
	double mpps;
	double locks_per_frame;
	double drop_rate;
};

static double now_s(void)
{
	return (double)bt_now_ns() / 1e9;
}

static int run_point(int32_t pool, const struct scenario *sc, int bulk,
		     double duration, const int cpus[2], struct sample *out,
		     int repeat)
{
	static struct point_run r; /* large (histogram): not on the stack */
	pthread_t prod[MAX_PRODUCERS], cons;
	struct producer_arg pa[MAX_PRODUCERS];
	uint64_t st[BT_DS_COUNT];
	double t0, t1;
	uint64_t cpu0, cpu1;

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < MAX_PRODUCERS; i++)
		atomic_init(&r.box[i].ref, NO_SAMPLE);
	r.producers = sc->producers;
	r.pool = pool;
	r.base = bt_pool_base((uint32_t)pool);
	r.bulk = bulk;
	r.pin = sc->pin_two_cores;
	r.cpus[0] = cpus[0];
	r.cpus[1] = cpus[1];
	r.dev = bt_dev_create((uint32_t)pool, 1, RING_SIZE);
	if (r.dev < 0) {
		fprintf(stderr, "bt_dev_create: %d\n", r.dev);
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
	t0 = now_s();
	atomic_store_explicit(&r.go, 1, memory_order_release);
	struct timespec ts = { (time_t)duration,
			       (long)((duration - (double)(time_t)duration) *
				      1e9) };
	nanosleep(&ts, NULL);
	atomic_store(&r.stop, 1);
	t1 = now_s();
	cpu1 = process_cpu_ns();
	for (int i = 0; i < sc->producers; i++)
		pthread_join(prod[i], NULL);
	pthread_join(cons, NULL);

	bt_dev_stats((uint32_t)r.dev, st, BT_DS_COUNT);
	out->mpps = (double)r.delivered / (t1 - t0) / 1e6;
	/* Per frame offered to xmit: a dropped frame cost a lock too. */
	out->locks_per_frame =
		st[BT_DS_TX_PACKETS] + st[BT_DS_TX_DROPPED] ?
			(double)st[BT_DS_LOCK_ACQUISITIONS] /
				(double)(st[BT_DS_TX_PACKETS] +
					 st[BT_DS_TX_DROPPED]) :
			0;
	out->drop_rate = st[BT_DS_TX_PACKETS] + st[BT_DS_TX_DROPPED] ?
				 (double)st[BT_DS_TX_DROPPED] /
					 (double)(st[BT_DS_TX_PACKETS] +
						  st[BT_DS_TX_DROPPED]) :
				 0;
	bt_dev_close((uint32_t)r.dev);
	if (repeat < 0)
		return 0; /* warm-up: not reported */

	uint64_t offered = st[BT_DS_TX_PACKETS] + st[BT_DS_TX_DROPPED];
	double per = offered ? (double)offered : 1;
	printf("{\"type\":\"run\",\"scenario\":\"%s\",\"mode\":\"%s\","
	       "\"bulk\":%d,\"producers\":%d,\"repeat\":%d,"
	       "\"seconds\":%.6f,\"delivered\":%llu,\"mpps\":%.4f,"
	       "\"offered\":%llu,\"dropped\":%llu,\"drop_rate\":%.6f,"
	       "\"calls_per_frame\":%.5f,\"locks_per_frame\":%.5f,"
	       "\"wakeups_per_frame\":%.6f,\"cpu_ns\":%llu,\"wall_ns\":%llu,"
	       "\"lat\":{",
	       sc->name, bulk ? "bulk" : "single", bulk ? bulk : 1,
	       sc->producers, repeat, t1 - t0,
	       (unsigned long long)r.delivered, out->mpps,
	       (unsigned long long)offered,
	       (unsigned long long)st[BT_DS_TX_DROPPED], out->drop_rate,
	       (double)st[BT_DS_XMIT_CALLS] / per,
	       (double)st[BT_DS_LOCK_ACQUISITIONS] / per,
	       (double)st[BT_DS_WAKEUPS_SENT] / per,
	       (unsigned long long)(cpu1 - cpu0),
	       (unsigned long long)((t1 - t0) * 1e9));
	lat_hist_print(&r.lat, stdout);
	printf("}}\n");
	fflush(stdout);
	return 0;
}

/* ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	double tmp[MAX_REPEATS];

	memcpy(tmp, v, sizeof(double) * (size_t)n);
	qsort(tmp, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double vmax(const double *v, int n)
{
	double m = v[0];
	for (int i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
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

static void usage(void)
{
	fprintf(stderr, "usage: ring_bench [--quick] [--duration S] "
			"[--repeats N] [--bulk 16 | --bulk 1,8,16,64]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double duration = 1.0;
	int repeats = 5;
	int bulks[MAX_BULKS] = { 16 };
	int nbulk = 1;
	int cpus[2];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick")) {
			duration = 0.2;
		} else if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
			duration = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) {
			repeats = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--bulk") && i + 1 < argc) {
			char *s = argv[++i], *tok, *save = NULL;
			nbulk = 0;
			for (tok = strtok_r(s, ",", &save); tok && nbulk < MAX_BULKS;
			     tok = strtok_r(NULL, ",", &save))
				bulks[nbulk++] = atoi(tok);
		} else {
			usage();
		}
	}
	if (duration <= 0 || repeats < 1 || repeats > MAX_REPEATS || !nbulk)
		usage();
	for (int b = 0; b < nbulk; b++)
		if (bulks[b] < 1 || bulks[b] > BT_MAX_BULK)
			usage();
	if (repeats < 5)
		fprintf(stderr, "note: fewer than 5 repeats; spread is not "
				"meaningful\n");
	two_cpus(cpus);

	int32_t pool = bt_pool_create(POOL_FRAMES, FRAME_SIZE, HEADROOM);
	if (pool < 0) {
		fprintf(stderr, "bt_pool_create: %d\n", pool);
		return 1;
	}

	/* mode index 0 = single, 1..nbulk = bulk sizes */
	int nmodes = 1 + nbulk;
	static struct sample res[NSCEN][1 + MAX_BULKS][MAX_REPEATS];

	printf("{\"type\":\"header\",\"bench\":\"ring_bench\",\"online_cpus\":%ld,\"pinned_cpus\":"
	       "[%d,%d],\"duration_s\":%.3f,\"repeats\":%d,\"frame_len\":%d,"
	       "\"ring_size\":%d,\"pool_frames\":%d,\"single_alloc_chunk\":%d,"
	       "\"read_max\":%d,\"sample_every\":%d,\"total_runs\":%d}\n",
	       sysconf(_SC_NPROCESSORS_ONLN), cpus[0], cpus[1], duration,
	       repeats, FRAME_LEN, RING_SIZE, POOL_FRAMES, SINGLE_CHUNK,
	       READ_MAX, SAMPLE_EVERY, repeats * NSCEN * (1 + nbulk));
	fflush(stdout);

	/* Warm up caches, page tables and the thread slots (not recorded). */
	{
		struct sample s;
		run_point(pool, &scenarios[0], 16, duration / 4, cpus, &s,
			  -1);
	}

	/* Scenarios innermost: the runs a ratio compares (4p vs 2p of one
	 * mode) are back to back, so the machine's slow drift and its
	 * noisy neighbours' phases hit both alike. Even repeats go single
	 * first and 1p1c first; odd repeats reverse both orders. */
	for (int r = 0; r < repeats; r++) {
		for (int k = 0; k < nmodes; k++) {
			int m = r % 2 ? nmodes - 1 - k : k;
			int bulk = m == 0 ? 0 : bulks[m - 1];
			for (int j = 0; j < NSCEN; j++) {
				int s = r % 2 ? NSCEN - 1 - j : j;
				if (run_point(pool, &scenarios[s], bulk,
					      duration, cpus, &res[s][m][r], r))
					return 1;
			}
		}
	}

	/* The ratio uses bulk 16 (the devmap bulk size) if it was measured,
	 * else the largest bulk of the sweep. */
	int ratio_bulk_idx = 1;
	for (int b = 0; b < nbulk; b++)
		if (bulks[b] > bulks[ratio_bulk_idx - 1])
			ratio_bulk_idx = b + 1;
	for (int b = 0; b < nbulk; b++)
		if (bulks[b] == 16)
			ratio_bulk_idx = b + 1;

	fprintf(stderr, "%-12s %-6s %5s %8s %8s %8s %8s %9s %7s\n", "scenario",
		"mode", "bulk", "Mpps", "min", "max", "ns/frm", "locks/frm",
		"drop%");
	for (int s = 0; s < NSCEN; s++) {
		for (int m = 0; m < nmodes; m++) {
			double mpps[MAX_REPEATS], locks[MAX_REPEATS],
				drops[MAX_REPEATS];
			int bulk = m == 0 ? 1 : bulks[m - 1];

			for (int r = 0; r < repeats; r++) {
				mpps[r] = res[s][m][r].mpps;
				locks[r] = res[s][m][r].locks_per_frame;
				drops[r] = res[s][m][r].drop_rate;
			}
			double med = median(mpps, repeats);
			double lpf = median(locks, repeats);
			double drop = median(drops, repeats);
			printf("{\"type\":\"point\",\"scenario\":\"%s\","
			       "\"mode\":\"%s\",\"bulk\":%d,"
			       "\"threads\":%d,\"producers\":%d,\"mpps\":%.3f,"
			       "\"ns_per_frame\":%.2f,\"locks_per_frame\":%.4f,"
			       "\"drop_rate\":%.4f,\"repeats\":%d,\"median\":%.3f,"
			       "\"min\":%.3f,\"max\":%.3f,\"runs\":[",
			       scenarios[s].name, m == 0 ? "single" : "bulk", bulk,
			       scenarios[s].producers + 1, scenarios[s].producers,
			       med, med > 0 ? 1e3 / med : 0, lpf, drop, repeats,
			       med, vmin(mpps, repeats), vmax(mpps, repeats));
			/* Every raw repeat, in run order, for the report. */
			for (int r = 0; r < repeats; r++)
				printf("%s{\"mpps\":%.3f,\"drop_rate\":%.4f}",
				       r ? "," : "", mpps[r], drops[r]);
			printf("]}\n");
			fprintf(stderr,
				"%-12s %-6s %5d %8.2f %8.2f %8.2f %8.2f %9.4f %6.1f%%\n",
				scenarios[s].name, m == 0 ? "single" : "bulk",
				bulk, med, vmin(mpps, repeats),
				vmax(mpps, repeats), med > 0 ? 1e3 / med : 0,
				lpf, drop * 100);
		}
	}

	/* The oversubscribed case must keep at least half of the 2-producer
	 * throughput: the adaptive lock parks instead of spinning on a
	 * preempted holder. Reported for single and bulk mode. */
	for (int k = 0; k < 2; k++) {
		int m = k ? ratio_bulk_idx : 0;
		int bulk = k ? bulks[ratio_bulk_idx - 1] : 1;
		double pairs[MAX_REPEATS];

		/* Per repeat: 4p over 2p of the same repeat, which ran back to
		 * back (see the run order above); the verdict is the median. */
		for (int r = 0; r < repeats; r++)
			pairs[r] = res[1][m][r].mpps > 0 ?
					   res[2][m][r].mpps / res[1][m][r].mpps :
					   0;
		double ratio = median(pairs, repeats);

		printf("{\"type\":\"ratio\",\"ratio\":\"4p1q_2cores/2p1q\","
		       "\"mode\":\"%s\",\"bulk\":%d,\"value\":%.3f,"
		       "\"required_min\":0.5,\"ok\":%s}\n",
		       k ? "bulk" : "single", bulk, ratio,
		       ratio >= 0.5 ? "true" : "false");
		fprintf(stderr,
			"4p/2p %s-%d throughput ratio (median of the repeats' "
			"pairs): %.3f (required >= 0.5)\n",
			k ? "bulk" : "single", bulk, ratio);
	}

	if (bt_pool_destroy((uint32_t)pool) != 0)
		fprintf(stderr, "warning: pool not whole at exit\n");
	return 0;
}
