/**
 * The operations of the FFI boundary fuzzer, by group: each is an
 * arbitrary of hostile arguments and a function that makes the call on a
 * {@linkcode Case}. A property runs up to three random operations of its
 * group, then its own with hostile arguments.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import { Batch, describeRef, Device, DeviceQueue, FramePool, freeFrames } from "../../../mod.ts";
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

export const op = <A>(
  arb: fc.Arbitrary<A>,
  run: (c: Case, a: A) => void | Promise<void>,
): Op<A> => ({
  arb,
  run,
});
// deno-lint-ignore no-explicit-any
export const U = (v: unknown) => v as any;

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
  "vnetFlags",
  "gsoType",
  "gsoSize",
  "headerLength",
  "csumStart",
  "csumOffset",
  "clearOffload",
] as const;
const SETTERS = new Set([
  "setLength",
  "adjustHead",
  "setTimestamp",
  "setMark",
  "write",
  "clearOffload",
]);

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
  offload: op(
    fc.tuple(
      poolPick,
      fc.constantFrom("setGso", "setPartialChecksum"),
      refSpec,
      fc.oneof(fc.nat(200), anyNumber),
      fc.oneof(fc.nat(200), anyNumber),
      fc.oneof(fc.nat(200), anyNumber),
    ),
    async (c, [w, name, r, a, b, d]) => {
      const p = (await pickPool(c, w))!;
      const ref = c.ref(r);
      const label = `pool(${w}).${name}(0x${(ref >>> 0).toString(16)}, ${fmt(a)}, ${fmt(b)}, ${
        fmt(d)
      })`;
      const call = () =>
        name === "setGso" ? p.setGso(ref, a, b, d) : p.setPartialChecksum(ref, a, b);
      if (
        !isHeldOf(p, ref) && (p.closed || ref >>> 24 !== p.slot || (ref & 0xffffff) >= p.frames)
      ) {
        c.refuse(label, call);
        return;
      }
      let threw = true;
      c.call(label, () => {
        call();
        threw = false;
      });
      if (threw) return;
      // A setter that returned left offsets inside the data.
      const len = p.length(ref);
      const end = name === "setGso"
        ? p.headerLength(ref)
        : p.csumStart(ref) + p.csumOffset(ref) + 2;
      if (end > len) c.find("unchecked", `${label} returned with an offset past ${len} bytes`);
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
export function pickDev(c: Case, w: string): Device {
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
