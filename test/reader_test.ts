import assert from "assert";
import { Batch } from "../mod.ts";
import { accounted, assertCode, eventually, withDevice } from "./helpers.ts";

Deno.test(
  "reader: poll returns frames in order with their data and lengths",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(10, 100);
      for (let i = 0; i < 10; i++) pool.setLength(refs[i], 20 + i);
      dev.xmit(refs);
      const batch = new Batch(4);
      const seen: number[] = [];
      while (dev.queue(0).poll(batch) > 0) {
        for (let i = 0; i < batch.count; i++) {
          seen.push(batch.refs[i]);
          assert.equal(batch.length(i), 20 + seen.length - 1);
          assert.equal(batch.data(i)[5], 5);
          assert.equal(pool.queueOf(batch.refs[i]), 0);
        }
      }
      assert.deepEqual(seen, [...refs]);
    })
  ),
);

Deno.test(
  "reader: a queue that is empty polls 0 without waiting",
  accounted(() =>
    withDevice({}, ({ dev }) => {
      assert.equal(dev.queue(0).poll(new Batch()), 0);
      assert.equal(dev.stats().rxSleeps, 0, "poll never sleeps");
    })
  ),
);

Deno.test(
  "reader: a flush wakes a sleeping reader with one wake-up",
  accounted(() =>
    withDevice({}, async ({ dev, frames }) => {
      const t0 = performance.now();
      const woke = dev.queue(0).wait(10_000);
      await eventually(() => dev.stats().rxSleeps === 1, 5000, "the reader to sleep");
      dev.xmit(frames(3), { flush: true });
      assert.equal(await woke, true);
      assert.ok(performance.now() - t0 < 5000, "woken long before the 10 s timeout");
      const s = dev.stats();
      assert.deepEqual([s.flushes, s.wakeupsSent, s.wakeupsAvoided], [1, 1, 0]);
    })
  ),
);

Deno.test(
  "reader: a flush skips a busy reader (no syscall) and wakes a sleeping one",
  accounted(() =>
    withDevice({ device: { queues: 2 } }, async ({ dev, frames }) => {
      // Queue 0's reader is busy: it polls in a loop and never announces a
      // sleep. Queue 1's reader sleeps in wait().
      let stop = false, polls = 0, busyGot = 0;
      const busy = (async () => {
        const batch = new Batch(8);
        while (!stop) {
          busyGot += dev.queue(0).poll(batch);
          batch.release();
          polls++;
          await new Promise((r) => setTimeout(r, 0));
        }
      })();
      const sleeper = dev.queue(1).wait(10_000);
      await eventually(
        () => dev.stats().rxSleeps === 1 && polls > 2,
        5000,
        "queue 1's reader asleep and queue 0's reader polling",
      );
      dev.xmit(frames(3), { cpu: 0, flush: true }); // busy reader: no wake-up
      dev.xmit(frames(3), { cpu: 1, flush: true }); // sleeping reader: woken
      assert.equal(await sleeper, true, "the sleeping reader woke with frames");
      await eventually(() => busyGot === 3, 5000, "the busy reader to read its frames");
      stop = true;
      await busy;
      const batch = new Batch(8);
      assert.equal(dev.queue(1).poll(batch), 3);
      batch.release();
      const s = dev.stats();
      assert.deepEqual([s.flushes, s.wakeupsSent, s.wakeupsAvoided], [2, 1, 1]);
      assert.equal(s.rxSleeps, 1, "the busy reader never announced a sleep");
    })
  ),
);

Deno.test(
  "reader: frames sent without flush do not wake a sleeping reader",
  accounted(() =>
    withDevice({}, async ({ dev, frames }) => {
      const t0 = performance.now();
      const woke = dev.queue(0).wait(400);
      await eventually(() => dev.stats().rxSleeps === 1, 5000, "the reader to sleep");
      dev.xmit(frames(2));
      assert.equal(await woke, true, "the frames are there when the wait times out");
      assert.ok(performance.now() - t0 >= 350, "slept until its timeout: no doorbell rang");
      assert.equal(dev.stats().wakeupsSent, 0);
    })
  ),
);

Deno.test(
  "reader: the async iterator yields batches and returns frames as it moves on",
  accounted(() =>
    withDevice({ device: { queues: 2 } }, async ({ pool, dev, frames }) => {
      let got = 0;
      const reader = (async () => {
        for await (const batch of dev.queue(1).frames({ batchSize: 8 })) {
          got += batch.count;
          if (got === 20) break;
        }
      })();
      dev.xmit(frames(20), { cpu: 1, flush: true });
      await reader;
      assert.equal(got, 20);
      assert.equal(pool.stats().free, pool.frames);
    })
  ),
);

Deno.test(
  "reader: closing the device ends every reader's iteration",
  accounted(() =>
    withDevice({ device: { queues: 2 } }, async ({ dev }) => {
      const ended = [0, 1].map(async (q) => {
        for await (const _ of dev.queue(q).frames()) { /* nothing arrives */ }
        return q;
      });
      await eventually(() => dev.stats().rxSleeps >= 2, 5000, "both readers to sleep");
      dev.close();
      assert.deepEqual(await Promise.all(ended), [0, 1]);
    })
  ),
);

Deno.test(
  "reader: wait on a closed device fails with ENXIO, on a closed object ECLOSED",
  accounted(() =>
    withDevice({}, async ({ dev }) => {
      const waiting = dev.queue(0).wait(10_000);
      await eventually(() => dev.stats().rxSleeps === 1);
      dev.close();
      await assert.rejects(waiting, (e: Error & { code?: string }) => e.code === "ENXIO");
      assertCode(() => dev.queue(0), "ECLOSED");
    })
  ),
);

Deno.test(
  "reader: unread puts frames back at the head of the queue, in order",
  accounted(() =>
    withDevice({}, ({ dev, frames }) => {
      const refs = frames(6);
      dev.xmit(refs);
      const batch = new Batch(4);
      dev.queue(0).poll(batch);
      // keep the first, hand back the other three
      assert.equal(dev.queue(0).unread(batch.refs.subarray(1, 4)), 3);
      const kept = Uint32Array.of(batch.refs[0]);
      batch.detach();
      const rest = new Batch(8);
      dev.queue(0).poll(rest);
      assert.deepEqual([...rest.refs.subarray(0, rest.count)], [...refs.subarray(1)]);
      rest.release();
      return kept;
    })
  ),
);

Deno.test(
  "reader: copied entries share a queue with pool frames and land in pool frames",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const own = frames(1, 10);
      dev.xmit(own);
      const bytes = Uint8Array.of(9, 8, 7, 6, 5, 4, 3);
      assert.equal(dev.xmitCopy(bytes, Uint32Array.of(3, 4)), 2);
      dev.xmit(frames(1, 12));
      const batch = new Batch(8);
      assert.equal(dev.queue(0).poll(batch), 4);
      assert.equal(batch.refs[0], own[0]);
      assert.deepEqual([...batch.data(1)], [9, 8, 7]);
      assert.deepEqual([...batch.data(2)], [6, 5, 4, 3]);
      assert.equal(batch.length(3), 12);
      assert.equal(batch.pool(1), pool, "copies land in the device's pool");
      batch.release();
    })
  ),
);

Deno.test(
  "reader: copied entries still queued at close are freed and counted",
  accounted(() =>
    withDevice({}, ({ dev }) => {
      dev.xmitCopy(new Uint8Array(30), Uint32Array.of(10, 10, 10));
      assert.equal(dev.stats().queued, 3);
      assert.equal(dev.close(), 3);
    })
  ),
);

Deno.test(
  "reader: a copy larger than a frame fails with EINVAL naming it",
  accounted(() =>
    withDevice({}, ({ dev }) => {
      assertCode(
        () => dev.xmitCopy(new Uint8Array(4000), Uint32Array.of(4000)),
        "EINVAL",
        "lengths[0] = 4000",
      );
    })
  ),
);

Deno.test(
  "reader: close wakes every waiter on a queue, even ones waiting forever",
  accounted(() =>
    withDevice({}, async ({ dev }) => {
      const waiters = [dev.queue(0).wait(-1), dev.queue(0).wait(-1)];
      // One isolate's waiters of a queue share one sleep in C (waiter.ts).
      await eventually(() => dev.stats().rxSleeps === 1, 5000, "the waiters to sleep");
      dev.close();
      for (const w of waiters) {
        await assert.rejects(w, (e: Error & { code?: string }) => e.code === "ENXIO");
      }
    })
  ),
);
