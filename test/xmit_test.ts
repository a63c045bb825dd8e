import assert from "assert";
import { Batch, Device, FramePool, MAX_BULK } from "../mod.ts";
import { library } from "../ffi/lib.ts";
import { BT_XMIT_FLUSH, BT_XMIT_KEEP } from "../ffi/abi.ts";
import { needs } from "./capability.ts";
import { accounted, assertCode, withDevice } from "./helpers.ts";
import { allowedCpus, pinnedTo } from "./thread_affinity.ts";

Deno.test(
  "xmit: a bulk that fits is accepted whole and counted once per lock",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const refs = frames(16);
      assert.equal(dev.xmit(refs), 16);
      const s = dev.stats();
      assert.deepEqual(
        [s.txPackets, s.txBytes, s.xmitCalls, s.lockAcquisitions, s.queued],
        [16, 16 * 64, 1, 1, 16],
      );
    })
  ),
);

Deno.test(
  "xmit: a full ring accepts a prefix; the rest return to the pool as drops",
  accounted(() =>
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
    })
  ),
);

Deno.test(
  "xmit: with BT_XMIT_KEEP a full ring accepts a prefix and the rest stay the caller's, not dropped",
  accounted(() =>
    withDevice({ device: { ringSize: 8 } }, ({ pool, dev, frames }) => {
      const refs = frames(12);
      const keep = BT_XMIT_KEEP | BT_XMIT_FLUSH;
      assert.equal(library().bt_xmit(dev.handle, refs, refs.length, 12, keep, 0), 8);
      const s = dev.stats();
      assert.equal(s.txDropped, 0, "nothing dropped");
      assert.equal(s.queued, 8);
      assert.equal(pool.stats().held, 4, "the 4 that did not fit are still held");
      const batch = new Batch(16);
      dev.queue(0).poll(batch);
      batch.release();
      // Room again: the kept ones go now.
      assert.equal(library().bt_xmit(dev.handle, refs.subarray(8), 4, 4, keep, 0), 4);
      dev.queue(0).poll(batch);
      assert.deepEqual([...batch.refs.subarray(0, batch.count)], [...refs.subarray(8)]);
      batch.release();
      assert.equal(pool.stats().free, pool.frames);
    })
  ),
);

Deno.test(
  "xmit: single-packet mode sends one frame per call and per lock",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const refs = frames(5);
      for (const r of refs) assert.equal(dev.xmitOne(r), true);
      const s = dev.stats();
      assert.deepEqual([s.txPackets, s.xmitCalls, s.lockAcquisitions], [5, 5, 5]);
    })
  ),
);

Deno.test(
  "xmit: one thread alone never finds the producer lock contended",
  accounted(() =>
    withDevice({ pool: { frames: 64 } }, ({ dev, frames }) => {
      for (let i = 0; i < 200; i++) {
        dev.xmit(frames(4));
        const batch = new Batch(4);
        dev.queue(0).poll(batch);
        batch.release();
      }
      const s = dev.stats();
      assert.equal(s.lockAcquisitions, 200, "one acquisition per xmit call");
      assert.deepEqual([s.lockContended, s.lockParks], [0, 0], "nobody else held the lock");
    })
  ),
);

Deno.test(
  "xmit: a frame that is not held fails with EINVAL naming it, and nothing is taken",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(4);
      pool.free(refs.subarray(2, 3)); // refs[2] is now free: a bug in the caller
      assertCode(() => dev.xmit(refs), "EINVAL", "frames[2]");
      assert.equal(dev.stats().queued, 0);
      assert.equal(pool.stats().held, 3, "the other frames stay with the caller");
      return Uint32Array.of(refs[0], refs[1], refs[3]);
    })
  ),
);

Deno.test(
  "xmit: a length past the frame fails with EINVAL and nothing is taken",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(2);
      // Write the metadata directly, as a buggy program could.
      pool.view.setUint32(pool.frameOffset(refs[1]) + 12, 5000, true);
      assertCode(() => dev.xmit(refs), "EINVAL", "runs past the end");
      pool.setLength(refs[1], 10);
      return refs;
    })
  ),
);

Deno.test(
  "xmit: more than 256 frames in one call fails with E2BIG",
  accounted(() =>
    withDevice({ pool: { frames: 300 } }, ({ dev, frames }) => {
      const refs = frames(MAX_BULK + 1);
      assertCode(() => dev.xmit(refs), "E2BIG", "257");
      return refs;
    })
  ),
);

Deno.test(
  "xmit: a count larger than the array fails with EINVAL",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const refs = frames(2);
      assertCode(() => dev.xmit(refs, { count: 3 }), "EINVAL", "count=3");
      return refs;
    })
  ),
);

Deno.test(
  "xmit: queue choice is cpu % queues",
  accounted(() =>
    withDevice({ device: { queues: 3 } }, ({ dev, frames }) => {
      for (const cpu of [0, 1, 2, 3, 4, 7]) {
        assert.equal(dev.queueForCpu(cpu), cpu % 3);
        const refs = frames(1);
        dev.xmit(refs, { cpu });
      }
      // cpus 0,3 -> q0; 1,4,7 -> q1; 2 -> q2
      assert.deepEqual([0, 1, 2].map((q) => dev.queue(q).count()), [2, 3, 1]);
    })
  ),
);

const CPUS = allowedCpus();

Deno.test({
  name: "xmit: the default cpu is the calling thread's CPU (pinned to each of two CPUs in turn)",
  ignore: needs(
    "two CPUs",
    CPUS.length < 2 ? `this thread may only run on CPU ${CPUS.join(",")}` : undefined,
    "run the tests where the process may use at least 2 CPUs (taskset, cgroup cpuset)",
  ),
  fn: accounted(() =>
    withDevice({ device: { queues: 256 } }, ({ dev, frames }) => {
      // The second allowed CPU first: queue 0 alone would prove nothing.
      for (const cpu of [CPUS[1], CPUS[0]]) {
        const q = pinnedTo(cpu, () => {
          assert.equal(library().bt_current_cpu(), cpu, `the thread runs on CPU ${cpu}`);
          assert.equal(dev.xmit(frames(1)), 1);
          return dev.queueForCpu();
        });
        assert.equal(q, cpu % 256, `queueForCpu() pinned to CPU ${cpu}`);
        assert.equal(dev.queue(q).count(), 1, `xmit pinned to CPU ${cpu} chose queue ${q}`);
      }
      assert.deepEqual(allowedCpus(), CPUS, "the thread's affinity is restored");
    })
  ),
});

Deno.test(
  "xmit: a device closed elsewhere fails with ENXIO and the frames go back to the pool",
  accounted(() => {
    using pool = new FramePool({ frames: 16 });
    const owner = new Device({ pool });
    const worker = Device.attach(owner.handle, 0); // as a Worker would
    owner.close();
    const refs = new Uint32Array(4);
    pool.alloc(refs);
    assertCode(() => worker.xmit(refs), "ENXIO", `device ${owner.handle}: the device is closed`);
    assert.equal(pool.stats().free, 16);
  }),
);

Deno.test(
  "xmit: a device closed by its own close() fails with ECLOSED and the frames go home",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const dev = new Device({ pool });
    dev.close();
    const refs = new Uint32Array(3);
    pool.alloc(refs);
    assertCode(() => dev.xmit(refs, { count: 2 }), "ECLOSED", "2 of the 2 frames were returned");
    assert.deepEqual([pool.stats().free, pool.stats().held], [3, 1], "the 2 sent went home");
    assertCode(() => dev.xmitOne(refs[2]), "ECLOSED", "1 of the 1 frames");
    assert.equal(pool.stats().free, 4, "xmitOne's frame went home too");
    assertCode(() => dev.stats(), "ECLOSED");
    assertCode(() => dev.queue(0), "ECLOSED");
  }),
);

Deno.test(
  "xmit: a cpu that is not -1 or a CPU number fails with EINVAL naming it, nothing taken",
  accounted(() =>
    withDevice({ device: { queues: 2 } }, ({ pool, dev, frames }) => {
      const refs = frames(2);
      for (const cpu of [-2, 1.5, NaN, 2 ** 31]) {
        assertCode(() => dev.xmit(refs, { cpu }), "EINVAL", `cpu=${cpu}`);
        assertCode(() => dev.xmitOne(refs[0], { cpu }), "EINVAL", `cpu=${cpu}`);
        assertCode(
          () => dev.xmitCopy(new Uint8Array(4), Uint32Array.of(4), { cpu }),
          "EINVAL",
          `cpu=${cpu}`,
        );
        assertCode(() => dev.queueForCpu(cpu), "EINVAL", `cpu=${cpu}`);
      }
      assert.equal(pool.stats().held, 2, "the caller still holds both frames");
      assert.equal(dev.stats().xmitCalls, 0, "no call reached the library");
      return refs;
    })
  ),
);

Deno.test(
  "xmit: a count that is NaN, fractional or negative fails with EINVAL naming it",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const refs = frames(4);
      for (const count of [NaN, 2.5, -1, Infinity]) {
        assertCode(() => dev.xmit(refs, { count }), "EINVAL", `count=${count}`);
        assertCode(
          () => dev.xmitCopy(new Uint8Array(8), Uint32Array.of(4, 4), { count }),
          "EINVAL",
          `count=${count}`,
        );
      }
      assert.equal(dev.stats().xmitCalls, 0);
      return refs;
    })
  ),
);

Deno.test(
  "xmit: a stale handle is not accepted by a new device in the same slot",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const first = new Device({ pool });
    const stale = Device.attach(first.handle, 0);
    first.close();
    using second = new Device({ pool });
    assert.notEqual(second.handle, stale.handle);
    assertCode(() => stale.stats(), "ENXIO");
  }),
);

Deno.test(
  "device: bad options fail with EINVAL naming them",
  accounted(() => {
    assertCode(() => new Device({ queues: 0 }), "EINVAL", "queues=0");
    assertCode(() => new Device({ queues: 257 }), "EINVAL", "queues=257");
    assertCode(() => new Device({ ringSize: 1 }), "EINVAL", "ringSize=1");
    assertCode(() => new Device({ cpu: -2 }), "EINVAL", "cpu=-2");
  }),
);

Deno.test(
  "device: a device on a closed pool fails with ECLOSED",
  accounted(() => {
    const pool = new FramePool({ frames: 2 });
    pool.close();
    assertCode(() => new Device({ pool }), "ECLOSED");
  }),
);

Deno.test(
  "device: its pool cannot be closed while the device is open",
  accounted(() => {
    const pool = new FramePool({ frames: 2 });
    const dev = new Device({ pool });
    assertCode(() => pool.close(), "EBUSY");
    dev.close();
    pool.close();
  }),
);
