/**
 * The scheduler: one Worker per "CPU", each running a {@linkcode PollLoop}
 * over its share of the sources and readers, all transmitting into one
 * device map. Counters live in shared memory (read live, no messages);
 * so do the latency buckets each Worker's readers record into: the main
 * thread builds HDR histograms from them when asked (live, or exact after
 * the Workers report) and merges them per label (target and queue).
 *
 * @module
 */
import { intIn, show, u32Arg } from "./boundary.ts";
import { library } from "../ffi/lib.ts";
import { BT_MAX_BULK } from "../ffi/abi.ts";
import { BulktapError } from "./errors.ts";
import { type StageMode, TargetCounter, type XmitTarget } from "./devmap.ts";
import {
  histogramFromBuckets,
  type LatencyHistogram,
  type LatencyShare,
  type LatencySummary,
  newLatencyHistogram,
  summarize,
} from "./latency.ts";
import {
  counterBlock,
  counterBuffer,
  type InvalidReason,
  LoopCounter,
  type ReaderSpec,
} from "./poll_loop.ts";
import type { ProgramSpec } from "./program.ts";
import type { SourceSpec } from "./source.ts";
import { Ctrl, type WorkerConfig, type WorkerMessage } from "./worker_protocol.ts";

export {
  INVALID_REASONS,
  type InvalidReason,
  type InvalidVerdict,
  LoopCounter,
  PollLoop,
  type PollLoopOptions,
  type ReaderSpec,
} from "./poll_loop.ts";

/** Options of a {@linkcode Scheduler}. */
export interface SchedulerOptions {
  /** Workers, 1..64 (default 1). Worker i is CPU i for queue choice. */
  cpus?: number;
  /** Pin Worker i to CPU i with sched_setaffinity (default false). */
  pin?: boolean;
  /**
   * Sources. A spec with a numeric `cpu` field goes to that Worker; others
   * are dealt round-robin (source i to Worker i % cpus).
   */
  sources: (SourceSpec & { cpu?: number })[];
  /** The program every Worker runs (see {@linkcode ProgramSpec}). */
  program: ProgramSpec;
  /** The device map. */
  targets: readonly XmitTarget[];
  /** Local readers; reader i runs on Worker i % cpus unless it names a `cpu`. */
  readers?: (ReaderSpec & { cpu?: number })[];
  /** Frames per stage, 1..256 (default 16). */
  bulk?: number;
  /** How stages cross into C (default `"target"`: one call per stage). */
  stageMode?: StageMode;
  /** Frames per source per cycle (default 64). */
  budget?: number;
  /** Longest a staged frame waits for a flush, in microseconds (default 50). */
  deadlineUs?: number;
  /** Busy-poll this long without work before sleeping, in microseconds (default 200). */
  busyPollUs?: number;
  /** Record the readers' (and local PASS) latency histograms (default true). */
  latency?: boolean;
  /**
   * Record each target's latency: from a frame's timestamp (its receive
   * time, stamped in C, for a TAP source) to the moment its stage is handed
   * to the target, one histogram per target and Worker, merged in the
   * report's `targets[i].latency` (live: {@linkcode Scheduler.targetHistogram}).
   * One FFI call per stage, none per frame. Default: on when a source is a
   * TAP (`kind: "tap"`) and the stage mode is `"target"`; `"cycle"` mode
   * cannot record it (`EINVAL`).
   */
  targetLatency?: boolean;
  /** How often Workers yield to their event loop, ms (default 1000). */
  statusIntervalMs?: number;
  /** Extra modules every Worker imports first (e.g. one registering a TAP source kind). */
  modules?: string[];
  /**
   * Where `PASS` frames go (see `PollLoopOptions.pass`). Default: each
   * Worker consumes them itself (latency recorded as `"pass"`, frames
   * freed). With a device, each Worker stages them to it (queue
   * `cpu % queues`), for you to read with `device.queue(q).frames()`.
   */
  pass?: XmitTarget;
  /**
   * A program that throws (see `PollLoopOptions.onProgramError`):
   * `"drop"` (default) drops and counts its batch and goes on, the first
   * error of each Worker reported once in {@linkcode Scheduler.programErrors};
   * `"stop"` stops that Worker, and `close()` rejects with the error.
   */
  onProgramError?: "drop" | "stop";
}

/** Live counters, summed over Workers (see {@linkcode LoopCounter}). */
export interface SchedulerCounters {
  /** Frames taken from sources. */
  rx: number;
  /** DROP verdicts. */
  programDrops: number;
  /** PASS verdicts. */
  passed: number;
  /** Frames the targets accepted. */
  txSent: number;
  /** Frames the targets refused (back in their pool). */
  txDropped: number;
  /** Frames dropped for invalid verdicts: `badVerdict + missingTarget + noIngress`. */
  invalid: number;
  /** Invalid: an action that is none of `Verdict`'s. */
  badVerdict: number;
  /** Invalid: `REDIRECT` to an index the device map does not hold. */
  missingTarget: number;
  /** Invalid: `TX` from a source without an ingress device. */
  noIngress: number;
  /** Frames dropped because the program threw on their batch. */
  thrown: number;
  /** Times the program threw (its first error: {@linkcode Scheduler.programErrors}). */
  programErrors: number;
  /** Frames consumed by readers. */
  read: number;
  /** Poll cycles. */
  cycles: number;
  /** Times Workers slept. */
  sleeps: number;
  /** Flushes forced by the deadline. */
  deadlineFlushes: number;
  /** BROADCAST copies made. */
  broadcastCopies: number;
  /** BROADCAST copies not made because the pool was empty. */
  broadcastMissed: number;
  /**
   * Polls in which a generator's pool could not supply every frame due
   * (frames then come late, not skipped).
   */
  poolEmpty: number;
  /**
   * Longest any stage waited for its flush, ns, over all Workers (a
   * maximum): at most the deadline plus `maxSourceRunNs`.
   */
  maxStageAgeNs: number;
  /** Longest one source's turn took in any Worker (poll, program, staging), ns. */
  maxSourceRunNs: number;
}

/** The first invalid verdict of one reason on one Worker (see {@linkcode Scheduler.invalidVerdicts}). */
export interface SchedulerInvalidVerdict {
  /** The Worker. */
  cpu: number;
  /** Why the verdict was invalid. */
  reason: InvalidReason;
  /** What was wrong, in words. */
  message: string;
}

/** What {@linkcode Scheduler.close} returns. */
export interface SchedulerReport {
  /** Counters at the end. */
  counters: SchedulerCounters;
  /**
   * Per target (device-map order): frames sent and refused, and with
   * target latency on, the latency of every frame handed to it (sent or
   * refused; a frame without a timestamp is not counted), merged over
   * Workers.
   */
  targets: { sent: number; dropped: number; latency?: LatencySummary }[];
  /** Merged latency of every reader and PASS. */
  latency: LatencySummary;
  /**
   * Latency per histogram label, merged over Workers: `t<i>/q<n>` (queue n
   * of device-map target i) unless the reader named its own, and `pass`.
   */
  latencyByLabel: Record<string, LatencySummary>;
  /** Latency per Worker and label, unmerged: keys `cpu<w>/<label>`. */
  latencyByWorker: Record<string, LatencySummary>;
  /** The merged histogram (for the full percentile distribution). */
  histogram: LatencyHistogram;
  /** Seconds from start to close. */
  seconds: number;
  /**
   * The first Worker's failure (a TAP deleted under its reader, say), when
   * `close({ rethrow: false })` was asked to report it instead of
   * rejecting with it; the counters still hold what every Worker did.
   */
  failure?: BulktapError;
}

/** Options for {@linkcode Scheduler.close}. */
export interface SchedulerCloseOptions {
  /**
   * Reject with the first Worker's failure (default true); false: resolve
   * with the report, the failure in its `failure`.
   */
  rethrow?: boolean;
}

interface WorkerSlot {
  worker: Worker;
  latency: LatencyShare[];
  targetLatency: LatencyShare[];
  done?: Extract<WorkerMessage, { type: "done" }>;
}

/**
 * Runs sources through a program into a device map on N Workers.
 *
 * @example
 * ```ts
 * import { Device, FramePool } from "./mod.ts";
 * import { Scheduler } from "./scheduler.ts";
 * using pool = new FramePool({ frames: 4096 });
 * using dev = new Device({ pool, queues: 2 });
 * const sched = new Scheduler({
 *   cpus: 2,
 *   sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, rate: 1000 })),
 *   program: { name: "forward", options: { target: 0 } },
 *   targets: [dev],
 *   readers: [0, 1].map((q) => ({ device: dev.handle, queue: q })),
 * });
 * await sched.start();
 * await new Promise((r) => setTimeout(r, 200));
 * const report = await sched.close();
 * console.log(report.latency.p99 > 0);
 * ```
 */
export class Scheduler implements AsyncDisposable {
  /** Number of Workers. */
  readonly cpus: number;
  readonly #o: SchedulerOptions;
  readonly #control = new SharedArrayBuffer(Ctrl.COUNT * 4);
  readonly #counterBuf: SharedArrayBuffer;
  readonly #counters: Float64Array[];
  #slots: WorkerSlot[] = [];
  #started = 0;
  #programErrors: { cpu: number; message: string }[] = [];
  #invalidVerdicts: SchedulerInvalidVerdict[] = [];
  #closing: Promise<SchedulerReport> | undefined;
  #doneWaiters: (() => void)[] = [];
  #failure: BulktapError | undefined;
  readonly #targetLatency: boolean;

  /** A scheduler; Workers start with {@linkcode Scheduler.start}. */
  constructor(options: SchedulerOptions) {
    if (typeof options !== "object" || options === null) {
      throw new BulktapError("EINVAL", `scheduler options are ${show(options)}, not an object`);
    }
    const cpus = intIn(options.cpus ?? 1, 1, 64, "cpus");
    const us = (v: number | undefined, d: number, what: string) => {
      const x = v ?? d;
      if (!(x >= 0) || !Number.isFinite(x)) {
        throw new BulktapError("EINVAL", `${what} ${x} is not a non-negative number`);
      }
      return x;
    };
    us(options.deadlineUs, 50, "deadlineUs");
    us(options.busyPollUs, 200, "busyPollUs");
    // Everything a Worker would otherwise refuse later, and less clearly.
    intIn(options.bulk ?? 16, 1, BT_MAX_BULK, "bulk");
    intIn(options.budget ?? 64, 1, 65536, "budget");
    intIn(options.statusIntervalMs ?? 1000, 1, 0x7fffffff, "statusIntervalMs");
    if (!Array.isArray(options.sources)) {
      throw new BulktapError("EINVAL", `sources is ${show(options.sources)}, not an array`);
    }
    if (!Array.isArray(options.targets)) {
      throw new BulktapError("EINVAL", `targets is ${show(options.targets)}, not an array`);
    }
    options.targets.forEach((t, i) => u32Arg(t?.handle, `targets[${i}].handle`));
    options.sources.forEach((x, i) => {
      if (typeof x !== "object" || x === null) {
        throw new BulktapError("EINVAL", `sources[${i}] is ${show(x)}, not a source spec`);
      }
      if (x.cpu !== undefined) intIn(x.cpu, 0, cpus - 1, `sources[${i}].cpu`);
    });
    (options.readers ?? []).forEach((r, i) => {
      u32Arg(r?.device, `readers[${i}].device`);
      intIn(r.queue, 0, 255, `readers[${i}].queue`);
      if (r.cpu !== undefined) intIn(r.cpu, 0, cpus - 1, `readers[${i}].cpu`);
    });
    const onErr = options.onProgramError ?? "drop";
    if (onErr !== "drop" && onErr !== "stop") {
      throw new BulktapError("EINVAL", `onProgramError ${show(onErr)} is not "drop" or "stop"`);
    }
    const mode = options.stageMode ?? "target";
    if (options.targetLatency !== undefined && typeof options.targetLatency !== "boolean") {
      throw new BulktapError(
        "EINVAL",
        `targetLatency is ${show(options.targetLatency)}, not a boolean`,
      );
    }
    if (options.targetLatency === true && mode === "cycle") {
      throw new BulktapError(
        "EINVAL",
        'targetLatency is recorded per stage: not in stageMode "cycle" (its stages are made in C)',
      );
    }
    this.#targetLatency = options.targetLatency ??
      (mode === "target" && options.sources.some((x) => x.kind === "tap"));
    this.cpus = cpus;
    this.#o = options;
    // One 128-byte-aligned block per Worker: no two share a cache line.
    this.#counterBuf = counterBuffer(cpus);
    this.#counters = Array.from({ length: cpus }, (_, w) => counterBlock(this.#counterBuf, w));
  }

  #config(cpu: number): WorkerConfig {
    const o = this.#o;
    const mine = <T extends { cpu?: number }>(xs: T[]) =>
      xs.filter((x, i) => (x.cpu ?? i % this.cpus) === cpu);
    return {
      cpu,
      cpus: this.cpus,
      pin: o.pin ?? false,
      sources: mine(o.sources),
      program: o.program,
      targets: o.targets.map((t) => t.handle),
      readers: mine(o.readers ?? []).map(({ device, queue, label }) => ({ device, queue, label })),
      bulk: o.bulk ?? 16,
      stageMode: o.stageMode ?? "target",
      budget: o.budget ?? 64,
      deadlineNs: (o.deadlineUs ?? 50) * 1000,
      busyPollNs: (o.busyPollUs ?? 200) * 1000,
      latency: o.latency ?? true,
      targetLatency: this.#targetLatency,
      statusIntervalMs: o.statusIntervalMs ?? 1000,
      modules: o.modules ?? [],
      control: this.#control,
      counters: this.#counterBuf,
      pass: o.pass?.handle,
      onProgramError: o.onProgramError ?? "drop",
    };
  }

  /**
   * The first error the program threw on each Worker that saw one (the
   * program kept running; its batches were dropped and counted in
   * `thrown`), in the order they were reported.
   *
   * @example
   * ```ts ignore
   * import { Scheduler } from "./scheduler.ts";
   * declare const sched: Scheduler;
   * for (const e of sched.programErrors) console.error(`Worker ${e.cpu}: ${e.message}`);
   * ```
   */
  get programErrors(): readonly { cpu: number; message: string }[] {
    return this.#programErrors;
  }

  /**
   * The first invalid verdict of each reason on each Worker that met one
   * (its frames, and every later one, were dropped and counted by reason
   * in `counters()`: `badVerdict`, `missingTarget`, `noIngress`), in the
   * order they were reported.
   *
   * @example
   * ```ts ignore
   * import { Scheduler } from "./scheduler.ts";
   * declare const sched: Scheduler;
   * for (const v of sched.invalidVerdicts) console.error(`Worker ${v.cpu}: ${v.message}`);
   * ```
   */
  get invalidVerdicts(): readonly SchedulerInvalidVerdict[] {
    return this.#invalidVerdicts;
  }

  /** Start the Workers; resolves when each has built its loop (rejects if one fails). */
  async start(): Promise<void> {
    if (this.#slots.length) throw new BulktapError("EINVAL", "scheduler already started");
    this.#started = performance.now();
    const ready: Promise<void>[] = [];
    for (let cpu = 0; cpu < this.cpus; cpu++) {
      const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      const slot: WorkerSlot = { worker, latency: [], targetLatency: [] };
      this.#slots.push(slot);
      ready.push(
        new Promise((resolve, reject) => {
          worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
            const m = e.data;
            if (m.type === "loaded") {
              worker.postMessage({ type: "start", config: this.#config(cpu) });
            } else if (m.type === "ready") {
              slot.latency = m.latency;
              slot.targetLatency = m.targetLatency;
              resolve();
            } else if (m.type === "programError") {
              this.#programErrors.push({ cpu: m.cpu, message: m.message });
            } else if (m.type === "invalidVerdict") {
              this.#invalidVerdicts.push({ cpu: m.cpu, reason: m.reason, message: m.message });
            } else if (m.type === "done") {
              slot.done = m;
              this.#doneWaiters.splice(0).forEach((f) => f());
            } else if (m.type === "error") {
              const err = new BulktapError(
                m.code as BulktapError["code"],
                `Worker ${m.cpu}: ${m.message.replace(/^E[A-Z0-9]+: /, "")}`,
              );
              this.#failure ??= err;
              this.#failed(slot, m.cpu);
              this.#doneWaiters.splice(0).forEach((f) => f());
              reject(err);
            }
          };
          worker.onerror = (e) => {
            e.preventDefault();
            const err = new BulktapError("EIO", `Worker ${cpu} crashed: ${e.message}`);
            this.#failure ??= err;
            this.#failed(slot, cpu);
            reject(err);
          };
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.close().catch(() => {});
      throw e;
    }
  }

  // A failed Worker never flushes: count it as flushed so the others can stop.
  #failed(slot: WorkerSlot, cpu: number): void {
    if (slot.done) return;
    slot.done = { type: "done", cpu, targets: [], unstamped: 0 };
    Atomics.add(new Int32Array(this.#control), Ctrl.FLUSHED, 1);
    this.#doneWaiters.splice(0).forEach((f) => f());
  }

  /** Counters summed over Workers, now (lock-free reads of shared memory). */
  counters(): SchedulerCounters {
    const c = this.#counters;
    const sum = (k: number) => {
      let s = 0;
      for (let w = 0; w < this.cpus; w++) s += c[w][k];
      return s;
    };
    const max = (k: number) => {
      let m = 0;
      for (let w = 0; w < this.cpus; w++) m = Math.max(m, c[w][k]);
      return m;
    };
    return {
      rx: sum(LoopCounter.RX),
      programDrops: sum(LoopCounter.DROP),
      passed: sum(LoopCounter.PASS),
      txSent: sum(LoopCounter.TX_SENT),
      txDropped: sum(LoopCounter.TX_DROPPED),
      invalid: sum(LoopCounter.INVALID),
      badVerdict: sum(LoopCounter.BAD_VERDICT),
      missingTarget: sum(LoopCounter.MISSING_TARGET),
      noIngress: sum(LoopCounter.NO_INGRESS),
      thrown: sum(LoopCounter.THROWN),
      programErrors: sum(LoopCounter.PROGRAM_ERRORS),
      read: sum(LoopCounter.READ),
      cycles: sum(LoopCounter.CYCLES),
      sleeps: sum(LoopCounter.SLEEPS),
      deadlineFlushes: sum(LoopCounter.DEADLINE_FLUSHES),
      broadcastCopies: sum(LoopCounter.BROADCAST_COPIES),
      broadcastMissed: sum(LoopCounter.BROADCAST_MISSED),
      poolEmpty: sum(LoopCounter.POOL_EMPTY),
      maxStageAgeNs: max(LoopCounter.MAX_STAGE_AGE_NS),
      maxSourceRunNs: max(LoopCounter.MAX_SOURCE_RUN_NS),
    };
  }

  /**
   * The merged histogram now, read live from the Workers' shared buckets
   * (off by at most the frames recorded while it reads; exact after close).
   */
  histogram(): LatencyHistogram {
    const h = newLatencyHistogram();
    for (const s of this.#slots) for (const l of s.latency) histogramFromBuckets(l.buffer, h);
    return h;
  }

  /**
   * Target `t`'s latency now (see `SchedulerOptions.targetLatency`),
   * merged over Workers from their shared buckets: empty if not recorded.
   */
  targetHistogram(t: number): LatencyHistogram {
    const label = `t${intIn(t, 0, Math.max(0, this.#o.targets.length - 1), "target")}`;
    const h = newLatencyHistogram();
    for (const s of this.#slots) {
      for (const l of s.targetLatency) if (l.label === label) histogramFromBuckets(l.buffer, h);
    }
    return h;
  }

  /** Whether targets' latency is recorded (`SchedulerOptions.targetLatency`, or its default). */
  get recordsTargetLatency(): boolean {
    return this.#targetLatency;
  }

  /**
   * Stop: Workers stop taking frames, flush their stages, consume what is
   * queued for their readers, and report; then they are terminated. Every
   * frame is then consumed, in a device queue, or back in its pool.
   * Calling it again returns the same report.
   */
  close(options: SchedulerCloseOptions = {}): Promise<SchedulerReport> {
    this.#closing ??= this.#close();
    if (options.rethrow === false) return this.#closing;
    return this.#closing.then((r) => {
      if (r.failure) throw r.failure;
      return r;
    });
  }

  async #close(): Promise<SchedulerReport> {
    const ctrl = new Int32Array(this.#control);
    Atomics.store(ctrl, Ctrl.STOP, 1);
    // Workers that sleep on a queue wake on its doorbell.
    const lib = library();
    for (const r of this.#o.readers ?? []) lib.bt_flush(r.device, r.queue);
    for (const s of this.#o.sources) {
      if (s.kind === "queue") lib.bt_flush(s.device as number, s.queue as number);
    }
    const deadline = performance.now() + 10_000;
    while (this.#slots.some((s) => !s.done) && performance.now() < deadline) {
      await new Promise<void>((r) => {
        this.#doneWaiters.push(r);
        setTimeout(r, 100);
      });
    }
    for (const s of this.#slots) s.worker.terminate();
    const hung = this.#slots.filter((s) => !s.done).length;
    const ntargets = this.#o.targets.length;
    // Every Worker has posted "done" (or is terminated): the buckets are final.
    const targets = Array.from({ length: ntargets }, (_, t) => {
      let sent = 0, dropped = 0;
      for (const s of this.#slots) {
        sent += s.done?.targets[t * TargetCounter.COUNT + TargetCounter.SENT] ?? 0;
        dropped += s.done?.targets[t * TargetCounter.COUNT + TargetCounter.DROPPED] ?? 0;
      }
      if (!this.#targetLatency) return { sent, dropped };
      return { sent, dropped, latency: summarize(this.targetHistogram(t)) };
    });
    // Every Worker has posted "done" (or is terminated): the buckets are final.
    const histogram = newLatencyHistogram();
    const byLabel = new Map<string, LatencyHistogram>();
    const latencyByWorker: Record<string, LatencySummary> = {};
    for (const [w, s] of this.#slots.entries()) {
      for (const { label, buffer } of s.latency) {
        const h = histogramFromBuckets(buffer);
        if (h.totalCount === 0) continue;
        latencyByWorker[`cpu${w}/${label}`] = summarize(h);
        histogram.add(h);
        if (!byLabel.has(label)) byLabel.set(label, newLatencyHistogram());
        byLabel.get(label)!.add(h);
      }
    }
    const latencyByLabel: Record<string, LatencySummary> = {};
    for (const [label, h] of byLabel) latencyByLabel[label] = summarize(h);
    if (hung) {
      throw new BulktapError(
        "EBUSY",
        `${hung} Worker(s) did not stop within 10 s and were terminated`,
      );
    }
    return {
      counters: this.counters(),
      targets,
      latency: summarize(histogram),
      latencyByLabel,
      latencyByWorker,
      histogram,
      seconds: (performance.now() - this.#started) / 1000,
      ...(this.#failure ? { failure: this.#failure } : {}),
    };
  }

  /** Same as {@linkcode Scheduler.close}, discarding the report. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close().catch(() => {});
  }
}
