/* SPDX-License-Identifier: MIT */
/*
 * Is a frame's offload metadata consistent with its data?
 *
 * The metadata comes from a virtio-net header, i.e. from whoever wrote the
 * packet into the TAP (or from a program): every offset is hostile until
 * checked here. The rules are the ones the kernel applies to a vnet header
 * (tun.c, virtio_net.h): known GSO types only, no UFO, a non-zero segment
 * size, header length and checksum offsets inside the data, and headers
 * that are what the GSO type says. The header length is only a hint: it is
 * replaced by the real one, which is what gso.c uses.
 */
#include <stddef.h>

#include "bt_offload.h"
#include "bt_parse.h"

/* Where the L4 checksum field is in a TCP / UDP header. */
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

enum bt_offload_bad bt_offload_verify(const struct bt_frame_meta *m,
				      struct bt_l4_info *o)
{
	const uint8_t *d = (const uint8_t *)m + m->data_off;
	uint32_t len = m->len;
	uint8_t gso = m->gso_type & (uint8_t)~BT_GSO_ECN;
	int tcp = gso == BT_GSO_TCPV4 || gso == BT_GSO_TCPV6;
	uint32_t seg_max, ip_max;

	if (gso != BT_GSO_NONE && !tcp && gso != BT_GSO_UDP_L4)
		return BT_OFF_BAD_TYPE; /* unknown, or UFO */
	if ((m->gso_type & BT_GSO_ECN) && !tcp)
		return BT_OFF_BAD_TYPE; /* CWR is a TCP thing */
	if (gso != BT_GSO_NONE && m->gso_size == 0)
		return BT_OFF_BAD_GSO_SIZE;
	if (m->hdr_len > len)
		return BT_OFF_BAD_HDR_LEN;
	if ((m->vnet_flags & BT_VNET_F_NEEDS_CSUM) &&
	    (uint32_t)m->csum_start + m->csum_offset + 2 > len)
		return BT_OFF_BAD_CSUM;
	if (gso == BT_GSO_NONE)
		return BT_OFF_OK;

	if (bt_parse_l4(d, len, o) < 0)
		return BT_OFF_BAD_HEADERS;
	if (tcp && (o->proto != BT_IPPROTO_TCP ||
		    o->ipv6 != (gso == BT_GSO_TCPV6)))
		return BT_OFF_BAD_HEADERS;
	if (gso == BT_GSO_UDP_L4 && o->proto != BT_IPPROTO_UDP)
		return BT_OFF_BAD_HEADERS;
	/* A partial checksum of a super-frame can only be the L4 one: each
	 * segment gets its own, computed where the headers say. */
	if ((m->vnet_flags & BT_VNET_F_NEEDS_CSUM) &&
	    (m->csum_start != o->l4_off ||
	     m->csum_offset != (tcp ? TCP_CSUM_OFF : UDP_CSUM_OFF)))
		return BT_OFF_BAD_CSUM;
	/* The largest segment's IP (and UDP) length must fit 16 bits. */
	seg_max = len - o->hdr_len;
	if (seg_max > m->gso_size)
		seg_max = m->gso_size;
	ip_max = o->hdr_len - o->l3_off - (o->ipv6 ? 40u : 0u) + seg_max;
	if (ip_max > 0xffff)
		return BT_OFF_BAD_GSO_SIZE;
	return BT_OFF_OK;
}

int bt_offload_check(struct bt_frame_meta *m)
{
	struct bt_l4_info o;
	enum bt_offload_bad bad = bt_offload_verify(m, &o);

	if (bad == BT_OFF_OK && (m->gso_type & (uint8_t)~BT_GSO_ECN))
		m->hdr_len = o.hdr_len;
	return (int)bad;
}
