/// <reference lib="dom" />
/**
 * The report page, run in the browser. Reads the run's data from the
 * `<script id="bench-data">` element and draws, with uPlot:
 *
 * - throughput vs bulk size per provider, scenario and frame size, every
 *   implementation (ours and peers) in the same chart, single mode as a
 *   dashed level;
 * - the bulk/single ratio per scenario, and ours/peer ratios, as bars;
 * - latency percentile curves (HDR style: x = "nines", y on a log scale).
 *
 * After a chart has drawn it sets `data-points` (data points given) and
 * `data-ink` (coloured plot pixels) on its element, so a test in headless
 * Chromium can check that every chart drew data.
 *
 * Bundled by bench/report/build.ts with esbuild into one HTML file.
 *
 * @module
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { BenchResult } from "../main.ts";
import type { BenchPoint, Ratio } from "../points.ts";

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#17becf",
  "#8c564b",
  "#e377c2",
];

const data = JSON.parse(document.getElementById("bench-data")!.textContent!) as BenchResult;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const root = document.getElementById("app")!;

/** Count non-background pixels in the plot area after drawing. */
function ink(u: uPlot): number {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  if (width <= 0 || height <= 0) return 0;
  const img = ctx.getImageData(left, top, width, height).data;
  let n = 0;
  for (let i = 0; i < img.length; i += 4) {
    // Coloured (not grey grid, not transparent): channels differ.
    const r = img[i], g = img[i + 1], b = img[i + 2], a = img[i + 3];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) n++;
  }
  return n;
}

function chart(
  section: HTMLElement,
  title: string,
  opts: Omit<uPlot.Options, "width" | "height"> & { height?: number },
  d: uPlot.AlignedData,
  note?: string,
): void {
  const box = el("div", { class: "chart" });
  box.append(el("h3", {}, title));
  if (note) box.append(el("p", { class: "note" }, note));
  section.append(box);
  let points = 0;
  for (let s = 1; s < d.length; s++) {
    for (const v of d[s] as (number | null)[]) if (v !== null && Number.isFinite(v)) points++;
  }
  box.dataset.points = String(points);
  const u = new uPlot(
    {
      width: 620,
      height: 300,
      ...opts,
      hooks: {
        draw: [(u: uPlot) => {
          box.dataset.ink = String(ink(u));
          box.dataset.drawn = "1";
        }],
      },
    },
    d,
    box,
  );
  void u;
}

function fmtNum(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

// ---------------------------------------------------------------- header
root.append(el("h1", {}, "bulktap benchmark report"));
const m = data.machine;
root.append(
  el(
    "p",
    { class: "machine" },
    `${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Deno ${m.deno}, ${m.cc}`,
  ),
);
root.append(
  el(
    "p",
    { class: "machine" },
    `run ${data.startedAt} (${data.elapsedS.toFixed(0)} s): ${data.options.repeats} repeats x ` +
      `${data.options.durationMs} ms per point, single and bulk alternating; ` +
      `bulk ${data.options.bulks.join(", ")}; frames ${data.options.frameSizes.join(", ")} B. ` +
      `Every figure is a median; tables give min-max.` +
      (data.loadavg
        ? ` Load average ${data.loadavg.start.toFixed(2)} at start, ${
          data.loadavg.end.toFixed(2)
        } at end (${m.cores} cores).`
        : ""),
  ),
);

const points = data.entries.filter((e): e is BenchPoint => e.measured);
const missing = data.entries.filter((e) => !e.measured);
if (missing.length) {
  const ul = el("ul", { class: "missing" });
  for (const e of missing) {
    if (!e.measured) ul.append(el("li", {}, `${e.provider}: ${e.impl}: ${e.reason}`));
  }
  root.append(el("h2", {}, "Not measured"), ul);
}

// ------------------------------------------------------------- ratios
function ratioChart(section: HTMLElement, title: string, ratios: Ratio[], note: string): void {
  if (!ratios.length) return;
  const xs = ratios.map((_, i) => i);
  const labels = ratios.map((r) => `${r.scenario} ${r.point} ${r.label}`);
  chart(
    section,
    title,
    {
      height: 120 + ratios.length * 4,
      scales: {
        x: { time: false, range: [-0.6, ratios.length - 0.4] },
        // Log scale: ratios from 0.1x to 100x stay readable side by side.
        y: {
          distr: 3,
          range: () => [
            Math.min(0.5, ...ratios.map((r) => r.value)) * 0.8,
            Math.max(2, ...ratios.map((r) => r.value)) * 1.25,
          ],
        },
      },
      axes: [
        {
          values: (_u, ticks) => ticks.map((t) => Number.isInteger(t) ? String(t + 1) : ""),
          splits: () => xs,
        },
        { label: "ratio (x, log)" },
      ],
      series: [
        { label: "#" },
        {
          label: "median ratio",
          stroke: COLORS[0],
          fill: COLORS[0] + "99",
          paths: uPlot.paths.bars!({ size: [0.6, 40] }),
          points: { show: false },
        },
        { label: "1.0 (equal)", stroke: "#999", dash: [4, 4], points: { show: false } },
      ],
      legend: { show: true },
    },
    [xs, ratios.map((r) => r.value), ratios.map(() => 1)],
    note,
  );
  const t = el("table");
  t.append(el("tr", {}, ""));
  t.rows[0].append(
    ...["#", "comparison", "ratio", "range", "numerator Mpps", "baseline Mpps"].map((h) =>
      el("th", {}, h)
    ),
  );
  ratios.forEach((r, i) => {
    const tr = el("tr");
    tr.append(
      el("td", {}, String(i + 1)),
      el("td", {}, `${r.provider}: ${labels[i]}`),
      el("td", {}, `${r.value.toFixed(2)}x`),
      el("td", {}, `${r.low.toFixed(2)}-${r.high.toFixed(2)}`),
      el("td", {}, fmtNum(r.num)),
      el("td", {}, fmtNum(r.den)),
    );
    t.append(tr);
  });
  section.append(t);
}

const hl = el("section");
root.append(el("h2", {}, "Headline ratios"), hl);
ratioChart(
  hl,
  "bulk/single, per scenario and implementation",
  data.headlines.bulkOverSingle,
  "Median bulk-16 throughput over median single-packet throughput of the same run.",
);
ratioChart(
  hl,
  "ours/peer (DPDK rte_ring), same harness, same run",
  data.headlines.oursOverPeer,
  "Above 1: ours moves more frames per second than the peer in the same placement and mode.",
);

// ---------------------------------------------------- throughput vs bulk
const tp = el("section");
root.append(el("h2", {}, "Throughput vs bulk size (peers beside ours)"), tp);
const groups = new Map<string, BenchPoint[]>();
for (const p of points) {
  const k = `${p.provider} | ${p.scenario} | ${p.frameSize} B`;
  groups.set(k, [...(groups.get(k) ?? []), p]);
}
for (const [k, ps] of groups) {
  const bulks = [...new Set(ps.filter((p) => p.mode === "bulk").map((p) => p.bulk))].sort((a, b) =>
    a - b
  );
  if (!bulks.length) continue;
  const impls = [...new Set(ps.map((p) => p.impl))];
  const series: uPlot.Series[] = [{ label: "bulk" }];
  const d: (number | null)[][] = [bulks];
  impls.forEach((impl, i) => {
    const c = COLORS[i % COLORS.length];
    const peer = ps.find((p) => p.impl === impl && !p.ours) !== undefined;
    series.push({
      label: `${impl}${peer ? " (peer)" : ""} bulk`,
      stroke: c,
      width: 2,
      points: { show: true, size: 7, fill: c },
    });
    d.push(
      bulks.map((b) =>
        ps.find((p) => p.impl === impl && p.bulk === b && p.mode === "bulk")?.mpps.median ?? null
      ),
    );
    const single = ps.find((p) => p.impl === impl && p.mode === "single");
    if (single) {
      series.push({
        label: `${impl} single`,
        stroke: c,
        dash: [6, 4],
        width: 1,
        points: { show: true, size: 5, fill: "#fff" },
      });
      d.push(bulks.map(() => single.mpps.median));
    }
  });
  chart(
    tp,
    k,
    {
      scales: { x: { time: false, distr: 3, log: 2 }, y: { range: (_u, _a, b) => [0, b * 1.1] } },
      axes: [{ label: "frames per call (log2)" }, { label: "Mpps (median)" }],
      series,
    },
    d as uPlot.AlignedData,
  );
}

// ---------------------------------------------------------------- latency
const withLat = points.filter((p) => p.latency && p.latency.curve.length > 1);
if (withLat.length) {
  const lat = el("section");
  root.append(
    el("h2", {}, "Latency percentiles (HDR style, log scale)"),
    el(
      "p",
      { class: "note" },
      "Enqueue-to-dequeue latency of sampled frames under saturation (queueing included). " +
        "x: percentile as nines (1 = 90%, 2 = 99%, 3 = 99.9%); y: ns, log scale. Curve of the " +
        "repeat with the median throughput.",
    ),
    lat,
  );
  const nines = (q: number) => q >= 100 ? 6 : Math.min(6, -Math.log10(1 - q / 100));
  const byScenario = new Map<string, BenchPoint[]>();
  for (const p of withLat) {
    const hb = p.mode === "single" || p.bulk === 16 || !withLat.some((x) => x.bulk === 16);
    if (!hb) continue;
    const k = `${p.provider} | ${p.scenario} | ${p.frameSize} B`;
    byScenario.set(k, [...(byScenario.get(k) ?? []), p]);
  }
  for (const [k, ps] of byScenario) {
    const xsSet = new Set<number>();
    for (const p of ps) for (const [q] of p.latency!.curve) xsSet.add(Number(nines(q).toFixed(4)));
    const xs = [...xsSet].sort((a, b) => a - b);
    const series: uPlot.Series[] = [{ label: "nines" }];
    const d: (number | null)[][] = [xs];
    ps.forEach((p, i) => {
      const c = COLORS[i % COLORS.length];
      series.push({
        label: `${p.impl}${p.ours ? "" : " (peer)"} ${
          p.mode === "single" ? "single" : `bulk-${p.bulk}`
        }`,
        stroke: c,
        dash: p.mode === "single" ? [6, 4] : undefined,
        width: 2,
        spanGaps: true,
        points: { show: false },
      });
      const map = new Map(
        p.latency!.curve.map(([q, ns]) => [Number(nines(q).toFixed(4)), Math.max(1, ns)]),
      );
      d.push(xs.map((x) => map.get(x) ?? null));
    });
    chart(
      lat,
      k,
      {
        scales: { x: { time: false }, y: { distr: 3 } },
        axes: [
          {
            label: "percentile",
            values: (_u, ticks) =>
              ticks.map((t) =>
                t >= 6
                  ? "max"
                  : `${(100 * (1 - Math.pow(10, -t))).toPrecision(Math.max(2, Math.ceil(t) + 1))}%`
              ),
          },
          { label: "ns (log)", size: 70 },
        ],
        series,
      },
      d as uPlot.AlignedData,
    );
  }
}

// -------------------------------------------------------------- table
const tbl = el("table", { class: "points" });
const head = el("tr");
for (
  const h of [
    "provider",
    "scenario",
    "impl",
    "mode",
    "frame B",
    "Mpps median",
    "min-max",
    "ns/frame",
    "calls/frame",
    "p50/p99/p99.9 us",
    "repeats",
  ]
) head.append(el("th", {}, h));
tbl.append(head);
for (const p of points) {
  const tr = el("tr");
  tr.append(
    el("td", {}, p.provider),
    el("td", {}, p.scenario),
    el("td", {}, p.impl + (p.ours ? "" : " (peer)")),
    el("td", {}, p.mode === "single" ? "single" : `bulk-${p.bulk}`),
    el("td", {}, String(p.frameSize)),
    el("td", {}, fmtNum(p.mpps.median)),
    el("td", {}, `${fmtNum(p.mpps.min)}-${fmtNum(p.mpps.max)}`),
    el("td", {}, p.nsPerFrame.median.toFixed(1)),
    el("td", {}, p.locksPerFrame?.toFixed(3) ?? "-"),
    el(
      "td",
      {},
      p.latency
        ? [p.latency.p50, p.latency.p99, p.latency.p999].map((s) => fmtNum(s.median / 1000)).join(
          "/",
        )
        : "-",
    ),
    el("td", {}, p.mpps.runs.map((r) => fmtNum(r)).join(" ")),
  );
  tbl.append(tr);
}
root.append(el("h2", {}, "Every point (raw repeats in the last column)"), tbl);
document.body.dataset.ready = "1";
