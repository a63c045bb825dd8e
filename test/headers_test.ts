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
  ipv4HeaderLength,
  ipv4UpdateChecksum,
  ipv6DecrementHopLimit,
  ipv6HeaderLength,
  l4Ports,
  swapMacs,
  vlanId,
} from "../mod.ts";

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
  assert.equal(vlanId(udp4(), 0, 60), HeaderError.UNSUPPORTED);
  const tags = new Uint8Array(40);
  for (const o of [12, 16, 20, 24]) tags.set([0x81, 0x00], o);
  assert.equal(ethPayloadOffset(tags, 0, 40), HeaderError.MALFORMED);
  assert.equal(ethPayloadOffset(f, 0, 15), HeaderError.TRUNCATED);
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
