/**
 * The HTML report renders in headless Chromium and every series of every
 * chart draws data (test/fixtures/chromium.ts reads what each chart
 * reported after uPlot drew it). The real `--quick` run's report is
 * rendered the same way in test/bench_test.ts.
 */
import assert from "assert";
import { headlines, isPoint } from "../bench/points.ts";
import { buildReport } from "../bench/report/build.ts";
import { spread } from "../bench/stats.ts";
import { FIXTURE_CHARTS, fixtureResult } from "./fixtures/bench_result.ts";
import { assertEverySeriesDrew, renderReport, warnNoChromium } from "./fixtures/chromium.ts";

const noChromium = warnNoChromium("report_test");

Deno.test({
  name: "report: every series of every chart of a fixture report draws in headless Chromium",
  ignore: noChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const html = await buildReport(fixtureResult());
    assert.ok(!/<script[^>]+src=/i.test(html), "the page must not load scripts from elsewhere");
    assert.ok(!/<link[^>]+href=/i.test(html), "the page must not load styles from elsewhere");
    const { dom, charts } = await renderReport(html);
    assert.equal(
      charts.length,
      FIXTURE_CHARTS,
      `expected ${FIXTURE_CHARTS} charts, got: ${charts.map((c) => c.title).join("; ")}`,
    );
    for (const c of charts) assert.ok(c.ink > 50, `chart "${c.title}" drew ${c.ink} pixels`);
    assertEverySeriesDrew(charts);
    assert.match(dom, /not measured: fixture/, "unmeasured entries must be shown");
    assert.match(dom, /idle CPU/, "figures must be shown");
    assert.match(
      dom,
      /title="fixture: frames end in the kernel"[^>]*>n\/a</,
      "n/a with its reason",
    );
    assert.ok(!/>MISSING</.test(dom), "every metric is measured or n/a");
  },
});

Deno.test({
  name: "report: a series with data that draws nothing is caught",
  ignore: noChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Zero throughput with recording on: the latency-cost ratio is 0, a
    // finite data point that a log-scale bar chart cannot draw. The chart's
    // other series still draw, so only a per-series count can tell.
    const r = fixtureResult();
    const on = r.entries.filter(isPoint).find((p) => p.latencyRecording?.on)!;
    on.mpps = spread(on.mpps.runs.map(() => 0));
    r.headlines = headlines(r.entries);
    const { charts } = await renderReport(await buildReport(r));
    const cost = charts.find((c) => c.title.startsWith("latency recording cost"))!;
    assert.deepEqual(cost.seriesPoints.slice(0, 1), [1], "the ratio is a finite data point");
    assert.equal(cost.seriesInk[0], 0, "and draws nothing");
    assert.throws(() => assertEverySeriesDrew(charts), /median ratio" drew 0 pixels/);
  },
});

Deno.test({
  name: "report: ratio charts draw ratios from well below 0.1x to well above 10x",
  ignore: noChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // A log range that does not start on a decade once made uPlot's axis
    // splitter loop until "Invalid array length": the chart never drew.
    const r = fixtureResult();
    const api = r.entries.filter(isPoint).filter((p) => p.provider === "api");
    const single = api.find((p) => p.mode === "single" && p.frameSize === 64)!;
    const bulk64 = api.find((p) => p.mode === "bulk" && p.frameSize === 64)!;
    const bulk1500 = api.find((p) => p.mode === "bulk" && p.frameSize === 1500)!;
    bulk64.mpps = spread(single.mpps.runs.map((x) => x * 0.123));
    bulk1500.mpps = spread(single.mpps.runs.map((x) => x * 37));
    r.headlines = headlines(r.entries);
    const { charts } = await renderReport(await buildReport(r));
    assert.equal(charts.length, FIXTURE_CHARTS);
    assertEverySeriesDrew(charts);
  },
});
