/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for software GRO (bt_gro_batch, c/gro.c).
 *
 * Each input builds one batch of real pool frames (pools of 256 B to
 * 128 KiB frames): raw random bytes, or TCP segments of four flows (IPv4,
 * IPv6, with and without a VLAN tag) that continue each other often enough
 * to merge, spoiled now and then (sequence, ACK, flags, IP id, TOS, options,
 * window, checksums, offload metadata, length, random bytes). Then
 * bt_gro_batch runs and the harness checks:
 *   - every input frame is in the output or in freed[] exactly once, and
 *     the output keeps the input's order;
 *   - an output frame whose metadata did not change has its bytes
 *     unchanged;
 *   - a changed one is a well-formed super-frame (lengths, hdr_len, gso
 *     type and size, partial checksum, IPv4 header checksum, within
 *     max_len and its frame) whose payload, cut by gso_size, is its own
 *     original payload followed by the payloads of freed frames of the same
 *     flow, later in the batch, with the sequence numbers that follow; and
 *     every freed frame is used so exactly once (payload bytes conserved).
 * ASan and UBSan catch any access outside the frames' data.
 *
 * Build: test/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../c/bt_csum.h"
#include "../../c/bt_offload.h"
#include "../../c/bt_parse.h"
#include "../../c/bulktap.h"

#define NPOOL 4
#define NFR 64 /* frames per pool, the largest batch */
#define MAXLEN 9216 /* longest input frame */

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_gro invariant broken: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

#define CHECK(c, ...)                      \
	do {                               \
		if (!(c))                  \
			fail(__VA_ARGS__); \
	} while (0)

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct in *in)
{
	return (uint16_t)(u8(in) | (u8(in) << 8));
}

static uint32_t pick(struct in *in, uint32_t n)
{
	return n <= 256 ? u8(in) % n : u16(in) % n;
}

/* ---- pools, created once, every frame held by the harness ------------- */

static const uint32_t frame_sizes[NPOOL] = { 256, 2048, 16384, 131072 };
static const uint32_t headrooms[NPOOL] = { 64, 128, 192, 128 };
static struct bt_frame_meta *frames[NPOOL][NFR];

static void pools_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	for (int p = 0; p < NPOOL; p++) {
		int32_t h = bt_pool_create(NFR, frame_sizes[p], headrooms[p]);
		uint32_t refs[NFR];
		uint8_t *base;

		CHECK(h > 0, "pool create %d", h);
		CHECK(bt_pool_alloc((uint32_t)h, refs, NFR) == NFR, "alloc");
		base = bt_pool_base((uint32_t)h);
		for (int i = 0; i < NFR; i++)
			frames[p][i] = (struct bt_frame_meta
						*)(base + (size_t)(refs[i] &
								   BT_REF_INDEX_MASK) *
								  frame_sizes[p]);
	}
}

static uint8_t *data(struct bt_frame_meta *m)
{
	return (uint8_t *)m + m->data_off;
}

/* ---- the batch -------------------------------------------------------- */

struct flow {
	uint32_t seq, ack;
	uint16_t ipid, mss;
	uint8_t opts; /* 12 bytes of TCP options or none */
};

static struct flow flows[4];
static struct bt_frame_meta *batch[NFR], *outv[NFR], *freedv[NFR];
static struct bt_frame_meta orig_meta[NFR];
static uint8_t orig[NFR][MAXLEN];
static uint8_t used[NFR];

static uint32_t tcp_csum(const uint8_t *d, const struct bt_l4_info *o,
			 uint32_t len)
{
	uint32_t l4 = len - o->l4_off;
	const uint8_t *ip = d + o->l3_off;
	uint32_t s = o->ipv6 ? bt_csum_pseudo6(ip, BT_IPPROTO_TCP, l4) :
			       bt_csum_pseudo4(ip, BT_IPPROTO_TCP, l4);

	return bt_csum_add(s, d + o->l4_off, l4);
}

/* A TCP segment of flow f into m (room bytes of data at most). */
static void build_tcp(struct in *in, struct bt_frame_meta *m, uint32_t room,
		      int f)
{
	struct flow *fl = &flows[f];
	uint8_t *d = data(m), *ip, *th;
	int v6 = f & 1, vlan = f & 2;
	uint32_t l3 = vlan ? 18 : 14, iphl = v6 ? 40 : 20;
	uint32_t thl = fl->opts ? 32 : 20, hl = l3 + iphl + thl, pay;
	uint8_t mod = u8(in);
	struct bt_l4_info o;

	if (room < hl)
		return;
	pay = mod & 8 ? pick(in, fl->mss + 1u) : fl->mss;
	if (pay > room - hl)
		pay = room - hl;
	memset(d, 0, hl);
	memcpy(d, "\x02\0\0\0\0\x02\x02\0\0\0\0\x01", 12);
	if (vlan) {
		bt_put16(d + 12, BT_ETH_P_8021Q);
		bt_put16(d + 14, 5);
	}
	bt_put16(d + l3 - 2, v6 ? BT_ETH_P_IPV6 : BT_ETH_P_IPV4);
	ip = d + l3;
	th = ip + iphl;
	if (v6) {
		ip[0] = 0x60;
		bt_put16(ip + 4, (uint16_t)(thl + pay));
		ip[6] = BT_IPPROTO_TCP;
		ip[7] = 64;
		ip[8] = 0xfd;
		ip[23] = (uint8_t)f;
		ip[24] = 0xfd;
		ip[39] = 9;
	} else {
		ip[0] = 0x45;
		bt_put16(ip + 2, (uint16_t)(iphl + thl + pay));
		bt_put16(ip + 4, fl->ipid);
		bt_put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = BT_IPPROTO_TCP;
		ip[12] = 10;
		ip[15] = (uint8_t)f;
		ip[16] = 10;
		ip[19] = 9;
	}
	bt_put16(th, 1000);
	bt_put16(th + 2, 80);
	bt_put32(th + 4, fl->seq);
	bt_put32(th + 8, fl->ack);
	th[12] = (uint8_t)(thl / 4 << 4);
	th[13] = 0x10;
	bt_put16(th + 14, 300);
	if (fl->opts) {
		th[20] = 1;
		th[21] = 1;
		th[22] = 8;
		th[23] = 10;
		bt_put32(th + 24, 77);
	}
	for (uint32_t k = 0; k < pay; k++)
		th[thl + k] = (uint8_t)(fl->seq + k + (uint32_t)f * 61);
	if (mod & 1) { /* spoil one field */
		uint8_t v = u8(in);

		switch (v % 8) {
		case 0:
			bt_put32(th + 4, fl->seq + (uint32_t)(int8_t)u8(in));
			break;
		case 1:
			fl->ack += u8(in);
			bt_put32(th + 8, fl->ack);
			break;
		case 2:
			th[13] = u8(in);
			break;
		case 3:
			if (!v6)
				bt_put16(ip + 4, u16(in));
			break;
		case 4:
			ip[1] = u8(in);
			break;
		case 5:
			if (fl->opts)
				th[28] = u8(in);
			break;
		case 6:
			bt_put16(th + 14, u16(in));
			break;
		default:
			ip[v6 ? 7 : 8] = u8(in);
			break;
		}
	}
	m->len = hl + pay;
	if (!v6)
		bt_put16(ip + 10, bt_csum_fold(bt_csum_add(0, ip, 20)));
	if (bt_parse_l4(d, m->len, &o) == 0)
		bt_put16(th + 16, bt_csum_fold(tcp_csum(d, &o, m->len)));
	if (mod & 2) { /* offload metadata, sometimes consistent */
		m->vnet_flags = u8(in) & 3;
		m->csum_start = (uint16_t)(u8(in) & 1 ? l3 + iphl : u8(in));
		m->csum_offset = (uint16_t)(u8(in) & 1 ? 16 : u8(in));
	}
	if (mod & 4) /* corrupt a byte */
		d[pick(in, m->len)] ^= (uint8_t)(1u << (u8(in) & 7));
	if (mod & 16) {
		m->gso_type = u8(in);
		m->gso_size = u16(in);
		m->hdr_len = u16(in);
	}
	if (mod & 32) { /* length off by a few, within the room */
		uint32_t l = m->len + (uint32_t)(u8(in) % 8) - 4u;

		if (l <= room)
			m->len = l;
	}
	fl->seq += pay;
	fl->ipid++;
}

/* Same flow: Ethernet header, addresses and ports, from the originals. */
static int same_flow(const uint8_t *a, const uint8_t *b,
		     const struct bt_l4_info *o)
{
	uint32_t ao = o->l3_off + (o->ipv6 ? 8 : 12), al = o->ipv6 ? 32 : 8;

	return memcmp(a, b, o->l3_off) == 0 &&
	       memcmp(a + ao, b + ao, al) == 0 &&
	       memcmp(a + o->l4_off, b + o->l4_off, 4) == 0;
}

/* Check super-frame out[i] (batch index h) and claim the freed frames its
 * payload came from. */
static void check_super(uint32_t h, uint32_t n, uint32_t frame_size,
			uint32_t max_len)
{
	struct bt_frame_meta *m = batch[h], *om = &orig_meta[h];
	const uint8_t *d = data(m), *od = orig[h];
	struct bt_l4_info o, oo;
	uint32_t gs = m->gso_size, pay, seq0, next, k, opay;

	CHECK(om->gso_type == 0, "a GSO frame changed");
	CHECK(bt_parse_l4(d, m->len, &o) == 0 && o.proto == BT_IPPROTO_TCP,
	      "super-frame does not parse");
	CHECK(bt_parse_l4(od, om->len, &oo) == 0, "head did not parse");
	CHECK(m->gso_type == (o.ipv6 ? BT_GSO_TCPV6 : BT_GSO_TCPV4) ||
		      m->gso_type == ((o.ipv6 ? BT_GSO_TCPV6 : BT_GSO_TCPV4) |
				      BT_GSO_ECN),
	      "gso_type %u", m->gso_type);
	CHECK(m->vnet_flags == BT_VNET_F_NEEDS_CSUM && m->csum_start == o.l4_off &&
		      m->csum_offset == 16 && m->hdr_len == o.hdr_len,
	      "offload metadata");
	CHECK(o.l3_off + o.ip_len == m->len, "IP length %u vs len %u",
	      o.ip_len, m->len);
	CHECK(m->len <= max_len && m->len <= BT_MAX_SUPER_FRAME &&
		      m->data_off + m->len <= frame_size,
	      "too long: %u", m->len);
	if (!o.ipv6)
		CHECK(bt_csum_fold(bt_csum_add(0, d + o.l3_off, 20)) == 0,
		      "IPv4 header checksum");
	{
		uint32_t l4 = m->len - o.l4_off;
		uint32_t ps = o.ipv6 ? bt_csum_pseudo6(d + o.l3_off, 6, l4) :
				       bt_csum_pseudo4(d + o.l3_off, 6, l4);

		CHECK(bt_get16(d + o.l4_off + 16) == bt_csum_fold16(ps),
		      "partial checksum");
	}
	opay = om->len - oo.hdr_len;
	pay = m->len - o.hdr_len;
	CHECK(oo.hdr_len == o.hdr_len && gs == opay && gs > 0 && pay > gs,
	      "gso_size %u, payload %u, head's payload %u", gs, pay, opay);
	/* headers as the head's but for lengths, checksums, FIN/PSH */
	{
		uint8_t a[256], b[256];
		uint32_t ip = o.l3_off, th = o.l4_off;

		memcpy(a, d, o.hdr_len);
		memcpy(b, od, o.hdr_len);
		for (uint32_t z = 0; z < 2; z++) {
			uint8_t *x = z ? b : a;

			if (o.ipv6) {
				bt_put16(x + ip + 4, 0);
			} else {
				bt_put16(x + ip + 2, 0);
				bt_put16(x + ip + 10, 0);
			}
			bt_put16(x + th + 16, 0);
			x[th + 13] &= (uint8_t)~0x09;
		}
		CHECK(memcmp(a, b, o.hdr_len) == 0, "headers changed");
		CHECK((d[th + 13] & od[th + 13]) == od[th + 13],
		      "flags lost");
	}
	CHECK(memcmp(d + o.hdr_len, od + o.hdr_len, gs) == 0, "head payload");
	seq0 = bt_get32(d + o.l4_off + 4);
	next = h + 1;
	for (k = 1; k * gs < pay; k++) {
		uint32_t want = pay - k * gs < gs ? pay - k * gs : gs;
		uint32_t j;

		for (j = next; j < n; j++) {
			struct bt_l4_info fo;

			if (used[j] != 2)
				continue; /* not freed, or already claimed */
			if (bt_parse_l4(orig[j], orig_meta[j].len, &fo) != 0 ||
			    fo.hdr_len != o.hdr_len ||
			    !same_flow(orig[j], od, &o))
				continue;
			if (bt_get32(orig[j] + o.l4_off + 4) == seq0 + k * gs)
				break;
		}
		CHECK(j < n, "segment %u of frame %u: no freed frame", k, h);
		CHECK(orig_meta[j].len - o.hdr_len == want &&
			      memcmp(d + o.hdr_len + k * gs, orig[j] + o.hdr_len,
				     want) == 0,
		      "segment %u of frame %u: payload differs from frame %u",
		      k, h, j);
		used[j] = 3;
		next = j + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *buf, size_t size)
{
	struct in in = { buf, size };
	uint32_t p, n, frame_size, room, max_len, nout, nfreed = 0, w;

	pools_init();
	p = u8(&in) % NPOOL;
	frame_size = frame_sizes[p];
	room = frame_size - headrooms[p];
	if (room > MAXLEN)
		room = MAXLEN;
	switch (u8(&in) % 4) {
	case 0:
		max_len = BT_MAX_SUPER_FRAME;
		break;
	case 1:
		max_len = u16(&in);
		break;
	case 2:
		max_len = 0xffffffffu;
		break;
	default:
		max_len = 1514u * (1u + u8(&in) % 8);
		break;
	}
	n = 1 + u8(&in) % NFR;
	for (int f = 0; f < 4; f++) {
		static const uint16_t mss[] = { 1448, 1460, 536, 100, 9, 1, 4000, 1220 };

		flows[f].seq = (uint32_t)u16(&in) << 16;
		flows[f].ack = 1;
		flows[f].ipid = u16(&in);
		flows[f].mss = mss[u8(&in) % 8];
		flows[f].opts = u8(&in) & 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct bt_frame_meta *m = frames[p][i];
		uint8_t b = u8(&in);

		m->len = 0;
		m->vnet_flags = 0;
		m->gso_type = 0;
		m->hdr_len = 0;
		m->gso_size = 0;
		m->csum_start = 0;
		m->csum_offset = 0;
		if ((b & 7) == 0) {
			m->len = pick(&in, room + 1);
			for (uint32_t k = 0; k < m->len; k++)
				data(m)[k] = u8(&in);
		} else {
			build_tcp(&in, m, room, (b >> 3) & 3);
		}
		batch[i] = m;
		orig_meta[i] = *m;
		memcpy(orig[i], data(m), m->len);
		used[i] = 0;
	}
	memcpy(outv, batch, n * sizeof(*batch));
	nout = bt_gro_batch(outv, n, frame_size, max_len, freedv, &nfreed);

	/* every frame exactly once, output in input order */
	CHECK(nout + nfreed == n, "%u out + %u freed != %u", nout, nfreed, n);
	w = 0;
	for (uint32_t i = 0; i < nout; i++) {
		while (w < n && batch[w] != outv[i])
			w++;
		CHECK(w < n, "output %u out of order or unknown", i);
		CHECK(!used[w], "frame %u twice", w);
		used[w] = 1;
	}
	for (uint32_t i = 0; i < nfreed; i++) {
		uint32_t j = 0;

		while (j < n && batch[j] != freedv[i])
			j++;
		CHECK(j < n && !used[j], "freed %u unknown or twice", i);
		used[j] = 2;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct bt_frame_meta *m = batch[i], *om = &orig_meta[i];

		if (used[i] != 1)
			continue;
		if (m->len == om->len && m->vnet_flags == om->vnet_flags &&
		    m->gso_type == om->gso_type && m->gso_size == om->gso_size &&
		    m->hdr_len == om->hdr_len &&
		    m->csum_start == om->csum_start &&
		    m->csum_offset == om->csum_offset) {
			CHECK(memcmp(data(m), orig[i], m->len) == 0,
			      "frame %u changed without new metadata", i);
			continue;
		}
		check_super(i, n, frame_size, max_len);
	}
	for (uint32_t i = 0; i < n; i++)
		CHECK(used[i] != 2, "freed frame %u not inside a super-frame",
		      i);
	return 0;
}
