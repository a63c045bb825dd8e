/// <reference lib="dom" />
/**
 * The report page, run in the browser. Reads the run's data from the
 * `<script id="bench-data">` element and draws, with uPlot:
 *
 * - the headline ratios (bulk/single, ours/peer, batched/per-frame into a
 *   TAP, 4 producers on 2 cores over 2, latency recording on/off) as bars;
 * - throughput vs bulk size per provider, scenario and frame size, every
 *   implementation (ours and peers) in the same chart, single mode as a
 *   dashed level;
 * - latency percentile curves (HDR style: x = "nines", y on a log scale);
 * - tables of figures and of every point with every metric ("n/a", with the
 *   reason on hover, where a scenario cannot measure one).
 *
 * Every series of a chart has its own colour. After a chart has drawn it
 * sets, for a test in headless Chromium: `data-points` (data points given),
 * `data-ink` (coloured plot pixels), `data-series-points` (finite points per
 * series) and `data-series-ink` (pixels each series changed when uPlot drew
 * it: the plot area is sampled after the axes and after every series).
 *
 * Bundled by bench/report/build.ts with esbuild into one HTML file.
 *
 * @module
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { BenchResult } from "../result.ts";
import {
  type BenchPoint,
  frameLabel,
  isFigure,
  isPoint,
  type Metric,
  metricState,
  type Ratio,
} from "../points.ts";
import { HEADLINE_SECTIONS, pointOrder } from "../table.ts";
import type { Spread } from "../stats.ts";

/** Distinct colours: no two series of a chart share one. */
const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#9467bd",
  "#ff7f0e",
  "#17becf",
  "#8c564b",
  "#e377c2",
  "#393b79",
  "#bcbd22",
  "#637939",
  "#7b4173",
  "#ad494a",
  "#3182bd",
  "#e6550d",
  "#31a354",
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

function plotPixels(u: uPlot): Uint8ClampedArray | undefined {
  const { left, top, width, height } = u.bbox;
  if (width <= 0 || height <= 0) return undefined;
  return u.ctx.getImageData(left, top, width, height).data;
}

/** Count coloured (not grey, not transparent) pixels in the plot area. */
function ink(u: uPlot): number {
  const img = plotPixels(u);
  if (!img) return 0;
  let n = 0;
  for (let i = 0; i < img.length; i += 4) {
    const r = img[i], g = img[i + 1], b = img[i + 2], a = img[i + 3];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) n++;
  }
  return n;
}

/** Pixels that differ between two samples of the plot area. */
function changed(a: Uint8ClampedArray, b: Uint8ClampedArray): number {
  let n = 0;
  for (let i = 0; i < a.length; i += 4) {
    if (
      Math.abs(a[i] - b[i]) + Math.abs(a[i + 1] - b[i + 1]) + Math.abs(a[i + 2] - b[i + 2]) +
          Math.abs(a[i + 3] - b[i + 3]) > 24
    ) n++;
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
  const perSeries: number[] = [];
  for (let s = 1; s < d.length; s++) {
    perSeries.push(
      (d[s] as (number | null)[]).filter((v) => v !== null && Number.isFinite(v)).length,
    );
  }
  box.dataset.points = String(perSeries.reduce((a, b) => a + b, 0));
  box.dataset.seriesPoints = perSeries.join(",");
  box.dataset.seriesLabels = opts.series.slice(1).map((s) => String(s.label ?? "")).join("|");
  let before: Uint8ClampedArray | undefined;
  let seriesInk: number[] = [];
  new uPlot(
    {
      width: 620,
      height: 300,
      ...opts,
      hooks: {
        drawClear: [() => (seriesInk = new Array(d.length - 1).fill(0))],
        drawAxes: [(u: uPlot) => (before = plotPixels(u))],
        drawSeries: [(u: uPlot, si: number) => {
          const after = plotPixels(u);
          if (before && after) seriesInk[si - 1] = changed(before, after);
          before = after;
        }],
        draw: [(u: uPlot) => {
          box.dataset.ink = String(ink(u));
          box.dataset.seriesInk = seriesInk.join(",");
          box.dataset.drawn = "1";
        }],
      },
    },
    d,
    box,
  );
}

function fmtNum(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function fmtSmall(v: number): string {
  return v === 0 ? "0" : v >= 0.001 ? v.toFixed(3) : v.toExponential(1);
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
      `${data.options.durationMs} ms per point; in each repeat single and every bulk size run ` +
      `once, in an order that flips on odd repeats; bulk ${data.options.bulks.join(", ")}; ` +
      `frames ${data.options.frameSizes.join(", ")} B ("pointers": C ring rows, no frame data ` +
      `moves). Every figure is a median; tables give min-max.` +
      (data.loadavg
        ? ` Load average ${data.loadavg.start.toFixed(2)} at start, ${
          data.loadavg.end.toFixed(2)
        } at end (${m.cores} cores).`
        : ""),
  ),
);

const points = data.entries.filter(isPoint).sort(pointOrder);
const figures = data.entries.filter(isFigure);
const missing = data.entries.filter((e) => !e.measured);
if (missing.length) {
  const ul = el("ul", { class: "missing" });
  for (const e of missing) {
    if (!e.measured) ul.append(el("li", {}, `${e.provider}: ${e.impl}: ${e.reason}`));
  }
  root.append(el("h2", {}, "Not measured"), ul);
}

// ------------------------------------------------------------- ratios
function ratioChart(section: HTMLElement, title: string, ratios: Ratio[]): void {
  if (!ratios.length) return;
  const xs = ratios.map((_, i) => i);
  const labels = ratios.map((r) => `${r.scenario} [${r.point}] ${r.label}`);
  const required = ratios.find((r) => r.required !== undefined)?.required;
  const series: uPlot.Series[] = [
    { label: "#" },
    {
      label: "median ratio",
      stroke: COLORS[0],
      fill: COLORS[0] + "99",
      paths: uPlot.paths.bars!({ size: [0.6, 40] }),
      points: { show: false },
    },
    // Points too: a chart with one ratio has a one-point "line".
    { label: "1.0 (equal)", stroke: "#999", dash: [4, 4], points: { show: true, size: 6 } },
  ];
  const d: number[][] = [xs, ratios.map((r) => r.value), ratios.map(() => 1)];
  if (required !== undefined) {
    series.push({
      label: `${required} (required)`,
      stroke: COLORS[1],
      dash: [2, 3],
      points: { show: true, size: 6 },
    });
    d.push(ratios.map(() => required));
  }
  // A log scale needs a positive range; a ratio of 0 (or NaN) stays off it
  // and is caught by the per-series ink count.
  const ok = ratios.map((r) => r.value).filter((v) => v > 0 && Number.isFinite(v));
  // Whole decades: uPlot's log-axis splits never end on an unaligned range.
  const lo = 10 ** Math.floor(Math.log10(Math.min(0.5, required ?? 1, ...ok) * 0.8));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(2, ...ok) * 1.25));
  chart(
    section,
    title,
    {
      height: 120 + ratios.length * 4,
      scales: {
        x: { time: false, range: [-0.6, ratios.length - 0.4] },
        // Log scale: ratios from 0.1x to 100x stay readable side by side.
        y: { distr: 3, range: () => [lo, hi] },
      },
      axes: [
        {
          values: (_u, ticks) => ticks.map((t) => Number.isInteger(t) ? String(t + 1) : ""),
          splits: () => xs,
        },
        { label: "ratio (x, log)" },
      ],
      series,
      legend: { show: true },
    },
    d as uPlot.AlignedData,
  );
  const t = el("table");
  const head = el("tr");
  head.append(
    ...[
      "#",
      "comparison",
      "ratio",
      "range",
      "paired by repeat",
      "numerator Mpps",
      "baseline Mpps",
      "verdict",
    ].map((
      h,
    ) => el("th", {}, h)),
  );
  t.append(head);
  ratios.forEach((r, i) => {
    const tr = el("tr");
    tr.append(
      el("td", {}, String(i + 1)),
      el("td", {}, `${r.provider}: ${labels[i]}`),
      el("td", {}, `${r.value.toFixed(2)}x`),
      el("td", {}, `${r.low.toFixed(2)}-${r.high.toFixed(2)}`),
      el(
        "td",
        {},
        r.paired
          ? `${r.paired.median.toFixed(2)}x (${r.paired.min.toFixed(2)}-${r.paired.max.toFixed(2)})`
          : "",
      ),
      el("td", {}, fmtNum(r.num)),
      el("td", {}, fmtNum(r.den)),
      el(
        "td",
        {},
        r.required === undefined
          ? ""
          : (r.paired?.median ?? r.value) >= r.required
          ? "ok"
          : `below ${r.required}`,
      ),
    );
    t.append(tr);
  });
  section.append(t);
}

const hl = el("section");
root.append(
  el("h2", {}, "Headline ratios"),
  el(
    "p",
    { class: "note" },
    "Medians over medians of the same run; range = worst and best pairing of repeats.",
  ),
  hl,
);
for (const { key, title } of HEADLINE_SECTIONS) {
  ratioChart(hl, title.replace(/^Headline: /, ""), data.headlines[key] ?? []);
}

// ---------------------------------------------------- throughput vs bulk
const tp = el("section");
root.append(el("h2", {}, "Throughput vs bulk size (peers beside ours)"), tp);
const groups = new Map<string, BenchPoint[]>();
for (const p of points) {
  const k = `${p.provider} | ${p.scenario} | ${frameLabel(p.frameSize)}`;
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
  const color = () => COLORS[(series.length - 1) % COLORS.length];
  for (const impl of impls) {
    const peer = ps.some((p) => p.impl === impl && !p.ours);
    const bulkPts = bulks.map((b) =>
      ps.find((p) => p.impl === impl && p.bulk === b && p.mode === "bulk")?.mpps.median ?? null
    );
    if (bulkPts.some((v) => v !== null)) {
      const c = color();
      series.push({
        label: `${impl}${peer ? " (peer)" : ""} bulk`,
        stroke: c,
        width: 2,
        points: { show: true, size: 7, fill: c },
      });
      d.push(bulkPts);
    }
    const single = ps.find((p) => p.impl === impl && p.mode === "single");
    if (single) {
      const c = color();
      series.push({
        label: `${impl}${peer ? " (peer)" : ""} single`,
        stroke: c,
        dash: [6, 4],
        width: 2,
        points: { show: true, size: 5, fill: "#fff" },
      });
      d.push(bulks.map(() => single.mpps.median));
    }
  }
  chart(
    tp,
    k,
    {
      scales: {
        x: bulks.length > 1
          ? { time: false, distr: 3, log: 2 }
          : { time: false, range: [bulks[0] / 2, bulks[0] * 2] },
        y: { range: (_u, _a, b) => [0, b * 1.1] },
      },
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
      "C rings, API: enqueue-to-dequeue latency of sampled frames under saturation (queueing " +
        "included). Scheduler: generator stamp to reader, every frame, over the whole run " +
        "(200 ms warm-up included). x: percentile as nines " +
        "(1 = 90%, 2 = 99%, 3 = 99.9%); y: ns, log scale. Curve of the repeat with the median " +
        "throughput. Single mode and the headline bulk size.",
    ),
    lat,
  );
  const nines = (q: number) => q >= 100 ? 6 : Math.min(6, -Math.log10(1 - q / 100));
  const byScenario = new Map<string, BenchPoint[]>();
  for (const p of withLat) {
    const hb = p.mode === "single" || p.bulk === 16 ||
      !withLat.some((x) => x.provider === p.provider && x.bulk === 16);
    if (!hb) continue;
    const k = `${p.provider} | ${p.scenario} | ${frameLabel(p.frameSize)}`;
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

// -------------------------------------------------------------- figures
if (figures.length) {
  const t = el("table", { class: "figures" });
  const head = el("tr");
  for (const h of ["provider", "scenario", "figure", "median", "min-max", "unit", "baseline"]) {
    head.append(el("th", {}, h));
  }
  t.append(head);
  for (const f of figures) {
    const tr = el("tr");
    tr.append(
      el("td", {}, f.provider),
      el("td", {}, f.scenario),
      el("td", {}, f.name),
      el("td", {}, fmtNum(f.value.median)),
      el("td", {}, `${fmtNum(f.value.min)}-${fmtNum(f.value.max)}`),
      el("td", {}, f.unit),
      el("td", {}, f.baseline),
    );
    t.append(tr);
  }
  root.append(el("h2", {}, "Other figures"), t);
}

// -------------------------------------------------------------- table
function metricTd(p: BenchPoint, metric: Metric, text: () => string): HTMLElement {
  const st = metricState(p, metric);
  if (st === "measured") return el("td", {}, text());
  if (st === "n/a") return el("td", { class: "na", title: p.notApplicable![metric]! }, "n/a");
  return el("td", { class: "na" }, "MISSING");
}

function optTd(s: Spread | undefined, f: (v: number) => string): HTMLElement {
  return el("td", {}, s ? f(s.median) : "");
}

const tbl = el("table", { class: "points" });
const head = el("tr");
for (
  const h of [
    "provider",
    "scenario",
    "impl",
    "mode",
    "frame",
    "Mpps median",
    "min-max",
    "ns/frame",
    "calls/frame",
    "locks/frame",
    "wake-ups/frame",
    "syscalls/frame",
    "drop %",
    "drops",
    "CPU ns/frame",
    "CPU cores",
    "p50/p99/p99.9 us",
    "repeats (Mpps)",
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
    el("td", {}, frameLabel(p.frameSize)),
    el("td", {}, fmtNum(p.mpps.median)),
    el("td", {}, `${fmtNum(p.mpps.min)}-${fmtNum(p.mpps.max)}`),
    el("td", {}, p.nsPerFrame.median.toFixed(1)),
    optTd(p.callsPerFrame, fmtSmall),
    metricTd(p, "locksPerFrame", () => fmtSmall(p.locksPerFrame!.median)),
    metricTd(p, "wakeupsPerFrame", () => fmtSmall(p.wakeupsPerFrame!.median)),
    optTd(p.syscallsPerFrame, fmtSmall),
    metricTd(
      p,
      "drops",
      () => p.dropShare ? (p.dropShare.median * 100).toFixed(2) : "",
    ),
    metricTd(p, "drops", () => p.drops ? String(p.drops.median) : ""),
    metricTd(p, "cpu", () => p.cpuNsPerFrame!.median.toFixed(1)),
    metricTd(p, "cpu", () => p.cpuCores ? p.cpuCores.median.toFixed(2) : ""),
    metricTd(
      p,
      "latency",
      () =>
        [p.latency!.p50, p.latency!.p99, p.latency!.p999].map((s) => fmtNum(s.median / 1000))
          .join("/"),
    ),
    el("td", {}, p.mpps.runs.map((r) => fmtNum(r)).join(" ")),
  );
  tbl.append(tr);
}
root.append(
  el("h2", {}, "Every point (medians; raw Mpps repeats in the last column)"),
  el(
    "p",
    { class: "note" },
    "CPU: the benchmark process's CPU time (every thread) per delivered frame, and CPU time " +
      "over wall time (busy cores). n/a: the scenario cannot measure it (hover for why).",
  ),
  tbl,
);
document.body.dataset.ready = "1";
