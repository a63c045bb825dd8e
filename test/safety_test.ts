/**
 * The FFI boundary as a hostile caller meets it: one spec test per class of
 * defect the safety review found. Each asserts the typed error AND that
 * nothing happened besides it: no frame taken, lost or touched, no other
 * pool's bytes changed.
 */
import assert from "assert";
import {
  Batch,
  BulkQueues,
  Device,
  FramePool,
  GeneratorSource,
  LatencyRecorder,
  PollLoop,
  QueueSource,
  Verdict,
} from "../mod.ts";
import { openPools } from "../dataplane/pool.ts";
import { library } from "../ffi/lib.ts";
import { BT_MAX_FRAME_SIZE } from "../ffi/abi.ts";
import { accounted, assertCode, withDevice } from "./helpers.ts";
import type { Source } from "../dataplane/source.ts";

// --- 1. counts are checked against the array they index -----------------

Deno.test(
  "counts: a generator's poll refuses a max larger than its refs array, taking nothing",
  accounted(() => {
    using pool = new FramePool({ frames: 64 });
    const gen = new GeneratorSource({ kind: "generator", pool: pool.handle });
    assertCode(() => gen.poll(new Uint32Array(4), 64, 0), "EINVAL", "count=64 does not fit");
    assert.equal(pool.stats().free, 64);
  }),
);

Deno.test(
  "counts: a queue source's poll refuses a max larger than its refs array",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      dev.xmit(frames(8));
      const src = new QueueSource({ kind: "queue", device: dev.handle, queue: 0 });
      assertCode(() => src.poll(new Uint32Array(2), 8), "EINVAL", "does not fit");
      assert.equal(dev.stats().queued, 8, "nothing was read");
    })
  ),
);

Deno.test(
  "counts: a latency recorder refuses a count past its refs array",
  accounted(() => {
    const rec = new LatencyRecorder();
    assertCode(() => rec.recordBatch(new Uint32Array(2), 3), "EINVAL", "does not fit");
    assertCode(() => rec.recordBatchAt(new Uint32Array(2), NaN, 1), "EINVAL", "whole number");
    assertCode(
      () => rec.recordRuns(new Float64Array(1), new Uint32Array(4), 2),
      "EINVAL",
      "does not fit",
    );
    assert.equal(rec.count, 0);
  }),
);

Deno.test(
  "counts: a source that claims more frames than its poll allowed stops the loop with EINVAL, no frame lost",
  accounted(() =>
    withDevice({}, ({ dev, pool }) => {
      const liar: Source = {
        name: "liar",
        ingress: -1,
        poll: () => 1e6,
        readyAtNs: () => 0,
        close() {},
      };
      const loop = new PollLoop({
        sources: [liar],
        program: () => {},
        targets: [dev],
        latency: false,
      });
      assertCode(() => loop.cycle(), "EINVAL", "returned 1000000 frames from a poll of at most");
      loop.close();
      assert.equal(pool.stats().free, pool.frames);
    })
  ),
);

// --- 2. element types are checked exactly --------------------------------

Deno.test(
  "types: arrays of the wrong element type are refused by name, before any call",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(4);
      const wrong: unknown[] = [
        new Uint8Array(64),
        new Uint16Array(64),
        new Int32Array(64),
        new Float64Array(64),
        new BigUint64Array(64),
        [1, 2, 3],
        new DataView(new ArrayBuffer(64)),
        null,
      ];
      for (const w of wrong) {
        const a = w as Uint32Array;
        assertCode(() => pool.alloc(a, 4), "EINVAL", "not a Uint32Array");
        assertCode(() => pool.free(a, 1), "EINVAL", "not a Uint32Array");
        assertCode(() => dev.xmit(a, { count: 1 }), "EINVAL", "not a Uint32Array");
        assertCode(() => dev.queue(0).unread(a, 1), "EINVAL", "not a Uint32Array");
        assertCode(
          () => dev.xmitCopy(new Uint8Array(4), a, { count: 1 }),
          "EINVAL",
          "not a Uint32Array",
        );
      }
      assertCode(() => dev.xmitCopy([1, 2] as never, Uint32Array.of(2)), "EINVAL", "Uint8Array");
      assertCode(() => pool.write(refs[0], new Uint16Array(4) as never), "EINVAL", "Uint8Array");
      assert.equal(pool.stats().held, 4, "no frame moved");
      return refs;
    })
  ),
);

Deno.test(
  "types: a Uint32Array that lies about its length is measured by the engine, not asked",
  accounted(() =>
    withDevice({}, ({ pool, dev }) => {
      class Liar extends Uint32Array {
        override get length(): number {
          return 1000;
        }
      }
      const liar = new Liar(2);
      assert.equal(pool.alloc(liar), 2, "the default count is the true length");
      assertCode(() => dev.xmit(liar, { count: 3 }), "EINVAL", "does not fit an array of 2");
      const own = new Uint32Array(2);
      Object.defineProperty(own, "length", { value: 1000 });
      assertCode(() => pool.alloc(own, 3), "EINVAL", "does not fit an array of 2");
      pool.free(liar, 2);
      assert.equal(pool.stats().free, pool.frames);
    })
  ),
);

Deno.test(
  "types: detached and shared buffers are measured as they are now",
  accounted(() =>
    withDevice({}, ({ pool }) => {
      const buf = new ArrayBuffer(16);
      const refs = new Uint32Array(buf);
      structuredClone(buf, { transfer: [buf] }); // detaches
      assertCode(() => pool.alloc(refs, 4), "EINVAL", "does not fit an array of 0");
      const shared = new Uint32Array(new SharedArrayBuffer(16));
      assert.equal(pool.alloc(shared), 4);
      pool.free(shared);
    })
  ),
);

// --- 3. readonly is a runtime guarantee -----------------------------------

Deno.test(
  "fields: a batch's refs and count cannot be turned against the reader",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      dev.xmit(frames(8));
      const batch = new Batch(16);
      assert.throws(() => {
        (batch as { refs: Uint32Array }).refs = new Uint32Array(1);
      }, TypeError);
      // A redefined property misleads only its reader: reads land in the
      // batch's own array.
      Object.defineProperty(batch, "refs", { value: new Uint32Array(1) });
      assert.equal(dev.queue(0).poll(batch), 8);
      assertCode(() => (batch.count = 1e6), "EINVAL", "batch count");
      assertCode(() => (batch.count = 2.5), "EINVAL", "batch count");
      assert.equal(batch.count, 8);
      batch.release();
    })
  ),
);

Deno.test(
  "fields: bulk queues' pending count and a recorder's words cannot be reassigned",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const bq = new BulkQueues([dev], { mode: "cycle", cycleCapacity: 8 });
      assert.throws(() => {
        (bq as { pending: number }).pending = 1e6;
      }, TypeError);
      const refs = frames(2);
      bq.enqueue(refs[0], 0, 0);
      bq.enqueue(refs[1], 0, 0);
      bq.flush();
      assert.equal(dev.stats().txPackets, 2);
      const rec = new LatencyRecorder();
      assert.throws(() => {
        (rec as { words: BigUint64Array }).words = new BigUint64Array(1);
      }, TypeError);
      assert.throws(() => {
        (rec as { shared: SharedArrayBuffer }).shared = new SharedArrayBuffer(8);
      }, TypeError);
    })
  ),
);

Deno.test(
  "fields: a program that reassigns its batch's arrays changes no frame the loop moves",
  accounted(() =>
    withDevice({}, ({ dev, pool }) => {
      const gen = new GeneratorSource({ kind: "generator", pool: pool.handle, limit: 16 });
      const loop = new PollLoop({
        sources: [gen],
        program: (b) => {
          (b as { refs: Uint32Array }).refs = new Uint32Array(1);
          (b as { verdicts: Uint32Array }).verdicts = new Uint32Array(1);
          b.count = 1e9;
          b.ingress = 1e9;
        },
        targets: [dev],
        latency: false,
      });
      loop.cycle();
      loop.close();
      assert.equal(pool.stats().free, pool.frames, "every frame dropped and returned");
    })
  ),
);

Deno.test(
  "fields: a device's cpu is checked when it is set",
  accounted(() =>
    withDevice({}, ({ dev }) => {
      for (const cpu of [NaN, 1.5, -2, 2 ** 31, Infinity]) {
        assertCode(() => (dev.cpu = cpu), "EINVAL", "cpu=");
      }
      dev.cpu = 3;
      assert.equal(dev.cpu, 3);
    })
  ),
);

// --- 4. numbers that are NaN, fractional, infinite or wrap -----------------

Deno.test(
  "numbers: adjustHead, setLength, setTimestamp and setMark refuse NaN, fractions and infinities",
  accounted(() =>
    withDevice({}, ({ pool, frames }) => {
      const [ref] = frames(1, 100);
      const off = pool.dataOffset(ref);
      for (const bad of [NaN, 1.7, Infinity, -Infinity]) {
        assertCode(() => pool.adjustHead(ref, bad), "EINVAL", "adjustHead");
        assertCode(() => pool.setLength(ref, bad), "EINVAL", "length");
        assertCode(() => pool.setTimestamp(ref, bad), "EINVAL", "timestamp");
        assertCode(() => pool.setMark(ref, bad), "EINVAL", "mark");
      }
      assertCode(() => pool.setTimestamp(ref, -1), "EINVAL", "timestamp");
      assertCode(() => pool.setMark(ref, 2 ** 32), "EINVAL", "mark");
      assert.equal(pool.dataOffset(ref), off, "offset unchanged");
      assert.equal(pool.length(ref), 100, "length unchanged");
      return Uint32Array.of(ref);
    })
  ),
);

Deno.test(
  "numbers: a data offset reaches the end of the largest frame without wrapping",
  accounted(() => {
    using pool = new FramePool({ frames: 2, frameSize: BT_MAX_FRAME_SIZE });
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    const ref = refs[0];
    const cap = pool.capacity(ref);
    pool.setLength(ref, cap); // data runs to the frame's end
    assertCode(() => pool.adjustHead(ref, cap + 1), "EINVAL", "past the");
    pool.adjustHead(ref, cap - 1); // the last byte alone, past 64 KiB
    assert.equal(pool.dataOffset(ref) - pool.frameOffset(ref), BT_MAX_FRAME_SIZE - 1);
    assert.equal(pool.length(ref), 1);
    pool.free(refs);
  }),
);

Deno.test(
  "numbers: option values that are NaN, fractional or huge are refused by name",
  accounted(() => {
    using pool = new FramePool({ frames: 8 });
    assertCode(() => new Device({ pool, cpu: NaN }), "EINVAL", "cpu=NaN");
    assertCode(() => new Device({ pool, queues: 1.5 }), "EINVAL", "queues");
    assertCode(() => new Batch(NaN), "EINVAL", "batch capacity");
    assertCode(() => new FramePool({ frames: 1e12 }), "EINVAL", "frames");
    assertCode(() => new BulkQueues([], { cpu: 1e12 }), "EINVAL", "cpu");
    assertCode(
      () => new GeneratorSource({ kind: "generator", pool: pool.handle, limit: NaN }),
      "EINVAL",
      "limit",
    );
    assertCode(() => FramePool.attach(NaN), "EINVAL", "pool handle");
    assertCode(() => Device.attach(-1), "EINVAL", "device handle");
    assert.equal(
      openPools().filter((p) => p.handle === pool.handle).length,
      1,
      "a refused generator left no attached pool object behind",
    );
  }),
);

// --- 5. bad refs and stale objects in accessors ----------------------------

Deno.test(
  "accessors: a ref past the pool or of another pool touches no frame",
  accounted(() => {
    using a = new FramePool({ frames: 4 });
    using b = new FramePool({ frames: 4 });
    const refs = new Uint32Array(1);
    a.alloc(refs);
    const before = a.bytes.slice(0, a.frameSize);
    const past = (a.slot << 24) | a.frames;
    for (const ref of [past, (a.slot << 24) | 0xffffff, refs[0] + 2 ** 32, NaN, -1, 0.5]) {
      assertCode(() => a.write(ref, new Uint8Array(8).fill(0xee)), "EINVAL", "frame ref");
      assertCode(() => a.setLength(ref, 8), "EINVAL", "frame ref");
      assertCode(() => a.length(ref), "EINVAL", "frame ref");
    }
    assertCode(() => b.write(refs[0], new Uint8Array(8)), "EINVAL", "not this pool");
    assert.deepEqual(
      a.bytes.slice(0, a.frameSize),
      before,
      "frame 0's bytes and metadata unchanged",
    );
    a.free(refs);
  }),
);

Deno.test(
  "accessors: an attached pool whose owner closed refuses every access, even after its slot is reused",
  accounted(() => {
    const owner = new FramePool({ frames: 4 });
    const attached = FramePool.attach(owner.handle); // as another Worker would
    const refs = new Uint32Array(1);
    owner.alloc(refs);
    const ref = refs[0];
    owner.free(refs);
    owner.close();
    assertCode(() => attached.length(ref), "ENXIO", "not open");
    // Pools are placed next-fit: create until one lands in the old slot.
    const made: FramePool[] = [];
    let reuse: FramePool | undefined;
    for (let i = 0; i < 255 && !reuse; i++) {
      const p = new FramePool({ frames: 4 });
      if (p.slot === attached.slot) reuse = p;
      else made.push(p);
    }
    assert.ok(reuse, "a new pool reused the slot");
    const fresh = new Uint32Array(4);
    reuse.alloc(fresh);
    assert.ok(fresh.includes(ref), "the old ref names a frame of the new pool");
    const before = reuse.bytes.slice(0, reuse.frameSize * 4);
    assertCode(() => attached.write(ref, new Uint8Array(8).fill(0xee)), "ENXIO", "not open");
    assertCode(() => attached.setMark(ref, 7), "ENXIO", "not open");
    assertCode(() => attached.alloc(new Uint32Array(1)), "ENXIO", "not open");
    assert.deepEqual(reuse.bytes.slice(0, reuse.frameSize * 4), before, "new pool untouched");
    reuse.free(fresh);
    reuse.close();
    attached.close();
    for (const p of made) p.close();
  }),
);

Deno.test(
  "accessors: a frame whose metadata was scribbled on is refused, not written through",
  accounted(() =>
    withDevice({}, ({ pool, frames }) => {
      const [ref] = frames(1);
      const f = pool.frameOffset(ref);
      pool.view.setUint16(f + 8, 4, true); // data offset inside the metadata
      assertCode(() => pool.write(ref, new Uint8Array(4)), "EINVAL", "data offset 4");
      assertCode(() => pool.data(ref), "EINVAL", "data offset 4");
      assert.equal(pool.view.getUint32(f, true), 0x62746672, "magic intact");
      pool.view.setUint16(f + 8, pool.headroom, true);
      pool.view.setUint32(f + 12, 0xffffffff, true); // length past the end
      assertCode(() => pool.data(ref), "EINVAL", "past its end");
      pool.setLength(ref, 0);
      return Uint32Array.of(ref);
    })
  ),
);

// --- 6. ownership -----------------------------------------------------------

Deno.test(
  "ownership: a device that created its pool destroys it on close",
  accounted(() => {
    const before = openPools().length;
    for (let i = 0; i < 3; i++) {
      const dev = new Device({ queues: 1 });
      const pool = dev.pool;
      dev.close();
      assert.ok(pool.closed, `cycle ${i}: the device's own pool object was closed`);
      assert.ok(library().bt_pool_lookup(pool.slot) < 0, `cycle ${i}: its slot is free`);
    }
    assert.equal(openPools().length, before, "no pool object left open");
  }),
);

Deno.test(
  "ownership: a device given a pool leaves it open on close",
  accounted(() => {
    using pool = new FramePool({ frames: 8 });
    const dev = new Device({ pool });
    dev.close();
    assert.equal(pool.closed, false);
    assert.equal(dev.pool, pool);
  }),
);

// A redirect verdict is a number: programs may write anything.
Deno.test(
  "verdicts: any number a program writes is a verdict or an invalid count, never a lost frame",
  accounted(() =>
    withDevice({}, ({ dev, pool }) => {
      const gen = new GeneratorSource({ kind: "generator", pool: pool.handle, limit: 64 });
      const loop = new PollLoop({
        sources: [gen],
        program: (b) => {
          const odd = [NaN, -1, 2 ** 40, 1.5, Verdict.PASS, 0xffffffff, Verdict.BROADCAST];
          for (let i = 0; i < b.count; i++) b.verdicts[i] = odd[i % odd.length];
        },
        targets: [dev],
        latency: false,
      });
      loop.cycle();
      loop.close();
      const s = pool.stats();
      assert.equal(s.free + s.queued, pool.frames, "every frame queued or back in the pool");
      assert.ok(s.queued > 0, "PASS and BROADCAST frames were sent");
    })
  ),
);
