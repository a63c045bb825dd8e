/* SPDX-License-Identifier: MIT */
/*
 * Internet checksums (RFC 1071) for the offload code: sums in one's
 * complement, 32-bit accumulators folded to 16 bits at the end.
 *
 * A "sum" here is the unfolded 32-bit accumulator of 16-bit big-endian
 * words; bt_csum_fold turns it into the value stored in a header (the
 * complement of the folded sum). Summing is associative, so a packet's sum
 * can be built from its pieces, as long as every piece but the last starts
 * at an even offset of the packet (bt_csum_add handles odd lengths by
 * padding with a zero byte, which is only right for the last piece).
 */
#ifndef BT_CSUM_H
#define BT_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add the 16-bit big-endian words of p[0..len) to sum. */
static inline uint32_t bt_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;

	while (len >= 8) {
		s += ((uint32_t)p[0] << 8 | p[1]) + ((uint32_t)p[2] << 8 | p[3]) +
		     ((uint32_t)p[4] << 8 | p[5]) + ((uint32_t)p[6] << 8 | p[7]);
		p += 8;
		len -= 8;
	}
	while (len >= 2) {
		s += (uint32_t)p[0] << 8 | p[1];
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

/* Fold a sum to 16 bits (not complemented). */
static inline uint16_t bt_csum_fold16(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The checksum field's value for a sum: the complement of the fold. */
static inline uint16_t bt_csum_fold(uint32_t sum)
{
	return (uint16_t)~bt_csum_fold16(sum);
}

/* Read and write 16-bit big-endian fields. */
static inline uint16_t bt_get16(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void bt_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint32_t bt_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void bt_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The pseudo-header sum of TCP/UDP over IPv4 (ip: the IPv4 header) or
 * IPv6 (ip: the IPv6 header) for an L4 length of l4_len bytes. */
static inline uint32_t bt_csum_pseudo4(const uint8_t *ip, uint8_t proto,
				       uint32_t l4_len)
{
	uint32_t s = bt_csum_add(0, ip + 12, 8); /* source, destination */

	return s + proto + l4_len;
}

static inline uint32_t bt_csum_pseudo6(const uint8_t *ip, uint8_t proto,
				       uint32_t l4_len)
{
	uint32_t s = bt_csum_add(0, ip + 8, 32); /* source, destination */

	return s + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

#endif /* BT_CSUM_H */
