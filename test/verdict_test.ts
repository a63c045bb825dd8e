import assert from "assert";
import {
  Batch,
  Device,
  FramePool,
  LoopCounter,
  META,
  nowNs,
  PollLoop,
  redirect,
  Verdict,
} from "../mod.ts";
import { ArraySource, countCalls, fixedVerdicts } from "./sched_helpers.ts";
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

Deno.test("verdict PASS by default: the loop is the local reader, records latency, frees the frame", () => {
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

Deno.test("verdict PASS with a pass device: frames are staged to it in bulk for the user to read", async () => {
  const { pool, devs, frames, done } = setup();
  const passDev = new Device({ pool, ringSize: 64 });
  const src = new ArraySource();
  const refs = frames(5);
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.PASS]),
    targets: devs,
    pass: passDev,
  });
  loop.cycle();
  assert.equal(loop.counters[LoopCounter.PASS], 5);
  assert.equal(loop.latency.get("pass"), undefined, "not consumed by the loop");
  const s = passDev.stats();
  assert.deepEqual([s.txPackets, s.xmitCalls, s.flushes], [5, 1, 1], "one bulk, one doorbell");
  assert.equal(loop.counters[LoopCounter.TX_SENT], 5);
  const got: number[] = [];
  for await (const batch of passDev.queue(0).frames()) {
    got.push(...batch.refs.subarray(0, batch.count));
    if (got.length === 5) break;
  }
  assert.deepEqual(got, [...refs], "the user reads the PASS frames, in order");
  assert.equal(devs[0].stats().txPackets + devs[1].stats().txPackets, 0);
  loop.close();
  passDev.close();
  done();
});

Deno.test("verdict PASS with a pass device: frames it refuses are counted as dropped", () => {
  const { pool, devs, frames, done } = setup();
  const passDev = new Device({ pool, ringSize: 4 });
  const src = new ArraySource();
  src.push(frames(10));
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.PASS]),
    targets: devs,
    pass: passDev,
  });
  loop.cycle();
  const c = loop.counters;
  assert.deepEqual([c[LoopCounter.TX_SENT], c[LoopCounter.TX_DROPPED]], [4, 6]);
  assert.equal(pool.stats().queued, 4);
  loop.close();
  assert.equal(passDev.close(), 4);
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

Deno.test("verdict: invalid verdicts are counted by reason, the first of each reason kept once", () => {
  const { devs, frames, done } = setup(2);
  const src = new ArraySource(-1);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([redirect(7), 0x77, Verdict.TX, 0x1ff, redirect(0)]),
    targets: devs,
  });
  for (let k = 0; k < 2; k++) {
    src.push(frames(5));
    loop.cycle();
    read(devs[0]); // the valid ones, released
  }
  const c = loop.counters;
  assert.deepEqual(
    [c[LoopCounter.BAD_VERDICT], c[LoopCounter.MISSING_TARGET], c[LoopCounter.NO_INGRESS]],
    [4, 2, 2],
  );
  assert.equal(c[LoopCounter.INVALID], 8, "the total is the sum of the reasons");
  assert.deepEqual(
    loop.invalidVerdicts.map((v) => [v.reason, v.verdict, v.source]),
    [["badVerdict", 0x77, "array"], ["missingTarget", redirect(7), "array"], [
      "noIngress",
      Verdict.TX,
      "array",
    ]],
    "one each, the first of its reason",
  );
  assert.equal(loop.invalidSeen, 0b111);
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

Deno.test("verdict BROADCAST: a batch of floods allocates all its copies in one pool call", () => {
  const { pool, devs, frames, done } = setup(3);
  const src = new ArraySource(1);
  const refs = frames(8);
  refs.forEach((r, i) => (pool.bytes[pool.dataOffset(r)] = i));
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.BROADCAST]),
    targets: devs,
  });
  using allocs = countCalls("bt_pool_alloc");
  loop.cycle();
  assert.equal(allocs.calls, 1, "one allocation for the batch, not one per flooded frame");
  const a = read(devs[0]), c = read(devs[2]);
  assert.deepEqual(a, [...refs], "the originals go to the first other port");
  assert.deepEqual(c.map((r) => pool.bytes[pool.dataOffset(r)]), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(loop.counters[LoopCounter.BROADCAST_COPIES], 8);
  assert.equal(loop.counters[LoopCounter.BROADCAST_MISSED], 0);
  loop.close();
  done();
});

Deno.test("verdict BROADCAST: copies an empty pool cannot supply are counted as missed", () => {
  const pool = new FramePool({ frames: 12 });
  const devs = [0, 1, 2, 3].map(() => new Device({ pool, ringSize: 16 }));
  const refs = new Uint32Array(4);
  pool.alloc(refs);
  for (const r of refs) pool.setLength(r, 60);
  const hold = new Uint32Array(5); // leave 3 free frames for 8 wanted copies
  pool.alloc(hold);
  const src = new ArraySource(0);
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.BROADCAST]),
    targets: devs,
  });
  loop.cycle();
  const c = loop.counters;
  assert.equal(c[LoopCounter.BROADCAST_COPIES], 3);
  assert.equal(c[LoopCounter.BROADCAST_MISSED], 4 * 2 - 3);
  assert.equal(c[LoopCounter.TX_SENT], 4 + 3, "originals plus the copies made");
  assert.equal(pool.stats().queued, 7);
  loop.close();
  for (const d of devs) d.close();
  pool.free(hold);
  assertAccounted(pool, 0);
  pool.close();
});

// Found by the boundary fuzzer (pollloop/loop, a lying source): a flood's
// copies were allocated, then reading a ref of no pool threw out of the
// cycle, and the copies stayed held by nobody.
Deno.test("verdict BROADCAST of refs a source does not hold: no copy of them, and none lost", () => {
  const { pool, devs, frames, done } = setup(3);
  const gone = new FramePool({ frames: 4 });
  const noPool = ((gone.slot << 24) | 1) >>> 0;
  gone.close();
  const past = ((pool.slot << 24) | pool.frames) >>> 0;
  using elsewhere = new Device({ pool, ringSize: 8 });
  const [a, queued, b] = frames(3);
  elsewhere.xmit(Uint32Array.of(queued), { cpu: 0 }); // queued on another device: not the source's
  pool.bytes[pool.dataOffset(a)] = 7;
  pool.bytes[pool.dataOffset(b)] = 8;
  const src = new ArraySource(1);
  src.push([a, noPool, past, queued, b]);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.BROADCAST]),
    targets: devs,
  });
  loop.cycle();
  const c = loop.counters;
  assert.equal(c[LoopCounter.BROADCAST_COPIES], 2, "a copy of each held frame");
  assert.equal(c[LoopCounter.BROADCAST_MISSED], 3, "no copy of the three refs it does not hold");
  assert.deepEqual(read(devs[2]).map((r) => pool.bytes[pool.dataOffset(r)]), [7, 8]);
  loop.close();
  elsewhere.close();
  done(); // every frame home: none held by nobody
});

Deno.test("verdict BROADCAST of a frame whose length a program overwrote: no copy, nothing written past it", () => {
  const pool = new FramePool({ frames: 8, frameSize: 256, headroom: 64 });
  const devs = [0, 1, 2].map(() => new Device({ pool, ringSize: 16 }));
  const all = new Uint32Array(8);
  pool.alloc(all);
  all.sort();
  // Frames 0 and 1 free for the copies; 2..5 held here, and must not change.
  pool.free(all.subarray(0, 2));
  const held = all.subarray(2, 6), [a, b] = all.subarray(6);
  for (const r of [...held, a, b]) pool.write(r, new Uint8Array(60).fill(r & 0xff));
  const before = [...held].map((r) =>
    pool.bytes.slice(pool.frameOffset(r), pool.frameOffset(r) + 256)
  );
  const src = new ArraySource(1);
  src.push([a, b]);
  const loop = new PollLoop({
    sources: [src],
    program: (batch) => {
      batch.verdicts.fill(Verdict.BROADCAST, 0, batch.count);
      // Past the frame: a copy of that many bytes would run over the next ones.
      const m = new DataView(pool.bytes.buffer, pool.bytes.byteOffset + pool.frameOffset(a));
      m.setUint32(META.len, 4 * 256, true);
    },
    targets: devs,
  });
  loop.cycle();
  held.forEach((r, i) => {
    const o = pool.frameOffset(r);
    assert.deepEqual(pool.bytes.slice(o, o + 256), before[i], `frame ${r & 0xff} unchanged`);
  });
  const c = loop.counters;
  assert.equal(c[LoopCounter.BROADCAST_COPIES], 1, "b is copied");
  assert.equal(c[LoopCounter.BROADCAST_MISSED], 1, "a is not");
  loop.close();
  for (const d of devs) d.close();
  assertAccounted(pool, 4);
  pool.free(held);
  pool.close();
});

Deno.test("verdict BROADCAST keeps each target's frames in batch order among other verdicts", () => {
  const { pool, devs, frames, done } = setup(3);
  const src = new ArraySource(0);
  const refs = frames(4);
  refs.forEach((r, i) => (pool.bytes[pool.dataOffset(r)] = i));
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([Verdict.BROADCAST, redirect(2), Verdict.BROADCAST, redirect(2)]),
    targets: devs,
  });
  loop.cycle();
  const onTwo = read(devs[2]).map((r) => pool.bytes[pool.dataOffset(r)]);
  assert.deepEqual(onTwo, [0, 1, 2, 3]);
  loop.close();
  done();
});

Deno.test("counters are written once per batch, not once per frame", () => {
  const writes = (n: number) => {
    const { frames, devs, done } = setup(2);
    const src = new ArraySource(0);
    src.push(frames(n));
    let count = 0;
    const counters = new Proxy(new Float64Array(LoopCounter.COUNT), {
      get: (t, k) => Reflect.get(t, k, t),
      set(t, k, v) {
        count++;
        return Reflect.set(t, k, v, t);
      },
    });
    const loop = new PollLoop({
      sources: [src],
      program: fixedVerdicts([Verdict.DROP, Verdict.PASS, Verdict.TX, redirect(1), 0x77]),
      targets: devs,
      counters,
      latency: false,
    });
    loop.cycle();
    assert.equal(counters[LoopCounter.RX], n);
    loop.close();
    done();
    return count;
  };
  assert.equal(writes(60), writes(5));
});
