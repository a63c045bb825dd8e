import assert from "assert";
import {
  Batch,
  Device,
  FramePool,
  LoopCounter,
  nowNs,
  PollLoop,
  redirect,
  Verdict,
} from "../mod.ts";
import { ArraySource, fixedVerdicts } from "./sched_helpers.ts";
import { assertAccounted } from "./helpers.ts";

function setup(targets = 2) {
  const pool = new FramePool({ frames: 256 });
  const devs = Array.from({ length: targets }, () => new Device({ pool, ringSize: 64 }));
  const frames = (n: number) => {
    const refs = new Uint32Array(n);
    assert.equal(pool.alloc(refs), n);
    for (const r of refs) pool.setLength(r, 60);
    return refs;
  };
  const done = () => {
    for (const d of devs) d.close();
    assertAccounted(pool, 0);
    pool.close();
  };
  return { pool, devs, frames, done };
}

function read(dev: Device): number[] {
  const b = new Batch(256);
  dev.queue(0).poll(b);
  const out = [...b.refs.subarray(0, b.count)];
  b.release();
  return out;
}

Deno.test("verdict DROP returns the frame to its pool and counts a program drop", () => {
  const { pool, devs, frames, done } = setup();
  const src = new ArraySource();
  src.push(frames(4));
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.DROP]),
    targets: devs,
  });
  loop.cycle();
  assert.equal(loop.counters[LoopCounter.DROP], 4);
  assert.equal(pool.stats().free, pool.frames);
  assert.equal(devs[0].stats().txPackets + devs[1].stats().txPackets, 0);
  loop.close();
  done();
});

Deno.test("verdict PASS hands the frame to the local reader, records its latency, frees it", () => {
  const { pool, devs, frames, done } = setup();
  const src = new ArraySource();
  const refs = frames(3);
  for (const r of refs) pool.setTimestamp(r, nowNs() - 1000);
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.PASS]),
    targets: devs,
  });
  loop.cycle();
  assert.equal(loop.counters[LoopCounter.PASS], 3);
  assert.equal(loop.latency.get("pass")!.summary().count, 3);
  assert.equal(pool.stats().free, pool.frames);
  loop.close();
  done();
});

Deno.test("verdict TX sends the frame back out of its source's ingress device", () => {
  const { devs, frames, done } = setup();
  const src = new ArraySource(1);
  const refs = frames(2);
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.TX]),
    targets: devs,
  });
  loop.cycle();
  assert.deepEqual(read(devs[1]), [...refs]);
  assert.equal(devs[0].stats().txPackets, 0);
  loop.close();
  done();
});

Deno.test("verdict TX from a source without an ingress device drops the frame as invalid", () => {
  const { pool, devs, frames, done } = setup();
  const src = new ArraySource(-1);
  src.push(frames(2));
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.TX]),
    targets: devs,
  });
  loop.cycle();
  assert.equal(loop.counters[LoopCounter.INVALID], 2);
  assert.equal(pool.stats().free, pool.frames);
  loop.close();
  done();
});

Deno.test("verdict REDIRECT sends each frame to the device-map index it names, in order", () => {
  const { devs, frames, done } = setup(3);
  const src = new ArraySource();
  const refs = frames(6);
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([redirect(2), redirect(0), redirect(1)]),
    targets: devs,
  });
  loop.cycle();
  assert.deepEqual(read(devs[2]), [refs[0], refs[3]]);
  assert.deepEqual(read(devs[0]), [refs[1], refs[4]]);
  assert.deepEqual(read(devs[1]), [refs[2], refs[5]]);
  loop.close();
  done();
});

Deno.test("verdict REDIRECT past the device map and unknown actions drop as invalid", () => {
  const { pool, devs, frames, done } = setup(2);
  const src = new ArraySource();
  src.push(frames(4));
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([redirect(2), 0x77]),
    targets: devs,
  });
  loop.cycle();
  assert.equal(loop.counters[LoopCounter.INVALID], 4);
  assert.equal(pool.stats().free, pool.frames);
  loop.close();
  done();
});

Deno.test("verdict BROADCAST sends the frame and copies to every target but the ingress", () => {
  const { pool, devs, frames, done } = setup(3);
  const src = new ArraySource(1);
  const [ref] = frames(1);
  pool.bytes.set([1, 2, 3, 4], pool.dataOffset(ref));
  src.push([ref]);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.BROADCAST]),
    targets: devs,
  });
  loop.cycle();
  const a = read(devs[0]), b = read(devs[1]), c = read(devs[2]);
  assert.equal(b.length, 0, "not back out of the ingress");
  assert.equal(a.length + c.length, 2);
  assert.equal(loop.counters[LoopCounter.BROADCAST_COPIES], 1);
  loop.close();
  done();
});
