/**
 * The fuzzer's operations on the exports that reach FFI rarely or never:
 * TAP devices, the scheduler, header helpers, verdicts, programs, the
 * command line and the histogram helpers.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import * as M from "../../../mod.ts";
import { Batch, Device, Scheduler, TapDevice } from "../../../mod.ts";
import { type Case, fmt } from "./case.ts";
import type { Group, Op } from "./ops.ts";
import { anyNumber, anyValue, arrSpec, maybe } from "./values.ts";

const op = <A>(arb: fc.Arbitrary<A>, run: (c: Case, a: A) => void | Promise<void>): Op<A> => ({
  arb,
  run,
});
// deno-lint-ignore no-explicit-any
const U = (v: unknown) => v as any;

let tapSerial = 0;
const tapName = () => `bfz${Deno.pid % 100000}${(tapSerial++ % 100).toString(36)}`.slice(0, 15);

/** TAP group: TapDevice, tapNameProblem. */
export const tapOps: Group = {
  nameProblem: op(fc.oneof(fc.string({ maxLength: 20 }), anyValue), (c, n) => {
    c.call(`tapNameProblem(${fmt(n)})`, () => M.tapNameProblem(U(n)));
  }),
  ctorRefused: op(
    fc.record({
      name: fc.oneof(fc.string({ maxLength: 20 }), anyValue),
      queues: maybe(anyValue),
      mtu: maybe(anyValue),
      vnetHdr: maybe(anyValue),
      io: maybe(fc.constantFrom("uring", "write", "x")),
      ringSize: maybe(anyValue),
      ioBatch: maybe(anyValue),
      cpu: maybe(anyValue),
      sndbuf: maybe(anyValue),
    }),
    (c, o) => {
      // Never create a device by a random name: attach only (create false).
      const t = c.call(
        `new TapDevice(${JSON.stringify(o, (_k, v) => fmt(v))}, create: false)`,
        () => new TapDevice(U({ ...o, create: false, pool: c.pool })),
      );
      if (t) c.devices.push(t);
    },
  ),
  open: op(
    fc.record({
      queues: fc.integer({ min: 1, max: 3 }),
      rxQueue: fc.oneof(fc.nat(3), anyValue),
      batch: fc.record({
        cap: fc.oneof(fc.constant(16), anyValue),
        count: maybe(anyValue),
        refs: maybe(arrSpec),
      }),
      timeout: fc.oneof(fc.integer({ min: -1, max: 10 }), anyValue),
      target: fc.constantFrom("dev", "closed", "fake", "self"),
      bulk: maybe(anyValue),
      mode: maybe(fc.constantFrom("bulk", "single", "x")),
      xmit: maybe(arrSpec),
    }),
    async (c, o) => {
      const t = c.call(
        "new TapDevice (real)",
        () => new TapDevice({ name: tapName(), queues: o.queues, pool: c.pool, ringSize: 64 }),
      );
      if (!t) return;
      c.devices.push(t);
      const batch = c.call(`new Batch(${fmt(o.batch.cap)})`, () => new Batch(U(o.batch.cap))) ??
        new Batch(16);
      if (o.batch.refs) {
        const arr = c.array(o.batch.refs, "tap batch.refs");
        c.assign(batch, "refs", arr);
      }
      if (o.batch.count !== undefined) c.assign(batch, "count", o.batch.count);
      const n = c.call(`tap.rx(batch, ${fmt(o.rxQueue)})`, () => t.rx(batch, U(o.rxQueue)));
      if (typeof n === "number") c.receive(batch.refs, n);
      const tm = typeof o.timeout === "number" && (o.timeout < 0 || o.timeout > 20) ? 5 : o.timeout;
      await c.callAsync(
        `tap.wait(${fmt(o.rxQueue)}, ${fmt(tm)})`,
        // A signal bounds every wait, forever-waits included (and tests abort).
        () => t.wait(U(o.rxQueue), U(tm), { signal: AbortSignal.timeout(200) }),
      );
      if (o.xmit) {
        const arr = c.array(o.xmit, "tap.xmit");
        c.call(`tap.xmit(${fmt(arr)})`, () => t.xmit(U(arr)));
      }
      const target = o.target === "dev"
        ? c.dev
        : o.target === "self"
        ? t
        : o.target === "closed"
        ? (() => {
          const d = c.newDevice({ pool: c.pool });
          d.close();
          return d;
        })()
        : { handle: 0xffffffff, assertOpen() {} };
      c.call(
        `tap.forwardTo(${o.target}, bulk ${fmt(o.bulk)}, mode ${fmt(o.mode)})`,
        () => t.forwardTo(U(target), U({ bulk: o.bulk, mode: o.mode })),
      );
      await c.callAsync("tap.stopForwarding()", () => t.stopForwarding());
      c.call("tap.stats()", () => t.stats());
      c.call("tap.statsUnchecked()", () => t.statsUnchecked());
      c.call("tap.error", () => t.error);
      await c.callAsync("tap.drained(50)", () => t.drained(50));
      c.call("batch.release()", () => batch.release());
      c.call("tap.close()", () => t.close());
      c.call("closed tap.rx", () => t.rx(new Batch(4), 0));
    },
  ),
};

/** Scheduler group: Scheduler (construction is cheap; start spawns Workers). */
export const schedulerOps: Group = {
  ctor: op(
    fc.record({
      cpus: maybe(anyValue),
      deadlineUs: maybe(anyValue),
      busyPollUs: maybe(anyValue),
      bulk: maybe(anyValue),
      budget: maybe(anyValue),
    }),
    (c, o) => {
      const s = c.call(
        `new Scheduler(${JSON.stringify(o, (_k, v) => fmt(v))})`,
        () => new Scheduler(U({ ...o, sources: [], program: { name: "drop" }, targets: [] })),
      );
      if (s) c.call("sched.counters()", () => s.counters());
    },
  ),
  start: op(
    fc.record({
      source: fc.constantFrom("generator", "badPool", "badQueue", "badKind"),
      program: fc.constantFrom("forward", "drop", "nope", "badTarget"),
      reader: fc.constantFrom("none", "main", "bad"),
      bulk: maybe(anyValue),
      budget: maybe(anyValue),
      stageMode: maybe(fc.constantFrom("cycle", "target", "x")),
    }),
    async (c, o) => {
      const source = o.source === "generator"
        ? { kind: "generator", pool: c.pool.handle, limit: 64 }
        : o.source === "badPool"
        ? { kind: "generator", pool: 0xffffffff }
        : o.source === "badQueue"
        ? { kind: "queue", device: c.dev.handle, queue: 99 }
        : { kind: "nope" };
      const program = o.program === "forward"
        ? { name: "forward", options: { target: 0 } }
        : o.program === "badTarget"
        ? { name: "forward", options: { target: -1 } }
        : { name: o.program };
      const readers = o.reader === "main"
        ? [{ device: c.dev.handle, queue: 0 }]
        : o.reader === "bad"
        ? [{ device: 0xffffffff, queue: 7 }]
        : [];
      const s = c.call(
        "new Scheduler(start case)",
        () =>
          new Scheduler(
            U({
              cpus: 1,
              sources: [source],
              program,
              targets: [c.dev],
              readers,
              bulk: o.bulk,
              budget: o.budget,
              stageMode: o.stageMode,
              statusIntervalMs: 50,
            }),
          ),
      );
      if (!s) return;
      await c.callAsync(
        `sched.start(${JSON.stringify(o, (_k, v) => fmt(v))})`,
        () => s.start(),
        15000,
      );
      await new Promise((r) => setTimeout(r, 20));
      await c.callAsync("sched.close()", () => s.close(), 15000);
    },
  ),
};

const HEADER_FNS = [
  "readMac",
  "ethDst",
  "ethSrc",
  "swapMacs",
  "ethPayloadOffset",
  "ethProtocol",
  "vlanId",
  "arpOperation",
  "ipv4HeaderLength",
  "internetChecksum",
  "ipv4UpdateChecksum",
  "ipv4DecrementTtl",
  "ipv4Src",
  "ipv4Dst",
  "ipv6HeaderLength",
  "ipv6DecrementHopLimit",
] as const;
const HEADER_SETTERS = [
  "writeMac",
  "ipv4SetSrc",
  "ipv4SetDst",
  "l4SetSrcPort",
  "l4SetDstPort",
  "l4Ports",
  "ipv6SetSrc",
  "ipv6SetDst",
] as const;

/** Headers group: every header helper with hostile offsets and lengths. */
export const headerOps: Group = {
  helper: op(
    fc.tuple(
      fc.constantFrom(...HEADER_FNS, ...HEADER_SETTERS, "FiveTuple"),
      fc.uint8Array({ maxLength: 128 }),
      fc.oneof(fc.nat(140), anyNumber),
      fc.oneof(fc.nat(140), anyNumber),
      anyNumber,
      fc.constantFrom("plain", "sub", "shared"),
    ),
    (c, [name, bytes, off, len, x, backing]) => {
      const outer = backing === "shared"
        ? new Uint8Array(new SharedArrayBuffer(bytes.length + 32))
        : new Uint8Array(bytes.length + 32);
      outer.fill(0xa5);
      outer.set(bytes, 16);
      const b = backing === "plain" ? outer : outer.subarray(16, 16 + bytes.length);
      const before = outer.slice();
      // deno-lint-ignore no-explicit-any
      const H = M as any;
      const label = `${name}(${backing} ${bytes.length} B, off ${fmt(off)}, len ${fmt(len)}, ${
        fmt(x)
      })`;
      const r = c.call(label, () => {
        if (name === "FiveTuple") {
          const t = new M.FiveTuple();
          const s = new M.FiveTuple();
          return [t.parse(b, off, len), t.matches(b, off, len, s), t.equals(s) ? 1 : 0][0];
        }
        return H[name](b, off, len, x);
      });
      if (r !== undefined && (typeof r !== "number" || Number.isNaN(r))) {
        c.find("unchecked", `${label} returned ${fmt(r)}, not a number or a HeaderError code`);
      }
      // Writes only inside [off, off + len) of the frame.
      const base = backing === "plain" ? 0 : 16;
      const lo = Number.isFinite(off) ? base + Math.max(0, off) : Infinity;
      const hi = Number.isFinite(off + len) ? base + off + len : -Infinity;
      for (let i = 0; i < outer.length; i++) {
        if (outer[i] !== before[i] && (i < lo || i >= hi)) {
          c.find("out-of-bounds", `${label} wrote byte ${i - base} outside [off, off + len)`);
          break;
        }
      }
    },
  ),
};

/** Misc group: verdicts, programs, nowNs, histograms, the command line. */
export const miscOps: Group = {
  verdicts: op(anyValue, (c, v) => {
    const r = c.call(`redirect(${fmt(v)})`, () => M.redirect(U(v)));
    c.call(`verdictAction(${fmt(v)})`, () => M.verdictAction(U(v)));
    c.call(`verdictTarget(${fmt(v)})`, () => M.verdictTarget(U(v)));
    if (typeof r === "number" && !(Number.isInteger(r) && r >= 0 && r <= 0xffffffff)) {
      c.find("unchecked", `redirect(${fmt(v)}) = ${r} is not a verdict word`);
    }
  }),
  programs: op(
    fc.tuple(
      anyValue,
      fc.record({ capacity: maybe(anyValue), ageNs: maybe(anyValue) }),
      anyNumber,
      anyNumber,
    ),
    (c, [t, o, mac, now]) => {
      c.call(`forward(${fmt(t)})`, () => M.forward(U(t)));
      c.call("drop()", () => M.drop());
      c.call("reflect()", () => M.reflect());
      const sw = c.call(
        `new L2Switch(${JSON.stringify(o, (_k, v) => fmt(v))})`,
        () => new M.L2Switch(U(o)),
      );
      if (sw) {
        c.call(`sw.learn(${fmt(mac)}, ${fmt(t)}, ${fmt(now)})`, () => sw.learn(mac, U(t), now));
        c.call(`sw.lookup(${fmt(mac)}, ${fmt(now)})`, () => sw.lookup(mac, now));
        c.call("sw.size", () => sw.size);
      }
    },
  ),
  programFromSpec: op(
    fc.record({
      name: fc.oneof(
        fc.constantFrom("forward", "drop", "reflect", "l2switch", "nope"),
        fc.string(),
      ),
      options: maybe(fc.dictionary(fc.constantFrom("target", "capacity", "ageNs"), anyValue)),
    }),
    async (c, s) => {
      await c.callAsync(
        `programFromSpec(${JSON.stringify(s, (_k, v) => fmt(v))})`,
        () => M.programFromSpec(U(s)),
      );
    },
  ),
  clock: op(fc.constant(0), (c) => {
    const a = c.call("nowNs()", () => M.nowNs());
    const b = c.call("nowNs()", () => M.nowNs());
    if (typeof a === "number" && typeof b === "number" && b < a) {
      c.find("unchecked", "nowNs went backwards");
    }
  }),
  histograms: op(fc.tuple(fc.string(), fc.array(anyNumber, { maxLength: 8 })), (c, [s, vals]) => {
    c.call(`decodeHistogram(${fmt(s)})`, () => M.decodeHistogram(s));
    const h = M.newLatencyHistogram();
    // hdr-histogram-js's own methods are not bulktap's boundary: record
    // only what it accepts (extremes included), then drive bulktap's helpers.
    for (const v of vals) {
      if (v >= 1 && v <= M.MAX_LATENCY_NS) h.recordValue(Math.floor(v));
    }
    c.call("summarize", () => M.summarize(h));
    c.call("percentileDistribution", () => M.percentileDistribution(h));
    c.call("encode/decode", () => M.decodeHistogram(M.encodeHistogram(h)));
    c.call("mergeHistograms", () => M.mergeHistograms([h, M.newLatencyHistogram()]));
  }),
  cli: op(
    fc.array(
      fc.oneof(
        fc.constantFrom(
          "--cpus",
          "--bulk",
          "--mode",
          "--rate",
          "--duration",
          "--tap",
          "--tap-create",
          "--queues",
          "--frame-size",
          "single",
          "-1",
          "NaN",
          "1e309",
          "0x10",
          " ",
          "a/b",
        ),
        fc.string({ maxLength: 8 }),
      ),
      { maxLength: 6 },
    ),
    async (c, args) => {
      let ok = false;
      totals_parse(c, args, () => {
        const r = M.parseRunArgs(args);
        ok = r !== undefined;
      });
      // Only refused flags reach runMain: a valid line would run a 5 s job.
      if (!ok) {
        await c.callAsync(`runMain(${JSON.stringify(args)})`, async () => {
          const log = console.log, err = console.error;
          console.log = console.error = () => {};
          try {
            return await M.runMain(args);
          } finally {
            console.log = log;
            console.error = err;
          }
        });
      }
    },
  ),
  runJob: op(
    fc.record({
      field: fc.constantFrom("cpus", "queues", "frameSize", "bulk", "rate"),
      v: anyValue,
    }),
    async (c, o) => {
      const opts = {
        mode: "bulk",
        bulk: 16,
        cpus: 1,
        queues: 1,
        frameSize: 64,
        rate: 0,
        duration: 0.05,
        pin: false,
        json: true,
        [o.field]: o.v,
      };
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 200);
      await c.callAsync(
        `runJob({${o.field}: ${fmt(o.v)}})`,
        () => M.runJob(U(opts), undefined, ac.signal),
        15000,
      );
    },
  ),
  constants: op(fc.constant(0), (c) => {
    // The exported constants keep their documented values.
    const want: [string, unknown, unknown][] = [
      ["MAX_BULK", M.MAX_BULK, 256],
      ["XMIT_FLUSH", M.XMIT_FLUSH, 1],
      ["TAP_MAX_QUEUES", M.TAP_MAX_QUEUES, 64],
      ["MAX_REDIRECT_INDEX", M.MAX_REDIRECT_INDEX, 0xffffff],
      ["MAX_TARGETS", M.MAX_TARGETS, 64],
      ["ETH_HLEN", M.ETH_HLEN, 14],
      ["MAX_LATENCY_NS", M.MAX_LATENCY_NS, 3_600_000_000_000],
      ["LATENCY_BUCKET_ERROR", M.LATENCY_BUCKET_ERROR, 1 / 256],
      ["META.size", M.META.size, 64],
      ["FrameState.HELD", M.FrameState.HELD, 1],
      ["Verdict.REDIRECT", M.Verdict.REDIRECT, 3],
      ["LoopCounter.COUNT", M.LoopCounter.COUNT, 22],
      ["TargetCounter.DROPPED", M.TargetCounter.DROPPED, 1],
      ["LatencyLayout.BYTES", M.LatencyLayout.BYTES, 36928],
      ["HeaderError.TRUNCATED", M.HeaderError.TRUNCATED, -10001],
      ["EtherType.IPV4", M.EtherType.IPV4, 0x800],
      ["IpProto.UDP", M.IpProto.UDP, 17],
      ["RUN_HELP", typeof M.RUN_HELP, "string"],
    ];
    for (const [n, got, exp] of want) {
      if (got !== exp) c.find("unchecked", `${n} is ${got}, not ${exp}`);
    }
    c.call(
      "registerSourceKind(fresh)",
      () => M.registerSourceKind(`fuzz${Math.random()}`, () => ({}) as never),
    );
    c.call("UsageError", () => new M.UsageError("x"));
    c.call("BulktapError", () => new M.BulktapError("EINVAL", "x"));
  }),
};

function totals_parse(c: Case, args: string[], fn: () => void) {
  try {
    fn();
  } catch (e) {
    if (e instanceof M.UsageError) return; // the documented refusal
    c.call(`parseRunArgs(${JSON.stringify(args)})`, () => {
      throw e;
    });
  }
}

void Device;
