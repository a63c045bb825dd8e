// Super-frames and offload metadata from TypeScript: the pool's accessors
// and setters for the virtio-net fields, adjustHead/setLength keeping them
// right, and NAT rewrites that keep checksums right on frames with and
// without a partial checksum (NEEDS_CSUM), checked by completing the
// checksum here as a NIC would and summing the result independently.
import assert from "assert";
import {
  FiveTuple,
  FramePool,
  GsoType,
  internetChecksum,
  IpProto,
  ipv4HeaderLength,
  ipv4SetDst,
  ipv4SetSrc,
  ipv6HeaderLength,
  ipv6SetDst,
  ipv6SetSrc,
  l4Ports,
  l4SetDstPort,
  l4SetSrcPort,
  META,
  type PacketBatch,
  type Program,
  redirect,
  VnetFlags,
} from "../mod.ts";
import { copyFrame } from "../dataplane/flood.ts";
import { accounted, assertCode } from "./helpers.ts";

/** Frames big enough for a 64 KiB super-frame behind the default headroom. */
const BIG = { frames: 4, frameSize: 66048 };
const LE = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** Run `body` with one held frame of a fresh pool, returned afterwards. */
function withFrame(body: (pool: FramePool, ref: number) => void, opts = BIG) {
  return accounted(() => {
    using pool = new FramePool(opts);
    const refs = new Uint32Array(1);
    assert.equal(pool.alloc(refs), 1);
    try {
      body(pool, refs[0]);
    } finally {
      pool.free(refs);
    }
  });
}

// ---- independent checksum arithmetic (not the library's) ----

/** One's-complement sum of `n` bytes at `off`, folded, not complemented. */
function sum16(b: Uint8Array, off: number, n: number, acc = 0): number {
  for (let i = 0; i + 1 < n; i += 2) acc += b[off + i] * 256 + b[off + i + 1];
  if (n & 1) acc += b[off + n - 1] * 256;
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 65536);
  return acc;
}

/** Pseudo-header sum of the packet whose IP header is at `l3` (v4 or v6). */
function pseudo(b: Uint8Array, l3: number, l4len: number, proto: number): number {
  if (b[l3] >>> 4 === 4) return sum16(b, l3 + 12, 8, proto + l4len);
  return sum16(b, l3 + 8, 32, proto + (l4len >>> 16) + (l4len & 0xffff));
}

/** What a NIC does for NEEDS_CSUM: sum csum_start..end as it is, store the complement. */
function completeChecksum(pool: FramePool, ref: number): void {
  const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
  const start = pool.csumStart(ref), at = d + start + pool.csumOffset(ref);
  const c = ~sum16(b, d + start, len - start) & 0xffff;
  b[at] = c >>> 8;
  b[at + 1] = c & 0xff;
}

/** Whether the L4 checksum of the frame (Ethernet, IPv4/6, no options) verifies. */
function l4ChecksumValid(b: Uint8Array, d: number, len: number): boolean {
  const l3 = d + 14;
  const v4 = b[l3] >>> 4 === 4;
  const l4 = l3 + (v4 ? 20 : 40);
  const proto = v4 ? b[l3 + 9] : b[l3 + 6];
  const l4len = d + len - l4;
  return sum16(b, l4, l4len, pseudo(b, l3, l4len, proto)) === 0xffff;
}

// ---- frames ----

/**
 * An Ethernet + IPv4/IPv6 + TCP/UDP super-frame of `payload` bytes in the
 * frame: 10.0.0.1:1234 -> 10.0.0.2:80 (fd00::1 -> fd00::2 for v6), a
 * correct IPv4 header checksum, and the L4 checksum either complete or
 * partial (the folded pseudo-header sum, NEEDS_CSUM set with its offsets).
 */
function buildFrame(
  pool: FramePool,
  ref: number,
  v: 4 | 6,
  proto: number,
  payload: number,
  partial: boolean,
): { l3: number; l4: number; csumAt: number } {
  const b = pool.bytes, d = pool.dataOffset(ref);
  const l3 = d + 14, l4 = l3 + (v === 4 ? 20 : 40);
  const l4hdr = proto === IpProto.TCP ? 20 : 8;
  const l4len = l4hdr + payload;
  const len = l4 - d + l4len;
  b.fill(0, d, d + len);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1], d);
  if (v === 4) {
    b.set([0x08, 0x00], d + 12);
    const total = 20 + l4len;
    b.set([0x45, 0, total >>> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, proto], l3);
    b.set([10, 0, 0, 1, 10, 0, 0, 2], l3 + 12);
    const hc = internetChecksum(b, l3, 20);
    b[l3 + 10] = hc >>> 8;
    b[l3 + 11] = hc & 0xff;
  } else {
    b.set([0x86, 0xdd], d + 12);
    b.set([0x60, 0, 0, 0, l4len >>> 8, l4len & 0xff, proto, 64], l3);
    b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], l3 + 8);
    b.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], l3 + 24);
  }
  if (proto === IpProto.ICMPV6) b.set([128, 0, 0, 0, 0x12, 0x34, 0, 1], l4); // echo request
  else b.set([0x04, 0xd2, 0, 80], l4);
  if (proto === IpProto.ICMPV6) {
    // no ports, no length field
  } else if (proto === IpProto.TCP) {
    b.set([0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff], l4 + 4);
  } else {
    b.set([l4len >>> 8, l4len & 0xff], l4 + 4);
  }
  for (let i = 0; i < payload; i++) b[l4 + l4hdr + i] = (i * 7 + 3) & 0xff;
  pool.setLength(ref, len);
  const csumAt = l4 + (proto === IpProto.TCP ? 16 : proto === IpProto.UDP ? 6 : 2);
  const ps = pseudo(b, l3, l4len, proto);
  const field = partial ? ps : ~sum16(b, l4, l4len, ps) & 0xffff;
  b[csumAt] = field >>> 8;
  b[csumAt + 1] = field & 0xff;
  if (partial) pool.setPartialChecksum(ref, l4 - d, csumAt - l4);
  return { l3, l4, csumAt };
}

const V6_NEW_SRC = Uint8Array.of(0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xef);
const V6_NEW_DST = Uint8Array.of(0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34);

/** Rewrite both addresses and both ports, passing the frame's flags. */
function nat(pool: FramePool, ref: number, l3: number, l4: number, proto: number): void {
  const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
  const flags = pool.vnetFlags(ref);
  const l3len = d + len - l3, l4len = d + len - l4;
  if (b[l3] >>> 4 === 4) {
    assert.equal(ipv4SetSrc(b, l3, l3len, 0xc0000201, flags), 20);
    assert.equal(ipv4SetDst(b, l3, l3len, 0xc6336402, flags), 20);
  } else {
    assert.equal(ipv6SetSrc(b, l3, l3len, V6_NEW_SRC, flags), 40);
    assert.equal(ipv6SetDst(b, l3, l3len, V6_NEW_DST, flags), 40);
  }
  assert.equal(l4SetSrcPort(b, l4, l4len, proto, 40000, flags), 0);
  assert.equal(l4SetDstPort(b, l4, l4len, proto, 8080, flags), 0);
}

function writeMeta16(pool: FramePool, ref: number, at: number, v: number): void {
  pool.view.setUint16(pool.frameOffset(ref) + at, v, LE);
}

// ---- accessors ----

Deno.test(
  "superframe: accessors read the offload metadata as the library writes it (host order)",
  withFrame((pool, ref) => {
    const f = pool.frameOffset(ref);
    pool.bytes[f + META.vnetFlags] = VnetFlags.NEEDS_CSUM;
    pool.bytes[f + META.gsoType] = GsoType.TCPV6 | GsoType.ECN;
    writeMeta16(pool, ref, META.hdrLen, 74);
    writeMeta16(pool, ref, META.gsoSize, 1428);
    writeMeta16(pool, ref, META.csumStart, 54);
    writeMeta16(pool, ref, META.csumOffset, 16);
    assert.deepEqual(
      [
        pool.vnetFlags(ref),
        pool.gsoType(ref),
        pool.headerLength(ref),
        pool.gsoSize(ref),
        pool.csumStart(ref),
        pool.csumOffset(ref),
      ],
      [1, 132, 74, 1428, 54, 16],
    );
  }),
);

Deno.test(
  "superframe: a fresh frame is plain (all offload fields 0)",
  withFrame((pool, ref) => {
    assert.deepEqual(
      [pool.vnetFlags(ref), pool.gsoType(ref), pool.gsoSize(ref), pool.headerLength(ref)],
      [0, 0, 0, 0],
    );
  }),
);

Deno.test(
  "superframe: accessors refuse a ref of no frame of the pool",
  withFrame((pool) => {
    assertCode(() => pool.gsoType(0xffffffff), "EINVAL", "0xffffffff");
    assertCode(() => pool.csumStart(NaN), "EINVAL", "NaN");
  }),
);

Deno.test(
  "superframe: constants mirror the virtio-net header's values",
  () => {
    assert.deepEqual(
      [GsoType.NONE, GsoType.TCPV4, GsoType.UDP, GsoType.TCPV6, GsoType.UDP_L4, GsoType.ECN],
      [0, 1, 3, 4, 5, 0x80],
    );
    assert.deepEqual([VnetFlags.NEEDS_CSUM, VnetFlags.DATA_VALID], [1, 2]);
  },
);

// ---- setters ----

Deno.test(
  "superframe: setGso and setPartialChecksum write the fields at the metadata offsets",
  withFrame((pool, ref) => {
    pool.setLength(ref, 14 + 20 + 20 + 4 * 1448);
    pool.setGso(ref, GsoType.TCPV4 | GsoType.ECN, 1448, 54);
    pool.setPartialChecksum(ref, 34, 16);
    const f = pool.frameOffset(ref), v = pool.view;
    assert.deepEqual(
      [
        v.getUint8(f + META.gsoType),
        v.getUint16(f + META.gsoSize, LE),
        v.getUint16(f + META.hdrLen, LE),
        v.getUint8(f + META.vnetFlags),
        v.getUint16(f + META.csumStart, LE),
        v.getUint16(f + META.csumOffset, LE),
      ],
      [0x81, 1448, 54, 1, 34, 16],
    );
  }),
);

Deno.test(
  "superframe: setPartialChecksum clears DATA_VALID (the checksum is no longer complete)",
  withFrame((pool, ref) => {
    pool.setLength(ref, 60);
    pool.bytes[pool.frameOffset(ref) + META.vnetFlags] = VnetFlags.DATA_VALID;
    pool.setPartialChecksum(ref, 34, 6);
    assert.equal(pool.vnetFlags(ref), VnetFlags.NEEDS_CSUM);
  }),
);

Deno.test(
  "superframe: setGso refuses NaN, fractions and out-of-range sizes, naming the value",
  withFrame((pool, ref) => {
    pool.setLength(ref, 1000);
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, NaN, 54), "EINVAL", "gsoSize=NaN");
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, 1.5, 54), "EINVAL", "gsoSize=1.5");
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, 0, 54), "EINVAL", "gsoSize=0");
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, 65536, 54), "EINVAL", "gsoSize=65536");
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, 1448, -1), "EINVAL", "hdrLen=-1");
    assertCode(() => pool.setGso(ref, GsoType.TCPV4, 1448, 54.5), "EINVAL", "hdrLen=54.5");
    assertCode(() => pool.setGso(ref, GsoType.NONE, 1448, 0), "EINVAL", "gsoSize=1448 must be 0");
    assertCode(
      () => pool.setGso(ref, GsoType.TCPV4, "1448" as unknown as number, 54),
      "EINVAL",
      'gsoSize="1448"',
    );
    assert.equal(pool.gsoType(ref), GsoType.NONE); // refused calls wrote nothing
  }),
);

Deno.test(
  "superframe: setGso refuses unknown GSO types and UFO",
  withFrame((pool, ref) => {
    pool.setLength(ref, 1000);
    for (const t of [2, 3, 6, 0x85, 0x80, 256, -1, NaN]) {
      assertCode(() => pool.setGso(ref, t, 1448, 54), "EINVAL", `type=${t}`);
    }
    assert.equal(pool.gsoType(ref), GsoType.NONE);
  }),
);

Deno.test(
  "superframe: setGso refuses a header length past the data",
  withFrame((pool, ref) => {
    pool.setLength(ref, 50);
    assertCode(
      () => pool.setGso(ref, GsoType.TCPV4, 1448, 54),
      "EINVAL",
      "hdrLen=54 is past the 50-byte data",
    );
    pool.setGso(ref, GsoType.UDP_L4, 1472, 50); // the whole data is fine
    assert.equal(pool.headerLength(ref), 50);
  }),
);

Deno.test(
  "superframe: setPartialChecksum refuses a field past the data and bad numbers",
  withFrame((pool, ref) => {
    pool.setLength(ref, 54);
    assertCode(() => pool.setPartialChecksum(ref, 34, 19), "EINVAL", "offset=19");
    assertCode(() => pool.setPartialChecksum(ref, 34, 19), "EINVAL", "past the 54-byte data");
    assertCode(() => pool.setPartialChecksum(ref, NaN, 16), "EINVAL", "start=NaN");
    assertCode(() => pool.setPartialChecksum(ref, 34, 0.5), "EINVAL", "offset=0.5");
    assertCode(() => pool.setPartialChecksum(ref, 65536, 0), "EINVAL", "start=65536");
    assert.equal(pool.vnetFlags(ref), 0);
    pool.setPartialChecksum(ref, 34, 18); // field at 52..53: the last two bytes
    assert.equal(pool.csumOffset(ref), 18);
  }),
);

Deno.test(
  "superframe: clearOffload makes the frame plain and keeps the vnet header length",
  withFrame((pool, ref) => {
    pool.setLength(ref, 200);
    writeMeta16(pool, ref, META.vnetLen, 12);
    pool.setGso(ref, GsoType.TCPV4, 100, 54);
    pool.setPartialChecksum(ref, 34, 16);
    pool.clearOffload(ref);
    assert.deepEqual(
      [
        pool.vnetFlags(ref),
        pool.gsoType(ref),
        pool.gsoSize(ref),
        pool.headerLength(ref),
        pool.csumStart(ref),
        pool.csumOffset(ref),
        pool.vnetLength(ref),
      ],
      [0, 0, 0, 0, 0, 0, 12],
    );
  }),
);

// ---- adjustHead and setLength ----

Deno.test(
  "superframe: adjustHead shifts hdr_len and csum_start against the data start",
  withFrame((pool, ref) => {
    pool.setLength(ref, 3000);
    pool.setGso(ref, GsoType.TCPV4, 1448, 54);
    pool.setPartialChecksum(ref, 34, 16);
    pool.adjustHead(ref, 14); // pull the Ethernet header
    assert.deepEqual([pool.headerLength(ref), pool.csumStart(ref), pool.csumOffset(ref)], [
      40,
      20,
      16,
    ]);
    pool.adjustHead(ref, -18); // push an Ethernet header with a VLAN tag
    assert.deepEqual([pool.headerLength(ref), pool.csumStart(ref)], [58, 38]);
  }),
);

Deno.test(
  "superframe: adjustHead leaves unset offsets alone",
  withFrame((pool, ref) => {
    pool.setLength(ref, 100);
    writeMeta16(pool, ref, META.csumStart, 34); // stale: NEEDS_CSUM is not set
    pool.adjustHead(ref, 14);
    assert.deepEqual([pool.headerLength(ref), pool.csumStart(ref)], [0, 34]);
  }),
);

Deno.test(
  "superframe: adjustHead refuses to move csum_start before the data, changing nothing",
  withFrame((pool, ref) => {
    pool.setLength(ref, 100);
    pool.setPartialChecksum(ref, 34, 16);
    const off = pool.dataOffset(ref);
    assertCode(() => pool.adjustHead(ref, 40), "EINVAL", "csum_start 34");
    assertCode(() => pool.adjustHead(ref, 40), "EINVAL", "before the start of the data");
    assert.deepEqual([pool.dataOffset(ref), pool.length(ref), pool.csumStart(ref)], [
      off,
      100,
      34,
    ]);
  }),
);

Deno.test(
  "superframe: adjustHead refuses to move hdr_len before the data",
  withFrame((pool, ref) => {
    pool.setLength(ref, 3000);
    pool.setGso(ref, GsoType.TCPV4, 1448, 54);
    assertCode(() => pool.adjustHead(ref, 60), "EINVAL", "hdr_len 54");
    assert.equal(pool.headerLength(ref), 54);
  }),
);

Deno.test(
  "superframe: setLength resizes a GSO super-frame but refuses to cut its headers",
  withFrame((pool, ref) => {
    pool.setLength(ref, 60000);
    pool.setGso(ref, GsoType.TCPV6, 1428, 74);
    pool.setLength(ref, 65000);
    pool.setLength(ref, 74);
    assert.equal(pool.length(ref), 74);
    assertCode(() => pool.setLength(ref, 73), "EINVAL", "74 bytes of headers");
    assert.equal(pool.length(ref), 74);
  }),
);

Deno.test(
  "superframe: setLengths applies the same refusal to a GSO frame in a batch",
  accounted(() => {
    using pool = new FramePool(BIG);
    const refs = new Uint32Array(2);
    pool.alloc(refs);
    pool.setLength(refs[1], 2000);
    pool.setGso(refs[1], GsoType.TCPV4, 1448, 54);
    assertCode(() => pool.setLengths(refs, 2, 40), "EINVAL", "54 bytes of headers");
    assert.deepEqual([pool.length(refs[0]), pool.length(refs[1])], [40, 2000]);
    pool.setLengths(refs, 2, 1000);
    assert.deepEqual([pool.length(refs[0]), pool.length(refs[1])], [1000, 1000]);
    pool.free(refs);
  }),
);

Deno.test(
  "superframe: setLength refuses to cut the field of a partial checksum",
  withFrame((pool, ref) => {
    pool.setLength(ref, 100);
    pool.setPartialChecksum(ref, 34, 16);
    pool.setLength(ref, 52);
    assertCode(() => pool.setLength(ref, 51), "EINVAL", "field ends at byte 52");
  }),
);

// ---- parsers on super-frames ----

Deno.test(
  "superframe: parsers accept an IPv4 super-frame whose total length is 65535",
  withFrame((pool, ref) => {
    const { l3, l4 } = buildFrame(pool, ref, 4, IpProto.TCP, 65535 - 40, true);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    assert.equal(len, 14 + 65535);
    assert.equal(ipv4HeaderLength(b, l3, d + len - l3), 20);
    assert.equal(l4Ports(b, l4, d + len - l4, IpProto.TCP), 1234 * 65536 + 80);
    const t = new FiveTuple();
    assert.equal(t.parse(b, d, len), 14 + 20 + 20);
    assert.deepEqual([t.family, t.srcPort, t.dstPort], [4, 1234, 80]);
  }),
);

Deno.test(
  "superframe: parsers accept an IPv6 super-frame whose payload length is the whole frame",
  withFrame((pool, ref) => {
    buildFrame(pool, ref, 6, IpProto.UDP, 65535 - 40 - 8, true);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    assert.equal(ipv6HeaderLength(b, d + 14, len - 14), 40);
    const t = new FiveTuple();
    assert.equal(t.parse(b, d, len), 14 + 40 + 8);
    assert.deepEqual([t.family, t.proto, t.srcPort, t.dstPort], [6, IpProto.UDP, 1234, 80]);
  }),
);

// ---- NAT on super-frames ----

for (const v of [4, 6] as const) {
  for (const proto of [IpProto.TCP, IpProto.UDP]) {
    const name = `IPv${v} ${proto === IpProto.TCP ? "TCP" : "UDP"}`;

    Deno.test(
      `superframe: NAT of a NEEDS_CSUM ${name} super-frame, completed as a NIC would, verifies`,
      withFrame((pool, ref) => {
        const { l3, l4 } = buildFrame(pool, ref, v, proto, 60000, true);
        nat(pool, ref, l3, l4, proto);
        completeChecksum(pool, ref);
        const b = pool.bytes, d = pool.dataOffset(ref);
        assert.ok(l4ChecksumValid(b, d, pool.length(ref)));
        if (v === 4) assert.equal(internetChecksum(b, l3, 20), 0);
      }),
    );

    Deno.test(
      `superframe: NAT of a ${name} frame with a complete checksum keeps it valid (RFC 1624)`,
      withFrame((pool, ref) => {
        const { l3, l4 } = buildFrame(pool, ref, v, proto, 1400, false);
        const b = pool.bytes, d = pool.dataOffset(ref);
        assert.ok(l4ChecksumValid(b, d, pool.length(ref))); // valid before
        nat(pool, ref, l3, l4, proto);
        assert.ok(l4ChecksumValid(b, d, pool.length(ref)));
        if (v === 4) assert.equal(internetChecksum(b, l3, 20), 0);
      }),
    );
  }

  Deno.test(
    `superframe: IPv${v} NAT without the frame's flags breaks a partial checksum (the flag matters)`,
    withFrame((pool, ref) => {
      const { l3, l4 } = buildFrame(pool, ref, v, IpProto.TCP, 3000, true);
      const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
      if (v === 4) ipv4SetSrc(b, l3, d + len - l3, 0xc0000201);
      else ipv6SetSrc(b, l3, d + len - l3, V6_NEW_SRC);
      l4SetSrcPort(b, l4, d + len - l4, IpProto.TCP, 40000);
      completeChecksum(pool, ref);
      assert.ok(!l4ChecksumValid(b, d, len));
    }),
  );

  Deno.test(
    `superframe: an IPv${v} port change leaves a partial checksum field as it was`,
    withFrame((pool, ref) => {
      const { l4, csumAt } = buildFrame(pool, ref, v, IpProto.TCP, 3000, true);
      const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
      const before = b[csumAt] << 8 | b[csumAt + 1];
      l4SetSrcPort(b, l4, d + len - l4, IpProto.TCP, 40000, pool.vnetFlags(ref));
      l4SetDstPort(b, l4, d + len - l4, IpProto.TCP, 8080, pool.vnetFlags(ref));
      assert.equal(b[csumAt] << 8 | b[csumAt + 1], before);
      assert.equal(l4Ports(b, l4, d + len - l4, IpProto.TCP), 40000 * 65536 + 8080);
    }),
  );
}

Deno.test(
  "superframe: an address change patches a partial checksum by the pseudo-header difference",
  withFrame((pool, ref) => {
    const { l3, l4, csumAt } = buildFrame(pool, ref, 4, IpProto.TCP, 5000, true);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    ipv4SetSrc(b, l3, d + len - l3, 0xc0000201, pool.vnetFlags(ref));
    // The field is the new pseudo-header sum, not complemented.
    assert.equal(b[csumAt] << 8 | b[csumAt + 1], pseudo(b, l3, d + len - l4, IpProto.TCP));
  }),
);

Deno.test(
  "superframe: ipv6SetSrc refuses a packet whose first next header is an extension header",
  withFrame((pool, ref) => {
    const { l3 } = buildFrame(pool, ref, 6, IpProto.TCP, 100, false);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    b[l3 + 6] = 0; // hop-by-hop options
    const before = b.slice(d, d + len);
    assert.equal(ipv6SetSrc(b, l3, d + len - l3, V6_NEW_SRC), -10003);
    assert.deepEqual(b.slice(d, d + len), before);
  }),
);

Deno.test(
  "superframe: a NAT program over a batch rewrites a NEEDS_CSUM super-frame and a plain frame",
  accounted(() => {
    using pool = new FramePool(BIG);
    const refs = new Uint32Array(2);
    pool.alloc(refs);
    const a = buildFrame(pool, refs[0], 4, IpProto.TCP, 40000, true);
    pool.setGso(refs[0], GsoType.TCPV4, 1448, 54);
    buildFrame(pool, refs[1], 4, IpProto.UDP, 500, false);
    const batch: PacketBatch = {
      refs,
      count: 2,
      verdicts: new Uint32Array(2),
      ingress: 0,
      nowNs: 0,
      targets: 1,
    };
    snat(batch);
    assert.deepEqual([...batch.verdicts], [redirect(0), redirect(0)]);
    completeChecksum(pool, refs[0]);
    for (const ref of refs) {
      assert.ok(l4ChecksumValid(pool.bytes, pool.dataOffset(ref), pool.length(ref)));
      const t = new FiveTuple();
      assert.ok(t.parse(pool.bytes, pool.dataOffset(ref), pool.length(ref)) > 0);
      assert.deepEqual([...t.src.subarray(0, 4), t.srcPort], [192, 0, 2, 1, 40000]);
    }
    assert.equal(internetChecksum(pool.bytes, a.l3, 20), 0);
    pool.free(refs);
  }),
);

/** The README's source-NAT program. */
const snat: Program = (batch) => {
  for (let i = 0; i < batch.count; i++) {
    const ref = batch.refs[i], pool = FramePool.of(ref);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    const flags = pool.vnetFlags(ref);
    if ((b[d + 12] << 8 | b[d + 13]) !== 0x0800) continue; // not IPv4 (untagged): DROP
    const ihl = ipv4SetSrc(b, d + 14, len - 14, 0xc0000201, flags); // 192.0.2.1
    if (ihl < 0) continue;
    if (l4SetSrcPort(b, d + 14 + ihl, len - 14 - ihl, b[d + 23], 40000, flags) < 0) continue;
    batch.verdicts[i] = redirect(0);
  }
};

Deno.test(
  "superframe: a broadcast copy (copyFrame) keeps the offload metadata",
  accounted(() => {
    using pool = new FramePool(BIG);
    const refs = new Uint32Array(2);
    pool.alloc(refs);
    buildFrame(pool, refs[0], 6, IpProto.TCP, 30000, true);
    pool.setGso(refs[0], GsoType.TCPV6 | GsoType.ECN, 1428, 74);
    pool.adjustHead(refs[0], -4); // a 4-byte tag pushed: offsets move too
    copyFrame(pool, refs[0], refs[1]);
    const meta = (r: number) => [
      pool.vnetFlags(r),
      pool.gsoType(r),
      pool.gsoSize(r),
      pool.headerLength(r),
      pool.csumStart(r),
      pool.csumOffset(r),
      pool.length(r),
    ];
    assert.deepEqual(meta(refs[1]), meta(refs[0]));
    assert.deepEqual(meta(refs[1]).slice(0, 6), [1, 0x84, 1428, 78, 58, 16]);
    pool.free(refs);
  }),
);

Deno.test(
  "superframe: an IPv6 address change keeps an ICMPv6 checksum valid (it sums the pseudo-header)",
  withFrame((pool, ref) => {
    const { l3 } = buildFrame(pool, ref, 6, IpProto.ICMPV6, 56, false);
    const b = pool.bytes, d = pool.dataOffset(ref), len = pool.length(ref);
    assert.ok(l4ChecksumValid(b, d, len));
    assert.equal(ipv6SetSrc(b, l3, d + len - l3, V6_NEW_SRC), 40);
    assert.equal(ipv6SetDst(b, l3, d + len - l3, V6_NEW_DST), 40);
    assert.ok(l4ChecksumValid(b, d, len));
  }),
);
