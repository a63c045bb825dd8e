/* SPDX-License-Identifier: MIT */
/*
 * Spec tests of the software offloads (c/bt_offload.h): bt_offload_check,
 * bt_csum_complete, bt_gso_count and bt_gso_segment, one behaviour per test.
 *
 * Super-frames live in heap blocks exactly as long as metadata + data, so
 * ASan reports any read past a frame's data; segments go into real pool
 * frames. Every checksum is verified here with a plain byte loop over
 * the pseudo-header and the packet, not with the library's helpers.
 *
 * Build: see run.sh. Output: "ok NAME" or "FAIL NAME: reason" per test,
 * then "N passed, N failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_offload.h"
#include "bulktap.h"

#include "expect.h"

/* In helpers returning int: fail and return -1. */
#define CHECK(cond, ...)                              \
	do {                                          \
		if (!(cond)) {                        \
			fail_at(__LINE__, __VA_ARGS__); \
			return -1;                    \
		}                                     \
	} while (0)

/* ------------------------------------------------------------------ */
/* Fixture: one pool of output frames and the heap super-frame         */

#define FRAMES 128
#define FRAME_SIZE 2048
#define HEADROOM 128

static struct {
	int32_t pool;
	uint32_t refs[FRAMES];
	struct bt_frame_meta *out[FRAMES];
	uint32_t nout;
	struct bt_frame_meta *src;
} fx;

static struct bt_frame_meta *meta_of(int32_t pool, uint32_t ref)
{
	uint8_t *base = bt_pool_base((uint32_t)pool);
	uint64_t v[BT_PI_COUNT] = { 0 };
	size_t idx = ref & BT_REF_INDEX_MASK;

	bt_pool_info((uint32_t)pool, v, BT_PI_COUNT);
	return (struct bt_frame_meta *)(base + idx * v[BT_PI_FRAME_SIZE]);
}

static uint8_t *data_of(const struct bt_frame_meta *m)
{
	return (uint8_t *)m + m->data_off;
}

/* n HELD frames of a pool of frame_size-byte frames in fx.out. */
static int out_frames(uint32_t n, uint32_t frame_size)
{
	fx.pool = bt_pool_create(FRAMES, frame_size, HEADROOM);
	if (fx.pool <= 0 || bt_pool_alloc((uint32_t)fx.pool, fx.refs, n) !=
				    (int32_t)n)
		return -1;
	fx.nout = n;
	for (uint32_t i = 0; i < n; i++) {
		fx.out[i] = meta_of(fx.pool, fx.refs[i]);
		memset(data_of(fx.out[i]), 0xee, frame_size - HEADROOM);
	}
	return 0;
}

static void fx_teardown(void)
{
	if (fx.pool > 0) {
		if (fx.nout)
			bt_pool_put((uint32_t)fx.pool, fx.refs, fx.nout, NULL,
				    0);
		if (bt_pool_destroy((uint32_t)fx.pool) != 0)
			fail_at(__LINE__, "teardown: pool destroy failed");
	}
	free(fx.src);
	memset(&fx, 0, sizeof(fx));
}

/* ------------------------------------------------------------------ */
/* Packets                                                             */

struct pkt {
	int v6, vlan, udp;
	uint32_t ipopt, tcpopt; /* option bytes (multiples of 4) */
	uint32_t payload;
	uint8_t tcpflags;
	uint32_t seq;
	uint16_t id;
};

/* Where the headers of a built packet are. */
static uint32_t l3_of(const struct pkt *k)
{
	return 14u + (k->vlan ? 4u : 0u);
}

static uint32_t l4_of(const struct pkt *k)
{
	return l3_of(k) + (k->v6 ? 40u : 20u + k->ipopt);
}

static uint32_t hl_of(const struct pkt *k)
{
	return l4_of(k) + (k->udp ? 8u : 20u + k->tcpopt);
}

static void w16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t r16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t r32(const uint8_t *p)
{
	return r16(p) << 16 | r16(p + 2);
}

/* Build k into d; returns its length. IP/UDP lengths and checksums are
 * left stale, as a super-frame's may be. */
static uint32_t build(uint8_t *d, const struct pkt *k)
{
	uint32_t l3 = l3_of(k), l4 = l4_of(k), hl = hl_of(k);
	uint32_t len = hl + k->payload;

	memset(d, 0, hl);
	memcpy(d, "\x02\0\0\0\0\x01\x02\0\0\0\0\x02", 12);
	if (k->vlan) {
		w16(d + 12, 0x8100);
		w16(d + 14, 5);
	}
	w16(d + l3 - 2, k->v6 ? 0x86dd : 0x0800);
	if (k->v6) {
		d[l3] = 0x60;
		w16(d + l3 + 4, 1234); /* stale */
		d[l3 + 6] = k->udp ? 17 : 6;
		d[l3 + 7] = 64;
		d[l3 + 8] = 0xfd;
		d[l3 + 23] = 1;
		d[l3 + 24] = 0xfd;
		d[l3 + 39] = 2;
	} else {
		d[l3] = (uint8_t)(0x40 | (20 + k->ipopt) / 4);
		w16(d + l3 + 2, 999); /* stale */
		w16(d + l3 + 4, k->id);
		w16(d + l3 + 6, 0x4000); /* DF */
		d[l3 + 8] = 64;
		d[l3 + 9] = k->udp ? 17 : 6;
		w16(d + l3 + 10, 0xbeef); /* stale */
		memcpy(d + l3 + 12, "\x0a\0\0\x01\x0a\0\0\x02", 8);
		memset(d + l3 + 20, 1, k->ipopt); /* NOPs */
	}
	w16(d + l4, 40000);
	w16(d + l4 + 2, k->udp ? 4789 : 80);
	if (k->udp) {
		w16(d + l4 + 4, 77); /* stale */
		w16(d + l4 + 6, 0x1234); /* stale */
	} else {
		d[l4 + 4] = (uint8_t)(k->seq >> 24);
		d[l4 + 5] = (uint8_t)(k->seq >> 16);
		d[l4 + 6] = (uint8_t)(k->seq >> 8);
		d[l4 + 7] = (uint8_t)k->seq;
		memcpy(d + l4 + 8, "\x01\x02\x03\x04", 4); /* ack */
		d[l4 + 12] = (uint8_t)((20 + k->tcpopt) / 4 << 4);
		d[l4 + 13] = k->tcpflags;
		w16(d + l4 + 14, 0xffff);
		w16(d + l4 + 16, 0x1234); /* stale */
		memset(d + l4 + 20, 1, k->tcpopt);
	}
	for (uint32_t i = 0; i < k->payload; i++)
		d[hl + i] = (uint8_t)(i * 7 + i / 251 + 3);
	return len;
}

/* A heap frame holding exactly metadata + packet k, with GSO metadata. */
static struct bt_frame_meta *super_frame(const struct pkt *k, uint16_t mss)
{
	uint32_t len = hl_of(k) + k->payload;
	struct bt_frame_meta *m = calloc(1, sizeof(*m) + len);

	if (!m)
		abort();
	m->magic = BT_FRAME_MAGIC;
	m->data_off = sizeof(*m);
	m->len = build(data_of(m), k);
	m->tstamp_ns = 123456789;
	m->mark = 42;
	m->queue = 3;
	m->gso_type = (uint8_t)(k->udp ? BT_GSO_UDP_L4 :
			       k->v6   ? BT_GSO_TCPV6 :
					 BT_GSO_TCPV4);
	m->gso_size = mss;
	m->hdr_len = (uint16_t)hl_of(k);
	m->vnet_flags = BT_VNET_F_NEEDS_CSUM;
	m->csum_start = (uint16_t)l4_of(k);
	m->csum_offset = k->udp ? 6 : 16;
	fx.src = m;
	return m;
}

/* The independent checksum: a byte-at-a-time sum, folded at the end. */
static uint32_t byte_sum(const uint8_t *p, uint32_t n, uint32_t s)
{
	for (uint32_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint32_t fold(uint32_t s)
{
	while (s > 0xffff)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* The pseudo-header's sum for the L4 bytes d[l4..len), built as bytes. */
static uint32_t pseudo_sum(const uint8_t *d, uint32_t len, uint32_t l3,
			   uint32_t l4, int v6, uint8_t proto)
{
	uint8_t ph[40];
	uint32_t l4len = len - l4;

	memset(ph, 0, sizeof(ph));
	if (v6) {
		memcpy(ph, d + l3 + 8, 32);
		ph[34] = (uint8_t)(l4len >> 8);
		ph[35] = (uint8_t)l4len;
		ph[39] = proto;
		return byte_sum(ph, 40, 0);
	}
	memcpy(ph, d + l3 + 12, 8);
	ph[9] = proto;
	ph[10] = (uint8_t)(l4len >> 8);
	ph[11] = (uint8_t)l4len;
	return byte_sum(ph, 12, 0);
}

/* Is the L4 checksum of d[0..len) right? */
static int l4_sum_ok(const uint8_t *d, uint32_t len, uint32_t l3, uint32_t l4,
		     int v6, uint8_t proto)
{
	return fold(byte_sum(d + l4, len - l4,
			     pseudo_sum(d, len, l3, l4, v6, proto))) == 0xffff;
}

/*
 * Check segs[0..n) against super-frame m built from k, with eff payload
 * bytes per segment: lengths, ids, sequence numbers, flags, checksums
 * (complete, or partial: pseudo-header sum and offsets), metadata, and
 * that the payloads put together are m's.
 */
static int verify(const struct bt_frame_meta *m, const struct pkt *k,
		  uint32_t eff, struct bt_frame_meta *const *segs, int n,
		  int partial)
{
	const uint8_t *o = data_of(m);
	uint32_t l3 = l3_of(k), l4 = l4_of(k), hl = hl_of(k);
	uint8_t proto = k->udp ? 17 : 6;
	uint32_t done = 0;

	CHECK(n == (int)((k->payload + eff - 1) / eff), "%d segments", n);
	for (int i = 0; i < n; i++) {
		struct bt_frame_meta *s = segs[i];
		uint8_t *d = data_of(s);
		uint32_t p = k->payload - done < eff ? k->payload - done : eff;
		uint32_t csum_off = k->udp ? 6 : 16;

		CHECK(s->len == hl + p, "seg %d len %u, want %u", i, s->len,
		      hl + p);
		CHECK(!memcmp(d, o, l3), "seg %d: Ethernet header", i);
		CHECK(!memcmp(d + hl, o + hl + done, p), "seg %d: payload", i);
		CHECK(s->gso_type == 0 && s->gso_size == 0, "seg %d: gso", i);
		CHECK(s->tstamp_ns == m->tstamp_ns && s->mark == m->mark &&
			      s->queue == m->queue,
		      "seg %d: tstamp/mark/queue", i);
		if (k->v6) {
			CHECK(r16(d + l3 + 4) == s->len - l3 - 40,
			      "seg %d: IPv6 payload length %u", i,
			      r16(d + l3 + 4));
			CHECK(!memcmp(d + l3 + 8, o + l3 + 8, 32),
			      "seg %d: addresses", i);
		} else {
			CHECK(r16(d + l3 + 2) == s->len - l3,
			      "seg %d: IPv4 total length %u", i,
			      r16(d + l3 + 2));
			CHECK(r16(d + l3 + 4) == ((k->id + i) & 0xffffu),
			      "seg %d: IPv4 id %u", i, r16(d + l3 + 4));
			CHECK(fold(byte_sum(d + l3, l4 - l3, 0)) == 0xffff,
			      "seg %d: IPv4 header checksum", i);
			CHECK(!memcmp(d + l3 + 6, o + l3 + 6, 4) &&
				      !memcmp(d + l3 + 12, o + l3 + 12,
					      l4 - l3 - 12),
			      "seg %d: IPv4 fields", i);
		}
		if (k->udp) {
			CHECK(r16(d + l4 + 4) == s->len - l4,
			      "seg %d: UDP length %u", i, r16(d + l4 + 4));
		} else {
			uint8_t want = k->tcpflags;

			if (i != n - 1)
				want &= (uint8_t)~0x09; /* FIN, PSH */
			if (i != 0)
				want &= (uint8_t)~0x80; /* CWR */
			CHECK(r32(d + l4 + 4) == k->seq + done,
			      "seg %d: seq %u", i, r32(d + l4 + 4));
			CHECK(d[l4 + 13] == want, "seg %d: flags %#x want %#x",
			      i, d[l4 + 13], want);
			/* ack, data offset, window, urgent, options */
			CHECK(!memcmp(d + l4 + 8, o + l4 + 8, 5) &&
				      !memcmp(d + l4 + 14, o + l4 + 14, 2) &&
				      !memcmp(d + l4 + 18, o + l4 + 18,
					      hl - l4 - 18),
			      "seg %d: TCP fields", i);
		}
		CHECK(!memcmp(d + l4, o + l4, 4), "seg %d: ports", i);
		if (partial) {
			CHECK(s->vnet_flags == BT_VNET_F_NEEDS_CSUM,
			      "seg %d: flags %#x", i, s->vnet_flags);
			CHECK(s->csum_start == l4 && s->csum_offset == csum_off,
			      "seg %d: csum_start %u offset %u", i,
			      s->csum_start, s->csum_offset);
			CHECK(r16(d + l4 + csum_off) ==
				      fold(pseudo_sum(d, s->len, l3, l4, k->v6,
						      proto)),
			      "seg %d: partial field %#x", i,
			      r16(d + l4 + csum_off));
		} else {
			CHECK(s->vnet_flags == BT_VNET_F_DATA_VALID,
			      "seg %d: flags %#x", i, s->vnet_flags);
			CHECK(l4_sum_ok(d, s->len, l3, l4, k->v6, proto),
			      "seg %d: L4 checksum", i);
			CHECK(!k->udp || r16(d + l4 + 6) != 0,
			      "seg %d: UDP checksum 0", i);
		}
		done += p;
	}
	CHECK(done == k->payload, "payload %u of %u", done, k->payload);
	return 0;
}

/* Segment k's super-frame (gso_size gs, cap mss) into pool frames and
 * verify; 0 or -1 (failed). */
static int segment_and_verify(const struct pkt *k, uint16_t gs, uint32_t mss,
			      uint32_t flags)
{
	struct bt_frame_meta *m = super_frame(k, gs);
	uint32_t eff = mss && mss < gs ? mss : gs;
	int32_t want = (int32_t)((k->payload + eff - 1) / eff);
	int32_t r;

	CHECK(bt_offload_check(m) == BT_OFF_OK, "check refused");
	CHECK(bt_gso_count(m, mss) == want, "count %d want %d",
	      bt_gso_count(m, mss), want);
	CHECK(out_frames((uint32_t)want, FRAME_SIZE) == 0, "no frames");
	r = bt_gso_segment(m, mss, fx.out, fx.nout, FRAME_SIZE, flags);
	CHECK(r == want, "segment -> %d want %d", r, want);
	return verify(m, k, eff, fx.out, r, !!(flags & BT_GSO_OUT_PARTIAL));
}

/* ------------------------------------------------------------------ */
/* Segmentation                                                        */

static void tcpv4_super_frame_becomes_valid_segments(void)
{
	struct pkt k = { .payload = 1448 * 10, .tcpflags = 0x18, .seq = 1000,
			 .id = 77 };

	EXPECT_EQ(segment_and_verify(&k, 1448, 0, 0), 0);
}

static void tcpv6_super_frame_becomes_valid_segments(void)
{
	struct pkt k = { .v6 = 1, .payload = 1428 * 7, .tcpflags = 0x10,
			 .seq = 5 };

	EXPECT_EQ(segment_and_verify(&k, 1428, 0, 0), 0);
}

static void udp4_uso_super_frame_becomes_valid_datagrams(void)
{
	struct pkt k = { .udp = 1, .payload = 1200 * 9, .id = 9 };

	EXPECT_EQ(segment_and_verify(&k, 1200, 0, 0), 0);
}

static void udp6_uso_super_frame_becomes_valid_datagrams(void)
{
	struct pkt k = { .v6 = 1, .udp = 1, .payload = 1000 * 5 };

	EXPECT_EQ(segment_and_verify(&k, 1000, 0, 0), 0);
}

static void last_segment_is_shorter_when_payload_is_not_a_multiple(void)
{
	struct pkt k = { .payload = 1448 * 4 + 333, .tcpflags = 0x19,
			 .seq = 7 };

	EXPECT_EQ(segment_and_verify(&k, 1448, 0, 0), 0);
	EXPECT_EQ(fx.nout, 5);
	EXPECT_EQ(fx.out[4]->len, hl_of(&k) + 333);
}

static void odd_sizes_keep_checksums_right(void)
{
	struct pkt k = { .udp = 1, .payload = 1001 * 3 + 7, .id = 1 };

	EXPECT_EQ(segment_and_verify(&k, 1001, 0, 0), 0);
}

static void fin_and_psh_only_on_last_cwr_only_on_first(void)
{
	/* CWR | PSH | ACK | FIN */
	struct pkt k = { .payload = 500 * 3, .tcpflags = 0x80 | 0x18 | 0x01,
			 .seq = 1 };

	EXPECT_EQ(segment_and_verify(&k, 500, 0, 0), 0);
	EXPECT_EQ(data_of(fx.out[0])[l4_of(&k) + 13], 0x90);
	EXPECT_EQ(data_of(fx.out[1])[l4_of(&k) + 13], 0x10);
	EXPECT_EQ(data_of(fx.out[2])[l4_of(&k) + 13], 0x19);
}

static void sequence_number_and_ipv4_id_wrap_around(void)
{
	struct pkt k = { .payload = 1000 * 4, .tcpflags = 0x10,
			 .seq = 0xfffffc00u, .id = 0xfffe };

	EXPECT_EQ(segment_and_verify(&k, 1000, 0, 0), 0);
	EXPECT_EQ(r16(data_of(fx.out[2]) + l3_of(&k) + 4), 0);
	EXPECT_EQ(r32(data_of(fx.out[2]) + l4_of(&k) + 4), 2000 - 0x400);
}

static void vlan_tagged_frames_are_segmented(void)
{
	struct pkt k = { .vlan = 1, .payload = 1400 * 3 + 1, .tcpflags = 0x18,
			 .seq = 99, .id = 3 };
	struct pkt k6 = { .vlan = 1, .v6 = 1, .udp = 1, .payload = 800 * 2 };

	EXPECT_EQ(segment_and_verify(&k, 1400, 0, 0), 0);
	fx_teardown();
	EXPECT_EQ(segment_and_verify(&k6, 800, 0, 0), 0);
}

static void ipv4_and_tcp_options_are_copied_into_every_segment(void)
{
	struct pkt k = { .ipopt = 8, .tcpopt = 12, .payload = 1000 * 3,
			 .tcpflags = 0x10, .seq = 3, .id = 4 };

	EXPECT_EQ(segment_and_verify(&k, 1000, 0, 0), 0);
}

static void mss_cap_smaller_than_gso_size_resegments(void)
{
	struct pkt k = { .payload = 8000, .tcpflags = 0x18, .seq = 10,
			 .id = 1 };

	EXPECT_EQ(segment_and_verify(&k, 4000, 1000, 0), 0);
	EXPECT_EQ(fx.nout, 8);
}

static void mss_cap_larger_than_gso_size_is_ignored(void)
{
	struct pkt k = { .udp = 1, .payload = 3000 };

	EXPECT_EQ(segment_and_verify(&k, 1000, 1500, 0), 0);
	EXPECT_EQ(fx.nout, 3);
}

static void payload_within_gso_size_is_one_complete_segment(void)
{
	struct pkt k = { .payload = 700, .tcpflags = 0x19, .seq = 1 };

	EXPECT_EQ(segment_and_verify(&k, 1448, 0, 0), 0);
	EXPECT_EQ(fx.nout, 1);
}

static void partial_mode_leaves_pseudo_header_sum_and_offsets(void)
{
	struct pkt k = { .payload = 1448 * 3 + 5, .tcpflags = 0x18, .seq = 1,
			 .id = 8 };
	struct pkt k6 = { .v6 = 1, .udp = 1, .payload = 999 * 2 + 1 };

	EXPECT_EQ(segment_and_verify(&k, 1448, 0, BT_GSO_OUT_PARTIAL), 0);
	fx_teardown();
	EXPECT_EQ(segment_and_verify(&k6, 999, 0, BT_GSO_OUT_PARTIAL), 0);
}

static void partial_segments_complete_to_valid_checksums(void)
{
	struct pkt k = { .v6 = 1, .payload = 1000 * 3 + 3, .tcpflags = 0x10,
			 .seq = 1 };

	EXPECT_EQ(segment_and_verify(&k, 1000, 0, BT_GSO_OUT_PARTIAL), 0);
	for (uint32_t i = 0; i < fx.nout; i++) {
		struct bt_frame_meta *s = fx.out[i];

		EXPECT_EQ(bt_csum_complete(s), 0);
		EXPECT_EQ(s->vnet_flags, BT_VNET_F_DATA_VALID);
		EXPECT(l4_sum_ok(data_of(s), s->len, l3_of(&k), l4_of(&k), 1,
				 6));
	}
}

static void source_frame_is_not_changed(void)
{
	struct pkt k = { .payload = 3000, .tcpflags = 0x18, .seq = 1 };
	struct bt_frame_meta *m = super_frame(&k, 1000);
	size_t bytes = sizeof(*m) + m->len;
	uint8_t *copy = malloc(bytes);
	int same;

	EXPECT(copy);
	memcpy(copy, m, bytes);
	EXPECT_EQ(out_frames(3, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 3, FRAME_SIZE, 0), 3);
	same = !memcmp(copy, m, bytes);
	free(copy);
	EXPECT(same);
}

static void frame_without_gso_is_copied_with_checksum_completed(void)
{
	struct pkt k = { .udp = 1, .payload = 300 };
	struct bt_frame_meta *m = super_frame(&k, 0);
	uint8_t *d = data_of(m);
	uint32_t l4 = l4_of(&k);

	m->gso_type = 0;
	m->hdr_len = 0;
	w16(d + l4 + 4, m->len - l4);
	w16(d + l4 + 6, fold(pseudo_sum(d, m->len, l3_of(&k), l4, 0, 17)));
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(bt_gso_count(m, 100), 1);
	EXPECT_EQ(out_frames(1, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 100, fx.out, 1, FRAME_SIZE, 0), 1);
	EXPECT_EQ(fx.out[0]->len, m->len);
	EXPECT_EQ(fx.out[0]->vnet_flags, BT_VNET_F_DATA_VALID);
	EXPECT(l4_sum_ok(data_of(fx.out[0]), m->len, l3_of(&k), l4, 0, 17));
	EXPECT(!memcmp(data_of(fx.out[0]) + l4 + 8, d + l4 + 8, 300));
}

static void udp_checksum_of_zero_is_sent_as_ffff(void)
{
	struct pkt k = { .udp = 1, .payload = 64, .id = 1 };
	struct bt_frame_meta *m = super_frame(&k, 64);
	uint8_t *d = data_of(m), *s;
	uint32_t l3 = l3_of(&k), l4 = l4_of(&k), hl = hl_of(&k), c;

	/* The single segment's checksum would be c; adding c to a payload
	 * word (one's complement) makes it 0. */
	w16(d + l4 + 4, m->len - l4);
	w16(d + l4 + 6, 0);
	c = 0xffff - fold(byte_sum(d + l4, m->len - l4,
				   pseudo_sum(d, m->len, l3, l4, 0, 17)));
	w16(d + hl, fold(r16(d + hl) + c));
	EXPECT_EQ(fold(byte_sum(d + l4, m->len - l4,
				pseudo_sum(d, m->len, l3, l4, 0, 17))),
		  0xffff);
	EXPECT_EQ(out_frames(1, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 1, FRAME_SIZE, 0), 1);
	s = data_of(fx.out[0]);
	EXPECT_EQ(r16(s + l4 + 6), 0xffff);
	EXPECT(l4_sum_ok(s, fx.out[0]->len, l3, l4, 0, 17));
}

static void udp4_super_frame_without_checksum_gets_one_per_datagram(void)
{
	struct pkt k = { .udp = 1, .payload = 1000 * 3, .id = 5 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	m->vnet_flags = 0; /* the sender left the UDP checksum 0: none */
	w16(data_of(m) + l4_of(&k) + 6, 0);
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(out_frames(3, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 3, FRAME_SIZE, 0), 3);
	EXPECT_EQ(verify(m, &k, 1000, fx.out, 3, 0), 0);
}

static void tcp_ecn_super_frame_is_segmented(void)
{
	struct pkt k = { .v6 = 1, .payload = 1000 * 2, .tcpflags = 0x90,
			 .seq = 1 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	m->gso_type |= BT_GSO_ECN;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(out_frames(2, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 2, FRAME_SIZE, 0), 2);
	EXPECT_EQ(verify(m, &k, 1000, fx.out, 2, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Errors                                                              */

static void segment_fails_enospc_when_out_is_too_short(void)
{
	struct pkt k = { .payload = 4000, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	EXPECT_EQ(out_frames(4, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 3, FRAME_SIZE, 0), -ENOSPC);
}

static void segment_fails_enospc_when_a_segment_does_not_fit(void)
{
	struct pkt k = { .payload = 3 * 1448, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 1448);

	/* 1024-byte frames: 896 bytes of room, a segment needs 1502. */
	EXPECT_EQ(out_frames(3, 1024), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 3, 1024, 0), -ENOSPC);
	for (int i = 0; i < 3; i++) /* found before writing anything */
		EXPECT(data_of(fx.out[i])[0] == 0xee && fx.out[i]->len == 0);
	/* ... but with the cap at 800 bytes they fit. */
	EXPECT_EQ(bt_gso_count(m, 800), 6);
	bt_pool_put((uint32_t)fx.pool, fx.refs, fx.nout, NULL, 0);
	fx.nout = 0;
	EXPECT_EQ(bt_pool_alloc((uint32_t)fx.pool, fx.refs, 6), 6);
	fx.nout = 6;
	for (int i = 0; i < 6; i++)
		fx.out[i] = meta_of(fx.pool, fx.refs[i]);
	EXPECT_EQ(bt_gso_segment(m, 800, fx.out, 6, 1024, 0), 6);
	EXPECT_EQ(verify(m, &k, 800, fx.out, 6, 0), 0);
}

static void segment_fails_enospc_when_data_off_leaves_no_room(void)
{
	struct pkt k = { .payload = 2000, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	EXPECT_EQ(out_frames(2, FRAME_SIZE), 0);
	fx.out[1]->data_off = FRAME_SIZE - 100;
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 2, FRAME_SIZE, 0), -ENOSPC);
	fx.out[1]->data_off = FRAME_SIZE + 64;
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 2, FRAME_SIZE, 0), -ENOSPC);
	fx.out[1]->data_off = HEADROOM;
}

static void segment_and_count_refuse_bad_metadata(void)
{
	struct pkt k = { .payload = 2000, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	EXPECT_EQ(out_frames(4, FRAME_SIZE), 0);
	m->gso_size = 0;
	EXPECT_EQ(bt_gso_count(m, 0), -EINVAL);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 4, FRAME_SIZE, 0), -EINVAL);
	m->gso_size = 1000;
	m->gso_type = BT_GSO_TCPV6; /* the frame is IPv4 */
	EXPECT_EQ(bt_gso_count(m, 0), -EINVAL);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 4, FRAME_SIZE, 0), -EINVAL);
}

static void segment_ignores_a_wrong_hdr_len_hint(void)
{
	struct pkt k = { .tcpopt = 12, .payload = 3000, .tcpflags = 0x18,
			 .seq = 4 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	m->hdr_len = 20; /* not the headers: bt_gso_segment parses them */
	EXPECT_EQ(out_frames(3, FRAME_SIZE), 0);
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 3, FRAME_SIZE, 0), 3);
	EXPECT_EQ(verify(m, &k, 1000, fx.out, 3, 0), 0);
}

static void segment_refuses_source_among_outputs(void)
{
	struct pkt k = { .payload = 2000, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	EXPECT_EQ(out_frames(2, FRAME_SIZE), 0);
	fx.out[1] = m;
	EXPECT_EQ(bt_gso_segment(m, 0, fx.out, 2, FRAME_SIZE, 0), -EINVAL);
	fx.out[1] = meta_of(fx.pool, fx.refs[1]);
}

/* ------------------------------------------------------------------ */
/* Checksum completion                                                 */

static void csum_complete_fills_a_partial_tcp_checksum(void)
{
	struct pkt k = { .v6 = 1, .payload = 333, .tcpflags = 0x18 };
	struct bt_frame_meta *m = super_frame(&k, 0);
	uint8_t *d = data_of(m);
	uint32_t l3 = l3_of(&k), l4 = l4_of(&k);

	m->gso_type = 0;
	w16(d + l3 + 4, m->len - l4);
	w16(d + l4 + 16, fold(pseudo_sum(d, m->len, l3, l4, 1, 6)));
	EXPECT(!l4_sum_ok(d, m->len, l3, l4, 1, 6));
	EXPECT_EQ(bt_csum_complete(m), 0);
	EXPECT(l4_sum_ok(d, m->len, l3, l4, 1, 6));
	EXPECT_EQ(m->vnet_flags, BT_VNET_F_DATA_VALID);
}

static void csum_complete_refuses_offsets_outside_the_data(void)
{
	struct pkt k = { .payload = 10, .tcpflags = 0x18 };
	struct bt_frame_meta *m = super_frame(&k, 0);
	uint8_t *copy = malloc(m->len);
	int same;

	EXPECT(copy);
	memcpy(copy, data_of(m), m->len);
	m->gso_type = 0;
	m->csum_start = (uint16_t)(m->len - 1);
	m->csum_offset = 0;
	EXPECT_EQ(bt_csum_complete(m), -EINVAL);
	m->csum_start = 0;
	m->csum_offset = (uint16_t)(m->len - 1);
	EXPECT_EQ(bt_csum_complete(m), -EINVAL);
	m->csum_start = 0xffff;
	m->csum_offset = 0xffff;
	EXPECT_EQ(bt_csum_complete(m), -EINVAL);
	EXPECT_EQ(m->vnet_flags, BT_VNET_F_NEEDS_CSUM);
	same = !memcmp(copy, data_of(m), m->len);
	free(copy);
	EXPECT(same);
}

static void csum_complete_without_needs_csum_changes_nothing(void)
{
	struct pkt k = { .payload = 10, .tcpflags = 0x18 };
	struct bt_frame_meta *m = super_frame(&k, 0);
	uint8_t before[64];

	memcpy(before, data_of(m), 64);
	m->gso_type = 0;
	m->vnet_flags = 0;
	EXPECT_EQ(bt_csum_complete(m), 0);
	EXPECT(!memcmp(before, data_of(m), 64));
	EXPECT_EQ(m->vnet_flags, 0);
}

/* ------------------------------------------------------------------ */
/* bt_offload_check                                                    */

static struct bt_frame_meta *good_frame(void)
{
	struct pkt k = { .payload = 3000, .tcpflags = 0x10 };

	return super_frame(&k, 1000);
}

static void check_accepts_all_zero_metadata(void)
{
	struct bt_frame_meta *m = calloc(1, sizeof(*m) + 1);

	EXPECT(m);
	fx.src = m;
	m->data_off = sizeof(*m);
	m->len = 1; /* not even an Ethernet header: nothing to check */
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(bt_gso_count(m, 0), 1);
}

static void check_accepts_a_good_super_frame_of_each_type(void)
{
	struct pkt k4 = { .payload = 3000 }, k6 = { .v6 = 1, .payload = 3000 };
	struct pkt u4 = { .udp = 1, .payload = 3000 };
	struct pkt u6 = { .udp = 1, .v6 = 1, .vlan = 1, .payload = 3000 };

	EXPECT_EQ(bt_offload_check(super_frame(&k4, 1000)), BT_OFF_OK);
	free(fx.src);
	EXPECT_EQ(bt_offload_check(super_frame(&k6, 1000)), BT_OFF_OK);
	free(fx.src);
	EXPECT_EQ(bt_offload_check(super_frame(&u4, 1000)), BT_OFF_OK);
	free(fx.src);
	EXPECT_EQ(bt_offload_check(super_frame(&u6, 1000)), BT_OFF_OK);
}

static void check_refuses_ufo(void)
{
	struct bt_frame_meta *m = good_frame();

	m->gso_type = BT_GSO_UDP;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_TYPE);
}

static void check_refuses_unknown_gso_types(void)
{
	struct bt_frame_meta *m = good_frame();
	static const uint8_t bad[] = { 2, 6, 7, 0x7f, 0x82, 0x85, 0x80 };

	for (size_t i = 0; i < sizeof(bad); i++) {
		m->gso_type = bad[i];
		if (bt_offload_check(m) != BT_OFF_BAD_TYPE) {
			fail_at(__LINE__, "gso_type %#x accepted", bad[i]);
			return;
		}
	}
}

static void check_allows_ecn_with_tcp_only(void)
{
	struct pkt u = { .udp = 1, .payload = 3000 };
	struct bt_frame_meta *m = good_frame();

	m->gso_type = BT_GSO_TCPV4 | BT_GSO_ECN;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	free(fx.src);
	m = super_frame(&u, 1000);
	m->gso_type = BT_GSO_UDP_L4 | BT_GSO_ECN;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_TYPE);
}

static void check_refuses_gso_size_zero(void)
{
	struct bt_frame_meta *m = good_frame();

	m->gso_size = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_GSO_SIZE);
}

static void check_refuses_segments_whose_ip_length_overflows(void)
{
	struct pkt k = { .ipopt = 40, .payload = 65500, .tcpflags = 0x10 };
	struct bt_frame_meta *m = super_frame(&k, 65500);

	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_GSO_SIZE);
	m->gso_size = 60000;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
}

static void check_refuses_hdr_len_past_the_data(void)
{
	struct bt_frame_meta *m = good_frame();

	m->hdr_len = (uint16_t)(m->len + 1);
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HDR_LEN);
	m->gso_type = 0; /* plain frames too, as tun.c does */
	m->gso_size = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HDR_LEN);
}

static void check_fixes_hdr_len_up_to_the_real_headers(void)
{
	struct pkt k = { .vlan = 1, .tcpopt = 12, .payload = 3000 };
	struct bt_frame_meta *m = super_frame(&k, 1000);

	m->hdr_len = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(m->hdr_len, hl_of(&k));
	m->hdr_len = (uint16_t)(hl_of(&k) + 500);
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
	EXPECT_EQ(m->hdr_len, hl_of(&k));
}

static void check_refuses_csum_offsets_outside_the_data(void)
{
	struct bt_frame_meta *m = good_frame();

	m->gso_type = 0;
	m->gso_size = 0;
	m->csum_start = (uint16_t)(m->len - 2);
	m->csum_offset = 1;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_CSUM);
	m->csum_start = 0xffff;
	m->csum_offset = 0xffff;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_CSUM);
	m->csum_start = (uint16_t)(m->len - 2);
	m->csum_offset = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_OK);
}

static void check_refuses_gso_csum_that_is_not_the_l4_field(void)
{
	struct bt_frame_meta *m = good_frame();

	m->csum_offset = 6; /* TCP's is at 16 */
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_CSUM);
	m->csum_offset = 16;
	m->csum_start = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_CSUM);
}

static void check_refuses_gso_type_that_does_not_match_headers(void)
{
	struct pkt t4 = { .payload = 3000 }, t6 = { .v6 = 1, .payload = 3000 };
	struct pkt u4 = { .udp = 1, .payload = 3000 };
	struct bt_frame_meta *m = super_frame(&t4, 1000);

	m->vnet_flags = 0;
	m->gso_type = BT_GSO_TCPV6;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
	m->gso_type = BT_GSO_UDP_L4;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
	free(fx.src);
	m = super_frame(&t6, 1000);
	m->vnet_flags = 0;
	m->gso_type = BT_GSO_TCPV4;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
	free(fx.src);
	m = super_frame(&u4, 1000);
	m->vnet_flags = 0;
	m->gso_type = BT_GSO_TCPV4;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
}

static void check_refuses_gso_on_non_ip_or_truncated_headers(void)
{
	struct bt_frame_meta *m = good_frame();
	uint8_t *d = data_of(m);

	w16(d + 12, 0x0806); /* ARP */
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
	w16(d + 12, 0x0800);
	m->len = 14 + 20 + 10; /* TCP header cut */
	m->hdr_len = 0;
	m->vnet_flags = 0;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
	m->len = 10;
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
}

static void check_refuses_gso_on_ipv4_fragments(void)
{
	struct bt_frame_meta *m = good_frame();

	data_of(m)[14 + 6] |= 0x20; /* more fragments */
	EXPECT_EQ(bt_offload_check(m), BT_OFF_BAD_HEADERS);
}

#define T(name) { #name, name }
static const struct {
	const char *name;
	void (*fn)(void);
} tests[] = {
	T(tcpv4_super_frame_becomes_valid_segments),
	T(tcpv6_super_frame_becomes_valid_segments),
	T(udp4_uso_super_frame_becomes_valid_datagrams),
	T(udp6_uso_super_frame_becomes_valid_datagrams),
	T(last_segment_is_shorter_when_payload_is_not_a_multiple),
	T(odd_sizes_keep_checksums_right),
	T(fin_and_psh_only_on_last_cwr_only_on_first),
	T(sequence_number_and_ipv4_id_wrap_around),
	T(vlan_tagged_frames_are_segmented),
	T(ipv4_and_tcp_options_are_copied_into_every_segment),
	T(mss_cap_smaller_than_gso_size_resegments),
	T(mss_cap_larger_than_gso_size_is_ignored),
	T(payload_within_gso_size_is_one_complete_segment),
	T(partial_mode_leaves_pseudo_header_sum_and_offsets),
	T(partial_segments_complete_to_valid_checksums),
	T(source_frame_is_not_changed),
	T(frame_without_gso_is_copied_with_checksum_completed),
	T(udp_checksum_of_zero_is_sent_as_ffff),
	T(udp4_super_frame_without_checksum_gets_one_per_datagram),
	T(tcp_ecn_super_frame_is_segmented),
	T(segment_fails_enospc_when_out_is_too_short),
	T(segment_fails_enospc_when_a_segment_does_not_fit),
	T(segment_fails_enospc_when_data_off_leaves_no_room),
	T(segment_and_count_refuse_bad_metadata),
	T(segment_ignores_a_wrong_hdr_len_hint),
	T(segment_refuses_source_among_outputs),
	T(csum_complete_fills_a_partial_tcp_checksum),
	T(csum_complete_refuses_offsets_outside_the_data),
	T(csum_complete_without_needs_csum_changes_nothing),
	T(check_accepts_all_zero_metadata),
	T(check_accepts_a_good_super_frame_of_each_type),
	T(check_refuses_ufo),
	T(check_refuses_unknown_gso_types),
	T(check_allows_ecn_with_tcp_only),
	T(check_refuses_gso_size_zero),
	T(check_refuses_segments_whose_ip_length_overflows),
	T(check_refuses_hdr_len_past_the_data),
	T(check_fixes_hdr_len_up_to_the_real_headers),
	T(check_refuses_csum_offsets_outside_the_data),
	T(check_refuses_gso_csum_that_is_not_the_l4_field),
	T(check_refuses_gso_type_that_does_not_match_headers),
	T(check_refuses_gso_on_non_ip_or_truncated_headers),
	T(check_refuses_gso_on_ipv4_fragments),
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *only = argc > 1 ? argv[1] : NULL; /* substring filter */

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && !strstr(tests[i].name, only))
			continue;
		failed_now = 0;
		memset(&fx, 0, sizeof(fx));
		tests[i].fn();
		fx_teardown();
		if (failed_now) {
			printf("FAIL %s: %s\n", tests[i].name, fail_msg);
			failed++;
		} else {
			printf("ok %s\n", tests[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
