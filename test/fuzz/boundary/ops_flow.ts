/**
 * Fuzz operations, second half: the groups that move frames through
 * stages (bulk queues, latency recorders, sources, the poll loop). The
 * first half (pools, devices, queues, batches) and the shared helpers are
 * in ops.ts.
 */
import fc from "npm:fast-check@^4";
import {
  BulkQueues,
  drop,
  forward,
  GeneratorSource,
  histogramFromBuckets,
  LatencyLayout,
  LatencyRecorder,
  LoopCounter,
  newLatencyHistogram,
  PollLoop,
  QueueSource,
  redirect,
  reflect,
  sourceFromSpec,
  Verdict,
} from "../../../mod.ts";
import { type Case, fmt } from "./case.ts";
import {
  anyNumber,
  anyValue,
  arrSpec,
  countSpec,
  maybe,
  refSpec,
  resolveCount,
  trueLength,
} from "./values.ts";
import { type Group, op, pickDev, U } from "./ops.ts";

const targetPick = fc.constantFrom("dev", "closed", "fake", "junkHandle", "fresh");
function pickTarget(c: Case, w: string, h: unknown): { handle: number } {
  switch (w) {
    case "closed":
      return pickDev(c, "closed");
    case "fake":
      return { handle: U(h) };
    case "junkHandle":
      return { handle: 0xffffffff };
    case "fresh":
      return pickDev(c, "fresh");
  }
  return c.dev;
}

/** Devmap group: BulkQueues. */
export const devmapOps: Group = {
  ctor: op(
    fc.record({
      targets: fc.array(fc.tuple(targetPick, anyValue), { maxLength: 70 }),
      bulk: maybe(anyValue),
      mode: maybe(fc.constantFrom("cycle", "target", "x", 3)),
      cpu: maybe(anyValue),
      cycleCapacity: maybe(anyValue),
    }),
    (c, o) => {
      const targets = o.targets.map(([w, h]) => pickTarget(c, w, h));
      const bq = c.call(
        `new BulkQueues(${targets.length} targets, ${
          JSON.stringify({ ...o, targets: undefined }, (_k, v) => fmt(v))
        })`,
        () =>
          new BulkQueues(
            targets,
            U({ bulk: o.bulk, mode: o.mode, cpu: o.cpu, cycleCapacity: o.cycleCapacity }),
          ),
      );
      if (bq) c.call("bq.flush()", () => bq.flush());
    },
  ),
  stage: op(
    fc.record({
      targets: fc.array(fc.tuple(targetPick, anyValue), { minLength: 1, maxLength: 4 }),
      mode: fc.constantFrom("cycle", "target"),
      bulk: fc.oneof(fc.integer({ min: 1, max: 256 }), anyValue),
      cpu: maybe(anyValue),
      cycleCapacity: maybe(fc.oneof(fc.integer({ min: 1, max: 64 }), anyValue)),
      enq: fc.array(fc.tuple(refSpec, fc.oneof(fc.nat(4), anyValue), anyNumber), { maxLength: 80 }),
      reassign: maybe(fc.tuple(fc.constantFrom("pending", "oldestNs", "counters"), anyValue)),
      at: fc.nat(80),
    }),
    (c, o) => {
      const targets = o.targets.map(([w, h]) => pickTarget(c, w, h));
      const bq = c.call(
        `new BulkQueues(mode ${o.mode}, bulk ${fmt(o.bulk)}, cpu ${fmt(o.cpu)})`,
        () =>
          new BulkQueues(
            targets,
            U({ bulk: o.bulk, mode: o.mode, cpu: o.cpu, cycleCapacity: o.cycleCapacity }),
          ),
      );
      if (!bq) return;
      // Frames staged are the caller's until flushed: each at most once.
      const used = new Set<number>();
      for (let k = 0; k < o.enq.length; k++) {
        if (o.reassign && k === o.at % (o.enq.length + 1)) {
          const [f, v] = o.reassign;
          c.assign(bq, f, f === "counters" ? new Float64Array(1) : v);
        }
        const [r, t, now] = o.enq[k];
        let ref = c.ref(r);
        if (used.has(ref)) ref = 0xffffffff;
        used.add(ref);
        if (
          !c.call(`bq.enqueue(0x${(ref >>> 0).toString(16)}, ${fmt(t)}, ${fmt(now)})`, () => {
            bq.enqueue(ref, U(t), now);
            return true;
          })
        ) break;
      }
      c.call(`bq.flush() with pending ${fmt(bq.pending)}`, () => bq.flush());
      c.call("bq.sent/dropped(hostile)", () => [bq.sent(U(o.at)), bq.dropped(U(-1))]);
    },
  ),
};

/** Latency group: LatencyRecorder and the histogram helpers. */
export const latencyOps: Group = {
  record: op(
    fc.tuple(fc.constantFrom("recordBatch", "recordBatchAt"), arrSpec, countSpec, anyNumber),
    (c, [m, a, n, now]) => {
      const rec = new LatencyRecorder();
      const arr = c.array(a, m);
      const count = resolveCount(n === "default" ? "len" : n, arr);
      c.call(
        `rec.${m}(${fmt(arr)}, ${fmt(count)}, ${fmt(now)})`,
        () =>
          m === "recordBatch"
            ? rec.recordBatch(U(arr), U(count))
            : rec.recordBatchAt(U(arr), U(count), now),
      );
      c.call("rec.summary()", () => rec.summary());
    },
  ),
  reassignWords: op(
    fc.tuple(
      fc.constantFrom("BigUint64Array(1)", "Uint8Array(8)", "shared-small", "detached", "null"),
      arrSpec,
    ),
    (c, [w, a]) => {
      const rec = new LatencyRecorder();
      const words = w === "BigUint64Array(1)"
        ? new BigUint64Array(1)
        : w === "Uint8Array(8)"
        ? new Uint8Array(8)
        : w === "shared-small"
        ? new BigUint64Array(new SharedArrayBuffer(64))
        : w === "detached"
        ? (() => {
          const b = new ArrayBuffer(LatencyLayout.BYTES);
          const x = new BigUint64Array(b);
          structuredClone(b, { transfer: [b] });
          return x;
        })()
        : null;
      c.assign(rec, "words", words);
      const arr = c.array(a, "record after rec.words reassigned");
      const n = Math.min(trueLength(arr), 256);
      c.call(`rec.recordBatch after rec.words = ${w}`, () => rec.recordBatch(U(arr), n));
      c.call(`rec.recordBatchAt after rec.words = ${w}`, () => rec.recordBatchAt(U(arr), n, 1e9));
      c.call(`rec.count after rec.words = ${w}`, () => rec.count);
    },
  ),
  recordRuns: op(fc.tuple(arrSpec, arrSpec, anyValue, maybe(anyValue)), (c, [v, n, runs, sk]) => {
    const rec = new LatencyRecorder();
    const vals = c.array(v, "recordRuns vals");
    const counts = c.array(n, "recordRuns counts");
    c.call(
      `rec.recordRuns(${fmt(vals)}, ${fmt(counts)}, ${fmt(runs)}, ${fmt(sk)})`,
      () => rec.recordRuns(U(vals), U(counts), U(runs), U(sk)),
    );
    c.call("rec.summary() after recordRuns", () => rec.summary());
  }),
  fromBuckets: op(arrSpec, (c, a) => {
    const arr = c.array(a, "histogramFromBuckets");
    const buf = ArrayBuffer.isView(arr) ? arr.buffer : arr;
    c.call(
      `histogramFromBuckets(${fmt(buf)})`,
      () => histogramFromBuckets(U(buf), newLatencyHistogram()),
    );
  }),
};

/** Source group: GeneratorSource, QueueSource, sourceFromSpec. */
export const sourceOps: Group = {
  generator: op(
    fc.tuple(
      fc.record({
        pool: fc.oneof(fc.constantFrom("main", "closed"), anyValue),
        frameSize: maybe(anyValue),
        flows: maybe(anyValue),
        rate: maybe(anyValue),
        limit: maybe(anyValue),
      }),
      arrSpec,
      anyValue,
      anyNumber,
    ),
    (c, [s, a, max, now]) => {
      const pool = s.pool === "main" ? c.pool.handle : s.pool === "closed"
        ? (() => {
          const p = c.newPool({ frames: 4, frameSize: 128, headroom: 64 });
          p.close();
          return p.handle;
        })()
        : s.pool;
      const spec = { kind: "generator" as const, ...s, pool: U(pool) };
      const g = c.call(
        `new GeneratorSource(${JSON.stringify(spec, (_k, v) => fmt(v))})`,
        () => new GeneratorSource(U(spec)),
      );
      if (!g) return;
      const arr = c.array(a, "generator.poll");
      const n = c.call(
        `gen.poll(${fmt(arr)}, ${fmt(max)}, ${fmt(now)})`,
        () => g.poll(U(arr), U(max), now),
      );
      if (typeof n === "number" && n > 0 && ArrayBuffer.isView(arr)) {
        const u = new Uint32Array(arr.buffer, arr.byteOffset, Math.floor(arr.byteLength / 4));
        c.receive(u, n);
        if (n > u.length) {
          c.find("out-of-bounds", `generator.poll delivered ${n} refs into ${u.length} words`);
        }
      }
      c.call(`gen.readyAtNs(${fmt(now)})`, () => g.readyAtNs(now));
      c.call("gen.close()", () => g.close());
    },
  ),
  queue: op(
    fc.tuple(
      fc.record({
        device: fc.oneof(fc.constantFrom("main", "closed"), anyValue),
        queue: fc.oneof(fc.constant(0), anyValue),
        ingress: maybe(anyValue),
      }),
      arrSpec,
      countSpec,
      maybe(fc.integer({ min: -1, max: 20 })),
    ),
    async (c, [s, a, max, t]) => {
      const device = s.device === "main"
        ? c.dev.handle
        : s.device === "closed"
        ? pickDev(c, "closed").handle
        : s.device;
      const spec = { kind: "queue" as const, ...s, device: U(device) };
      const q = c.call(
        `new QueueSource(${JSON.stringify(spec, (_k, v) => fmt(v))})`,
        () => new QueueSource(U(spec)),
      );
      if (!q) return;
      const arr = c.array(a, "queueSource.poll");
      const m = resolveCount(max === "default" ? "len" : max, arr);
      const n = c.call(`queueSource.poll(${fmt(arr)}, ${fmt(m)})`, () => q.poll(U(arr), U(m)));
      if (typeof n === "number" && n > 0 && ArrayBuffer.isView(arr)) {
        const u = new Uint32Array(arr.buffer, arr.byteOffset, Math.floor(arr.byteLength / 4));
        c.receive(u, n);
        if (n > u.length) {
          c.find("out-of-bounds", `queueSource.poll delivered ${n} refs into ${u.length} words`);
        }
      }
      if (t !== undefined) {
        const tm = t < 0 ? 5 : t;
        await c.callAsync(`queueSource.wait(${tm})`, () => q.wait(tm));
      }
      c.call("queueSource.wake()", () => q.wake());
      c.call("queueSource.close()", () => q.close());
    },
  ),
  fromSpec: op(
    fc.tuple(fc.constantFrom("generator", "queue", "nope", ""), anyValue, anyValue),
    (c, [kind, x, cpu]) => {
      const spec = kind === "generator" ? { kind, pool: x } : { kind, device: x, queue: x };
      c.call(
        `sourceFromSpec(${JSON.stringify(spec, (_k, v) => fmt(v))}, ${fmt(cpu)})`,
        () => sourceFromSpec(U(spec), U(cpu)),
      );
    },
  ),
};

/** A source that lies: returns hostile counts, refs it does not hold. */
function lyingSource(_c: Case, n: unknown, fill: number[]) {
  return {
    name: "lying",
    ingress: 0,
    poll(refs: Uint32Array) {
      for (let i = 0; i < fill.length && i < refs.length; i++) refs[i] = fill[i];
      return n as number;
    },
    readyAtNs: () => 0,
    close() {},
  };
}

/** Poll-loop group: PollLoop, programs, PASS device. */
export const pollLoopOps: Group = {
  loop: op(
    fc.record({
      source: fc.constantFrom("generator", "queue", "lying"),
      lie: anyValue,
      program: fc.constantFrom("forward", "drop", "reflect", "random", "scribble"),
      verdicts: fc.array(
        fc.oneof(fc.nat(6), fc.nat(0xffffffff), fc.nat(0xffffff).map((t) => redirect(t))),
        { minLength: 1, maxLength: 8 },
      ),
      targets: fc.array(fc.tuple(targetPick, anyValue), { maxLength: 4 }),
      readers: fc.array(
        fc.record({
          device: fc.oneof(fc.constant("main"), anyValue),
          queue: fc.oneof(fc.nat(2), anyValue),
        }),
        { maxLength: 3 },
      ),
      pass: fc.constantFrom("none", "dev", "closed", "fake"),
      bulk: maybe(anyValue),
      stageMode: maybe(fc.constantFrom("cycle", "target")),
      budget: maybe(fc.oneof(fc.integer({ min: 1, max: 300 }), anyValue)),
      deadlineNs: maybe(anyValue),
      counters: maybe(fc.constantFrom("small", "shared", "big")),
      cpu: maybe(anyValue),
      cycles: fc.integer({ min: 1, max: 4 }),
    }),
    (c, o) => {
      const fill = c.held.splice(0, 8);
      const src = o.source === "generator"
        ? new GeneratorSource({ kind: "generator", pool: c.pool.handle, limit: 100 })
        : o.source === "queue"
        ? new QueueSource({ kind: "queue", device: c.dev.handle, queue: 0, ingress: 0 })
        : lyingSource(c, o.lie, fill);
      if (o.source !== "lying") c.held.push(...fill);
      const vs = o.verdicts;
      const program = o.program === "forward"
        ? forward(0)
        : o.program === "drop"
        ? drop()
        : o.program === "reflect"
        ? reflect()
        : (b: { refs: Uint32Array; count: number; verdicts: Uint32Array }) => {
          c.receive(b.refs, b.count); // the program is the caller: it sees these frames
          for (let i = 0; i < b.count; i++) b.verdicts[i] = vs[i % vs.length];
          if (o.program === "scribble") {
            U(b).count = vs[0];
            b.refs[0] = vs[1 % vs.length];
          }
        };
      const targets = o.targets.map(([w, h]) => pickTarget(c, w, h));
      const readers = o.readers.map((r) => ({
        device: r.device === "main" ? c.dev.handle : r.device,
        queue: r.queue,
      }));
      const pass = o.pass === "dev"
        ? pickDev(c, "fresh")
        : o.pass === "closed"
        ? pickDev(c, "closed")
        : o.pass === "fake"
        ? { handle: 0xffffffff }
        : undefined;
      const counters = o.counters === "small"
        ? new Float64Array(4)
        : o.counters === "shared"
        ? new Float64Array(new SharedArrayBuffer(8 * LoopCounter.COUNT))
        : o.counters === "big"
        ? new Float64Array(64)
        : undefined;
      const loop = c.call(
        `new PollLoop(${JSON.stringify({ ...o, verdicts: undefined }, (_k, v) => fmt(v))})`,
        () =>
          new PollLoop(U({
            sources: [src],
            program,
            targets,
            readers,
            pass,
            bulk: o.bulk,
            stageMode: o.stageMode,
            budget: o.budget,
            deadlineNs: o.deadlineNs,
            counters,
            cpu: o.cpu,
          })),
      );
      if (!loop) {
        if (o.source === "lying") c.held.push(...fill);
        return;
      }
      for (let k = 0; k < o.cycles; k++) {
        if (!c.call(`loop.cycle() #${k}`, () => (loop.cycle(), true))) break;
      }
      c.call("loop.readOnly()", () => loop.readOnly());
      c.call("loop.close()", () => loop.close());
      // Verdicts the program may write: every one is handled.
      void Verdict;
    },
  ),
};
