/* SPDX-License-Identifier: MIT */
/*
 * Segmentation in software (GSO) and checksum completion: what the kernel
 * or a NIC does with a super-frame when the next hop takes only frames of
 * its MTU (tcp_offload.c, udp_offload.c are the reference for the rules).
 *
 * A segment is the super-frame's headers, copied, followed by the next
 * mss bytes of its payload; then the fields that depend on the segment are
 * rewritten: IP lengths, the IPv4 id and header checksum, the TCP sequence
 * number and flags or the UDP length, and the L4 checksum, summed once over
 * the segment. Nothing in the metadata is trusted: the headers are parsed
 * again (bt_offload_verify), so a frame that skipped bt_offload_check is
 * refused, never followed.
 */
#include <errno.h>
#include <string.h>

#include "bt_offload.h"
#include "bt_parse.h"

#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static inline uint8_t *data_of(const struct bt_frame_meta *m)
{
	return (uint8_t *)m + m->data_off;
}

/* Segments of m and the payload bytes per segment (*eff; *o: headers),
 * or -EINVAL. A frame without GSO is one segment (*eff untouched). */
static int32_t plan(const struct bt_frame_meta *m, uint32_t mss,
		    struct bt_l4_info *o, uint32_t *eff)
{
	uint32_t payload;

	if (bt_offload_verify(m, o) != BT_OFF_OK)
		return -EINVAL;
	if (!(m->gso_type & (uint8_t)~BT_GSO_ECN))
		return 1;
	*eff = m->gso_size;
	if (mss && mss < *eff)
		*eff = mss;
	payload = m->len - o->hdr_len;
	if (payload <= *eff)
		return 1; /* headers alone, or one segment's worth */
	return (int32_t)((payload + *eff - 1) / *eff);
}

int32_t bt_gso_count(const struct bt_frame_meta *m, uint32_t mss)
{
	struct bt_l4_info o;
	uint32_t eff;

	return plan(m, mss, &o, &eff);
}

int bt_csum_complete(struct bt_frame_meta *m)
{
	uint8_t *d = data_of(m);
	uint32_t pos = (uint32_t)m->csum_start + m->csum_offset;
	uint16_t c;

	if (!(m->vnet_flags & BT_VNET_F_NEEDS_CSUM))
		return 0;
	if (pos + 2 > m->len)
		return -EINVAL;
	/* The field holds the pseudo-header sum: summing over it adds it. */
	c = bt_csum_fold(bt_csum_add(0, d + m->csum_start,
				     m->len - m->csum_start));
	/* 0 means "no checksum" to UDP; 0xffff is the same sum. */
	bt_put16(d + pos, c ? c : 0xffff);
	m->vnet_flags = (uint8_t)((m->vnet_flags & ~BT_VNET_F_NEEDS_CSUM) |
				  BT_VNET_F_DATA_VALID);
	return 0;
}

/* The metadata every output frame gets from m. */
static void seg_meta(struct bt_frame_meta *s, const struct bt_frame_meta *m,
		     uint32_t len)
{
	s->len = len;
	s->tstamp_ns = m->tstamp_ns;
	s->mark = m->mark;
	s->queue = m->queue;
	s->vnet_len = m->vnet_len;
	s->vnet_flags = 0;
	s->gso_type = BT_GSO_NONE;
	s->hdr_len = 0;
	s->gso_size = 0;
	s->csum_start = 0;
	s->csum_offset = 0;
}

/* Does a segment of len bytes fit frame s? */
static int fits(const struct bt_frame_meta *s, uint32_t frame_size,
		uint32_t len)
{
	return s->data_off >= sizeof(*s) && s->data_off <= frame_size &&
	       frame_size - s->data_off >= len;
}

/* A frame without GSO: a copy, its checksum completed unless partial. */
static int32_t copy_one(const struct bt_frame_meta *m,
			struct bt_frame_meta *s, uint32_t flags)
{
	memcpy(data_of(s), data_of(m), m->len);
	seg_meta(s, m, m->len);
	s->vnet_flags = m->vnet_flags;
	s->csum_start = m->csum_start;
	s->csum_offset = m->csum_offset;
	if (!(flags & BT_GSO_OUT_PARTIAL) && bt_csum_complete(s) < 0)
		return -EINVAL; /* cannot happen: verified */
	return 1;
}

int32_t bt_gso_segment(const struct bt_frame_meta *m, uint32_t mss,
		       struct bt_frame_meta *const *out, uint32_t n,
		       uint32_t frame_size, uint32_t flags)
{
	struct bt_l4_info o;
	uint32_t eff = 0, payload, hl, l3, l4, seq0 = 0, cso;
	uint16_t id0 = 0;
	uint8_t fl0 = 0;
	int32_t nseg = plan(m, mss, &o, &eff);
	const uint8_t *src = data_of(m);
	int tcp;

	if (nseg < 0)
		return nseg;
	if (n < (uint32_t)nseg || !out)
		return -ENOSPC;
	for (int32_t i = 0; i < nseg; i++) {
		if (!out[i] || out[i] == m)
			return -EINVAL;
	}
	if (!(m->gso_type & (uint8_t)~BT_GSO_ECN)) {
		if (!fits(out[0], frame_size, m->len))
			return -ENOSPC;
		return copy_one(m, out[0], flags);
	}

	hl = o.hdr_len;
	l3 = o.l3_off;
	l4 = o.l4_off;
	payload = m->len - hl;
	/* Before writing anything: each out frame has its own data_off. */
	for (int32_t i = 0; i < nseg; i++) {
		uint32_t p = payload - (uint32_t)i * eff;

		if (!fits(out[i], frame_size, hl + (p < eff ? p : eff)))
			return -ENOSPC;
	}

	tcp = o.proto == BT_IPPROTO_TCP;
	cso = tcp ? 16 : 6;
	if (tcp) {
		seq0 = bt_get32(src + l4 + 4);
		fl0 = src[l4 + 13];
	}
	if (!o.ipv6)
		id0 = bt_get16(src + l3 + 4);

	for (int32_t i = 0; i < nseg; i++) {
		struct bt_frame_meta *s = out[i];
		uint8_t *d = data_of(s);
		uint32_t off = (uint32_t)i * eff;
		uint32_t p = payload - off < eff ? payload - off : eff;
		uint32_t l4len = hl - l4 + p;
		uint32_t sum;

		memcpy(d, src, hl);
		memcpy(d + hl, src + hl + off, p);
		if (o.ipv6) {
			bt_put16(d + l3 + 4, (uint16_t)l4len);
			sum = bt_csum_pseudo6(d + l3, o.proto, l4len);
		} else {
			bt_put16(d + l3 + 2, (uint16_t)(hl - l3 + p));
			bt_put16(d + l3 + 4, (uint16_t)(id0 + i));
			bt_put16(d + l3 + 10, 0);
			bt_put16(d + l3 + 10,
				 bt_csum_fold(bt_csum_add(0, d + l3, l4 - l3)));
			sum = bt_csum_pseudo4(d + l3, o.proto, l4len);
		}
		if (tcp) {
			uint8_t fl = fl0;

			bt_put32(d + l4 + 4, seq0 + off);
			if (i != nseg - 1)
				fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
			if (i != 0)
				fl &= (uint8_t)~TCP_CWR;
			d[l4 + 13] = fl;
		} else {
			bt_put16(d + l4 + 4, (uint16_t)l4len);
		}
		seg_meta(s, m, hl + p);
		if (flags & BT_GSO_OUT_PARTIAL) {
			/* What the kernel leaves for a device that sums:
			 * the pseudo-header sum, folded, not complemented. */
			bt_put16(d + l4 + cso, bt_csum_fold16(sum));
			s->vnet_flags = BT_VNET_F_NEEDS_CSUM;
			s->csum_start = (uint16_t)l4;
			s->csum_offset = (uint16_t)cso;
		} else {
			uint16_t c;

			bt_put16(d + l4 + cso, 0);
			c = bt_csum_fold(bt_csum_add(sum, d + l4, l4len));
			if (!tcp && c == 0)
				c = 0xffff; /* 0: "no checksum" to UDP */
			bt_put16(d + l4 + cso, c);
			s->vnet_flags = BT_VNET_F_DATA_VALID;
		}
	}
	return nseg;
}
