import assert from "assert";
import {
  Batch,
  Device,
  FramePool,
  L2Switch,
  PollLoop,
  redirect,
  Verdict,
  writeMac,
} from "../mod.ts";
import { ArraySource } from "./sched_helpers.ts";
import { assertAccounted } from "./helpers.ts";

const A = 0x020000000001, B = 0x020000000002;

function batchOf(
  pool: FramePool,
  frames: [dst: number, src: number][],
  ingress: number,
  nowNs: number,
) {
  const refs = new Uint32Array(frames.length);
  assert.equal(pool.alloc(refs), frames.length);
  frames.forEach(([dst, src], i) => {
    const off = pool.dataOffset(refs[i]);
    writeMac(pool.bytes, off, 6, dst);
    writeMac(pool.bytes, off + 6, 6, src);
    pool.setLength(refs[i], 60);
  });
  return {
    refs,
    count: frames.length,
    verdicts: new Uint32Array(frames.length),
    ingress,
    nowNs,
    targets: 3,
  };
}

Deno.test("l2switch: unknown destinations flood, then learned ones go to their port", () => {
  using pool = new FramePool({ frames: 16 });
  const sw = new L2Switch();
  const b1 = batchOf(pool, [[B, A]], 0, 1000);
  sw.program(b1);
  assert.equal(b1.verdicts[0], Verdict.BROADCAST, "B unknown: flood");
  const b2 = batchOf(pool, [[A, B]], 2, 2000);
  sw.program(b2);
  assert.equal(b2.verdicts[0], redirect(0), "A was learned on port 0");
  const b3 = batchOf(pool, [[B, A]], 0, 3000);
  sw.program(b3);
  assert.equal(b3.verdicts[0], redirect(2), "B was learned on port 2");
  assert.equal(sw.size, 2);
  for (const b of [b1, b2, b3]) pool.free(b.refs);
});

Deno.test("l2switch: broadcast floods; a destination on the ingress port is dropped", () => {
  using pool = new FramePool({ frames: 16 });
  const sw = new L2Switch();
  sw.learn(B, 1, 0);
  const b = batchOf(pool, [[0xffffffffffff, A], [B, A]], 1, 10);
  sw.program(b);
  assert.deepEqual([...b.verdicts], [Verdict.BROADCAST, Verdict.DROP]);
  pool.free(b.refs);
});

Deno.test("l2switch: entries age out and the destination floods again", () => {
  using pool = new FramePool({ frames: 16 });
  const sw = new L2Switch({ ageNs: 1e9 });
  sw.learn(B, 2, 0);
  assert.equal(sw.lookup(B, 0.5e9), 2);
  assert.equal(sw.lookup(B, 1.5e9), -1, "aged out");
  const b = batchOf(pool, [[B, A]], 0, 1.5e9);
  sw.program(b);
  assert.equal(b.verdicts[0], Verdict.BROADCAST);
  sw.learn(B, 1, 2e9);
  assert.equal(sw.lookup(B, 2.5e9), 1, "relearned");
  pool.free(b.refs);
});

Deno.test("l2switch: frames too short for Ethernet are dropped", () => {
  using pool = new FramePool({ frames: 4 });
  const sw = new L2Switch();
  const b = batchOf(pool, [[B, A]], 0, 0);
  pool.setLength(b.refs[0], 10);
  sw.program(b);
  assert.equal(b.verdicts[0], Verdict.DROP);
  pool.free(b.refs);
});

Deno.test("l2switch: in a poll loop, flooded copies carry the frame's bytes to every other port", () => {
  const pool = new FramePool({ frames: 64 });
  const devs = [0, 1, 2].map(() => new Device({ pool, ringSize: 16 }));
  const sw = new L2Switch();
  const src = new ArraySource(0);
  const { refs } = batchOf(pool, [[B, A]], 0, 0);
  pool.bytes[pool.dataOffset(refs[0]) + 20] = 0xab;
  src.push(refs);
  const loop = new PollLoop({ sources: [src], program: sw.program, targets: devs });
  loop.cycle();
  assert.equal(devs[0].stats().queued, 0, "not back out of the ingress port");
  const batch = new Batch(4);
  for (const d of devs.slice(1)) {
    assert.equal(d.queue(0).poll(batch), 1);
    const ref = batch.refs[0];
    const p = FramePool.of(ref);
    assert.equal(p.length(ref), 60);
    assert.equal(p.bytes[p.dataOffset(ref) + 20], 0xab);
    batch.release();
  }
  loop.close();
  for (const d of devs) d.close();
  assertAccounted(pool, 0);
  pool.close();
});
