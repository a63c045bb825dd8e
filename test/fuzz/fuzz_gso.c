/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the software offloads: bt_offload_check,
 * bt_gso_count, bt_gso_segment and bt_csum_complete.
 *
 * Each input is one frame and its offload metadata. Half the inputs build
 * a well-formed packet from a few parameters (IPv4/IPv6, VLAN tag, TCP/UDP,
 * option lengths, payload) and then flip bytes and metadata fields, so
 * that most reach the segmenter; the other half are raw bytes with raw
 * metadata, as a hostile vnet header would deliver them.
 *
 * The frame lives in a heap block exactly as long as metadata + data, so
 * ASan reports any read past its data. Frames that bt_offload_check
 * refuses must be refused by bt_gso_count and bt_gso_segment too. Frames
 * it accepts are segmented into real pool frames, and the harness checks,
 * with its own byte-at-a-time sums:
 *   - the result is the predicted one (count, or -ENOSPC when out is too
 *     short or a segment does not fit its frame's room);
 *   - every segment's IPv4 header checksum and L4 checksum (or, partial,
 *     the pseudo-header sum and offsets), IP/UDP lengths, TCP sequence
 *     numbers, and that the payloads put together are the frame's;
 *   - nothing outside the segments was written: the source frame, the out
 *     frames' metadata and the bytes after each segment, and a spare frame
 *     after the last one, are as they were.
 *
 * Build: test/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../c/bt_offload.h"
#include "../../c/bt_parse.h"
#include "../../c/bulktap.h"

#define HEADROOM 128
#define FILL 0xa5 /* what out frames hold before segmentation */
#define TAIL 64 /* bytes after a segment that must stay FILL */

static const struct {
	uint32_t frames, size;
} geo[] = { { 257, 2048 }, { 65, 16384 }, { 17, 131072 } };
#define NGEO (sizeof(geo) / sizeof(geo[0]))
static int32_t pools[NGEO];

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "fuzz_gso invariant broken: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	abort();
}

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

static uint32_t u32(struct in *in)
{
	return (uint32_t)u16(in) | ((uint32_t)u16(in) << 16);
}

static uint8_t *data_of(const struct bt_frame_meta *m)
{
	return (uint8_t *)m + m->data_off;
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

/* The independent checksum: byte at a time, folded at the end. */
static uint64_t byte_sum(const uint8_t *p, uint32_t n, uint64_t s)
{
	for (uint32_t i = 0; i < n; i++)
		s += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	return s;
}

static uint32_t fold(uint64_t s)
{
	while (s > 0xffff)
		s = (s & 0xffff) + (s >> 16);
	return (uint32_t)s;
}

static uint64_t pseudo_sum(const uint8_t *d, uint32_t len, uint32_t l3,
			   uint32_t l4, int v6, uint8_t proto)
{
	uint8_t ph[40] = { 0 };
	uint32_t l4len = len - l4;

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

/* ------------------------------------------------------------------ */
/* Inputs                                                              */

/* A well-formed packet from a few input bytes, then some bytes flipped;
 * returns the heap frame, metadata mostly right. */
static struct bt_frame_meta *structured(struct in *in)
{
	uint8_t shape = u8(in);
	int v6 = shape & 1, vlan = shape & 2, udp = shape & 4;
	uint32_t ipopt = v6 ? 0 : (u8(in) % 11) * 4;
	uint32_t tcpopt = udp ? 0 : (u8(in) % 11) * 4;
	uint32_t payload = u16(in) % 20000;
	uint32_t l3 = 14 + (vlan ? 4 : 0);
	uint32_t l4 = l3 + (v6 ? 40 : 20 + ipopt);
	uint32_t hl = l4 + (udp ? 8 : 20 + tcpopt);
	uint32_t len = hl + payload, flips;
	struct bt_frame_meta *m = calloc(1, sizeof(*m) + len);
	uint8_t *d, how;

	if (!m)
		abort();
	m->data_off = sizeof(*m);
	m->len = len;
	d = data_of(m);
	for (uint32_t i = 0; i < hl; i++)
		d[i] = u8(in); /* addresses, ports, seq, flags, ... */
	w16(d + 12, vlan ? 0x8100 : (v6 ? 0x86dd : 0x0800));
	if (vlan)
		w16(d + 16, v6 ? 0x86dd : 0x0800);
	if (v6) {
		d[l3] = (uint8_t)(0x60 | (d[l3] & 15));
		d[l3 + 6] = udp ? 17 : 6;
	} else {
		d[l3] = (uint8_t)(0x40 | (20 + ipopt) / 4);
		d[l3 + 6] &= 0x40; /* DF at most: not a fragment */
		d[l3 + 7] = 0;
		d[l3 + 9] = udp ? 17 : 6;
	}
	if (!udp)
		d[l4 + 12] = (uint8_t)((20 + tcpopt) / 4 << 4 |
				       (d[l4 + 12] & 15));
	for (uint32_t i = 0; i < payload; i++)
		d[hl + i] = in->n ? in->p[i % in->n] : (uint8_t)i;

	how = u8(in);
	m->gso_type = (uint8_t)(udp ? BT_GSO_UDP_L4 :
			       v6  ? BT_GSO_TCPV6 :
				     BT_GSO_TCPV4);
	if ((how & 3) == 0)
		m->gso_type = u8(in); /* any type, ECN, UFO, none */
	else if (!udp && (how & 3) == 1)
		m->gso_type |= BT_GSO_ECN;
	switch ((how >> 2) & 3) {
	case 0:
		m->gso_size = (uint16_t)(1 + u8(in) % 64);
		break;
	case 1:
		m->gso_size = (uint16_t)(1 + u16(in) % 2000);
		break;
	default:
		m->gso_size = u16(in);
	}
	m->hdr_len = (how & 16) ? u16(in) : (uint16_t)hl;
	if (how & 32) {
		m->vnet_flags = BT_VNET_F_NEEDS_CSUM;
		m->csum_start = (uint16_t)l4;
		m->csum_offset = udp ? 6 : 16;
		if (how & 64) {
			m->csum_start = u16(in);
			m->csum_offset = u16(in);
		}
	}
	flips = (how & 128) ? u8(in) % 4 : 0;
	while (flips--) {
		uint32_t at = u16(in) % len;

		d[at] = u8(in);
	}
	return m;
}

/* Raw metadata and bytes, as a hostile vnet header delivers them. */
static struct bt_frame_meta *raw(struct in *in)
{
	struct bt_frame_meta h = { 0 }, *m;

	h.vnet_flags = u8(in);
	h.gso_type = u8(in);
	h.hdr_len = u16(in);
	h.gso_size = u16(in);
	h.csum_start = u16(in);
	h.csum_offset = u16(in);
	h.len = (uint32_t)(in->n < 70000 ? in->n : 70000);
	m = malloc(sizeof(*m) + h.len);
	if (!m)
		abort();
	*m = h;
	m->data_off = sizeof(*m);
	memcpy(data_of(m), in->p, h.len);
	return m;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */

/* The segments of GSO frame m (check passed, headers at o) with eff
 * payload bytes each. */
static void verify_gso(const struct bt_frame_meta *m,
		       const struct bt_l4_info *o, uint32_t eff,
		       struct bt_frame_meta *const *segs, int32_t n,
		       int partial)
{
	const uint8_t *src = data_of(m);
	uint32_t hl = o->hdr_len, l3 = o->l3_off, l4 = o->l4_off;
	uint32_t payload = m->len - hl, done = 0;
	int tcp = o->proto == BT_IPPROTO_TCP;
	uint32_t cso = tcp ? 16 : 6;

	for (int32_t i = 0; i < n; i++) {
		const struct bt_frame_meta *s = segs[i];
		const uint8_t *d = data_of(s);
		uint32_t p = payload - done < eff ? payload - done : eff;

		if (s->len != hl + p)
			fail("seg %d len %u want %u", i, s->len, hl + p);
		if (memcmp(d, src, l3) || memcmp(d + hl, src + hl + done, p))
			fail("seg %d: Ethernet header or payload differ", i);
		if (s->gso_type || s->gso_size)
			fail("seg %d: GSO metadata left", i);
		if (o->ipv6) {
			if (r16(d + l3 + 4) != s->len - l3 - 40)
				fail("seg %d: IPv6 payload length", i);
		} else {
			if (r16(d + l3 + 2) != s->len - l3)
				fail("seg %d: IPv4 total length", i);
			if (r16(d + l3 + 4) !=
			    ((r16(src + l3 + 4) + (uint32_t)i) & 0xffff))
				fail("seg %d: IPv4 id", i);
			if (fold(byte_sum(d + l3, l4 - l3, 0)) != 0xffff)
				fail("seg %d: IPv4 header checksum", i);
		}
		if (tcp) {
			if (r32(d + l4 + 4) != r32(src + l4 + 4) + done)
				fail("seg %d: TCP seq", i);
			if ((d[l4 + 13] & 0x09) && i != n - 1)
				fail("seg %d: FIN/PSH before the last", i);
			if ((d[l4 + 13] & 0x80) && i != 0)
				fail("seg %d: CWR after the first", i);
		} else if (r16(d + l4 + 4) != s->len - l4) {
			fail("seg %d: UDP length", i);
		}
		if (partial) {
			if (s->vnet_flags != BT_VNET_F_NEEDS_CSUM ||
			    s->csum_start != l4 || s->csum_offset != cso)
				fail("seg %d: partial metadata", i);
			if (r16(d + l4 + cso) !=
			    fold(pseudo_sum(d, s->len, l3, l4, o->ipv6,
					    o->proto)))
				fail("seg %d: partial field", i);
		} else {
			uint64_t sum = pseudo_sum(d, s->len, l3, l4, o->ipv6,
						  o->proto);

			if (fold(byte_sum(d + l4, s->len - l4, sum)) != 0xffff)
				fail("seg %d: L4 checksum", i);
			if (!tcp && r16(d + l4 + 6) == 0)
				fail("seg %d: UDP checksum 0", i);
		}
		done += p;
	}
	if (done != payload)
		fail("payload %u of %u", done, payload);
}

/* The copy of a frame without GSO. */
static void verify_copy(const struct bt_frame_meta *m,
			const struct bt_frame_meta *s, int partial)
{
	const uint8_t *a = data_of(m), *b = data_of(s);
	uint32_t pos = (uint32_t)m->csum_start + m->csum_offset;

	if (s->len != m->len)
		fail("copy len %u of %u", s->len, m->len);
	if (partial || !(m->vnet_flags & BT_VNET_F_NEEDS_CSUM)) {
		if (memcmp(a, b, m->len) || s->vnet_flags != m->vnet_flags)
			fail("copy differs");
		return;
	}
	if (memcmp(a, b, pos) || memcmp(a + pos + 2, b + pos + 2,
					m->len - pos - 2))
		fail("completed copy differs outside its checksum");
	if (s->vnet_flags & BT_VNET_F_NEEDS_CSUM)
		fail("completed copy still NEEDS_CSUM");
	/* With the field's old value (the seed) added back, the range sums
	 * to all ones; only word-aligned fields can be checked so. */
	if (!(m->csum_offset & 1) &&
	    fold(byte_sum(b + m->csum_start, m->len - m->csum_start,
			  r16(a + pos))) != 0xffff)
		fail("completed checksum wrong");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	uint8_t mode = u8(&in);
	uint32_t mss = (mode & 2) ? u16(&in) : 0;
	uint32_t flags = (mode & 4) ? BT_GSO_OUT_PARTIAL : 0;
	uint32_t g = u8(&in) % NGEO, moved = u32(&in);
	uint32_t fsize = geo[g].size, avail = geo[g].frames - 1;
	struct bt_frame_meta *m = (mode & 1) ? structured(&in) : raw(&in);
	struct bt_frame_meta *out[260], *spare, snap_spare;
	uint32_t refs[260], n, nalloc, eff = 0, payload = 0, hl = 0, gso;
	size_t bytes = sizeof(*m) + m->len;
	struct bt_l4_info o;
	int32_t count, want, r;
	uint8_t *before;
	int bad;

	if (!pools[g]) {
		pools[g] = bt_pool_create(geo[g].frames, fsize, HEADROOM);
		if (pools[g] <= 0)
			fail("pool create %d", pools[g]);
	}

	bad = bt_offload_check(m);
	gso = m->gso_type & (uint8_t)~BT_GSO_ECN;
	count = bt_gso_count(m, mss);
	if (bad < 0 || bad > BT_OFF_BAD_HEADERS)
		fail("check returned %d", bad);
	if (bad) {
		if (count != -EINVAL)
			fail("check refused (%d), count %d", bad, count);
		if (bt_gso_segment(m, mss, out, 0, fsize, flags) != -EINVAL)
			fail("check refused (%d), segment accepted", bad);
		free(m);
		return 0;
	}
	if (gso) {
		if (bt_parse_l4(data_of(m), m->len, &o) < 0 ||
		    o.hdr_len != m->hdr_len)
			fail("check passed, hdr_len %u not the headers",
			     m->hdr_len);
		hl = m->hdr_len;
		payload = m->len - hl;
		eff = mss && mss < m->gso_size ? mss : m->gso_size;
		want = payload <= eff ? 1 :
					(int32_t)((payload + eff - 1) / eff);
	} else {
		want = 1;
	}
	if (count != want)
		fail("count %d want %d", count, want);

	/* Out frames: as many as needed, one less now and then, and a
	 * spare after them that nothing may touch. */
	n = (uint32_t)count < avail ? (uint32_t)count : avail;
	if ((mode & 8) && n)
		n--;
	nalloc = n + 1;
	if (bt_pool_alloc((uint32_t)pools[g], refs, nalloc) != (int32_t)nalloc)
		fail("alloc %u", nalloc);
	{
		uint8_t *base = bt_pool_base((uint32_t)pools[g]);

		for (uint32_t i = 0; i < nalloc; i++)
			out[i] = (struct bt_frame_meta *)(base +
					(size_t)(refs[i] & BT_REF_INDEX_MASK) *
						fsize);
	}
	spare = out[n];
	/* Now and then one frame's data starts anywhere in it. */
	if ((mode & 16) && n)
		out[moved % n]->data_off = HEADROOM + (moved >> 8) %
						(fsize - HEADROOM + 1);
	for (uint32_t i = 0; i < nalloc; i++) {
		uint32_t room = fsize - out[i]->data_off;
		uint32_t need = (gso ? hl + (payload < eff ? payload : eff) :
				       m->len) + TAIL;

		memset(data_of(out[i]), FILL, need < room ? need : room);
	}
	snap_spare = *spare;

	/* The predicted result. */
	if (n < (uint32_t)count) {
		want = -ENOSPC;
	} else {
		for (int32_t i = 0; i < count; i++) {
			uint32_t left = payload - (uint32_t)i * eff;
			uint32_t len = gso ? hl + (left < eff ? left : eff) :
					     m->len;

			if (len > fsize - out[i]->data_off)
				want = -ENOSPC;
		}
	}

	before = malloc(bytes);
	if (!before)
		abort();
	memcpy(before, m, bytes);
	r = bt_gso_segment(m, mss, out, n, fsize, flags);
	if (r != want)
		fail("segment -> %d, want %d (count %d, n %u)", r, want, count,
		     n);
	if (memcmp(before, m, bytes))
		fail("segment changed its source");
	for (uint32_t i = 0; r < 0 && i < n; i++) {
		if (out[i]->data_off < fsize && data_of(out[i])[0] != FILL)
			fail("failed segment (%d) wrote frame %u", r, i);
	}
	if (r > 0 && gso)
		verify_gso(m, &o, eff, out, r, !!(flags & BT_GSO_OUT_PARTIAL));
	else if (r > 0)
		verify_copy(m, out[0], !!(flags & BT_GSO_OUT_PARTIAL));
	for (int32_t i = 0; i < r; i++) {
		uint32_t end = out[i]->data_off + out[i]->len;

		if (out[i]->magic != BT_FRAME_MAGIC || out[i]->ref != refs[i] ||
		    out[i]->state != BT_HELD)
			fail("seg %d: frame metadata overwritten", i);
		for (uint32_t b = end; b < end + TAIL && b < fsize; b++) {
			if (((uint8_t *)out[i])[b] != FILL)
				fail("seg %d: byte %u after it written", i,
				     b - out[i]->data_off);
		}
	}
	if (memcmp(&snap_spare, spare, sizeof(snap_spare)) ||
	    data_of(spare)[0] != FILL)
		fail("spare frame touched");
	for (uint32_t i = 0; i < n; i++)
		out[i]->data_off = HEADROOM;
	if (bt_pool_put((uint32_t)pools[g], refs, nalloc, NULL, 0) !=
	    (int32_t)nalloc)
		fail("put");

	/* Completion in place, on the source itself. */
	if (!gso && (m->vnet_flags & BT_VNET_F_NEEDS_CSUM)) {
		uint32_t pos = (uint32_t)m->csum_start + m->csum_offset;
		uint32_t seed = r16(data_of(m) + pos);

		if (bt_csum_complete(m) != 0)
			fail("complete refused a checked frame");
		if (!(m->csum_offset & 1) &&
		    fold(byte_sum(data_of(m) + m->csum_start,
				  m->len - m->csum_start, seed)) != 0xffff)
			fail("completed checksum wrong");
	}
	free(before);
	free(m);
	return 0;
}
