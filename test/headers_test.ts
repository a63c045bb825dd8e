import assert from "assert";
import {
  arpOperation,
  EtherType,
  ethPayloadOffset,
  ethProtocol,
  ethSrc,
  FiveTuple,
  HeaderError,
  internetChecksum,
  IpProto,
  ipv4DecrementTtl,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4Src,
  ipv4UpdateChecksum,
  ipv6DecrementHopLimit,
  ipv6HeaderLength,
  l4Ports,
  l4SetDstPort,
  l4SetSrcPort,
  swapMacs,
  vlanId,
} from "../mod.ts";
import { codeForErrno, errnoOfCode } from "../dataplane/errors.ts";

/** Ethernet (optionally VLAN-tagged) + IPv4 + UDP, with a correct IPv4 checksum. */
function udp4(vlan = false, ttl = 64): Uint8Array {
  const l2 = vlan ? 18 : 14;
  const f = new Uint8Array(l2 + 28 + 4);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], 0);
  if (vlan) f.set([0x81, 0x00, 0x00, 0x07], 12);
  f.set([0x08, 0x00], l2 - 2);
  f.set([0x45, 0, 0, 32, 0, 0, 0, 0, ttl, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2], l2);
  f.set([0x04, 0x00, 0x00, 0x35, 0, 12, 0, 0], l2 + 20);
  ipv4UpdateChecksum(f, l2, f.length - l2);
  return f;
}

Deno.test("headers: swapMacs swaps source and destination, and refuses a truncated frame", () => {
  const f = udp4();
  assert.equal(swapMacs(f, 0, f.length), 0);
  assert.equal(ethSrc(f, 0, f.length), 0x020000000002);
  assert.equal(swapMacs(f, 0, 13), HeaderError.TRUNCATED);
});

Deno.test("headers: VLAN tags are skipped; more than two are malformed", () => {
  const f = udp4(true);
  assert.equal(ethPayloadOffset(f, 0, f.length), 18);
  assert.equal(ethProtocol(f, 0, f.length), EtherType.IPV4);
  assert.equal(vlanId(f, 0, f.length), 7);
  assert.equal(vlanId(udp4(), 0, udp4().length), HeaderError.UNSUPPORTED);
  const tags = new Uint8Array(40);
  for (const o of [12, 16, 20, 24]) tags.set([0x81, 0x00], o);
  assert.equal(ethPayloadOffset(tags, 0, 40), HeaderError.MALFORMED);
  assert.equal(ethPayloadOffset(f, 0, 15), HeaderError.TRUNCATED);
});

Deno.test("headers: vlanId of a tagged frame cut inside its tag (14..17 bytes) is TRUNCATED", () => {
  const f = udp4(true);
  for (let len = 0; len < 18; len++) {
    assert.equal(vlanId(f, 0, len), HeaderError.TRUNCATED, `length ${len}`);
  }
  assert.equal(vlanId(f, 0, 18), 7);
  // Untagged: known from 14 bytes on.
  assert.equal(vlanId(udp4(), 0, 14), HeaderError.UNSUPPORTED);
  assert.equal(vlanId(udp4(), 0, 13), HeaderError.TRUNCATED);
});

Deno.test("headers: decrementing TTL keeps the IPv4 checksum valid (RFC 1624 incremental update)", () => {
  for (const ttl of [2, 64, 255]) {
    const f = udp4(false, ttl);
    assert.equal(ipv4DecrementTtl(f, 14, f.length - 14), ttl - 1);
    assert.equal(internetChecksum(f, 14, 20), 0, `checksum after ${ttl} -> ${ttl - 1}`);
  }
});

Deno.test("headers: TTL 1 is expired and leaves the frame untouched", () => {
  const f = udp4(false, 1);
  const before = f.slice();
  assert.equal(ipv4DecrementTtl(f, 14, f.length - 14), HeaderError.TTL_EXPIRED);
  assert.deepEqual(f, before);
});

Deno.test("headers: malformed and truncated IPv4 headers are reported, never read past the frame", () => {
  const f = udp4();
  assert.equal(ipv4HeaderLength(f, 14, 19), HeaderError.TRUNCATED);
  const badIhl = udp4();
  badIhl[14] = 0x44;
  assert.equal(ipv4HeaderLength(badIhl, 14, badIhl.length - 14), HeaderError.MALFORMED);
  const v6 = udp4();
  v6[14] = 0x65;
  assert.equal(ipv4HeaderLength(v6, 14, v6.length - 14), HeaderError.UNSUPPORTED);
  const longTotal = udp4();
  longTotal[17] = 200; // total length beyond the frame
  assert.equal(ipv4HeaderLength(longTotal, 14, longTotal.length - 14), HeaderError.TRUNCATED);
  // A view that ends early: no index past `len` is read.
  assert.equal(ipv4DecrementTtl(f.subarray(0, 30), 14, 16), HeaderError.TRUNCATED);
});

Deno.test("headers: IPv6 hop limit decrements; short or wrong-version headers are reported", () => {
  const ip = new Uint8Array(48);
  ip[0] = 0x60;
  ip[5] = 8;
  ip[7] = 3;
  assert.equal(ipv6HeaderLength(ip, 0, 48), 40);
  assert.equal(ipv6DecrementHopLimit(ip, 0, 48), 2);
  assert.equal(ipv6HeaderLength(ip, 0, 45), HeaderError.TRUNCATED);
  ip[0] = 0x40;
  assert.equal(ipv6HeaderLength(ip, 0, 48), HeaderError.UNSUPPORTED);
});

Deno.test("headers: ARP operation of a valid request; other sizes are malformed", () => {
  const a = Uint8Array.of(0, 1, 8, 0, 6, 4, 0, 2, ...new Array(20).fill(0));
  assert.equal(arpOperation(a, 0, 28), 2);
  assert.equal(arpOperation(a, 0, 27), HeaderError.TRUNCATED);
  a[4] = 8;
  assert.equal(arpOperation(a, 0, 28), HeaderError.MALFORMED);
});

Deno.test("headers: UDP and TCP ports; bad lengths and offsets are reported", () => {
  const udp = Uint8Array.of(0x04, 0x00, 0x00, 0x35, 0, 8, 0, 0);
  assert.equal(l4Ports(udp, 0, 8, IpProto.UDP), 1024 * 65536 + 53);
  assert.equal(l4Ports(udp, 0, 7, IpProto.UDP), HeaderError.TRUNCATED);
  udp[5] = 4;
  assert.equal(l4Ports(udp, 0, 8, IpProto.UDP), HeaderError.MALFORMED);
  const tcp = new Uint8Array(20);
  tcp[1] = 80;
  tcp[3] = 81;
  tcp[12] = 0x50;
  assert.equal(l4Ports(tcp, 0, 20, IpProto.TCP), 80 * 65536 + 81);
  tcp[12] = 0x40;
  assert.equal(l4Ports(tcp, 0, 20, IpProto.TCP), HeaderError.MALFORMED);
  tcp[12] = 0x60;
  assert.equal(l4Ports(tcp, 0, 20, IpProto.TCP), HeaderError.TRUNCATED);
  assert.equal(l4Ports(tcp, 0, 20, IpProto.ICMP), HeaderError.UNSUPPORTED);
});

Deno.test("headers: a 5-tuple matches the same flow and not another; truncation is reported", () => {
  const rule = new FiveTuple(), scratch = new FiveTuple();
  const f = udp4(true);
  assert.equal(rule.parse(f, 0, f.length), 18 + 20 + 8);
  assert.deepEqual([rule.family, rule.proto, rule.srcPort, rule.dstPort], [4, 17, 1024, 53]);
  assert.equal(rule.matches(f, 0, f.length, scratch), 1);
  const other = udp4(true);
  other[18 + 20 + 3] = 54;
  assert.equal(rule.matches(other, 0, other.length, scratch), 0);
  assert.equal(rule.matches(f, 0, 40, scratch), HeaderError.TRUNCATED);
});

// ---- Rewriting, checked against checksums computed from scratch here ----

/** One's-complement sum of 16-bit big-endian words (odd tail padded with 0), folded. */
function onesSum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += bytes[i] << 8 | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The IPv4 header checksum as it should be stored, from scratch. */
function ipChecksum(f: Uint8Array, l3: number): number {
  const ihl = (f[l3] & 0xf) * 4;
  const h = [...f.subarray(l3, l3 + ihl)];
  h[10] = h[11] = 0;
  return ~onesSum(h) & 0xffff;
}

/** The UDP or TCP checksum as it should be stored, from scratch (pseudo-header included). */
function l4Checksum(f: Uint8Array, l3: number): number {
  const ihl = (f[l3] & 0xf) * 4;
  const total = f[l3 + 2] << 8 | f[l3 + 3];
  const proto = f[l3 + 9];
  const seg = [...f.subarray(l3 + ihl, l3 + total)];
  const at = proto === IpProto.UDP ? 6 : 16;
  seg[at] = seg[at + 1] = 0;
  const pseudo = [...f.subarray(l3 + 12, l3 + 20), 0, proto, seg.length >> 8, seg.length & 255];
  const c = ~onesSum([...pseudo, ...seg]) & 0xffff;
  return proto === IpProto.UDP && c === 0 ? 0xffff : c;
}

const stored = (f: Uint8Array, at: number) => f[at] << 8 | f[at + 1];

/** Ethernet + IPv4 (optionally with options) + UDP or TCP + payload, all checksums right. */
function packet(proto: number, payload: number, ipOptions = 0, seed = 1): Uint8Array {
  const ihl = 20 + ipOptions;
  const l4h = proto === IpProto.UDP ? 8 : 24; // TCP with one 4-byte option
  const total = ihl + l4h + payload;
  const f = new Uint8Array(14 + total + 3); // + Ethernet padding that is not the packet's
  let x = seed;
  const rnd = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < f.length; i++) f[i] = rnd();
  f.set([0x08, 0x00], 12);
  f[14] = 0x40 | ihl / 4;
  f.set([total >> 8, total & 255, 0x12, 0x34, 0x40, 0], 16); // DF, offset 0
  f[22] = 64;
  f[23] = proto;
  const l4 = 14 + ihl;
  if (proto === IpProto.UDP) f.set([0, 0, (l4h + payload) >> 8, (l4h + payload) & 255], l4 + 2);
  else f[l4 + 12] = 0x60;
  f.set([ipChecksum(f, 14) >> 8, ipChecksum(f, 14) & 255], 24);
  const c = l4Checksum(f, 14);
  f.set([c >> 8, c & 255], l4 + (proto === IpProto.UDP ? 6 : 16));
  return f;
}

for (const proto of [IpProto.UDP, IpProto.TCP]) {
  const name = proto === IpProto.UDP ? "UDP" : "TCP";
  Deno.test(`headers: rewriting IPv4 addresses keeps the IPv4 and ${name} checksums exact`, () => {
    for (let seed = 1; seed <= 200; seed++) {
      const f = packet(proto, seed % 37, (seed % 3) * 4, seed);
      const l3 = 14, len = f.length - 14;
      const l4c = l3 + (f[l3] & 0xf) * 4 + (proto === IpProto.UDP ? 6 : 16);
      const src = Math.imul(seed, 0x9e3779b1) >>> 0, dst = Math.imul(seed, 0x85ebca6b) >>> 0;
      assert.equal(ipv4SetSrc(f, l3, len, src), (f[l3] & 0xf) * 4);
      assert.equal(ipv4SetDst(f, l3, len, dst), (f[l3] & 0xf) * 4);
      assert.equal(ipv4Src(f, l3, len), src);
      assert.equal(ipv4Dst(f, l3, len), dst);
      assert.equal(stored(f, l3 + 10), ipChecksum(f, l3), `IPv4 checksum, seed ${seed}`);
      assert.equal(stored(f, l4c), l4Checksum(f, l3), `${name} checksum, seed ${seed}`);
    }
  });

  Deno.test(`headers: rewriting ${name} ports keeps the ${name} checksum exact`, () => {
    for (let seed = 1; seed <= 200; seed++) {
      const f = packet(proto, seed % 41, 0, seed);
      const l4 = 14 + 20;
      const l4len = f.length - 3 - l4;
      const sp = Math.imul(seed, 7919) & 0xffff, dp = Math.imul(seed, 104729) & 0xffff;
      assert.equal(l4SetSrcPort(f, l4, l4len, proto, sp), 0);
      assert.equal(l4SetDstPort(f, l4, l4len, proto, dp), 0);
      assert.equal(l4Ports(f, l4, l4len, proto), sp * 65536 + dp);
      const at = l4 + (proto === IpProto.UDP ? 6 : 16);
      assert.equal(stored(f, at), l4Checksum(f, 14), `${name} checksum, seed ${seed}`);
    }
  });
}

Deno.test("headers: a UDP checksum of 0 (none, IPv4) stays 0 when addresses or ports change", () => {
  const f = packet(IpProto.UDP, 10);
  f[14 + 20 + 6] = f[14 + 20 + 7] = 0;
  assert.equal(ipv4SetSrc(f, 14, f.length - 14, 0x01020304), 20);
  assert.equal(l4SetDstPort(f, 34, 18, IpProto.UDP, 9), 0);
  assert.equal(stored(f, 14 + 20 + 6), 0);
  assert.equal(stored(f, 24), ipChecksum(f, 14), "the IPv4 checksum is still patched");
});

Deno.test("headers: an address rewrite of a non-first fragment patches only the IPv4 checksum", () => {
  const f = packet(IpProto.UDP, 16);
  f[20] = 0x00; // offset 8 x 8 bytes: a later fragment, its bytes are payload
  f[21] = 0x08;
  f.set([ipChecksum(f, 14) >> 8, ipChecksum(f, 14) & 255], 24);
  const payload = f.slice(34, 42);
  assert.equal(ipv4SetDst(f, 14, f.length - 14, 0x0a0a0a0a), 20);
  assert.deepEqual(f.slice(34, 42), payload, "payload bytes untouched");
  assert.equal(stored(f, 24), ipChecksum(f, 14));
});

Deno.test("headers: rewrites refuse truncated or malformed headers and write nothing", () => {
  const f = packet(IpProto.TCP, 0);
  const before = f.slice();
  // IPv4 total length says 44, the frame is cut at 40: TRUNCATED.
  assert.equal(ipv4SetSrc(f, 14, 40, 1), HeaderError.TRUNCATED);
  // A TCP packet whose total length leaves no room for the TCP header.
  const short = packet(IpProto.TCP, 0);
  short[16] = 0;
  short[17] = 30;
  short.set([ipChecksum(short, 14) >> 8, ipChecksum(short, 14) & 255], 24);
  const shortBefore = short.slice();
  assert.equal(ipv4SetDst(short, 14, short.length - 14, 1), HeaderError.TRUNCATED);
  assert.deepEqual(short, shortBefore);
  assert.equal(l4SetSrcPort(f, 34, 19, IpProto.TCP, 1), HeaderError.TRUNCATED);
  assert.equal(l4SetSrcPort(f, 34, 24, IpProto.ICMP, 1), HeaderError.UNSUPPORTED);
  f[34 + 12] = 0x40;
  assert.equal(l4SetSrcPort(f, 34, 24, IpProto.TCP, 1), HeaderError.MALFORMED);
  f[34 + 12] = before[34 + 12];
  assert.deepEqual(f, before);
});

Deno.test("headers: a non-first IPv4 fragment has no ports: parse says FRAGMENT, ports 0", () => {
  const f = udp4();
  f[14 + 6] = 0x20; // MF
  f[14 + 7] = 0x03; // offset 3 x 8 bytes: payload, not a UDP header
  ipv4UpdateChecksum(f, 14, f.length - 14);
  const t = new FiveTuple();
  t.srcPort = t.dstPort = 99;
  assert.equal(t.parse(f, 0, f.length), HeaderError.FRAGMENT);
  assert.deepEqual([t.family, t.proto, t.srcPort, t.dstPort], [4, 17, 0, 0]);
  assert.deepEqual([...t.src.subarray(0, 4)], [10, 0, 0, 1]);
  const rule = new FiveTuple();
  rule.parse(udp4(), 0, 46);
  assert.equal(rule.matches(f, 0, f.length, new FiveTuple()), HeaderError.FRAGMENT);
});

Deno.test("headers: the first fragment of a large UDP datagram has its ports", () => {
  const f = udp4();
  f[14 + 6] = 0x20; // MF, offset 0
  f[14 + 20 + 4] = 0x05; // UDP length 1400: the whole datagram, beyond this fragment
  f[14 + 20 + 5] = 0x78;
  ipv4UpdateChecksum(f, 14, f.length - 14);
  const t = new FiveTuple();
  assert.equal(t.parse(f, 0, f.length), 14 + 20 + 8);
  assert.deepEqual([t.srcPort, t.dstPort], [1024, 53]);
});

Deno.test("headers: the 5-tuple ignores bytes after the IP packet (Ethernet padding)", () => {
  // IPv4 total length 24: 4 bytes of L4, then padding that looks like the rest of a UDP header.
  const f = udp4();
  f[14 + 3] = 24;
  ipv4UpdateChecksum(f, 14, f.length - 14);
  assert.equal(new FiveTuple().parse(f, 0, f.length), HeaderError.TRUNCATED);
});

Deno.test("headers: HeaderError codes are disjoint from every errno code and from each other", () => {
  const codes = Object.values(HeaderError) as number[];
  assert.equal(new Set(codes).size, codes.length, "each code is distinct");
  for (const c of codes) {
    assert.ok(Number.isInteger(c) && c < 0, `${c} is a negative integer`);
    // Linux errnos are 1..4095 (MAX_ERRNO); the C library returns them negated.
    assert.ok(c < -4095, `${c} could be read as errno ${-c}`);
    assert.notEqual(errnoOfCode(codeForErrno(c)), -c, `${c} is the errno of ${codeForErrno(c)}`);
  }
});
