/**
 * Throughput through the TypeScript API: producer Workers transmit into an
 * in-memory device, reader Workers drain it. Single-packet mode (one
 * `xmitOne` call, one lock per frame) beside bulk mode (one `xmit` call, one
 * lock per bulk), alternating across repeats so drift hits both.
 *
 * Run: `deno run -A bench/api_bench.ts [--quick]`
 *
 * @module
 */
// Not from ../mod.ts: `mod.ts bench` reaches this module while mod.ts is
// still evaluating its top-level await, and a cycle back into it would never
// resolve.
import { Device } from "../dataplane/device.ts";
import { FramePool } from "../dataplane/pool.ts";
import { machineLine } from "./machine.ts";
import { fmtSpread, type Spread, spread } from "./stats.ts";

/** One scenario of the API benchmark. */
export interface ApiScenario {
  /** Label for tables. */
  name: string;
  /** Producer Workers. */
  producers: number;
  /** Device queues (one reader Worker each). */
  queues: number;
}

/** One measured point: a scenario in one mode. */
export interface ApiPoint {
  scenario: string;
  mode: "bulk" | "single";
  bulk: number;
  frameSize: number;
  /** Accepted frames per second, in millions, per repeat. */
  mpps: Spread;
  /** Frames dropped (ring full) as a share of frames offered, per repeat. */
  dropShare: Spread;
  /** Producer lock acquisitions per accepted frame (median repeat). */
  locksPerFrame: number;
  /** Doorbells that had to wake a sleeping reader, per accepted frame. */
  wakeupsPerFrame: number;
}

/** Options for {@linkcode runApiBench}. */
export interface ApiBenchOptions {
  scenarios?: ApiScenario[];
  bulk?: number;
  frameSize?: number;
  repeats?: number;
  durationMs?: number;
  /** Called after every repeat, for progress displays. */
  progress?: (msg: string) => void;
}

/** The scenarios the core issue asks for. */
export const API_SCENARIOS: ApiScenario[] = [
  { name: "1 producer -> 1 queue -> 1 reader", producers: 1, queues: 1 },
  { name: "2 producers -> 1 shared queue -> 1 reader", producers: 2, queues: 1 },
];

function worker<T>(file: string, job: unknown): Promise<T> {
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

interface RunResult {
  mpps: number;
  dropShare: number;
  locksPerFrame: number;
  wakeupsPerFrame: number;
}

async function runOnce(
  sc: ApiScenario,
  mode: "bulk" | "single",
  bulk: number,
  frameSize: number,
  durationMs: number,
): Promise<RunResult> {
  const pool = new FramePool({ frames: 8192 });
  const dev = new Device({ pool, queues: sc.queues, ringSize: 1024 });
  const readers = Array.from(
    { length: sc.queues },
    (_, queue) => worker<{ received: number }>("api_reader.ts", { device: dev.handle, queue }),
  );
  const start = Date.now() + 300; // let every Worker load first
  const prods = await Promise.all(
    Array.from(
      { length: sc.producers },
      (_, p) =>
        worker<{ offered: number; accepted: number; elapsedMs: number }>("api_producer.ts", {
          pool: pool.handle,
          device: dev.handle,
          cpu: p,
          bulk,
          mode,
          frameSize,
          durationMs,
          start,
        }),
    ),
  );
  const accepted = prods.reduce((a, p) => a + p.accepted, 0);
  const offered = prods.reduce((a, p) => a + p.offered, 0);
  const elapsed = Math.max(...prods.map((p) => p.elapsedMs));
  const deadline = performance.now() + 10_000;
  while (dev.stats().rxPackets < accepted && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const st = dev.stats();
  dev.close();
  const received = (await Promise.all(readers)).reduce((a, r) => a + r.received, 0);
  if (received !== accepted) {
    throw new Error(`${sc.name} ${mode}: accepted ${accepted} but readers received ${received}`);
  }
  if (st.txDropped !== offered - accepted) {
    throw new Error(`${sc.name} ${mode}: drop count ${st.txDropped} != ${offered - accepted}`);
  }
  pool.close();
  return {
    mpps: accepted / elapsed / 1000,
    dropShare: offered ? (offered - accepted) / offered : 0,
    locksPerFrame: st.lockAcquisitions / Math.max(1, accepted),
    wakeupsPerFrame: st.wakeupsSent / Math.max(1, accepted),
  };
}

/**
 * Measure every scenario in single and bulk mode; repeats alternate modes.
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
  const bulk = o.bulk ?? 16;
  const frameSize = o.frameSize ?? 64;
  const repeats = o.repeats ?? 5;
  const durationMs = o.durationMs ?? 1000;
  const points: ApiPoint[] = [];
  for (const sc of scenarios) {
    const runs: Record<"bulk" | "single", RunResult[]> = { bulk: [], single: [] };
    for (let r = 0; r < repeats; r++) {
      // Alternate which mode goes first, so drift hits both.
      const order: ("bulk" | "single")[] = r % 2 ? ["bulk", "single"] : ["single", "bulk"];
      for (const mode of order) {
        runs[mode].push(await runOnce(sc, mode, bulk, frameSize, durationMs));
        o.progress?.(`${sc.name} ${mode} repeat ${r + 1}/${repeats}`);
      }
    }
    for (const mode of ["single", "bulk"] as const) {
      const rs = runs[mode];
      const med = [...rs].sort((a, b) => a.mpps - b.mpps)[rs.length >> 1];
      points.push({
        scenario: sc.name,
        mode,
        bulk: mode === "bulk" ? bulk : 1,
        frameSize,
        mpps: spread(rs.map((x) => x.mpps)),
        dropShare: spread(rs.map((x) => x.dropShare)),
        locksPerFrame: med.locksPerFrame,
        wakeupsPerFrame: med.wakeupsPerFrame,
      });
    }
  }
  return points;
}

/** Print points as a table with the bulk/single ratio per scenario. */
export function printApiTable(points: ApiPoint[]): void {
  const rows: Record<string, Record<string, string>> = {};
  for (const p of points) {
    rows[`${p.scenario} [${p.mode}${p.mode === "bulk" ? "-" + p.bulk : ""}]`] = {
      "Mpps median (min-max)": fmtSpread(p.mpps),
      "drops %": (p.dropShare.median * 100).toFixed(1),
      "locks/frame": p.locksPerFrame.toFixed(3),
      "wake-ups/frame": p.wakeupsPerFrame.toFixed(4),
    };
  }
  console.table(rows);
  const byScenario = new Map<string, ApiPoint[]>();
  for (const p of points) byScenario.set(p.scenario, [...(byScenario.get(p.scenario) ?? []), p]);
  for (const [name, ps] of byScenario) {
    const s = ps.find((p) => p.mode === "single")!;
    const b = ps.find((p) => p.mode === "bulk")!;
    console.log(
      `${name}: bulk-${b.bulk}/single = ${(b.mpps.median / s.mpps.median).toFixed(2)}x ` +
        `(${b.mpps.median.toFixed(2)} vs ${s.mpps.median.toFixed(2)} Mpps, medians)`,
    );
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
    progress: (m) => console.error(`  ${m}`),
  });
  printApiTable(points);
}
