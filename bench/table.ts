/**
 * The terminal table and headline lines printed at the end of a run.
 *
 * @module
 */
import { type BenchPoint, headlines, type Ratio, type ResultEntry } from "./points.ts";
import type { Spread } from "./stats.ts";

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** "12.3 (11.9-12.8)" with digits chosen by magnitude. */
export function fmt(s: Spread): string {
  const d = s.median >= 100 ? 0 : s.median >= 10 ? 1 : 2;
  return `${s.median.toFixed(d)} (${s.min.toFixed(d)}-${s.max.toFixed(d)})`;
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

function pointOrder(a: BenchPoint, b: BenchPoint): number {
  return a.provider.localeCompare(b.provider) || a.scenario.localeCompare(b.scenario) ||
    a.frameSize - b.frameSize || a.impl.localeCompare(b.impl) ||
    (a.mode === b.mode ? a.bulk - b.bulk : a.mode === "single" ? -1 : 1);
}

/** The table of every measured point, then unmeasured entries. */
export function pointsTable(entries: ResultEntry[]): string {
  const points = entries.filter((e): e is BenchPoint => e.measured).sort(pointOrder);
  const rows: string[][] = [[
    "provider",
    "scenario",
    "impl",
    "mode",
    "frame B",
    "Mpps median (min-max)",
    "ns/frame",
    "calls/frame",
    "drop %",
    "lat p50/p99/p99.9 us",
  ]];
  for (const p of points) {
    rows.push([
      p.provider,
      p.scenario,
      p.impl + (p.ours ? "" : " (peer)"),
      p.mode === "single" ? "single" : `bulk-${p.bulk}`,
      String(p.frameSize),
      fmt(p.mpps),
      p.nsPerFrame.median.toFixed(1),
      p.locksPerFrame === undefined ? "-" : p.locksPerFrame.toFixed(3),
      p.dropShare ? (p.dropShare.median * 100).toFixed(1) : "-",
      p.latency
        ? `${us(p.latency.p50.median)}/${us(p.latency.p99.median)}/${us(p.latency.p999.median)}`
        : "-",
    ]);
  }
  let out = renderTable(rows, 4);
  const missing = entries.filter((e) => !e.measured);
  for (const m of missing) {
    if (!m.measured) {
      out += `\n${m.provider}: ${m.impl}${m.scenario ? ` (${m.scenario})` : ""}: ${m.reason}`;
    }
  }
  return out;
}

function ratioLine(r: Ratio): string {
  return `${r.provider} ${r.scenario} [${r.point}] ${r.label} = ${r.value.toFixed(2)}x ` +
    `(range ${r.low.toFixed(2)}-${r.high.toFixed(2)}; ${r.num.toFixed(2)} vs ${
      r.den.toFixed(2)
    } Mpps)`;
}

/** The headline section: bulk/single per scenario, ours/peer per placement. */
export function headlineText(entries: ResultEntry[]): string {
  const h = headlines(entries);
  const lines = ["Headline: bulk/single (medians; range = worst/best repeat pairing)"];
  for (const r of h.bulkOverSingle) lines.push(`  ${ratioLine(r)}`);
  if (h.oursOverPeer.length) {
    lines.push("Headline: ours/peer, same harness, same run (>1 = ours faster)");
    for (const r of h.oursOverPeer) lines.push(`  ${ratioLine(r)}`);
  }
  const missingPeers = entries.filter((e) => !e.measured);
  for (const m of missingPeers) {
    if (!m.measured) lines.push(`  ${m.provider} ${m.impl}: ${m.reason}`);
  }
  return lines.join("\n");
}
