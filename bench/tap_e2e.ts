/**
 * The end-to-end TAP sitting a network engineer would run: two network
 * namespaces, nsA (10.77.0.1/24, fd77::1/64) and nsB (10.77.0.2/24,
 * fd77::2/64), joined by the path under test:
 *
 * - the Linux bridge (in a third namespace, so nothing outside the
 *   sitting's own namespaces is touched) over veth pairs, with the default
 *   offloads, and with every offload ethtool turns off;
 * - DPDK testpmd's io forwarding between two net_tap ports;
 * - `bulktap forward` in several modes (see {@linkcode FORWARD_ROWS}).
 *
 * Per path: iperf3 TCP, 1 stream (Gbit/s, retransmits); iperf3 UDP 64-byte
 * datagrams as fast as the sender goes (received datagrams/s, loss %);
 * ping RTT (median); for a forwarder process, its CPU time (utime + stime
 * from /proc) per frame the kernel sent into its two TAPs and per KiB; and
 * the frames it dropped. Rows run in an order that flips every round; each
 * figure is the median (min-max) over rounds, beside the bridge's from the
 * same rounds, and ratios are paired by round.
 *
 * Needs root; the namespaces and devices are named `bte2e<pid>...` and
 * removed afterwards, also on errors and SIGINT.
 *
 * Run alone: `deno run -A bench/tap_e2e.ts [--seconds S] [--rounds N] [--rows a,b] [--long]`.
 *
 * @module
 */
import { Child, exec, have, linkCounts, must, procCpuNs, Sitting } from "./netns.ts";
import {
  inNs,
  iperfServer,
  type PingResult,
  pingTest,
  type TcpResult,
  tcpTest,
  type UdpResult,
  udpTest,
} from "./iperf.ts";
import { machineLine } from "./machine.ts";
import type { BenchFigure, ResultEntry, Unmeasured } from "./points.ts";
import { fmtSpread, repeatOrder, type Spread, spread } from "./stats.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

/** Addresses of the two ends. */
export const E2E_ADDR = {
  a: { v4: "10.77.0.1/24", v6: "fd77::1/64" },
  b: { v4: "10.77.0.2/24", v6: "fd77::2/64" },
  ipB: "10.77.0.2",
};

/** Scenario prefix of every end-to-end entry. */
export const E2E = "end to end nsA -> nsB";

/**
 * `forward` arguments of each bulktap row: ONE table. `args` are the flags
 * the row is defined by; `today` what a `forward` without `--offloads` and
 * `--no-vnet-hdr` (not merged yet when this was written) runs instead. The
 * sitting asks `forward --help` which it has, and says which ran.
 */
export const FORWARD_ROWS = {
  "fwd-single": {
    label: "bulktap forward single (1 frame per syscall, no offloads)",
    args: ["--mode", "single", "--no-vnet-hdr"],
    today: ["--mode", "single"],
  },
  "fwd-bulk": {
    label: "bulktap forward bulk, no offloads",
    args: ["--no-vnet-hdr"],
    today: [],
  },
  "fwd-offload": {
    label: "bulktap forward bulk, offloads (pass-through)",
    args: [],
    today: ["--vnet-hdr"],
  },
  "fwd-gro": {
    label: "bulktap forward bulk, software GRO",
    args: ["--offloads", "none"],
    // TODO: `--offloads none` once forward has it; until then this row is
    // the plain bulk path (the sitting says so).
    today: [],
  },
  "fwd-program": {
    label: "bulktap forward --program forward (bulk)",
    args: ["--program", "forward"],
    today: ["--program", "forward"],
  },
} as const;

/** A bulktap row. */
export type ForwardRowId = keyof typeof FORWARD_ROWS;

/** Every row, in the order of the first round. */
export const ROWS = [
  { id: "bridge", label: "Linux bridge, default offloads" },
  { id: "bridge-off", label: "Linux bridge, offloads off (ethtool -K)" },
  { id: "testpmd", label: "DPDK testpmd io forward (net_tap)" },
  ...Object.entries(FORWARD_ROWS).map(([id, r]) => ({ id, label: r.label })),
] as const;

/** A row's id. */
export type RowId = typeof ROWS[number]["id"];

/** The baseline row, and the rows that are bulktap's bulk C path. */
const BRIDGE: RowId = "bridge";
const BULK_ROWS: RowId[] = ["fwd-bulk", "fwd-offload", "fwd-gro"];

/** What one row measured in one round. */
export interface RowRun {
  /** Round index. */
  round: number;
  tcp: TcpResult;
  udp: UdpResult;
  ping: PingResult;
  /** Forwarder CPU per frame the kernel sent into the path during the UDP test, ns. */
  cpuNsPerFrameUdp?: number;
  /** Forwarder CPU per KiB sent into the path during the TCP test, ns. */
  cpuNsPerKiBTcp?: number;
  /** Forwarder CPU over wall time during the TCP test (cores). */
  cpuCoresTcp?: number;
  /** Frames the forwarder dropped over the whole run of this row (all tests). */
  drops?: number;
}

/** A row over every round. */
export interface RowResult {
  id: RowId;
  label: string;
  runs: RowRun[];
  /** Why it was not measured. */
  unmeasured?: string;
  /** The arguments `forward` ran with, and whether the row's own flags were available. */
  note?: string;
}

/** The 4-stream, long TCP comparison. */
export interface LongRun {
  id: RowId;
  label: string;
  tcp: TcpResult;
  drops?: number;
}

/** A whole sitting. */
export interface E2eResult {
  rows: RowResult[];
  long: LongRun[];
  /** Length of every iperf3 test, s. */
  seconds: number;
  rounds: number;
  /** Whether `forward` had the rows' own flags (else their `today` ones ran). */
  newFlags: boolean;
  machine: string;
  /** 1-minute load average before and after. */
  load: { start: number; end: number };
}

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

/** Why row `id` cannot run here, or undefined. */
function rowProblem(id: RowId): string | undefined {
  if (id === "bridge-off" && !have("ethtool")) return "install ethtool";
  if (id === "testpmd" && !have("dpdk-testpmd")) return "install dpdk-dev (dpdk-testpmd)";
  return undefined;
}

function loadavg(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** A path under test, set up between the namespaces. */
interface Path {
  devA: string;
  devB: string;
  /** The forwarding process, when there is one. */
  pid?: number;
  /** Stop it; resolves with the frames it dropped, when it says. */
  stop(): Promise<number | undefined>;
}

interface Names {
  nsA: string;
  nsB: string;
  nsBr: string;
  tapA: string;
  tapB: string;
}

async function bridgePath(s: Sitting, n: Names, offloads: boolean): Promise<Path> {
  await s.addNetns(n.nsBr);
  await must(["ip", "-n", n.nsBr, "link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
  await must(["ip", "-n", n.nsBr, "link", "set", "br0", "up"]);
  for (const [ns, peer] of [[n.nsA, "pa"], [n.nsB, "pb"]]) {
    await must([
      "ip",
      "-n",
      ns,
      "link",
      "add",
      "e2e0",
      "type",
      "veth",
      "peer",
      "name",
      peer,
      "netns",
      n.nsBr,
    ]);
    await must(["ip", "-n", n.nsBr, "link", "set", peer, "master", "br0", "up"]);
  }
  if (!offloads) {
    for (const [ns, dev] of [[n.nsA, "e2e0"], [n.nsB, "e2e0"], [n.nsBr, "pa"], [n.nsBr, "pb"]]) {
      await must(inNs(ns, [
        "ethtool",
        "-K",
        dev,
        "tso",
        "off",
        "gso",
        "off",
        "gro",
        "off",
        "tx",
        "off",
        "rx",
        "off",
      ]));
    }
  }
  return { devA: "e2e0", devB: "e2e0", stop: () => Promise.resolve(undefined) };
}

async function linkUp(dev: string): Promise<boolean> {
  const r = await exec(["ip", "-j", "link", "show", "dev", dev], 5000);
  if (r.code !== 0 || r.timedOut) return false;
  const flags: string[] = JSON.parse(r.stdout)[0]?.flags ?? [];
  return flags.includes("UP");
}

/** Move the two root-namespace TAPs into nsA and nsB. */
async function moveTaps(n: Names): Promise<void> {
  await must(["ip", "link", "set", n.tapA, "netns", n.nsA]);
  await must(["ip", "link", "set", n.tapB, "netns", n.nsB]);
}

async function testpmdPath(s: Sitting, n: Names, budgetMs: number): Promise<Path> {
  const c = s.child(
    new Child(
      [
        "dpdk-testpmd",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "512",
        `--file-prefix=${n.tapA}`,
        `--vdev=net_tap0,iface=${n.tapA}`,
        `--vdev=net_tap1,iface=${n.tapB}`,
        "--",
        "--forward-mode=io",
        "--auto-start",
        "--nb-cores=1",
        "--total-num-mbufs=16384",
        "-i",
      ],
      budgetMs,
      true,
    ),
  );
  s.link(n.tapA);
  s.link(n.tapB);
  let exited = false;
  c.child.status.then(() => (exited = true));
  // The PMD sets its TAPs up when the ports start (its stdout is buffered).
  const end = performance.now() + 30_000;
  while (!(await linkUp(n.tapA) && await linkUp(n.tapB))) {
    if (exited || performance.now() > end) {
      c.kill();
      throw new Error(`testpmd did not start its ports: ${(c.err + c.out).trim().slice(-600)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await moveTaps(n);
  return {
    devA: n.tapA,
    devB: n.tapB,
    pid: c.pid,
    async stop() {
      // "quit" on stdin prints the statistics and exits; a signal if it hangs.
      await c.write("quit\n");
      const t1 = setTimeout(() => c.kill("SIGINT"), 5000);
      const t2 = setTimeout(() => c.kill("SIGKILL"), 10_000);
      await c.finish();
      clearTimeout(t1);
      clearTimeout(t2);
      s.forget(c);
      return testpmdDrops(c.out);
    },
  };
}

/**
 * RX-dropped + TX-dropped of testpmd's accumulated statistics (printed on
 * quit), or undefined when absent.
 *
 * @example
 * ```ts
 * import { testpmdDrops } from "./bench/tap_e2e.ts";
 * const out = "+++ Accumulated forward statistics for all ports+++\n" +
 *   "  RX-packets: 14   RX-dropped: 1   RX-total: 15\n" +
 *   "  TX-packets: 13   TX-dropped: 3   TX-total: 16\n";
 * console.log(testpmdDrops(out)); // 4
 * ```
 */
export function testpmdDrops(out: string): number | undefined {
  const i = out.lastIndexOf("Accumulated forward statistics");
  if (i < 0) return undefined;
  const tail = out.slice(i);
  const rx = tail.match(/RX-dropped:\s*(\d+)/), tx = tail.match(/TX-dropped:\s*(\d+)/);
  if (!rx || !tx) return undefined;
  return Number(rx[1]) + Number(tx[1]);
}

/**
 * Frames `forward --json` says were dropped: both devices' drops plus
 * frames a program's transmit was refused.
 *
 * @example
 * ```ts
 * import { forwardDrops } from "./bench/tap_e2e.ts";
 * const j = { devices: { a: { dropped: 2 }, b: { dropped: 1 } }, program: { txDropped: 4 } };
 * console.log(forwardDrops(JSON.stringify(j))); // 7
 * ```
 */
export function forwardDrops(jsonLine: string): number {
  const j = JSON.parse(jsonLine);
  let d = 0;
  for (const dev of Object.values(j.devices) as { dropped: number }[]) d += dev.dropped;
  return d + (j.program?.txDropped ?? 0);
}

async function forwardPath(s: Sitting, n: Names, args: string[], budgetMs: number): Promise<Path> {
  const c = s.child(
    new Child(
      [Deno.execPath(), "run", "-A", MOD, "forward", n.tapA, n.tapB, ...args, "--json"],
      budgetMs,
    ),
  );
  s.link(n.tapA);
  s.link(n.tapB);
  // The first run may build the C library.
  await c.waitFor("ready", 180_000);
  await moveTaps(n);
  return {
    devA: n.tapA,
    devB: n.tapB,
    pid: c.pid,
    async stop() {
      const st = await c.stop("SIGINT", 15_000);
      s.forget(c);
      const last = c.out.trim().split("\n").at(-1) ?? "";
      if (st.code !== 0 || !last.startsWith("{")) {
        throw new Error(`forward exited ${st.code}: ${(c.err + c.out).trim().slice(-600)}`);
      }
      return forwardDrops(last);
    },
  };
}

async function address(ns: string, dev: string, a: { v4: string; v6: string }): Promise<void> {
  await must(["ip", "-n", ns, "addr", "add", a.v4, "dev", dev]);
  await must(["ip", "-n", ns, "-6", "addr", "add", a.v6, "dev", dev, "nodad"]);
  await must(["ip", "-n", ns, "link", "set", dev, "up"]);
}

async function waitReachable(nsA: string): Promise<void> {
  let last = "";
  for (let i = 0; i < 20; i++) {
    try {
      await pingTest(nsA, E2E_ADDR.ipB, 1, 0.2);
      return;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new Error(`nsB is not reachable from nsA through the path: ${last}`);
}

interface Window<T> {
  r: T;
  frames: number;
  bytes: number;
  cpuNs?: number;
  wallNs: number;
}

/** Run `fn`, with the frames and bytes the kernel sent into the path and the forwarder's CPU. */
async function measured<T>(n: Names, p: Path, fn: () => Promise<T>): Promise<Window<T>> {
  const cpu0 = p.pid ? procCpuNs(p.pid) : undefined;
  const a0 = await linkCounts(p.devA, n.nsA), b0 = await linkCounts(p.devB, n.nsB);
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
  };
}

interface Ctx {
  s: Sitting;
  n: Names;
  o: E2eOptions;
  newFlags: boolean;
}

async function withPath<T>(
  id: RowId,
  x: Ctx,
  budgetMs: number,
  body: (p: Path) => Promise<T>,
): Promise<{ r: T; drops?: number }> {
  const { s, n } = x;
  try {
    await s.addNetns(n.nsA);
    await s.addNetns(n.nsB);
    for (const ns of [n.nsA, n.nsB]) {
      // Every row starts from the same TCP state: no metrics cached from the last.
      await must(inNs(ns, ["sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1"]));
    }
    const p = id === "bridge" || id === "bridge-off"
      ? await bridgePath(s, n, id === "bridge")
      : id === "testpmd"
      ? await testpmdPath(s, n, budgetMs)
      : await forwardPath(s, n, forwardArgs(id as ForwardRowId, x.newFlags), budgetMs);
    await address(n.nsA, p.devA, E2E_ADDR.a);
    await address(n.nsB, p.devB, E2E_ADDR.b);
    await waitReachable(n.nsA);
    const server = s.child(await iperfServer(n.nsB, budgetMs));
    let r: T;
    try {
      r = await body(p);
    } finally {
      await server.stop("SIGTERM", 5000);
      s.forget(server);
    }
    const drops = await p.stop();
    return { r, drops };
  } finally {
    s.cleanup();
  }
}

/** The `forward` arguments row `id` runs with. */
export function forwardArgs(id: ForwardRowId, newFlags: boolean): string[] {
  const r = FORWARD_ROWS[id];
  return [...(newFlags ? r.args : r.today)];
}

async function runRow(id: RowId, round: number, x: Ctx): Promise<RowRun> {
  const { n, o } = x;
  const pings = o.pings ?? 20;
  const budget = (2 * o.seconds + pings * 0.05) * 1000 + 240_000;
  const { r, drops } = await withPath(id, x, budget, async (p) => {
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
  };
}

/** Whether this tree's `forward` has the rows' own flags (`--offloads`, `--no-vnet-hdr`). */
async function forwardHasNewFlags(): Promise<boolean> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, "forward", "--help"],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const help = new TextDecoder().decode(r.stdout);
  return help.includes("--offloads") && help.includes("--no-vnet-hdr");
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
  const prefix = o.prefix ?? `bte2e${Deno.pid}`;
  const n: Names = {
    nsA: `${prefix}a`,
    nsB: `${prefix}b`,
    nsBr: `${prefix}br`,
    tapA: `${prefix}ta`,
    tapB: `${prefix}tb`,
  };
  if (n.tapA.length > 15) throw new Error(`prefix ${prefix} makes names longer than 15 bytes`);
  const s = new Sitting();
  const onSig = () => {
    s.cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSig);
  const load0 = loadavg();
  const rows: RowResult[] = ids.map((id) => ({
    id,
    label: ROWS.find((r) => r.id === id)!.label,
    runs: [],
    unmeasured: rowProblem(id),
  }));
  const long: LongRun[] = [];
  let newFlags = false;
  try {
    newFlags = ids.some((id) => id in FORWARD_ROWS) ? await forwardHasNewFlags() : false;
    for (const row of rows) {
      if (row.id === "testpmd") {
        row.note = "testpmd busy-polls a pinned core (lcore 1): its CPU is ~1 core whatever " +
          "the traffic, and that core is taken from iperf3 on a small machine";
      }
      if (!(row.id in FORWARD_ROWS)) continue;
      const id = row.id as ForwardRowId;
      const args = forwardArgs(id, newFlags);
      row.note = `forward ${args.join(" ") || "(default flags)"}` +
        (newFlags || FORWARD_ROWS[id].args.join() === args.join()
          ? ""
          : `; this forward lacks --offloads/--no-vnet-hdr: not yet "${
            FORWARD_ROWS[id].args.join(" ") || "(default flags)"
          }"`);
    }
    const x: Ctx = { s, n, o, newFlags };
    const total = o.rounds * rows.filter((r) => !r.unmeasured).length;
    let done = 0;
    for (let round = 0; round < o.rounds; round++) {
      for (const k of repeatOrder(rows.length, round)) {
        const row = rows[k];
        if (row.unmeasured) continue;
        try {
          row.runs.push(await runRow(row.id, round, x));
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
          const { r, drops } = await withPath(
            id,
            x,
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
    newFlags,
    machine: machineLine(),
    load: { start: load0, end: loadavg() },
  };
}

// ------------------------------------------------------------- reporting

function over(rr: RowResult, f: (r: RowRun) => number | undefined): Spread | undefined {
  const xs = rr.runs.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return xs.length ? spread(xs) : undefined;
}

/** The metrics of a row, with units, higher-is-better or not. */
const METRICS: {
  name: string;
  unit: string;
  get: (r: RowRun) => number | undefined;
  vsBridge: boolean;
  digits: number;
}[] = [
  { name: "TCP 1 stream", unit: "Gbit/s", get: (r) => r.tcp.gbps, vsBridge: true, digits: 2 },
  {
    name: "TCP retransmits",
    unit: "segments",
    get: (r) => r.tcp.retransmits,
    vsBridge: true,
    digits: 0,
  },
  {
    name: "UDP 64 B received",
    unit: "kpps",
    get: (r) => r.udp.pps / 1e3,
    vsBridge: true,
    digits: 1,
  },
  { name: "UDP 64 B loss", unit: "%", get: (r) => r.udp.lossPct, vsBridge: true, digits: 1 },
  { name: "ping RTT median", unit: "ms", get: (r) => r.ping.median, vsBridge: true, digits: 3 },
  {
    name: "forwarder CPU per frame (UDP test)",
    unit: "ns/frame",
    get: (r) => r.cpuNsPerFrameUdp,
    vsBridge: false,
    digits: 0,
  },
  {
    name: "forwarder CPU per KiB (TCP test)",
    unit: "ns/KiB",
    get: (r) => r.cpuNsPerKiBTcp,
    vsBridge: false,
    digits: 0,
  },
  {
    name: "forwarder CPU during TCP",
    unit: "cores",
    get: (r) => r.cpuCoresTcp,
    vsBridge: false,
    digits: 2,
  },
  {
    name: "forwarder dropped frames (per row run)",
    unit: "frames",
    get: (r) => r.drops,
    vsBridge: false,
    digits: 0,
  },
];

/** Ratios of one row to another, paired by round: spread over rounds. */
function paired(
  a: RowResult,
  b: RowResult,
  f: (r: RowRun) => number,
): Spread | undefined {
  const xs: number[] = [];
  for (const ra of a.runs) {
    const rb = b.runs.find((r) => r.round === ra.round);
    if (rb && f(rb) > 0) xs.push(f(ra) / f(rb));
  }
  return xs.length ? spread(xs) : undefined;
}

/** One headline ratio: name, numerator and denominator rows, metric. */
interface HeadlineDef {
  name: string;
  num: RowResult;
  den: RowResult;
  metric: "tcp" | "udp" | "rtt";
}

const GET = {
  tcp: { f: (r: RowRun) => r.tcp.gbps, unit: "Gbit/s", digits: 2 },
  udp: { f: (r: RowRun) => r.udp.pps / 1e3, unit: "kpps", digits: 1 },
  rtt: { f: (r: RowRun) => r.ping.median, unit: "ms", digits: 3 },
};

function headlineDefs(rows: RowResult[], newFlags: boolean): HeadlineDef[] {
  const by = (id: RowId) => rows.find((r) => r.id === id && r.runs.length > 0);
  const best = (f: (r: RowRun) => number) =>
    BULK_ROWS.map(by).filter((r): r is RowResult => r !== undefined)
      .sort((a, b) => over(b, f)!.median - over(a, f)!.median)[0];
  const defs: HeadlineDef[] = [];
  const add = (name: string, num?: RowResult, den?: RowResult, ...ms: HeadlineDef["metric"][]) => {
    if (!num || !den) return;
    for (const metric of ms) defs.push({ name, num, den, metric });
  };
  const bridge = by(BRIDGE);
  const bestTcp = best(GET.tcp.f), bestUdp = best(GET.udp.f);
  add("bulktap best bulk / Linux bridge", bestTcp, bridge, "tcp");
  add("bulktap best bulk / Linux bridge", bestUdp, bridge, "udp");
  add("bulktap best bulk / Linux bridge (>1: slower)", bestTcp, bridge, "rtt");
  add("bulk, offloads / single", by("fwd-offload"), by("fwd-single"), "tcp", "udp");
  add("bulktap best bulk / DPDK testpmd", bestTcp, by("testpmd"), "tcp");
  add("bulktap best bulk / DPDK testpmd", bestUdp, by("testpmd"), "udp");
  // The C row is the one with the program row's flags less --program.
  const twin = cPathTwin(newFlags);
  if (twin) add("program path / C path", by("fwd-program"), by(twin), "tcp", "udp");
  return defs;
}

/**
 * The C-path row that runs the program row's flags without `--program`,
 * if any.
 *
 * @example
 * ```ts
 * import { cPathTwin } from "./bench/tap_e2e.ts";
 * console.log(cPathTwin(true), cPathTwin(false)); // fwd-offload fwd-bulk
 * ```
 */
export function cPathTwin(newFlags: boolean): ForwardRowId | undefined {
  const p = forwardArgs("fwd-program", newFlags);
  const i = p.indexOf("--program");
  const want = [...p.slice(0, i), ...p.slice(i + 2)].join(" ");
  return (Object.keys(FORWARD_ROWS) as ForwardRowId[]).find((id) =>
    id !== "fwd-program" && id !== "fwd-gro" && forwardArgs(id, newFlags).join(" ") === want
  );
}

/**
 * The sitting as harness entries: per row and metric a figure (median and
 * range over rounds, with the bridge's from the same rounds as baseline),
 * the headline ratios (paired by round), the 4-stream comparison, and
 * every row that was not measured with why.
 */
export function e2eEntries(r: E2eResult): ResultEntry[] {
  const out: ResultEntry[] = [];
  const bridge = r.rows.find((x) => x.id === BRIDGE && x.runs.length > 0);
  const fig = (scenario: string, name: string, unit: string, value: Spread, baseline: string) =>
    out.push(
      {
        measured: true,
        figure: true,
        provider: "tap",
        scenario,
        name,
        unit,
        value,
        baseline,
      } satisfies BenchFigure,
    );
  // The machine heads the run's table; each figure says its rounds and load.
  const where = `${r.rounds} round(s) x ${r.seconds} s per test, load ${
    r.load.start.toFixed(2)
  } -> ${r.load.end.toFixed(2)}`;
  for (const row of r.rows) {
    if (row.unmeasured || row.runs.length === 0) {
      out.push(
        {
          measured: false,
          provider: "tap",
          impl: row.label,
          scenario: E2E,
          reason: row.unmeasured?.startsWith("failed")
            ? row.unmeasured
            : `not measured: ${row.unmeasured ?? "no round finished"}`,
        } satisfies Unmeasured,
      );
      continue;
    }
    for (const m of METRICS) {
      const v = over(row, m.get);
      if (!v) continue;
      const b = bridge && m.vsBridge && row !== bridge ? over(bridge, m.get) : undefined;
      const base = row === bridge && m.vsBridge
        ? "the baseline"
        : b
        ? `Linux bridge (default offloads), same rounds: ${fmtSpread(b, m.digits)} ${m.unit}`
        : m.vsBridge
        ? "no bridge figure in this sitting"
        : "the bridge forwards in the kernel's softirq: no process to measure";
      fig(
        `${E2E}: ${row.label}`,
        m.name,
        m.unit,
        v,
        `${base}${row.note && m === METRICS[0] ? `; ${row.note}` : ""}; ${where}`,
      );
    }
  }
  for (const h of headlineDefs(r.rows, r.newFlags)) {
    const g = GET[h.metric];
    const v = paired(h.num, h.den, g.f);
    if (!v) continue;
    const a = over(h.num, g.f)!, b = over(h.den, g.f)!;
    fig(
      `${E2E}: headline ratios (paired by round)`,
      `${h.metric.toUpperCase()} ${h.name}: ${h.num.label} / ${h.den.label}`,
      "x",
      v,
      `${fmtSpread(a, g.digits)} vs ${fmtSpread(b, g.digits)} ${g.unit}; ${where}`,
    );
  }
  const lb = r.long.find((l) => l.id === BRIDGE);
  for (const l of r.long) {
    const sc = `${E2E}: 4 TCP streams, one long test: ${l.label}`;
    const base = l === lb
      ? "the baseline"
      : lb
      ? `Linux bridge same sitting: ${
        lb.tcp.gbps.toFixed(2)
      } Gbit/s, ${lb.tcp.retransmits} retransmits`
      : "no bridge figure";
    fig(sc, "TCP 4 streams", "Gbit/s", spread([l.tcp.gbps]), `${base}; ${l.tcp.seconds} s`);
    fig(sc, "TCP retransmits", "segments", spread([l.tcp.retransmits]), base);
    if (l.drops !== undefined) {
      fig(sc, "forwarder dropped frames", "frames", spread([l.drops]), base);
    }
  }
  return out;
}

/** The sitting as a terminal table. */
export function e2eTable(r: E2eResult): string {
  const lines = [
    `TAP end to end (${E2E}): median (min-max) over ${r.rounds} round(s), ${r.seconds} s per ` +
    `iperf3 test; ${r.machine}; load average ${r.load.start.toFixed(2)} -> ${
      r.load.end.toFixed(2)
    }`,
  ];
  const cols = METRICS.filter((m) => !m.name.includes("CPU during"));
  lines.push(["path", ...cols.map((m) => `${m.name} (${m.unit})`)].join(" | "));
  for (const row of r.rows) {
    if (row.unmeasured || row.runs.length === 0) {
      lines.push(`${row.label} | ${row.unmeasured ?? "no round finished"}`);
      continue;
    }
    const cells = cols.map((m) => {
      const v = over(row, m.get);
      return v ? fmtSpread(v, m.digits) : "n/a";
    });
    lines.push([row.label, ...cells].join(" | ") + (row.note ? `  [${row.note}]` : ""));
  }
  for (const h of headlineDefs(r.rows, r.newFlags)) {
    const g = GET[h.metric];
    const v = paired(h.num, h.den, g.f);
    if (!v) continue;
    lines.push(
      `${h.metric.toUpperCase()} ${h.name}: ${h.num.label} / ${h.den.label} = ${
        fmtSpread(v)
      }x paired by round (${fmtSpread(over(h.num, g.f)!, g.digits)} vs ${
        fmtSpread(over(h.den, g.f)!, g.digits)
      } ${g.unit})`,
    );
  }
  for (const l of r.long) {
    lines.push(
      `4 streams, ${l.tcp.seconds.toFixed(0)} s: ${l.label}: ${l.tcp.gbps.toFixed(2)} Gbit/s, ` +
        `${l.tcp.retransmits} retransmits` +
        (l.drops !== undefined ? `, forwarder dropped ${l.drops} frames` : ""),
    );
  }
  return lines.join("\n");
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
