/**
 * One CPU's NAPI-like poll loop: for each source take up to a budget of
 * frames, run the program, stage the frames per target, and flush every
 * stage at the end of the cycle; then let each local reader consume its
 * queue and record latency. Sources are visited round-robin, starting one
 * further each cycle, so none starves. The scheduler runs one loop per
 * Worker; tests and single-threaded users can run one directly.
 *
 * Hot path rules: per frame only typed-array reads and writes; per batch
 * one FFI call to take frames, one clock reading, one to return drops; one
 * transmit call per stage of up to `bulk` frames (or, in `"cycle"` mode, one
 * per cycle for all targets).
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { BulktapError } from "./errors.ts";
import { BulkQueues, type StageMode, type XmitTarget } from "./devmap.ts";
import { LatencyRecorder } from "./latency.ts";
import { FramePool } from "./pool.ts";
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

/**
 * Indexes into {@linkcode PollLoop.counters}.
 *
 * @example
 * ```ts
 * import { LoopCounter } from "./mod.ts";
 * console.log(LoopCounter.READ); // 7
 * ```
 */
export const LoopCounter = {
  /** Frames taken from sources. */
  RX: 0,
  /** DROP verdicts. */
  DROP: 1,
  /** PASS verdicts (consumed by the local reader). */
  PASS: 2,
  /** TX verdicts. */
  TX: 3,
  /** REDIRECT verdicts. */
  REDIRECT: 4,
  /** Extra frames made by BROADCAST (copies). */
  BROADCAST_COPIES: 5,
  /** Frames dropped for a bad verdict (unknown action, target out of the map, TX without ingress). */
  INVALID: 6,
  /** Frames consumed by local readers (latency recorded). */
  READ: 7,
  /** Poll cycles. */
  CYCLES: 8,
  /** Times the loop slept. */
  SLEEPS: 9,
  /** Flushes forced by the deadline before the end of a cycle. */
  DEADLINE_FLUSHES: 10,
  /** Frames the targets accepted. */
  TX_SENT: 11,
  /** Frames the targets refused (back in their pool). */
  TX_DROPPED: 12,
  /** Number of counters. */
  COUNT: 13,
} as const;

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
  /** Record latency (default true). */
  latency?: boolean;
  /** Counter array to write into (e.g. a view of shared memory); default new. */
  counters?: Float64Array;
}

/**
 * A poll loop over sources, a program and a device map.
 *
 * @example
 * ```ts
 * import { Device, forward, FramePool, GeneratorSource, PollLoop } from "./mod.ts";
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
  /** Latency recorders by label: one per reader, plus `"pass"`. */
  readonly latency: Map<string, LatencyRecorder> = new Map();
  /** The sources. */
  readonly sources: readonly Source[];
  readonly #program: Program;
  readonly #readers: { device: number; queue: number; rec: LatencyRecorder | undefined }[];
  readonly #pass: LatencyRecorder | undefined;
  readonly #budget: number;
  readonly #deadlineNs: number;
  readonly #ntargets: number;
  readonly #batch: PacketBatch;
  readonly #drops: Uint32Array;
  readonly #passed: Uint32Array;
  readonly #copies: Uint32Array;
  readonly #readRefs: Uint32Array;
  #next = 0;
  #closed = false;
  #lib = library();

  /** A loop; nothing runs until {@linkcode PollLoop.cycle} is called. */
  constructor(o: PollLoopOptions) {
    const budget = o.budget ?? 64;
    if (!Number.isInteger(budget) || budget < 1 || budget > 65536) {
      throw new BulktapError("EINVAL", `budget ${budget} is not in 1..65536`);
    }
    const deadlineNs = o.deadlineNs ?? 50_000;
    if (!(deadlineNs >= 0)) {
      throw new BulktapError("EINVAL", `deadlineNs ${deadlineNs} is negative`);
    }
    this.sources = o.sources;
    this.#program = o.program;
    this.#budget = budget;
    this.#deadlineNs = deadlineNs;
    this.#ntargets = o.targets.length;
    this.counters = o.counters ?? new Float64Array(LoopCounter.COUNT);
    this.queues = new BulkQueues(o.targets, {
      bulk: o.bulk,
      mode: o.stageMode,
      cpu: o.cpu ?? 0,
      cycleCapacity: Math.max(budget * Math.max(1, o.sources.length) * 2, 256),
    });
    const record = o.latency ?? true;
    this.#readers = (o.readers ?? []).map((r) => {
      const label = r.label ?? `dev${r.device}/q${r.queue}`;
      let rec: LatencyRecorder | undefined;
      if (record) {
        rec = this.latency.get(label) ?? new LatencyRecorder();
        this.latency.set(label, rec);
      }
      return { device: r.device, queue: r.queue, rec };
    });
    if (record) {
      this.#pass = new LatencyRecorder();
      this.latency.set("pass", this.#pass);
    }
    this.#batch = {
      refs: new Uint32Array(budget),
      count: 0,
      verdicts: new Uint32Array(budget),
      ingress: -1,
      nowNs: 0,
      targets: this.#ntargets,
    };
    this.#drops = new Uint32Array(budget);
    this.#passed = new Uint32Array(budget);
    this.#copies = new Uint32Array(Math.max(1, this.#ntargets));
    this.#readRefs = new Uint32Array(Math.max(budget, 256));
  }

  #now(): number {
    return Number(this.#lib.bt_now_ns());
  }

  /**
   * One poll cycle. Returns the number of frames moved (taken from sources
   * plus consumed by readers): 0 means the loop found nothing to do.
   */
  cycle(): number {
    const c = this.counters;
    const srcs = this.sources;
    const bq = this.queues;
    let work = 0;
    c[LoopCounter.CYCLES]++;
    for (let k = 0; k < srcs.length; k++) {
      const src = srcs[(this.#next + k) % srcs.length];
      const now = this.#now();
      // The deadline: a frame staged by an earlier source this cycle must
      // not wait for the rest of the cycle longer than deadlineNs.
      if (bq.pending > 0 && now - bq.oldestNs >= this.#deadlineNs) {
        this.#flush();
        c[LoopCounter.DEADLINE_FLUSHES]++;
      }
      const n = src.poll(this.#batch.refs, this.#budget, now);
      if (n > 0) {
        this.#runBatch(src, n, now);
        work += n;
      }
    }
    if (srcs.length > 0) this.#next = (this.#next + 1) % srcs.length;
    this.#flush();
    work += this.#read();
    return work;
  }

  #flush(): void {
    const bq = this.queues;
    if (bq.pending === 0) return;
    bq.flush();
    let sent = 0, dropped = 0;
    const tc = bq.counters;
    for (let t = 0; t < this.#ntargets; t++) {
      sent += tc[t * 4];
      dropped += tc[t * 4 + 1];
    }
    this.counters[LoopCounter.TX_SENT] = sent;
    this.counters[LoopCounter.TX_DROPPED] = dropped;
  }

  #runBatch(src: Source, n: number, now: number): void {
    const c = this.counters;
    const b = this.#batch;
    const refs = b.refs, verdicts = b.verdicts;
    const ntargets = this.#ntargets;
    const bq = this.queues;
    b.count = n;
    b.ingress = src.ingress;
    b.nowNs = now;
    verdicts.fill(Verdict.DROP, 0, n);
    c[LoopCounter.RX] += n;
    try {
      this.#program(b);
    } catch (e) {
      // A program that throws loses no frame: the batch goes home, counted.
      this.#lib.bt_frames_put(refs, n, null, 0);
      c[LoopCounter.INVALID] += n;
      throw e;
    }
    let nd = 0, np = 0;
    const drops = this.#drops, passed = this.#passed;
    for (let i = 0; i < n; i++) {
      const v = verdicts[i];
      const ref = refs[i];
      switch (v & 0xff) {
        case Verdict.REDIRECT: {
          const t = v >>> 8;
          if (t < ntargets) {
            bq.enqueue(ref, t, now);
            c[LoopCounter.REDIRECT]++;
          } else {
            drops[nd++] = ref;
            c[LoopCounter.INVALID]++;
          }
          break;
        }
        case Verdict.DROP:
          drops[nd++] = ref;
          c[LoopCounter.DROP]++;
          break;
        case Verdict.PASS:
          passed[np++] = ref;
          c[LoopCounter.PASS]++;
          break;
        case Verdict.TX:
          if (b.ingress >= 0 && b.ingress < ntargets) {
            bq.enqueue(ref, b.ingress, now);
            c[LoopCounter.TX]++;
          } else {
            drops[nd++] = ref;
            c[LoopCounter.INVALID]++;
          }
          break;
        case Verdict.BROADCAST:
          if (!this.#broadcast(ref, b.ingress, now)) drops[nd++] = ref;
          break;
        default:
          drops[nd++] = ref;
          c[LoopCounter.INVALID]++;
      }
    }
    if (nd > 0) this.#lib.bt_frames_put(drops, nd, null, 0);
    if (np > 0) {
      // The Worker's local reader consumes PASS frames here.
      this.#pass?.recordBatch(passed, np);
      this.#lib.bt_frames_put(passed, np, null, 0);
    }
  }

  /**
   * Flood: the frame to the first target that is not its ingress, copies
   * (from the frame's own pool) to the others. The slow path, as cloning is
   * in the kernel: one allocation call per flooded frame. Returns false if
   * the frame was not used (no target besides the ingress).
   */
  #broadcast(ref: number, ingress: number, now: number): boolean {
    const ntargets = this.#ntargets;
    const want = ntargets - (ingress >= 0 && ingress < ntargets ? 1 : 0);
    if (want <= 0) {
      this.counters[LoopCounter.DROP]++;
      return false;
    }
    const pool = FramePool.of(ref);
    const copies = this.#copies;
    const got = want > 1 ? Math.max(0, this.#lib.bt_pool_alloc(pool.handle, copies, want - 1)) : 0;
    const src = pool.dataOffset(ref), len = pool.length(ref), ts = pool.timestamp(ref);
    let k = 0;
    for (let t = 0; t < ntargets; t++) {
      if (t === ingress) continue;
      if (k === 0) {
        this.queues.enqueue(ref, t, now);
      } else if (k <= got) {
        const cref = copies[k - 1];
        const dst = pool.dataOffset(cref);
        pool.bytes.copyWithin(dst, src, src + len);
        pool.setLength(cref, len);
        pool.setTimestamp(cref, ts);
        this.queues.enqueue(cref, t, now);
        this.counters[LoopCounter.BROADCAST_COPIES]++;
      }
      k++;
    }
    this.counters[LoopCounter.REDIRECT]++;
    return true;
  }

  // A reader's step is one FFI call: read, add each frame's latency to the
  // reader's bucket array (in C), return the frames.
  #read(): number {
    let total = 0;
    const refs = this.#readRefs;
    for (const r of this.#readers) {
      const h = r.rec ? r.rec.words : null;
      const n = this.#lib.bt_queue_consume(
        r.device,
        r.queue,
        refs,
        refs.length,
        h,
        h ? h.byteLength : 0,
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
    this.#flush();
    this.#read();
    for (const s of this.sources) s.close();
  }
}
