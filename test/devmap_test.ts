import assert from "assert";
import {
  BulkQueues,
  Device,
  FramePool,
  LoopCounter,
  PollLoop,
  redirect,
  TargetCounter,
} from "../mod.ts";
import { LatencyLayout, LatencyRecorder } from "../dataplane/latency.ts";
import { ArraySource, fixedVerdicts } from "./sched_helpers.ts";
import { assertAccounted } from "./helpers.ts";

function setup(targets: number, ringSize = 64) {
  const pool = new FramePool({ frames: 512 });
  const devs = Array.from({ length: targets }, () => new Device({ pool, ringSize }));
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

for (const mode of ["cycle", "target"] as const) {
  Deno.test(`devmap (${mode}): a cycle with frames for 3 targets issues exactly 3 flushed transmits`, () => {
    const { devs, frames, done } = setup(3);
    const src = new ArraySource();
    src.push(frames(9));
    const loop = new PollLoop({
      sources: [src],
      program: fixedVerdicts([redirect(0), redirect(1), redirect(2)]),
      targets: devs,
      stageMode: mode,
    });
    loop.cycle();
    for (const d of devs) {
      const s = d.stats();
      assert.deepEqual([s.txPackets, s.xmitCalls, s.flushes], [3, 1, 1]);
    }
    loop.close();
    done();
  });

  Deno.test(`devmap (${mode}): full stages go out without the doorbell, the last with it`, () => {
    const { devs, frames, done } = setup(1);
    const bq = new BulkQueues(devs, { bulk: 4, mode });
    for (const r of frames(10)) bq.enqueue(r, 0, 0);
    bq.flush();
    const s = devs[0].stats();
    // 4 + 4 without flush, 2 with: 3 locks, 1 doorbell.
    assert.deepEqual([s.txPackets, s.xmitCalls, s.flushes], [10, 3, 1]);
    assert.equal(bq.pending, 0);
    done();
  });

  Deno.test(`devmap (${mode}): each target's counters, at t * TargetCounter.COUNT, are its own`, () => {
    const { devs, frames, done } = setup(3, 8);
    const bq = new BulkQueues(devs, { bulk: 4, mode });
    // Target 0: 6 frames (stages 4 + 2); target 2: 12 (4 + 4 + 4) into a ring of 8.
    for (const r of frames(6)) bq.enqueue(r, 0, 0);
    for (const r of frames(12)) bq.enqueue(r, 2, 0);
    bq.flush();
    devs[1].close(); // a closed target: its stage fails as a whole
    bq.enqueue(frames(1)[0], 1, 0);
    bq.flush();
    const at = (t: number) => {
      const c = bq.counters.subarray(t * TargetCounter.COUNT, (t + 1) * TargetCounter.COUNT);
      return {
        sent: c[TargetCounter.SENT],
        dropped: c[TargetCounter.DROPPED],
        failedCalls: c[TargetCounter.FAILED_CALLS],
        xmitCalls: c[TargetCounter.XMIT_CALLS],
      };
    };
    assert.equal(bq.counters.length, 3 * TargetCounter.COUNT);
    assert.deepEqual(at(0), { sent: 6, dropped: 0, failedCalls: 0, xmitCalls: 2 });
    assert.deepEqual(at(1), { sent: 0, dropped: 1, failedCalls: 1, xmitCalls: 1 });
    assert.deepEqual(at(2), { sent: 8, dropped: 4, failedCalls: 0, xmitCalls: 3 });
    assert.equal(devs[2].stats().txPackets, 8);
    done();
  });

  Deno.test(`devmap (${mode}): frames a full target refuses return to the pool, counted against it`, () => {
    const { pool, devs, frames, done } = setup(2, 8);
    const bq = new BulkQueues(devs, { bulk: 16, mode });
    for (const r of frames(12)) bq.enqueue(r, 1, 0);
    bq.flush();
    assert.deepEqual([bq.sent(1), bq.dropped(1), bq.sent(0), bq.dropped(0)], [8, 4, 0, 0]);
    assert.equal(devs[1].stats().txDropped, 4);
    assert.equal(pool.stats().queued, 8);
    done();
  });
}

Deno.test("devmap: a stage of one frame per xmit is single-packet mode (one lock per frame)", () => {
  const { devs, frames, done } = setup(1);
  const bq = new BulkQueues(devs, { bulk: 1, mode: "target" });
  for (const r of frames(5)) bq.enqueue(r, 0, 0);
  bq.flush();
  const s = devs[0].stats();
  assert.deepEqual([s.txPackets, s.xmitCalls, s.flushes], [5, 5, 1]);
  done();
});

Deno.test("devmap: bulk outside 1..256 is refused with EINVAL", () => {
  const { devs, done } = setup(1);
  assert.throws(() => new BulkQueues(devs, { bulk: 0 }), /EINVAL/);
  assert.throws(() => new BulkQueues(devs, { bulk: 257 }), /EINVAL/);
  done();
});

Deno.test("devmap: per-target latency takes only bucket arrays, and only in target mode (EINVAL otherwise)", () => {
  const { devs, done } = setup(2);
  const ok = new LatencyRecorder().words;
  assert.ok(new BulkQueues(devs, { latency: [null, ok] }));
  const zeroed = new BigUint64Array(LatencyLayout.WORDS); // no layout magic
  assert.throws(() => new BulkQueues(devs, { latency: [zeroed] }), /EINVAL.*latency\[0\]/);
  assert.throws(() => new BulkQueues(devs, { latency: [ok.subarray(0, 8)] }), /EINVAL/);
  assert.throws(() => new BulkQueues(devs, { latency: [ok, ok, ok] }), /EINVAL/);
  assert.throws(() => new BulkQueues(devs, { mode: "cycle", latency: [ok] }), /EINVAL.*cycle/);
  done();
});

Deno.test("deadline: frames staged by one source are flushed before a slow next source finishes", () => {
  const { devs, frames, done } = setup(1);
  const first = new ArraySource(), slow = new ArraySource();
  first.push(frames(2));
  let queuedWhenSlowPolled = -1;
  slow.onPoll = () => {
    // The loop polls this source after the deadline passed: the first
    // source's frames must already be in the device queue.
    queuedWhenSlowPolled = devs[0].queue(0).count();
  };
  const loop = new PollLoop({
    sources: [first, slow],
    program: (b) => {
      b.verdicts.fill(redirect(0), 0, b.count);
      const until = performance.now() + 1; // a program slower than the deadline
      while (performance.now() < until) { /* spin */ }
    },
    targets: devs,
    deadlineNs: 50_000,
  });
  loop.cycle();
  assert.equal(queuedWhenSlowPolled, 2);
  assert.equal(loop.counters[LoopCounter.DEADLINE_FLUSHES], 1);
  // The bound on a stage's wait: staged frames are flushed before a
  // source's turn once the deadline has passed, and at the end of the
  // cycle; so a stage waits at most the deadline plus one source's turn.
  // Here each turn takes >= 1 ms (the program spins): without the deadline
  // flush the first source's frames would wait for both turns (~2 ms),
  // beyond 50 us + one turn.
  const age = loop.counters[LoopCounter.MAX_STAGE_AGE_NS];
  const turn = loop.counters[LoopCounter.MAX_SOURCE_RUN_NS];
  assert.ok(turn >= 1e6, `a turn took ${turn} ns`);
  assert.ok(age > 0 && age <= 50_000 + turn, `stage age ${age} ns, longest turn ${turn} ns`);
  loop.close();
  done();
});

Deno.test("deadline: with one source, a stage waits no longer than that source's turn", () => {
  const { devs, frames, done } = setup(1);
  const src = new ArraySource();
  src.push(frames(3));
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([redirect(0)]),
    targets: devs,
    deadlineNs: 50_000,
  });
  loop.cycle();
  const age = loop.counters[LoopCounter.MAX_STAGE_AGE_NS];
  const turn = loop.counters[LoopCounter.MAX_SOURCE_RUN_NS];
  // Both are measured from the same two clock readings: before the poll
  // and at the end-of-cycle flush.
  assert.ok(age > 0 && age <= turn, `stage age ${age} ns, turn ${turn} ns`);
  assert.equal(loop.counters[LoopCounter.DEADLINE_FLUSHES], 0);
  loop.close();
  done();
});
