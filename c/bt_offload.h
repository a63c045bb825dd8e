/* SPDX-License-Identifier: MIT */
/*
 * Offloads in software: what a NIC (or the kernel, for a TAP) would do
 * with a frame's offload metadata (struct bt_frame_meta: vnet_flags,
 * gso_type, hdr_len, gso_size, csum_start, csum_offset) when the frame's
 * next hop cannot.
 *
 *   offload_check.c  is the metadata consistent with the data? (hostile
 *                    vnet headers are refused here, before anything trusts
 *                    an offset)
 *   gso.c            segment a super-frame (TCPv4, TCPv6, UDP L4) into
 *                    frames of at most gso_size payload; complete a
 *                    partial (NEEDS_CSUM) checksum
 *   gro.c            coalesce a received batch's TCP segments of one flow
 *                    into super-frames
 *
 * All offsets in the metadata are relative to the start of the data (the
 * Ethernet header), as in the virtio-net header. Frames here are frames of
 * pools (HELD by the caller); none of these functions takes a lock, moves a
 * frame between states or returns one to its pool: the caller does.
 */
#ifndef BT_OFFLOAD_H
#define BT_OFFLOAD_H

#include <stdint.h>

#include "bulktap.h"

/* Why bt_offload_check refused a frame (0: fine). */
enum bt_offload_bad {
	BT_OFF_OK = 0,
	BT_OFF_BAD_TYPE, /* gso_type unknown, or UFO (BT_GSO_UDP) */
	BT_OFF_BAD_GSO_SIZE, /* GSO with gso_size 0, or segments of that
			      * size whose IP/UDP length would not fit */
	BT_OFF_BAD_HDR_LEN, /* hdr_len past the data */
	BT_OFF_BAD_CSUM, /* csum_start/offset outside the data; for GSO,
			  * not the L4 checksum field */
	BT_OFF_BAD_HEADERS, /* GSO type does not match the packet's headers */
};

/*
 * Check m's offload metadata against its data (m->len bytes at
 * m->data_off). A frame without offload metadata (all zero) is fine. For
 * GSO frames the Ethernet/IP/L4 headers are parsed and must match the type
 * (TCPV4: IPv4 + TCP; TCPV6: IPv6 + TCP; UDP_L4: IPv4 or IPv6 + UDP; one
 * optional 802.1Q tag), hdr_len may be fixed up to the real header length
 * (the kernel's own hdr_len is a hint). Never reads outside the data.
 */
int bt_offload_check(struct bt_frame_meta *m);

/*
 * bt_offload_check without the fix-up, for the offloads that must not
 * trust what they are given (gso.c): the verdict and, for a GSO frame that
 * passes, where its headers are (*o; untouched otherwise). hdr_len is only
 * checked against the data: o->hdr_len is the real header length.
 */
struct bt_l4_info;
enum bt_offload_bad bt_offload_verify(const struct bt_frame_meta *m,
				      struct bt_l4_info *o);

/*
 * Complete the partial L4 checksum of a NEEDS_CSUM frame in place: sum from
 * csum_start to the end of the data, store at csum_start + csum_offset,
 * clear NEEDS_CSUM (set DATA_VALID). 0, or -EINVAL if the offsets are
 * outside the data (nothing written).
 */
int bt_csum_complete(struct bt_frame_meta *m);

/*
 * Segments bt_gso_segment makes of super-frame m when each segment may
 * carry at most `mss` payload bytes (0: m->gso_size; the smaller of the
 * two is used). 1 for a frame without GSO (whatever mss) and for one whose
 * payload fits one segment. -EINVAL for bad metadata: whatever
 * bt_offload_check refuses (the headers are parsed again; hdr_len is not
 * trusted, so a frame need not have been through bt_offload_check).
 */
int32_t bt_gso_count(const struct bt_frame_meta *m, uint32_t mss);

/* bt_gso_segment flags */
#define BT_GSO_OUT_PARTIAL 1u /* leave each segment's L4 checksum partial
			       * (NEEDS_CSUM, pseudo-header sum in the field)
			       * for a target that completes it */

/*
 * Segment super-frame m into out[0..n): frames of one pool, HELD, each
 * frame_size bytes long counting from its metadata, so with frame_size -
 * data_off bytes of room for data (the caller allocated them). Each
 * segment is a complete packet: headers copied, IPv4 total length, id
 * (+1 per segment) and header checksum, IPv6 payload length, TCP sequence
 * numbers, flags (FIN/PSH only on the last, CWR only on the first), UDP
 * length; L4 checksum complete (vnet_flags DATA_VALID; a UDP checksum
 * of 0 is sent as 0xffff) or, with BT_GSO_OUT_PARTIAL, partial (NEEDS_CSUM,
 * csum_start/csum_offset at the L4 checksum, which holds the folded
 * pseudo-header sum); no GSO metadata left (gso_type, gso_size, hdr_len
 * 0). len, tstamp_ns, mark, queue and vnet_len are set on each segment
 * (all but len copied from m); magic, ref, state and data_off are not
 * touched. A frame without GSO is copied into out[0] whole, its
 * NEEDS_CSUM checksum completed unless BT_GSO_OUT_PARTIAL. m is not
 * changed. Returns the segments written, or -EINVAL (bad metadata, a NULL
 * out frame, or m among them), -ENOSPC (n smaller than bt_gso_count, or a
 * segment does not fit its frame: data_off below the metadata or too
 * little room); these are found before anything is written, so on error
 * out is untouched and every out frame is still the caller's.
 */
int32_t bt_gso_segment(const struct bt_frame_meta *m, uint32_t mss,
		       struct bt_frame_meta *const *out, uint32_t n,
		       uint32_t frame_size, uint32_t flags);

/*
 * Coalesce the TCP segments of ms[0..n) (one received batch, in arrival
 * order) into super-frames, in place: a segment merges into an earlier
 * frame of the same flow when the rules allow (same addresses, ports,
 * IP version; the next sequence number; same ACK, window, TCP options and
 * IP fields that must match; no SYN/RST/URG/FIN or CWR change except FIN
 * and PSH on the last; payload size equal to the first's, the last may be
 * shorter; the result's data (len, Ethernet header included) no longer
 * than max_len nor BT_MAX_SUPER_FRAME bytes and fitting the head frame:
 * frames are frame_size bytes counting from their metadata). IPv4 ids
 * must be consecutive (what bt_gso_segment regenerates); the TCP checksum
 * of a frame with neither NEEDS_CSUM nor DATA_VALID is verified before it
 * merges (see gro.c). Merged frames get GSO metadata
 * (gso_type TCPV4/TCPV6, gso_size, hdr_len, NEEDS_CSUM with the
 * pseudo-header sum) and fixed lengths/IPv4 checksum. Frames whose data
 * moved into another are written to freed[] (caller returns them to their
 * pools). ms is compacted keeping order. Returns the new n; *nfreed gets
 * how many went to freed (capacity n). Frames that are not TCP, carry
 * offload metadata already, or have bad headers pass untouched.
 */
uint32_t bt_gro_batch(struct bt_frame_meta **ms, uint32_t n,
		      uint32_t frame_size,
		      uint32_t max_len, struct bt_frame_meta **freed,
		      uint32_t *nfreed);

#endif /* BT_OFFLOAD_H */
