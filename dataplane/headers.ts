/**
 * Allocation-free packet header helpers. Every function takes the frame's
 * bytes (usually `pool.bytes`), the offset of the header it reads, and the
 * number of bytes the frame has from that offset (`end - off`), so it can
 * never read past the frame. Functions return a non-negative result, or one
 * of the negative {@linkcode HeaderError} codes; none throws, none allocates.
 *
 * All multi-byte fields are in network byte order, as on the wire.
 *
 * Frames with a partial checksum (a TAP device's offload,
 * `VnetFlags.NEEDS_CSUM`: the UDP/TCP checksum field holds the folded
 * pseudo-header sum and the device completes it) need another rule when an
 * address or port changes: the rewriting helpers take the frame's flags as
 * a last argument (`pool.vnetFlags(ref)`) and patch the field accordingly.
 * The parsers accept GSO super-frames, whose IPv4 total length or IPv6
 * payload length covers the whole super-frame (up to 65535 bytes).
 *
 * @example Source NAT (IPv4), for plain frames and super-frames alike
 * ```ts
 * import {
 *   EtherType, ethPayloadOffset, ethProtocol, FramePool, type Program, redirect,
 *   ipv4SetSrc, l4SetSrcPort,
 * } from "./mod.ts";
 * const PUBLIC = 0xc0000201; // 192.0.2.1
 * const snat: Program = (batch) => {
 *   for (let i = 0; i < batch.count; i++) {
 *     const ref = batch.refs[i];
 *     const pool = FramePool.of(ref);
 *     const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
 *     const flags = pool.vnetFlags(ref); // NEEDS_CSUM: the checksum is partial
 *     if (ethProtocol(b, d, len) !== EtherType.IPV4) continue; // stays DROP
 *     const l3 = d + ethPayloadOffset(b, d, len), l3len = len - (l3 - d);
 *     const ihl = ipv4SetSrc(b, l3, l3len, PUBLIC, flags);
 *     if (ihl < 0) continue;
 *     if (l4SetSrcPort(b, l3 + ihl, l3len - ihl, b[l3 + 9], 40000, flags) < 0) continue;
 *     batch.verdicts[i] = redirect(0);
 *   }
 * };
 * ```
 *
 * @module
 */
import { VnetFlags } from "./offload.ts";

/**
 * Negative return codes of the header helpers: -10001 and below, so none
 * can be taken for a negative errno (Linux errnos are 1..4095, MAX_ERRNO)
 * such as the C library's -22 (EINVAL). Results are non-negative on
 * success, so `r < 0` tells a failure; compare with these names, never
 * with numbers.
 *
 * @example
 * ```ts
 * import { HeaderError, swapMacs } from "./mod.ts";
 * console.log(swapMacs(new Uint8Array(4), 0, 4) === HeaderError.TRUNCATED); // true
 * ```
 */
export const HeaderError = {
  /** The frame ends before the header (or a length field) does. */
  TRUNCATED: -10001,
  /** A field has an impossible value (version, header length, total length, ARP sizes). */
  MALFORMED: -10002,
  /** Not the protocol the helper handles (e.g. ipv4Header on an IPv6 packet). */
  UNSUPPORTED: -10003,
  /** TTL / hop limit is 0 or 1: the packet must not be forwarded (not modified). */
  TTL_EXPIRED: -10004,
  /**
   * A non-first IPv4 fragment (fragment offset > 0): it carries no UDP/TCP
   * header, so it has no ports. {@linkcode FiveTuple.parse} still fills the
   * family, protocol and addresses, and sets both ports to 0.
   */
  FRAGMENT: -10005,
} as const;

/**
 * Whether `[off, off + len)` is not a range of `b`: NaN, negative,
 * fractional-overflowing or non-number offsets and lengths, or a range past
 * the array. Every helper answers {@linkcode HeaderError.TRUNCATED} for it
 * instead of reading `undefined` (NaN results) or looping on a huge length.
 */
function outside(b: Uint8Array, off: number, len: number): boolean {
  // `x === x >>> 0`: a whole number in 0..2^32-1 (a fraction would index
  // no byte and make the result NaN).
  return !(off === off >>> 0 && len === len >>> 0 && off + len <= b?.length);
}

/**
 * EtherTypes the helpers know.
 *
 * @example
 * ```ts
 * import { EtherType } from "./mod.ts";
 * console.log(EtherType.IPV6.toString(16)); // 86dd
 * ```
 */
export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QINQ: 0x88a8,
  IPV6: 0x86dd,
} as const;

/**
 * IP protocol numbers the helpers know.
 *
 * @example
 * ```ts
 * import { IpProto } from "./mod.ts";
 * console.log(IpProto.UDP); // 17
 * ```
 */
export const IpProto = { ICMP: 1, TCP: 6, UDP: 17, ICMPV6: 58 } as const;

/**
 * Bytes in an Ethernet header without VLAN tags.
 *
 * @example
 * ```ts
 * import { ETH_HLEN } from "./mod.ts";
 * console.log(ETH_HLEN); // 14
 * ```
 */
export const ETH_HLEN = 14;

/**
 * Read a 48-bit MAC address as a number (exact: below 2^53).
 *
 * @example
 * ```ts
 * import { readMac } from "./mod.ts";
 * console.log(readMac(Uint8Array.of(0, 0, 0, 0, 0, 1), 0, 6)); // 1
 * ```
 */
export function readMac(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < 6) return HeaderError.TRUNCATED;
  return (b[off] * 0x10000000000) + (b[off + 1] * 0x100000000) +
    ((b[off + 2] << 24 | b[off + 3] << 16 | b[off + 4] << 8 | b[off + 5]) >>> 0);
}

/**
 * Write a 48-bit MAC address given as a number.
 *
 * @example
 * ```ts
 * import { readMac, writeMac } from "./mod.ts";
 * const b = new Uint8Array(6);
 * writeMac(b, 0, 6, 0x020000000001);
 * console.log(readMac(b, 0, 6) === 0x020000000001); // true
 * ```
 */
export function writeMac(b: Uint8Array, off: number, len: number, mac: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < 6) return HeaderError.TRUNCATED;
  const hi = Math.floor(mac / 0x100000000);
  const lo = mac >>> 0;
  b[off] = hi >>> 8;
  b[off + 1] = hi;
  b[off + 2] = lo >>> 24;
  b[off + 3] = lo >>> 16;
  b[off + 4] = lo >>> 8;
  b[off + 5] = lo;
  return 0;
}

/**
 * Whether a MAC (as a number) is group (broadcast or multicast): the I/G bit.
 *
 * @example
 * ```ts
 * import { isGroupMac } from "./mod.ts";
 * console.log(isGroupMac(0xffffffffffff), isGroupMac(0x020000000001)); // true false
 * ```
 */
export function isGroupMac(mac: number): boolean {
  return (Math.floor(mac / 0x10000000000) & 1) === 1;
}

/**
 * Destination MAC of an Ethernet frame starting at `off`.
 *
 * @example
 * ```ts
 * import { ethDst } from "./mod.ts";
 * console.log(ethDst(new Uint8Array(14).fill(255), 0, 14) === 0xffffffffffff); // true
 * ```
 */
export function ethDst(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < ETH_HLEN) return HeaderError.TRUNCATED;
  return readMac(b, off, 6);
}

/**
 * Source MAC of an Ethernet frame starting at `off`.
 *
 * @example
 * ```ts
 * import { ethSrc } from "./mod.ts";
 * console.log(ethSrc(new Uint8Array(14), 0, 14)); // 0
 * ```
 */
export function ethSrc(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < ETH_HLEN) return HeaderError.TRUNCATED;
  return readMac(b, off + 6, 6);
}

/**
 * Swap source and destination MAC in place (reflecting a frame).
 * Returns 0, or `TRUNCATED` if the frame is shorter than an Ethernet header.
 *
 * @example
 * ```ts
 * import { ethSrc, swapMacs } from "./mod.ts";
 * const f = new Uint8Array(14);
 * f[5] = 1; // destination ...:01
 * swapMacs(f, 0, 14);
 * console.log(ethSrc(f, 0, 14)); // 1
 * ```
 */
export function swapMacs(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < ETH_HLEN) return HeaderError.TRUNCATED;
  for (let i = 0; i < 6; i++) {
    const t = b[off + i];
    b[off + i] = b[off + 6 + i];
    b[off + 6 + i] = t;
  }
  return 0;
}

/**
 * Offset (from `off`) of the Ethernet payload, skipping up to two VLAN tags
 * (802.1Q and 802.1ad). Returns 14, 18 or 22, or `TRUNCATED`, or `MALFORMED`
 * for more than two tags.
 *
 * @example
 * ```ts
 * import { ethPayloadOffset } from "./mod.ts";
 * const f = new Uint8Array(60);
 * f[12] = 0x08; // IPv4
 * console.log(ethPayloadOffset(f, 0, 60)); // 14
 * ```
 */
export function ethPayloadOffset(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  let p = 12;
  for (let tags = 0; tags <= 2; tags++) {
    if (len < p + 2) return HeaderError.TRUNCATED;
    const t = b[off + p] << 8 | b[off + p + 1];
    if (t !== EtherType.VLAN && t !== EtherType.QINQ) return p + 2;
    p += 4;
  }
  return HeaderError.MALFORMED;
}

/**
 * The EtherType of the payload (after any VLAN tags), or a negative code.
 *
 * @example
 * ```ts
 * import { EtherType, ethProtocol } from "./mod.ts";
 * const f = new Uint8Array(60);
 * f.set([0x81, 0x00, 0x00, 0x05, 0x86, 0xdd], 12); // VLAN 5, IPv6
 * console.log(ethProtocol(f, 0, 60) === EtherType.IPV6); // true
 * ```
 */
export function ethProtocol(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const p = ethPayloadOffset(b, off, len);
  if (p < 0) return p;
  return b[off + p - 2] << 8 | b[off + p - 1];
}

/**
 * VLAN ID (12 bits) of the outer tag, `UNSUPPORTED` if the frame is
 * untagged, or `TRUNCATED` if the frame ends before its EtherType or, for a
 * tagged frame, before the end of the tag (18 bytes).
 *
 * @example
 * ```ts
 * import { vlanId } from "./mod.ts";
 * const f = new Uint8Array(60);
 * f.set([0x81, 0x00, 0x20, 0x0a, 0x08, 0x00], 12);
 * console.log(vlanId(f, 0, 60)); // 10
 * ```
 */
export function vlanId(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < ETH_HLEN) return HeaderError.TRUNCATED;
  const t = b[off + 12] << 8 | b[off + 13];
  if (t !== EtherType.VLAN && t !== EtherType.QINQ) return HeaderError.UNSUPPORTED;
  if (len < 18) return HeaderError.TRUNCATED;
  return (b[off + 14] << 8 | b[off + 15]) & 0xfff;
}

/**
 * ARP operation (1 request, 2 reply) of an Ethernet/IPv4 ARP packet at `off`
 * (the L3 offset), or a negative code (`MALFORMED` for other hardware or
 * protocol types or sizes).
 *
 * @example
 * ```ts
 * import { arpOperation } from "./mod.ts";
 * const a = Uint8Array.of(0, 1, 8, 0, 6, 4, 0, 1, ...new Array(20).fill(0));
 * console.log(arpOperation(a, 0, a.length)); // 1
 * ```
 */
export function arpOperation(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < 28) return HeaderError.TRUNCATED;
  if ((b[off] << 8 | b[off + 1]) !== 1 || (b[off + 2] << 8 | b[off + 3]) !== EtherType.IPV4) {
    return HeaderError.MALFORMED;
  }
  if (b[off + 4] !== 6 || b[off + 5] !== 4) return HeaderError.MALFORMED;
  return b[off + 6] << 8 | b[off + 7];
}

/**
 * Validate an IPv4 header at `off`: returns its length in bytes (20..60),
 * `UNSUPPORTED` if the version is not 4, `MALFORMED` if IHL < 5 or the total
 * length is smaller than the header, `TRUNCATED` if the header or the total
 * length runs past the frame.
 *
 * @example
 * ```ts
 * import { ipv4HeaderLength } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip[0] = 0x45;
 * ip[3] = 20; // total length
 * console.log(ipv4HeaderLength(ip, 0, 20)); // 20
 * ```
 */
export function ipv4HeaderLength(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < 20) return HeaderError.TRUNCATED;
  if (b[off] >>> 4 !== 4) return HeaderError.UNSUPPORTED;
  const ihl = (b[off] & 0xf) * 4;
  if (ihl < 20) return HeaderError.MALFORMED;
  if (ihl > len) return HeaderError.TRUNCATED;
  const total = b[off + 2] << 8 | b[off + 3];
  if (total < ihl) return HeaderError.MALFORMED;
  if (total > len) return HeaderError.TRUNCATED;
  return ihl;
}

/**
 * The Internet checksum (RFC 1071) of `count` bytes at `off`, as stored
 * (one's complement of the one's-complement sum). Over a header whose
 * checksum field is correct, this returns 0. A range that is not inside
 * `b` returns {@linkcode HeaderError.TRUNCATED}.
 *
 * @example
 * ```ts
 * import { internetChecksum } from "./mod.ts";
 * console.log(internetChecksum(new Uint8Array(20), 0, 20)); // 65535
 * ```
 */
export function internetChecksum(b: Uint8Array, off: number, count: number): number {
  if (outside(b, off, count)) return HeaderError.TRUNCATED;
  let sum = 0;
  let i = 0;
  for (; i + 1 < count; i += 2) sum += b[off + i] << 8 | b[off + i + 1];
  if (i < count) sum += b[off + i] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * Recompute and store the IPv4 header checksum. Returns the header length
 * or a negative code (see {@linkcode ipv4HeaderLength}).
 *
 * @example
 * ```ts
 * import { internetChecksum, ipv4UpdateChecksum } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip[0] = 0x45; ip[3] = 20; ip[8] = 64; ip[9] = 17;
 * ipv4UpdateChecksum(ip, 0, 20);
 * console.log(internetChecksum(ip, 0, 20)); // 0
 * ```
 */
export function ipv4UpdateChecksum(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const ihl = ipv4HeaderLength(b, off, len);
  if (ihl < 0) return ihl;
  b[off + 10] = 0;
  b[off + 11] = 0;
  const c = internetChecksum(b, off, ihl);
  b[off + 10] = c >>> 8;
  b[off + 11] = c;
  return ihl;
}

/**
 * Decrement the IPv4 TTL and patch the header checksum incrementally
 * (RFC 1624: HC' = ~(~HC + ~m + m')), without summing the header again.
 * Returns the new TTL, `TTL_EXPIRED` (frame unchanged) if the TTL is 0 or
 * 1, or a negative code from {@linkcode ipv4HeaderLength}.
 *
 * @example
 * ```ts
 * import { internetChecksum, ipv4DecrementTtl, ipv4UpdateChecksum } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip[0] = 0x45; ip[3] = 20; ip[8] = 64; ip[9] = 17;
 * ipv4UpdateChecksum(ip, 0, 20);
 * console.log(ipv4DecrementTtl(ip, 0, 20), internetChecksum(ip, 0, 20)); // 63 0
 * ```
 */
export function ipv4DecrementTtl(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const ihl = ipv4HeaderLength(b, off, len);
  if (ihl < 0) return ihl;
  const ttl = b[off + 8];
  if (ttl <= 1) return HeaderError.TTL_EXPIRED;
  // The 16-bit word holding TTL is (TTL << 8 | protocol).
  const m = ttl << 8 | b[off + 9];
  const m2 = m - 0x100;
  let sum = (~(b[off + 10] << 8 | b[off + 11]) & 0xffff) + (~m & 0xffff) + m2;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  const hc = ~sum & 0xffff;
  b[off + 8] = ttl - 1;
  b[off + 10] = hc >>> 8;
  b[off + 11] = hc;
  return ttl - 1;
}

// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for 16-bit words m -> m2 (and
// n -> n2; pass n = n2 = 0 for one word). Folding twice is enough: the sum
// is below 5 * 0xffff.
function csumReplace(hc: number, m: number, m2: number, n: number, n2: number): number {
  return ~fold((~hc & 0xffff) + wordDiff(m, m2) + wordDiff(n, n2)) & 0xffff;
}

/** One's-complement change of a sum when a 16-bit word goes m -> m2 (unfolded). */
function wordDiff(m: number, m2: number): number {
  return (~m & 0xffff) + m2;
}

/** Fold a sum below 2^32 into 16 bits with end-around carry. */
function fold(sum: number): number {
  sum = (sum & 0xffff) + (sum >>> 16);
  return (sum & 0xffff) + (sum >>> 16);
}

/** Offset of the L4 checksum field in a UDP (6) or TCP (16) header, or -1. */
function l4ChecksumAt(proto: number): number {
  return proto === IpProto.UDP ? 6 : proto === IpProto.TCP ? 16 : -1;
}

/**
 * Patch the L4 checksum field at `at` for a change of the summed words
 * whose one's-complement difference is `diff` (a sum of wordDiff terms).
 *
 * A complete checksum (RFC 1624): field' = ~(~field + diff); a UDP
 * checksum of 0 means "none" and stays 0, and a computed 0 is sent as
 * 0xffff (RFC 768). A partial checksum (`partial`, NEEDS_CSUM) holds the
 * pseudo-header sum itself, not complemented: field' = field + diff.
 */
function l4ChecksumAdjust(
  b: Uint8Array,
  at: number,
  proto: number,
  diff: number,
  partial: boolean,
): void {
  const c = b[at] << 8 | b[at + 1];
  let nc: number;
  if (partial) {
    nc = fold(c + fold(diff));
  } else {
    if (proto === IpProto.UDP && c === 0) return;
    nc = ~fold((~c & 0xffff) + fold(diff)) & 0xffff;
    if (nc === 0 && proto === IpProto.UDP) nc = 0xffff;
  }
  b[at] = nc >>> 8;
  b[at + 1] = nc;
}

/** Whether the frame's offload flags (`pool.vnetFlags(ref)`) say the checksum is partial. */
function isPartial(vnetFlags: number): boolean {
  return (vnetFlags & VnetFlags.NEEDS_CSUM) !== 0;
}

/**
 * Source address of an IPv4 header at `off`, as an unsigned 32-bit number
 * (`10.0.0.1` is `0x0a000001`), or a negative code from
 * {@linkcode ipv4HeaderLength}.
 *
 * @example
 * ```ts
 * import { ipv4Src } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip.set([0x45, 0, 0, 20], 0);
 * ip.set([10, 0, 0, 1], 12);
 * console.log(ipv4Src(ip, 0, 20).toString(16)); // a000001
 * ```
 */
export function ipv4Src(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const ihl = ipv4HeaderLength(b, off, len);
  if (ihl < 0) return ihl;
  return (b[off + 12] << 24 | b[off + 13] << 16 | b[off + 14] << 8 | b[off + 15]) >>> 0;
}

/**
 * Destination address of an IPv4 header at `off`, as an unsigned 32-bit
 * number, or a negative code from {@linkcode ipv4HeaderLength}.
 *
 * @example
 * ```ts
 * import { ipv4Dst } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip.set([0x45, 0, 0, 20], 0);
 * ip.set([192, 168, 0, 1], 16);
 * console.log(ipv4Dst(ip, 0, 20) === 0xc0a80001); // true
 * ```
 */
export function ipv4Dst(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const ihl = ipv4HeaderLength(b, off, len);
  if (ihl < 0) return ihl;
  return (b[off + 16] << 24 | b[off + 17] << 16 | b[off + 18] << 8 | b[off + 19]) >>> 0;
}

function ipv4SetAddress(
  b: Uint8Array,
  off: number,
  len: number,
  at: number,
  addr: number,
  vnetFlags: number,
): number {
  const ihl = ipv4HeaderLength(b, off, len);
  if (ihl < 0) return ihl;
  const a = addr >>> 0;
  const hi = a >>> 16, lo = a & 0xffff;
  const oldHi = b[off + at] << 8 | b[off + at + 1];
  const oldLo = b[off + at + 2] << 8 | b[off + at + 3];
  // The UDP/TCP checksum covers the addresses through the pseudo-header,
  // so it changes too, unless the packet is a non-first fragment (no L4
  // header here). Check that its checksum field is inside the packet
  // before writing anything: a refused call leaves the frame unchanged.
  const proto = b[off + 9];
  const fragOff = (b[off + 6] << 8 | b[off + 7]) & 0x1fff;
  const cat = fragOff === 0 ? l4ChecksumAt(proto) : -1;
  let l4c = -1;
  if (cat >= 0) {
    const total = b[off + 2] << 8 | b[off + 3];
    if (total - ihl < (proto === IpProto.UDP ? 8 : 20)) return HeaderError.TRUNCATED;
    l4c = off + ihl + cat;
  }
  const hc = b[off + 10] << 8 | b[off + 11];
  const nhc = csumReplace(hc, oldHi, hi, oldLo, lo);
  b[off + 10] = nhc >>> 8;
  b[off + 11] = nhc;
  if (l4c >= 0) {
    l4ChecksumAdjust(
      b,
      l4c,
      proto,
      wordDiff(oldHi, hi) + wordDiff(oldLo, lo),
      isPartial(vnetFlags),
    );
  }
  b[off + at] = hi >>> 8;
  b[off + at + 1] = hi;
  b[off + at + 2] = lo >>> 8;
  b[off + at + 3] = lo;
  return ihl;
}

/**
 * Rewrite the source address of an IPv4 header at `off` (source NAT), as
 * an unsigned 32-bit number (taken modulo 2^32). The header checksum is
 * patched incrementally (RFC 1624), and so is the UDP or TCP checksum,
 * which covers the address through its pseudo-header (a UDP checksum of 0,
 * "none", stays 0; non-first fragments carry no L4 header and only the IP
 * checksum changes). Returns the IPv4 header length, a negative code from
 * {@linkcode ipv4HeaderLength}, or `TRUNCATED` if the UDP/TCP header is
 * cut short (then nothing is written).
 *
 * Pass the frame's offload flags as `vnetFlags` (`pool.vnetFlags(ref)`;
 * default 0): on a frame with a partial checksum (`NEEDS_CSUM`, e.g. a TCP
 * super-frame from a TAP device) the UDP/TCP checksum field holds the
 * pseudo-header sum, not its complement, and is patched as such
 * (field' = field - old + new); the device completes it later.
 *
 * @example
 * ```ts
 * import { internetChecksum, ipv4SetSrc, ipv4Src, ipv4UpdateChecksum } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip.set([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1], 0); // ICMP
 * ipv4UpdateChecksum(ip, 0, 20);
 * ipv4SetSrc(ip, 0, 20, 0x0a000063); // 10.0.0.99
 * console.log(ipv4Src(ip, 0, 20) === 0x0a000063, internetChecksum(ip, 0, 20)); // true 0
 * ```
 */
export function ipv4SetSrc(
  b: Uint8Array,
  off: number,
  len: number,
  addr: number,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return ipv4SetAddress(b, off, len, 12, addr, vnetFlags);
}

/**
 * Rewrite the destination address of an IPv4 header at `off` (destination
 * NAT); checksums (and `vnetFlags`) as {@linkcode ipv4SetSrc}.
 *
 * @example
 * ```ts
 * import { internetChecksum, ipv4Dst, ipv4SetDst, ipv4UpdateChecksum } from "./mod.ts";
 * const ip = new Uint8Array(20);
 * ip.set([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 1], 0); // ICMP
 * ipv4UpdateChecksum(ip, 0, 20);
 * ipv4SetDst(ip, 0, 20, 0xc0a80001); // 192.168.0.1
 * console.log(ipv4Dst(ip, 0, 20) === 0xc0a80001, internetChecksum(ip, 0, 20)); // true 0
 * ```
 */
export function ipv4SetDst(
  b: Uint8Array,
  off: number,
  len: number,
  addr: number,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return ipv4SetAddress(b, off, len, 16, addr, vnetFlags);
}

/**
 * Validate an IPv6 fixed header at `off`: returns 40, `UNSUPPORTED` if the
 * version is not 6, `TRUNCATED` if the header or its payload length runs
 * past the frame.
 *
 * @example
 * ```ts
 * import { ipv6HeaderLength } from "./mod.ts";
 * const ip = new Uint8Array(40);
 * ip[0] = 0x60;
 * console.log(ipv6HeaderLength(ip, 0, 40)); // 40
 * ```
 */
export function ipv6HeaderLength(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (len < 40) return HeaderError.TRUNCATED;
  if (b[off] >>> 4 !== 6) return HeaderError.UNSUPPORTED;
  const payload = b[off + 4] << 8 | b[off + 5];
  if (40 + payload > len) return HeaderError.TRUNCATED;
  return 40;
}

/**
 * Decrement the IPv6 hop limit (IPv6 has no header checksum). Returns the
 * new hop limit, `TTL_EXPIRED` (unchanged) at 0 or 1, or a negative code.
 *
 * @example
 * ```ts
 * import { ipv6DecrementHopLimit } from "./mod.ts";
 * const ip = new Uint8Array(40);
 * ip[0] = 0x60; ip[7] = 64;
 * console.log(ipv6DecrementHopLimit(ip, 0, 40)); // 63
 * ```
 */
export function ipv6DecrementHopLimit(b: Uint8Array, off: number, len: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  const h = ipv6HeaderLength(b, off, len);
  if (h < 0) return h;
  const hl = b[off + 7];
  if (hl <= 1) return HeaderError.TTL_EXPIRED;
  b[off + 7] = hl - 1;
  return hl - 1;
}

/** Offset of the checksum in an L4 header after IPv6 that sums the pseudo-header, or -1. */
function l6ChecksumAt(next: number): number {
  return next === IpProto.ICMPV6 ? 2 : l4ChecksumAt(next);
}

/**
 * IPv6 extension headers the L4 header (and its checksum) may follow; not
 * ESP, behind which nothing is readable (as for IPv4, only the address
 * changes then).
 */
function isIpv6Extension(next: number): boolean {
  return next === 0 || next === 43 || next === 44 || next === 51 ||
    next === 60 || next === 135 || next === 139 || next === 140 || next === 253 || next === 254;
}

function ipv6SetAddress(
  b: Uint8Array,
  off: number,
  len: number,
  at: number,
  addr: Uint8Array,
  vnetFlags: number,
): number {
  const h = ipv6HeaderLength(b, off, len);
  if (h < 0) return h;
  if (outside(addr, 0, 16)) return HeaderError.TRUNCATED;
  const next = b[off + 6];
  if (isIpv6Extension(next)) return HeaderError.UNSUPPORTED;
  const cat = l6ChecksumAt(next);
  if (cat >= 0) {
    const payload = b[off + 4] << 8 | b[off + 5];
    const min = next === IpProto.TCP ? 20 : next === IpProto.UDP ? 8 : 4;
    if (payload < min) return HeaderError.TRUNCATED;
    let diff = 0;
    for (let i = 0; i < 16; i += 2) {
      diff += wordDiff(b[off + at + i] << 8 | b[off + at + i + 1], addr[i] << 8 | addr[i + 1]);
    }
    l4ChecksumAdjust(b, off + h + cat, next, diff, isPartial(vnetFlags));
  }
  for (let i = 0; i < 16; i++) b[off + at + i] = addr[i];
  return h;
}

/**
 * Rewrite the source address of an IPv6 header at `off` (source NAT) with
 * the first 16 bytes of `addr`, patching the UDP, TCP or ICMPv6 checksum
 * that follows the fixed header (it covers the address through the
 * pseudo-header; RFC 1624, or with `NEEDS_CSUM` in `vnetFlags` the
 * partial rule of {@linkcode ipv4SetSrc}). Returns 40, a negative code
 * from {@linkcode ipv6HeaderLength}, `TRUNCATED` if `addr` has fewer than
 * 16 bytes or the L4 header is cut short, or `UNSUPPORTED` if an
 * extension header comes first (its L4 checksum is not found here); on a
 * negative code nothing is written.
 *
 * @example
 * ```ts
 * import { ipv6SetSrc } from "./mod.ts";
 * const ip = new Uint8Array(40);
 * ip[0] = 0x60; ip[6] = 59; // no next header
 * const a = new Uint8Array(16);
 * a[0] = 0xfd; a[15] = 1; // fd00::1
 * console.log(ipv6SetSrc(ip, 0, 40, a), ip[8], ip[23]); // 40 253 1
 * ```
 */
export function ipv6SetSrc(
  b: Uint8Array,
  off: number,
  len: number,
  addr: Uint8Array,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return ipv6SetAddress(b, off, len, 8, addr, vnetFlags);
}

/**
 * Rewrite the destination address of an IPv6 header at `off` (destination
 * NAT); checksums, `vnetFlags` and results as {@linkcode ipv6SetSrc}.
 *
 * @example
 * ```ts
 * import { ipv6SetDst } from "./mod.ts";
 * const ip = new Uint8Array(40);
 * ip[0] = 0x60; ip[6] = 59; // no next header
 * const a = new Uint8Array(16).fill(0xfe);
 * console.log(ipv6SetDst(ip, 0, 40, a), ip[24], ip[39]); // 40 254 254
 * ```
 */
export function ipv6SetDst(
  b: Uint8Array,
  off: number,
  len: number,
  addr: Uint8Array,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return ipv6SetAddress(b, off, len, 24, addr, vnetFlags);
}

/**
 * Source and destination port of a UDP or TCP header at `off`, packed as
 * `src * 65536 + dst`, or `TRUNCATED` (UDP needs 8 bytes, TCP 20 and its
 * data offset), or `MALFORMED` (TCP data offset < 5, UDP length < 8).
 *
 * @example
 * ```ts
 * import { IpProto, l4Ports } from "./mod.ts";
 * const udp = Uint8Array.of(0, 53, 0x30, 0x39, 0, 8, 0, 0);
 * const p = l4Ports(udp, 0, 8, IpProto.UDP);
 * console.log(Math.floor(p / 65536), p % 65536); // 53 12345
 * ```
 */
export function l4Ports(b: Uint8Array, off: number, len: number, proto: number): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  if (proto === IpProto.UDP) {
    if (len < 8) return HeaderError.TRUNCATED;
    const ulen = b[off + 4] << 8 | b[off + 5];
    if (ulen < 8) return HeaderError.MALFORMED;
    if (ulen > len) return HeaderError.TRUNCATED;
  } else if (proto === IpProto.TCP) {
    if (len < 20) return HeaderError.TRUNCATED;
    const doff = (b[off + 12] >>> 4) * 4;
    if (doff < 20) return HeaderError.MALFORMED;
    if (doff > len) return HeaderError.TRUNCATED;
  } else {
    return HeaderError.UNSUPPORTED;
  }
  return (b[off] << 8 | b[off + 1]) * 65536 + (b[off + 2] << 8 | b[off + 3]);
}

function l4SetPort(
  b: Uint8Array,
  off: number,
  len: number,
  proto: number,
  at: number,
  port: number,
  vnetFlags: number,
): number {
  if (proto === IpProto.UDP) {
    if (len < 8) return HeaderError.TRUNCATED;
    if ((b[off + 4] << 8 | b[off + 5]) < 8) return HeaderError.MALFORMED;
  } else if (proto === IpProto.TCP) {
    if (len < 20) return HeaderError.TRUNCATED;
    if (b[off + 12] >>> 4 < 5) return HeaderError.MALFORMED;
  } else {
    return HeaderError.UNSUPPORTED;
  }
  const p = port & 0xffff;
  const old = b[off + at] << 8 | b[off + at + 1];
  // A partial checksum covers the pseudo-header only; the device sums the
  // ports (with the rest of the L4 bytes) when it completes it.
  if (!isPartial(vnetFlags)) {
    l4ChecksumAdjust(b, off + l4ChecksumAt(proto), proto, wordDiff(old, p), false);
  }
  b[off + at] = p >>> 8;
  b[off + at + 1] = p;
  return 0;
}

/**
 * Rewrite the source port of a UDP or TCP header at `off` (the L4 offset)
 * and patch its checksum incrementally (RFC 1624); a UDP checksum of 0
 * ("none", IPv4) stays 0. Only the fixed header must be inside `len` (UDP
 * 8 bytes, TCP 20). Returns 0, `TRUNCATED`, `MALFORMED` (UDP length < 8,
 * TCP data offset < 5) or `UNSUPPORTED` (another protocol); on a negative
 * code nothing is written.
 *
 * Pass the frame's offload flags as `vnetFlags` (`pool.vnetFlags(ref)`;
 * default 0): with `NEEDS_CSUM` the checksum field is partial (the
 * pseudo-header sum, which the port is not part of) and is left alone; the
 * device sums the new port when it completes the checksum.
 *
 * @example
 * ```ts
 * import { IpProto, l4Ports, l4SetSrcPort } from "./mod.ts";
 * const udp = Uint8Array.of(0x04, 0x00, 0, 53, 0, 8, 0x12, 0x34);
 * l4SetSrcPort(udp, 0, 8, IpProto.UDP, 2000);
 * console.log(Math.floor(l4Ports(udp, 0, 8, IpProto.UDP) / 65536)); // 2000
 * ```
 */
export function l4SetSrcPort(
  b: Uint8Array,
  off: number,
  len: number,
  proto: number,
  port: number,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return l4SetPort(b, off, len, proto, 0, port, vnetFlags);
}

/**
 * Rewrite the destination port of a UDP or TCP header at `off`; checksum,
 * `vnetFlags` and results as {@linkcode l4SetSrcPort}.
 *
 * @example
 * ```ts
 * import { IpProto, l4Ports, l4SetDstPort } from "./mod.ts";
 * const udp = Uint8Array.of(0x04, 0x00, 0, 53, 0, 8, 0, 0); // checksum 0: none
 * l4SetDstPort(udp, 0, 8, IpProto.UDP, 5353);
 * console.log(l4Ports(udp, 0, 8, IpProto.UDP) % 65536, udp[6], udp[7]); // 5353 0 0
 * ```
 */
export function l4SetDstPort(
  b: Uint8Array,
  off: number,
  len: number,
  proto: number,
  port: number,
  vnetFlags = 0,
): number {
  if (outside(b, off, len)) return HeaderError.TRUNCATED;
  return l4SetPort(b, off, len, proto, 2, port, vnetFlags);
}

/**
 * A 5-tuple, parsed into preallocated fields (reuse one per Worker).
 * Addresses are 16 bytes; IPv4 uses the first 4.
 *
 * @example
 * ```ts
 * import { FiveTuple } from "./mod.ts";
 * const t = new FiveTuple();
 * console.log(t.parse(new Uint8Array(10), 0, 10)); // -10001 (HeaderError.TRUNCATED)
 * ```
 */
export class FiveTuple {
  /** 4 or 6. */
  family = 0;
  /** IP protocol number. */
  proto = 0;
  /** Source port. */
  srcPort = 0;
  /** Destination port. */
  dstPort = 0;
  /** Source address (first 4 bytes for IPv4). */
  readonly src: Uint8Array = new Uint8Array(16);
  /** Destination address (first 4 bytes for IPv4). */
  readonly dst: Uint8Array = new Uint8Array(16);

  /**
   * Parse the 5-tuple of an Ethernet frame at `off` (VLAN tags skipped).
   * Returns the offset of the L4 payload from `off`, or a negative
   * {@linkcode HeaderError} code (`UNSUPPORTED` for non-IP or non-UDP/TCP).
   * The UDP/TCP header must lie within the IP packet's own length (bytes
   * after it, such as Ethernet padding, are not part of it).
   *
   * IPv4 fragments: the first fragment (offset 0) has the ports and parses
   * as usual (its UDP length may cover the whole datagram, beyond this
   * fragment). A non-first fragment has no ports: `parse` fills family,
   * protocol and addresses, sets both ports to 0 and returns
   * `HeaderError.FRAGMENT`, so it never matches a rule by ports.
   *
   * @example
   * ```ts
   * import { FiveTuple, HeaderError } from "./mod.ts";
   * const f = new Uint8Array(14 + 20 + 8);
   * f[12] = 0x08; // IPv4
   * f.set([0x45, 0, 0, 28, 0, 0, 0x00, 0x10, 64, 17], 14); // fragment offset 16 x 8 bytes
   * const t = new FiveTuple();
   * console.log(t.parse(f, 0, f.length) === HeaderError.FRAGMENT, t.proto, t.srcPort); // true 17 0
   * ```
   */
  parse(b: Uint8Array, off: number, len: number): number {
    if (outside(b, off, len)) return HeaderError.TRUNCATED;
    const l3 = ethPayloadOffset(b, off, len);
    if (l3 < 0) return l3;
    const et = b[off + l3 - 2] << 8 | b[off + l3 - 1];
    let l4: number, l4len: number;
    let whole = true;
    if (et === EtherType.IPV4) {
      const h = ipv4HeaderLength(b, off + l3, len - l3);
      if (h < 0) return h;
      this.family = 4;
      this.proto = b[off + l3 + 9];
      for (let i = 0; i < 4; i++) {
        this.src[i] = b[off + l3 + 12 + i];
        this.dst[i] = b[off + l3 + 16 + i];
      }
      l4 = l3 + h;
      l4len = (b[off + l3 + 2] << 8 | b[off + l3 + 3]) - h;
      const frag = b[off + l3 + 6] << 8 | b[off + l3 + 7];
      if ((frag & 0x1fff) !== 0) {
        // Payload bytes of a later fragment, not ports.
        this.srcPort = 0;
        this.dstPort = 0;
        return HeaderError.FRAGMENT;
      }
      whole = (frag & 0x2000) === 0; // MF set: the first of several fragments
    } else if (et === EtherType.IPV6) {
      const h = ipv6HeaderLength(b, off + l3, len - l3);
      if (h < 0) return h;
      this.family = 6;
      this.proto = b[off + l3 + 6];
      for (let i = 0; i < 16; i++) {
        this.src[i] = b[off + l3 + 8 + i];
        this.dst[i] = b[off + l3 + 24 + i];
      }
      l4 = l3 + h;
      l4len = b[off + l3 + 4] << 8 | b[off + l3 + 5];
    } else {
      return HeaderError.UNSUPPORTED;
    }
    let ports: number;
    if (whole || this.proto !== IpProto.UDP) {
      ports = l4Ports(b, off + l4, l4len, this.proto);
    } else {
      // First fragment of a UDP datagram: its length field counts the
      // datagram, not this fragment; only the 8-byte header must be here.
      if (l4len < 8) return HeaderError.TRUNCATED;
      if ((b[off + l4 + 4] << 8 | b[off + l4 + 5]) < 8) return HeaderError.MALFORMED;
      ports = (b[off + l4] << 8 | b[off + l4 + 1]) * 65536 +
        (b[off + l4 + 2] << 8 | b[off + l4 + 3]);
    }
    if (ports < 0) return ports;
    this.srcPort = Math.floor(ports / 65536);
    this.dstPort = ports % 65536;
    return l4 + (this.proto === IpProto.UDP ? 8 : (b[off + l4 + 12] >>> 4) * 4);
  }

  /** Whether this tuple equals `o` (same family, protocol, addresses and ports). */
  equals(o: FiveTuple): boolean {
    if (
      this.family !== o.family || this.proto !== o.proto || this.srcPort !== o.srcPort ||
      this.dstPort !== o.dstPort
    ) return false;
    const n = this.family === 4 ? 4 : 16;
    for (let i = 0; i < n; i++) {
      if (this.src[i] !== o.src[i] || this.dst[i] !== o.dst[i]) return false;
    }
    return true;
  }

  /**
   * Parse the frame and compare with this tuple: 1 on a match, 0 on none,
   * or a negative code if the frame does not parse. `scratch` is the tuple
   * parsed into (reuse one).
   */
  matches(b: Uint8Array, off: number, len: number, scratch: FiveTuple): number {
    const r = scratch.parse(b, off, len);
    if (r < 0) return r;
    return this.equals(scratch) ? 1 : 0;
  }
}
