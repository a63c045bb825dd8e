/* SPDX-License-Identifier: MIT */
/*
 * Concurrency tests: threads play the CPUs of the original TAP discussion.
 *
 *   - P producers (cpu = producer id, so producers share queues whenever
 *     P > nqueues) allocate bulks of 16, stamp each frame with
 *     (producer, sequence), and xmit with BT_XMIT_FLUSH;
 *   - one reader per queue sleeps in bt_queue_wait, reads batches, checks
 *     that each producer's frames arrive in order and intact, and returns
 *     them with bt_pool_put;
 *   - a monitor thread reads bt_dev_stats while traffic flows, as a
 *     dashboard would.
 *   At the end: delivered + dropped == produced exactly, nothing delivered
 *   twice, the pool whole.
 *
 * Plus "close while transmitting": producers keep sending while the main
 * thread closes the device; they must see -ENXIO, nothing may crash, and
 * every frame ends FREE.
 *
 * Frames per producer: 200000, or argv[1], or $BT_CONC_FRAMES (run.sh uses
 * a smaller count under ThreadSanitizer to keep the run short).
 * Output: "ok NAME" / "FAIL NAME: reason", then "N passed, N failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bulktap.h"

#define BULK 16
#define READ_BATCH 64
#define MAX_PRODUCERS 8
#define MAX_QUEUES 4

static uint32_t frames_per_producer = 200000;

/* ------------------------------------------------------------------ */
/* Failure reporting shared by all threads: the first message wins.    */

static atomic_int errors;
static char first_error[512];
static pthread_mutex_t error_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&error_lock);
	if (atomic_fetch_add(&errors, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof(first_error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&error_lock);
}

/* ------------------------------------------------------------------ */
/* Frame access through the public metadata layout                      */

struct pool_view {
	uint8_t *base;
	uint32_t frame_size;
	uint32_t nframes;
};

static struct pool_view view_of(int32_t pool)
{
	uint64_t v[BT_PI_COUNT] = { 0 };
	struct pool_view pv;

	bt_pool_info((uint32_t)pool, v, BT_PI_COUNT);
	pv.base = bt_pool_base((uint32_t)pool);
	pv.frame_size = (uint32_t)v[BT_PI_FRAME_SIZE];
	pv.nframes = (uint32_t)v[BT_PI_FRAMES];
	return pv;
}

static struct bt_frame_meta *meta_of(const struct pool_view *pv, uint32_t ref)
{
	return (struct bt_frame_meta *)(pv->base +
					(size_t)(ref & BT_REF_INDEX_MASK) *
						pv->frame_size);
}

/* Payload: producer id, sequence, then filler bytes derived from both, so
 * a reader can tell a torn or stale frame from a good one. The length
 * varies with the sequence to catch a stale len. */
static uint32_t payload_len(uint32_t seq)
{
	return 16 + seq % 48;
}

static uint8_t filler(uint32_t id, uint32_t seq, uint32_t i)
{
	return (uint8_t)(id * 31 + seq * 7 + i);
}

static void stamp(const struct pool_view *pv, uint32_t ref, uint32_t id,
		  uint32_t seq)
{
	struct bt_frame_meta *m = meta_of(pv, ref);
	uint8_t *d = (uint8_t *)m + m->data_off;
	uint32_t len = payload_len(seq);

	memcpy(d, &id, 4);
	memcpy(d + 4, &seq, 4);
	for (uint32_t i = 8; i < len; i++)
		d[i] = filler(id, seq, i);
	m->len = len;
}

static uint64_t pool_stat(int32_t pool, int i)
{
	uint64_t s[BT_PS_COUNT] = { 0 };

	bt_pool_stats((uint32_t)pool, s, BT_PS_COUNT);
	return s[i];
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* ================================================================== */
/* Producers and readers                                               */

struct run {
	int32_t pool;
	int32_t dev;
	struct pool_view pv;
	uint32_t nproducers;
	uint32_t nqueues;
	uint32_t frames; /* per producer */
	atomic_uint producers_done;
	atomic_int stop_monitor;
	/* Per producer, written by that producer only. */
	uint64_t accepted[MAX_PRODUCERS];
	uint64_t dropped[MAX_PRODUCERS];
	/* Per producer: which sequences arrived. Each producer maps to one
	 * queue, so only that queue's reader writes its array. */
	uint8_t *seen[MAX_PRODUCERS];
	/* Per queue, written by that queue's reader only. */
	uint64_t delivered[MAX_QUEUES];
};

struct producer_arg {
	struct run *run;
	uint32_t id;
};

static void *producer_main(void *arg)
{
	struct producer_arg *pa = arg;
	struct run *run = pa->run;
	uint32_t refs[BULK];
	uint32_t seq = 0;

	while (seq < run->frames) {
		uint32_t want = run->frames - seq < BULK ? run->frames - seq :
							   BULK;
		int32_t got = bt_pool_alloc((uint32_t)run->pool, refs, want);

		if (got < 0) {
			report("producer %u: alloc -> %d", pa->id, got);
			break;
		}
		if (got == 0) {
			/* Pool empty: the readers hold or the rings hold
			 * everything. Let a reader run. */
			sched_yield();
			continue;
		}
		for (int32_t i = 0; i < got; i++)
			stamp(&run->pv, refs[i], pa->id, seq + (uint32_t)i);
		int32_t sent = bt_xmit((uint32_t)run->dev, refs,
				       (uint32_t)got, BT_XMIT_FLUSH,
				       (int32_t)pa->id);
		if (sent < 0) {
			report("producer %u: xmit -> %d", pa->id, sent);
			break;
		}
		/* Sequences of dropped frames are simply never seen. */
		run->accepted[pa->id] += (uint32_t)sent;
		run->dropped[pa->id] += (uint32_t)(got - sent);
		seq += (uint32_t)got;
	}
	/* Release: everything we queued is visible to a reader that sees
	 * the count (acquire below). */
	atomic_fetch_add_explicit(&run->producers_done, 1,
				  memory_order_release);
	return NULL;
}

struct reader_arg {
	struct run *run;
	uint32_t queue;
};

/* Check one delivered frame; last[] is this reader's last sequence per
 * producer (UINT32_MAX before the first). */
static void check_frame(struct run *run, uint32_t queue, uint32_t ref,
			uint32_t *last)
{
	struct bt_frame_meta *m = meta_of(&run->pv, ref);
	const uint8_t *d = (const uint8_t *)m + m->data_off;
	uint32_t id, seq;

	memcpy(&id, d, 4);
	memcpy(&seq, d + 4, 4);
	if (id >= run->nproducers || seq >= run->frames) {
		report("queue %u: garbage frame id %u seq %u", queue, id, seq);
		return;
	}
	if (id % run->nqueues != queue)
		report("queue %u: frame of producer %u (cpu %% queues = %u)",
		       queue, id, id % run->nqueues);
	if (last[id] != UINT32_MAX && seq <= last[id])
		report("queue %u: producer %u seq %u after %u (out of order)",
		       queue, id, seq, last[id]);
	last[id] = seq;
	if (run->seen[id][seq])
		report("producer %u seq %u delivered twice", id, seq);
	run->seen[id][seq] = 1;
	if (m->len != payload_len(seq))
		report("producer %u seq %u: len %u, want %u", id, seq, m->len,
		       payload_len(seq));
	for (uint32_t i = 8; i < m->len && i < payload_len(seq); i++) {
		if (d[i] != filler(id, seq, i)) {
			report("producer %u seq %u: byte %u corrupt", id, seq,
			       i);
			break;
		}
	}
	if (m->queue != queue)
		report("meta queue %u, read from %u", m->queue, queue);
}

static void *reader_main(void *arg)
{
	struct reader_arg *ra = arg;
	struct run *run = ra->run;
	uint32_t refs[READ_BATCH];
	uint32_t last[MAX_PRODUCERS];

	for (uint32_t i = 0; i < MAX_PRODUCERS; i++)
		last[i] = UINT32_MAX;
	for (;;) {
		/* Sample "all producers done" BEFORE reading: if it was
		 * already true and the read then finds nothing, nothing more
		 * can ever arrive. */
		int done = atomic_load_explicit(&run->producers_done,
						memory_order_acquire) ==
			   run->nproducers;
		int32_t n = bt_queue_read((uint32_t)run->dev, ra->queue, refs,
					  READ_BATCH);
		if (n < 0) {
			report("reader %u: read -> %d", ra->queue, n);
			break;
		}
		for (int32_t i = 0; i < n; i++)
			check_frame(run, ra->queue, refs[i], last);
		if (n) {
			int32_t put = bt_pool_put((uint32_t)run->pool, refs,
						  (uint32_t)n, NULL, 0);
			if (put != n)
				report("reader %u: put %d of %d", ra->queue,
				       put, n);
			run->delivered[ra->queue] += (uint32_t)n;
			continue;
		}
		if (done)
			break;
		/* Sleep until a producer's flush rings the doorbell. The
		 * timeout only bounds the damage of a lost wake-up. */
		int32_t w = bt_queue_wait((uint32_t)run->dev, ra->queue, 20);
		if (w < 0) {
			report("reader %u: wait -> %d", ra->queue, w);
			break;
		}
	}
	return NULL;
}

/* Reads statistics while traffic flows (the counters and queue depths
 * must be readable from any thread at any time). */
static void *monitor_main(void *arg)
{
	struct run *run = arg;
	uint64_t s[BT_DS_COUNT], prev_tx = 0;

	while (!atomic_load(&run->stop_monitor)) {
		if (bt_dev_stats((uint32_t)run->dev, s, BT_DS_COUNT) < 0) {
			report("monitor: stats failed");
			break;
		}
		/* Counters only grow. */
		if (s[BT_DS_TX_PACKETS] < prev_tx)
			report("monitor: tx_packets went back");
		prev_tx = s[BT_DS_TX_PACKETS];
		for (uint32_t q = 0; q < run->nqueues; q++)
			if (bt_queue_count((uint32_t)run->dev, q) < 0)
				report("monitor: queue_count failed");
		sleep_us(200);
	}
	return NULL;
}

/* One scenario: P producers into Q queues. Returns 0 on success. */
static int traffic(uint32_t nproducers, uint32_t nqueues)
{
	struct run *run = calloc(1, sizeof(*run));
	pthread_t prod[MAX_PRODUCERS], rd[MAX_QUEUES], mon;
	struct producer_arg pa[MAX_PRODUCERS];
	struct reader_arg ra[MAX_QUEUES];
	uint64_t produced = 0, accepted = 0, dropped = 0, delivered = 0;
	uint64_t seen_total = 0;
	uint64_t ds[BT_DS_COUNT];
	int ret = -1;

	if (!run)
		return -1;
	/* Fewer frames than the producers could keep in flight, and small
	 * rings, so both "pool empty" and "ring full" happen. */
	run->pool = bt_pool_create(2048, 128, 32);
	run->dev = bt_dev_create((uint32_t)run->pool, nqueues, 256);
	if (run->pool < 0 || run->dev < 0) {
		report("setup: pool %d dev %d", run->pool, run->dev);
		goto out;
	}
	run->pv = view_of(run->pool);
	run->nproducers = nproducers;
	run->nqueues = nqueues;
	run->frames = frames_per_producer;
	for (uint32_t i = 0; i < nproducers; i++) {
		run->seen[i] = calloc(run->frames, 1);
		if (!run->seen[i]) {
			report("setup: out of memory");
			goto out;
		}
	}

	for (uint32_t q = 0; q < nqueues; q++) {
		ra[q].run = run;
		ra[q].queue = q;
		pthread_create(&rd[q], NULL, reader_main, &ra[q]);
	}
	pthread_create(&mon, NULL, monitor_main, run);
	for (uint32_t i = 0; i < nproducers; i++) {
		pa[i].run = run;
		pa[i].id = i;
		pthread_create(&prod[i], NULL, producer_main, &pa[i]);
	}
	for (uint32_t i = 0; i < nproducers; i++)
		pthread_join(prod[i], NULL);
	for (uint32_t q = 0; q < nqueues; q++)
		pthread_join(rd[q], NULL);
	atomic_store(&run->stop_monitor, 1);
	pthread_join(mon, NULL);

	/* Exact accounting, now that every thread has been joined. */
	for (uint32_t i = 0; i < nproducers; i++) {
		produced += run->frames;
		accepted += run->accepted[i];
		dropped += run->dropped[i];
		for (uint32_t s = 0; s < run->frames; s++)
			seen_total += run->seen[i][s];
	}
	for (uint32_t q = 0; q < nqueues; q++)
		delivered += run->delivered[q];
	bt_dev_stats((uint32_t)run->dev, ds, BT_DS_COUNT);
	if (accepted + dropped != produced)
		report("producers: accepted %llu + dropped %llu != %llu",
		       (unsigned long long)accepted,
		       (unsigned long long)dropped,
		       (unsigned long long)produced);
	if (ds[BT_DS_TX_DROPPED] != dropped)
		report("BT_DS_TX_DROPPED %llu, producers saw %llu",
		       (unsigned long long)ds[BT_DS_TX_DROPPED],
		       (unsigned long long)dropped);
	if (delivered + ds[BT_DS_TX_DROPPED] != produced)
		report("delivered %llu + dropped %llu != produced %llu",
		       (unsigned long long)delivered,
		       (unsigned long long)ds[BT_DS_TX_DROPPED],
		       (unsigned long long)produced);
	if (seen_total != delivered)
		report("distinct frames seen %llu != delivered %llu",
		       (unsigned long long)seen_total,
		       (unsigned long long)delivered);
	if (ds[BT_DS_TX_PACKETS] != accepted ||
	    ds[BT_DS_RX_PACKETS] != delivered || ds[BT_DS_QUEUED] != 0)
		report("stats: tx %llu rx %llu queued %llu",
		       (unsigned long long)ds[BT_DS_TX_PACKETS],
		       (unsigned long long)ds[BT_DS_RX_PACKETS],
		       (unsigned long long)ds[BT_DS_QUEUED]);
	if (pool_stat(run->pool, BT_PS_FREE) != 2048 ||
	    pool_stat(run->pool, BT_PS_DOUBLE_RETURN) != 0)
		report("pool not whole: free %llu, double returns %llu",
		       (unsigned long long)pool_stat(run->pool, BT_PS_FREE),
		       (unsigned long long)pool_stat(run->pool,
						     BT_PS_DOUBLE_RETURN));
	printf("# %u producers x %u frames, %u queue(s): delivered %llu, "
	       "dropped %llu, wakeups sent %llu, avoided %llu, reader "
	       "sleeps %llu\n",
	       nproducers, run->frames, nqueues,
	       (unsigned long long)delivered, (unsigned long long)dropped,
	       (unsigned long long)ds[BT_DS_WAKEUPS_SENT],
	       (unsigned long long)ds[BT_DS_WAKEUPS_AVOIDED],
	       (unsigned long long)ds[BT_DS_RX_SLEEPS]);
	ret = 0;
out:
	if (run->dev > 0 && bt_dev_close((uint32_t)run->dev) != 0)
		report("close of a drained device returned frames");
	if (run->pool > 0 && bt_pool_destroy((uint32_t)run->pool) != 0)
		report("pool destroy failed");
	for (uint32_t i = 0; i < MAX_PRODUCERS; i++)
		free(run->seen[i]);
	free(run);
	return ret;
}

/* ================================================================== */
/* Close while transmitting                                            */

struct closing {
	int32_t pool;
	int32_t dev;
	struct pool_view pv;
	atomic_ullong calls; /* successful xmit calls, all producers */
	atomic_int enxio; /* producers that saw -ENXIO */
};

struct closing_arg {
	struct closing *c;
	int32_t cpu;
};

static void *closing_producer(void *arg)
{
	struct closing_arg *ca = arg;
	struct closing *c = ca->c;
	uint32_t refs[BULK];

	for (;;) {
		int32_t got = bt_pool_alloc((uint32_t)c->pool, refs, BULK);
		if (got <= 0) {
			sched_yield();
			continue;
		}
		for (int32_t i = 0; i < got; i++)
			meta_of(&c->pv, refs[i])->len = 20;
		int32_t r = bt_xmit((uint32_t)c->dev, refs, (uint32_t)got,
				    BT_XMIT_FLUSH, ca->cpu);
		if (r == -ENXIO) {
			/* The frames went home; the device stays gone. */
			if (bt_xmit((uint32_t)c->dev, NULL, 0, 0, ca->cpu) !=
			    -ENXIO)
				report("closed device accepted a call");
			atomic_fetch_add(&c->enxio, 1);
			return NULL;
		}
		if (r < 0) {
			report("xmit -> %d", r);
			return NULL;
		}
		atomic_fetch_add(&c->calls, 1);
	}
}

/* A reader that keeps consuming until the device goes away, then returns
 * what it holds: frames in a reader's hands survive the close. */
static void *closing_reader(void *arg)
{
	struct closing *c = arg;
	uint32_t refs[READ_BATCH];

	for (;;) {
		int32_t n = bt_queue_read((uint32_t)c->dev, 0, refs,
					  READ_BATCH);
		if (n == -ENXIO)
			return NULL;
		if (n < 0) {
			report("reader: read -> %d", n);
			return NULL;
		}
		if (n) {
			if (bt_pool_put((uint32_t)c->pool, refs, (uint32_t)n,
					NULL, 0) != n)
				report("reader: put failed");
			continue;
		}
		int32_t w = bt_queue_wait((uint32_t)c->dev, 0, 50);
		if (w == -ENXIO)
			return NULL;
		if (w < 0) {
			report("reader: wait -> %d", w);
			return NULL;
		}
	}
}

static int close_while_transmitting(int rounds)
{
	for (int round = 0; round < rounds; round++) {
		struct closing c;
		struct closing_arg ca[2];
		pthread_t prod[2], rd;
		unsigned long long target = 200 + (unsigned)round * 97 % 2000;

		memset(&c, 0, sizeof(c));
		c.pool = bt_pool_create(512, 128, 32);
		c.dev = bt_dev_create((uint32_t)c.pool, 1, 64);
		if (c.pool < 0 || c.dev < 0) {
			report("setup: pool %d dev %d", c.pool, c.dev);
			return -1;
		}
		c.pv = view_of(c.pool);
		pthread_create(&rd, NULL, closing_reader, &c);
		for (int i = 0; i < 2; i++) {
			ca[i].c = &c;
			ca[i].cpu = i;
			pthread_create(&prod[i], NULL, closing_producer,
				       &ca[i]);
		}
		/* Close mid-stream, at a different point each round. */
		while (atomic_load(&c.calls) < target)
			sleep_us(100);
		int32_t drained = bt_dev_close((uint32_t)c.dev);
		if (drained < 0)
			report("round %d: close -> %d", round, drained);
		for (int i = 0; i < 2; i++)
			pthread_join(prod[i], NULL);
		pthread_join(rd, NULL);
		if (atomic_load(&c.enxio) != 2)
			report("round %d: %d of 2 producers saw -ENXIO", round,
			       atomic_load(&c.enxio));
		if (pool_stat(c.pool, BT_PS_FREE) != 512 ||
		    pool_stat(c.pool, BT_PS_HELD) != 0 ||
		    pool_stat(c.pool, BT_PS_QUEUED) != 0)
			report("round %d: pool free %llu held %llu queued %llu",
			       round,
			       (unsigned long long)pool_stat(c.pool,
							     BT_PS_FREE),
			       (unsigned long long)pool_stat(c.pool,
							     BT_PS_HELD),
			       (unsigned long long)pool_stat(c.pool,
							     BT_PS_QUEUED));
		if (bt_pool_destroy((uint32_t)c.pool) != 0)
			report("round %d: pool destroy failed", round);
		if (atomic_load(&errors))
			return -1;
	}
	return 0;
}

/* ================================================================== */

static int passed, failed;

static void verdict(const char *name, int rc)
{
	if (rc == 0 && atomic_load(&errors) == 0) {
		printf("ok %s\n", name);
		passed++;
	} else {
		printf("FAIL %s: %s\n", name,
		       atomic_load(&errors) ? first_error : "setup failed");
		failed++;
	}
	atomic_store(&errors, 0);
	first_error[0] = 0;
}

int main(int argc, char **argv)
{
	const char *env = getenv("BT_CONC_FRAMES");
	char name[96];

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1)
		frames_per_producer = (uint32_t)strtoul(argv[1], NULL, 10);
	else if (env && *env)
		frames_per_producer = (uint32_t)strtoul(env, NULL, 10);
	if (frames_per_producer == 0)
		frames_per_producer = 200000;

	static const uint32_t shapes[][2] = { { 2, 1 }, { 2, 2 }, { 4, 1 },
					      { 4, 2 } };
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		snprintf(name, sizeof(name),
			 "%u_producers_%u_queues_deliver_in_order_exactly_once",
			 shapes[i][0], shapes[i][1]);
		verdict(name, traffic(shapes[i][0], shapes[i][1]));
	}
	verdict("close_while_transmitting_returns_every_frame",
		close_while_transmitting(frames_per_producer >= 100000 ? 20 :
									 5));
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
