/* SPDX-License-Identifier: MIT */
/*
 * Where a frame's headers are: Ethernet (one optional 802.1Q/802.1ad tag),
 * IPv4 (with options) or IPv6 (no extension headers), TCP (with options)
 * or UDP. Used by the software offloads (gso.c, gro.c, offload_check.c);
 * never reads past len.
 */
#ifndef BT_PARSE_H
#define BT_PARSE_H

#include <stdint.h>

#include "bt_csum.h"

#define BT_ETH_HLEN 14
#define BT_ETH_P_IPV4 0x0800
#define BT_ETH_P_IPV6 0x86dd
#define BT_ETH_P_8021Q 0x8100
#define BT_ETH_P_8021AD 0x88a8
#define BT_IPPROTO_TCP 6
#define BT_IPPROTO_UDP 17

struct bt_l4_info {
	uint16_t l3_off; /* IP header */
	uint16_t l4_off; /* TCP/UDP header */
	uint16_t hdr_len; /* all headers: payload starts here */
	uint8_t ipv6; /* 0: IPv4, 1: IPv6 */
	uint8_t proto; /* BT_IPPROTO_TCP or BT_IPPROTO_UDP */
	uint32_t ip_len; /* bytes the IP header says the packet has (IPv4
			  * total length, IPv6 40 + payload length) */
};

/*
 * Parse d[0..len): 0 and *o filled if it is TCP or UDP over IPv4/IPv6 with
 * every header inside len; -1 otherwise (not IP, another protocol, IPv4
 * fragments, IPv6 extension headers, truncated or inconsistent headers).
 * ip_len is what the IP header says; it is not checked against len (a GSO
 * super-frame's IP length may be stale).
 */
static inline int bt_parse_l4(const uint8_t *d, uint32_t len,
			      struct bt_l4_info *o)
{
	uint32_t off = BT_ETH_HLEN;
	uint16_t type;

	if (len < BT_ETH_HLEN)
		return -1;
	type = bt_get16(d + 12);
	if (type == BT_ETH_P_8021Q || type == BT_ETH_P_8021AD) {
		if (len < BT_ETH_HLEN + 4)
			return -1;
		type = bt_get16(d + 16);
		off += 4;
	}
	o->l3_off = (uint16_t)off;
	if (type == BT_ETH_P_IPV4) {
		uint32_t ihl;

		if (len < off + 20 || d[off] >> 4 != 4)
			return -1;
		ihl = (uint32_t)(d[off] & 15) * 4;
		if (ihl < 20 || len < off + ihl)
			return -1;
		/* More fragments, or a fragment offset: not one L4 packet. */
		if (bt_get16(d + off + 6) & 0x3fff)
			return -1;
		o->ipv6 = 0;
		o->proto = d[off + 9];
		o->ip_len = bt_get16(d + off + 2);
		off += ihl;
	} else if (type == BT_ETH_P_IPV6) {
		if (len < off + 40 || d[off] >> 4 != 6)
			return -1;
		o->ipv6 = 1;
		o->proto = d[off + 6];
		o->ip_len = 40u + bt_get16(d + off + 4);
		off += 40;
	} else {
		return -1;
	}
	o->l4_off = (uint16_t)off;
	if (o->proto == BT_IPPROTO_TCP) {
		uint32_t doff;

		if (len < off + 20)
			return -1;
		doff = (uint32_t)(d[off + 12] >> 4) * 4;
		if (doff < 20 || len < off + doff)
			return -1;
		off += doff;
	} else if (o->proto == BT_IPPROTO_UDP) {
		if (len < off + 8)
			return -1;
		off += 8;
	} else {
		return -1;
	}
	o->hdr_len = (uint16_t)off;
	return 0;
}

#endif /* BT_PARSE_H */
