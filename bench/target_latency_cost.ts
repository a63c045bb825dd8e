/**
 * What per-target latency recording (`targetLatency`, on by default for TAP
 * sources) costs:
 *
 * - one `bt_frames_latency` call alone, per stage of 1, 16 and 64 frames
 *   with a distinct timestamp each (the TAP case: every frame stamped at
 *   its own read; the worst case for the bucket runs), min of 5 timings;
 * - the in-memory scheduler path (generator -> forward -> device -> reader,
 *   1 Worker, the generator's one stamp per batch) with it on and off, in
 *   alternating pairs (on-off, then off-on) so a noisy machine's drift hits
 *   both; the cost as the median of the pairs' ns per frame.
 *
 * Run: `deno run -A bench/target_latency_cost.ts [--pairs N] [--seconds S] [--bulk B]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Device, FramePool, nowNs } from "../dataplane/mod.ts";
import { LatencyLayout, LatencyRecorder } from "../dataplane/latency.ts";
import { Scheduler } from "../dataplane/scheduler.ts";
import { library } from "../ffi/lib.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    pairs: { type: "string", default: "5" },
    seconds: { type: "string", default: "1" },
    bulk: { type: "string", default: "16" },
  },
});
const pairs = Number(values.pairs), seconds = Number(values.seconds), bulk = Number(values.bulk);

function callCost(n: number): number[] {
  const lib = library();
  using pool = new FramePool({ frames: 256 });
  const rec = new LatencyRecorder();
  const refs = new Uint32Array(n);
  pool.alloc(refs);
  const t = nowNs();
  // 3 us apart: every frame in a bucket of its own.
  refs.forEach((r, i) => pool.setTimestamp(r, t - 1000 - i * 3000));
  const iters = Math.floor(4e6 / n);
  const once = () => {
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) {
      lib.bt_frames_latency(refs, n, n, rec.words, LatencyLayout.WORDS);
    }
    return (performance.now() - t0) * 1e6 / iters;
  };
  once(); // warm-up
  const runs = Array.from({ length: 5 }, once);
  pool.free(refs);
  return runs;
}

async function mpps(targetLatency: boolean): Promise<number> {
  using pool = new FramePool({ frames: 16384 });
  using dev = new Device({ pool, queues: 1, ringSize: 4096 });
  const sched = new Scheduler({
    sources: [{ kind: "generator", pool: pool.handle }],
    program: { name: "forward", options: { target: 0 } },
    targets: [dev],
    readers: [{ device: dev.handle, queue: 0 }],
    bulk,
    targetLatency,
  });
  await sched.start();
  await new Promise((r) => setTimeout(r, 300));
  const a = sched.counters().read, t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = sched.counters().read, t1 = performance.now();
  const report = await sched.close();
  if (targetLatency && report.targets[0].latency?.count === 0) {
    throw new Error("target latency was not recorded");
  }
  return (b - a) / (t1 - t0) / 1e3;
}

const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)];

for (const n of [1, 16, 64]) {
  const runs = callCost(n);
  const best = Math.min(...runs);
  console.log(
    `bt_frames_latency, stage of ${n}: ${best.toFixed(1)} ns per call, ` +
      `${(best / n).toFixed(2)} ns per frame (runs: ${runs.map((x) => x.toFixed(0)).join(" ")})`,
  );
}
const on: number[] = [], off: number[] = [], cost: number[] = [];
for (let i = 0; i < pairs; i++) {
  const onFirst = i % 2 === 0;
  const x = await mpps(onFirst);
  const y = await mpps(!onFirst);
  const [a, b] = onFirst ? [x, y] : [y, x];
  on.push(a);
  off.push(b);
  cost.push(1e3 / a - 1e3 / b);
}
const f = (v: number[]) => v.map((x) => x.toFixed(2)).join(" ");
console.log(`scheduler, bulk ${bulk}, 1 Worker: on ${f(on)} Mpps; off ${f(off)} Mpps`);
console.log(
  `median on ${median(on).toFixed(2)}, off ${median(off).toFixed(2)} Mpps; cost per frame, ` +
    `median of pairs ${median(cost).toFixed(2)} ns [${Math.min(...cost).toFixed(2)}..${
      Math.max(...cost).toFixed(2)
    }]; load average ${Deno.loadavg()[0].toFixed(2)}`,
);
