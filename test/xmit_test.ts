import assert from "assert";
import { Batch, Device, FramePool, MAX_BULK } from "../mod.ts";
import { assertCode, withDevice } from "./helpers.ts";

Deno.test("xmit: a bulk that fits is accepted whole and counted once per lock", () =>
  withDevice({}, ({ dev, frames }) => {
    const refs = frames(16);
    assert.equal(dev.xmit(refs), 16);
    const s = dev.stats();
    assert.deepEqual(
      [s.txPackets, s.txBytes, s.xmitCalls, s.lockAcquisitions, s.queued],
      [16, 16 * 64, 1, 1, 16],
    );
  }));

Deno.test("xmit: a full ring accepts a prefix; the rest return to the pool as drops", () =>
  withDevice({ device: { ringSize: 8 } }, ({ pool, dev, frames }) => {
    const refs = frames(12);
    assert.equal(dev.xmit(refs), 8);
    const s = dev.stats();
    assert.equal(s.txDropped, 4);
    assert.equal(s.queued, 8);
    // the accepted prefix is refs[0..8): exactly those are queued
    const batch = new Batch(16);
    dev.queue(0).poll(batch);
    assert.deepEqual([...batch.refs.subarray(0, batch.count)], [...refs.subarray(0, 8)]);
    batch.release();
    assert.equal(pool.stats().free, pool.frames);
  }));

Deno.test("xmit: single-packet mode sends one frame per call and per lock", () =>
  withDevice({}, ({ dev, frames }) => {
    const refs = frames(5);
    for (const r of refs) assert.equal(dev.xmitOne(r), true);
    const s = dev.stats();
    assert.deepEqual([s.txPackets, s.xmitCalls, s.lockAcquisitions], [5, 5, 5]);
  }));

Deno.test("xmit: a frame that is not held fails with EINVAL naming it, and nothing is taken", () =>
  withDevice({}, ({ pool, dev, frames }) => {
    const refs = frames(4);
    pool.free(refs.subarray(2, 3)); // refs[2] is now free: a bug in the caller
    assertCode(() => dev.xmit(refs), "EINVAL", "frames[2]");
    assert.equal(dev.stats().queued, 0);
    assert.equal(pool.stats().held, 3, "the other frames stay with the caller");
    return Uint32Array.of(refs[0], refs[1], refs[3]);
  }));

Deno.test("xmit: a length past the frame fails with EINVAL and nothing is taken", () =>
  withDevice({}, ({ pool, dev, frames }) => {
    const refs = frames(2);
    // Write the metadata directly, as a buggy program could.
    pool.view.setUint32(pool.frameOffset(refs[1]) + 12, 5000, true);
    assertCode(() => dev.xmit(refs), "EINVAL", "runs past the end");
    pool.setLength(refs[1], 10);
    return refs;
  }));

Deno.test("xmit: more than 256 frames in one call fails with E2BIG", () =>
  withDevice({ pool: { frames: 300 } }, ({ dev, frames }) => {
    const refs = frames(MAX_BULK + 1);
    assertCode(() => dev.xmit(refs), "E2BIG", "257");
    return refs;
  }));

Deno.test("xmit: a count larger than the array fails with EINVAL", () =>
  withDevice({}, ({ dev, frames }) => {
    const refs = frames(2);
    assertCode(() => dev.xmit(refs, { count: 3 }), "EINVAL", "count=3");
    return refs;
  }));

Deno.test("xmit: queue choice is cpu % queues", () =>
  withDevice({ device: { queues: 3 } }, ({ dev, frames }) => {
    for (const cpu of [0, 1, 2, 3, 4, 7]) {
      assert.equal(dev.queueForCpu(cpu), cpu % 3);
      const refs = frames(1);
      dev.xmit(refs, { cpu });
    }
    // cpus 0,3 -> q0; 1,4,7 -> q1; 2 -> q2
    assert.deepEqual([0, 1, 2].map((q) => dev.queue(q).count()), [2, 3, 1]);
  }));

Deno.test("xmit: the default cpu is the calling thread's CPU", () =>
  withDevice({ device: { queues: 256 } }, ({ dev }) => {
    const q = dev.queueForCpu();
    assert.ok(q >= 0 && q < navigator.hardwareConcurrency, `queue ${q}`);
  }));

Deno.test("xmit: a device closed elsewhere fails with ENXIO and the frames go back to the pool", () => {
  using pool = new FramePool({ frames: 16 });
  const owner = new Device({ pool });
  const worker = Device.attach(owner.handle, 0); // as a Worker would
  owner.close();
  const refs = new Uint32Array(4);
  pool.alloc(refs);
  assertCode(() => worker.xmit(refs), "ENXIO", "returned to their pool");
  assert.equal(pool.stats().free, 16);
});

Deno.test("xmit: a device closed by its own close() fails with ECLOSED", () => {
  using pool = new FramePool({ frames: 4 });
  const dev = new Device({ pool });
  dev.close();
  const refs = new Uint32Array(1);
  pool.alloc(refs);
  assertCode(() => dev.xmit(refs), "ECLOSED");
  assertCode(() => dev.stats(), "ECLOSED");
  assertCode(() => dev.queue(0), "ECLOSED");
  pool.free(refs);
});

Deno.test("xmit: a stale handle is not accepted by a new device in the same slot", () => {
  using pool = new FramePool({ frames: 4 });
  const first = new Device({ pool });
  const stale = Device.attach(first.handle, 0);
  first.close();
  using second = new Device({ pool });
  assert.notEqual(second.handle, stale.handle);
  assertCode(() => stale.stats(), "ENXIO");
});

Deno.test("device: bad options fail with EINVAL naming them", () => {
  assertCode(() => new Device({ queues: 0 }), "EINVAL", "queues=0");
  assertCode(() => new Device({ queues: 257 }), "EINVAL", "queues=257");
  assertCode(() => new Device({ ringSize: 1 }), "EINVAL", "ringSize=1");
  assertCode(() => new Device({ cpu: -2 }), "EINVAL", "cpu=-2");
});

Deno.test("device: a device on a closed pool fails with ECLOSED", () => {
  const pool = new FramePool({ frames: 2 });
  pool.close();
  assertCode(() => new Device({ pool }), "ECLOSED");
});

Deno.test("device: its pool cannot be closed while the device is open", () => {
  const pool = new FramePool({ frames: 2 });
  const dev = new Device({ pool });
  assertCode(() => pool.close(), "EBUSY");
  dev.close();
  pool.close();
});
