/**
 * One CPU's NAPI-like poll loop: for each source take up to a budget of
 * frames, run the program, stage the frames per target, and flush every
 * stage at the end of the cycle (or before a source's turn, once the oldest
 * staged frame has waited `deadlineNs`: no stage waits longer than the
 * deadline plus one source's turn); then let each local reader consume its
 * queue and record latency. Sources are visited round-robin, starting one
 * further each cycle, so none starves. The scheduler runs one loop per
 * Worker; tests and single-threaded users can run one directly.
 *
 * Hot path rules: per frame only typed-array reads and writes; per batch
 * one FFI call to take frames, one clock reading, one to return drops, one
 * pool allocation per pool for all the batch's `BROADCAST` copies, and one
 * write of each counter into the (shared) counter block; one transmit call
 * per stage of up to `bulk` frames (or, in `"cycle"` mode, one per cycle for
 * all targets). The clock is read as a double (`bt_now_ns_f64`): a u64
 * result would cost a BigInt per reading.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { BT_MAX_QUEUES } from "../ffi/abi.ts";
import { intIn, show, u32Arg } from "./boundary.ts";
import { BulktapError } from "./errors.ts";
import {
  BulkQueues,
  MAX_TARGETS,
  type StageMode,
  TargetCounter,
  type XmitTarget,
} from "./devmap.ts";
import { LatencyLayout, LatencyRecorder, wordsOf } from "./latency.ts";
import { FloodCopies, heldPool } from "./flood.ts";
import type { PacketBatch, Program } from "./program.ts";
import type { Source } from "./source.ts";
import { Verdict } from "./verdict.ts";

/** A local reader: consumes one device queue and records latency. */
export interface ReaderSpec {
  /** Device handle. */
  device: number;
  /** Queue number. */
  queue: number;
  /** Histogram label (default `dev<handle>/q<queue>`). */
  label?: string;
}

export {
  COUNTER_BLOCK,
  counterBlock,
  counterBuffer,
  INVALID_REASONS,
  type InvalidReason,
  LoopCounter,
} from "./loop_counters.ts";
import { INVALID_REASONS, type InvalidReason, LoopCounter } from "./loop_counters.ts";

/** The first invalid verdict of one reason a loop met (see {@linkcode PollLoop.invalidVerdicts}). */
export interface InvalidVerdict {
  /** Why it was invalid. */
  reason: InvalidReason;
  /** The verdict word. */
  verdict: number;
  /** The source whose batch it was (its `name`). */
  source: string;
  /** What was wrong, in words. */
  message: string;
}

/** Options of {@linkcode PollLoop}. */
export interface PollLoopOptions {
  /** Where frames come from. */
  sources: Source[];
  /** The program. */
  program: Program;
  /** The device map: `REDIRECT` index i transmits to `targets[i]`. */
  targets: readonly XmitTarget[];
  /** Local readers (their histograms are labelled per reader). */
  readers?: ReaderSpec[];
  /** This loop's CPU number: queue choice is `cpu % queues` (default 0). */
  cpu?: number;
  /** Frames per stage, 1..256 (default 16). */
  bulk?: number;
  /** How stages cross into C (default `"target"`: one call per stage). */
  stageMode?: StageMode;
  /** Frames per source per cycle (default 64). */
  budget?: number;
  /** Longest a staged frame waits before a flush, ns (default 50,000). */
  deadlineNs?: number;
  /** Record the readers' (and local PASS) latency (default true). */
  latency?: boolean;
  /**
   * Record each target's latency (default false): from a frame's
   * timestamp (its receive time, for a TAP source) to the moment its stage
   * is handed to the target, in {@linkcode PollLoop.targetLatency}. One
   * FFI call per stage, none per frame; `"target"` stage mode only.
   */
  targetLatency?: boolean;
  /**
   * Counter array to write into, at least {@linkcode LoopCounter.COUNT}
   * long (e.g. a {@linkcode counterBlock} of shared memory); default new.
   * The loop writes each counter once per batch or cycle, not per frame.
   */
  counters?: Float64Array;
  /**
   * Where `PASS` frames go. Default (omitted): the loop is their local
   * reader: it records their latency (histogram `"pass"`) and returns them
   * to their pool at once. With a device (e.g. an in-memory `Device`),
   * `PASS` frames are staged to it like a device-map target (in bulk, on
   * queue `cpu % queues`, flushed at the end of the cycle and by the
   * deadline) and you read them with `device.queue(q).frames()`; frames it
   * refuses count in `TX_DROPPED`. The device map then holds at most
   * `MAX_TARGETS - 1` targets.
   */
  pass?: XmitTarget;
  /**
   * What a program that throws does to the loop. `"drop"` (default): the
   * batch's frames go home, counted in `THROWN` (and the throw in
   * `PROGRAM_ERRORS`), the first error is kept in
   * {@linkcode PollLoop.programError}, and the loop goes on. `"stop"`: the
   * same, then `cycle()` throws the error.
   */
  onProgramError?: "drop" | "stop";
}

/**
 * A poll loop over sources, a program and a device map.
 *
 * @example
 * ```ts
 * import { Device, forward, FramePool, GeneratorSource } from "./mod.ts";
 * import { PollLoop } from "./poll_loop.ts";
 * using pool = new FramePool({ frames: 256 });
 * using dev = new Device({ pool });
 * const gen = new GeneratorSource({ kind: "generator", pool: pool.handle, limit: 64 });
 * const loop = new PollLoop({
 *   sources: [gen],
 *   program: forward(0),
 *   targets: [dev],
 *   readers: [{ device: dev.handle, queue: 0 }],
 * });
 * loop.cycle();
 * console.log(loop.latency.get("dev" + dev.handle + "/q0")!.summary().count); // 64
 * loop.close();
 * ```
 */
export class PollLoop {
  /** Counters (see {@linkcode LoopCounter}). */
  readonly counters: Float64Array;
  /** Per-CPU bulk queues over the device map. */
  readonly queues: BulkQueues;
  /** Latency recorders by label: one per reader, plus `"pass"` (without a PASS device). */
  readonly latency: Map<string, LatencyRecorder> = new Map();
  /**
   * Per device-map target, its latency up to transmit (see
   * `PollLoopOptions.targetLatency`); empty when not recorded.
   */
  readonly targetLatency: readonly LatencyRecorder[];
  /** The sources. */
  readonly sources: readonly Source[];
  readonly #program: Program;
  readonly #readers: { device: number; queue: number; rec: LatencyRecorder | undefined }[];
  readonly #pass: LatencyRecorder | undefined;
  /** Stage index of the PASS device, or -1 (PASS frames consumed here). */
  readonly #passIndex: number;
  readonly #budget: number;
  readonly #deadlineNs: number;
  readonly #ntargets: number;
  readonly #batch: PacketBatch;
  // The loop's own arrays: sources fill #refs, the program sees a copy in
  // #shown and writes #verdicts. The loop reads only these, never what the
  // program left in the batch's fields (a program may reassign them).
  readonly #refs: Uint32Array;
  readonly #shown: Uint32Array;
  readonly #verdicts: Uint32Array;
  readonly #drops: Uint32Array;
  readonly #passed: Uint32Array;
  // Copies for BROADCAST frames, allocated per flooded batch.
  readonly #flood: FloodCopies;
  readonly #readRefs: Uint32Array;
  readonly #stopOnThrow: boolean;
  #programError: unknown = undefined;
  // Bit i: INVALID_REASONS[i] met; #invalidFirst[i]: its first occurrence.
  #invalidSeen = 0;
  readonly #invalidFirst: InvalidVerdict[] = [];
  #maxStageAge = 0;
  #maxSourceRun = 0;
  #next = 0;
  #closed = false;
  #lib = library();

  /** A loop; nothing runs until {@linkcode PollLoop.cycle} is called. */
  constructor(o: PollLoopOptions) {
    const onErr = o.onProgramError ?? "drop";
    if (onErr !== "drop" && onErr !== "stop") {
      throw new BulktapError("EINVAL", `onProgramError ${show(onErr)} is not "drop" or "stop"`);
    }
    this.#stopOnThrow = onErr === "stop";
    const budget = o.budget ?? 64;
    if (!Number.isInteger(budget) || budget < 1 || budget > 65536) {
      throw new BulktapError("EINVAL", `budget ${budget} is not in 1..65536`);
    }
    const deadlineNs = o.deadlineNs ?? 50_000;
    if (!(deadlineNs >= 0)) {
      throw new BulktapError("EINVAL", `deadlineNs ${deadlineNs} is negative`);
    }
    if (!Array.isArray(o.sources) || o.sources.some((x) => typeof x?.poll !== "function")) {
      throw new BulktapError("EINVAL", `sources is ${show(o.sources)}, not an array of sources`);
    }
    if (typeof o.program !== "function") {
      throw new BulktapError("EINVAL", `program is ${show(o.program)}, not a function`);
    }
    if (!Array.isArray(o.targets)) {
      throw new BulktapError("EINVAL", `targets is ${show(o.targets)}, not an array of devices`);
    }
    this.sources = [...o.sources];
    this.#program = o.program;
    this.#budget = budget;
    this.#deadlineNs = deadlineNs;
    this.#ntargets = o.targets.length;
    if (o.pass && o.targets.length >= MAX_TARGETS) {
      throw new BulktapError(
        "E2BIG",
        `with a PASS device the device map holds at most ${MAX_TARGETS - 1} targets, ` +
          `not ${o.targets.length}`,
      );
    }
    this.#passIndex = o.pass ? o.targets.length : -1;
    this.counters = o.counters ?? new Float64Array(LoopCounter.COUNT);
    // Written only by this loop's TypeScript (never handed to C): any
    // array-like of numbers will do, a Proxy for tests included.
    const slots = typeof this.counters === "object" && this.counters !== null
      ? Number(this.counters.length)
      : NaN;
    if (!(slots >= LoopCounter.COUNT)) {
      throw new BulktapError(
        "EINVAL",
        `counters has ${slots} slots, the loop needs ${LoopCounter.COUNT}`,
      );
    }
    if (o.targetLatency !== undefined && typeof o.targetLatency !== "boolean") {
      throw new BulktapError("EINVAL", `targetLatency is ${show(o.targetLatency)}, not a boolean`);
    }
    this.targetLatency = o.targetLatency === true ? o.targets.map(() => new LatencyRecorder()) : [];
    this.queues = new BulkQueues(o.pass ? [...o.targets, o.pass] : o.targets, {
      bulk: o.bulk,
      mode: o.stageMode,
      latency: this.targetLatency.map(wordsOf),
      cpu: o.cpu ?? 0,
      cycleCapacity: Math.min(Math.max(budget * Math.max(1, o.sources.length) * 2, 256), 1 << 20),
    });
    const record = o.latency ?? true;
    if (o.readers !== undefined && !Array.isArray(o.readers)) {
      throw new BulktapError("EINVAL", `readers is ${show(o.readers)}, not an array`);
    }
    this.#readers = (o.readers ?? []).map((r) => {
      if (typeof r !== "object" || r === null) {
        throw new BulktapError("EINVAL", `a reader is ${show(r)}, not { device, queue }`);
      }
      const label = r.label ?? `dev${r.device}/q${r.queue}`;
      let rec: LatencyRecorder | undefined;
      if (record) {
        rec = this.latency.get(label) ?? new LatencyRecorder();
        this.latency.set(label, rec);
      }
      return {
        device: u32Arg(r.device, `readers: device`),
        queue: intIn(r.queue, 0, BT_MAX_QUEUES - 1, `readers: queue`),
        rec,
      };
    });
    if (record && !o.pass) {
      this.#pass = new LatencyRecorder();
      this.latency.set("pass", this.#pass);
    }
    this.#refs = new Uint32Array(budget);
    this.#shown = new Uint32Array(budget);
    this.#verdicts = new Uint32Array(budget);
    this.#batch = {
      refs: this.#shown,
      count: 0,
      verdicts: this.#verdicts,
      ingress: -1,
      nowNs: 0,
      targets: this.#ntargets,
    };
    this.#drops = new Uint32Array(budget);
    this.#passed = new Uint32Array(budget);
    this.#readRefs = new Uint32Array(Math.max(budget, 256));
    this.#flood = new FloodCopies(budget);
  }

  /**
   * One poll cycle. Returns the number of frames moved (taken from sources
   * plus consumed by readers): 0 means the loop found nothing to do.
   */
  cycle(): number {
    const c = this.counters;
    const srcs = this.sources;
    const bq = this.queues;
    const lib = this.#lib;
    let work = 0;
    // One clock reading per source turn; the gap between two readings is
    // the previous turn's cost (for MAX_SOURCE_RUN_NS).
    let now = 0;
    for (let k = 0; k < srcs.length; k++) {
      const src = srcs[(this.#next + k) % srcs.length];
      const t = lib.bt_now_ns_f64();
      if (k > 0 && t - now > this.#maxSourceRun) this.#maxSourceRun = t - now;
      now = t;
      // The deadline: a frame staged by an earlier source this cycle must
      // not wait for the rest of the cycle longer than deadlineNs.
      if (bq.pending > 0 && now - bq.oldestNs >= this.#deadlineNs) {
        this.#flush(now);
        c[LoopCounter.DEADLINE_FLUSHES]++;
      }
      const n = src.poll(this.#refs, this.#budget, now);
      if (n !== 0 && !(n >= 1 && n <= this.#budget && Number.isInteger(n))) {
        // The frames it meant are unknown: none can be moved or returned.
        throw new BulktapError(
          "EINVAL",
          `source ${src.name} returned ${show(n)} frames from a poll of at most ${this.#budget}`,
        );
      }
      if (n > 0) {
        this.#runBatch(src, n, now);
        work += n;
      }
    }
    if (srcs.length > 0) this.#next = (this.#next + 1) % srcs.length;
    if (bq.pending > 0) {
      const t = lib.bt_now_ns_f64();
      if (t - now > this.#maxSourceRun) this.#maxSourceRun = t - now;
      this.#flush(t);
    }
    work += this.#read();
    let poolEmpty = 0;
    for (let k = 0; k < srcs.length; k++) poolEmpty += srcs[k].poolEmpty ?? 0;
    c[LoopCounter.POOL_EMPTY] = poolEmpty;
    c[LoopCounter.MAX_STAGE_AGE_NS] = this.#maxStageAge;
    c[LoopCounter.MAX_SOURCE_RUN_NS] = this.#maxSourceRun;
    c[LoopCounter.CYCLES]++;
    return work;
  }

  /**
   * The first error the program threw (undefined if it never threw); the
   * count is `counters[LoopCounter.PROGRAM_ERRORS]`.
   *
   * @example
   * ```ts
   * import { PollLoop } from "./poll_loop.ts";
   * const loop = new PollLoop({ sources: [], program: () => {}, targets: [] });
   * console.log(loop.programError); // undefined
   * loop.close();
   * ```
   */
  get programError(): unknown {
    return this.#programError;
  }

  /**
   * Which invalid-verdict reasons this loop has met: bit `i` for
   * `INVALID_REASONS[i]` (a number, cheap to compare every cycle to what
   * was already said).
   */
  get invalidSeen(): number {
    return this.#invalidSeen;
  }

  /**
   * The first invalid verdict of each reason the loop met, in
   * `INVALID_REASONS` order (empty if none); the counts are
   * `counters[LoopCounter.BAD_VERDICT]`, `MISSING_TARGET` and `NO_INGRESS`
   * (their sum `INVALID`). Each frame with an invalid verdict was dropped.
   *
   * @example
   * ```ts
   * import { PollLoop } from "./poll_loop.ts";
   * const loop = new PollLoop({ sources: [], program: () => {}, targets: [] });
   * console.log(loop.invalidVerdicts.length); // 0
   * loop.close();
   * ```
   */
  get invalidVerdicts(): readonly InvalidVerdict[] {
    return this.#invalidFirst.filter((x) => x !== undefined);
  }

  #flush(now: number): void {
    const bq = this.queues;
    if (bq.pending === 0) return;
    const age = now - bq.oldestNs;
    if (age > this.#maxStageAge) this.#maxStageAge = age;
    bq.flush();
    let sent = 0, dropped = 0;
    const tc = bq.counters;
    for (let t = 0; t < bq.targets; t++) {
      sent += tc[t * TargetCounter.COUNT + TargetCounter.SENT];
      dropped += tc[t * TargetCounter.COUNT + TargetCounter.DROPPED];
    }
    this.counters[LoopCounter.TX_SENT] = sent;
    this.counters[LoopCounter.TX_DROPPED] = dropped;
  }

  #runBatch(src: Source, n: number, now: number): void {
    const c = this.counters;
    const b = this.#batch;
    const refs = this.#refs, verdicts = this.#verdicts, shown = this.#shown;
    const ntargets = this.#ntargets;
    const bq = this.queues;
    for (let i = 0; i < n; i++) shown[i] = refs[i];
    (b as { refs: Uint32Array }).refs = shown;
    (b as { verdicts: Uint32Array }).verdicts = verdicts;
    b.count = n;
    const ing = src.ingress;
    // Read once, before the program runs (it may change the batch's field).
    const ingress = typeof ing === "number" && Number.isInteger(ing) && ing >= 0 ? ing : -1;
    b.ingress = ingress;
    b.nowNs = now;
    b.targets = ntargets;
    verdicts.fill(Verdict.DROP, 0, n);
    c[LoopCounter.RX] += n;
    try {
      this.#program(b);
    } catch (e) {
      // A program that throws loses no frame: the batch goes home, counted;
      // the first error is kept (reported once, not per frame).
      this.#lib.bt_frames_put(refs, refs.length, n, null, 0);
      c[LoopCounter.THROWN] += n;
      c[LoopCounter.PROGRAM_ERRORS]++;
      this.#programError ??= e;
      if (this.#stopOnThrow) throw e;
      return;
    }
    // Counted in locals, written to the (shared) counters once per batch.
    let nd = 0, np = 0;
    let drop = 0, pass = 0, tx = 0, redirected = 0, copies = 0;
    // Invalid verdicts by reason, and the first word of each in the batch.
    let bad = 0, missing = 0, noIngress = 0, badWord = 0, missingWord = 0;
    let flood = -1; // copies per flooded frame; -1 until the first BROADCAST
    let missed = 0;
    const drops = this.#drops, passed = this.#passed;
    const passIndex = this.#passIndex;
    const hasIngress = ingress >= 0 && ingress < ntargets;
    for (let i = 0; i < n; i++) {
      const v = verdicts[i];
      const ref = refs[i];
      switch (v & 0xff) {
        case Verdict.REDIRECT: {
          const t = v >>> 8;
          if (t < ntargets) {
            bq.enqueue(ref, t, now);
            redirected++;
          } else {
            drops[nd++] = ref;
            if (missing++ === 0) missingWord = v;
          }
          break;
        }
        case Verdict.DROP:
          drops[nd++] = ref;
          drop++;
          break;
        case Verdict.PASS:
          if (passIndex >= 0) bq.enqueue(ref, passIndex, now);
          else passed[np++] = ref;
          pass++;
          break;
        case Verdict.TX:
          if (hasIngress) {
            bq.enqueue(ref, ingress, now);
            tx++;
          } else {
            drops[nd++] = ref;
            noIngress++;
          }
          break;
        case Verdict.BROADCAST: {
          // Flood: the frame to the first target that is not its ingress,
          // copies to the others. The copies for the whole batch are
          // allocated at the first BROADCAST (one call per pool).
          const others = ntargets - (hasIngress ? 1 : 0);
          if (others <= 0) {
            drops[nd++] = ref;
            drop++;
            break;
          }
          if (flood < 0) {
            flood = others - 1;
            this.#flood.alloc(refs, verdicts, i, n, flood);
          }
          // Copies only of a frame held: a source may hand out a ref of no
          // pool, or of a frame it does not hold. Nothing here throws, so
          // the batch's frames and copies all reach a stage or go home.
          const pool = flood > 0 ? heldPool(ref) : undefined;
          let first = true;
          for (let t = 0; t < ntargets; t++) {
            if (t === ingress) continue;
            if (first) {
              bq.enqueue(ref, t, now);
              first = false;
              continue;
            }
            const cref = pool === undefined ? -1 : this.#flood.copyOf(pool, ref);
            if (cref < 0) {
              missed++; // no copy (pool empty, or not a frame to copy): counted
              continue;
            }
            bq.enqueue(cref, t, now);
            copies++;
          }
          redirected++;
          break;
        }
        default:
          drops[nd++] = ref;
          if (bad++ === 0) badWord = v;
      }
    }
    if (nd > 0) this.#lib.bt_frames_put(drops, drops.length, nd, null, 0);
    if (np > 0) {
      // The Worker's local reader consumes PASS frames here.
      this.#pass?.recordBatch(passed, np);
      this.#lib.bt_frames_put(passed, passed.length, np, null, 0);
    }
    if (flood > 0) this.#flood.returnUnused();
    c[LoopCounter.DROP] += drop;
    c[LoopCounter.PASS] += pass;
    c[LoopCounter.TX] += tx;
    c[LoopCounter.REDIRECT] += redirected;
    if (copies > 0) c[LoopCounter.BROADCAST_COPIES] += copies;
    if (missed > 0) c[LoopCounter.BROADCAST_MISSED] += missed;
    if (bad + missing + noIngress > 0) {
      this.#countInvalid(src, bad, badWord, missing, missingWord, noIngress);
    }
  }

  // Off the hot path: only batches with invalid verdicts get here, and
  // allocate only for the first of each reason.
  #countInvalid(
    src: Source,
    bad: number,
    badWord: number,
    missing: number,
    missingWord: number,
    noIngress: number,
  ): void {
    this.counters[LoopCounter.INVALID] += bad + missing + noIngress;
    if (bad > 0) this.#invalid(0, bad, badWord, src);
    if (missing > 0) this.#invalid(1, missing, missingWord, src);
    if (noIngress > 0) this.#invalid(2, noIngress, Verdict.TX, src);
  }

  #invalid(i: number, n: number, word: number, src: Source): void {
    this.counters[INVALID_REASONS[i].counter] += n;
    if (this.#invalidSeen & (1 << i)) return;
    // The first of its reason: kept to be said once, not per frame.
    this.#invalidSeen |= 1 << i;
    const v = word >>> 0;
    const source = String(src.name);
    const reason = INVALID_REASONS[i].reason;
    const message = reason === "badVerdict"
      ? `verdict 0x${v.toString(16)} from ${source}: action ${
        v & 0xff
      } is none of DROP, PASS, TX, REDIRECT, BROADCAST`
      : reason === "missingTarget"
      ? `REDIRECT to device-map index ${v >>> 8} from ${source}: the map holds ${
        this.#ntargets === 0 ? "no targets" : `0..${this.#ntargets - 1}`
      }`
      : `TX from ${source}, which has no ingress device in the map`;
    this.#invalidFirst[i] = { reason, verdict: v, source, message };
  }

  // A reader's step is one FFI call: read, add each frame's latency to the
  // reader's bucket array (in C), return the frames.
  #read(): number {
    let total = 0;
    const refs = this.#readRefs;
    for (const r of this.#readers) {
      const h = r.rec ? wordsOf(r.rec) : null;
      const n = this.#lib.bt_queue_consume(
        r.device,
        r.queue,
        refs,
        refs.length,
        refs.length,
        h,
        h ? LatencyLayout.WORDS : 0,
      );
      if (n <= 0) continue;
      total += n;
    }
    this.counters[LoopCounter.READ] += total;
    return total;
  }

  /** Only the readers' part of a cycle (used while stopping). Returns frames consumed. */
  readOnly(): number {
    return this.#read();
  }

  /** Readers' queue pairs (device, queue) this loop consumes, for sleeping on. */
  get readerQueues(): readonly { device: number; queue: number }[] {
    return this.#readers;
  }

  /**
   * Stop: flush what is staged, let readers consume what is queued for them
   * now, and close the sources. Every frame the loop touched is then in a
   * queue, consumed or back in its pool.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#flush(this.#lib.bt_now_ns_f64());
    this.counters[LoopCounter.MAX_STAGE_AGE_NS] = this.#maxStageAge;
    this.#read();
    for (const s of this.sources) s.close();
  }
}
