/**
 * Throughput through the TypeScript API: producer Workers transmit into an
 * in-memory device, reader Workers drain it. Single-packet mode (one
 * `xmitOne` call, one lock per frame) beside bulk mode (one `xmit` call, one
 * lock per bulk), alternating across repeats so drift hits both.
 *
 * Beside every run of bulktap, its peer runs the same job: the dataplane a
 * Deno user would write by hand in `SharedArrayBuffer`s and `Atomics`
 * (bench/plain_dataplane.ts), with the same per-frame work, geometry, modes
 * and thread placement. Within each repeat the two alternate which goes
 * first. Every Worker is pinned to a CPU by a labelled placement.
 *
 * Run: `deno run -A bench/api_bench.ts [--quick]`
 *
 * @module
 */
// Not from ../mod.ts: `mod.ts bench` reaches this module while mod.ts is
// still evaluating its top-level await, and a cycle back into it would never
// resolve.
import process from "node:process";
import { Device } from "../dataplane/device.ts";
import {
  decodeHistogram,
  mergeHistograms,
  percentileDistribution,
  summarize,
} from "../dataplane/latency.ts";
import { FramePool } from "../dataplane/pool.ts";
import { machineLine } from "./machine.ts";
import { createPlain, PlainDataplane } from "./plain_dataplane.ts";
import type { LatencyRun } from "./points.ts";
import { fmtSpread, repeatOrder, type Spread, spread } from "./stats.ts";

/** One scenario of the API benchmark. */
export interface ApiScenario {
  /** Label for tables. */
  name: string;
  /** Producer Workers. */
  producers: number;
  /** Device queues (one reader Worker each). */
  queues: number;
}

/** What one run of one mode measured. */
export interface ApiRun {
  /** Accepted frames per second, in millions. */
  mpps: number;
  /** Frames accepted (and read). */
  frames: number;
  /** Frames offered to xmit. */
  offered: number;
  /** Frames refused (ring full; back in the pool, counted by the device). */
  drops: number;
  /** drops / offered. */
  dropShare: number;
  /** xmit/xmitOne calls per offered frame. */
  callsPerFrame: number;
  /** Producer lock acquisitions per offered frame. */
  locksPerFrame: number;
  /** Doorbells that had to wake a sleeping reader, per accepted frame. */
  wakeupsPerFrame: number;
  /** CPU time of the process (every Worker) in the measured window, ns. */
  cpuNs: number;
  /** The measured window, ns. */
  wallNs: number;
  /** Latency of sampled frames, xmit -> reader (undefined without samples). */
  latency?: LatencyRun;
}

/** Where the benchmark's Worker threads run. */
export interface Placement {
  /** Label, part of every scenario name measured with it. */
  label: string;
  /** CPU of producer `p`. */
  producerCpu(p: number): number;
  /** CPU of the reader of queue `q`. */
  readerCpu(q: number): number;
}

/** Producers on CPU 0, readers on CPU 1. */
export const APART: Placement = {
  label: "producers on CPU 0, readers on CPU 1",
  producerCpu: () => 0,
  readerCpu: () => 1,
};

/** Every Worker thread on CPU 0. */
export const TOGETHER: Placement = {
  label: "every thread on CPU 0",
  producerCpu: () => 0,
  readerCpu: () => 0,
};

/** The placements a machine with `cpus` CPUs can have (both from 2 up). */
export function placementsFor(cpus: number): Placement[] {
  return cpus >= 2 ? [APART, TOGETHER] : [TOGETHER];
}

/** The implementation that is not bulktap. */
export const PLAIN_TS = "plain TypeScript (SharedArrayBuffer + Atomics)";
/** bulktap's implementation name. */
export const BULKTAP_TS = "bulktap TS API";

/** One measured point: a scenario in one mode. */
export interface ApiPoint {
  scenario: string;
  /** {@linkcode BULKTAP_TS} or {@linkcode PLAIN_TS}. */
  impl: string;
  /** True for bulktap. */
  ours: boolean;
  mode: "bulk" | "single";
  bulk: number;
  frameSize: number;
  /** Accepted frames per second, in millions, per repeat. */
  mpps: Spread;
  /** Frames dropped (ring full) as a share of frames offered, per repeat. */
  dropShare: Spread;
  /** Producer lock acquisitions per offered frame, per repeat. */
  locksPerFrame: Spread;
  /** Doorbells that had to wake a sleeping reader, per accepted frame, per repeat. */
  wakeupsPerFrame: Spread;
  /** Every repeat, in run order. */
  runs: ApiRun[];
}

/** Options for {@linkcode runApiBench}. */
export interface ApiBenchOptions {
  scenarios?: ApiScenario[];
  /** Thread placements (default: both of {@linkcode placementsFor} this machine). */
  placements?: Placement[];
  /** Also measure the plain-TypeScript peer (default true). */
  peer?: boolean;
  /** Bulk sizes measured beside single mode (default [16]). */
  bulks?: number[];
  frameSize?: number;
  repeats?: number;
  durationMs?: number;
  /** Called after every run, for progress displays. */
  progress?: (
    ev: { scenario: string; mode: "bulk" | "single"; bulk: number; repeat: number },
  ) => void;
}

/** The scenarios the core issue asks for. */
export const API_SCENARIOS: ApiScenario[] = [
  { name: "1 producer -> 1 queue -> 1 reader", producers: 1, queues: 1 },
  { name: "2 producers -> 1 shared queue -> 1 reader", producers: 2, queues: 1 },
];

function worker<T>(file: string, job: unknown): Promise<T> {
  // The plain peer's buffers go as they are: postMessage shares a
  // SharedArrayBuffer.
  const w = new Worker(new URL(`./workers/${file}`, import.meta.url), { type: "module" });
  return new Promise<T>((resolve, reject) => {
    w.onmessage = (e) => {
      resolve(e.data as T);
      w.terminate();
    };
    w.onerror = (e) => {
      e.preventDefault();
      w.terminate();
      reject(new Error(`${file}: ${e.message}`));
    };
    w.postMessage(job);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The geometry both implementations share. */
const POOL_FRAMES = 8192;
const RING_SIZE = 1024;

async function runOnce(
  sc: ApiScenario,
  place: Placement,
  mode: "bulk" | "single",
  bulk: number,
  frameSize: number,
  durationMs: number,
): Promise<ApiRun> {
  const pool = new FramePool({ frames: POOL_FRAMES });
  const dev = new Device({ pool, queues: sc.queues, ringSize: RING_SIZE });
  // Latency mailboxes: 8 Int32 refs (-1 = empty), then 8 Float64 times.
  const samples = new SharedArrayBuffer(128);
  new Int32Array(samples, 0, 8).fill(-1);
  const readers = Array.from(
    { length: sc.queues },
    (_, queue) =>
      worker<{ received: number; histogram: string }>("api_reader.ts", {
        device: dev.handle,
        queue,
        pin: place.readerCpu(queue),
        producers: sc.producers,
        samples,
      }),
  );
  const start = Date.now() + 300; // let every Worker load first
  const prodsDone = Promise.all(
    Array.from(
      { length: sc.producers },
      (_, p) =>
        worker<{ offered: number; accepted: number; elapsedMs: number }>("api_producer.ts", {
          pool: pool.handle,
          device: dev.handle,
          cpu: p,
          pin: place.producerCpu(p),
          bulk,
          mode,
          frameSize,
          durationMs,
          start,
          samples,
        }),
    ),
  );
  // CPU time of the whole process (producers, readers, this thread) from
  // the agreed start to the producers' end.
  while (Date.now() < start) await sleep(1);
  const s0 = dev.stats();
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const prods = await prodsDone;
  const cpu = process.cpuUsage(cpu0);
  const wallNs = (performance.now() - w0) * 1e6;
  const accepted = prods.reduce((a, p) => a + p.accepted, 0);
  const offered = prods.reduce((a, p) => a + p.offered, 0);
  const elapsed = Math.max(...prods.map((p) => p.elapsedMs));
  const deadline = performance.now() + 10_000;
  while (dev.stats().rxPackets < accepted && performance.now() < deadline) {
    await sleep(1);
  }
  const st = dev.stats();
  dev.close();
  const rs = await Promise.all(readers);
  const received = rs.reduce((a, r) => a + r.received, 0);
  if (received !== accepted) {
    throw new Error(`${sc.name} ${mode}: accepted ${accepted} but readers received ${received}`);
  }
  if (st.txDropped !== offered - accepted) {
    throw new Error(`${sc.name} ${mode}: drop count ${st.txDropped} != ${offered - accepted}`);
  }
  pool.close();
  return {
    mpps: accepted / elapsed / 1000,
    frames: accepted,
    offered,
    drops: offered - accepted,
    dropShare: offered ? (offered - accepted) / offered : 0,
    callsPerFrame: (st.xmitCalls - s0.xmitCalls) / Math.max(1, offered),
    locksPerFrame: (st.lockAcquisitions - s0.lockAcquisitions) / Math.max(1, offered),
    wakeupsPerFrame: (st.wakeupsSent - s0.wakeupsSent) / Math.max(1, accepted),
    cpuNs: (cpu.user + cpu.system) * 1000,
    wallNs,
    latency: latencyOf(rs),
  };
}

/** The same job as {@linkcode runOnce} on the plain-TypeScript peer. */
async function runOncePlain(
  sc: ApiScenario,
  place: Placement,
  mode: "bulk" | "single",
  bulk: number,
  frameSize: number,
  durationMs: number,
): Promise<ApiRun> {
  const shared = createPlain(POOL_FRAMES, sc.queues, RING_SIZE);
  const dp = new PlainDataplane(shared);
  const samples = new SharedArrayBuffer(128);
  new Int32Array(samples, 0, 8).fill(-1);
  const readers = Array.from(
    { length: sc.queues },
    (_, queue) =>
      worker<{ received: number; histogram: string }>("plain_reader.ts", {
        shared,
        queue,
        pin: place.readerCpu(queue),
        producers: sc.producers,
        samples,
      }),
  );
  const start = Date.now() + 300;
  const prodsDone = Promise.all(
    Array.from(
      { length: sc.producers },
      (_, id) =>
        worker<{ offered: number; accepted: number; elapsedMs: number; locks: number }>(
          "plain_producer.ts",
          {
            shared,
            id,
            pin: place.producerCpu(id),
            bulk,
            mode,
            frameSize,
            durationMs,
            start,
            samples,
          },
        ),
    ),
  );
  while (Date.now() < start) await sleep(1);
  const wake0 = Array.from({ length: sc.queues }, (_, q) => dp.wakeups(q));
  const cpu0 = process.cpuUsage();
  const w0 = performance.now();
  const prods = await prodsDone;
  const cpu = process.cpuUsage(cpu0);
  const wallNs = (performance.now() - w0) * 1e6;
  const wakeups = wake0.reduce((a, w, q) => a + dp.wakeups(q) - w, 0);
  for (let q = 0; q < sc.queues; q++) dp.close(q);
  const rs = await Promise.all(readers);
  const accepted = prods.reduce((a, p) => a + p.accepted, 0);
  const offered = prods.reduce((a, p) => a + p.offered, 0);
  const locks = prods.reduce((a, p) => a + p.locks, 0);
  const elapsed = Math.max(...prods.map((p) => p.elapsedMs));
  const received = rs.reduce((a, r) => a + r.received, 0);
  if (received !== accepted) {
    throw new Error(`plain ${sc.name} ${mode}: accepted ${accepted} but read ${received}`);
  }
  if (dp.freeCount() !== POOL_FRAMES) {
    throw new Error(`plain ${sc.name} ${mode}: ${POOL_FRAMES - dp.freeCount()} frames lost`);
  }
  const calls = mode === "bulk" ? offered / Math.max(1, bulk) : offered;
  return {
    mpps: accepted / elapsed / 1000,
    frames: accepted,
    offered,
    drops: offered - accepted,
    dropShare: offered ? (offered - accepted) / offered : 0,
    callsPerFrame: calls / Math.max(1, offered),
    locksPerFrame: locks / Math.max(1, offered),
    wakeupsPerFrame: wakeups / Math.max(1, accepted),
    cpuNs: (cpu.user + cpu.system) * 1000,
    wallNs,
    latency: latencyOf(rs),
  };
}

/**
 * Measure every scenario in single mode and each bulk size. Within each
 * repeat single and every bulk size run once, in an order that flips on odd
 * repeats (single first, then bulk last first), so drift hits every mode.
 *
 * @example
 * ```ts
 * import { runApiBench } from "./bench/api_bench.ts";
 * const points = await runApiBench({ repeats: 1, durationMs: 100 });
 * console.log(points.length); // 4
 * ```
 */
export async function runApiBench(o: ApiBenchOptions = {}): Promise<ApiPoint[]> {
  const scenarios = o.scenarios ?? API_SCENARIOS;
  const placements = o.placements ?? placementsFor(navigator.hardwareConcurrency);
  const bulks = o.bulks ?? [16];
  const frameSize = o.frameSize ?? 64;
  const repeats = o.repeats ?? 5;
  const durationMs = o.durationMs ?? 1000;
  const points: ApiPoint[] = [];
  const modes = [
    { mode: "single" as const, bulk: 1 },
    ...bulks.map((bulk) => ({ mode: "bulk" as const, bulk })),
  ];
  const impls = [
    { impl: BULKTAP_TS, ours: true, run: runOnce },
    ...(o.peer === false ? [] : [{ impl: PLAIN_TS, ours: false, run: runOncePlain }]),
  ];
  for (const sc of scenarios) {
    for (const place of placements) {
      const scenario = `${sc.name}, ${place.label}`;
      const runs = impls.map(() => modes.map(() => [] as ApiRun[]));
      for (let r = 0; r < repeats; r++) {
        // Alternate which mode goes first, and within a mode which
        // implementation, so drift hits all alike.
        for (const i of repeatOrder(modes.length, r)) {
          const { mode, bulk } = modes[i];
          for (const k of repeatOrder(impls.length, r + i)) {
            runs[k][i].push(await impls[k].run(sc, place, mode, bulk, frameSize, durationMs));
          }
          o.progress?.({ scenario, mode, bulk, repeat: r });
        }
      }
      impls.forEach(({ impl, ours }, k) =>
        modes.forEach(({ mode, bulk }, i) => {
          const rs = runs[k][i];
          points.push({
            scenario,
            impl,
            ours,
            mode,
            bulk,
            frameSize,
            mpps: spread(rs.map((x) => x.mpps)),
            dropShare: spread(rs.map((x) => x.dropShare)),
            locksPerFrame: spread(rs.map((x) => x.locksPerFrame)),
            wakeupsPerFrame: spread(rs.map((x) => x.wakeupsPerFrame)),
            runs: rs,
          });
        })
      );
    }
  }
  return points;
}

/** Print points as a table with the bulk/single ratio per scenario. */
export function printApiTable(points: ApiPoint[]): void {
  const rows: Record<string, Record<string, string>> = {};
  for (const p of points) {
    rows[`${p.scenario} ${p.impl} [${p.mode}${p.mode === "bulk" ? "-" + p.bulk : ""}]`] = {
      "Mpps median (min-max)": fmtSpread(p.mpps),
      "drops %": (p.dropShare.median * 100).toFixed(1),
      "locks/frame": p.locksPerFrame.median.toFixed(3),
      "wake-ups/frame": p.wakeupsPerFrame.median.toFixed(4),
    };
  }
  console.table(rows);
  const byScenario = new Map<string, ApiPoint[]>();
  for (const p of points) {
    const k = `${p.scenario}, ${p.impl}`;
    byScenario.set(k, [...(byScenario.get(k) ?? []), p]);
  }
  for (const [name, ps] of byScenario) {
    const s = ps.find((p) => p.mode === "single")!;
    for (const b of ps.filter((p) => p.mode === "bulk")) {
      console.log(
        `${name}: bulk-${b.bulk}/single = ${(b.mpps.median / s.mpps.median).toFixed(2)}x ` +
          `(${b.mpps.median.toFixed(2)} vs ${s.mpps.median.toFixed(2)} Mpps, medians)`,
      );
    }
  }
}

if (import.meta.main) {
  const quick = Deno.args.includes("--quick");
  const repeats = quick ? 3 : 5;
  const durationMs = quick ? 300 : 1000;
  console.log(`machine: ${machineLine()}`);
  console.log(`frames: 64 B data, bulk 16 vs single, ${repeats} repeats x ${durationMs} ms`);
  const points = await runApiBench({
    repeats,
    durationMs,
    progress: (ev) =>
      console.error(`  ${ev.scenario} ${ev.mode} ${ev.bulk} repeat ${ev.repeat + 1}/${repeats}`),
  });
  printApiTable(points);
}

/** The readers' merged latency of one run, or undefined when none was measured. */
function latencyOf(rs: { histogram: string }[]) {
  const h = mergeHistograms(rs.map((r) => decodeHistogram(r.histogram)));
  const sum = summarize(h);
  if (sum.count === 0) return undefined;
  return {
    samples: sum.count,
    p50: sum.p50,
    p99: sum.p99,
    p999: sum.p999,
    max: sum.max,
    curve: percentileDistribution(h),
  };
}
