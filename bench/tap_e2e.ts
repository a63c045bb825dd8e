/**
 * The end-to-end TAP sitting a network engineer would run: two network
 * namespaces, nsA and nsB, joined by the path under test (the Linux bridge
 * with and without offloads, DPDK testpmd, `bulktap forward` in several
 * modes, `bulktap switch`; 3-port rows add an idle nsC on a third port:
 * bench/tap_e2e_paths.ts, bench/tap_e2e_rows.ts).
 *
 * Per path: iperf3 TCP, 1 stream (Gbit/s, retransmits); iperf3 UDP 64-byte
 * datagrams as fast as the sender goes (received datagrams/s, loss %);
 * ping RTT (median); for a forwarder process, its CPU time (utime + stime
 * from /proc) per frame the kernel sent into its two TAPs and per KiB; the
 * frames it dropped; on 3-port rows, the frames flooded to nsC. Rows run in
 * an order that flips every round; each figure is the median (min-max) over
 * rounds, beside the bridge's with as many ports from the same rounds, and
 * ratios are paired by round (bench/tap_e2e_figures.ts).
 *
 * Needs root; the namespaces and devices are named `bte2e<pid>...` and
 * removed afterwards, also on errors and SIGINT.
 *
 * Run alone: `deno run -A bench/tap_e2e.ts [--seconds S] [--rounds N] [--rows a,b] [--long]`.
 *
 * @module
 */
import { have, linkCounts, procCpuNs, Sitting } from "./netns.ts";
import { iperfServer, pingTest, tcpTest, udpTest } from "./iperf.ts";
import { machineLine } from "./machine.ts";
import { repeatOrder } from "./stats.ts";
import { e2eTable } from "./tap_e2e_figures.ts";
import { E2E_ADDR, type Names, namesOf, type Path, rowProblem, withPath } from "./tap_e2e_paths.ts";
import {
  BRIDGE,
  type E2eResult,
  FORWARD_ROWS,
  isForwardRow,
  isSwitchRow,
  type LongRun,
  portsOf,
  type RowId,
  type RowResult,
  type RowRun,
  ROWS,
  SWITCH_ROWS,
} from "./tap_e2e_rows.ts";

export {
  cPathTwin,
  E2E,
  type E2eResult,
  FORWARD_ROWS,
  type ForwardRowId,
  type LongRun,
  type RowId,
  type RowResult,
  type RowRun,
  ROWS,
  SWITCH_ROWS,
  type SwitchRowId,
} from "./tap_e2e_rows.ts";
export { E2E_ADDR, forwardDrops, testpmdDrops } from "./tap_e2e_paths.ts";
export { e2eEntries, e2eTable } from "./tap_e2e_figures.ts";

/** Options of {@linkcode runE2e}. */
export interface E2eOptions {
  /** Rows to run (default every row). */
  rows?: RowId[];
  /** iperf3 test length, s. */
  seconds: number;
  rounds: number;
  /** Pings per row and round (0.05 s apart). */
  pings?: number;
  /** Also the 4-stream TCP test for `longSeconds` (bridge vs the offload row). */
  long?: boolean;
  longSeconds?: number;
  /** Names' prefix (default bte2e<pid>). */
  prefix?: string;
  log?: (msg: string) => void;
  progress?: (row: string, round: number, done: number, total: number) => void;
}

/** Why the sitting cannot run at all here, or undefined. */
export function e2eProblem(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  if (Deno.uid() !== 0) return "needs root (network namespaces, TAP devices)";
  if (!have("ip")) return "install iproute2";
  if (!have("iperf3")) return "install iperf3";
  if (!have("ping")) return "install iputils-ping";
  return undefined;
}

function loadavg(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

interface Window<T> {
  r: T;
  frames: number;
  bytes: number;
  cpuNs?: number;
  wallNs: number;
  /** Frames the third end received (3-port rows). */
  thirdRx?: number;
}

/**
 * Run `fn`, with the frames and bytes the kernel sent into the path, the
 * forwarder's CPU, and what the idle third end received.
 */
async function measured<T>(n: Names, p: Path, fn: () => Promise<T>): Promise<Window<T>> {
  const third = async () => p.devC ? (await linkCounts(p.devC, n.nsC)).rxPackets : 0;
  const cpu0 = p.pid ? procCpuNs(p.pid) : undefined;
  const a0 = await linkCounts(p.devA, n.nsA), b0 = await linkCounts(p.devB, n.nsB);
  const c0 = await third();
  const t0 = performance.now();
  const r = await fn();
  const wallNs = (performance.now() - t0) * 1e6;
  const cpuNs = p.pid && cpu0 !== undefined ? procCpuNs(p.pid) - cpu0 : undefined;
  const a1 = await linkCounts(p.devA, n.nsA), b1 = await linkCounts(p.devB, n.nsB);
  return {
    r,
    frames: a1.txPackets - a0.txPackets + b1.txPackets - b0.txPackets,
    bytes: a1.txBytes - a0.txBytes + b1.txBytes - b0.txBytes,
    cpuNs,
    wallNs,
    thirdRx: p.devC ? await third() - c0 : undefined,
  };
}

/** Row `id`'s path with an iperf3 server in nsB around `body`. */
function withServer<T>(
  id: RowId,
  s: Sitting,
  n: Names,
  budgetMs: number,
  body: (p: Path) => Promise<T>,
): Promise<{ r: T; drops?: number }> {
  return withPath(id, s, n, budgetMs, async (p) => {
    const server = s.child(await iperfServer(n.nsB, budgetMs));
    try {
      return await body(p);
    } finally {
      await server.stop("SIGTERM", 5000);
      s.forget(server);
    }
  });
}

async function runRow(
  id: RowId,
  round: number,
  s: Sitting,
  n: Names,
  o: E2eOptions,
): Promise<RowRun> {
  const pings = o.pings ?? 20;
  const budget = (2 * o.seconds + pings * 0.05) * 1000 + 240_000;
  const { r, drops } = await withServer(id, s, n, budget, async (p) => {
    const tcp = await measured(n, p, () => tcpTest(n.nsA, E2E_ADDR.ipB, o.seconds));
    const udp = await measured(n, p, () => udpTest(n.nsA, E2E_ADDR.ipB, o.seconds));
    const ping = await pingTest(n.nsA, E2E_ADDR.ipB, pings, 0.05);
    return { tcp, udp, ping };
  });
  const { tcp, udp, ping } = r;
  return {
    round,
    tcp: tcp.r,
    udp: udp.r,
    ping,
    cpuNsPerFrameUdp: udp.cpuNs !== undefined && udp.frames > 0
      ? udp.cpuNs / udp.frames
      : undefined,
    cpuNsPerKiBTcp: tcp.cpuNs !== undefined && tcp.bytes > 0
      ? tcp.cpuNs / (tcp.bytes / 1024)
      : undefined,
    cpuCoresTcp: tcp.cpuNs !== undefined ? tcp.cpuNs / tcp.wallNs : undefined,
    drops,
    thirdRx: tcp.thirdRx !== undefined ? tcp.thirdRx + udp.thirdRx! : undefined,
  };
}

/** What a row ran with, said beside its first figure. */
function rowNote(id: RowId): string | undefined {
  if (id === "testpmd") {
    return "testpmd busy-polls a pinned core (lcore 1): its CPU is ~1 core whatever " +
      "the traffic, and that core is taken from iperf3 on a small machine";
  }
  if (isForwardRow(id)) {
    return `forward ${FORWARD_ROWS[id].args.join(" ") || "(default flags)"}`;
  }
  const third = portsOf(id) === 3 ? "; a third namespace, idle, on the third port" : "";
  if (isSwitchRow(id)) {
    return `switch ${SWITCH_ROWS[id].args.join(" ") || "(default flags)"}${third}`;
  }
  return third ? third.slice(2) : undefined;
}

/**
 * Run the sitting.
 *
 * @example
 * ```ts ignore
 * import { runE2e } from "./bench/tap_e2e.ts";
 * const r = await runE2e({ rows: ["bridge", "fwd-bulk"], seconds: 2, rounds: 1 });
 * console.log(r.rows[0].runs[0].tcp.gbps);
 * ```
 */
export async function runE2e(o: E2eOptions): Promise<E2eResult> {
  const log = o.log ?? ((m: string) => console.error(m));
  const ids = o.rows ?? ROWS.map((r) => r.id);
  const n = namesOf(o.prefix ?? `bte2e${Deno.pid}`);
  const s = new Sitting();
  const onSig = () => {
    s.cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSig);
  const load0 = loadavg();
  const rows: RowResult[] = ids.map((id) => {
    const row = ROWS.find((r) => r.id === id);
    if (!row) throw new Error(`no row ${id}: the rows are ${ROWS.map((r) => r.id).join(", ")}`);
    return { id, label: row.label, runs: [], unmeasured: rowProblem(id), note: rowNote(id) };
  });
  const long: LongRun[] = [];
  try {
    const total = o.rounds * rows.filter((r) => !r.unmeasured).length;
    let done = 0;
    for (let round = 0; round < o.rounds; round++) {
      for (const k of repeatOrder(rows.length, round)) {
        const row = rows[k];
        if (row.unmeasured) continue;
        try {
          row.runs.push(await runRow(row.id, round, s, n, o));
        } catch (e) {
          row.unmeasured = `failed: ${(e as Error).message}`;
          row.runs = [];
          log(`${row.label}: ${row.unmeasured}`);
        }
        o.progress?.(row.label, round, ++done, total);
      }
    }
    if (o.long) {
      const secs = o.longSeconds ?? 60;
      for (const id of [BRIDGE, "fwd-offload"] as RowId[]) {
        const row = rows.find((r) => r.id === id);
        if (!row || row.unmeasured) continue;
        try {
          const budget = secs * 1000 + 240_000;
          const { r, drops } = await withServer(
            id,
            s,
            n,
            budget,
            () => tcpTest(n.nsA, E2E_ADDR.ipB, secs, 4),
          );
          long.push({ id, label: row.label, tcp: r, drops });
        } catch (e) {
          log(`${row.label}, 4 streams: failed: ${(e as Error).message}`);
        }
      }
    }
  } finally {
    s.cleanup();
    Deno.removeSignalListener("SIGINT", onSig);
  }
  return {
    rows,
    long,
    seconds: o.seconds,
    rounds: o.rounds,
    machine: machineLine(),
    load: { start: load0, end: loadavg() },
  };
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "10" },
      rounds: { type: "string", default: "3" },
      rows: { type: "string" },
      long: { type: "boolean", default: false },
      "long-seconds": { type: "string", default: "60" },
    },
  });
  const why = e2eProblem();
  if (why) {
    console.error(`not measured: ${why}`);
    Deno.exit(1);
  }
  const r = await runE2e({
    seconds: Number(values.seconds),
    rounds: Number(values.rounds),
    rows: values.rows?.split(",") as RowId[] | undefined,
    long: values.long,
    longSeconds: Number(values["long-seconds"]),
    progress: (row, round, done, total) =>
      console.error(`[${done}/${total}] ${row}, round ${round + 1}`),
  });
  console.log(e2eTable(r));
}
