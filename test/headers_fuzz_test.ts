/**
 * Fuzzing the header helpers from TypeScript (issue 6): random frames and
 * mutated valid ones (Ethernet, VLAN, QinQ, ARP, IPv4 with options, IPv6,
 * UDP, TCP, fragments), each cut at every length from 0 to full, through
 * every helper `dataplane/headers.ts` exports.
 *
 * What must hold for every call:
 * - no exception (the helpers document none: they return negative codes);
 * - the result is in the helper's documented range;
 * - nothing outside the frame is read: the frame sits in a larger buffer
 *   between two guard regions, the helper gets the frame's offset and
 *   length, and the call is made twice with different guard contents: the
 *   results (and the bytes a helper writes) must be identical. Every 8th
 *   frame is also run through a Proxy that records every index touched, so
 *   even a read whose value does not change the result is caught;
 * - nothing outside the frame is written: the guards are unchanged;
 * - rewriting helpers keep a valid IPv4 header checksum valid.
 *
 * The PRNG is seeded; the seed is printed. Replay a failure with
 * `BULKTAP_FUZZ_SEED=<seed> deno test -A test/headers_fuzz_test.ts`.
 * `BULKTAP_FUZZ_FRAMES` changes the number of frames (default 400).
 */
import assert from "assert";
import * as H from "../dataplane/headers.ts";

const { HeaderError, IpProto } = H;

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

const SEED = env("BULKTAP_FUZZ_SEED") !== undefined
  ? Number(env("BULKTAP_FUZZ_SEED")) >>> 0
  : crypto.getRandomValues(new Uint32Array(1))[0];
const FRAMES = Number(env("BULKTAP_FUZZ_FRAMES") ?? 400);

/** mulberry32: small, fast, good enough to drive a fuzzer. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    byte: () => Math.floor(next() * 256),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
    chance: (p: number) => next() < p,
  };
}
type Rng = ReturnType<typeof prng>;

// ---------------------------------------------------------------- frames

function sum16(b: Uint8Array, from: number, to: number, start = 0): number {
  let s = start;
  for (let i = from; i < to; i += 2) s += b[i] << 8 | (i + 1 < to ? b[i + 1] : 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** A well-formed frame of a random kind, with correct lengths and checksums. */
function validFrame(r: Rng): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < 12; i++) out.push(r.byte());
  const tags = r.pick([0, 0, 1, 2]);
  if (tags === 2) out.push(0x88, 0xa8, r.byte(), r.byte());
  if (tags >= 1) out.push(0x81, 0x00, r.byte(), r.byte());
  const kind = r.pick(["ipv4", "ipv4", "ipv6", "ipv6", "arp", "other"] as const);
  const body: number[] = [];
  const payload = () => {
    const p: number[] = [];
    for (let i = r.int(48); i > 0; i--) p.push(r.byte());
    return p;
  };
  const l4 = (proto: number): number[] => {
    if (proto === IpProto.UDP) {
      const p = payload();
      const n = 8 + p.length;
      return [r.byte(), r.byte(), r.byte(), r.byte(), n >> 8, n & 255, 0, 0, ...p];
    }
    if (proto === IpProto.TCP) {
      const opt = r.int(11) * 4;
      const h = [r.byte(), r.byte(), r.byte(), r.byte()];
      for (let i = 0; i < 8; i++) h.push(r.byte());
      h.push(((20 + opt) / 4) << 4, r.byte(), r.byte(), r.byte(), 0, 0, r.byte(), r.byte());
      for (let i = 0; i < opt; i++) h.push(r.byte());
      return [...h, ...payload()];
    }
    return payload();
  };
  let l3: Uint8Array | undefined;
  if (kind === "ipv4") {
    out.push(0x08, 0x00);
    const opt = r.int(11) * 4;
    const proto = r.pick([IpProto.UDP, IpProto.TCP, IpProto.UDP, IpProto.TCP, IpProto.ICMP]);
    let seg = l4(proto);
    // Sometimes a packet too short for its L4 header (lengths still consistent).
    if (r.chance(0.1)) seg = seg.slice(0, r.int(Math.min(seg.length, 20) + 1));
    const total = 20 + opt + seg.length;
    const frag = r.chance(0.15) ? (r.chance(0.5) ? 0x2000 : 0) | (r.int(0x1fff) + 1) : 0x4000;
    body.push(0x45 + opt / 4, r.byte(), total >> 8, total & 255, r.byte(), r.byte());
    body.push(frag >> 8, frag & 255, r.int(256), proto, 0, 0);
    for (let i = 0; i < 8 + opt; i++) body.push(r.byte());
    body.push(...seg);
    l3 = Uint8Array.from(body);
    const c = ~sum16(l3, 0, 20 + opt) & 0xffff;
    l3[10] = c >> 8;
    l3[11] = c & 255;
    // The L4 checksum over the pseudo-header, for whole datagrams.
    const at = proto === IpProto.UDP ? 6 : proto === IpProto.TCP ? 16 : -1;
    if (at >= 0 && frag !== 0x2000 && (frag & 0x1fff) === 0) {
      const o = 20 + opt;
      let s = sum16(l3, 12, 20);
      s = sum16(Uint8Array.of(0, proto, seg.length >> 8, seg.length & 255), 0, 4, s);
      s = sum16(l3, o, l3.length, s);
      let lc = ~s & 0xffff;
      if (proto === IpProto.UDP && lc === 0) lc = 0xffff;
      l3[o + at] = lc >> 8;
      l3[o + at + 1] = lc & 255;
    }
  } else if (kind === "ipv6") {
    out.push(0x86, 0xdd);
    const proto = r.pick([IpProto.UDP, IpProto.TCP, IpProto.ICMPV6, 0, 44]);
    const seg = l4(proto);
    body.push(0x60 | r.int(16), r.byte(), r.byte(), r.byte());
    body.push(seg.length >> 8, seg.length & 255, proto, r.int(256));
    for (let i = 0; i < 32; i++) body.push(r.byte());
    body.push(...seg);
    l3 = Uint8Array.from(body);
  } else if (kind === "arp") {
    out.push(0x08, 0x06);
    body.push(0, 1, 8, 0, 6, 4, 0, r.pick([1, 2]));
    for (let i = 0; i < 20; i++) body.push(r.byte());
    l3 = Uint8Array.from(body);
  } else {
    out.push(r.byte(), r.byte());
    l3 = Uint8Array.from(payload());
  }
  const f = new Uint8Array(out.length + l3.length + (r.chance(0.3) ? r.int(16) : 0));
  f.set(out, 0);
  f.set(l3, out.length);
  for (let i = out.length + l3.length; i < f.length; i++) f[i] = r.byte(); // padding
  return f;
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x45, 0x4f, 0x60, 0x08, 0x06, 0x81, 0x88, 0x86, 0xdd];

function mutate(r: Rng, f: Uint8Array): Uint8Array {
  const g = f.slice();
  for (let m = 1 + r.int(4); m > 0 && g.length > 0; m--) {
    const i = r.int(g.length);
    switch (r.int(4)) {
      case 0:
        g[i] = r.byte();
        break;
      case 1:
        g[i] ^= 1 << r.int(8);
        break;
      case 2:
        g[i] = r.pick(INTERESTING);
        break;
      default: {
        // A 16-bit field (length, EtherType) set to an edge value.
        const v = r.pick([0, 1, 7, 8, 19, 20, 39, 40, g.length, g.length - 14, 0xffff, r.int(64)]);
        g[i] = v >> 8 & 255;
        if (i + 1 < g.length) g[i + 1] = v & 255;
      }
    }
  }
  return g;
}

function randomFrame(r: Rng): Uint8Array {
  const f = new Uint8Array(r.int(100));
  for (let i = 0; i < f.length; i++) f[i] = r.byte();
  if (f.length > 14 && r.chance(0.5)) {
    const et = r.pick([0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8]);
    f[12] = et >> 8;
    f[13] = et & 255;
  }
  return f;
}

// ---------------------------------------------------------------- helpers

/** Arguments other than the frame, drawn once per call and used for both runs. */
interface Args {
  mac: number;
  proto: number;
  addr: number;
  port: number;
  /** An IPv6 address (16 bytes, drawn once per frame). */
  addr6: Uint8Array;
  /** The frame's offload flags: 0 or NEEDS_CSUM (a partial L4 checksum). */
  flags: number;
}

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x);
const codes = (...cs: number[]) => (x: unknown) => isInt(x) && cs.includes(x);
const T = HeaderError.TRUNCATED, M = HeaderError.MALFORMED, U = HeaderError.UNSUPPORTED;
const E = HeaderError.TTL_EXPIRED, F = HeaderError.FRAGMENT;
const anyCode = codes(T, M, U, E, F);
const range = (lo: number, hi: number) => (x: unknown) => isInt(x) && x >= lo && x <= hi;
const either = (...ps: ((x: unknown) => boolean)[]) => (x: unknown) => ps.some((p) => p(x));
const ipv4Len = either(
  (x) => isInt(x) && x >= 20 && x <= 60 && x % 4 === 0,
  codes(T, M, U),
);

/** The tuples a 5-tuple call uses, reset to the same state before each run. */
const rule = new H.FiveTuple();
const scratch = new H.FiveTuple();
const tupleState = (t: H.FiveTuple) =>
  `${t.family}/${t.proto}/${t.srcPort}/${t.dstPort}/${t.src.join(".")}/${t.dst.join(".")}`;
function resetTuple(t: H.FiveTuple): void {
  t.family =
    t.proto =
    t.srcPort =
    t.dstPort =
      0;
  t.src.fill(0);
  t.dst.fill(0);
}

interface Helper {
  /** Which header the call starts at: 2 = frame start, 3 = L3, 4 = L4. */
  layer: 2 | 3 | 4;
  call(b: Uint8Array, off: number, len: number, a: Args): unknown;
  /** The documented result range (given the length passed). */
  ok(result: unknown, len: number): boolean;
  /** Writes into the frame. */
  writes?: true;
}

const HELPERS: Record<string, Helper> = {
  readMac: {
    layer: 2,
    call: (b, o, l) => H.readMac(b, o, l),
    ok: either(range(0, 2 ** 48 - 1), codes(T)),
  },
  writeMac: {
    layer: 2,
    call: (b, o, l, a) => H.writeMac(b, o, l, a.mac),
    ok: codes(0, T),
    writes: true,
  },
  isGroupMac: {
    layer: 2,
    call: (b, o, l) => H.isGroupMac(H.readMac(b, o, l)),
    ok: (x) => typeof x === "boolean",
  },
  ethDst: {
    layer: 2,
    call: (b, o, l) => H.ethDst(b, o, l),
    ok: either(range(0, 2 ** 48), codes(T)),
  },
  ethSrc: {
    layer: 2,
    call: (b, o, l) => H.ethSrc(b, o, l),
    ok: either(range(0, 2 ** 48), codes(T)),
  },
  swapMacs: { layer: 2, call: (b, o, l) => H.swapMacs(b, o, l), ok: codes(0, T), writes: true },
  ethPayloadOffset: {
    layer: 2,
    call: (b, o, l) => H.ethPayloadOffset(b, o, l),
    ok: (x, len) => codes(T, M)(x) || ((x === 14 || x === 18 || x === 22) && (x as number) <= len),
  },
  ethProtocol: {
    layer: 2,
    call: (b, o, l) => H.ethProtocol(b, o, l),
    ok: either(range(0, 0xffff), codes(T, M)),
  },
  vlanId: {
    layer: 2,
    call: (b, o, l) => H.vlanId(b, o, l),
    ok: either(range(0, 4095), codes(T, U)),
  },
  arpOperation: {
    layer: 3,
    call: (b, o, l) => H.arpOperation(b, o, l),
    ok: either(range(0, 0xffff), codes(T, M)),
  },
  ipv4HeaderLength: { layer: 3, call: (b, o, l) => H.ipv4HeaderLength(b, o, l), ok: ipv4Len },
  internetChecksum: {
    layer: 3,
    call: (b, o, l) => H.internetChecksum(b, o, l),
    ok: range(0, 0xffff),
  },
  ipv4UpdateChecksum: {
    layer: 3,
    call: (b, o, l) => H.ipv4UpdateChecksum(b, o, l),
    ok: ipv4Len,
    writes: true,
  },
  ipv4DecrementTtl: {
    layer: 3,
    call: (b, o, l) => H.ipv4DecrementTtl(b, o, l),
    ok: either(range(1, 254), codes(T, M, U, E)),
    writes: true,
  },
  ipv4Src: {
    layer: 3,
    call: (b, o, l) => H.ipv4Src(b, o, l),
    ok: either(range(0, 0xffffffff), codes(T, M, U)),
  },
  ipv4Dst: {
    layer: 3,
    call: (b, o, l) => H.ipv4Dst(b, o, l),
    ok: either(range(0, 0xffffffff), codes(T, M, U)),
  },
  ipv4SetSrc: {
    layer: 3,
    call: (b, o, l, a) => H.ipv4SetSrc(b, o, l, a.addr, a.flags),
    ok: ipv4Len,
    writes: true,
  },
  ipv4SetDst: {
    layer: 3,
    call: (b, o, l, a) => H.ipv4SetDst(b, o, l, a.addr, a.flags),
    ok: ipv4Len,
    writes: true,
  },
  ipv6HeaderLength: {
    layer: 3,
    call: (b, o, l) => H.ipv6HeaderLength(b, o, l),
    ok: codes(40, T, U),
  },
  ipv6SetSrc: {
    layer: 3,
    call: (b, o, l, a) => H.ipv6SetSrc(b, o, l, a.addr6, a.flags),
    ok: codes(40, T, U),
    writes: true,
  },
  ipv6SetDst: {
    layer: 3,
    call: (b, o, l, a) => H.ipv6SetDst(b, o, l, a.addr6, a.flags),
    ok: codes(40, T, U),
    writes: true,
  },
  ipv6DecrementHopLimit: {
    layer: 3,
    call: (b, o, l) => H.ipv6DecrementHopLimit(b, o, l),
    ok: either(range(1, 254), codes(T, U, E)),
    writes: true,
  },
  l4Ports: {
    layer: 4,
    call: (b, o, l, a) => H.l4Ports(b, o, l, a.proto),
    ok: either(range(0, 0xffffffff), codes(T, M, U)),
  },
  l4SetSrcPort: {
    layer: 4,
    call: (b, o, l, a) => H.l4SetSrcPort(b, o, l, a.proto, a.port, a.flags),
    ok: codes(0, T, M, U),
    writes: true,
  },
  l4SetDstPort: {
    layer: 4,
    call: (b, o, l, a) => H.l4SetDstPort(b, o, l, a.proto, a.port, a.flags),
    ok: codes(0, T, M, U),
    writes: true,
  },
  FiveTuple: {
    layer: 2,
    call: (b, o, l) => {
      resetTuple(scratch);
      const p = scratch.parse(b, o, l);
      const s = tupleState(scratch);
      resetTuple(scratch);
      const m = rule.matches(b, o, l, scratch);
      return `${p} ${s} ${m} ${rule.equals(scratch)} ${tupleState(scratch)}`;
    },
    ok: (x, len) => {
      const [p, , m, eq] = String(x).split(" ");
      const parsed = Number(p), matched = Number(m);
      return (anyCode(parsed) || (isInt(parsed) && parsed >= 34 && parsed <= len)) &&
        (anyCode(matched) || matched === 0 || matched === 1) &&
        (eq === "true" || eq === "false") && (matched !== 1 || eq === "true");
    },
  },
};

// ------------------------------------------------------------ the harness

const GUARD = 64;

/** A Uint8Array stand-in that records any index outside [lo, hi) it is asked for. */
function watched(buf: Uint8Array, lo: number, hi: number, bad: number[]): Uint8Array {
  const index = (k: string | symbol) =>
    typeof k === "string" && /^-?\d+$/.test(k) ? Number(k) : NaN;
  return new Proxy(buf, {
    get(t, k) {
      const i = index(k);
      if (Number.isNaN(i)) return Reflect.get(t, k, t);
      if (i < lo || i >= hi) bad.push(i);
      return t[i];
    },
    set(t, k, v) {
      const i = index(k);
      if (Number.isNaN(i)) return Reflect.set(t, k, v, t);
      if (i < lo || i >= hi) bad.push(i);
      t[i] = v;
      return true;
    },
  }) as Uint8Array;
}

/** IPv4 header checksum verifies at `l3` within `len` bytes. */
function ipv4Valid(b: Uint8Array, l3: number, len: number): boolean {
  const ihl = H.ipv4HeaderLength(b, l3, len);
  return ihl > 0 && H.internetChecksum(b, l3, ihl) === 0;
}

Deno.test("headers fuzz: random and truncated frames never throw, never read or write past the frame", () => {
  console.log(
    `headers fuzz: seed ${SEED} (replay: BULKTAP_FUZZ_SEED=${SEED}), ${FRAMES} frames`,
  );
  // Every exported helper is fuzzed: a new export fails here until it is added.
  const exported = Object.entries(H).filter(([, v]) => typeof v === "function").map(([k]) => k);
  assert.deepEqual(exported.sort(), Object.keys(HELPERS).sort());

  const r = prng(SEED);
  const names = Object.keys(HELPERS);
  const bufA = new Uint8Array(GUARD + 512 + GUARD);
  const bufB = new Uint8Array(bufA.length);
  const guardA = new Uint8Array(bufA.length), guardB = new Uint8Array(bufA.length);
  let calls = 0, proxied = 0, successes = 0;
  const addr6 = new Uint8Array(16);
  const fail = (what: string, frame: Uint8Array, len: number, name: string, rel: number) => {
    assert.fail(
      `${what}: helper ${name}, frame length ${len} of ${frame.length}, offset ${rel}, ` +
        `seed ${SEED}\nframe: ${
          Array.from(frame, (x) => x.toString(16).padStart(2, "0")).join("")
        }`,
    );
  };
  const t0 = performance.now();
  for (let iter = 0; iter < FRAMES; iter++) {
    const kind = r.next();
    const valid = validFrame(r);
    const frame = kind < 0.4 ? valid : kind < 0.85 ? mutate(r, valid) : randomFrame(r);
    // The natural offsets of this frame's headers (fall back to common ones).
    const l3Full = H.ethPayloadOffset(frame, 0, frame.length);
    const l3 = l3Full > 0 ? l3Full : 14;
    const ihl = H.ipv4HeaderLength(frame, l3, frame.length - l3);
    const l4 = l3 + (ihl > 0 ? ihl : 40);
    resetTuple(rule);
    rule.parse(valid, 0, valid.length);
    const proxyRun = iter % 8 === 0;
    for (let i = 0; i < 16; i++) addr6[i] = r.byte();
    for (let len = 0; len <= frame.length; len++) {
      // Two buffers with the frame at GUARD, guards of different contents.
      for (let i = 0; i < bufA.length; i++) {
        guardA[i] = r.byte();
        guardB[i] = guardA[i] ^ (1 + r.int(255));
      }
      for (const name of names) {
        const h = HELPERS[name];
        const natural = h.layer === 2 ? 0 : h.layer === 3 ? l3 : l4;
        for (const rel of [natural, r.int(len + 1)]) {
          if (rel > len) continue;
          const a: Args = {
            mac: r.next() * 2 ** 48,
            proto: r.pick([IpProto.UDP, IpProto.TCP, IpProto.UDP, IpProto.TCP, IpProto.ICMP]),
            addr: r.int(2 ** 32),
            port: r.int(65536),
            addr6,
            flags: r.pick([0, 1]),
          };
          const results: unknown[] = [];
          for (const [buf, guard] of [[bufA, guardA], [bufB, guardB]]) {
            buf.set(guard);
            buf.set(frame.subarray(0, len), GUARD);
            const before = name === "ipv4DecrementTtl" || name.startsWith("ipv4Set")
              ? ipv4Valid(buf, GUARD + rel, len - rel)
              : false;
            let res: unknown;
            try {
              res = h.call(buf, GUARD + rel, len - rel, a);
            } catch (e) {
              fail(`threw ${e}`, frame, len, name, rel);
            }
            calls++;
            if (!h.ok(res, len - rel)) fail(`result ${res} out of range`, frame, len, name, rel);
            if (typeof res === "number" && res >= 0) successes++;
            // Nothing written outside the frame (read-only helpers write
            // nothing at all: the index watcher below traps every write).
            if (h.writes) {
              for (let i = 0; i < GUARD; i++) {
                if (buf[i] !== guard[i]) fail(`wrote byte ${i - GUARD}`, frame, len, name, rel);
              }
              for (let i = GUARD + len; i < buf.length; i++) {
                if (buf[i] !== guard[i]) {
                  fail(`wrote byte ${i - GUARD} past the end`, frame, len, name, rel);
                }
              }
            }
            // A rewrite of a header with a valid checksum leaves it valid.
            if (before && typeof res === "number" && res >= 0) {
              if (!ipv4Valid(buf, GUARD + rel, len - rel)) {
                fail("IPv4 checksum broken by a rewrite", frame, len, name, rel);
              }
            }
            results.push(res);
          }
          // Same results whatever the guards hold: the guards were not read.
          if (results[0] !== results[1]) {
            fail(`result depends on bytes outside the frame`, frame, len, name, rel);
          }
          if (h.writes) {
            for (let i = GUARD; i < GUARD + len; i++) {
              if (bufA[i] !== bufB[i]) {
                fail(`bytes written depend on bytes outside the frame`, frame, len, name, rel);
              }
            }
          }
          if (proxyRun) {
            const bad: number[] = [];
            bufA.set(guardA);
            bufA.set(frame.subarray(0, len), GUARD);
            h.call(watched(bufA, GUARD, GUARD + len, bad), GUARD + rel, len - rel, a);
            proxied++;
            if (bad.length) {
              fail(`touched indexes ${bad.map((i) => i - GUARD).join(",")}`, frame, len, name, rel);
            }
          }
        }
      }
    }
  }
  const s = (performance.now() - t0) / 1000;
  console.log(
    `headers fuzz: ${calls} calls (${successes} non-negative results), ${proxied} index-watched, ` +
      `${FRAMES} frames in ${s.toFixed(1)} s`,
  );
  // The generator reaches deep: a fuzzer whose frames all fail early proves little.
  assert.ok(successes > calls / 10, `only ${successes} of ${calls} calls succeeded`);
});

Deno.test("headers fuzz: the index watcher catches a read past the frame", () => {
  // The harness's own check: a helper-shaped function that reads one byte
  // too far must be caught.
  const buf = new Uint8Array(GUARD + 20 + GUARD);
  const bad: number[] = [];
  const overRead = (b: Uint8Array, off: number, len: number) => b[off + len];
  overRead(watched(buf, GUARD, GUARD + 20, bad), GUARD, 20);
  assert.deepEqual(bad, [GUARD + 20]);
  // And reads inside are not reported.
  const fine: number[] = [];
  H.ipv4HeaderLength(watched(buf, GUARD, GUARD + 20, fine), GUARD, 20);
  assert.deepEqual(fine, []);
});
