/**
 * The main job, `deno run -A mod.ts [flags]`: a generator feeding the
 * `forward` program into an in-memory device with a reader per queue, on
 * one Worker per CPU, with a live one-line status and a summary at the end.
 *
 * @module
 */
import { intFlag, numFlag, parseFlags, reportFailure, reportUsage, UsageError } from "./flags.ts";
import { nsParts, type Row, table } from "./table.ts";
import { Device } from "../device.ts";
import { intIn, show } from "../boundary.ts";
import { BulktapError } from "../errors.ts";
import { TapDevice, tapNameProblem } from "../tap.ts";
import { type LatencySummary, percentileDistribution } from "../latency.ts";
import { FramePool } from "../pool.ts";
import { Scheduler, type SchedulerReport } from "../scheduler.ts";

/**
 * Help text of the main job.
 *
 * @example
 * ```ts
 * import { RUN_HELP } from "./run.ts";
 * console.log(RUN_HELP.includes("--json")); // true
 * ```
 */
export const RUN_HELP = `bulktap: a user-space packet dataplane for Deno

usage:
  deno run -A mod.ts [flags]         generator -> forward -> in-memory device, readers per queue
  deno run -A mod.ts bench [flags]   benchmarks: bulk beside single, peers, report
  deno run -A mod.ts forward A B     forward between TAP devices A and B (forward --help)
  deno run -A mod.ts switch A B ...  a learning L2 switch over TAP devices (switch --help)

flags:
  --mode bulk|single   bulk: stage 16 frames per target per xmit (default);
                       single: one frame per xmit call (one lock per frame)
  --bulk N             frames per stage in bulk mode, 1..256 (default 16)
  --cpus N             Workers, one poll loop each, 1..64 (default 2: one per queue)
  --queues N           device queues (one reader each), 1..256 (default 2)
  --frame-size N       bytes per frame, 60..1792 (default 64)
  --rate PPS           frames per second in total, 0 = as fast as possible (default 0)
  --duration S         seconds to run, > 0 (default 5)
  --tap NAME           transmit into the existing TAP device NAME instead of an in-memory
                       device (a multi-queue TAP: ip tuntap add dev NAME mode tap multi_queue);
                       the kernel is then the reader: frames written, write errors by errno,
                       no latency. A missing NAME is refused, not created
  --tap-create         with --tap: create NAME if it does not exist, for this run only
                       (deleted at exit; nothing but the kernel's own stack reads it)
  --pin                pin Worker i to CPU i
  --json               print one JSON object on stdout instead of the status and table
  --help               this text

Ctrl-C (SIGINT) or SIGTERM stops early; the summary is still printed, and the
exit status is 130 (SIGINT) or 143 (SIGTERM). Bad flags exit 2, failures 1.
`;

/** Settings of the main job (after parsing). */
export interface RunOptions {
  /** bulk or single. */
  mode: "bulk" | "single";
  /** Frames per stage (1 in single mode). */
  bulk: number;
  /** Workers. */
  cpus: number;
  /** Device queues. */
  queues: number;
  /** Bytes per frame. */
  frameSize: number;
  /** Total frames per second, 0 = max. */
  rate: number;
  /** Seconds. */
  duration: number;
  /** TAP device name, if any. */
  tap?: string;
  /** Create the TAP device if it does not exist (for this run only). */
  tapCreate?: boolean;
  /** Pin Workers. */
  pin: boolean;
  /** JSON output. */
  json: boolean;
}

/** The range of each numeric option, for the flags and for options built in code. */
const LIMITS = {
  bulk: [1, 256],
  cpus: [1, 64],
  queues: [1, 256],
  frameSize: [60, 1792],
  rate: [0, 1e9],
  duration: [0.001, 1e6],
} as const;

/** The JSON the main job prints with `--json`. */
export interface RunResult {
  mode: "bulk" | "single";
  bulk: number;
  cpus: number;
  queues: number;
  frameSize: number;
  rate: number;
  seconds: number;
  /** Frames generated (from the Workers' start to their stop, a little longer than `seconds`). */
  generated: number;
  /**
   * Frames generated per second over the measured window (`seconds`): with
   * `--rate`, this is the rate the generator achieved.
   */
  generatedPps: number;
  /**
   * Polls in which a generator found the pool short of the frames due (they
   * were made late, not skipped); 0 unless the readers fell behind.
   */
  poolEmpty: number;
  /**
   * Longest any stage waited for its flush, ns (the deadline is 50 us; a
   * stage can wait at most the deadline plus one source's turn).
   */
  maxStageAgeNs: number;
  /**
   * Longest one source's turn took, ns: the slack on top of the deadline.
   * Milliseconds here mean the OS preempted a Worker (more threads than
   * cores) or a garbage collection paused it, not a late flush.
   */
  maxSourceRunNs: number;
  /** Frames consumed by the readers. */
  frames: number;
  /** Readers' frames per second over the run's window (start to stop), in millions. */
  mpps: number;
  /** Frames the device refused (ring full) plus program drops. */
  dropped: number;
  /** Frames left in device queues at the end (returned to the pool at close). */
  leftInQueues: number;
  /** Latency from generation to reader, ns. */
  latencyNs: {
    p50: number | null;
    p90: number | null;
    p99: number | null;
    p999: number | null;
    max: number | null;
    mean: number | null;
  };
  /** Where frames went: "memory" or "tap:NAME". */
  target: string;
  /** With `--tap`: what the kernel took, and whether this run created the device. */
  tap?: TapOutcome;
  /** Per reader queue. */
  latencyByQueue: Record<string, LatencySummary>;
  /** xmit calls (one lock each) and doorbells. */
  device: { xmitCalls: number; flushes: number; wakeupsSent: number; wakeupsAvoided: number };
  /** Full percentile distribution, [percentile, ns]. */
  distribution: [number, number][];
}

/** What a run with `--tap` did with the TAP device. */
export interface TapOutcome {
  /** True if the run created the device (`--tap-create`); it is gone after the run. */
  created: boolean;
  /** Frames written into the kernel. */
  written: number;
  /** Frames whose write failed (counted in `dropped`), and the errno of the last one. */
  writeErrors: number;
  /** Error code of the last failed write, "" if none failed. */
  lastWriteError: string;
}

export { UsageError };

/**
 * Parse the main job's flags. Throws {@linkcode UsageError} naming the bad
 * flag or value; returns undefined for `--help`.
 *
 * @example
 * ```ts
 * import { parseRunArgs } from "./run.ts";
 * console.log(parseRunArgs(["--cpus", "2"])?.cpus); // 2
 * ```
 */
export function parseRunArgs(args: string[]): RunOptions | undefined {
  const { values } = parseFlags(args, {
    mode: "string",
    bulk: "string",
    cpus: "string",
    queues: "string",
    "frame-size": "string",
    rate: "string",
    duration: "string",
    tap: "string",
    "tap-create": "boolean",
    pin: "boolean",
    json: "boolean",
    help: "boolean",
  });
  if (values.help) return undefined;
  const mode = values.mode ?? "bulk";
  const tap = values.tap;
  if (mode !== "bulk" && mode !== "single") {
    throw new UsageError(`--mode=${mode} is not bulk or single`);
  }
  const bulk = intFlag("bulk", values.bulk, 16, ...LIMITS.bulk);
  if (mode === "single" && values.bulk !== undefined && bulk !== 1) {
    throw new UsageError(`--bulk=${values.bulk} contradicts --mode=single (one frame per xmit)`);
  }
  const tapWhy = tap === undefined ? undefined : tapNameProblem(tap);
  if (tapWhy) throw new UsageError(`--tap=${tap} is not an interface name: it ${tapWhy}`);
  const tapCreate = values["tap-create"] === true;
  if (tapCreate && tap === undefined) {
    throw new UsageError("--tap-create needs --tap NAME (the device to create)");
  }
  return {
    mode,
    bulk: mode === "single" ? 1 : bulk,
    cpus: intFlag("cpus", values.cpus, 2, ...LIMITS.cpus),
    queues: intFlag("queues", values.queues, 2, ...LIMITS.queues),
    frameSize: intFlag("frame-size", values["frame-size"], 64, ...LIMITS.frameSize),
    rate: numFlag("rate", values.rate, 0, ...LIMITS.rate),
    duration: numFlag("duration", values.duration, 5, ...LIMITS.duration),
    tap,
    tapCreate,
    pin: values.pin === true,
    json: values.json === true,
  };
}

/**
 * The same limits `parseRunArgs` applies, for options built in code:
 * `EINVAL` naming the first bad one (a number that would size arrays or
 * pools, e.g. `cpus`, never reaches them unchecked).
 */
function checkRunOptions(o: RunOptions): void {
  if (typeof o !== "object" || o === null) {
    throw new BulktapError("EINVAL", `run options are ${show(o)}, not an object`);
  }
  if (o.mode !== "bulk" && o.mode !== "single") {
    throw new BulktapError("EINVAL", `mode=${show(o.mode)} is not "bulk" or "single"`);
  }
  for (const k of ["bulk", "cpus", "queues", "frameSize"] as const) {
    intIn(o[k], LIMITS[k][0], LIMITS[k][1], k);
  }
  for (const k of ["rate", "duration"] as const) {
    const [min, max] = LIMITS[k];
    if (!(typeof o[k] === "number" && o[k] >= min && o[k] <= max)) {
      throw new BulktapError("EINVAL", `${k}=${show(o[k])} is not a number in ${min}..${max}`);
    }
  }
  if (o.tap !== undefined) {
    const why = tapNameProblem(o.tap);
    if (why) throw new BulktapError("EINVAL", `tap=${show(o.tap)} ${why}`);
  }
  if (o.tapCreate !== undefined && typeof o.tapCreate !== "boolean") {
    throw new BulktapError("EINVAL", `tapCreate=${show(o.tapCreate)} is not a boolean`);
  }
}

/**
 * The TAP the main job writes into: an existing one, or with `create` one
 * made for this run. A missing device is refused with what to do, because
 * one made silently has no reader but the kernel's own stack.
 */
function openTap(
  name: string,
  create: boolean,
  options: { queues: number; pool: FramePool; ringSize: number },
): { dev: TapDevice; created: boolean } {
  try {
    return { dev: new TapDevice({ name, ...options, create: false }), created: false };
  } catch (e) {
    if (!(e instanceof BulktapError && e.code === "ENOENT")) throw e;
    if (create) return { dev: new TapDevice({ name, ...options, create: true }), created: true };
    throw new BulktapError(
      "ENOENT",
      `--tap ${name}: no such device, and bulktap does not create one unasked (it would have ` +
        "no reader but the kernel's own stack). Create it and attach what should read it " +
        `(\`sudo ip tuntap add dev ${name} mode tap multi_queue user $USER\`), or add ` +
        "--tap-create to have this run create it and delete it at exit",
      e.errno,
    );
  }
}

/**
 * Run the main job; resolves with its result. `onStatus` gets the live
 * one-line status about every second; `signal` stops early.
 *
 * @example
 * ```ts
 * import { runJob } from "./run.ts";
 * const r = await runJob({
 *   mode: "bulk", bulk: 16, cpus: 1, queues: 2, frameSize: 64,
 *   rate: 0, duration: 0.2, pin: false, json: true,
 * });
 * console.log(r.frames > 0);
 * ```
 */
export async function runJob(
  o: RunOptions,
  onStatus?: (line: string) => void,
  signal?: AbortSignal,
): Promise<RunResult> {
  checkRunOptions(o);
  // Enough frames for every ring to fill and every Worker to have a few
  // batches in flight.
  const ringSize = 1024;
  const frames = Math.min(1 << 20, o.queues * ringSize + o.cpus * 4096 + 4096);
  // One pool per Worker, as the kernel keeps page pools per CPU: Worker w
  // allocates from its own pool and (with as many queues as Workers) reads
  // and returns its own frames, so no pool lock and no frame's metadata
  // line is shared between CPUs. Pool 0 is the device's home pool.
  using pools = new PoolSet(o.cpus, Math.ceil(frames / o.cpus) + ringSize);
  const pool = pools.at(0);
  // With --tap the kernel is the reader: the TAP's writer threads drain the
  // queues into it, so throughput is what they wrote and no latency is
  // measured at a reader.
  const opened = o.tap === undefined
    ? undefined
    : openTap(o.tap, o.tapCreate === true, { queues: o.queues, pool, ringSize });
  using dev = opened?.dev ?? new Device({ pool, queues: o.queues, ringSize });
  const tap = opened?.dev;
  const delivered = () => tap ? tap.stats().written : sched.counters().read;
  const sched = new Scheduler({
    cpus: o.cpus,
    pin: o.pin,
    sources: Array.from({ length: o.cpus }, (_, cpu) => ({
      kind: "generator",
      cpu,
      pool: pools.at(cpu).handle,
      frameSize: o.frameSize,
      flows: 64,
      rate: o.rate / o.cpus,
    })),
    program: { name: "forward", options: { target: 0 } },
    targets: [dev],
    readers: tap ? [] : Array.from({ length: o.queues }, (_, q) => ({
      device: dev.handle,
      queue: q,
      label: `q${q}`,
    })),
    bulk: o.bulk,
    stageMode: "target", // one xmit call per stage: measured faster (see devmap.ts)
    statusIntervalMs: 500,
  });
  await sched.start();
  const t0 = performance.now();
  const read0 = delivered();
  const gen0 = sched.counters().rx;
  let last = { t: t0, read: read0 };
  const status = () => {
    const c = sched.counters();
    const t = performance.now();
    const now = delivered();
    const mpps = (now - last.read) / (t - last.t) / 1000;
    last = { t, read: now };
    const p99 = tap ? "n/a (kernel reads)" : fmtNs(sched.histogram().getValueAtPercentile(99));
    onStatus?.(
      `${((t - t0) / 1000).toFixed(1)} s  ${mpps.toFixed(2)} Mpps  ` +
        `dropped ${c.txDropped + c.programDrops + (tap?.stats().writeErrors ?? 0)}  p99 ${p99}`,
    );
  };
  const timer = onStatus ? setInterval(status, 1000) : undefined;
  try {
    await new Promise<void>((resolve) => {
      // A signal during start-up has already aborted: stop now, not at --duration.
      if (signal?.aborted) return resolve();
      const end = setTimeout(resolve, o.duration * 1000);
      signal?.addEventListener("abort", () => {
        clearTimeout(end);
        resolve();
      }, { once: true });
    });
  } finally {
    clearInterval(timer);
  }
  const measured = (performance.now() - t0) / 1000;
  // Rate over the measured window only (Workers start and drain outside it).
  const readInWindow = delivered() - read0;
  const genInWindow = sched.counters().rx - gen0;
  const report: SchedulerReport = await sched.close();
  const ds = dev.stats();
  const ts = tap?.stats();
  const written = ts?.written ?? 0;
  // A TAP target is written from the Workers' own threads: a write that
  // fails is counted by the TAP (its errno kept), not as a full ring.
  const writeErrors = ts?.writeErrors ?? 0;
  const leftInQueues = dev.close();
  const c = report.counters;
  const l = report.latency;
  return {
    mode: o.mode,
    bulk: o.bulk,
    cpus: o.cpus,
    queues: o.queues,
    frameSize: o.frameSize,
    rate: o.rate,
    seconds: measured,
    generated: c.rx,
    generatedPps: genInWindow / measured,
    poolEmpty: c.poolEmpty,
    maxStageAgeNs: c.maxStageAgeNs,
    maxSourceRunNs: c.maxSourceRunNs,
    target: tap ? `tap:${tap.name}` : "memory",
    tap: ts
      ? {
        created: opened!.created,
        written,
        writeErrors,
        lastWriteError: ts.lastWriteError,
      }
      : undefined,
    frames: tap ? written : c.read,
    mpps: readInWindow / measured / 1e6,
    dropped: c.txDropped + c.programDrops + c.invalid + writeErrors,
    leftInQueues,
    latencyNs: tap
      ? { p50: null, p90: null, p99: null, p999: null, max: null, mean: null }
      : { p50: l.p50, p90: l.p90, p99: l.p99, p999: l.p999, max: l.max, mean: l.mean },
    latencyByQueue: report.latencyByLabel,
    device: {
      xmitCalls: ds.xmitCalls,
      flushes: ds.flushes,
      wakeupsSent: ds.wakeupsSent,
      wakeupsAvoided: ds.wakeupsAvoided,
    },
    distribution: percentileDistribution(report.histogram),
  };
}

function fmtNs(ns: number | null): string {
  if (ns === null) return "not measured (the kernel is the reader)";
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} us`;
  return `${ns} ns`;
}

/** The poll loop's default flush deadline (PollLoopOptions.deadlineNs). */
const DEADLINE_NS = 50_000;

/** What the main job is about to run, in one line. */
function describeJob(o: RunOptions): string {
  return `bulktap: running generator -> forward -> ${
    o.tap === undefined
      ? "in-memory device"
      : `TAP ${o.tap}${o.tapCreate ? " (created for this run if missing)" : ""}`
  }, ${o.mode} mode` + (o.mode === "bulk" ? ` (bulk ${o.bulk})` : "") +
    `, ${o.cpus} CPU(s), ${o.queues} queue(s), ${o.frameSize} B frames, ` +
    `${o.rate ? o.rate + " pps" : "max rate"}, for ${o.duration} s (Ctrl-C stops early)`;
}

/** Why frames were dropped, from the counts that say it. */
function dropReason(r: RunResult): string {
  const why: string[] = [];
  const t = r.tap;
  if (t && t.writeErrors > 0) {
    const hint = t.lastWriteError === "EIO"
      ? ` (the TAP's link is down: \`ip link set ${r.target.slice(4)} up\`)`
      : "";
    why.push(
      `${t.writeErrors} writes into the kernel failed, the last with ` +
        `${t.lastWriteError || "an error"}${hint}`,
    );
  }
  const other = r.dropped - (t?.writeErrors ?? 0);
  if (other > 0) {
    why.push(t ? `${other} were not taken by the TAP device` : "a full ring: readers fell behind");
  }
  return why.join("; ");
}

function printSummary(r: RunResult): void {
  console.log(
    `\nbulktap: generator -> forward -> ${
      r.target === "memory" ? "in-memory device" : r.target.replace("tap:", "TAP ")
    }${r.tap?.created ? " (created for this run, now deleted)" : ""}, ${r.mode} mode` +
      (r.mode === "bulk" ? ` (bulk ${r.bulk})` : "") +
      `, ${r.cpus} CPU(s), ${r.queues} queue(s), ${r.frameSize} B frames, ` +
      `${r.rate ? r.rate + " pps" : "max rate"}, ${r.seconds.toFixed(2)} s`,
  );
  const kernel = r.target !== "memory";
  const pct = (n: number) => r.generated ? `${(100 * n / r.generated).toFixed(1)} %` : "0 %";
  const ns = (measure: string, v: number | null, limit = "", verdict = ""): Row => {
    if (v === null) {
      return { measure, value: "n/a", verdict: "not measured: the kernel is the reader" };
    }
    const [value, unit] = nsParts(v);
    return { measure, value, unit, limit, verdict };
  };
  const [dl, dlUnit] = nsParts(DEADLINE_NS);
  const rows: Row[] = [
    { measure: "frames generated", value: String(r.generated), unit: "frames" },
    {
      measure: "generated per second (window)",
      value: String(Math.round(r.generatedPps)),
      unit: "frames/s",
      limit: r.rate ? `${r.rate} frames/s` : "",
      verdict: r.rate ? (r.generatedPps <= r.rate * 1.01 ? "within --rate" : "above --rate") : "",
    },
    {
      measure: kernel ? "frames written to the kernel" : "frames read",
      value: String(r.frames),
      unit: "frames",
      verdict: !r.tap
        ? ""
        : r.tap.created
        ? "nobody read them: the TAP was made for this run, so only the kernel's own stack " +
          "saw them (it drops frames not addressed to this host)"
        : `the kernel took them; what reads ${r.target.slice(4)} decides what becomes of them`,
    },
    { measure: "Mpps", value: r.mpps.toFixed(3), unit: "Mframes/s" },
    {
      measure: "dropped",
      value: String(r.dropped),
      unit: "frames",
      limit: "0",
      verdict: r.dropped === 0 ? "none" : `${pct(r.dropped)} of generated: ${dropReason(r)}`,
    },
    { measure: "left in queues at close", value: String(r.leftInQueues), unit: "frames" },
    { measure: "xmit calls (locks)", value: String(r.device.xmitCalls), unit: "calls" },
    { measure: "doorbells (flushes)", value: String(r.device.flushes), unit: "flushes" },
    { measure: "wake-ups sent", value: String(r.device.wakeupsSent), unit: "wake-ups" },
    {
      measure: "pool empty (generator polls short)",
      value: String(r.poolEmpty),
      unit: "polls",
      limit: "0",
      verdict: r.poolEmpty === 0 ? "never" : "frames came back slower than they were made",
    },
    ns(
      "longest stage wait",
      r.maxStageAgeNs,
      `${dl} ${dlUnit} + one turn`,
      r.maxStageAgeNs <= DEADLINE_NS
        ? "within the deadline"
        : r.maxStageAgeNs <= DEADLINE_NS + r.maxSourceRunNs
        ? "over the deadline by at most one source's turn, as designed; a long turn means " +
          "the CPU was busy elsewhere"
        : "beyond the deadline plus one turn: not expected, please report it",
    ),
    ns("longest source turn", r.maxSourceRunNs, "", "preemption and other load show here"),
    ns("latency p50", r.latencyNs.p50),
    ns("latency p90", r.latencyNs.p90),
    ns("latency p99", r.latencyNs.p99),
    ns("latency p99.9", r.latencyNs.p999),
    ns("latency max", r.latencyNs.max),
  ];
  console.log(table(rows));
}

/**
 * The main job's command line; returns the exit status (0 ok, 1 failure,
 * 2 bad flags, 130/143 after SIGINT/SIGTERM).
 *
 * @example
 * ```ts
 * import { runMain } from "./run.ts";
 * const status = await runMain(["--duration", "0.2", "--json"]);
 * ```
 */
export async function runMain(args: string[]): Promise<number> {
  let o: RunOptions | undefined;
  try {
    o = parseRunArgs(args);
  } catch (e) {
    if (e instanceof UsageError) return reportUsage("", e);
    throw e;
  }
  if (!o) {
    console.log(RUN_HELP);
    return 0;
  }
  if (!o.json) console.log(describeJob(o));
  const stop = new AbortController();
  let signalled = 0;
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGINT", () => (signalled = 130, stop.abort())],
    ["SIGTERM", () => (signalled = 143, stop.abort())],
  ];
  for (const [s, h] of handlers) Deno.addSignalListener(s, h);
  try {
    const live = !o.json && Deno.stderr.isTerminal();
    const onStatus = o.json ? undefined : (line: string) => {
      if (live) Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
      else console.error(line);
    };
    const r = await runJob(o, onStatus, stop.signal);
    if (o.json) console.log(JSON.stringify(r));
    else printSummary(r);
    return signalled || 0;
  } catch (e) {
    return reportFailure("", e);
  } finally {
    for (const [s, h] of handlers) Deno.removeSignalListener(s, h);
  }
}

/** Pools that close together (after the devices that use them). */
class PoolSet implements Disposable {
  #pools: FramePool[] = [];

  constructor(n: number, frames: number) {
    try {
      for (let i = 0; i < n; i++) {
        this.#pools.push(new FramePool({ frames, frameSize: 2048, headroom: 256 }));
      }
    } catch (e) {
      this[Symbol.dispose]();
      throw e;
    }
  }

  at(i: number): FramePool {
    return this.#pools[i];
  }

  [Symbol.dispose](): void {
    for (const p of this.#pools) p.close();
  }
}
