/**
 * The operations of the FFI boundary fuzzer, by group: each is an
 * arbitrary of hostile arguments and a function that makes the call on a
 * {@linkcode Case}. A property runs up to three random operations of its
 * group, then its own with hostile arguments.
 *
 * @module
 */
import fc from "fast-check";
import {
  Batch,
  BulkQueues,
  describeRef,
  Device,
  DeviceQueue,
  drop,
  forward,
  FramePool,
  freeFrames,
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

/** One operation: hostile arguments and the call. */
export interface Op<A = unknown> {
  arb: fc.Arbitrary<A>;
  run(c: Case, a: A): void | Promise<void>;
}

// deno-lint-ignore no-explicit-any
type AnyOp = Op<any>;
/** A group: its operations by name. */
export type Group = Record<string, AnyOp>;

const op = <A>(arb: fc.Arbitrary<A>, run: (c: Case, a: A) => void | Promise<void>): Op<A> => ({
  arb,
  run,
});
// deno-lint-ignore no-explicit-any
const U = (v: unknown) => v as any;

/** The pool a spec picks: the main pool, the second, a closed one, an attached one. */
const poolPick = fc.constantFrom("main", "other", "closed", "attached", "reused");
async function pickPool(c: Case, which: string): Promise<FramePool | undefined> {
  switch (which) {
    case "other":
      return c.other;
    case "closed": {
      const p = c.newPool({ frames: 8, frameSize: 128, headroom: 64 });
      p.close();
      return p;
    }
    case "attached":
      return c.call("FramePool.attach(real handle)", () => FramePool.attach(c.pool.handle));
    case "reused":
      return await reusedSlot(c);
  }
  return c.pool;
}

/**
 * An attached pool whose owner closed and whose slot a new pool took (the
 * slots are handed out next-fit: make pools until the slot comes round).
 */
function reusedSlot(c: Case): FramePool | undefined {
  const owner = c.newPool({ frames: 8, frameSize: 128, headroom: 64 });
  const attached = FramePool.attach(owner.handle);
  owner.close();
  for (let i = 0; i < 300; i++) {
    const p = new FramePool({ frames: 16, frameSize: 128, headroom: 64 });
    if (p.slot === owner.slot) {
      c.pools.push(p);
      // Give the new owner a held frame the stale object must not reach.
      const r = new Uint32Array(2);
      p.alloc(r);
      c.receive(r, 2);
      return attached;
    }
    p.close();
  }
  return attached;
}

/** Accessors that read or write a frame's memory. */
const ACCESSORS = [
  "dataOffset",
  "length",
  "capacity",
  "setLength",
  "adjustHead",
  "timestamp",
  "setTimestamp",
  "mark",
  "setMark",
  "vnetLength",
  "queueOf",
  "data",
  "write",
] as const;
const SETTERS = new Set(["setLength", "adjustHead", "setTimestamp", "setMark", "write"]);

function isHeldOf(p: FramePool, ref: unknown): boolean {
  if (typeof ref !== "number" || !Number.isInteger(ref) || ref < 0 || ref > 0xffffffff) {
    return false;
  }
  if (p.closed || ref >>> 24 !== p.slot || (ref & 0xffffff) >= p.frames) return false;
  return p.bytes[(ref & 0xffffff) * p.frameSize + 30] === 1;
}

/** Pool group: FramePool, freeFrames, describeRef. */
export const poolOps: Group = {
  ctor: op(
    fc.record({ frames: maybe(anyValue), frameSize: maybe(anyValue), headroom: maybe(anyValue) }),
    (c, o) => {
      const p = c.call(
        `new FramePool(${JSON.stringify(o, (_k, v) => fmt(v))})`,
        () => new FramePool(U(o)),
      );
      if (p) c.pools.push(p);
    },
  ),
  alloc: op(fc.tuple(poolPick, arrSpec, countSpec), async (c, [w, a, n]) => {
    const p = await pickPool(c, w);
    const arr = c.array(a, `alloc(${w})`);
    const count = resolveCount(n, arr);
    const got = c.call(
      `pool(${w}).alloc(${fmt(arr)}, ${count})`,
      () => count === undefined ? p!.alloc(U(arr)) : p!.alloc(U(arr), count),
    );
    if (typeof got === "number" && got > 0) {
      // What was handed out, read through the intrinsic view of the memory.
      if (ArrayBuffer.isView(arr) && !(arr instanceof DataView) && !U(arr.buffer).detached) {
        const u = new Uint32Array(arr.buffer, arr.byteOffset, Math.floor(arr.byteLength / 4));
        c.receive(u, got);
        if (got > u.length) {
          c.find("out-of-bounds", `alloc handed out ${got} refs into ${u.length} words`);
        }
      } else if (Array.isArray(arr)) c.receive(arr, got);
    }
  }),
  free: op(fc.tuple(poolPick, arrSpec, countSpec), async (c, [w, a, n]) => {
    const p = await pickPool(c, w);
    const arr = c.array(a, `free(${w})`);
    const count = resolveCount(n, arr);
    c.call(
      `pool(${w}).free(${fmt(arr)}, ${count})`,
      () => count === undefined ? p!.free(U(arr)) : p!.free(U(arr), count),
    );
  }),
  freeFrames: op(fc.tuple(arrSpec, countSpec), (c, [a, n]) => {
    const arr = c.array(a, "freeFrames");
    const count = resolveCount(n, arr);
    c.call(
      `freeFrames(${fmt(arr)}, ${count})`,
      () => count === undefined ? freeFrames(U(arr)) : freeFrames(U(arr), count),
    );
  }),
  accessor: op(
    fc.tuple(poolPick, fc.constantFrom(...ACCESSORS), refSpec, anyNumber, fc.nat(300)),
    async (c, [w, name, r, v, wlen]) => {
      const p = (await pickPool(c, w))!;
      const ref = c.ref(r);
      const arg = name === "write" ? new Uint8Array(wlen) : v;
      const label = `pool(${w}).${name}(0x${(ref >>> 0).toString(16)}, ${fmt(arg)})`;
      if (
        !isHeldOf(p, ref) && (p.closed || ref >>> 24 !== p.slot || (ref & 0xffffff) >= p.frames)
      ) {
        // A ref this pool object cannot name (another pool, past the end,
        // a closed pool): reading or writing it reaches memory the caller
        // did not name.
        c.refuse(label, () => U(p)[name](ref, arg));
        return;
      }
      const before = isHeldOf(p, ref);
      let threw = true;
      c.call(label, () => {
        U(p)[name](ref, arg);
        threw = false;
      });
      if (before && !threw && SETTERS.has(name)) {
        // A setter that returned must leave the frame valid.
        const why = describeRefIfBad(ref);
        if (why) c.find("unchecked", `${label} returned but left the frame invalid: ${why}`);
      }
    },
  ),
  attach: op(anyValue, (c, h) => {
    const p = c.call(`FramePool.attach(${fmt(h)})`, () => FramePool.attach(U(h)));
    if (p) {
      c.call("attached.stats()", () => p.stats());
      c.closers.push(() => p.close());
    }
  }),
  of: op(refSpec, (c, r) => {
    const ref = c.ref(r);
    c.call(`FramePool.of(${fmt(ref)})`, () => FramePool.of(ref));
  }),
  describeRef: op(anyValue, (c, v) => {
    c.call(`describeRef(${fmt(v)})`, () => describeRef(U(v)));
  }),
  closedUse: op(fc.constantFrom("stats", "alloc", "free", "close"), (c, m) => {
    const p = c.newPool({ frames: 8, frameSize: 128, headroom: 64 });
    const r = new Uint32Array(2);
    p.alloc(r);
    c.receive(r, 2);
    c.call("close with held frames (EBUSY)", () => p.close());
    p.free(r);
    p.close();
    c.call(`closed pool.${m}()`, () => U(p)[m](new Uint32Array(2)));
  }),
  reassign: op(
    fc.tuple(
      fc.constantFrom("handle", "slot", "frames", "frameSize", "headroom", "bytes"),
      anyValue,
    ),
    (c, [field, v]) => {
      const p = c.newPool({ frames: 16, frameSize: 128, headroom: 64 });
      const r = new Uint32Array(4);
      p.alloc(r);
      c.receive(r, 4);
      c.assign(p, field, field === "bytes" ? new Uint8Array(8) : v);
      c.call("alloc after reassign", () => {
        const x = new Uint32Array(4);
        const n = p.alloc(x);
        c.receive(x, n);
      });
      c.call("setLength after reassign", () => p.setLength(r[0], 64));
      c.call("free after reassign", () => p.free(r));
    },
  ),
};

function describeRefIfBad(ref: number): string | undefined {
  const d = describeRef(ref);
  return /valid now/.test(d) ? undefined : d;
}

/** Options of xmit. */
const xmitOpts = fc.record({
  count: countSpec,
  flush: maybe(fc.oneof(fc.boolean(), anyValue)),
  cpu: maybe(anyValue),
});

const devPick = fc.constantFrom("main", "closed", "attached", "fresh");
function pickDev(c: Case, w: string): Device {
  switch (w) {
    case "closed": {
      const d = c.newDevice({ pool: c.pool, queues: 1, ringSize: 8 });
      d.close();
      return d;
    }
    case "attached":
      return Device.attach(c.dev.handle, 0);
    case "fresh":
      return c.newDevice({ pool: c.pool, queues: 3, ringSize: 4 });
  }
  return c.dev;
}

function xmitArgs(_c: Case, arr: unknown, o: { count: unknown; flush?: unknown; cpu?: unknown }) {
  const count = resolveCount(o.count as never, arr);
  const opts: Record<string, unknown> = {};
  if (count !== undefined) opts.count = count;
  if (o.flush !== undefined) opts.flush = o.flush;
  if (o.cpu !== undefined) opts.cpu = o.cpu;
  return opts;
}

/** Device group: Device. */
export const deviceOps: Group = {
  ctor: op(
    fc.record({
      pool: fc.constantFrom("main", "closed", "none", "fake", "junk"),
      queues: maybe(anyValue),
      ringSize: maybe(anyValue),
      cpu: maybe(anyValue),
    }),
    (c, o) => {
      const pool = o.pool === "main" ? c.pool : o.pool === "closed"
        ? (() => {
          const p = c.newPool({ frames: 4, frameSize: 128, headroom: 64 });
          p.close();
          return p;
        })()
        : o.pool === "fake"
        ? { handle: c.other.handle, closed: false }
        : o.pool === "junk"
        ? 42
        : undefined;
      const d = c.call(
        `new Device({pool: ${o.pool}, queues: ${fmt(o.queues)}, ringSize: ${
          fmt(o.ringSize)
        }, cpu: ${fmt(o.cpu)}})`,
        () => new Device(U({ pool, queues: o.queues, ringSize: o.ringSize, cpu: o.cpu })),
      );
      if (d) c.devices.push(d);
    },
  ),
  xmit: op(fc.tuple(devPick, arrSpec, xmitOpts), (c, [w, a, o]) => {
    const d = pickDev(c, w);
    const arr = c.array(a, "xmit");
    const opts = xmitArgs(c, arr, o);
    c.call(
      `dev(${w}).xmit(${fmt(arr)}, ${JSON.stringify(opts, (_k, v) => fmt(v))})`,
      () => d.xmit(U(arr), U(opts)),
    );
  }),
  xmitOne: op(fc.tuple(devPick, refSpec, xmitOpts), (c, [w, r, o]) => {
    const d = pickDev(c, w);
    const ref = c.ref(r);
    c.call(
      `dev(${w}).xmitOne(${fmt(ref)})`,
      () => d.xmitOne(ref, U({ flush: o.flush, cpu: o.cpu })),
    );
  }),
  xmitCopy: op(fc.tuple(devPick, arrSpec, arrSpec, xmitOpts), (c, [w, a, l, o]) => {
    const d = pickDev(c, w);
    const data = c.array(a, "xmitCopy data");
    const lengths = c.array(l, "xmitCopy lengths");
    const opts = xmitArgs(c, lengths, o);
    c.call(
      `dev(${w}).xmitCopy(${fmt(data)}, ${fmt(lengths)}, count ${fmt(opts.count)})`,
      () => d.xmitCopy(U(data), U(lengths), U(opts)),
    );
  }),
  flush: op(fc.tuple(devPick, anyValue), (c, [w, q]) => {
    const d = pickDev(c, w);
    c.call(`dev(${w}).flush(${fmt(q)})`, () => d.flush(U(q)));
  }),
  queueForCpu: op(fc.tuple(devPick, anyValue), (c, [w, cpu]) => {
    const d = pickDev(c, w);
    c.call(`dev(${w}).queueForCpu(${fmt(cpu)})`, () => d.queueForCpu(U(cpu)));
  }),
  queue: op(fc.tuple(devPick, anyValue), (c, [w, i]) => {
    const d = pickDev(c, w);
    c.call(`dev(${w}).queue(${fmt(i)})`, () => d.queue(U(i)));
  }),
  stats: op(devPick, (c, w) => {
    const d = pickDev(c, w);
    c.call(`dev(${w}).stats()`, () => d.stats());
  }),
  attach: op(fc.tuple(anyValue, maybe(anyValue)), (c, [h, cpu]) => {
    const d = c.call(`Device.attach(${fmt(h)}, ${fmt(cpu)})`, () => Device.attach(U(h), U(cpu)));
    if (d) c.call("attached.stats()", () => d.stats());
  }),
  reassignCpu: op(fc.tuple(anyValue, arrSpec), (c, [cpu, a]) => {
    const d = c.newDevice({ pool: c.pool, queues: 2, ringSize: 16 });
    c.assign(d, "cpu", cpu);
    const arr = c.array(a, "xmit after dev.cpu reassigned");
    c.call(`xmit after dev.cpu = ${fmt(cpu)}`, () => d.xmit(U(arr)));
    c.call(`queueForCpu() after dev.cpu = ${fmt(cpu)}`, () => d.queueForCpu());
  }),
  reassignHandle: op(
    fc.tuple(fc.constantFrom("handle", "queues", "pool"), anyValue, arrSpec),
    (c, [f, v, a]) => {
      const d = c.newDevice({ pool: c.pool, queues: 2, ringSize: 16 });
      c.assign(d, f, v);
      const arr = c.array(a, `xmit after dev.${f} reassigned`);
      c.call(`xmit after dev.${f} = ${fmt(v)}`, () => d.xmit(U(arr)));
      c.call(
        `xmitCopy after dev.${f} = ${fmt(v)}`,
        () => d.xmitCopy(new Uint8Array(64), Uint32Array.of(64)),
      );
      c.call(`flush after dev.${f} = ${fmt(v)}`, () => d.flush());
    },
  ),
};

/** A batch argument: real, or with hostile refs/count, or a fake object. */
const batchSpec = fc.record({
  cap: fc.oneof(fc.constant(16), anyValue),
  refs: maybe(arrSpec),
  count: maybe(anyValue),
  fake: fc.boolean(),
});
function makeBatch(c: Case, b: { cap: unknown; refs?: unknown; count?: unknown; fake: boolean }) {
  if (b.fake) {
    return {
      refs: b.refs ? c.array(U(b.refs), "fake batch refs") : new Uint32Array(4),
      count: b.count ?? 0,
      release() {},
    };
  }
  const batch = c.call(`new Batch(${fmt(b.cap)})`, () => new Batch(U(b.cap))) ?? new Batch(16);
  if (b.refs !== undefined) {
    const arr = c.array(U(b.refs), "batch.refs");
    c.assign(batch, "refs", arr);
  }
  if (b.count !== undefined) c.assign(batch, "count", b.count);
  return batch;
}
function receiveBatch(c: Case, b: unknown, n: unknown) {
  const refs = U(b).refs;
  if (typeof n === "number" && n > 0 && ArrayBuffer.isView(refs) && !U(refs).buffer.detached) {
    const u = new Uint32Array(
      U(refs).buffer,
      U(refs).byteOffset,
      Math.floor(U(refs).byteLength / 4),
    );
    c.receive(u, n);
    if (n > u.length) c.find("out-of-bounds", `a read delivered ${n} refs into ${u.length} words`);
  }
}

const qPick = fc.record({ dev: devPick, q: fc.oneof(fc.constant(0), anyValue) });
function pickQueue(c: Case, o: { dev: string; q: unknown }): DeviceQueue {
  const d = pickDev(c, o.dev);
  if (typeof o.q === "number" && Number.isInteger(o.q) && o.q >= 0 && o.q < d.queues && !d.closed) {
    return d.queue(o.q);
  }
  // A queue object with a hostile index, as the (exported) constructor allows;
  // the constructor refuses it (then the call goes to queue 0 of the device).
  return c.call(`new DeviceQueue(${o.dev}, ${fmt(o.q)})`, () => new DeviceQueue(d, U(o.q))) ??
    new DeviceQueue(d, 0);
}

/** Queue group: DeviceQueue. */
export const queueOps: Group = {
  poll: op(fc.tuple(qPick, batchSpec), (c, [q, b]) => {
    const queue = pickQueue(c, q);
    const batch = makeBatch(c, b);
    const n = c.call(`queue(${q.dev}, ${fmt(q.q)}).poll(batch)`, () => queue.poll(U(batch)));
    receiveBatch(c, batch, n);
  }),
  wait: op(fc.tuple(qPick, maybe(anyValue)), async (c, [q, t]) => {
    const queue = pickQueue(c, q);
    // Forever-waits are legal: a signal bounds every wait (and tests abort).
    const tm = typeof t === "number" && t > 50 ? 20 : t;
    await c.callAsync(
      `queue(${q.dev}, ${fmt(q.q)}).wait(${fmt(tm)})`,
      () => queue.wait(U(tm), { signal: AbortSignal.timeout(200) }),
    );
  }),
  frames: op(
    fc.tuple(
      qPick,
      fc.record({ batchSize: maybe(anyValue), sleepMs: maybe(fc.integer({ min: -5, max: 20 })) }),
    ),
    async (c, [q, o]) => {
      const queue = pickQueue(c, q);
      const ac = new AbortController();
      await c.callAsync(
        `queue(${q.dev}, ${fmt(q.q)}).frames(${JSON.stringify(o, (_k, v) => fmt(v))})`,
        async () => {
          const it = queue.frames(U({ ...o, signal: ac.signal, sleepMs: 5 }));
          const t = setTimeout(() => ac.abort(), 30);
          try {
            const r = await it.next();
            if (!r.done) c.receive(r.value.refs, r.value.count);
            await it.return();
          } finally {
            clearTimeout(t);
          }
        },
      );
    },
  ),
  unread: op(fc.tuple(qPick, arrSpec, countSpec), (c, [q, a, n]) => {
    const queue = pickQueue(c, q);
    const arr = c.array(a, "unread");
    const count = resolveCount(n, arr);
    c.call(
      `queue(${q.dev}, ${fmt(q.q)}).unread(${fmt(arr)}, ${count})`,
      () => count === undefined ? queue.unread(U(arr)) : queue.unread(U(arr), count),
    );
  }),
  count: op(qPick, (c, q) => {
    const queue = pickQueue(c, q);
    c.call(`queue(${q.dev}, ${fmt(q.q)}).count()`, () => queue.count());
  }),
  fakeOwner: op(fc.tuple(anyValue, anyValue, batchSpec), (c, [h, i, b]) => {
    const queue = c.call(
      `new DeviceQueue({handle: ${fmt(h)}}, ${fmt(i)})`,
      () => new DeviceQueue(U({ handle: h, assertOpen() {} }), U(i)),
    );
    if (!queue) return;
    const batch = makeBatch(c, b);
    const n = c.call(
      `new DeviceQueue({handle: ${fmt(h)}}, ${fmt(i)}).poll(batch)`,
      () => queue.poll(U(batch)),
    );
    receiveBatch(c, batch, n);
    c.call("fake-owner queue.count()", () => queue.count());
  }),
};

/** Batch group: Batch. */
export const batchOps: Group = {
  ctor: op(anyValue, (c, cap) => {
    c.call(`new Batch(${fmt(cap)})`, () => new Batch(U(cap)));
  }),
  release: op(fc.tuple(batchSpec, fc.boolean()), (c, [b, fill]) => {
    const batch = makeBatch(c, { ...b, fake: false }) as Batch;
    if (fill) {
      const n = c.call("poll into batch", () => c.dev.queue(0).poll(batch));
      receiveBatch(c, batch, n);
      if (b.count !== undefined) c.assign(batch, "count", b.count);
    }
    c.call(
      `batch.release() with count ${fmt(batch.count)} of ${trueLength(batch.refs)}`,
      () => batch.release(),
    );
  }),
  accessors: op(
    fc.tuple(batchSpec, fc.constantFrom("pool", "length", "data", "capacity", "detach"), anyValue),
    (c, [b, m, i]) => {
      const batch = makeBatch(c, { ...b, fake: false }) as Batch;
      const n = c.call("poll into batch", () => c.dev.queue(0).poll(batch));
      receiveBatch(c, batch, n);
      if (m === "capacity") c.call("batch.capacity", () => batch.capacity);
      else c.call(`batch.${m}(${fmt(i)})`, () => U(batch)[m](i));
    },
  ),
};

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
