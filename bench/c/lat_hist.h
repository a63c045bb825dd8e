/* SPDX-License-Identifier: MIT */
/*
 * A log-linear latency histogram for the C benchmark programs
 * (ring_bench.c, ring_peer.c): 32 sub-buckets per power of two (~3%
 * resolution), values in ns, and one printer that writes the percentiles
 * and an HDR-style percentile curve as JSON fields. One thread records
 * (the consumer); nothing here is shared between threads.
 *
 * Also the CPU clock of the whole process (every thread), read at the
 * start and the end of a measured run.
 */
#ifndef BT_LAT_HIST_H
#define BT_LAT_HIST_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#define LAT_HIST_SUB 32
#define LAT_HIST_BUCKETS (LAT_HIST_SUB + 59 * LAT_HIST_SUB)

struct lat_hist {
	uint64_t samples;
	uint64_t b[LAT_HIST_BUCKETS];
};

static inline int lat_hist_index(uint64_t v)
{
	if (v < LAT_HIST_SUB)
		return (int)v;
	int e = 63 - __builtin_clzll(v); /* >= 5 */
	int m = (int)(v >> (e - 5)); /* 32..63 */
	int i = LAT_HIST_SUB + (e - 5) * LAT_HIST_SUB + (m - LAT_HIST_SUB);
	return i < LAT_HIST_BUCKETS ? i : LAT_HIST_BUCKETS - 1;
}

/* Middle of a bucket, in ns. */
static inline double lat_hist_value(int i)
{
	if (i < LAT_HIST_SUB)
		return i;
	int e = (i - LAT_HIST_SUB) / LAT_HIST_SUB + 5;
	uint64_t m = (uint64_t)((i - LAT_HIST_SUB) % LAT_HIST_SUB + LAT_HIST_SUB);
	double lo = (double)(m << (e - 5));
	return lo + (double)(1ull << (e - 5)) / 2;
}

static inline void lat_hist_add(struct lat_hist *h, uint64_t ns)
{
	h->b[lat_hist_index(ns)]++;
	h->samples++;
}

/*
 * Print `"samples":N` and, when there are samples, `,"p50":..,"p99":..,
 * "p999":..,"max":..,"curve":[[pct,ns],...]` (percentiles 0, 50, 75,
 * 87.5, ... and 100 = the largest sample). No braces: the caller embeds
 * the fields in its own object.
 */
static inline void lat_hist_print(const struct lat_hist *h, FILE *f)
{
	fprintf(f, "\"samples\":%llu", (unsigned long long)h->samples);
	if (!h->samples)
		return;
	static const double want[] = { 0.5, 0.99, 0.999 };
	double at[3] = { 0, 0, 0 };
	uint64_t seen = 0;
	int wi = 0, maxi = 0;
	for (int i = 0; i < LAT_HIST_BUCKETS; i++) {
		if (!h->b[i])
			continue;
		maxi = i;
		seen += h->b[i];
		while (wi < 3 && (double)seen >= want[wi] * (double)h->samples)
			at[wi++] = lat_hist_value(i);
	}
	fprintf(f, ",\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f,\"curve\":[",
		at[0], at[1], at[2], lat_hist_value(maxi));
	seen = 0;
	int k = 0, first = 1, bi = 0;
	for (;;) {
		double q = 1.0 - 1.0 / (double)(1ull << k);
		if (q * (double)h->samples > (double)h->samples - 1 || k > 20)
			break;
		while (bi < LAT_HIST_BUCKETS &&
		       (double)(seen + h->b[bi]) <= q * (double)h->samples) {
			seen += h->b[bi];
			bi++;
		}
		if (bi >= LAT_HIST_BUCKETS)
			break;
		fprintf(f, "%s[%.6f,%.0f]", first ? "" : ",", q * 100,
			lat_hist_value(bi));
		first = 0;
		k++;
	}
	fprintf(f, "%s[100,%.0f]]", first ? "" : ",", lat_hist_value(maxi));
}

/* CPU time of the whole process (all threads, user + system), ns. */
static inline uint64_t process_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif /* BT_LAT_HIST_H */
