/**
 * What the TAP commands (`forward`, `switch`) share: the frame pool for a
 * set of TAP ports, each device's vnet header size, the per-device counts
 * and their one-line form, running a program over the ports on a
 * `Scheduler`, and waiting for SIGINT/SIGTERM.
 *
 * @module
 */
import { FramePool } from "../pool.ts";
import type { ProgramSpec } from "../program.ts";
import {
  Scheduler,
  type SchedulerCounters,
  type SchedulerInvalidVerdict,
  type SchedulerReport,
} from "../scheduler.ts";
import {
  type TapDevice,
  tapFrameSize,
  tapHasVnetHdr,
  type TapOffload,
  type TapStats,
} from "../tap.ts";

/** Bytes before each frame's data (metadata, vnet header, pushed headers). */
export const HEADROOM = 256;

/** A virtio-net header size: none, 10 or 12 bytes. */
export type VnetSize = 0 | 10 | 12;

/** Final counts of one device, as printed. */
export interface ForwardCounts {
  /** Interface name. */
  name: string;
  /** Frames read from the kernel (the kernel's TX packets on this TAP). */
  rx: number;
  /** Reads that returned frames: `rx / rxBatches` frames per read. */
  rxBatches: number;
  /** Frames written into the kernel (the kernel's RX packets on this TAP). */
  tx: number;
  /** Frames meant for this device that were not written: full ring or failed write. */
  dropped: number;
  /** Frames read here and handed to the other device. */
  forwarded: number;
  /** Offloads the kernel accepted for this TAP. */
  offloads: TapOffload[];
  /** Super-frames read from the kernel. */
  rxSuper: number;
  /** Super-frames written into the kernel. */
  txSuper: number;
  /** Super-frames coalesced (GRO) into this TAP, and the frames they were made of. */
  gro: { frames: number; segments: number };
  /** Super-frames segmented (GSO) for this TAP, and the segments they became. */
  gso: { frames: number; segments: number };
  /** Partial checksums completed for this TAP. */
  checksumsCompleted: number;
  /** Why frames were dropped (the sum is `dropped`). */
  drops: {
    /** A full ring (with --via-ring or a program: the ring path). */
    ringFull: number;
    /** Writes the kernel refused. */
    writeFailed: number;
    /** Frames that could not be made fit for this TAP (segmentation failed). */
    offload: number;
    /** Frames read here with a vnet header the library refused. */
    badVnetHeader: number;
    /** Packets too big for a frame, read here. */
    truncated: number;
  };
  /** Times the forwarder reading this TAP waited for room instead of dropping. */
  backpressureWaits: number;
  /** The error code of the last failed write into this TAP ("" if none failed). */
  lastWriteError: string;
}

/**
 * A pool for `ports` TAPs of `queues` queues each. With a vnet header a
 * frame may be a 64 KiB super-frame (offloads, or GRO): frames that hold
 * one, and fewer of them. Enough for every ring of every device plus
 * batches (and their segments) in flight; frames are touched only when
 * used. Returns the pool and the ring size to open the devices with.
 */
export function portPool(
  ports: number,
  queues: number,
  bulk: number,
  superFrames: boolean,
  mtu?: number,
): { pool: FramePool; ringSize: number } {
  const ringSize = superFrames ? 256 : 1024;
  const pool = new FramePool({
    frames: ports * queues * (ringSize + 2 * bulk + 256) + 1024,
    frameSize: tapFrameSize({ mtu, superFrames, headroom: HEADROOM }),
    headroom: HEADROOM,
  });
  return { pool, ringSize };
}

/**
 * Each device's vnet header size. Asked for (`--vnet-hdr*`, `--no-vnet-hdr`,
 * `--offloads`): that, on all. By default 12, except on a device that
 * already exists without one (the flag is fixed at creation): 0 there,
 * with a note saying what it costs.
 */
export function vnetSizes(
  names: readonly string[],
  asked: VnetSize | undefined,
): { vnet: VnetSize[]; notes: string[] } {
  if (asked !== undefined) return { vnet: names.map(() => asked), notes: [] };
  const notes: string[] = [];
  const vnet = names.map((n): VnetSize => {
    if (tapHasVnetHdr(n) !== false) return 12;
    notes.push(
      `${n} exists without a virtio-net header (vnet_hdr): no offloads on it; recreate it ` +
        `(\`ip link del ${n}\`, or let bulktap create it) for super-frames`,
    );
    return 0;
  });
  return { vnet, notes };
}

/** A device's counts now (its own statistics; a closed device reads as it ended). */
export function deviceCounts(dev: TapDevice): ForwardCounts {
  const s: TapStats = dev.statsUnchecked();
  const drops = {
    ringFull: s.txDropped,
    writeFailed: s.writeErrors,
    offload: s.offloadDropped,
    badVnetHeader: s.receiveBadVnet,
    truncated: s.receiveTruncated,
  };
  return {
    name: dev.name,
    rx: s.received,
    rxBatches: s.receiveBatches,
    tx: s.written,
    dropped: Object.values(drops).reduce((x, y) => x + y, 0),
    forwarded: s.forwarded,
    offloads: dev.closed ? [] : dev.offloads,
    rxSuper: s.receivedSuper,
    txSuper: s.writtenSuper,
    gro: { frames: s.groFrames, segments: s.groSegments },
    gso: { frames: s.gsoFrames, segments: s.gsoSegments },
    checksumsCompleted: s.checksumsCompleted,
    drops,
    backpressureWaits: s.forwardWaits,
    lastWriteError: s.lastWriteError,
  };
}

/** One device's counts as one line. */
export function countsLine(c: ForwardCounts): string {
  const why = Object.entries(c.drops).filter(([, v]) => v > 0).map(([k, v]) =>
    k === "writeFailed" && c.lastWriteError ? `${k} ${v} (last ${c.lastWriteError})` : `${k} ${v}`
  );
  return `${c.name}: rx ${c.rx} tx ${c.tx} dropped ${c.dropped}` +
    (why.length ? ` (${why.join(", ")})` : "") +
    (c.rxSuper || c.txSuper ? `; super-frames rx ${c.rxSuper} tx ${c.txSuper}` : "") +
    (c.gro.frames ? `; gro ${c.gro.segments} -> ${c.gro.frames}` : "") +
    (c.gso.frames ? `; gso ${c.gso.frames} -> ${c.gso.segments}` : "") +
    (c.checksumsCompleted ? `; checksums completed ${c.checksumsCompleted}` : "") +
    (c.backpressureWaits ? `; backpressure waits ${c.backpressureWaits}` : "");
}

/**
 * Start `spec` over `taps` (the device map, in order) on `cpus` Workers:
 * queue q of every TAP is read on Worker `q % cpus`, its frames tagged
 * with the TAP's index as ingress; stages hold `bulk` frames per target.
 * Single mode is single-packet processing throughout: one frame per read,
 * per program call and per transmit, so every per-frame cost that bulk
 * mode amortises (FFI crossings, locks, system calls) is paid per frame.
 */
export async function startPortProgram(
  taps: readonly TapDevice[],
  spec: ProgramSpec,
  cpus: number,
  bulk: number,
  mode: "bulk" | "single" = "bulk",
): Promise<Scheduler> {
  const sched = new Scheduler({
    cpus,
    sources: taps.flatMap((tap, port) =>
      Array.from({ length: tap.queues }, (_, q) => ({
        kind: "tap",
        device: tap.handle,
        queue: q,
        ingress: port,
        name: tap.queues > 1 ? `${tap.name} queue ${q}` : tap.name,
        cpu: q % cpus,
      }))
    ),
    program: spec,
    targets: taps,
    bulk: mode === "single" ? 1 : Math.min(bulk, 256),
    // Frames per source per cycle: one at a time in single mode.
    budget: mode === "single" ? 1 : undefined,
    latency: false,
  });
  await sched.start();
  return sched;
}

/** Invalid verdicts by reason, as `forward --program` and `switch` report them. */
export interface InvalidCounts {
  /** An action that is none of `Verdict`'s. */
  badVerdict: number;
  /** `REDIRECT` to a port the device map does not hold. */
  missingTarget: number;
  /** `TX` from a source without an ingress port. */
  noIngress: number;
}

/** What a program did with the frames it read, as `forward --program` and `switch` report it. */
export interface ProgramTotals {
  /** Frames read from the TAPs. */
  rx: number;
  /** Frames transmitted into a TAP (flood copies included). */
  sent: number;
  /** Frames a target refused (full ring), back in their pool. */
  txDropped: number;
  /** DROP verdicts. */
  programDrops: number;
  /** Invalid verdicts, all reasons. */
  invalid: number;
  /** Invalid verdicts by reason. */
  invalidByReason: InvalidCounts;
  /** Frames dropped because the program threw on their batch. */
  thrown: number;
}

/** The {@linkcode ProgramTotals} of a scheduler's counters. */
export function programTotals(c: SchedulerCounters): ProgramTotals {
  return {
    rx: c.rx,
    sent: c.txSent,
    txDropped: c.txDropped,
    programDrops: c.programDrops,
    invalid: c.invalid,
    invalidByReason: {
      badVerdict: c.badVerdict,
      missingTarget: c.missingTarget,
      noIngress: c.noIngress,
    },
    thrown: c.thrown,
  };
}

/** The per-reason counts of invalid verdicts as words, e.g. `bad verdict 0, missing target 3, no ingress 0`. */
export function invalidWords(c: InvalidCounts): string {
  return `bad verdict ${c.badVerdict}, missing target ${c.missingTarget}, no ingress ${c.noIngress}`;
}

/**
 * Says each new program error and first invalid verdict of a reason (the
 * first of each Worker, see `Scheduler.programErrors` and
 * `Scheduler.invalidVerdicts`) once on stderr, each time it is called.
 */
export function programNotices(
  cmd: string,
  errors: () => readonly { cpu: number; message: string }[],
  invalid: () => readonly SchedulerInvalidVerdict[],
): () => void {
  let toldErrors = 0, toldInvalid = 0;
  return () => {
    const errs = errors();
    for (; toldErrors < errs.length; toldErrors++) {
      console.error(
        `bulktap ${cmd}: the program threw on Worker ${errs[toldErrors].cpu}: ` +
          `${errs[toldErrors].message}; its batches are dropped and counted, the rest goes on`,
      );
    }
    const bad = invalid();
    for (; toldInvalid < bad.length; toldInvalid++) {
      const v = bad[toldInvalid];
      console.error(
        `bulktap ${cmd}: invalid verdict (${v.reason}) on Worker ${v.cpu}: ${v.message}; ` +
          "such frames are dropped and counted by reason, the rest goes on",
      );
    }
  };
}

/**
 * Latency of the frames a program sent into one TAP, ns: from their
 * receive time (stamped in C when read from a TAP) to the moment their
 * bulk was written into this one. `count` is every frame handed to it
 * (written or refused).
 */
export interface TargetLatency {
  /** Frames. */
  count: number;
  /** Median, ns. */
  p50: number;
  /** 99th percentile, ns. */
  p99: number;
  /** Largest, ns. */
  max: number;
}

/** Each target's latency from a scheduler report, by port name (none if not recorded). */
export function targetLatencies(
  report: SchedulerReport,
  names: readonly string[],
): Record<string, TargetLatency> {
  const out: Record<string, TargetLatency> = {};
  report.targets.forEach((t, i) => {
    if (t.latency === undefined) return;
    const { count, p50, p99, max } = t.latency;
    // A percentile is its HDR bucket's highest value, the maximum the value
    // folded in (both within 0.5%): never print a p99 above the max.
    out[names[i] ?? `#${i}`] = { count, p50: Math.min(p50, max), p99: Math.min(p99, max), max };
  });
  return out;
}

function ns(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} ms`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} us`;
  return `${v} ns`;
}

/** A target's latency in words: `p50 12.0 us, p99 40.1 us, max 1.20 ms (300 frames)`. */
export function latencyWords(l: TargetLatency): string {
  if (l.count === 0) return "no frames";
  return `p50 ${ns(l.p50)}, p99 ${ns(l.p99)}, max ${ns(l.max)} (${l.count} frames)`;
}

/** SIGINT/SIGTERM, listened for until `stop()`; `stopped` says which (or another reason). */
export interface StopSignal {
  /** Resolves with the signal's name, or the reason given to `stop`. */
  stopped: Promise<string>;
  /** Stop now, for `why` (e.g. "error"). */
  stop(why: string): void;
  /** Stop listening for the signals. */
  remove(): void;
}

/**
 * Listen for SIGINT and SIGTERM. Call before saying "ready": a signal
 * right after it must stop the run and print the counts, not kill the
 * process.
 */
export function stopSignal(): StopSignal {
  let resolveStop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (resolveStop = resolve));
  const handlers = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const h = () => resolveStop(sig);
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });
  return {
    stopped,
    stop: resolveStop,
    remove() {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    },
  };
}
