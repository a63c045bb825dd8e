/**
 * The shape every benchmark provider returns, so the harness, the terminal
 * table, the JSON file and the HTML report treat them alike: a provider
 * (the TypeScript API benchmark, the C ring peers, later the C ring
 * benchmark, TAP and scheduler benchmarks) is a {@linkcode ScenarioProvider}
 * that turns a {@linkcode ProviderContext} into {@linkcode ResultEntry}s.
 *
 * @module
 */
import { type Spread, spread } from "./stats.ts";

/** Latency of one run: percentiles and an HDR-style percentile curve, in ns. */
export interface LatencyRun {
  /** Samples recorded. */
  samples: number;
  /** Median latency, ns. */
  p50: number;
  /** 99th percentile, ns. */
  p99: number;
  /** 99.9th percentile, ns. */
  p999: number;
  /** Largest sample, ns. */
  max: number;
  /** [percentile 0..100, ns] pairs, percentiles 0, 50, 75, 87.5, ... 100. */
  curve: [number, number][];
}

/**
 * The per-frame metrics a point carries beside throughput. Each is either
 * measured in every raw repeat or named in the point's
 * {@linkcode BenchPoint.notApplicable} with the reason it cannot be.
 */
export const METRICS = ["locksPerFrame", "wakeupsPerFrame", "drops", "latency", "cpu"] as const;

/** One of {@linkcode METRICS}. */
export type Metric = typeof METRICS[number];

/** One raw repeat of one point. */
export interface RawRun {
  /** Repeat index (0-based) within the provider's run order. */
  repeat: number;
  /** Millions of frames per second delivered. */
  mpps: number;
  /** Frames delivered in the measured window. */
  frames?: number;
  /** Length of the measured window, ns. */
  wallNs?: number;
  /**
   * CPU time (user + system, every thread) the benchmark's process used in
   * the measured window, ns.
   */
  cpuNs?: number;
  /** Frames offered but not accepted (back in their pool, counted as dropped). */
  drops?: number;
  /** Share of offered frames dropped (0..1). */
  dropShare?: number;
  /** Transmit/enqueue calls per offered frame. */
  callsPerFrame?: number;
  /** Producer lock acquisitions per offered frame. */
  locksPerFrame?: number;
  /** Doorbells that had to wake a sleeping reader, per frame. */
  wakeupsPerFrame?: number;
  /** System calls per frame (TAP writes or io_uring submits). */
  syscallsPerFrame?: number;
  /** Latency of this repeat. */
  latency?: LatencyRun;
}

/**
 * What a TypeScript provider measured in one run (api, sched and tap runs
 * all have this shape): {@linkcode RawRun} without its repeat index, with
 * the frames offered so the drop share can be derived.
 */
export interface RunMeasures {
  mpps: number;
  frames: number;
  wallNs: number;
  cpuNs: number;
  /** Frames offered on the measured path. */
  offered: number;
  drops: number;
  /** drops / offered, when the provider computed it itself. */
  dropShare?: number;
  callsPerFrame?: number;
  locksPerFrame?: number;
  wakeupsPerFrame?: number;
  syscallsPerFrame?: number;
  latency?: LatencyRun;
}

/**
 * A provider's runs, in run order, as raw repeats.
 *
 * @example
 * ```ts
 * import { rawRunsOf } from "./bench/points.ts";
 * const [r] = rawRunsOf([{ mpps: 2, frames: 20, wallNs: 1e7, cpuNs: 1e7, offered: 40, drops: 20 }]);
 * console.log(r.repeat, r.dropShare); // 0 0.5
 * ```
 */
export function rawRunsOf(runs: readonly RunMeasures[]): RawRun[] {
  return runs.map((r, repeat) => ({
    repeat,
    mpps: r.mpps,
    frames: r.frames,
    wallNs: r.wallNs,
    cpuNs: r.cpuNs,
    drops: r.drops,
    dropShare: r.dropShare ?? (r.offered ? r.drops / r.offered : 0),
    callsPerFrame: r.callsPerFrame,
    locksPerFrame: r.locksPerFrame,
    wakeupsPerFrame: r.wakeupsPerFrame,
    syscallsPerFrame: r.syscallsPerFrame,
    latency: r.latency,
  }));
}

/** Latency summary of a point: spreads over repeats and the median run's curve. */
export interface LatencySummary {
  /** p50 over repeats, ns. */
  p50: Spread;
  /** p99 over repeats, ns. */
  p99: Spread;
  /** p99.9 over repeats, ns. */
  p999: Spread;
  /** The curve of the repeat with the median throughput. */
  curve: [number, number][];
}

/** A measured point: one implementation, one scenario, one mode and bulk size. */
export interface BenchPoint {
  /** Always true: this point was measured. */
  measured: true;
  /** Provider name ("api", "peers", ...). */
  provider: string;
  /** Scenario label (thread placement, queues). */
  scenario: string;
  /** Implementation ("bt_ring", "dpdk_mpmc", "bulktap TS API", ...). */
  impl: string;
  /** True for this project's code, false for a peer. */
  ours: boolean;
  /** Single-packet (one call per frame) or bulk. */
  mode: "single" | "bulk";
  /** Frames per call (1 in single mode). */
  bulk: number;
  /**
   * Bytes of data per frame; 0 when no frame data moves (rings of pointers
   * or frame refs whose data nobody reads or writes): shown as "pointers".
   */
  frameSize: number;
  /** Throughput over repeats, Mpps. */
  mpps: Spread;
  /** Cost per frame over repeats, ns (1000 / Mpps of each repeat). */
  nsPerFrame: Spread;
  /** Drop share over repeats. */
  dropShare?: Spread;
  /** Frames dropped per repeat. */
  drops?: Spread;
  /** Transmit/enqueue calls per frame over repeats. */
  callsPerFrame?: Spread;
  /** Producer lock acquisitions per frame over repeats. */
  locksPerFrame?: Spread;
  /** Reader wake-ups per frame over repeats. */
  wakeupsPerFrame?: Spread;
  /** System calls per frame over repeats. */
  syscallsPerFrame?: Spread;
  /** CPU time per delivered frame over repeats, ns. */
  cpuNsPerFrame?: Spread;
  /** CPU time over wall time (busy cores) over repeats. */
  cpuCores?: Spread;
  /** Latency, when measured. */
  latency?: LatencySummary;
  /** Metrics this scenario cannot measure, each with the reason ("n/a"). */
  notApplicable?: Partial<Record<Metric, string>>;
  /** Set on the two sides of a latency-recording on/off comparison. */
  latencyRecording?: { pair: string; on: boolean };
  /** Every repeat. */
  runs: RawRun[];
}

/**
 * A measured figure that is not a throughput point (idle CPU share, for
 * example), with its spread over repeats.
 */
export interface BenchFigure {
  /** Always true. */
  measured: true;
  /** Marks a figure (points have no such field). */
  figure: true;
  /** Provider name. */
  provider: string;
  /** Scenario. */
  scenario: string;
  /** What was measured. */
  name: string;
  /** Unit of `value` ("% of one CPU"). */
  unit: string;
  /** Over repeats. */
  value: Spread;
  /** What the figure is compared with, or what bounds it. */
  baseline: string;
}

/** An implementation or scenario that could not be measured, and why. */
export interface Unmeasured {
  /** Always false. */
  measured: false;
  /** Provider name. */
  provider: string;
  /** Implementation that is missing. */
  impl: string;
  /** Scenario, when only one is affected. */
  scenario?: string;
  /** "not measured: install X", or what else went wrong. */
  reason: string;
}

/** What providers return. */
export type ResultEntry = BenchPoint | BenchFigure | Unmeasured;

/**
 * True for a measured point.
 *
 * @example
 * ```ts
 * import { isPoint } from "./bench/points.ts";
 * console.log(isPoint({ measured: false, provider: "x", impl: "y", reason: "z" })); // false
 * ```
 */
export function isPoint(e: ResultEntry): e is BenchPoint {
  return e.measured && !("figure" in e);
}

/**
 * True for a measured figure.
 *
 * @example
 * ```ts
 * import { isFigure } from "./bench/points.ts";
 * console.log(isFigure({ measured: false, provider: "x", impl: "y", reason: "z" })); // false
 * ```
 */
export function isFigure(e: ResultEntry): e is BenchFigure {
  return e.measured && "figure" in e;
}

/**
 * "64 B", or "pointers" for points that move no frame data.
 *
 * @example
 * ```ts
 * import { frameLabel } from "./bench/points.ts";
 * console.log(frameLabel(0), frameLabel(1500)); // pointers 1500 B
 * ```
 */
export function frameLabel(frameSize: number): string {
  return frameSize > 0 ? `${frameSize} B` : "pointers";
}

/** A progress report from a provider. */
export interface ProgressEvent {
  /** Scenario being measured. */
  scenario: string;
  /** Point within it ("bt_ring bulk-16"). */
  point: string;
  /** Repeat just finished, 1-based. */
  repeat: number;
  /** Repeats per point. */
  repeats: number;
  /** Runs this provider has finished. */
  done: number;
  /** Runs this provider will do. */
  total: number;
}

/** What the harness hands every provider. */
export interface ProviderContext {
  /** CI mode: short runs, headline points only. */
  quick: boolean;
  /** Repeats per point (>= 5 unless the user asked for fewer). */
  repeats: number;
  /** Duration of one run, ms. */
  durationMs: number;
  /** Bulk sizes to sweep. */
  bulks: number[];
  /** Frame sizes to sweep, bytes. */
  frameSizes: number[];
  /** Allow providers to install missing peers (apt-get). */
  installPeers: boolean;
  /** Report a finished run. */
  progress(ev: ProgressEvent): void;
  /** Report a line of context (build steps, notes) to the user. */
  log(msg: string): void;
}

/** A benchmark provider. */
export interface ScenarioProvider {
  /** Short name used in points, tables and `--only`. */
  name: string;
  /** One line for the report. */
  title: string;
  /** Rough duration of {@linkcode ScenarioProvider.run} with this context, ms (for the ETA). */
  estimateMs(ctx: ProviderContext): number;
  /** Measure. Never throws for a missing peer: returns an {@linkcode Unmeasured}. */
  run(ctx: ProviderContext): Promise<ResultEntry[]>;
  /** Provider-specific header data (geometry, flags) for the JSON file. */
  meta?: Record<string, unknown>;
}

/**
 * Build a point from raw repeats.
 *
 * @example
 * ```ts
 * import { pointFromRuns } from "./bench/points.ts";
 * const p = pointFromRuns(
 *   { provider: "x", scenario: "1p1c", impl: "bt_ring", ours: true, mode: "bulk", bulk: 16, frameSize: 64 },
 *   [{ repeat: 0, mpps: 10 }, { repeat: 1, mpps: 12 }, { repeat: 2, mpps: 11 }],
 * );
 * console.log(p.mpps.median); // 11
 * ```
 */
export function pointFromRuns(
  key: Omit<BenchPoint, "measured" | "mpps" | "nsPerFrame" | "runs">,
  runs: RawRun[],
): BenchPoint {
  const mpps = spread(runs.map((r) => r.mpps));
  const p: BenchPoint = {
    measured: true,
    ...key,
    mpps,
    nsPerFrame: spread(runs.map((r) => (r.mpps > 0 ? 1000 / r.mpps : Infinity))),
    runs,
  };
  // A per-repeat metric becomes a spread over the repeats that have it.
  const over = (f: (r: RawRun) => number | undefined): Spread | undefined => {
    const xs = runs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
    return xs.length ? spread(xs) : undefined;
  };
  const set = <K extends keyof BenchPoint>(k: K, v: BenchPoint[K] | undefined) => {
    if (v !== undefined) p[k] = v;
  };
  set("dropShare", over((r) => r.dropShare));
  set("drops", over((r) => r.drops));
  set("callsPerFrame", over((r) => r.callsPerFrame));
  set("locksPerFrame", over((r) => r.locksPerFrame));
  set("wakeupsPerFrame", over((r) => r.wakeupsPerFrame));
  set("syscallsPerFrame", over((r) => r.syscallsPerFrame));
  set(
    "cpuNsPerFrame",
    over((r) => r.cpuNs !== undefined && r.frames ? r.cpuNs / r.frames : undefined),
  );
  set("cpuCores", over((r) => r.cpuNs !== undefined && r.wallNs ? r.cpuNs / r.wallNs : undefined));
  const median = medianRun(runs);
  const lat = runs.filter((r) => r.latency && r.latency.samples > 0);
  if (lat.length > 0) {
    const curveRun = median.latency && median.latency.samples > 0 ? median : lat[0];
    p.latency = {
      p50: spread(lat.map((r) => r.latency!.p50)),
      p99: spread(lat.map((r) => r.latency!.p99)),
      p999: spread(lat.map((r) => r.latency!.p999)),
      curve: curveRun.latency!.curve,
    };
  }
  return p;
}

/**
 * Whether a point has `m`: "measured", "n/a" (the scenario cannot measure
 * it; see {@linkcode BenchPoint.notApplicable}) or "missing" (a defect).
 *
 * @example
 * ```ts
 * import { metricState, pointFromRuns } from "./bench/points.ts";
 * const p = pointFromRuns(
 *   { provider: "x", scenario: "s", impl: "i", ours: true, mode: "single", bulk: 1, frameSize: 64,
 *     notApplicable: { latency: "nobody reads the frames" } },
 *   [{ repeat: 0, mpps: 1, drops: 0 }],
 * );
 * console.log(metricState(p, "drops"), metricState(p, "latency"), metricState(p, "cpu"));
 * // measured n/a missing
 * ```
 */
export function metricState(p: BenchPoint, m: Metric): "measured" | "n/a" | "missing" {
  const has = m === "locksPerFrame"
    ? p.locksPerFrame
    : m === "wakeupsPerFrame"
    ? p.wakeupsPerFrame
    : m === "drops"
    ? p.drops ?? p.dropShare
    : m === "latency"
    ? p.latency
    : p.cpuNsPerFrame;
  if (has !== undefined) return "measured";
  return p.notApplicable?.[m] ? "n/a" : "missing";
}

/** The run with the median throughput (the upper one of two middles). */
export function medianRun(runs: RawRun[]): RawRun {
  const s = [...runs].sort((a, b) => a.mpps - b.mpps);
  return s[s.length >> 1];
}

/** A ratio of two measured points: medians, and the range their spreads allow. */
export interface Ratio {
  /** What is compared ("bulk-16/single", "bt_ring/dpdk_mpmc"). */
  label: string;
  /** Provider. */
  provider: string;
  /** Scenario (of the numerator). */
  scenario: string;
  /** Mode/bulk/frame of the comparison, for humans. */
  point: string;
  /** Median over median. */
  value: number;
  /** Worst case: min of the numerator over max of the denominator. */
  low: number;
  /** Best case: max over min. */
  high: number;
  /** Numerator median, Mpps. */
  num: number;
  /** Denominator median, Mpps (the baseline). */
  den: number;
  /** Frame size of both points (0: pointers). */
  frameSize: number;
  /**
   * The ratio of each repeat's pair (numerator and denominator of the same
   * repeat index, which the C harnesses run back to back): median and
   * range. Absent when the two points' repeats do not pair up.
   */
  paired?: { median: number; min: number; max: number; n: number };
  /** The least acceptable value, when the project sets one. */
  required?: number;
}

function pairedRatio(a: BenchPoint, b: BenchPoint): Ratio["paired"] {
  const den = new Map(b.runs.map((r) => [r.repeat, r.mpps]));
  const xs = a.runs.filter((r) => (den.get(r.repeat) ?? 0) > 0).map((r) =>
    r.mpps / den.get(r.repeat)!
  ).sort((x, y) => x - y);
  if (xs.length === 0 || xs.length !== a.runs.length || xs.length !== b.runs.length) {
    return undefined;
  }
  const mid = xs.length >> 1;
  const median = xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median, min: xs[0], max: xs[xs.length - 1], n: xs.length };
}

function ratio(
  label: string,
  point: string,
  a: BenchPoint,
  b: BenchPoint,
): Ratio {
  return {
    label,
    provider: a.provider,
    scenario: a.scenario,
    point,
    value: a.mpps.median / b.mpps.median,
    low: a.mpps.min / b.mpps.max,
    high: a.mpps.max / b.mpps.min,
    num: a.mpps.median,
    den: b.mpps.median,
    frameSize: a.frameSize,
    paired: pairedRatio(a, b),
  };
}

/** The bulk size headline ratios use: 16 if measured, else the largest. */
export function headlineBulk(points: BenchPoint[]): number {
  const bulks = new Set(points.filter((p) => p.mode === "bulk").map((p) => p.bulk));
  if (bulks.has(16)) return 16;
  return Math.max(0, ...bulks);
}

/** Every headline ratio of a run, by question. */
export interface Headlines {
  /** bulk-16 (or the largest bulk) over single, per provider, scenario, impl and frame size. */
  bulkOverSingle: Ratio[];
  /** Ours over a peer (DPDK rte_ring), same placement, mode and bulk. */
  oursOverPeer: Ratio[];
  /** Into a TAP: io_uring batches over `write()` per frame, per batch and frame size. */
  batchedOverPerFrame: Ratio[];
  /** 4 producers on 2 cores over 2 producers, single and bulk (at least 0.5 required). */
  oversubscription: Ratio[];
  /** Scheduler throughput with latency recording on over off (1 = free). */
  latencyCost: Ratio[];
  /**
   * The TypeScript API (1 producer, each placement) over the C `bt_xmit`
   * path (ring_bench 1p1c), headline bulk, 64 B (at least 0.6 required).
   */
  apiOverC: Ratio[];
}

/** Floors of the API benchmark's headlines (issue 13). */
export const API_FLOORS = {
  /** bulktap over the plain-TypeScript peer, bulk mode. */
  bulkOverPlain: 2,
  /** bulktap over the plain-TypeScript peer, single mode. */
  singleOverPlain: 1,
  /** The TypeScript API over the C bt_xmit path, bulk, 1 producer. */
  apiOverC: 0.6,
  /** Scenario prefix of the API's 1-producer points, and ring_bench's twin. */
  oneProducer: "1 producer -> 1 queue -> 1 reader",
  cOneProducer: "1p1c",
};

/** The oversubscribed and the 2-producer scenarios of the C ring benchmarks. */
export const OVERSUBSCRIBED = { over: "4p1q_2cores", base: "2p1q", required: 0.5 };

/** Scenario prefix of the TAP "frames into a TAP" points. */
export const INTO_TAP = "into a TAP";

function modeLabel(p: BenchPoint): string {
  return p.mode === "single" ? "single" : `bulk-${p.bulk}`;
}

/**
 * The headline ratios (see {@linkcode Headlines}).
 *
 * @example
 * ```ts
 * import { headlines } from "./bench/points.ts";
 * console.log(headlines([]).bulkOverSingle.length); // 0
 * ```
 */
export function headlines(entries: ResultEntry[]): Headlines {
  const points = entries.filter(isPoint);
  const h: Headlines = {
    bulkOverSingle: [],
    oursOverPeer: [],
    batchedOverPerFrame: [],
    oversubscription: [],
    latencyCost: [],
    apiOverC: [],
  };
  const sweep = points.filter((p) => !p.latencyRecording);
  const groups = new Map<string, BenchPoint[]>();
  for (const p of sweep) {
    const k = `${p.provider}\0${p.scenario}\0${p.impl}\0${p.frameSize}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  for (const ps of groups.values()) {
    const hb = headlineBulk(ps);
    const s = ps.find((p) => p.mode === "single");
    const b = ps.find((p) => p.mode === "bulk" && p.bulk === hb);
    if (s && b) {
      h.bulkOverSingle.push(
        ratio(`bulk-${hb}/single`, `${s.impl}, ${frameLabel(s.frameSize)}`, b, s),
      );
    }
    if (s && s.provider === "tap" && s.scenario.startsWith(INTO_TAP)) {
      for (const x of ps.filter((p) => p.mode === "bulk").sort((a, b) => a.bulk - b.bulk)) {
        h.batchedOverPerFrame.push(
          ratio(`io_uring ${x.bulk} per submit/write() per frame`, frameLabel(x.frameSize), x, s),
        );
      }
    }
  }
  for (const peer of sweep.filter((p) => !p.ours)) {
    for (const o of sweep) {
      if (
        o.ours && o.provider === peer.provider && o.scenario === peer.scenario &&
        o.mode === peer.mode && o.bulk === peer.bulk && o.frameSize === peer.frameSize
      ) {
        const hb = headlineBulk(sweep.filter((p) => p.provider === o.provider));
        if (o.mode === "bulk" && o.bulk !== hb) continue;
        // The API sweeps frame sizes: name them (the C peers move pointers).
        const at = o.provider === "api"
          ? `${modeLabel(o)}, ${frameLabel(o.frameSize)}`
          : modeLabel(o);
        const r = ratio(`${o.impl}/${peer.impl}`, at, o, peer);
        if (o.provider === "api") {
          r.required = o.mode === "bulk" ? API_FLOORS.bulkOverPlain : API_FLOORS.singleOverPlain;
        }
        h.oursOverPeer.push(r);
      }
    }
  }
  for (const over of sweep.filter((p) => p.scenario === OVERSUBSCRIBED.over)) {
    const hb = headlineBulk(sweep.filter((p) => p.provider === over.provider));
    if (over.mode === "bulk" && over.bulk !== hb) continue;
    const base = sweep.find((p) =>
      p.scenario === OVERSUBSCRIBED.base && p.provider === over.provider &&
      p.impl === over.impl && p.mode === over.mode && p.bulk === over.bulk &&
      p.frameSize === over.frameSize
    );
    if (!base) continue;
    h.oversubscription.push({
      ...ratio(
        "4p/2p on 2 cores",
        `${over.impl}${over.ours ? "" : " (peer)"}, ${modeLabel(over)}`,
        over,
        base,
      ),
      required: over.ours ? OVERSUBSCRIBED.required : undefined,
    });
  }
  const apiBulk = headlineBulk(sweep.filter((p) => p.provider === "api"));
  const c = sweep.find((p) =>
    p.provider === "ring" && p.scenario === API_FLOORS.cOneProducer && p.mode === "bulk" &&
    p.bulk === apiBulk
  );
  for (
    const a of sweep.filter((p) =>
      c && p.provider === "api" && p.ours && p.mode === "bulk" && p.bulk === apiBulk &&
      p.frameSize === 64 && p.scenario.startsWith(API_FLOORS.oneProducer)
    )
  ) {
    // Different providers run one after the other: no pairing by repeat.
    h.apiOverC.push({
      ...ratio(`${a.impl}/${c!.impl}`, `${modeLabel(a)}, 64 B vs refs`, a, c!),
      paired: undefined,
      required: API_FLOORS.apiOverC,
    });
  }
  for (const on of points.filter((p) => p.latencyRecording?.on)) {
    const off = points.find((p) =>
      p.latencyRecording && !p.latencyRecording.on &&
      p.latencyRecording.pair === on.latencyRecording!.pair && p.provider === on.provider
    );
    if (!off) continue;
    h.latencyCost.push(
      ratio(
        "latency recording on/off",
        `${on.latencyRecording!.pair}, ${frameLabel(on.frameSize)}`,
        on,
        off,
      ),
    );
  }
  return h;
}
