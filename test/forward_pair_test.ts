/**
 * `TapDevice.forwardBoth`: one C thread per queue pair forwards both ways.
 * Either end stops it (stopForwarding or close), nothing hangs, and every
 * frame goes home.
 */
import assert from "assert";
import { type BulktapError, FramePool, TapDevice } from "../dataplane/mod.ts";
import { tapTest, tryRun, uid } from "./tap_helpers.ts";

function pair(id: string, pool: FramePool, queues = [2, 2]): [TapDevice, TapDevice] {
  const a = new TapDevice({ name: `btw1${id}`, pool, queues: queues[0] });
  try {
    return [a, new TapDevice({ name: `btw2${id}`, pool, queues: queues[1] })];
  } catch (e) {
    a.close();
    throw e;
  }
}

function cleanup(id: string): void {
  tryRun(`ip link del btw1${id}`);
  tryRun(`ip link del btw2${id}`);
}

Deno.test({
  name: "forwardBoth: closing the second end stops both directions at once; every frame goes home",
  ...tapTest,
  async fn() {
    const id = uid();
    using pool = new FramePool({ frames: 256 });
    try {
      const [a, b] = pair(id, pool, [2, 3]);
      a.forwardBoth(b);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      b.close();
      assert.ok(performance.now() - t0 < 2000, "close did not wait on the forwarder");
      assert.equal(await a.stopForwarding(), false, "the pair is already gone");
      a.close();
      assert.equal(pool.stats().free, pool.frames);
    } finally {
      cleanup(id);
    }
  },
});

Deno.test({
  name: "forwardBoth: an end that already forwards is refused with EBUSY, naming both",
  ...tapTest,
  async fn() {
    const id = uid();
    using pool = new FramePool({ frames: 256 });
    try {
      const [a, b] = pair(id, pool);
      using _a = a, _b = b;
      a.forwardTo(b);
      assert.throws(
        () => b.forwardBoth(a),
        (e: BulktapError) => e.code === "EBUSY" && e.message.includes(a.name),
      );
      await a.stopForwarding();
      b.forwardBoth(a);
      assert.throws(() => a.forwardTo(b), (e: BulktapError) => e.code === "EBUSY");
      assert.equal(await a.stopForwarding(), true, "stopping either end stops the pair");
      a.forwardTo(b); // free again
      assert.equal(await a.stopForwarding(), true);
    } finally {
      cleanup(id);
    }
  },
});

Deno.test({
  name: "forwardBoth: a TAP cannot forward both ways with itself, nor with a non-TAP",
  ...tapTest,
  fn() {
    const id = uid();
    using pool = new FramePool({ frames: 64 });
    try {
      using a = new TapDevice({ name: `btw1${id}`, pool });
      assert.throws(() => a.forwardBoth(a), (e: BulktapError) => e.code === "EINVAL");
      assert.throws(
        () => a.forwardBoth({} as TapDevice),
        (e: BulktapError) => e.code === "EINVAL" && /no TapDevice/.test(e.message),
      );
    } finally {
      cleanup(id);
    }
  },
});
