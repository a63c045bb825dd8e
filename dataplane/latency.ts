/**
 * Per-frame latency: from the frame's timestamp (stamped when it was made
 * or received) to the moment its reader consumes it.
 *
 * Recording happens in C, never per frame in TypeScript: each reader (and
 * each Worker's PASS reader) owns a {@linkcode LatencyRecorder}, a
 * log-linear bucket array in a `SharedArrayBuffer` that the C library adds
 * every consumed frame to (`bt_queue_consume`, `bt_frames_latency`: a few
 * ns per frame, nothing per frame in JS). Percentiles come from
 * `hdr-histogram-js` histograms (3 significant digits, 1 ns to 1 hour),
 * built by folding the non-zero buckets in when someone asks: the
 * recorder's own thread (`recorder.histogram`) or any other thread that
 * holds the buffer ({@linkcode histogramFromBuckets}), such as the
 * scheduler's main thread for its live status line. Folding at query time
 * rather than per batch keeps the hot loop free of HDR work entirely; a
 * fold reads 4,608 words and makes at most one `recordValueWithCount` per
 * non-zero bucket (tens of microseconds), off the hot path.
 *
 * Exactness: latencies below 256 ns are exact. Above, a bucket is at most
 * 1/128 of its lowest value wide, and its midpoint stands for it, so the
 * value folded in is within 1/256 (0.39%) of every latency in the bucket.
 * The HDR histogram then reports the highest value equivalent to its own
 * bucket (at most 1/1024 above). A reported percentile or maximum x' of
 * true value x therefore satisfies x(1 - 1/256) <= x' <=
 * x(1 + 1/256)(1 + 1/1024): within 0.5%. Latencies of an hour or more are
 * counted apart and reported as exactly 1 hour. Counts are exact.
 *
 * Concurrency: one thread records into a recorder; any thread may read its
 * buffer at any time. Every word only grows and is written and read whole
 * (64-bit atomics), so a live read is off by at most the frames recorded
 * during the read; after the writer stops (and a message from it has been
 * received) a read is exact.
 *
 * @module
 */
import * as hdr from "npm:hdr-histogram-js@^3";
import { library } from "../ffi/lib.ts";
import * as abi from "../ffi/abi.ts";
import { arrayLength, checkCount, intIn, show, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno } from "./errors.ts";

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
 * import { MAX_LATENCY_NS } from "./latency.ts";
 * console.log(MAX_LATENCY_NS / 1e9); // 3600
 * ```
 */
export const MAX_LATENCY_NS: number = abi.BT_LAT_MAX_NS;

/**
 * Layout of a latency bucket array (as `c/bulktap.h` defines it): 64-bit
 * words, a header then the buckets. `SUB_BITS` 7: 128 buckets per power of
 * two above 256 ns, one bucket per ns below.
 *
 * @example
 * ```ts
 * import { LatencyLayout } from "./latency.ts";
 * console.log(LatencyLayout.BYTES); // 36928
 * ```
 */
export const LatencyLayout = {
  /** log2 of the buckets per power-of-two range, above 256 ns. */
  SUB_BITS: abi.BT_LAT_SUB_BITS,
  /** Buckets (1 ns .. 2^42 ns). */
  BUCKETS: abi.BT_LAT_BUCKETS,
  /** Header words before the buckets. */
  HEADER: abi.BT_LAT_HEADER,
  /** Header word: layout magic, written by the C library. */
  H_MAGIC: abi.BT_LAT_H_MAGIC,
  /** Header word: frames recorded (bucketed plus clamped). */
  H_FRAMES: abi.BT_LAT_H_FRAMES,
  /** Header word: frames skipped (no timestamp, or an invalid ref). */
  H_SKIPPED: abi.BT_LAT_H_SKIPPED,
  /** Header word: frames of an hour or more, reported as 1 hour. */
  H_CLAMPED: abi.BT_LAT_H_CLAMPED,
  /** Total words. */
  WORDS: abi.BT_LAT_WORDS,
  /** Total bytes. */
  BYTES: abi.BT_LAT_WORDS * 8,
} as const;

/**
 * Bound on the relative error of a folded-in latency: a bucket's value is
 * within this fraction of every latency in it (exact below 256 ns).
 * Reported percentiles add HDR's own rounding up (at most 1/1024).
 *
 * @example
 * ```ts
 * import { LATENCY_BUCKET_ERROR } from "./latency.ts";
 * console.log(LATENCY_BUCKET_ERROR); // 0.00390625
 * ```
 */
export const LATENCY_BUCKET_ERROR: number = 2 ** -(abi.BT_LAT_SUB_BITS + 1);

const L = LatencyLayout;
/** Buckets per power-of-two range (and the first value that shares one). */
const SUB = 2 ** L.SUB_BITS;
// The magic bt_lat_init writes: "BTLH", SUB_BITS, BUCKETS. Checked against
// the library once, so TypeScript and C can never disagree on the layout.
const MAGIC = (BigInt(abi.BT_LAT_MAGIC_TAG) << 32n) | (BigInt(L.SUB_BITS) << 16n) |
  BigInt(L.BUCKETS);

/**
 * The bucket a latency of `ns` falls into (as the C library computes it):
 * `ns` itself below 256; above, 128 buckets per power of two. `ns` is
 * floored and raised to 1; callers clamp it below {@linkcode MAX_LATENCY_NS}.
 *
 * @example
 * ```ts
 * import { latencyBucket } from "./latency.ts";
 * console.log(latencyBucket(100), latencyBucket(256), latencyBucket(258)); // 100 256 257
 * ```
 */
export function latencyBucket(ns: number): number {
  const v = Math.max(1, Math.floor(ns));
  const hi = Math.floor(v / 4294967296);
  const e = hi > 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32((v >>> 0) | SUB);
  const s = e - L.SUB_BITS;
  return s * SUB + Math.floor(v / 2 ** s);
}

/**
 * The value a bucket stands for: the bucket's midpoint (its only value
 * below 256 ns), within {@linkcode LATENCY_BUCKET_ERROR} of any latency
 * in it.
 *
 * @example
 * ```ts
 * import { latencyBucketValue } from "./latency.ts";
 * console.log(latencyBucketValue(100), latencyBucketValue(256)); // 100 257
 * ```
 */
export function latencyBucketValue(bucket: number): number {
  const s = Math.max(0, (bucket >>> L.SUB_BITS) - 1);
  if (s === 0) return bucket;
  const w = 2 ** s;
  return (bucket - s * SUB) * w + w / 2;
}

/** A histogram of latencies in ns. */
export type LatencyHistogram = hdr.Histogram;

/**
 * A new empty latency histogram (ns, 3 significant digits, up to 1 hour).
 *
 * @example
 * ```ts
 * import { newLatencyHistogram } from "./latency.ts";
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

function words(buffer: SharedArrayBuffer | ArrayBuffer): BigUint64Array {
  if (!(buffer instanceof SharedArrayBuffer || buffer instanceof ArrayBuffer)) {
    throw new BulktapError("EINVAL", `buffer is ${show(buffer)}, not an ArrayBuffer`);
  }
  if (buffer.byteLength < L.BYTES) {
    throw new BulktapError(
      "EINVAL",
      `a latency bucket array is ${L.BYTES} bytes, not ${buffer.byteLength}`,
    );
  }
  const w = new BigUint64Array(buffer, 0, L.WORDS);
  if (Atomics.load(w, L.H_MAGIC) !== MAGIC) {
    throw new BulktapError("EINVAL", "the buffer is not a latency bucket array (bad magic)");
  }
  return w;
}

/**
 * Fold a latency bucket array (a {@linkcode LatencyRecorder}'s `shared`
 * buffer, possibly another thread's, possibly being written) into an HDR
 * histogram: one `recordValueWithCount` per non-zero bucket, at the
 * bucket's value. Adds to `into` if given, else to a new histogram.
 *
 * @example
 * ```ts
 * import { histogramFromBuckets, LatencyRecorder } from "./latency.ts";
 * const rec = new LatencyRecorder();
 * rec.recordRuns(new Float64Array([1000]), new Uint32Array([3]), 1);
 * console.log(histogramFromBuckets(rec.shared).totalCount); // 3
 * ```
 */
export function histogramFromBuckets(
  buffer: SharedArrayBuffer | ArrayBuffer,
  into: LatencyHistogram = newLatencyHistogram(),
): LatencyHistogram {
  const w = words(buffer);
  // Find non-zero buckets through 32-bit halves (whole reads, no BigInt);
  // read each one found as one 64-bit atomic load (never torn).
  const u32 = new Uint32Array(buffer, 0, L.WORDS * 2);
  for (let b = 0; b < L.BUCKETS; b++) {
    const i = L.HEADER + b;
    if ((u32[2 * i] | u32[2 * i + 1]) === 0) continue;
    into.recordValueWithCount(latencyBucketValue(b), Number(Atomics.load(w, i)));
  }
  const clamped = Number(Atomics.load(w, L.H_CLAMPED));
  if (clamped > 0) into.recordValueWithCount(MAX_LATENCY_NS, clamped);
  return into;
}

/**
 * A latency bucket array shared by a Worker, with its histogram label.
 * Labels name what the reader consumes: `t<i>/q<n>` for queue n of
 * device-map target i (see `dataplane/worker.ts`), `pass` for PASS frames.
 */
export interface LatencyShare {
  /** Histogram label. */
  label: string;
  /** The recorder's bucket array ({@linkcode LatencyRecorder.shared}). */
  buffer: SharedArrayBuffer;
}

// Set by LatencyRecorder's static block: the library's own access to a
// recorder's words (not what a redefined `words` property says).
let recorderWords: (r: LatencyRecorder) => BigUint64Array;

/** @internal For readers in this library: a recorder's own bucket words. */
export function wordsOf(r: LatencyRecorder): BigUint64Array {
  return recorderWords(r);
}

/**
 * Records the latency of batches of frames into a bucket array in shared
 * memory; percentiles come from an HDR histogram folded from it on demand.
 * One thread records (the one that owns the reader); any thread may read
 * `shared` (see {@linkcode histogramFromBuckets}).
 *
 * @example
 * ```ts
 * import { FramePool, nowNs } from "./mod.ts";
 * import { LatencyRecorder } from "./latency.ts";
 * using pool = new FramePool({ frames: 8 });
 * const refs = new Uint32Array(4);
 * pool.alloc(refs);
 * const t = nowNs();
 * for (const r of refs) pool.setTimestamp(r, t);
 * const rec = new LatencyRecorder();
 * rec.recordBatchAt(refs, 4, t + 200);
 * console.log(rec.summary().p50); // 200 (exact below 256 ns; within 0.5% above)
 * pool.free(refs);
 * ```
 */
export class LatencyRecorder {
  #shared: SharedArrayBuffer;
  #words: BigUint64Array;
  #lib = library();

  static {
    recorderWords = (r) => r.#words;
  }
  #hist: LatencyHistogram | undefined;

  /** A recorder with empty buckets. */
  constructor() {
    this.#shared = new SharedArrayBuffer(L.BYTES);
    this.#words = new BigUint64Array(this.#shared);
    checkErrno(this.#lib.bt_lat_init(this.#words, L.BYTES), "initialising latency buckets");
    if (Atomics.load(this.#words, L.H_MAGIC) !== MAGIC) {
      throw new BulktapError(
        "EINVAL",
        "the C library's latency bucket layout differs from dataplane/latency.ts (rebuild it)",
      );
    }
  }

  /**
   * The HDR histogram of everything recorded so far (folded anew from the
   * buckets on each access; keep the result rather than re-reading it in
   * a loop).
   */
  get histogram(): LatencyHistogram {
    const h = this.#hist ??= newLatencyHistogram();
    h.reset();
    return histogramFromBuckets(this.#shared, h);
  }

  /** The bucket array: hand it to another thread to read live percentiles. */
  get shared(): SharedArrayBuffer {
    return this.#shared;
  }

  /** The same, as the 64-bit words the C library adds to (read them; do not write). */
  get words(): BigUint64Array {
    return this.#words;
  }

  /** Frames without a timestamp (0) or with an invalid ref, not recorded. */
  get unstamped(): number {
    return Number(Atomics.load(this.#words, L.H_SKIPPED));
  }

  /** Frames recorded. */
  get count(): number {
    return Number(Atomics.load(this.#words, L.H_FRAMES));
  }

  /**
   * Record `count` frames of `refs`, consumed now: one FFI call; the C
   * library reads the clock once and each frame's timestamp.
   */
  recordBatch(refs: Uint32Array, count: number): void {
    const len = u32Length(refs, "recordBatch: refs");
    count = checkCount(count, len, "recordBatch");
    if (count === 0) return;
    const r = this.#lib.bt_frames_latency(refs, len, count, this.#words, L.WORDS);
    if (r < 0) checkErrno(r, "recording latency");
  }

  /**
   * Record `count` frames of `refs`, consumed at `nowNs` (for callers with
   * their own clock, and for deterministic tests).
   */
  recordBatchAt(refs: Uint32Array, count: number, nowNs: number): void {
    const len = u32Length(refs, "recordBatchAt: refs");
    count = checkCount(count, len, "recordBatchAt");
    if (count === 0) return;
    if (typeof nowNs !== "number") {
      throw new BulktapError("EINVAL", `recordBatchAt: nowNs=${show(nowNs)} is not a number`);
    }
    const r = this.#lib.bt_frames_latency_at(refs, len, count, nowNs, this.#words, L.WORDS);
    if (r < 0) checkErrno(r, `recording latency at ${nowNs} ns`);
  }

  /**
   * Record latencies measured elsewhere: `vals[k]` ns, `counts[k]` times,
   * for k < runs; `skipped` frames (and NaN values) counted as unstamped.
   * Latencies below 1 ns count as 1 ns, as in C. Not for the hot
   * path (BigInt atomics per run): readers record in C.
   */
  recordRuns(vals: Float64Array, counts: Uint32Array, runs: number, skipped = 0): void {
    const nv = arrayLength(vals, "Float64Array", "recordRuns: vals");
    checkCount(runs, Math.min(nv, u32Length(counts, "recordRuns: counts")), "recordRuns");
    intIn(skipped, 0, Number.MAX_SAFE_INTEGER, "recordRuns: skipped");
    const w = this.#words;
    let frames = 0;
    for (let k = 0; k < runs; k++) {
      const v = vals[k], n = counts[k];
      if (n === 0) continue;
      if (Number.isNaN(v)) {
        skipped += n;
        continue;
      }
      if (v >= MAX_LATENCY_NS) Atomics.add(w, L.H_CLAMPED, BigInt(n));
      else Atomics.add(w, L.HEADER + latencyBucket(v), BigInt(n));
      frames += n;
    }
    if (frames) Atomics.add(w, L.H_FRAMES, BigInt(frames));
    if (skipped) Atomics.add(w, L.H_SKIPPED, BigInt(skipped));
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
 * import { newLatencyHistogram, summarize } from "./latency.ts";
 * const h = newLatencyHistogram();
 * h.recordValue(10);
 * console.log(summarize(h).max); // 10
 * ```
 */
export function summarize(h: LatencyHistogram): LatencySummary {
  try {
    return {
      count: h.totalCount,
      p50: h.getValueAtPercentile(50),
      p90: h.getValueAtPercentile(90),
      p99: h.getValueAtPercentile(99),
      p999: h.getValueAtPercentile(99.9),
      max: h.maxValue,
      mean: h.totalCount ? h.mean : 0,
    };
  } catch (e) {
    throw new BulktapError(
      "EINVAL",
      `summarize: not a usable histogram (${(e as Error)?.message})`,
    );
  }
}

/**
 * Encode a histogram to cross a Worker boundary (compressed base64).
 *
 * @example
 * ```ts
 * import { decodeHistogram, encodeHistogram, newLatencyHistogram } from "./latency.ts";
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
 * import { decodeHistogram, encodeHistogram, newLatencyHistogram } from "./latency.ts";
 * console.log(decodeHistogram(encodeHistogram(newLatencyHistogram())).totalCount); // 0
 * ```
 */
export function decodeHistogram(s: string): LatencyHistogram {
  if (typeof s !== "string") {
    throw new BulktapError("EINVAL", `decodeHistogram: ${show(s)} is not an encoded histogram`);
  }
  try {
    return hdr.decodeFromCompressedBase64(s, 64, false);
  } catch (e) {
    throw new BulktapError(
      "EINVAL",
      `decodeHistogram: ${show(s.slice(0, 40))} is not an encoded histogram (${
        (e as Error)?.message
      })`,
    );
  }
}

/**
 * Merge histograms (per Worker and target) into a new one.
 *
 * @example
 * ```ts
 * import { mergeHistograms, newLatencyHistogram } from "./latency.ts";
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
 * import { newLatencyHistogram, percentileDistribution } from "./latency.ts";
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
