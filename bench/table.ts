/**
 * The terminal table and headline lines printed at the end of a run.
 *
 * @module
 */
import {
  type BenchPoint,
  frameLabel,
  headlines,
  isFigure,
  isPoint,
  type Metric,
  METRICS,
  metricState,
  type Ratio,
  type ResultEntry,
} from "./points.ts";
import type { Spread } from "./stats.ts";

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** "12.3 (11.9-12.8)" with digits chosen by magnitude. */
export function fmt(s: Spread): string {
  const d = s.median >= 100 ? 0 : s.median >= 10 ? 1 : 2;
  return `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
}

/**
 * A per-frame count: 0, 0.063, 1.000, 2.4e-5.
 *
 * @example
 * ```ts
 * import { fmtPerFrame } from "./bench/table.ts";
 * console.log(fmtPerFrame(1 / 16), fmtPerFrame(0.00002)); // 0.063 2.0e-5
 * ```
 */
export function fmtPerFrame(v: number): string {
  if (v === 0) return "0";
  return v >= 0.001 ? v.toFixed(3) : v.toExponential(1);
}

function us(ns: number): string {
  const v = ns / 1000;
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Render rows (first row is the header) as aligned text. */
export function renderTable(rows: string[][], rightFrom = 4): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r, ri) => {
      const line = r.map((c, i) => pad(c, widths[i], i >= rightFrom && ri > 0)).join("  ");
      return ri === 0 ? `${line}\n${widths.map((w) => "-".repeat(w)).join("  ")}` : line;
    })
    .join("\n");
}

/** Table order: provider, scenario, frame size, implementation, single first, bulk size. */
export function pointOrder(a: BenchPoint, b: BenchPoint): number {
  return a.provider.localeCompare(b.provider) || a.scenario.localeCompare(b.scenario) ||
    a.frameSize - b.frameSize || a.impl.localeCompare(b.impl) ||
    (a.mode === b.mode ? a.bulk - b.bulk : a.mode === "single" ? -1 : 1);
}

/**
 * A metric's cell: its text when measured, "n/a" when the scenario cannot
 * measure it, "MISSING" when it should have been measured and was not.
 */
export function metricCell(p: BenchPoint, m: Metric, text: () => string): string {
  const st = metricState(p, m);
  return st === "measured" ? text() : st === "n/a" ? "n/a" : "MISSING";
}

/** The table of every measured point, then n/a reasons, figures and unmeasured entries. */
export function pointsTable(entries: ResultEntry[]): string {
  const points = entries.filter(isPoint).sort(pointOrder);
  const rows: string[][] = [[
    "provider",
    "scenario",
    "impl",
    "mode",
    "frame",
    "Mpps median (min-max)",
    "ns/frame",
    "locks/frame",
    "wake-ups/frame",
    "drop %",
    "CPU ns/frame (cores)",
    "lat p50/p99/p99.9 us",
  ]];
  for (const p of points) {
    rows.push([
      p.provider,
      p.scenario,
      p.impl + (p.ours ? "" : " (peer)"),
      p.mode === "single" ? "single" : `bulk-${p.bulk}`,
      frameLabel(p.frameSize),
      fmt(p.mpps),
      p.nsPerFrame.median.toFixed(1),
      metricCell(p, "locksPerFrame", () => fmtPerFrame(p.locksPerFrame!.median)),
      metricCell(p, "wakeupsPerFrame", () => fmtPerFrame(p.wakeupsPerFrame!.median)),
      metricCell(
        p,
        "drops",
        () => p.dropShare ? (p.dropShare.median * 100).toFixed(1) : String(p.drops!.median),
      ),
      metricCell(
        p,
        "cpu",
        () =>
          `${p.cpuNsPerFrame!.median.toFixed(1)}` +
          (p.cpuCores ? ` (${p.cpuCores.median.toFixed(2)})` : ""),
      ),
      metricCell(
        p,
        "latency",
        () =>
          `${us(p.latency!.p50.median)}/${us(p.latency!.p99.median)}/${us(p.latency!.p999.median)}`,
      ),
    ]);
  }
  let out = renderTable(rows, 4);
  out += "\nEvery cell is the median over repeats; Mpps also gives min-max. " +
    'frame "pointers": no frame data moves (rings of pointers or frame refs). ' +
    "CPU: the process's CPU time (every thread) per delivered frame, and busy cores.";
  const reasons = new Map<string, string>();
  for (const p of points) {
    for (const m of METRICS) {
      const why = p.notApplicable?.[m];
      if (why && metricState(p, m) === "n/a") {
        const who = p.provider === "peers" ? `${p.provider} ${p.impl}` : `${p.provider}`;
        const key = `${who}\0${m}\0${why}`;
        if (!reasons.has(key)) reasons.set(key, `  ${who}, ${m}: ${why}`);
      }
    }
  }
  if (reasons.size) {
    out += `\nn/a (cannot be measured in that scenario):\n${[...reasons.values()].join("\n")}`;
  }
  const figures = entries.filter(isFigure);
  if (figures.length) {
    out += "\nFigures:";
    for (const f of figures) {
      out += `\n  ${f.provider} ${f.scenario}: ${f.name} = ${fmt(f.value)} ${f.unit} ` +
        `(median (min-max) over ${f.value.runs.length} repeats; ${f.baseline})`;
    }
  }
  for (const m of entries) {
    if (!m.measured) {
      out += `\n${m.provider}: ${m.impl}${m.scenario ? ` (${m.scenario})` : ""}: ${m.reason}`;
    }
  }
  return out;
}

/**
 * One headline line.
 *
 * @example
 * ```ts
 * import { ratioLine } from "./bench/table.ts";
 * console.log(ratioLine({
 *   label: "4p/2p on 2 cores", provider: "ring", scenario: "4p1q_2cores", point: "single",
 *   value: 0.6, low: 0.5, high: 0.7, num: 6, den: 10, frameSize: 0, required: 0.5,
 * }));
 * ```
 */
export function ratioLine(r: Ratio): string {
  const judged = ratioVerdictValue(r);
  const verdict = r.required === undefined
    ? ""
    : `; required >= ${r.required}: ${judged >= r.required ? "ok" : "BELOW"}`;
  const paired = r.paired
    ? `; paired by repeat ${r.paired.median.toFixed(2)}x (${r.paired.min.toFixed(2)}-${
      r.paired.max.toFixed(2)
    })`
    : "";
  return `${r.provider} ${r.scenario} [${r.point}] ${r.label} = ${r.value.toFixed(2)}x ` +
    `(range ${r.low.toFixed(2)}-${r.high.toFixed(2)}; ${r.num.toFixed(2)} vs ${
      r.den.toFixed(2)
    } Mpps${paired}${verdict})`;
}

/**
 * The value a required floor is judged on: the median of the per-repeat
 * paired ratios when the two sides were measured back to back in each
 * repeat (drift of a shared machine then hits both), else the ratio of
 * medians.
 *
 * @example
 * ```ts
 * import { ratioVerdictValue } from "./bench/table.ts";
 * console.log(ratioVerdictValue({
 *   label: "4p/2p on 2 cores", provider: "ring", scenario: "4p1q_2cores", point: "single",
 *   value: 0.45, low: 0.3, high: 1.2, num: 9, den: 20, frameSize: 0, required: 0.5,
 *   paired: { median: 0.9, min: 0.8, max: 1.1, n: 5 },
 * })); // 0.9
 * ```
 */
export function ratioVerdictValue(r: Ratio): number {
  return r.paired?.median ?? r.value;
}

/** Headline sections, in print order, with their titles. */
export const HEADLINE_SECTIONS: { key: keyof ReturnType<typeof headlines>; title: string }[] = [
  {
    key: "bulkOverSingle",
    title: "Headline: bulk/single (medians; range = worst/best repeat pairing)",
  },
  {
    key: "oursOverPeer",
    title: "Headline: ours/peer (DPDK rte_ring; for the API, a plain-TypeScript dataplane), " +
      "same harness, same run (>1 = ours faster)",
  },
  {
    key: "batchedOverPerFrame",
    title: "Headline: batched/per-frame into a TAP (io_uring batches over write() per frame)",
  },
  {
    key: "oversubscription",
    title: "Headline: oversubscription, 4 producers on 2 cores over 2 producers (bulk and single)",
  },
  {
    key: "latencyCost",
    title: "Headline: latency recording cost (scheduler throughput, recording on/off; 1 = free)",
  },
  {
    key: "apiOverC",
    title: "Headline: TypeScript API over the C bt_xmit path (ring_bench 1p1c, unpinned; " +
      "other provider, not interleaved)",
  },
];

/** The headline section: one block per question, then what was not measured. */
export function headlineText(entries: ResultEntry[]): string {
  const h = headlines(entries);
  const lines: string[] = [];
  for (const { key, title } of HEADLINE_SECTIONS) {
    if (!h[key].length) continue;
    lines.push(title);
    for (const r of h[key]) lines.push(`  ${ratioLine(r)}`);
  }
  for (const m of entries) {
    if (!m.measured) lines.push(`  ${m.provider} ${m.impl}: ${m.reason}`);
  }
  return lines.join("\n");
}
