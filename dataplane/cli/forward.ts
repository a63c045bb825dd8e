/**
 * `deno run -A mod.ts forward A B [flags]`: a user-space forwarder between
 * two TAP devices. Every frame the kernel sends into A is transmitted into
 * B and vice versa, by C threads (one per queue and direction) through the
 * bulk transmit path, until SIGINT or SIGTERM; then the per-device counts
 * are printed and the exit status is 0.
 *
 * @module
 */
import { intFlag, parseFlags, reportFailure, reportUsage, UsageError } from "./flags.ts";
import type { BulktapError } from "../errors.ts";
import { TAP_MAX_MTU, TAP_OFFLOADS, TapDevice, tapNameProblem, type TapOffload } from "../tap.ts";
import type { ProgramSpec } from "../program.ts";
import { type ProgramCounts, programSpec, startProgram } from "./forward_program.ts";
import {
  countsLine as line,
  deviceCounts as counts,
  type ForwardCounts,
  invalidWords,
  latencyWords,
  portPool,
  programNotices,
  stopSignal,
  type VnetSize,
  vnetSizes,
} from "./tap_ports.ts";

export type { ForwardCounts };

/** What `--offloads` asks the kernel for. */
const OFFLOAD_SETS: Record<string, readonly TapOffload[]> = {
  none: [],
  csum: ["csum"],
  tso: ["csum", "tso4", "tso6", "tso_ecn"],
  all: TAP_OFFLOADS,
};

const HELP = `usage: deno run -A mod.ts forward A B [flags]

Forward frames between TAP devices A and B (created, or attached to when
they exist) until SIGINT/SIGTERM, then print per-device counts. A and B
must be TAP devices or names no interface has yet; other interfaces are
refused, never changed.

flags:
  --queues N           queues per device, 1..64 (default 1)
  --bulk N             frames per read batch and xmit call, 1..256 (default 64)
  --mode bulk|single   bulk (default): one write submit per batch, TCP segments
                       coalesced into super-frames (GRO); single: one write per frame
                       (with --program: one frame per read, program call and write)
  --offloads O         what the kernel may hand over: none, csum (partial checksums),
                       tso (csum + TCP super-frames), all (tso + UDP super-frames;
                       default). Super-frames cross unchanged; a TAP that cannot take
                       one gets it segmented. O,O sets A and B apart (e.g. none,all)
  --no-vnet-hdr        no virtio-net header: plain frames, no offloads, no GRO
  --vnet-hdr-size N    the header's size, 10 or 12 (default 12; a device made with
                       \`ip tuntap add ... vnet_hdr\` has 10); --vnet-hdr: accepted, the
                       default (a device that exists without one is used without it)
  --no-gro             bulk mode without coalescing
  --via-ring           hand frames to the other TAP's writer threads through its queue
                       rings (one lock per bulk) instead of writing them from the
                       reading thread (one wake-up more per frame)
  --io uring|write     how frames cross the fd (default uring)
  --mtu N              set both links' MTU, 68..65521 (the kernel's largest for a
                       TAP; default: leave as is)
  --program P          run a TypeScript program between A and B instead of the C
                       fast path: forward (A -> B, B -> A), drop, reflect, l2switch,
                       or a module exporting a factory: ./fw.ts or ./fw.ts#name
                       (default export name "program"; (options) => Program)
  --cpus N             Workers running the program, 1..64 (default 1; queue q is
                       read on Worker q % N)
  --stats-interval S   print counts every S seconds (default 0: never)
  --json               print the final counts as one JSON object
  --help               this text
`;

function mtuFlag(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const mtu = intFlag("mtu", raw, 0, 68, 65535);
  if (mtu > TAP_MAX_MTU) {
    throw new UsageError(
      `--mtu=${raw} is more than the kernel allows a TAP device: ${TAP_MAX_MTU} ` +
        "(65535 minus its 14-byte Ethernet header)",
    );
  }
  return mtu;
}

/** `--offloads` for A and B (their vnet header sizes decided). */
function offloadsFlag(
  raw: string | undefined,
  vnet: [number, number],
): [TapOffload[], TapOffload[]] {
  if (raw === undefined) {
    return [vnet[0] ? [...TAP_OFFLOADS] : [], vnet[1] ? [...TAP_OFFLOADS] : []];
  }
  const parts = raw.split(",");
  if (parts.length > 2 || parts.some((p) => !Object.hasOwn(OFFLOAD_SETS, p))) {
    throw new UsageError(
      `--offloads=${raw} is not none, csum, tso or all (or two of them, for A and B: none,all)`,
    );
  }
  const [a, b = a] = parts.map((p) => [...OFFLOAD_SETS[p]]);
  if ((!vnet[0] && a.length) || (!vnet[1] && b.length)) {
    throw new UsageError(`--offloads=${raw} needs the virtio-net header (drop --no-vnet-hdr)`);
  }
  return [a, b];
}

/**
 * Run the forwarder with command-line `args` (after `forward`). Resolves
 * with the exit status: 0 after a signal, 1 on a runtime error, 2 on bad
 * usage.
 *
 * @example
 * ```ts ignore
 * import { forwardMain } from "./forward.ts";
 * Deno.exit(await forwardMain(["btA", "btB", "--queues", "2", "--json"]));
 * ```
 */
export async function forwardMain(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(args, {
      queues: "string",
      bulk: "string",
      mode: "string",
      "vnet-hdr": "boolean",
      "no-vnet-hdr": "boolean",
      "vnet-hdr-size": "string",
      offloads: "string",
      "no-gro": "boolean",
      "via-ring": "boolean",
      io: "string",
      mtu: "string",
      "stats-interval": "string",
      program: "string",
      cpus: "string",
      json: "boolean",
      help: "boolean",
    }, true);
  } catch (e) {
    if (e instanceof UsageError) return reportUsage("forward", e);
    throw e;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  let opts;
  try {
    if (positionals.length !== 2) {
      throw new UsageError(`expected two device names, got ${positionals.length}`);
    }
    for (const n of positionals) {
      const why = tapNameProblem(n);
      if (why) throw new UsageError(`device name ${JSON.stringify(n)} ${why}`);
    }
    if (positionals[0] === positionals[1]) {
      throw new UsageError(`A and B are both ${JSON.stringify(positionals[0])}`);
    }
    const mode = values.mode ?? "bulk";
    if (mode !== "bulk" && mode !== "single") {
      throw new UsageError(`--mode=${mode} is not bulk or single`);
    }
    const io = values.io ?? "uring";
    if (io !== "uring" && io !== "write") throw new UsageError(`--io=${io} is not uring or write`);
    const interval = values["stats-interval"];
    const statsInterval = interval === undefined ? 0 : Number(interval);
    if (interval !== undefined && (!(statsInterval >= 0) || interval.trim() === "")) {
      throw new UsageError(`--stats-interval=${interval} is not a number of seconds >= 0`);
    }
    const size = values["vnet-hdr-size"];
    if (size !== undefined && size !== "10" && size !== "12") {
      throw new UsageError(`--vnet-hdr-size=${size} is not 10 or 12`);
    }
    if (values["no-vnet-hdr"] && (values["vnet-hdr"] || size !== undefined)) {
      throw new UsageError("--no-vnet-hdr contradicts --vnet-hdr / --vnet-hdr-size");
    }
    const asked = values["no-vnet-hdr"]
      ? 0 as const
      : size === "10"
      ? 10 as const
      : size === "12" || values["vnet-hdr"] || values.offloads !== undefined
      ? 12 as const
      : undefined;
    const sizes = vnetSizes([positionals[0], positionals[1]], asked);
    const vnet = sizes.vnet as [VnetSize, VnetSize];
    const notes = sizes.notes;
    const [offA, offB] = offloadsFlag(values.offloads, vnet);
    opts = {
      a: positionals[0],
      b: positionals[1],
      queues: intFlag("queues", values.queues, 1, 1, 64),
      bulk: intFlag("bulk", values.bulk, 64, 1, 256),
      mtu: mtuFlag(values.mtu),
      mode: mode as "bulk" | "single",
      io: io as "uring" | "write",
      vnet,
      notes,
      offA,
      offB,
      gro: !values["no-gro"],
      viaRing: values["via-ring"] ?? false,
      statsInterval,
      json: values.json ?? false,
      program: values.program === undefined ? undefined : programSpec(values.program),
      programName: values.program,
      cpus: intFlag("cpus", values.cpus, 1, 1, 64),
    };
    if (values.cpus !== undefined && opts.program === undefined) {
      throw new UsageError("--cpus needs --program (the C fast path runs a thread per queue)");
    }
  } catch (e) {
    if (e instanceof UsageError) return reportUsage("forward", e);
    throw e;
  }
  try {
    return await run(opts);
  } catch (e) {
    return reportFailure("forward", e);
  }
}

interface RunOptions {
  a: string;
  b: string;
  queues: number;
  bulk: number;
  mtu?: number;
  mode: "bulk" | "single";
  io: "uring" | "write";
  vnet: [VnetSize, VnetSize];
  notes: string[];
  offA: TapOffload[];
  offB: TapOffload[];
  gro: boolean;
  viaRing: boolean;
  statsInterval: number;
  json: boolean;
  program?: ProgramSpec;
  programName?: string;
  cpus: number;
}

async function run(o: RunOptions): Promise<number> {
  const superFrames = o.vnet[0] > 0 || o.vnet[1] > 0;
  const made = portPool(2, o.queues, o.bulk, superFrames, o.mtu);
  using pool = made.pool;
  const ringSize = made.ringSize;
  const common = {
    queues: o.queues,
    pool,
    io: o.io,
    mtu: o.mtu,
    ringSize,
    ioBatch: Math.min(o.bulk, 256),
  };
  using a = new TapDevice({ ...common, name: o.a, vnetHdr: o.vnet[0], offloads: o.offA });
  using b = new TapDevice({ ...common, name: o.b, vnetHdr: o.vnet[1], offloads: o.offB });
  for (const n of o.notes) console.error(`bulktap forward: note: ${n}`);
  let failed: BulktapError | undefined;
  const signal = stopSignal();
  let why: string;
  let t0: number;
  let program: Awaited<ReturnType<typeof startProgram>> | undefined;
  let pc: ProgramCounts | undefined;
  // A program that throws or gives invalid verdicts keeps running (those
  // frames dropped and counted): each Worker's first of each is said once.
  const notices = programNotices(
    "forward",
    () => program?.errors() ?? [],
    () => program?.invalidVerdicts() ?? [],
  );
  try {
    if (o.program) {
      program = await startProgram(a, b, o.program, o.programName!, o.cpus, o.bulk, o.mode);
    } else {
      const fo = { bulk: o.bulk, mode: o.mode, gro: o.gro, viaRing: o.viaRing };
      a.forwardBoth(b, fo);
    }
    t0 = performance.now();
    const sa = a.stats();
    const io = sa.ioUring ? "uring" : sa.ioUringWriters > 0 ? "uring on some queues" : "write";
    console.error(
      `bulktap forward: ${o.a} <-> ${o.b} (${o.queues} queues, bulk ${o.bulk}, ` +
        `mode ${o.mode}, io ${io}, vnet ${o.vnet.join("/")}, offloads ${o.a} ${
          a.offloads.join(",") || "none"
        } / ${o.b} ${b.offloads.join(",") || "none"}` +
        (o.mode === "bulk" && (o.vnet[0] || o.vnet[1]) && o.gro && !o.program ? ", gro" : "") +
        (o.viaRing && !o.program ? ", via rings" : "") +
        (o.program ? `, program ${o.programName} on ${o.cpus} Worker(s)` : "") +
        "); ready, SIGINT/SIGTERM to stop",
    );
    // A deleted device ends the run with its error.
    const watch = setInterval(() => {
      failed = a.error ?? b.error;
      if (failed) signal.stop("error");
      notices();
    }, 200);
    const tick = o.statsInterval > 0
      ? setInterval(() => {
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        console.error(`[${secs} s] ${line(counts(a))}; ${line(counts(b))}`);
      }, o.statsInterval * 1000)
      : undefined;
    why = await signal.stopped;
    clearInterval(watch);
    if (tick !== undefined) clearInterval(tick);
  } finally {
    signal.remove();
    if (program) {
      pc = await program.stop();
      failed ??= program.failure();
    }
    notices();
  }
  await a.stopForwarding();
  await b.stopForwarding();
  await a.drained(2000);
  await b.drained(2000);
  const ca = counts(a), cb = counts(b);
  if (pc) {
    // What the program path handed on: A's frames went into B, and back.
    ca.forwarded = pc.toB;
    cb.forwarded = pc.toA;
  }
  const seconds = (performance.now() - t0) / 1000;
  if (o.json) {
    console.log(JSON.stringify({
      devices: { [ca.name]: ca, [cb.name]: cb },
      mode: o.mode,
      bulk: o.bulk,
      queues: o.queues,
      vnetHdr: { [o.a]: o.vnet[0], [o.b]: o.vnet[1] },
      gro: o.mode === "bulk" && (o.vnet[0] > 0 || o.vnet[1] > 0) && o.gro && !o.program,
      viaRing: o.viaRing,
      seconds: Number(seconds.toFixed(3)),
      stoppedBy: why,
      ...(pc ? { program: pc } : {}),
    }));
  } else {
    console.log(line(ca));
    console.log(line(cb));
    if (pc) {
      console.log(
        `program ${pc.program} (${pc.cpus} Worker(s)): read ${pc.rx}, sent ${pc.sent}, ` +
          `refused by a full ring ${pc.txDropped}, dropped by the program ${pc.programDrops}, ` +
          `invalid verdicts ${pc.invalid} (${invalidWords(pc.invalidByReason)}), ` +
          `passed (no local stack: dropped) ${pc.passed}, ` +
          `dropped because the program threw ${pc.thrown}` +
          (pc.programErrors.length ? ` (first: ${pc.programErrors[0].message})` : ""),
      );
      for (const [name, l] of Object.entries(pc.latency)) {
        console.log(`latency into ${name}, receive to transmit: ${latencyWords(l)}`);
      }
    }
  }
  if (failed) {
    console.error(`bulktap forward: ${failed.message}`);
    return 1;
  }
  return 0;
}
