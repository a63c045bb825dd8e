import assert from "assert";
import {
  Batch,
  Device,
  FramePool,
  histogramFromBuckets,
  LATENCY_BUCKET_ERROR,
  LatencyLayout,
  LatencyRecorder,
  MAX_LATENCY_NS,
  newLatencyHistogram,
  nowNs,
  PollLoop,
  redirect,
  Scheduler,
} from "../mod.ts";
import { library } from "../ffi/lib.ts";
import { latencyBucket } from "../dataplane/latency.ts";
import { assertAccounted } from "./helpers.ts";
import { ArraySource, fixedVerdicts } from "./sched_helpers.ts";

/** A deterministic PRNG (mulberry32): the same latencies on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Known latencies: log-uniform 1 ns .. 10 s, plus a dense cluster and edges. */
function knownLatencies(n: number): number[] {
  const rnd = prng(42);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd();
    if (r < 0.6) out.push(Math.max(1, Math.floor(Math.exp(rnd() * Math.log(1e10))))); // wide
    else out.push(20_000 + Math.floor(rnd() * 5_000)); // a 20-25 us mode
  }
  for (let k = 1; k <= 41; k++) out.push(2 ** k - 1, 2 ** k, 2 ** k + 1);
  out.push(1, 255, 256, 257, 511, 512, MAX_LATENCY_NS - 1);
  return out;
}

/** The value HDR's getValueAtPercentile reports, computed on the exact sorted data. */
function exactPercentile(sorted: number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length - 1e-9));
  return sorted[rank - 1];
}

/** Record latencies through the C path: stamp frames at T - L, consume at T. */
function recordThroughC(rec: LatencyRecorder, pool: FramePool, lat: number[], at: number): void {
  const refs = new Uint32Array(pool.frames);
  assert.equal(pool.alloc(refs), refs.length);
  for (let i = 0; i < lat.length; i += refs.length) {
    const n = Math.min(refs.length, lat.length - i);
    for (let k = 0; k < n; k++) pool.setTimestamp(refs[k], at - lat[i + k]);
    rec.recordBatchAt(refs, n, at);
  }
  pool.free(refs);
}

const T = 1e13; // "now" for deterministic tests: later than any stamp below
// Reported x' of true x: x(1 - 1/256) <= x' <= x(1 + 1/256)(1 + 1/1024).
const LOW = 1 - LATENCY_BUCKET_ERROR;
const HIGH = (1 + LATENCY_BUCKET_ERROR) * (1 + 1 / 1024);

Deno.test("latency: percentiles from the C buckets are within 0.5% of an exact sort of known latencies", () => {
  using pool = new FramePool({ frames: 4096 });
  const lat = knownLatencies(100_000);
  const rec = new LatencyRecorder();
  recordThroughC(rec, pool, lat, T);
  const h = rec.histogram;
  assert.equal(h.totalCount, lat.length, "every latency counted once");
  const sorted = [...lat].sort((a, b) => a - b);
  const ps = [0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 99.999, 100];
  for (const p of ps) {
    const exact = exactPercentile(sorted, p);
    const got = h.getValueAtPercentile(p);
    assert.ok(
      got >= Math.floor(exact * LOW) && got <= Math.ceil(exact * HIGH),
      `p${p}: ${got} ns from the buckets, ${exact} ns exact (bound ${LOW}..${HIGH})`,
    );
  }
  const max = sorted.at(-1)!;
  assert.ok(h.maxValue >= max * LOW && h.maxValue <= max * HIGH, `max ${h.maxValue} vs ${max}`);
  assert.equal(rec.summary().count, lat.length);
});

Deno.test("latency: below 256 ns every latency is recorded exactly", () => {
  using pool = new FramePool({ frames: 256 });
  const lat = Array.from({ length: 255 }, (_, i) => i + 1);
  const rec = new LatencyRecorder();
  recordThroughC(rec, pool, lat, T);
  const h = rec.histogram;
  for (const p of [1, 10, 50, 90, 99, 100]) {
    assert.equal(h.getValueAtPercentile(p), exactPercentile(lat, p), `p${p}`);
  }
  assert.equal(h.maxValue, 255);
});

Deno.test("latency: TypeScript and C put every latency in the same bucket", () => {
  using pool = new FramePool({ frames: 1024 });
  const rnd = prng(7);
  const lat: number[] = [];
  for (let v = 1; v <= 600; v++) lat.push(v);
  for (let k = 8; k <= 41; k++) lat.push(2 ** k - 1, 2 ** k, 2 ** k + 1, 3 * 2 ** (k - 1));
  for (let i = 0; i < 2000; i++) lat.push(Math.floor(rnd() * (MAX_LATENCY_NS - 1)) + 1);
  lat.push(MAX_LATENCY_NS - 1, MAX_LATENCY_NS, MAX_LATENCY_NS + 1);
  const c = new LatencyRecorder(), ts = new LatencyRecorder();
  recordThroughC(c, pool, lat, T);
  ts.recordRuns(Float64Array.from(lat), new Uint32Array(lat.length).fill(1), lat.length);
  assert.deepEqual(ts.words, c.words);
  assert.equal(
    latencyBucket(2 ** 42 - 1),
    LatencyLayout.BUCKETS - 1,
    "the last bucket is 2^42-1's",
  );
});

Deno.test("latency: each frame counts once, with shared or with distinct timestamps", () => {
  using pool = new FramePool({ frames: 64 });
  const refs = new Uint32Array(64);
  pool.alloc(refs);
  const shared = new LatencyRecorder(), distinct = new LatencyRecorder();
  for (const r of refs) pool.setTimestamp(r, T - 5000);
  shared.recordBatchAt(refs, 64, T);
  refs.forEach((r, i) => pool.setTimestamp(r, T - 5000 - 97 * i));
  distinct.recordBatchAt(refs, 64, T);
  pool.free(refs);
  assert.equal(shared.histogram.totalCount, 64);
  assert.equal(distinct.histogram.totalCount, 64);
  assert.equal(shared.count, 64);
  assert.equal(distinct.count, 64);
});

Deno.test("latency: a bad ref is skipped alone; later frames of its pool are still recorded", () => {
  using pool = new FramePool({ frames: 16 });
  const good = new Uint32Array(2);
  pool.alloc(good);
  for (const r of good) pool.setTimestamp(r, T - 1000);
  // Same pool slot as the good frames, index past the pool's end; then a
  // slot no pool uses.
  const pastEnd = (good[0] & ~0xffffff) | (pool.frames + 5);
  const noPool = 0xfe000001;
  const rec = new LatencyRecorder();
  rec.recordBatchAt(Uint32Array.of(pastEnd, good[0], noPool, good[1]), 4, T);
  pool.free(good);
  assert.equal(rec.count, 2, "both good frames recorded");
  assert.equal(rec.unstamped, 2, "both bad refs counted as skipped");
});

Deno.test("latency: frames without a timestamp are counted as unstamped, not recorded", () => {
  using pool = new FramePool({ frames: 8 });
  const refs = new Uint32Array(4);
  pool.alloc(refs);
  pool.setTimestamp(refs[0], 0);
  pool.setTimestamp(refs[1], T - 300);
  pool.setTimestamp(refs[2], 0);
  pool.setTimestamp(refs[3], T - 300);
  const rec = new LatencyRecorder();
  rec.recordBatchAt(refs, 4, T);
  pool.free(refs);
  assert.equal(rec.histogram.totalCount, 2);
  assert.equal(rec.unstamped, 2);
});

Deno.test("latency: a latency of an hour or more is recorded as one hour, never thrown", () => {
  using pool = new FramePool({ frames: 8 });
  const refs = new Uint32Array(2);
  pool.alloc(refs);
  for (const r of refs) pool.setTimestamp(r, 1);
  const rec = new LatencyRecorder();
  rec.recordBatchAt(refs, 2, 2 * MAX_LATENCY_NS);
  pool.free(refs);
  const s = rec.summary();
  assert.equal(s.count, 2);
  // HDR reports at most the highest value of its bucket holding 1 h: 1/1024 above.
  for (const [k, v] of [["p50", s.p50], ["max", s.max]] as const) {
    assert.ok(v >= MAX_LATENCY_NS && v <= MAX_LATENCY_NS * (1 + 1 / 1024), `${k} ${v}`);
  }
});

Deno.test("latency: a clock reading before the stamp counts as 1 ns", () => {
  using pool = new FramePool({ frames: 8 });
  const refs = new Uint32Array(1);
  pool.alloc(refs);
  pool.setTimestamp(refs[0], T + 500);
  const rec = new LatencyRecorder();
  rec.recordBatchAt(refs, 1, T);
  pool.free(refs);
  assert.equal(rec.summary().max, 1);
});

Deno.test("latency: histograms folded from several recorders merge to those of one recorder", () => {
  using pool = new FramePool({ frames: 4096 });
  const lat = knownLatencies(20_000);
  const all = new LatencyRecorder(), a = new LatencyRecorder(), b = new LatencyRecorder();
  recordThroughC(all, pool, lat, T);
  recordThroughC(a, pool, lat.slice(0, 7000), T);
  recordThroughC(b, pool, lat.slice(7000), T);
  const merged = histogramFromBuckets(b.shared, histogramFromBuckets(a.shared));
  const one = all.histogram;
  assert.equal(merged.totalCount, one.totalCount);
  for (const p of [50, 90, 99, 99.9, 100]) {
    assert.equal(merged.getValueAtPercentile(p), one.getValueAtPercentile(p), `p${p}`);
  }
});

Deno.test("latency: a buffer that is not a bucket array is refused with EINVAL", () => {
  assert.throws(() => histogramFromBuckets(new SharedArrayBuffer(64)), /EINVAL.*36928/);
  assert.throws(
    () => histogramFromBuckets(new SharedArrayBuffer(LatencyLayout.BYTES)),
    /EINVAL.*magic/,
  );
  assert.equal(histogramFromBuckets(new LatencyRecorder().shared).totalCount, 0);
});

Deno.test("latency: a reader records each consumed frame's own latency in C", () => {
  using pool = new FramePool({ frames: 64 });
  using dev = new Device({ pool, ringSize: 64 });
  const refs = new Uint32Array(10);
  pool.alloc(refs);
  const t = nowNs();
  // Distinct stamps 100 ms apart: latencies 100 ms .. 1 s, plus the test's own delay.
  refs.forEach((r, i) => pool.setTimestamp(r, t - (i + 1) * 100e6));
  assert.equal(dev.xmit(refs), 10);
  const loop = new PollLoop({
    sources: [],
    program: () => {},
    targets: [],
    readers: [{ device: dev.handle, queue: 0, label: "r" }],
  });
  loop.cycle();
  const elapsed = nowNs() - t;
  const s = loop.latency.get("r")!.summary();
  assert.equal(s.count, 10);
  assert.ok(s.p50 >= 500e6 * LOW && s.p50 <= (500e6 + elapsed) * HIGH, `p50 ${s.p50}`);
  assert.ok(s.max >= 1e9 * LOW && s.max <= (1e9 + elapsed) * HIGH, `max ${s.max}`);
  loop.close();
  assertAccounted(pool, 0);
});

Deno.test("latency: consuming with a buffer that is not a bucket array fails EINVAL and takes no frame", () => {
  using pool = new FramePool({ frames: 64 });
  using dev = new Device({ pool, ringSize: 64 });
  const refs = new Uint32Array(4);
  pool.alloc(refs);
  assert.equal(dev.xmit(refs), 4);
  const lib = library();
  const out = new Uint32Array(64);
  const zeroed = new BigUint64Array(LatencyLayout.WORDS); // no magic
  assert.equal(lib.bt_queue_consume(dev.handle, 0, out, 64, 64, zeroed, zeroed.length), -22);
  const rec = new LatencyRecorder();
  assert.equal(lib.bt_queue_consume(dev.handle, 0, out, 64, 64, rec.words, 8), -22, "too small");
  assert.equal(dev.stats().queued, 4, "the frames are still queued");
  assert.equal(lib.bt_queue_consume(dev.handle, 0, out, 64, 64, rec.words, rec.words.length), 4);
  assertAccounted(pool, 0);
});

Deno.test("scheduler: latency is read live from shared buckets, exact at close, per Worker and target queue", async () => {
  using pool = new FramePool({ frames: 8192 });
  using other = new Device({ pool, queues: 1 });
  using dev = new Device({ pool, queues: 2, ringSize: 256 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, rate: 20_000 })),
    program: { name: "forward", options: { target: 1 } },
    targets: [other, dev],
    readers: [0, 1].map((q) => ({ device: dev.handle, queue: q })),
  });
  await sched.start();
  await new Promise((r) => setTimeout(r, 300));
  const live = sched.histogram().totalCount;
  const report = await sched.close();
  const read = report.counters.read;
  assert.ok(live > 0, "the live histogram sees frames while Workers run");
  assert.ok(live <= read, `live ${live} <= final ${read}`);
  assert.equal(report.latency.count, read, "at close every read frame has a latency");
  const labels = Object.keys(report.latencyByLabel).sort();
  const workers = Object.keys(report.latencyByWorker).sort();
  // Queue choice is cpu % queues: Worker w transmits to queue w, read by reader w on Worker w.
  assert.deepEqual(labels, ["t1/q0", "t1/q1"]);
  assert.deepEqual(workers, ["cpu0/t1/q0", "cpu1/t1/q1"]);
  const sum = Object.values(report.latencyByWorker).reduce((a, s) => a + s.count, 0);
  assert.equal(sum, read);
  assert.equal(newLatencyHistogram().totalCount, 0);
});

Deno.test("latency: with targetLatency a poll loop records each frame once in its target's histogram, stamp to transmit", () => {
  using pool = new FramePool({ frames: 64 });
  using a = new Device({ pool, ringSize: 64 });
  using b = new Device({ pool, ringSize: 64 });
  const src = new ArraySource();
  const refs = new Uint32Array(10);
  pool.alloc(refs);
  const t = nowNs();
  // Frames 0..5 for target 0, stamped 100 ms ago; 6..9 for target 1, 200 ms ago.
  refs.forEach((r, i) => {
    pool.setLength(r, 60);
    pool.setTimestamp(r, t - (i < 6 ? 100e6 : 200e6));
  });
  src.push(refs);
  const loop = new PollLoop({
    sources: [src],
    program: fixedVerdicts([0, 0, 0, 0, 0, 0, 1, 1, 1, 1].map((x) => redirect(x))),
    targets: [a, b],
    bulk: 4, // target 0 needs a full stage and a flushed one: both record
    targetLatency: true,
  });
  loop.cycle();
  const elapsed = nowNs() - t;
  const [sa, sb] = loop.targetLatency.map((r) => r.summary());
  assert.equal(sa.count, 6);
  assert.equal(sb.count, 4);
  assert.ok(sa.p50 >= 100e6 * LOW && sa.max <= (100e6 + elapsed) * HIGH, `target 0: ${sa.max}`);
  assert.ok(sb.p50 >= 200e6 * LOW && sb.max <= (200e6 + elapsed) * HIGH, `target 1: ${sb.max}`);
  assert.equal(a.stats().txPackets + b.stats().txPackets, 10);
  loop.close();
  for (const d of [a, b]) {
    const got = new Batch(64);
    d.queue(0).poll(got);
    got.release();
  }
  assertAccounted(pool, 0);
});

Deno.test("scheduler: targetLatency reports each target's latency, merged over Workers, one count per frame handed to it", async () => {
  using pool = new FramePool({ frames: 8192 });
  using other = new Device({ pool, queues: 1 });
  using dev = new Device({ pool, queues: 2, ringSize: 256 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, rate: 20_000 })),
    program: { name: "forward", options: { target: 1 } },
    targets: [other, dev],
    readers: [0, 1].map((q) => ({ device: dev.handle, queue: q })),
    targetLatency: true,
  });
  await sched.start();
  await new Promise((r) => setTimeout(r, 300));
  const live = sched.targetHistogram(1).totalCount;
  const report = await sched.close();
  const [t0, t1] = report.targets;
  assert.ok(live > 0 && live <= t1.sent + t1.dropped, `live ${live}`);
  assert.equal(t1.latency!.count, t1.sent + t1.dropped, "every frame handed to it, once");
  assert.ok(t1.sent > 0 && t1.latency!.p50 > 0 && t1.latency!.max >= t1.latency!.p99);
  // Stamp to transmit comes before the reader: never longer than stamp to read.
  assert.ok(t1.latency!.p50 <= report.latency.p50 * HIGH / LOW, "transmit before read");
  assert.equal(t0.latency!.count, 0, "nothing went to target 0");
});

Deno.test("scheduler: target latency is off by default without a TAP source, and refused in cycle mode", async () => {
  using pool = new FramePool({ frames: 1024 });
  using dev = new Device({ pool, queues: 1 });
  const o = {
    sources: [{ kind: "generator", pool: pool.handle, limit: 64 }],
    program: { name: "forward", options: { target: 0 } },
    targets: [dev],
  };
  const sched = new Scheduler(o);
  assert.equal(sched.recordsTargetLatency, false);
  await sched.start();
  const report = await sched.close();
  assert.equal(report.targets[0].latency, undefined);
  assert.throws(
    () => new Scheduler({ ...o, stageMode: "cycle", targetLatency: true }),
    /EINVAL.*cycle/,
  );
  const got = new Batch(64);
  dev.queue(0).poll(got);
  got.release();
});
