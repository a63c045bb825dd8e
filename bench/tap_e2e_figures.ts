/**
 * The figures of the end-to-end TAP sitting (bench/tap_e2e.ts): per row and
 * metric the median (min-max) over rounds beside the Linux bridge's with as
 * many ports from the same rounds, the headline ratios (paired by round),
 * as harness entries for the report and as a terminal table.
 *
 * @module
 */
import type { BenchFigure, ResultEntry, Unmeasured } from "./points.ts";
import { fmtSpread, type Spread, spread } from "./stats.ts";
import {
  baselineOf,
  BRIDGE,
  BRIDGE3,
  BRIDGE_ROWS,
  BULK_ROWS,
  cPathTwin,
  E2E,
  type E2eResult,
  type RowId,
  type RowResult,
  type RowRun,
} from "./tap_e2e_rows.ts";

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
  {
    name: "idle third port received (TCP + UDP tests)",
    unit: "frames",
    get: (r) => r.thirdRx,
    vsBridge: true,
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
  /** The ratio the issue asks for at least (said beside the figure, met or not). */
  floor?: number;
}

const GET = {
  tcp: { f: (r: RowRun) => r.tcp.gbps, unit: "Gbit/s", digits: 2 },
  udp: { f: (r: RowRun) => r.udp.pps / 1e3, unit: "kpps", digits: 1 },
  rtt: { f: (r: RowRun) => r.ping.median, unit: "ms", digits: 3 },
};

/** The floor the UDP 64 B program path bulk / single ratio must reach. */
export const PROGRAM_BULK_FLOOR = 1.5;

/** The floor of the program path's (and the 2-port switch's) TCP and UDP over the C path's. */
export const PROGRAM_C_FLOOR = 0.7;

function headlineDefs(rows: RowResult[]): HeadlineDef[] {
  const by = (id: RowId) => rows.find((r) => r.id === id && r.runs.length > 0);
  const best = (f: (r: RowRun) => number) =>
    BULK_ROWS.map(by).filter((r): r is RowResult => r !== undefined)
      .sort((a, b) => over(b, f)!.median - over(a, f)!.median)[0];
  const defs: HeadlineDef[] = [];
  const floored = (
    floor: number | undefined,
    name: string,
    num?: RowResult,
    den?: RowResult,
    ...ms: HeadlineDef["metric"][]
  ) => {
    if (!num || !den) return;
    for (const metric of ms) defs.push({ name, num, den, metric, floor });
  };
  const add = (name: string, num?: RowResult, den?: RowResult, ...ms: HeadlineDef["metric"][]) =>
    floored(undefined, name, num, den, ...ms);
  const bridge = by(BRIDGE);
  const bestTcp = best(GET.tcp.f), bestUdp = best(GET.udp.f);
  add("bulktap best bulk / Linux bridge", bestTcp, bridge, "tcp");
  add("bulktap best bulk / Linux bridge", bestUdp, bridge, "udp");
  add("bulktap best bulk / Linux bridge (>1: slower)", bestTcp, bridge, "rtt");
  add("bulk, offloads / single", by("fwd-offload"), by("fwd-single"), "tcp", "udp");
  add("bulktap best bulk / DPDK testpmd", bestTcp, by("testpmd"), "tcp");
  add("bulktap best bulk / DPDK testpmd", bestUdp, by("testpmd"), "udp");
  // The C path is the row with the program row's flags less --program
  // (fwd-offload: forward's defaults); the switch's defaults are the same.
  const twin = cPathTwin();
  if (twin) {
    const c = by(twin);
    floored(PROGRAM_C_FLOOR, "program path / C path", by("fwd-program"), c, "tcp", "udp");
    floored(PROGRAM_C_FLOOR, "switch 2 ports / C path", by("switch2"), c, "tcp", "udp");
  }
  // Bulk amortises per-frame costs; the program path's floor is on UDP 64 B.
  const bulkSingle = (name: string, bulk: RowId, single: RowId) =>
    floored(PROGRAM_BULK_FLOOR, `${name} bulk / single`, by(bulk), by(single), "udp");
  bulkSingle("program path", "fwd-program", "fwd-program-single");
  bulkSingle("switch 2 ports", "switch2", "switch2-single");
  bulkSingle("switch 3 ports", "switch3", "switch3-single");
  // Each switch beside the kernel's bridge with as many ports.
  for (const [sw, br, name] of [["switch2", BRIDGE, "2"], ["switch3", BRIDGE3, "3"]] as const) {
    add(`switch ${name} ports / Linux bridge`, by(sw), by(br), "tcp", "udp");
    add(`switch ${name} ports / Linux bridge (>1: slower)`, by(sw), by(br), "rtt");
  }
  // The forwarder writes into the other TAP from the reading thread; the
  // rows differ only in --via-ring.
  add("direct / via rings", by("fwd-offload"), by("fwd-via-ring"), "tcp");
  add("direct / via rings (>1: slower)", by("fwd-offload"), by("fwd-via-ring"), "rtt");
  return defs;
}

/** Whether the median ratio `v` meets headline `h`'s floor, said in words ("" without one). */
function floorNote(h: HeadlineDef, v: Spread): string {
  if (h.floor === undefined) return "";
  return `; floor >= ${h.floor}x: ${v.median >= h.floor ? "met" : "NOT met"} (median)`;
}

/**
 * The sitting as harness entries: per row and metric a figure (median and
 * range over rounds, with the bridge's from the same rounds as baseline),
 * the headline ratios (paired by round), the 4-stream comparison, and
 * every row that was not measured with why.
 */
export function e2eEntries(r: E2eResult): ResultEntry[] {
  const out: ResultEntry[] = [];
  const measured = (id: RowId) => r.rows.find((x) => x.id === id && x.runs.length > 0);
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
    const baseId = baselineOf(row.id), bridge = measured(baseId);
    for (const m of METRICS) {
      const v = over(row, m.get);
      if (!v) continue;
      const b = bridge && m.vsBridge && row !== bridge ? over(bridge, m.get) : undefined;
      const base = row === bridge && m.vsBridge
        ? "the baseline"
        : b
        ? `${BRIDGE_ROWS[baseId].baseline}, same rounds: ${fmtSpread(b, m.digits)} ${m.unit}`
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
  for (const h of headlineDefs(r.rows)) {
    const g = GET[h.metric];
    const v = paired(h.num, h.den, g.f);
    if (!v) continue;
    const a = over(h.num, g.f)!, b = over(h.den, g.f)!;
    fig(
      `${E2E}: headline ratios (paired by round)`,
      `${h.metric.toUpperCase()} ${h.name}: ${h.num.label} / ${h.den.label}`,
      "x",
      v,
      `${fmtSpread(a, g.digits)} vs ${fmtSpread(b, g.digits)} ${g.unit}${
        floorNote(h, v)
      }; ${where}`,
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
  for (const h of headlineDefs(r.rows)) {
    const g = GET[h.metric];
    const v = paired(h.num, h.den, g.f);
    if (!v) continue;
    lines.push(
      `${h.metric.toUpperCase()} ${h.name}: ${h.num.label} / ${h.den.label} = ${
        fmtSpread(v)
      }x paired by round (${fmtSpread(over(h.num, g.f)!, g.digits)} vs ${
        fmtSpread(over(h.den, g.f)!, g.digits)
      } ${g.unit})${floorNote(h, v)}`,
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
