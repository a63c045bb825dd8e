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

/** One raw repeat of one point. */
export interface RawRun {
  /** Repeat index (0-based) within the provider's run order. */
  repeat: number;
  /** Millions of frames per second delivered. */
  mpps: number;
  /** Share of offered frames dropped (0..1), when the provider counts it. */
  dropShare?: number;
  /** Enqueue/xmit calls (lock acquisitions for our paths) per offered frame. */
  callsPerFrame?: number;
  /** Latency of this repeat, when the provider measures it. */
  latency?: LatencyRun;
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
  /** Bytes of data per frame. */
  frameSize: number;
  /** Throughput over repeats, Mpps. */
  mpps: Spread;
  /** Cost per frame over repeats, ns (1000 / Mpps of each repeat). */
  nsPerFrame: Spread;
  /** Drop share over repeats. */
  dropShare?: Spread;
  /** Lock acquisitions (or enqueue calls) per frame, median repeat. */
  locksPerFrame?: number;
  /** Reader wake-ups per frame, median repeat. */
  wakeupsPerFrame?: number;
  /** Latency, when measured. */
  latency?: LatencySummary;
  /** Every repeat. */
  runs: RawRun[];
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
export type ResultEntry = BenchPoint | Unmeasured;

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
  if (runs.every((r) => r.dropShare !== undefined)) {
    p.dropShare = spread(runs.map((r) => r.dropShare!));
  }
  const median = medianRun(runs);
  if (key.locksPerFrame === undefined && median.callsPerFrame !== undefined) {
    p.locksPerFrame = median.callsPerFrame;
  }
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
  /** Scenario. */
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
  };
}

/** The bulk size headline ratios use: 16 if measured, else the largest. */
export function headlineBulk(points: BenchPoint[]): number {
  const bulks = new Set(points.filter((p) => p.mode === "bulk").map((p) => p.bulk));
  if (bulks.has(16)) return 16;
  return Math.max(0, ...bulks);
}

/**
 * The headline ratios: bulk/single for every provider, scenario,
 * implementation and frame size; ours/peer for every scenario and mode where
 * both were measured.
 *
 * @example
 * ```ts
 * import { headlines } from "./bench/points.ts";
 * console.log(headlines([]).bulkOverSingle.length); // 0
 * ```
 */
export function headlines(
  entries: ResultEntry[],
): { bulkOverSingle: Ratio[]; oursOverPeer: Ratio[] } {
  const points = entries.filter((e): e is BenchPoint => e.measured);
  const bulkOverSingle: Ratio[] = [];
  const oursOverPeer: Ratio[] = [];
  const groups = new Map<string, BenchPoint[]>();
  for (const p of points) {
    const k = `${p.provider}\0${p.scenario}\0${p.impl}\0${p.frameSize}`;
    groups.set(k, [...(groups.get(k) ?? []), p]);
  }
  for (const ps of groups.values()) {
    const hb = headlineBulk(ps);
    const s = ps.find((p) => p.mode === "single");
    const b = ps.find((p) => p.mode === "bulk" && p.bulk === hb);
    if (s && b) {
      bulkOverSingle.push({
        ...ratio(`bulk-${hb}/single`, `${s.impl}, ${s.frameSize} B`, b, s),
      });
    }
  }
  const peers = points.filter((p) => !p.ours);
  for (const peer of peers) {
    for (const o of points) {
      if (
        o.ours && o.provider === peer.provider && o.scenario === peer.scenario &&
        o.mode === peer.mode && o.bulk === peer.bulk && o.frameSize === peer.frameSize
      ) {
        const hb = headlineBulk(points.filter((p) => p.provider === o.provider));
        if (o.mode === "bulk" && o.bulk !== hb) continue;
        oursOverPeer.push(
          ratio(
            `${o.impl}/${peer.impl}`,
            o.mode === "single" ? "single" : `bulk-${o.bulk}`,
            o,
            peer,
          ),
        );
      }
    }
  }
  return { bulkOverSingle, oursOverPeer };
}
