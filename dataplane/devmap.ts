/**
 * The device map and its per-CPU bulk queues. A device map is a list of
 * transmit targets (device handles) that `REDIRECT` verdicts index. Each
 * Worker ("CPU") stages frames per target in a {@linkcode BulkQueues}: a
 * full stage is transmitted without the doorbell, and at the end of every
 * poll cycle each non-empty stage is transmitted with `XMIT_FLUSH`, so each
 * target's reader is woken at most once per cycle. Frames a target does not
 * accept are returned to their pool by the library and counted against it.
 *
 * Two ways to cross into C, both allocation-free:
 * - `"target"` (default): stages live in TypeScript, one `bt_xmit` FFI call
 *   per stage (a V8 fast call, ~5 ns, amortised over up to `bulk` frames).
 * - `"cycle"`: the cycle's frames and target indexes are collected in typed
 *   arrays and handed down once per cycle (`bt_devmap_xmit`), which stages
 *   them in C: one FFI call per cycle for all targets.
 *
 * Measured with `bench/sched_bench.ts` (1 Worker, 64 B frames, 5 repeats x
 * 0.5 s, median [min-max], 2-core AMD EPYC): per stage 28.97 [28.43-29.11]
 * Mpps vs per cycle 25.65 [24.67-26.05] with 1 target; 22.51 [21.99-23.11]
 * vs 20.56 [19.98-20.83] with 4 targets. The per-cycle call saves a few
 * fast calls but copies every ref twice more (into the cycle arrays, then
 * into C's stages), which costs more than the calls it saves; so per stage
 * is the default and the per-cycle entry point stays for callers whose FFI
 * calls are dear (e.g. non-fast-call signatures).
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import {
  BT_DEVMAP_COUNTS,
  BT_DEVMAP_DROPPED,
  BT_DEVMAP_FAILED_CALLS,
  BT_DEVMAP_MAX_TARGETS,
  BT_DEVMAP_SENT,
  BT_DEVMAP_XMIT_CALLS,
  BT_LAT_WORDS,
  BT_MAX_BULK,
  BT_XMIT_DIRECT,
} from "../ffi/abi.ts";
import { intIn, show, u32Arg } from "./boundary.ts";
import { BulktapError, codeForErrno } from "./errors.ts";
import { XMIT_FLUSH } from "./device.ts";

/**
 * A TAP target is written into from the poll loop's own thread, now (no
 * ring, no writer thread, no wake-up; the kernel pushes back on a busy
 * Worker instead of a full ring dropping); other devices ignore the flag.
 */
const DIRECT = BT_XMIT_DIRECT;

/**
 * Most targets a device map holds (`BT_DEVMAP_MAX_TARGETS`).
 *
 * @example
 * ```ts
 * import { MAX_TARGETS } from "./mod.ts";
 * console.log(MAX_TARGETS); // 64
 * ```
 */
export const MAX_TARGETS: number = BT_DEVMAP_MAX_TARGETS;

/** Anything frames can be transmitted to: a library device handle. */
export interface XmitTarget {
  /** Library device handle (`Device.handle`; a TAP device's handle later). */
  readonly handle: number;
}

/** How stages cross into C: once per cycle for all targets, or once per stage. */
export type StageMode = "cycle" | "target";

/** Options of {@linkcode BulkQueues}. */
export interface BulkQueuesOptions {
  /** Frames per stage, 1..256 (default 16, the kernel's DEV_MAP_BULK_SIZE). */
  bulk?: number;
  /** See {@linkcode StageMode} (default `"target"`). */
  mode?: StageMode;
  /** CPU number for queue choice (`cpu % queues`); default 0. */
  cpu?: number;
  /** Most frames collected per cycle in `"cycle"` mode before an early flush (default 4096). */
  cycleCapacity?: number;
  /**
   * Per target (device-map order), a latency bucket array to add each
   * transmitted frame's latency to, from its timestamp (its receive time,
   * for a TAP source) to the moment its stage is handed to the target:
   * `LatencyRecorder.words` (`./latency`); `undefined` or `null` records
   * nothing for that target. One FFI call per stage, before the transmit
   * (after it, the frames are the target's). `"target"` mode only: in
   * `"cycle"` mode stages are made in C, and this is refused (`EINVAL`).
   */
  latency?: readonly (BigUint64Array | null | undefined)[];
}

/**
 * Per-target counters: target `t`'s are at `t * TargetCounter.COUNT` in
 * {@linkcode BulkQueues.counters}, in the layout `bt_devmap_xmit` fills
 * (`enum bt_devmap_count` of `c/bulktap.h`).
 *
 * @example
 * ```ts
 * import { TargetCounter } from "./mod.ts";
 * console.log(TargetCounter.DROPPED, TargetCounter.COUNT); // 1 4
 * ```
 */
export const TargetCounter = {
  /** Frames the target accepted. */
  SENT: BT_DEVMAP_SENT,
  /** Frames it did not accept (returned to their pool). */
  DROPPED: BT_DEVMAP_DROPPED,
  /** Transmit calls that failed as a whole. */
  FAILED_CALLS: BT_DEVMAP_FAILED_CALLS,
  /** Transmit calls, one per stage. */
  XMIT_CALLS: BT_DEVMAP_XMIT_CALLS,
  /** Counters per target. */
  COUNT: BT_DEVMAP_COUNTS,
} as const;

const { SENT, DROPPED, FAILED_CALLS, XMIT_CALLS, COUNT } = TargetCounter;

/**
 * One CPU's bulk queues over a device map.
 *
 * @example
 * ```ts
 * import { BulkQueues, Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * using a = new Device({ pool });
 * using b = new Device({ pool });
 * const bq = new BulkQueues([a, b], { bulk: 16 });
 * const refs = new Uint32Array(4);
 * pool.alloc(refs);
 * for (let i = 0; i < 4; i++) {
 *   pool.setLength(refs[i], 60);
 *   bq.enqueue(refs[i], i & 1, 0);
 * }
 * bq.flush(); // one flushed transmit per target
 * console.log(a.stats().txPackets, b.stats().txPackets); // 2 2
 * ```
 */
export class BulkQueues {
  /** Frames per stage. */
  readonly bulk: number;
  /** How stages cross into C. */
  readonly mode: StageMode;
  /** CPU number for queue choice. */
  readonly cpu: number;
  /** Number of targets. */
  readonly targets: number;
  #counters: Float64Array;
  #pending = 0;
  #oldestNs = 0;
  #handles: Uint32Array;
  // "target" mode
  #stages: Uint32Array[];
  #fill: Uint32Array;
  #touched: Uint32Array;
  #ntouched = 0;
  // "cycle" mode
  #refs: Uint32Array;
  #tgts: Uint32Array;
  #counts: Uint32Array;
  #cap: number;
  // Per target: latency bucket words, or null.
  #lat: (BigUint64Array | null)[];
  #lib = library();

  /** Bulk queues for `targets` (device-map order). */
  constructor(targets: readonly XmitTarget[], options: BulkQueuesOptions = {}) {
    if (!Array.isArray(targets)) {
      throw new BulktapError("EINVAL", `targets is ${show(targets)}, not an array of devices`);
    }
    const bulk = intIn(options.bulk ?? 16, 1, BT_MAX_BULK, "bulk");
    if (targets.length > MAX_TARGETS) {
      throw new BulktapError(
        "E2BIG",
        `${targets.length} targets exceed the ${MAX_TARGETS} maximum`,
      );
    }
    const mode = options.mode ?? "target";
    if (mode !== "cycle" && mode !== "target") {
      throw new BulktapError("EINVAL", `stage mode ${mode} is not "cycle" or "target"`);
    }
    const cap = intIn(options.cycleCapacity ?? 4096, 1, 1 << 20, "cycleCapacity");
    this.bulk = bulk;
    this.mode = mode;
    this.cpu = intIn(options.cpu ?? 0, -1, 0x7fffffff, "cpu");
    this.targets = targets.length;
    this.#handles = Uint32Array.from(targets, (t, i) => u32Arg(t?.handle, `targets[${i}].handle`));
    this.#counters = new Float64Array(targets.length * COUNT);
    this.#stages = targets.map(() => new Uint32Array(bulk));
    this.#fill = new Uint32Array(targets.length);
    this.#touched = new Uint32Array(targets.length);
    this.#cap = cap;
    this.#refs = new Uint32Array(cap);
    this.#tgts = new Uint32Array(cap);
    this.#counts = new Uint32Array(targets.length * COUNT);
    this.#lat = this.#latencyWords(options.latency, targets.length);
  }

  #latencyWords(
    lat: readonly (BigUint64Array | null | undefined)[] | undefined,
    n: number,
  ): (BigUint64Array | null)[] {
    const out: (BigUint64Array | null)[] = Array.from({ length: n }, () => null);
    if (lat === undefined) return out;
    if (!Array.isArray(lat) || lat.length > n) {
      throw new BulktapError(
        "EINVAL",
        `latency is ${show(lat)}, not an array of at most ${n} bucket arrays`,
      );
    }
    for (let t = 0; t < lat.length; t++) {
      const h = lat[t];
      if (h === undefined || h === null) continue;
      if (this.mode === "cycle") {
        throw new BulktapError(
          "EINVAL",
          'per-target latency is recorded per stage: not in "cycle" mode (its stages are made in C)',
        );
      }
      // A zero-frame record checks the array (size and layout magic) now.
      const r = h instanceof BigUint64Array && h.length >= BT_LAT_WORDS
        ? this.#lib.bt_frames_latency(this.#stages[t], this.bulk, 0, h, BT_LAT_WORDS)
        : -1;
      if (r < 0) {
        throw new BulktapError(
          "EINVAL",
          `latency[${t}] is ${show(h)}, not a latency bucket array (LatencyRecorder.words)`,
        );
      }
      out[t] = h;
    }
    return out;
  }

  /** Per target: sent, dropped, failed calls, xmit calls (see {@linkcode TargetCounter}). */
  get counters(): Float64Array {
    return this.#counters;
  }

  /** Frames staged and not yet transmitted. */
  get pending(): number {
    return this.#pending;
  }

  /** `nowNs` of the oldest staged frame (valid while `pending > 0`). */
  get oldestNs(): number {
    return this.#oldestNs;
  }

  /**
   * Stage frame `ref` for target `t` (0 <= t < targets). `nowNs` is when
   * the frame's batch was taken, for the deadline. Throws `EINVAL`, taking
   * nothing, if `ref` is not a 32-bit ref or `t` names no target.
   */
  enqueue(ref: number, t: number, nowNs: number): void {
    if (
      !(typeof ref === "number" && typeof t === "number" && ref === ref >>> 0 && t === t >>> 0 &&
        t < this.targets)
    ) this.#enqueueError(ref, t);
    if (this.#pending === 0) this.#oldestNs = nowNs;
    if (this.mode === "cycle") {
      const n = this.#pending;
      this.#refs[n] = ref;
      this.#tgts[n] = t;
      this.#pending = n + 1;
      if (n + 1 === this.#cap) this.flush();
      return;
    }
    const f = this.#fill[t];
    const stage = this.#stages[t];
    if (f === 0) {
      this.#touched[this.#ntouched++] = t;
    } else if (f === this.bulk) {
      // Full: out without the doorbell (the cycle's last stage rings it).
      this.#send(t, stage, f, 0);
      this.#pending -= f;
      stage[0] = ref;
      this.#fill[t] = 1;
      this.#pending++;
      return;
    }
    stage[f] = ref;
    this.#fill[t] = f + 1;
    this.#pending++;
  }

  #enqueueError(ref: number, t: number): never {
    if (typeof ref !== "number" || ref !== ref >>> 0) {
      throw new BulktapError("EINVAL", `enqueue: frame ref ${show(ref)} is not a 32-bit ref`);
    }
    throw new BulktapError("EINVAL", `enqueue: target ${show(t)} is not in 0..${this.targets - 1}`);
  }

  #send(t: number, stage: Uint32Array, n: number, flags: number): void {
    // Latency before the transmit: after it the frames are the target's.
    const h = this.#lat[t];
    if (h !== null) this.#lib.bt_frames_latency(stage, this.bulk, n, h, BT_LAT_WORDS);
    const r = this.#lib.bt_xmit(this.#handles[t], stage, this.bulk, n, flags | DIRECT, this.cpu);
    const c = this.#counters;
    const at = t * COUNT;
    c[at + XMIT_CALLS]++;
    if (r >= 0) {
      c[at + SENT] += r;
      c[at + DROPPED] += n - r;
    } else {
      // ENXIO (closed), ENODEV (a deleted TAP): the library returned the
      // frames. EINVAL: a program corrupted a frame's metadata; return what
      // is still held.
      const code = codeForErrno(r);
      if (code !== "ENXIO" && code !== "ENODEV") {
        this.#lib.bt_frames_put(stage, this.bulk, n, null, 0);
      }
      c[at + DROPPED] += n;
      c[at + FAILED_CALLS]++;
    }
  }

  /**
   * Transmit every staged frame, each target's last stage with the doorbell.
   * Call at the end of every poll cycle (and when the deadline passes).
   */
  flush(): void {
    if (this.#pending === 0) return;
    if (this.mode === "cycle") {
      const counts = this.#counts;
      counts.fill(0);
      this.#lib.bt_devmap_xmit(
        this.#handles,
        this.targets,
        this.targets,
        this.#refs,
        this.#cap,
        this.#tgts,
        this.#cap,
        this.#pending,
        this.bulk,
        XMIT_FLUSH | DIRECT,
        this.cpu,
        counts,
        counts.length,
      );
      // The same layout on both sides: C's counts add up into ours.
      const c = this.#counters;
      for (let i = 0; i < counts.length; i++) c[i] += counts[i];
      this.#pending = 0;
      return;
    }
    for (let k = 0; k < this.#ntouched; k++) {
      const t = this.#touched[k];
      this.#send(t, this.#stages[t], this.#fill[t], XMIT_FLUSH);
      this.#fill[t] = 0;
    }
    this.#ntouched = 0;
    this.#pending = 0;
  }

  /** Frames sent to target `t` so far. */
  sent(t: number): number {
    return this.#counters[intIn(t, 0, this.targets - 1, "target") * COUNT + SENT];
  }

  /** Frames target `t` did not accept (returned to their pool). */
  dropped(t: number): number {
    return this.#counters[intIn(t, 0, this.targets - 1, "target") * COUNT + DROPPED];
  }
}
