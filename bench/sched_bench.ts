/**
 * Scheduler benchmarks: generator -> program -> in-memory device(s) ->
 * readers, on 1 or 2 Workers. Reports, per case, the median and min-max
 * over repeats of Mpps (frames consumed by readers per second) and p99
 * latency (frame creation to reader), next to the baseline. Every run also
 * keeps drops, lock acquisitions, wake-ups and CPU time (`runs`), which
 * `mod.ts bench` reports. Cases:
 *
 * - bulk-16 vs single mode (one frame per xmit call), 1/2 CPUs x 1/2 queues;
 * - the device map's two ways into C: one FFI call per cycle for all
 *   targets (`bt_devmap_xmit`) vs one per stage (`bt_xmit`), 1 and 4 targets;
 * - the latency histogram's cost: throughput with recording on vs off
 *   (1 Worker, 1 queue, bulk 16), both with timestamps shared by a batch
 *   (the generator's) and with a distinct timestamp per frame (every frame
 *   restamped, scattered over buckets: the worst case). On and off runs
 *   alternate (on-off, then off-on), so drift of a noisy machine hits both;
 *   the cost is given from the medians and as the median of back-to-back
 *   pairs. Plus ns per frame of `LatencyRecorder.recordBatch` alone;
 * - idle CPU: a dataplane with no traffic, as a share of one CPU;
 * - generator rate: frames per second a fixed-rate generator made, beside
 *   the rate asked for ({@linkcode generatorRate}; `mod.ts bench` only).
 *
 * Run: `deno run -A bench/sched_bench.ts [--repeats N] [--seconds S] [--frame-size B]
 * [--cost-only] [--json]`
 *
 * @module
 */
import { intFlag, numFlag, scriptFlags } from "../dataplane/cli/flags.ts";
import process from "node:process";
import { Device, FramePool, type StageMode } from "../dataplane/mod.ts";
import { LatencyRecorder, percentileDistribution } from "../dataplane/latency.ts";
import { Scheduler, type SchedulerOptions } from "../dataplane/scheduler.ts";
import type { LatencyRun } from "./points.ts";
import { repeatOrder } from "./stats.ts";

/** One benchmark case. */
export interface BenchCase {
  /** Label. */
  name: string;
  /** Frames per stage (1 = single mode). */
  bulk: number;
  /** How stages cross into C. */
  stageMode: StageMode;
  /** Workers. */
  cpus: number;
  /** Queues per device. */
  queues: number;
  /** Devices in the map (the program spreads frames over them). */
  targets?: number;
  /** Record latency (default true). */
  latency?: boolean;
  /**
   * Timestamps the readers see: `"batch"` (default: the generator stamps a
   * batch with one clock reading) or `"each"` (every frame restamped with
   * its own time by {@linkcode forwardStampEach}; 1 target only).
   */
  stamps?: "batch" | "each";
  /** Bytes per generated frame (default: the run's frame size). */
  frameSize?: number;
}

/** What one run of one case measured (counters are deltas over the measured window). */
export interface SchedRun {
  /** Frames consumed by readers per second, millions. */
  mpps: number;
  /** Frames consumed by readers in the window. */
  frames: number;
  /** The measured window, ns. */
  wallNs: number;
  /** CPU time of the process (every Worker, user + system) in the window, ns. */
  cpuNs: number;
  /** Frames the program staged for the targets in the window (sent + refused). */
  offered: number;
  /** Frames the targets refused (ring full; back in their pool). */
  drops: number;
  /** xmit calls into the targets per offered frame. */
  callsPerFrame: number;
  /** Producer lock acquisitions of the targets per offered frame. */
  locksPerFrame: number;
  /** Doorbells that woke a sleeping reader, per frame sent. */
  wakeupsPerFrame: number;
  /**
   * Latency from the generator's stamp to the reader over the whole run
   * (warm-up included), when recorded: percentiles and the HDR curve, ns.
   */
  latency?: LatencyRun;
}

/** Median and range of a case over its repeats. */
export interface BenchResult {
  case: BenchCase;
  mpps: { median: number; min: number; max: number; runs: number[] };
  p99Ns: { median: number; min: number; max: number; runs: number[] };
  /** Every repeat, in run order. */
  runs: SchedRun[];
}

/** Median, min, max and every repeat. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

/** The latency histogram's cost for one kind of timestamps. */
export interface HistogramCost {
  /** Shared per batch (generator) or distinct per frame. */
  stamps: "batch" | "each";
  /** Mpps with recording on. */
  on: Stat;
  /** Mpps with recording off. */
  off: Stat;
  /** 1 - median(on) / median(off). */
  cost: number;
  /** 1 - on / off of each back-to-back pair, over the repeats. */
  pairedCost: Stat;
  /** 1-minute load average before and after the measurement (a busy machine shows here). */
  loadAvg: [number, number];
}

/** Everything {@linkcode schedBench} measured. */
export interface SchedBenchReport {
  machine: { cpu: string; cores: number; deno: string; v8: string };
  frameSize: number;
  seconds: number;
  repeats: number;
  results: BenchResult[];
  /** Recording on vs off (empty when not measured). */
  histogramCost: HistogramCost[];
  /** NaN when run with `extras: false`. */
  recordNsPerFrame: { sameTimestamp: number; distinctTimestamps: number };
  /** NaN when run with `extras: false`. */
  idleCpuShare: number;
}

const stat = (xs: number[]): Stat => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: xs };
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function once(c: BenchCase, seconds: number, frameSize: number): Promise<SchedRun> {
  const targets = c.targets ?? 1;
  const ring = 1024;
  using pool = new FramePool({
    frames: targets * c.queues * ring + c.cpus * 8192,
    frameSize: 2048,
  });
  const devs = Array.from(
    { length: targets },
    () => new Device({ pool, queues: c.queues, ringSize: ring }),
  );
  const opts: SchedulerOptions = {
    cpus: c.cpus,
    sources: Array.from({ length: c.cpus }, (_, cpu) => ({
      kind: "generator",
      cpu,
      pool: pool.handle,
      frameSize: c.frameSize ?? frameSize,
      flows: 64,
    })),
    program: c.stamps === "each"
      ? {
        name: "forwardStampEach",
        module: new URL("./latency_programs.ts", import.meta.url).href,
        options: { target: 0 },
      }
      : targets === 1
      ? { name: "forward", options: { target: 0 } }
      : {
        name: "spread",
        module: new URL("./programs.ts", import.meta.url).href,
        options: { targets },
      },
    targets: devs,
    readers: devs.flatMap((d) =>
      Array.from({ length: c.queues }, (_, q) => ({ device: d.handle, queue: q }))
    ),
    bulk: c.bulk,
    stageMode: c.stageMode,
    latency: c.latency ?? true,
  };
  const sched = new Scheduler(opts);
  await sched.start();
  await sleep(200); // warm up the JIT
  const tx = () => {
    let calls = 0, locks = 0, wakeups = 0;
    for (const d of devs) {
      const st = d.stats();
      calls += st.xmitCalls;
      locks += st.lockAcquisitions;
      wakeups += st.wakeupsSent;
    }
    return { calls, locks, wakeups };
  };
  const c0 = sched.counters();
  const d0 = tx();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const c1 = sched.counters();
  const d1 = tx();
  const u = process.cpuUsage(u0);
  const t1 = performance.now();
  const report = await sched.close();
  for (const d of devs) d.close();
  const sent = c1.txSent - c0.txSent;
  const drops = c1.txDropped - c0.txDropped;
  const offered = Math.max(1, sent + drops);
  const lat = report.latency;
  return {
    mpps: (c1.read - c0.read) / (t1 - t0) / 1000,
    frames: c1.read - c0.read,
    wallNs: (t1 - t0) * 1e6,
    cpuNs: (u.user + u.system) * 1000,
    offered: sent + drops,
    drops,
    callsPerFrame: (d1.calls - d0.calls) / offered,
    locksPerFrame: (d1.locks - d0.locks) / offered,
    wakeupsPerFrame: (d1.wakeups - d0.wakeups) / Math.max(1, sent),
    latency: lat.count > 0
      ? {
        samples: lat.count,
        p50: lat.p50,
        p99: lat.p99,
        p999: lat.p999,
        max: lat.max,
        curve: percentileDistribution(report.histogram),
      }
      : undefined,
  };
}

function loadAvg(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN; // not Linux
  }
}

/** The cases of the histogram-cost measurement: recording on/off x timestamp kinds. */
export const COST_CASES: BenchCase[] = (["batch", "each"] as const).flatMap((stamps) =>
  [true, false].map((latency) => ({
    name: `cost: stamps per ${stamps === "batch" ? "batch" : "frame"}, recording ${
      latency ? "on" : "off"
    }`,
    bulk: 16,
    stageMode: "target" as const,
    cpus: 1,
    queues: 1,
    latency,
    stamps,
  }))
);

/**
 * Throughput with latency recording on vs off, for timestamps shared per
 * batch and distinct per frame. Each repeat runs, per kind, an on and an
 * off run back to back, in alternating order (on-off, off-on, ...).
 */
async function histogramCost(
  repeats: number,
  seconds: number,
  frameSize: number,
  log?: (s: string) => void,
): Promise<HistogramCost[]> {
  const out: HistogramCost[] = [];
  const load0 = loadAvg();
  const runs = new Map<string, number[]>(COST_CASES.map((c) => [c.name, []]));
  for (let r = 0; r < repeats; r++) {
    for (const stamps of ["batch", "each"] as const) {
      const pair = COST_CASES.filter((c) => c.stamps === stamps);
      if (r % 2 === 1) pair.reverse();
      for (const c of pair) {
        const x = await once(c, seconds, frameSize);
        runs.get(c.name)!.push(x.mpps);
        log?.(`repeat ${r + 1}/${repeats} ${c.name}: ${x.mpps.toFixed(2)} Mpps`);
      }
    }
  }
  const load1 = loadAvg();
  for (const stamps of ["batch", "each"] as const) {
    const [on, off] = [true, false].map((l) =>
      runs.get(COST_CASES.find((c) => c.stamps === stamps && c.latency === l)!.name)!
    );
    const on_ = stat(on), off_ = stat(off);
    out.push({
      stamps,
      on: on_,
      off: off_,
      cost: 1 - on_.median / off_.median,
      pairedCost: stat(on.map((x, i) => 1 - x / off[i])),
      loadAvg: [load0, load1],
    });
  }
  return out;
}

function recordCost(): { sameTimestamp: number; distinctTimestamps: number } {
  using pool = new FramePool({ frames: 256 });
  const refs = new Uint32Array(64);
  pool.alloc(refs);
  const out = { sameTimestamp: 0, distinctTimestamps: 0 };
  for (const distinct of [false, true]) {
    // Distinct: scattered over buckets, as in forwardStampEach.
    refs.forEach((r, i) => pool.setTimestamp(r, 1e12 + (distinct ? (i * 40503) & 0xffff : 0)));
    const rec = new LatencyRecorder();
    const n = 100_000;
    for (let i = 0; i < 1000; i++) rec.recordBatch(refs, 64); // warm up
    const t0 = performance.now();
    for (let i = 0; i < n; i++) rec.recordBatch(refs, 64);
    const ns = (performance.now() - t0) * 1e6 / (n * 64);
    if (distinct) out.distinctTimestamps = ns;
    else out.sameTimestamp = ns;
  }
  pool.free(refs);
  return out;
}

/**
 * CPU used by an idle dataplane (2 Workers on 2 queues, no traffic) over
 * `ms`, as a share of one CPU.
 *
 * @example
 * ```ts ignore
 * import { idleShare } from "./bench/sched_bench.ts";
 * console.log(await idleShare(200) < 0.5);
 * ```
 */
export async function idleShare(ms = 1000): Promise<number> {
  using pool = new FramePool({ frames: 256 });
  const dev = new Device({ pool, queues: 2, ringSize: 64 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map((q) => ({ kind: "queue", device: dev.handle, queue: q })),
    program: { name: "drop" },
    targets: [],
  });
  await sched.start();
  await sleep(200);
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  await sleep(ms);
  const u = process.cpuUsage(u0);
  const share = (u.user + u.system) / ((performance.now() - t0) * 1000);
  await sched.close();
  dev.close();
  return share;
}

/**
 * Frames a generator at a fixed `rate` (frames/s) made per second over
 * `ms`, after a 200 ms warm-up: 1 Worker, generator -> forward -> 1 queue
 * -> reader. A late Worker makes its frames late, not never, so a shortfall
 * here is a window the Worker spent descheduled.
 *
 * @example
 * ```ts ignore
 * import { generatorRate } from "./bench/sched_bench.ts";
 * console.log(await generatorRate(100_000, 200)); // ~100000
 * ```
 */
export async function generatorRate(rate = 100_000, ms = 1000): Promise<number> {
  using pool = new FramePool({ frames: 4096 });
  const dev = new Device({ pool, queues: 1, ringSize: 1024 });
  const sched = new Scheduler({
    cpus: 1,
    sources: [{ kind: "generator", pool: pool.handle, rate }],
    program: { name: "forward", options: { target: 0 } },
    targets: [dev],
    readers: [{ device: dev.handle, queue: 0 }],
  });
  await sched.start();
  await sleep(200);
  const rx0 = sched.counters().rx;
  const t0 = performance.now();
  await sleep(ms);
  const pps = (sched.counters().rx - rx0) / ((performance.now() - t0) / 1000);
  await sched.close();
  dev.close();
  return pps;
}

function machine() {
  let cpu = "unknown";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? cpu;
  } catch { /* not Linux */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

/** The cases the closing note reports. */
export const CASES: BenchCase[] = [
  ...[1, 2].flatMap((cpus) =>
    [1, 2].flatMap((queues) => [
      {
        name: `single  cpus=${cpus} queues=${queues}`,
        bulk: 1,
        stageMode: "target" as const,
        cpus,
        queues,
      },
      {
        name: `bulk-16 cpus=${cpus} queues=${queues}`,
        bulk: 16,
        stageMode: "target" as const,
        cpus,
        queues,
      },
    ])
  ),
  { name: "bulk-16 per-stage FFI, 1 target", bulk: 16, stageMode: "target", cpus: 1, queues: 1 },
  { name: "bulk-16 per-cycle FFI, 1 target", bulk: 16, stageMode: "cycle", cpus: 1, queues: 1 },
  {
    name: "bulk-16 per-stage FFI, 4 targets",
    bulk: 16,
    stageMode: "target",
    cpus: 1,
    queues: 1,
    targets: 4,
  },
  {
    name: "bulk-16 per-cycle FFI, 4 targets",
    bulk: 16,
    stageMode: "cycle",
    cpus: 1,
    queues: 1,
    targets: 4,
  },
];

/**
 * Run the benchmark cases; each case `repeats` times for `seconds` each.
 * Every repeat runs every case once; odd repeats run them in reverse order,
 * so slow drift of the machine hits single and bulk (listed side by side)
 * alike. `extras: false` skips the recordBatch and idle measurements.
 * The histogram's cost (recording on vs off, {@linkcode COST_CASES}) is
 * measured when `histogramCost` is true, by default when `cases` is not
 * given.
 *
 * @example
 * ```ts
 * import { schedBench } from "./bench/sched_bench.ts";
 * const r = await schedBench({ repeats: 1, seconds: 0.2, extras: false });
 * console.log(r.results.length > 0);
 * ```
 */
export async function schedBench(
  options: {
    repeats?: number;
    seconds?: number;
    frameSize?: number;
    cases?: BenchCase[];
    histogramCost?: boolean;
    extras?: boolean;
    log?: (s: string) => void;
    onRun?: (c: BenchCase, repeat: number, run: SchedRun) => void;
  } = {},
): Promise<SchedBenchReport> {
  const repeats = options.repeats ?? 5;
  const seconds = options.seconds ?? 1;
  const frameSize = options.frameSize ?? 64;
  const cases = options.cases ?? CASES;
  const measureCost = options.histogramCost ?? options.cases === undefined;
  const runs = cases.map(() => [] as SchedRun[]);
  for (let r = 0; r < repeats; r++) {
    for (const i of repeatOrder(cases.length, r)) {
      const x = await once(cases[i], seconds, frameSize);
      runs[i].push(x);
      options.onRun?.(cases[i], r, x);
      options.log?.(
        `repeat ${r + 1}/${repeats} ${cases[i].name}: ${x.mpps.toFixed(2)} Mpps, p99 ${
          x.latency?.p99 ?? 0
        } ns`,
      );
    }
  }
  const extras = options.extras ?? true;
  return {
    machine: machine(),
    frameSize,
    seconds,
    repeats,
    results: cases.map((c, i) => ({
      case: c,
      mpps: stat(runs[i].map((x) => x.mpps)),
      p99Ns: stat(runs[i].map((x) => x.latency?.p99 ?? 0)),
      runs: runs[i],
    })),
    histogramCost: measureCost ? await histogramCost(repeats, seconds, frameSize, options.log) : [],
    recordNsPerFrame: extras ? recordCost() : { sameTimestamp: NaN, distinctTimestamps: NaN },
    idleCpuShare: extras ? await idleShare() : NaN,
  };
}

function print(r: SchedBenchReport): void {
  const m = r.machine;
  console.log(`machine: ${m.cpu}, ${m.cores} cores; deno ${m.deno}, V8 ${m.v8}`);
  if (r.results.length) {
    console.log(
      `frames: ${r.frameSize} B; ${r.repeats} repeats x ${r.seconds} s per case; median [min-max]\n` +
        `baseline: single mode (one frame per xmit call, one lock per frame) with the same CPUs/queues`,
    );
  }
  const single = new Map<string, number>();
  for (const x of r.results) {
    if (x.case.bulk === 1) single.set(`${x.case.cpus}/${x.case.queues}`, x.mpps.median);
  }
  const rows: Record<string, Record<string, string>> = {};
  for (const x of r.results) {
    const base = single.get(`${x.case.cpus}/${x.case.queues}`);
    rows[x.case.name] = {
      "Mpps": `${x.mpps.median.toFixed(2)} [${x.mpps.min.toFixed(2)}-${x.mpps.max.toFixed(2)}]`,
      "p99 us": `${(x.p99Ns.median / 1e3).toFixed(1)} [${(x.p99Ns.min / 1e3).toFixed(1)}-${
        (x.p99Ns.max / 1e3).toFixed(1)
      }]`,
      "vs single": x.case.bulk > 1 && base && !x.case.targets && x.case.latency !== false
        ? `${(x.mpps.median / base).toFixed(2)}x`
        : "",
    };
  }
  if (r.results.length) console.table(rows);
  printCost(r);
  console.log(
    `idle dataplane (2 Workers, no traffic): ${(r.idleCpuShare * 100).toFixed(1)}% of one CPU`,
  );
}

const mppsStat = (s: Stat) => `${s.median.toFixed(2)} [${s.min.toFixed(2)}-${s.max.toFixed(2)}]`;
const pctStat = (s: Stat) =>
  `${(100 * s.median).toFixed(1)}% [${(100 * s.min).toFixed(1)}-${(100 * s.max).toFixed(1)}%]`;

function printCost(r: SchedBenchReport): void {
  if (r.histogramCost.length) {
    console.log(
      `histogram cost: 1 Worker, 1 queue, bulk 16, ${r.frameSize} B frames; baseline: the same ` +
        `with recording off; ${r.repeats} on/off pairs run back to back in alternating order, ` +
        `${r.seconds} s each; Mpps median [min-max]`,
    );
    const [a, b] = r.histogramCost[0].loadAvg;
    console.log(`  load average (1 min) before ${a.toFixed(2)}, after ${b.toFixed(2)}`);
    for (const c of r.histogramCost) {
      const kind = c.stamps === "batch"
        ? "timestamps shared per batch (generator)"
        : "a distinct timestamp per frame (restamped)";
      console.log(
        `  ${kind}: on ${mppsStat(c.on)} vs off ${mppsStat(c.off)} Mpps: cost ${
          (100 * c.cost).toFixed(1)
        }% of throughput (per pair: ${pctStat(c.pairedCost)})`,
      );
    }
  }
  console.log(
    `recordBatch alone: ${
      r.recordNsPerFrame.sameTimestamp.toFixed(2)
    } ns/frame (frames of one batch), ` +
      `${r.recordNsPerFrame.distinctTimestamps.toFixed(2)} ns/frame (every timestamp distinct)`,
  );
}

if (import.meta.main) {
  const o = scriptFlags(
    "bench/sched_bench.ts",
    "usage: deno run -A bench/sched_bench.ts [--repeats N] [--seconds S] [--frame-size B] " +
      "[--cost-only] [--json]\n" +
      "  --repeats N      runs per case, 1..1000 (default 5)\n" +
      "  --seconds S      length of one run (default 1)\n" +
      "  --frame-size B   bytes per frame, 60..1792 (default 64)\n" +
      "  --cost-only      only the latency histogram's cost\n" +
      "  --json           one JSON object on stdout",
    {
      repeats: "string",
      seconds: "string",
      "frame-size": "string",
      "cost-only": "boolean",
      json: "boolean",
    },
    (v) => ({
      repeats: intFlag("repeats", v.repeats, 5, 1, 1000),
      seconds: numFlag("seconds", v.seconds, 1, 0.001, 1e6),
      frameSize: intFlag("frame-size", v["frame-size"], 64, 60, 1792),
      costOnly: v["cost-only"] === true,
      json: v.json === true,
    }),
  );
  const report = await schedBench({
    repeats: o.repeats,
    seconds: o.seconds,
    frameSize: o.frameSize,
    cases: o.costOnly ? [] : undefined,
    histogramCost: true,
    log: o.json ? undefined : (s) => console.error(s),
  });
  if (o.json) console.log(JSON.stringify(report));
  else print(report);
}
