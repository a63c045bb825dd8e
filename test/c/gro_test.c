/* SPDX-License-Identifier: MIT */
/*
 * Spec tests of software GRO (bt_gro_batch, c/gro.c), one behaviour per
 * test, on real pool frames.
 *
 * The packets are built here with their own checksum code (written apart
 * from bt_csum.h), and the super-frames are checked independently: split
 * by gso_size with headers rebuilt by hand, they must give back the
 * original frames byte for byte, and the partial checksum completed over
 * the super-frame must verify.
 *
 * Output: "ok NAME" or "FAIL NAME: reason" per test, then "N passed, N failed".
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bt_offload.h"
#include "bulktap.h"

#include "expect.h"

/* ------------------------------------------------------------------ */
/* Fixture: one pool per test, every frame back and the pool destroyed */

#define NF 96
#define HEADROOM 128
#define BIG 131072 /* room for a 64 KiB super-frame */

static struct {
	int32_t pool;
	uint32_t frame_size;
	struct bt_frame_meta *f[NF]; /* the batch handed to bt_gro_batch */
	uint8_t *orig[NF]; /* each frame's data before the call */
	uint32_t orig_len[NF];
	struct bt_frame_meta *out[NF], *freed[NF];
	uint32_t nout, nfreed;
	uint32_t n;
} fx;

static int fx_setup(uint32_t frame_size)
{
	uint32_t refs[NF];
	uint64_t info[BT_PI_COUNT];
	uint8_t *base;

	fx.frame_size = frame_size;
	fx.pool = bt_pool_create(NF, frame_size, HEADROOM);
	if (fx.pool <= 0)
		return -1;
	if (bt_pool_alloc((uint32_t)fx.pool, refs, NF) != NF)
		return -1;
	bt_pool_info((uint32_t)fx.pool, info, BT_PI_COUNT);
	base = bt_pool_base((uint32_t)fx.pool);
	for (uint32_t i = 0; i < NF; i++)
		fx.f[i] = (struct bt_frame_meta *)(base +
						   (size_t)(refs[i] &
							    BT_REF_INDEX_MASK) *
							   info[BT_PI_FRAME_SIZE]);
	return 0;
}

static void fx_teardown(void)
{
	uint64_t info[BT_PI_COUNT];
	uint32_t ref;

	if (fx.pool > 0) {
		bt_pool_info((uint32_t)fx.pool, info, BT_PI_COUNT);
		for (uint32_t i = 0; i < NF; i++) {
			ref = (uint32_t)info[BT_PI_SLOT] << BT_REF_INDEX_BITS | i;
			bt_pool_put((uint32_t)fx.pool, &ref, 1, NULL, 0);
		}
		if (bt_pool_destroy((uint32_t)fx.pool) != 0)
			fail_at(__LINE__, "pool destroy failed");
	}
	for (uint32_t i = 0; i < NF; i++)
		free(fx.orig[i]);
	memset(&fx, 0, sizeof(fx));
}

static uint8_t *data(struct bt_frame_meta *m)
{
	return (uint8_t *)m + m->data_off;
}

/* ------------------------------------------------------------------ */
/* Independent checksum and byte helpers                               */

/* Sum of big-endian 16-bit words, byte by byte, folded at the end. */
static uint32_t sum_bytes(uint32_t acc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		acc += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc > 0xffff)
		acc = (acc >> 16) + (acc & 0xffff);
	return (uint16_t)acc;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) << 16 | rd16(p + 2);
}

static void wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, v >> 16);
	wr16(p + 2, v);
}

/* Pseudo-header of a TCP segment of l4 bytes, for the IP header at ip. */
static uint32_t pseudo(const uint8_t *ip, uint32_t l4)
{
	if ((ip[0] >> 4) == 6)
		return sum_bytes(0, ip + 8, 32) + 6 + (l4 >> 16) + (l4 & 0xffff);
	return sum_bytes(0, ip + 12, 8) + 6 + l4;
}

/* Stream byte at sequence number x of flow tag t: payload is checkable. */
static uint8_t stream_byte(uint32_t x, uint8_t t)
{
	return (uint8_t)(x * 7u + (x >> 9) + t);
}

/* ------------------------------------------------------------------ */
/* Packet builder                                                      */

struct seg {
	int v6;
	int vlan; /* 0: untagged, else the VLAN id */
	uint8_t host; /* last byte of the source address: the flow */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint16_t win;
	uint8_t flags; /* TCP flags, ACK unless set */
	uint16_t ipid;
	uint8_t tos, ttl;
	int ipopt; /* IPv4: add 4 bytes of options (NOPs) */
	uint32_t tsval; /* timestamp option value */
	uint32_t payload;
	int bad_csum; /* flip the TCP checksum */
	int udp; /* a UDP datagram instead */
};

static struct seg base_seg(int v6)
{
	struct seg s = { .v6 = v6,
			 .host = 1,
			 .sport = 40000,
			 .dport = 5201,
			 .seq = 1000000,
			 .ack = 777,
			 .win = 512,
			 .flags = 0x10,
			 .ipid = 100,
			 .ttl = 64,
			 .tsval = 4242,
			 .payload = 1448 };
	return s;
}

/* Write s into frame i of the batch, with valid checksums; keep a copy. */
static void build(uint32_t i, const struct seg *s)
{
	struct bt_frame_meta *m = fx.f[i];
	uint8_t *d = data(m), *ip, *th;
	uint32_t off = 12, iphl = s->v6 ? 40 : (s->ipopt ? 24 : 20);
	uint32_t thl = s->udp ? 8 : 32, l4 = thl + s->payload;

	memset(d, 0, 200);
	memcpy(d, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01", 12);
	if (s->vlan) {
		wr16(d + 12, 0x8100);
		wr16(d + 14, (uint32_t)s->vlan);
		off = 16;
	}
	wr16(d + off, s->v6 ? 0x86dd : 0x0800);
	ip = d + off + 2;
	th = ip + iphl;
	if (s->v6) {
		ip[0] = 0x60 | s->tos >> 4;
		ip[1] = (uint8_t)(s->tos << 4 | 0x1);
		wr16(ip + 2, 0x2345); /* flow label */
		wr16(ip + 4, l4);
		ip[6] = s->udp ? 17 : 6;
		ip[7] = s->ttl;
		ip[8] = 0xfd;
		ip[23] = s->host;
		ip[24] = 0xfd;
		ip[39] = 2;
	} else {
		ip[0] = (uint8_t)(0x40 | iphl / 4);
		ip[1] = s->tos;
		wr16(ip + 2, iphl + l4);
		wr16(ip + 4, s->ipid);
		wr16(ip + 6, 0x4000); /* DF */
		ip[8] = s->ttl;
		ip[9] = s->udp ? 17 : 6;
		ip[12] = 10;
		ip[15] = s->host;
		ip[16] = 10;
		ip[19] = 2;
		if (s->ipopt)
			memset(ip + 20, 1, 4);
		wr16(ip + 10, ~fold(sum_bytes(0, ip, iphl)) & 0xffff);
	}
	wr16(th, s->sport);
	wr16(th + 2, s->dport);
	if (s->udp) {
		wr16(th + 4, l4);
	} else {
		wr32(th + 4, s->seq);
		wr32(th + 8, s->ack);
		th[12] = 8 << 4;
		th[13] = s->flags;
		wr16(th + 14, s->win);
		/* NOP NOP timestamp(tsval, 99) */
		th[20] = 1;
		th[21] = 1;
		th[22] = 8;
		th[23] = 10;
		wr32(th + 24, s->tsval);
		wr32(th + 28, 99);
	}
	for (uint32_t k = 0; k < s->payload; k++)
		th[thl + k] = stream_byte(s->seq + k, s->host);
	wr16(th + (s->udp ? 6 : 16),
	     ~fold(pseudo(ip, l4) + sum_bytes(0, th, l4)) & 0xffff);
	if (s->udp)
		ip[s->v6 ? 6 : 9] = 17;
	if (s->bad_csum)
		th[17] ^= 0x40;
	m->len = (uint32_t)(th - d) + l4;
	fx.orig_len[i] = m->len;
	free(fx.orig[i]);
	fx.orig[i] = malloc(m->len);
	memcpy(fx.orig[i], d, m->len);
	if (i + 1 > fx.n)
		fx.n = i + 1;
}

/* count consecutive segments of one flow, from frame `from` */
static struct seg stream(uint32_t from, uint32_t count, struct seg s)
{
	for (uint32_t i = 0; i < count; i++) {
		build(from + i, &s);
		s.seq += s.payload;
		s.ipid++;
	}
	return s;
}

static void gro(uint32_t max_len)
{
	memcpy(fx.out, fx.f, sizeof(fx.out));
	fx.nout = bt_gro_batch(fx.out, fx.n, fx.frame_size, max_len, fx.freed,
			       &fx.nfreed);
}

/* Frame i came out unchanged: same bytes, no offload metadata. */
static int untouched(uint32_t i)
{
	struct bt_frame_meta *m = fx.f[i];

	return m->len == fx.orig_len[i] &&
	       memcmp(data(m), fx.orig[i], m->len) == 0 &&
	       m->vnet_flags == 0 && m->gso_type == 0 && m->gso_size == 0 &&
	       m->hdr_len == 0 && m->csum_start == 0 && m->csum_offset == 0;
}

/*
 * The independent check: super-frame m, made of original frames
 * first..first+k-1 (in the batch), split by gso_size with headers rebuilt
 * by hand, gives back each original frame byte for byte; and its partial
 * checksum, completed, verifies over the whole super-frame.
 */
static int resegments_idx(struct bt_frame_meta *m, const uint32_t *idx,
			  uint32_t k, char *why)
{
	const uint8_t *d = data(m);
	uint32_t hl = m->hdr_len, gs = m->gso_size, pay = m->len - hl;
	uint32_t l3 = rd16(d + 12) == 0x8100 ? 18 : 14;
	int v6 = (d[l3] >> 4) == 6;
	uint32_t l4 = m->csum_start, seq0 = rd32(d + l4 + 4);
	uint8_t seg[2048], whole_th[2];
	uint32_t acc;

	if (m->csum_offset != 16 || l4 != l3 + (v6 ? 40 : 20) ||
	    !(m->vnet_flags & BT_VNET_F_NEEDS_CSUM)) {
		sprintf(why, "checksum metadata");
		return 0;
	}
	/* completing the partial sum gives a checksum that verifies */
	acc = sum_bytes(0, d + l4, m->len - l4);
	whole_th[0] = d[l4 + 16];
	whole_th[1] = d[l4 + 17];
	{
		uint8_t *w = (uint8_t *)d;
		uint16_t c = (uint16_t)~fold(acc);

		wr16(w + l4 + 16, c);
		acc = pseudo(d + l3, m->len - l4) + sum_bytes(0, d + l4, m->len - l4);
		w[l4 + 16] = whole_th[0];
		w[l4 + 17] = whole_th[1];
		if (fold(acc) != 0xffff) {
			sprintf(why, "completed checksum does not verify");
			return 0;
		}
	}
	if ((pay + gs - 1) / gs != k) {
		sprintf(why, "%u bytes / gso_size %u is not %u segments", pay,
			gs, k);
		return 0;
	}
	for (uint32_t s = 0; s < k; s++) {
		uint32_t n = s + 1 < k ? gs : pay - s * gs, len = hl + n;
		uint8_t *ip = seg + l3, *th = seg + l4;

		memcpy(seg, d, hl);
		memcpy(seg + hl, d + hl + s * gs, n);
		if (v6) {
			wr16(ip + 4, len - l3 - 40);
		} else {
			wr16(ip + 2, len - l3);
			wr16(ip + 4, rd16(ip + 4) + s);
			wr16(ip + 10, 0);
			wr16(ip + 10, ~fold(sum_bytes(0, ip, 20)) & 0xffff);
		}
		wr32(th + 4, seq0 + s * gs);
		if (s + 1 < k)
			th[13] &= (uint8_t)~0x09; /* FIN, PSH: last only */
		if (s > 0)
			th[13] &= (uint8_t)~0x80; /* CWR: first only */
		wr16(th + 16, 0);
		wr16(th + 16, ~fold(pseudo(ip, len - l4) +
				    sum_bytes(0, th, len - l4)) & 0xffff);
		if (len != fx.orig_len[idx[s]] ||
		    memcmp(seg, fx.orig[idx[s]], len) != 0) {
			sprintf(why, "segment %u differs from frame %u", s,
				idx[s]);
			return 0;
		}
	}
	return 1;
}

static int resegments_to(struct bt_frame_meta *m, uint32_t first,
			 uint32_t k, char *why)
{
	uint32_t idx[NF];

	for (uint32_t i = 0; i < k && i < NF; i++)
		idx[i] = first + i;
	return k <= NF && resegments_idx(m, idx, k, why);
}

#define EXPECT_RESEG(m, first, k)                                        \
	do {                                                             \
		char why_[200];                                          \
		if (!resegments_to((m), (first), (k), why_)) {           \
			fail_at(__LINE__, "resegmenting: %s", why_);     \
			return;                                          \
		}                                                        \
	} while (0)

/* ================================================================== */

static void ipv4_45_segments_become_one_super_frame(void)
{
	struct bt_frame_meta *h = fx.f[0];
	const uint8_t *d = data(h);

	stream(0, 45, base_seg(0));
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 1);
	EXPECT_EQ(fx.nfreed, 44);
	EXPECT(fx.out[0] == h);
	for (uint32_t i = 0; i < 44; i++)
		EXPECT(fx.freed[i] == fx.f[i + 1]);
	EXPECT_EQ(h->len, 66 + 45 * 1448);
	EXPECT_EQ(h->gso_type, BT_GSO_TCPV4);
	EXPECT_EQ(h->gso_size, 1448);
	EXPECT_EQ(h->hdr_len, 66);
	EXPECT_EQ(h->vnet_flags, BT_VNET_F_NEEDS_CSUM);
	EXPECT_EQ(h->csum_start, 34);
	EXPECT_EQ(h->csum_offset, 16);
	EXPECT_EQ(rd16(d + 16), 20 + 32 + 45 * 1448);
	EXPECT_EQ(fold(sum_bytes(0, d + 14, 20)), 0xffff);
	/* the field holds the pseudo-header sum, folded, not complemented */
	EXPECT_EQ(rd16(d + 50), fold(pseudo(d + 14, h->len - 34)));
	for (uint32_t k = 0; k < 45 * 1448; k++)
		if (d[66 + k] != stream_byte(1000000 + k, 1))
			EXPECT(!"payload byte-exact");
	EXPECT_RESEG(h, 0, 45);
}

static void ipv6_45_segments_become_one_super_frame(void)
{
	struct bt_frame_meta *h = fx.f[0];
	const uint8_t *d = data(h);

	stream(0, 45, base_seg(1));
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 1);
	EXPECT_EQ(fx.nfreed, 44);
	EXPECT_EQ(h->len, 86 + 45 * 1448);
	EXPECT_EQ(h->gso_type, BT_GSO_TCPV6);
	EXPECT_EQ(h->gso_size, 1448);
	EXPECT_EQ(h->hdr_len, 86);
	EXPECT_EQ(h->csum_start, 54);
	EXPECT_EQ(rd16(d + 18), 32 + 45 * 1448);
	EXPECT_EQ(rd16(d + 70), fold(pseudo(d + 14, h->len - 54)));
	for (uint32_t k = 0; k < 45 * 1448; k++)
		if (d[86 + k] != stream_byte(1000000 + k, 1))
			EXPECT(!"payload byte-exact");
	EXPECT_RESEG(h, 0, 45);
}

static void interleaved_flows_become_two_super_frames(void)
{
	struct seg a = base_seg(0), b = base_seg(0);

	b.host = 2;
	b.seq = 5;
	for (uint32_t i = 0; i < 40; i += 2) {
		a = stream(i, 1, a);
		b = stream(i + 1, 1, b);
	}
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(fx.out[0] == fx.f[0] && fx.out[1] == fx.f[1]);
	EXPECT_EQ(fx.out[0]->len, 66 + 20 * 1448);
	EXPECT_EQ(fx.out[1]->len, 66 + 20 * 1448);
	/* freed in arrival order */
	for (uint32_t i = 0; i < 38; i++)
		EXPECT(fx.freed[i] == fx.f[i + 2]);
}

static void seq_gap_closes_the_flow(void)
{
	struct seg s = stream(0, 5, base_seg(0));

	s.seq += 1; /* a byte missing */
	stream(5, 5, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(fx.out[0] == fx.f[0] && fx.out[1] == fx.f[5]);
	EXPECT_RESEG(fx.f[0], 0, 5);
	EXPECT_RESEG(fx.f[5], 5, 5);
}

/* Frames 0..3 of a stream, frame 4 changed by `spoil`, frames 5..7 go on
 * from it: the change must stop the merge at 4 (which starts a new one). */
static void changed_at_4(void (*spoil)(struct seg *), uint32_t expect_out)
{
	struct seg s = stream(0, 4, base_seg(0));

	spoil(&s);
	stream(4, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	if (fx.nout != expect_out)
		fail_at(__LINE__, "%u frames out, expected %u", fx.nout,
			expect_out);
}

static void spoil_ack(struct seg *s)
{
	s->ack++;
}

static void spoil_tsval(struct seg *s)
{
	s->tsval++;
}

static void spoil_win(struct seg *s)
{
	s->win++;
}

static void spoil_ttl(struct seg *s)
{
	s->ttl--;
}

static void spoil_ipid(struct seg *s)
{
	s->ipid += 2;
}

static void changed_ack_closes_the_flow(void)
{
	changed_at_4(spoil_ack, 2);
	EXPECT(!failed_now);
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[4], 4, 4);
}

static void different_options_close_the_flow(void)
{
	changed_at_4(spoil_tsval, 2);
	EXPECT(!failed_now);
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[4], 4, 4);
}

static void changed_window_closes_the_flow(void)
{
	changed_at_4(spoil_win, 2);
}

static void changed_ttl_closes_the_flow(void)
{
	changed_at_4(spoil_ttl, 2);
}

static void ipv4_id_not_consecutive_closes_the_flow(void)
{
	changed_at_4(spoil_ipid, 2);
}

/* Frame 4 is `odd`; it passes untouched and frames 5.. start anew. */
static void odd_one_at_4(struct seg odd)
{
	struct seg s = stream(0, 4, base_seg(0));

	odd.seq = s.seq;
	odd.ipid = s.ipid;
	build(4, &odd);
	s.seq += odd.payload;
	s.ipid++;
	stream(5, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 3);
	EXPECT(fx.out[0] == fx.f[0] && fx.out[1] == fx.f[4] &&
	       fx.out[2] == fx.f[5]);
	EXPECT(untouched(4));
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[5], 5, 4);
}

static void syn_is_never_merged_and_closes_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.flags = 0x12;
	odd_one_at_4(odd);
}

static void rst_is_never_merged_and_closes_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.flags = 0x14;
	odd_one_at_4(odd);
}

static void urg_is_never_merged_and_closes_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.flags = 0x30;
	odd_one_at_4(odd);
}

static void ipv4_options_are_never_merged_and_close_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.ipopt = 1;
	odd_one_at_4(odd);
}

static void bad_tcp_checksum_is_never_merged_and_closes_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.bad_csum = 1;
	odd_one_at_4(odd);
}

static void pure_ack_is_never_merged_and_closes_the_flow(void)
{
	struct seg odd = base_seg(0);

	odd.payload = 0;
	odd_one_at_4(odd);
}

static void spoil_tos(struct seg *s)
{
	s->tos = 0x10;
}

static void changed_ipv4_tos_closes_the_flow(void)
{
	changed_at_4(spoil_tos, 2);
}

static void changed_ipv4_df_closes_the_flow(void)
{
	struct seg s = stream(0, 4, base_seg(0));
	uint8_t *ip;

	stream(4, 4, s);
	/* frames 4..7 without DF: header checksums fixed by hand */
	for (uint32_t i = 4; i < 8; i++) {
		ip = data(fx.f[i]) + 14;
		ip[6] = 0;
		wr16(ip + 10, 0);
		wr16(ip + 10, ~fold(sum_bytes(0, ip, 20)) & 0xffff);
		memcpy(fx.orig[i] + 14, ip, 20);
	}
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[4], 4, 4);
}

/* IPv6 frames 0..3, frame 4 changed by spoil, 5..7 go on. */
static void changed_at_4_v6(void (*spoil)(struct seg *))
{
	struct seg s = stream(0, 4, base_seg(1));

	spoil(&s);
	stream(4, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[4], 4, 4);
}

static void changed_ipv6_traffic_class_closes_the_flow(void)
{
	changed_at_4_v6(spoil_tos);
}

static void changed_ipv6_hop_limit_closes_the_flow(void)
{
	changed_at_4_v6(spoil_ttl);
}

static void ipv4_flow_with_options_does_not_merge(void)
{
	struct seg s = base_seg(0);

	s.ipopt = 1;
	stream(0, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 4);
	for (uint32_t i = 0; i < 4; i++)
		EXPECT(untouched(i));
}

static void urgent_flow_does_not_merge(void)
{
	struct seg s = base_seg(0);

	s.flags = 0x30;
	stream(0, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 4);
}

static void psh_on_the_first_takes_nothing_after_it(void)
{
	struct seg s = base_seg(0);

	s.flags = 0x18;
	s = stream(0, 1, s);
	s.flags = 0x10;
	stream(1, 3, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(untouched(0));
	EXPECT_RESEG(fx.f[1], 1, 3);
}

static void frame_longer_than_its_ip_length_is_never_merged(void)
{
	struct seg s = stream(0, 2, base_seg(0));

	s.payload = 1000;
	stream(2, 1, s);
	fx.f[2]->len += 4; /* trailing bytes the IP header does not count */
	for (uint32_t i = 0; i < 3; i++) /* so checksums do not decide */
		fx.f[i]->vnet_flags = BT_VNET_F_DATA_VALID;
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_EQ(fx.f[2]->len, fx.orig_len[2] + 4);
	EXPECT_EQ(fx.f[2]->gso_type, 0);
	EXPECT_RESEG(fx.f[0], 0, 2);
}

static void bad_ipv4_header_checksum_is_never_merged(void)
{
	uint8_t *ip;

	stream(0, 4, base_seg(0));
	ip = data(fx.f[2]) + 14;
	ip[10] ^= 1;
	fx.orig[2][24] ^= 1;
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 3);
	EXPECT(untouched(2));
	EXPECT(untouched(3)); /* seq after a frame left out: not merged */
	EXPECT_RESEG(fx.f[0], 0, 2);
}

static void bad_checksum_of_the_head_stops_its_merge(void)
{
	struct seg s = base_seg(0);

	s.bad_csum = 1;
	s = stream(0, 1, s);
	s.bad_csum = 0;
	stream(1, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(untouched(0));
	EXPECT_RESEG(fx.f[1], 1, 4);
}

static void data_valid_frames_are_trusted(void)
{
	struct seg s = base_seg(0);

	s.bad_csum = 1; /* a DATA_VALID frame's checksum is not looked at */
	stream(0, 3, s);
	for (uint32_t i = 0; i < 3; i++)
		fx.f[i]->vnet_flags = BT_VNET_F_DATA_VALID;
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 1);
	EXPECT_EQ(fx.f[0]->vnet_flags, BT_VNET_F_NEEDS_CSUM);
	EXPECT_EQ(fx.f[0]->len, 66 + 3 * 1448);
}

static void needs_csum_frames_merge(void)
{
	stream(0, 3, base_seg(1));
	for (uint32_t i = 0; i < 3; i++) {
		fx.f[i]->vnet_flags = BT_VNET_F_NEEDS_CSUM;
		fx.f[i]->csum_start = 54;
		fx.f[i]->csum_offset = 16;
	}
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 1);
	EXPECT_RESEG(fx.f[0], 0, 3);
}

static void needs_csum_elsewhere_passes_untouched(void)
{
	stream(0, 3, base_seg(0));
	fx.f[1]->vnet_flags = BT_VNET_F_NEEDS_CSUM;
	fx.f[1]->csum_start = 14;
	fx.f[1]->csum_offset = 10;
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 3);
	EXPECT_EQ(fx.f[1]->csum_start, 14);
	EXPECT_EQ(fx.f[0]->gso_type, 0);
}

static void gso_frames_pass_untouched_and_close_the_flow(void)
{
	stream(0, 4, base_seg(0));
	fx.f[1]->gso_type = BT_GSO_TCPV4;
	fx.f[1]->gso_size = 1000;
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 3); /* 0 | 1 (GSO) | 2+3 */
	EXPECT_EQ(fx.f[1]->gso_size, 1000);
	EXPECT_EQ(fx.f[1]->len, fx.orig_len[1]);
	EXPECT(memcmp(data(fx.f[1]), fx.orig[1], fx.f[1]->len) == 0);
	EXPECT(untouched(0));
	EXPECT_RESEG(fx.f[2], 2, 2);
}

static void fin_merges_as_last_and_closes_the_flow(void)
{
	struct seg s = stream(0, 4, base_seg(0));

	s.flags = 0x11;
	s = stream(4, 1, s);
	s.flags = 0x10;
	stream(5, 3, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(fx.out[1] == fx.f[5]);
	EXPECT_EQ(data(fx.f[0])[47], 0x11);
	EXPECT_RESEG(fx.f[0], 0, 5);
	EXPECT_RESEG(fx.f[5], 5, 3);
}

static void psh_merges_as_last_and_closes_the_flow(void)
{
	struct seg s = stream(0, 2, base_seg(1));

	s.flags = 0x18;
	s = stream(2, 1, s);
	s.flags = 0x10;
	stream(3, 2, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_EQ(data(fx.f[0])[67], 0x18);
	EXPECT_RESEG(fx.f[0], 0, 3);
	EXPECT_RESEG(fx.f[3], 3, 2);
}

static void short_segment_merges_as_last_and_closes_the_flow(void)
{
	struct seg s = stream(0, 4, base_seg(0));

	s.payload = 500;
	s = stream(4, 1, s);
	s.payload = 1448;
	stream(5, 3, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_EQ(fx.f[0]->len, 66 + 4 * 1448 + 500);
	EXPECT_RESEG(fx.f[0], 0, 5);
	EXPECT_RESEG(fx.f[5], 5, 3);
}

static void larger_segment_after_first_starts_a_new_flow(void)
{
	struct seg s = base_seg(0);

	s.payload = 1000;
	s = stream(0, 1, s);
	s.payload = 1448;
	stream(1, 3, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT(untouched(0));
	EXPECT_RESEG(fx.f[1], 1, 3);
}

static void cwr_on_first_sets_ecn_and_on_later_stops_merge(void)
{
	struct seg s = base_seg(0);

	s.flags = 0x90;
	s = stream(0, 1, s);
	s.flags = 0x10;
	s = stream(1, 2, s);
	s.flags = 0x90;
	s = stream(3, 1, s);
	s.flags = 0x10;
	stream(4, 1, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_EQ(fx.f[0]->gso_type, BT_GSO_TCPV4 | BT_GSO_ECN);
	EXPECT_EQ(fx.f[3]->gso_type, BT_GSO_TCPV4 | BT_GSO_ECN);
	EXPECT_RESEG(fx.f[0], 0, 3);
	EXPECT_RESEG(fx.f[3], 3, 2);
}

static void vlan_mismatch_does_not_merge(void)
{
	struct seg s = base_seg(0);

	s.vlan = 10;
	s = stream(0, 4, s);
	s.vlan = 20;
	s = stream(4, 1, s);
	s.vlan = 10;
	stream(5, 3, s);
	gro(BT_MAX_SUPER_FRAME);
	/* 0..3 | 4 (other VLAN) | 5..7 (seq jumped over 4) */
	EXPECT_EQ(fx.nout, 3);
	EXPECT(untouched(4));
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[5], 5, 3);
}

static void tagged_and_untagged_do_not_merge(void)
{
	struct seg s = stream(0, 4, base_seg(1));

	s.vlan = 7;
	stream(4, 4, s);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_RESEG(fx.f[0], 0, 4);
	EXPECT_RESEG(fx.f[4], 4, 4);
	EXPECT_EQ(fx.f[4]->csum_start, 58);
}

static void max_len_is_respected(void)
{
	uint32_t max = 66 + 10 * 1448 + 100;

	stream(0, 45, base_seg(0));
	gro(max);
	EXPECT_EQ(fx.nout, 5);
	for (uint32_t i = 0; i < 5; i++) {
		EXPECT(fx.out[i] == fx.f[i * 10]);
		EXPECT(fx.out[i]->len <= max);
		EXPECT_RESEG(fx.out[i], i * 10, i < 4 ? 10 : 5);
	}
}

static void ip_length_stays_within_64k(void)
{
	struct seg s = base_seg(0);

	s.payload = 1460;
	stream(0, 46, s); /* 46 * 1460 + 52 > 65535 */
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	/* 44 segments: IP length 52 + 44 * 1460 = 64292; 45 would not fit */
	EXPECT_EQ(rd16(data(fx.f[0]) + 16), 52 + 44 * 1460);
	EXPECT_RESEG(fx.f[0], 0, 44);
	EXPECT_RESEG(fx.f[44], 44, 2);
}

static void frame_room_is_respected(void)
{
	/* 16384 - 128 headroom: 11 segments of 1448 after 66 header bytes */
	stream(0, 24, base_seg(0));
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 3);
	EXPECT_RESEG(fx.f[0], 0, 11);
	EXPECT_RESEG(fx.f[11], 11, 11);
	EXPECT_RESEG(fx.f[22], 22, 2);
	for (uint32_t i = 0; i < 3; i++)
		EXPECT(fx.out[i]->data_off + fx.out[i]->len <= 16384);
}

static void non_tcp_frames_pass_untouched_in_order(void)
{
	struct seg s = base_seg(0), u = base_seg(0);

	u.udp = 1;
	u.payload = 300;
	s = stream(0, 1, s);
	build(1, &u);
	s = stream(2, 1, s);
	/* an ARP-like frame */
	build(3, &u);
	wr16(data(fx.f[3]) + 12, 0x0806);
	fx.orig[3][12] = 0x08;
	fx.orig[3][13] = 0x06;
	s = stream(4, 1, s);
	u.v6 = 1;
	build(5, &u);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 4);
	EXPECT(fx.out[0] == fx.f[0] && fx.out[1] == fx.f[1] &&
	       fx.out[2] == fx.f[3] && fx.out[3] == fx.f[5]);
	EXPECT(untouched(1) && untouched(3) && untouched(5));
	{
		uint32_t idx[3] = { 0, 2, 4 };
		char why[200];

		if (!resegments_idx(fx.f[0], idx, 3, why)) {
			fail_at(__LINE__, "resegmenting: %s", why);
			return;
		}
	}
}

static void single_segment_flow_is_left_as_it_was(void)
{
	struct seg a = base_seg(0), b = base_seg(1);

	stream(0, 1, a);
	stream(1, 1, b);
	gro(BT_MAX_SUPER_FRAME);
	EXPECT_EQ(fx.nout, 2);
	EXPECT_EQ(fx.nfreed, 0);
	EXPECT(untouched(0) && untouched(1));
}

/* f flows, 3 rounds of one segment each, round robin. */
static void round_robin(uint32_t flows)
{
	struct seg s[32];

	for (uint32_t f = 0; f < flows; f++) {
		s[f] = base_seg(f & 1);
		s[f].host = (uint8_t)(f + 1);
	}
	for (uint32_t r = 0; r < 3; r++)
		for (uint32_t f = 0; f < flows; f++)
			s[f] = stream(r * flows + f, 1, s[f]);
	gro(BT_MAX_SUPER_FRAME);
}

static void twelve_interleaved_flows_all_merge(void)
{
	round_robin(12);
	EXPECT_EQ(fx.nout, 12);
	for (uint32_t f = 0; f < 12; f++) {
		uint32_t idx[3] = { f, f + 12, f + 24 };
		char why[200];

		EXPECT(fx.out[f] == fx.f[f]);
		if (!resegments_idx(fx.out[f], idx, 3, why)) {
			fail_at(__LINE__, "flow %u: %s", f, why);
			return;
		}
	}
}

static void more_flows_than_the_table_lose_merges_not_frames(void)
{
	/* 20 flows round robin through 16 entries: the least recently used
	 * flow is evicted each time, which is the next to come, so nothing
	 * merges; every frame must still come out, unchanged, in order. */
	round_robin(20);
	EXPECT_EQ(fx.nout, 60);
	EXPECT_EQ(fx.nfreed, 0);
	for (uint32_t i = 0; i < 60; i++)
		EXPECT(fx.out[i] == fx.f[i] && untouched(i));
}

static void max_len_zero_merges_nothing(void)
{
	stream(0, 4, base_seg(0));
	gro(0);
	EXPECT_EQ(fx.nout, 4);
	for (uint32_t i = 0; i < 4; i++)
		EXPECT(untouched(i));
}

/* ------------------------------------------------------------------ */

#define T(fn, fs) { #fn, fn, fs }
static const struct {
	const char *name;
	void (*fn)(void);
	uint32_t frame_size;
} tests[] = {
	T(ipv4_45_segments_become_one_super_frame, BIG),
	T(ipv6_45_segments_become_one_super_frame, BIG),
	T(interleaved_flows_become_two_super_frames, BIG),
	T(seq_gap_closes_the_flow, BIG),
	T(changed_ack_closes_the_flow, BIG),
	T(different_options_close_the_flow, BIG),
	T(changed_window_closes_the_flow, BIG),
	T(changed_ttl_closes_the_flow, BIG),
	T(ipv4_id_not_consecutive_closes_the_flow, BIG),
	T(syn_is_never_merged_and_closes_the_flow, BIG),
	T(rst_is_never_merged_and_closes_the_flow, BIG),
	T(urg_is_never_merged_and_closes_the_flow, BIG),
	T(ipv4_options_are_never_merged_and_close_the_flow, BIG),
	T(bad_tcp_checksum_is_never_merged_and_closes_the_flow, BIG),
	T(pure_ack_is_never_merged_and_closes_the_flow, BIG),
	T(changed_ipv4_tos_closes_the_flow, BIG),
	T(changed_ipv4_df_closes_the_flow, BIG),
	T(changed_ipv6_traffic_class_closes_the_flow, BIG),
	T(changed_ipv6_hop_limit_closes_the_flow, BIG),
	T(ipv4_flow_with_options_does_not_merge, BIG),
	T(urgent_flow_does_not_merge, BIG),
	T(psh_on_the_first_takes_nothing_after_it, BIG),
	T(frame_longer_than_its_ip_length_is_never_merged, BIG),
	T(bad_ipv4_header_checksum_is_never_merged, BIG),
	T(bad_checksum_of_the_head_stops_its_merge, BIG),
	T(data_valid_frames_are_trusted, BIG),
	T(needs_csum_frames_merge, BIG),
	T(needs_csum_elsewhere_passes_untouched, BIG),
	T(gso_frames_pass_untouched_and_close_the_flow, BIG),
	T(fin_merges_as_last_and_closes_the_flow, BIG),
	T(psh_merges_as_last_and_closes_the_flow, BIG),
	T(short_segment_merges_as_last_and_closes_the_flow, BIG),
	T(larger_segment_after_first_starts_a_new_flow, BIG),
	T(cwr_on_first_sets_ecn_and_on_later_stops_merge, BIG),
	T(vlan_mismatch_does_not_merge, BIG),
	T(tagged_and_untagged_do_not_merge, BIG),
	T(max_len_is_respected, BIG),
	T(ip_length_stays_within_64k, BIG),
	T(frame_room_is_respected, 16384),
	T(non_tcp_frames_pass_untouched_in_order, BIG),
	T(single_segment_flow_is_left_as_it_was, BIG),
	T(twelve_interleaved_flows_all_merge, BIG),
	T(more_flows_than_the_table_lose_merges_not_frames, BIG),
	T(max_len_zero_merges_nothing, BIG),
};

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;
	const char *only = argc > 1 ? argv[1] : NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && !strstr(tests[i].name, only))
			continue;
		failed_now = 0;
		memset(&fx, 0, sizeof(fx));
		if (fx_setup(tests[i].frame_size) != 0)
			fail_at(__LINE__, "fixture: no pool");
		else
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
