// SPDX-License-Identifier: MIT
/*
 * Software GRO: coalesce the TCP segments of one received batch into
 * super-frames (see bt_gro_batch in bt_offload.h).
 *
 * The merge rules follow the kernel's TCP GRO (and wireguard-go's TUN
 * coalescing): a segment joins an open flow only if it is the very next
 * byte of the stream, with the same Ethernet header, addresses, ports,
 * ACK, window, TCP options and IP fields, and it is no larger than the
 * first segment. Choices made here:
 *
 *   - IPv4 id: must be consecutive (head's id + segments so far, mod 2^16).
 *     That is what bt_gso_segment regenerates, so splitting the super-frame
 *     again gives back the original packets. Stacks that send a fixed id
 *     (0 with DF) do not merge; they are rare for TCP.
 *   - Checksums: a frame with DATA_VALID is trusted; one with NEEDS_CSUM
 *     (only the TCP checksum at its usual place) comes from a local stack
 *     and its checksum is recomputed anyway; one with neither flag has its
 *     TCP checksum verified before it merges (lazily: only when a merge is
 *     about to happen), so a corrupt segment is never hidden inside a
 *     super-frame whose checksum the receiver recomputes. The IPv4 header
 *     checksum is always verified. A frame that fails passes untouched.
 *   - The IP length must cover the frame exactly (no Ethernet padding).
 *   - Length bound: the merged frame's data (m->len) <= max_len and
 *     <= BT_MAX_SUPER_FRAME, its IP length <= 65535, and it fits its frame.
 *
 * A TCP frame of an open flow that cannot merge closes the flow (so later
 * segments never jump over it), then may start a new one itself.
 */
#include <stdint.h>
#include <string.h>

#include "bt_csum.h"
#include "bt_offload.h"
#include "bt_parse.h"

#define GRO_FLOWS 16

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_URG 0x20
#define TCP_CWR 0x80

struct gro_flow {
	struct bt_frame_meta *head;
	uint8_t *d; /* head's data */
	struct bt_l4_info in; /* head's headers */
	uint32_t hash;
	uint32_t next_seq; /* sequence number the next segment must carry */
	uint32_t room; /* bytes of data the head's frame can hold */
	uint32_t last; /* batch index of the last frame added (for LRU) */
	uint16_t gso_size; /* first segment's payload */
	uint16_t segs; /* segments merged so far, head included */
	uint8_t verified; /* head's checksum checked (or trusted) */
};

struct gro_pkt {
	struct bt_frame_meta *m;
	uint8_t *d;
	struct bt_l4_info in;
	uint32_t payload;
	uint32_t hash;
};

/* Bytes of the addresses (IPv4 12..20, IPv6 8..40). */
static inline uint32_t addr_off(const struct gro_pkt *p)
{
	return p->in.l3_off + (p->in.ipv6 ? 8u : 12u);
}

static inline uint32_t addr_len(const struct gro_pkt *p)
{
	return p->in.ipv6 ? 32u : 8u;
}

/* A hash of Ethernet type/tag, addresses and ports: a quick "not this flow". */
static uint32_t flow_hash(const struct gro_pkt *p)
{
	const uint8_t *a = p->d + addr_off(p);
	uint32_t h = 2166136261u ^ p->in.l3_off ^ (uint32_t)p->in.ipv6 << 8;

	for (uint32_t i = 0; i < addr_len(p); i += 4)
		h = (h ^ bt_get32(a + i)) * 16777619u;
	h = (h ^ bt_get32(p->d + p->in.l4_off)) * 16777619u;
	return h;
}

/* Same flow: Ethernet header (MACs, tag, type), addresses, ports. */
static int same_flow(const struct gro_flow *f, const struct gro_pkt *p)
{
	if (f->hash != p->hash || f->in.l3_off != p->in.l3_off ||
	    f->in.ipv6 != p->in.ipv6)
		return 0;
	if (memcmp(f->d, p->d, p->in.l3_off) != 0)
		return 0;
	if (memcmp(f->d + addr_off(p), p->d + addr_off(p), addr_len(p)) != 0)
		return 0;
	return memcmp(f->d + f->in.l4_off, p->d + p->in.l4_off, 4) == 0;
}

/*
 * Could this frame take part in a merge at all (as head or as segment)?
 * Fills p. Checksums of unflagged frames are checked later (csum_ok).
 */
static int candidate(struct gro_pkt *p)
{
	struct bt_frame_meta *m = p->m;
	const uint8_t *ip, *th;

	if (m->gso_type != BT_GSO_NONE ||
	    (m->vnet_flags & ~(BT_VNET_F_NEEDS_CSUM | BT_VNET_F_DATA_VALID)))
		return 0;
	if ((m->vnet_flags & BT_VNET_F_NEEDS_CSUM) &&
	    (m->csum_start != p->in.l4_off || m->csum_offset != 16))
		return 0;
	if (p->in.l3_off + p->in.ip_len != m->len)
		return 0;
	ip = p->d + p->in.l3_off;
	if (!p->in.ipv6) {
		if ((ip[0] & 15) != 5)
			return 0; /* IPv4 options */
		if (bt_csum_fold(bt_csum_add(0, ip, 20)) != 0)
			return 0;
	}
	th = p->d + p->in.l4_off;
	if (th[13] & (TCP_SYN | TCP_RST | TCP_URG))
		return 0;
	p->payload = m->len - p->in.hdr_len;
	return p->payload > 0 && p->payload <= 0xffff;
}

/* The TCP checksum of a frame without flags is right; flagged: trusted. */
static int csum_ok(const struct bt_frame_meta *m, const uint8_t *d,
		   const struct bt_l4_info *in)
{
	uint32_t l4_len = m->len - in->l4_off, s;
	const uint8_t *ip = d + in->l3_off;

	if (m->vnet_flags)
		return 1;
	s = in->ipv6 ? bt_csum_pseudo6(ip, BT_IPPROTO_TCP, l4_len) :
		       bt_csum_pseudo4(ip, BT_IPPROTO_TCP, l4_len);
	s = bt_csum_add(s, d + in->l4_off, l4_len);
	return bt_csum_fold(s) == 0;
}

/* Can p be appended to f? (Flow identity already matched.) */
static int can_merge(struct gro_flow *f, const struct gro_pkt *p,
		     uint32_t max_len)
{
	const uint8_t *hip = f->d + f->in.l3_off, *ip = p->d + p->in.l3_off;
	const uint8_t *hth = f->d + f->in.l4_off, *th = p->d + p->in.l4_off;
	uint32_t doff = p->in.hdr_len - p->in.l4_off;
	uint32_t len = f->head->len + p->payload;

	if (f->in.hdr_len != p->in.hdr_len || f->in.l4_off != p->in.l4_off)
		return 0;
	if (bt_get32(th + 4) != f->next_seq)
		return 0;
	/* ACK number, then data offset/reserved bits */
	if (memcmp(hth + 8, th + 8, 5) != 0)
		return 0;
	/* Flags: equal but for PSH/FIN (allowed on the last) and CWR (only on
	 * the first). */
	if ((th[13] & ~(TCP_PSH | TCP_FIN)) !=
	    (hth[13] & ~(TCP_PSH | TCP_FIN | TCP_CWR)))
		return 0;
	/* window; options byte for byte */
	if (memcmp(hth + 14, th + 14, 2) != 0 ||
	    memcmp(hth + 20, th + 20, doff - 20) != 0)
		return 0;
	if (p->in.ipv6) {
		/* version, traffic class, flow label; hop limit */
		if (memcmp(hip, ip, 4) != 0 || hip[7] != ip[7])
			return 0;
	} else {
		/* TOS; DF; TTL; consecutive id */
		if (hip[1] != ip[1] || bt_get16(hip + 6) != bt_get16(ip + 6) ||
		    hip[8] != ip[8])
			return 0;
		if (bt_get16(ip + 4) != (uint16_t)(bt_get16(hip + 4) + f->segs))
			return 0;
	}
	if (p->payload > f->gso_size)
		return 0;
	/* BT_MAX_SUPER_FRAME keeps the IP length within 16 bits as well */
	if (len > max_len || len > BT_MAX_SUPER_FRAME || len > f->room)
		return 0;
	if (!csum_ok(p->m, p->d, &p->in))
		return 0;
	if (!f->verified) {
		if (!csum_ok(f->head, f->d, &f->in))
			return 0;
		f->verified = 1;
	}
	return 1;
}

/* Write the merged lengths, checksums and GSO metadata into the head. */
static void finish(struct gro_flow *f)
{
	struct bt_frame_meta *m = f->head;
	uint8_t *ip = f->d + f->in.l3_off, *th = f->d + f->in.l4_off;
	uint32_t ip_len = m->len - f->in.l3_off, l4_len = m->len - f->in.l4_off;
	uint32_t ps;

	if (f->segs < 2)
		return;
	if (f->in.ipv6) {
		bt_put16(ip + 4, (uint16_t)(ip_len - 40));
		ps = bt_csum_pseudo6(ip, BT_IPPROTO_TCP, l4_len);
		m->gso_type = BT_GSO_TCPV6;
	} else {
		bt_put16(ip + 2, (uint16_t)ip_len);
		bt_put16(ip + 10, 0);
		bt_put16(ip + 10, bt_csum_fold(bt_csum_add(0, ip, 20)));
		ps = bt_csum_pseudo4(ip, BT_IPPROTO_TCP, l4_len);
		m->gso_type = BT_GSO_TCPV4;
	}
	if (th[13] & TCP_CWR)
		m->gso_type |= BT_GSO_ECN;
	/* NEEDS_CSUM wants the pseudo-header sum, folded, not complemented */
	bt_put16(th + 16, bt_csum_fold16(ps));
	m->vnet_flags = BT_VNET_F_NEEDS_CSUM;
	m->hdr_len = f->in.hdr_len;
	m->gso_size = f->gso_size;
	m->csum_start = f->in.l4_off;
	m->csum_offset = 16;
}

static void flow_close(struct gro_flow *fl, uint32_t *nfl, uint32_t i)
{
	finish(&fl[i]);
	fl[i] = fl[--*nfl];
}

uint32_t bt_gro_batch(struct bt_frame_meta **ms, uint32_t n,
		      uint32_t frame_size, uint32_t max_len,
		      struct bt_frame_meta **freed, uint32_t *nfreed)
{
	struct gro_flow fl[GRO_FLOWS];
	uint32_t nfl = 0, w = 0, nf = 0;

	for (uint32_t i = 0; i < n; i++) {
		struct gro_pkt p = { .m = ms[i] };
		struct bt_frame_meta *m = ms[i];
		uint32_t j;
		int cand;

		ms[w++] = m;
		if (m->data_off < sizeof(*m) || m->data_off > frame_size ||
		    m->len > frame_size - m->data_off)
			continue; /* not a sane frame: do not look inside */
		p.d = (uint8_t *)m + m->data_off;
		if (bt_parse_l4(p.d, m->len, &p.in) != 0 ||
		    p.in.proto != BT_IPPROTO_TCP)
			continue;
		p.hash = flow_hash(&p);
		cand = candidate(&p);
		for (j = 0; j < nfl && !same_flow(&fl[j], &p); j++)
			;
		if (j < nfl) {
			struct gro_flow *f = &fl[j];

			if (cand && can_merge(f, &p, max_len)) {
				uint8_t *hth = f->d + f->in.l4_off;

				memcpy(f->d + f->head->len,
				       p.d + p.in.hdr_len, p.payload);
				f->head->len += p.payload;
				f->next_seq += p.payload;
				f->segs++;
				f->last = i;
				hth[13] |= p.d[p.in.l4_off + 13] &
					   (TCP_PSH | TCP_FIN);
				w--;
				freed[nf++] = m;
				if (p.payload < f->gso_size ||
				    (hth[13] & (TCP_PSH | TCP_FIN)))
					flow_close(fl, &nfl, j);
				continue;
			}
			flow_close(fl, &nfl, j);
		}
		/* A new head: only if more may follow it. */
		if (!cand || (p.d[p.in.l4_off + 13] & (TCP_PSH | TCP_FIN)))
			continue;
		if (nfl == GRO_FLOWS) {
			uint32_t lru = 0;

			for (j = 1; j < nfl; j++)
				if (fl[j].last < fl[lru].last)
					lru = j;
			flow_close(fl, &nfl, lru);
		}
		fl[nfl++] = (struct gro_flow){
			.head = m,
			.d = p.d,
			.in = p.in,
			.hash = p.hash,
			.next_seq = bt_get32(p.d + p.in.l4_off + 4) + p.payload,
			.room = frame_size - m->data_off,
			.last = i,
			.gso_size = (uint16_t)p.payload,
			.segs = 1,
			.verified = m->vnet_flags != 0,
		};
	}
	while (nfl)
		flow_close(fl, &nfl, nfl - 1);
	*nfreed = nf;
	return w;
}
