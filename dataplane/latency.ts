/**
 * Per-frame latency: from the frame's timestamp (stamped when it was made
 * or received) to the moment its reader consumes it, recorded in
 * `hdr-histogram-js` histograms (3 significant digits, 1 ns to 1 hour).
 *
 * Recording cost is kept per batch, not per frame: one FFI call per batch
 * (`bt_frames_latency`) reads the clock once and every frame's timestamp in
 * C, and returns runs of equal timestamps (a generator stamps a batch with
 * one clock reading), each recorded with one `recordValueWithCount`. The
 * result is exact; `bench/sched_bench.ts` reports the cost against a run
 * with recording off.
 *
 * @module
 */
import * as hdr from "hdr-histogram-js";
import { library } from "../ffi/lib.ts";
import { FramePool } from "./pool.ts";

/** Percentiles of a latency distribution, in nanoseconds. */
export interface LatencySummary {
  /** Frames recorded. */
  count: number;
  /** Median. */
  p50: number;
  /** 90th percentile. */
  p90: number;
  /** 99th percentile. */
  p99: number;
  /** 99.9th percentile. */
  p999: number;
  /** Largest. */
  max: number;
  /** Mean. */
  mean: number;
}

/**
 * Largest latency a histogram tracks: 1 hour. Longer latencies (a frame
 * stamped long ago, or stamped by hand) are recorded as this value, so a
 * bogus timestamp never makes recording throw inside a Worker.
 *
 * @example
 * ```ts
 * import { MAX_LATENCY_NS } from "./mod.ts";
 * console.log(MAX_LATENCY_NS / 1e9); // 3600
 * ```
 */
export const MAX_LATENCY_NS = 3_600_000_000_000;

/** A histogram of latencies in ns. */
export type LatencyHistogram = hdr.Histogram;

/**
 * A new empty latency histogram (ns, 3 significant digits, up to 1 hour).
 *
 * @example
 * ```ts
 * import { newLatencyHistogram } from "./mod.ts";
 * const h = newLatencyHistogram();
 * h.recordValue(1500);
 * console.log(h.totalCount); // 1
 * ```
 */
export function newLatencyHistogram(): LatencyHistogram {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: MAX_LATENCY_NS,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/**
 * Records the latency of batches of frames into one histogram.
 *
 * @example
 * ```ts
 * import { FramePool, LatencyRecorder, nowNs } from "./mod.ts";
 * using pool = new FramePool({ frames: 8 });
 * const refs = new Uint32Array(4);
 * pool.alloc(refs);
 * const t = nowNs();
 * for (const r of refs) pool.setTimestamp(r, t);
 * const rec = new LatencyRecorder();
 * rec.recordBatchAt(refs, 4, t + 1000);
 * console.log(rec.summary().p50); // 1000
 * pool.free(refs);
 * ```
 */
export class LatencyRecorder {
  /** The histogram. */
  readonly histogram: LatencyHistogram;
  /** Frames without a timestamp (0), not recorded. */
  unstamped = 0;

  /** A recorder with a fresh histogram. */
  constructor() {
    this.histogram = newLatencyHistogram();
  }

  /**
   * Record `count` frames of `refs`, consumed now. The C library reads the
   * clock once and each frame's timestamp, and returns runs of equal
   * timestamps: one FFI call and one histogram entry per run, exact.
   */
  recordBatch(refs: Uint32Array, count: number): void {
    if (count === 0) return;
    if (this.#vals.length < count) {
      this.#vals = new Float64Array(count);
      this.#counts = new Uint32Array(count);
    }
    const vals = this.#vals, counts = this.#counts;
    const skipped = this.#skipped;
    skipped[0] = 0;
    const runs = this.#lib.bt_frames_latency(refs, count, vals, counts, count, skipped);
    this.recordRuns(vals, counts, runs, skipped[0]);
  }

  /**
   * Record runs as `bt_frames_latency` / `bt_queue_consume` return them:
   * `vals[k]` ns, `counts[k]` frames, for k < runs.
   */
  recordRuns(vals: Float64Array, counts: Uint32Array, runs: number, skipped = 0): void {
    this.unstamped += skipped;
    const h = this.histogram;
    for (let k = 0; k < runs; k++) {
      const v = vals[k];
      h.recordValueWithCount(v < MAX_LATENCY_NS ? v : MAX_LATENCY_NS, counts[k]);
    }
  }

  #lib = library();
  #vals = new Float64Array(256);
  #counts = new Uint32Array(256);
  #skipped = new Uint32Array(1);

  /**
   * Record `count` frames of `refs`, consumed at `nowNs`, in TypeScript
   * (for callers with their own clock; same result as `recordBatch`).
   */
  recordBatchAt(refs: Uint32Array, count: number, nowNs: number): void {
    const h = this.histogram;
    let runLo = -1, runHi = -1;
    let run = 0;
    let slot = -1;
    let u32 = this.#u32[0], fs = 0;
    for (let i = 0; i < count; i++) {
      const ref = refs[i];
      // One pool lookup per run of frames of the same pool.
      if (ref >>> 24 !== slot) {
        slot = ref >>> 24;
        u32 = this.#view(ref);
        fs = FramePool.of(ref).frameSize;
      }
      // The 64-bit timestamp as two words: compared without building it.
      const w = ((ref & 0xffffff) * fs + 16) >>> 2;
      const lo = u32[w], hi = u32[w + 1];
      if (lo === runLo && hi === runHi) {
        run++;
        continue;
      }
      if (run > 0) this.#record(h, nowNs, runHi * 4294967296 + runLo, run);
      if (lo === 0 && hi === 0) {
        this.unstamped++;
        run = 0;
        runLo = runHi = -1;
      } else {
        runLo = lo;
        runHi = hi;
        run = 1;
      }
    }
    if (run > 0) this.#record(h, nowNs, runHi * 4294967296 + runLo, run);
  }

  #record(h: LatencyHistogram, nowNs: number, ts: number, n: number): void {
    const v = nowNs > ts ? nowNs - ts : 1;
    h.recordValueWithCount(v < MAX_LATENCY_NS ? v : MAX_LATENCY_NS, n);
  }

  // A Uint32Array over each pool's region, made once per pool.
  #u32: Uint32Array[] = [new Uint32Array(0)];
  #views: (Uint32Array | undefined)[] = new Array(256);
  #view(ref: number): Uint32Array {
    const slot = ref >>> 24;
    const pool = FramePool.of(ref);
    let v = this.#views[slot];
    if (v === undefined || v.buffer !== pool.bytes.buffer) {
      v = new Uint32Array(pool.bytes.buffer, pool.bytes.byteOffset, pool.bytes.byteLength >>> 2);
      this.#views[slot] = v;
    }
    return v;
  }

  /** Percentiles so far. */
  summary(): LatencySummary {
    return summarize(this.histogram);
  }
}

/**
 * Percentiles of a histogram.
 *
 * @example
 * ```ts
 * import { newLatencyHistogram, summarize } from "./mod.ts";
 * const h = newLatencyHistogram();
 * h.recordValue(10);
 * console.log(summarize(h).max); // 10
 * ```
 */
export function summarize(h: LatencyHistogram): LatencySummary {
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: h.totalCount ? h.mean : 0,
  };
}

/**
 * Encode a histogram to cross a Worker boundary (compressed base64).
 *
 * @example
 * ```ts
 * import { decodeHistogram, encodeHistogram, newLatencyHistogram } from "./mod.ts";
 * const h = newLatencyHistogram();
 * h.recordValue(42);
 * console.log(decodeHistogram(encodeHistogram(h)).totalCount); // 1
 * ```
 */
export function encodeHistogram(h: LatencyHistogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/**
 * Decode a histogram made by {@linkcode encodeHistogram}.
 *
 * @example
 * ```ts
 * import { decodeHistogram, encodeHistogram, newLatencyHistogram } from "./mod.ts";
 * console.log(decodeHistogram(encodeHistogram(newLatencyHistogram())).totalCount); // 0
 * ```
 */
export function decodeHistogram(s: string): LatencyHistogram {
  return hdr.decodeFromCompressedBase64(s, 64, false);
}

/**
 * Merge histograms (per Worker and target) into a new one.
 *
 * @example
 * ```ts
 * import { mergeHistograms, newLatencyHistogram } from "./mod.ts";
 * const a = newLatencyHistogram(), b = newLatencyHistogram();
 * a.recordValue(1); b.recordValue(2);
 * console.log(mergeHistograms([a, b]).totalCount); // 2
 * ```
 */
export function mergeHistograms(hs: Iterable<LatencyHistogram>): LatencyHistogram {
  const out = newLatencyHistogram();
  for (const h of hs) out.add(h);
  return out;
}

/**
 * The full percentile distribution, for plots: `[percentile, ns]` pairs at
 * HDR's usual ticks (5 per half-distance).
 *
 * @example
 * ```ts
 * import { newLatencyHistogram, percentileDistribution } from "./mod.ts";
 * const h = newLatencyHistogram();
 * h.recordValue(100);
 * console.log(percentileDistribution(h).at(-1)); // [100, 100]
 * ```
 */
export function percentileDistribution(h: LatencyHistogram): [number, number][] {
  const out: [number, number][] = [];
  if (h.totalCount === 0) return out;
  for (let half = 0; half < 12; half++) {
    const lo = 100 - 100 / 2 ** half;
    const hi = 100 - 100 / 2 ** (half + 1);
    for (let k = 0; k < 5; k++) {
      const p = lo + (hi - lo) * k / 5;
      out.push([p, h.getValueAtPercentile(p)]);
    }
  }
  out.push([100, h.maxValue]);
  return out;
}
