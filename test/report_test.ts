/**
 * The HTML report renders in headless Chromium and every chart draws data.
 * Each chart sets data-points (data points it was given) and data-ink
 * (coloured pixels in its plot area after drawing); --dump-dom returns the
 * DOM after the page's scripts ran.
 */
import assert from "assert";
import { buildReport } from "../bench/report/build.ts";
import { FIXTURE_CHARTS, fixtureResult } from "./fixtures/bench_result.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].find(
  (p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  },
);

if (!CHROMIUM) {
  console.error(
    "\n" + "!".repeat(72) + "\n" +
      "!! report_test: NO CHROMIUM FOUND (/usr/bin/chromium). The report page\n" +
      "!! test is IGNORED. Install it: apt-get install chromium\n" +
      "!".repeat(72) + "\n",
  );
}

function chromiumArgs(profile: string): string[] {
  return [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    "--virtual-time-budget=5000",
  ];
}

Deno.test({
  name: "report: every chart of a fixture report draws data in headless Chromium",
  ignore: !CHROMIUM,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "bulktap-report-" });
    try {
      const html = await buildReport(fixtureResult());
      assert.ok(!/<script[^>]+src=/i.test(html), "the page must not load scripts from elsewhere");
      assert.ok(!/<link[^>]+href=/i.test(html), "the page must not load styles from elsewhere");
      const file = `${dir}/report.html`;
      Deno.writeTextFileSync(file, html);
      const r = await new Deno.Command(CHROMIUM!, {
        args: [...chromiumArgs(`${dir}/profile`), "--dump-dom", `file://${file}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dom = new TextDecoder().decode(r.stdout);
      assert.ok(r.success, `chromium failed: ${new TextDecoder().decode(r.stderr).slice(0, 2000)}`);
      assert.match(dom, /<body[^>]*data-ready="1"/, "the page script did not finish");
      const charts = [...dom.matchAll(/<div class="chart"([^>]*)>/g)].map((m) => m[1]);
      assert.equal(charts.length, FIXTURE_CHARTS, `expected ${FIXTURE_CHARTS} charts`);
      for (const [i, attrs] of charts.entries()) {
        const title = dom.split('<div class="chart"')[i + 1].match(/<h3>([^<]*)<\/h3>/)?.[1];
        const points = Number(attrs.match(/data-points="(\d+)"/)?.[1] ?? 0);
        const ink = Number(attrs.match(/data-ink="(\d+)"/)?.[1] ?? 0);
        assert.ok(points > 0, `chart "${title}" was given no data points`);
        assert.ok(ink > 50, `chart "${title}" drew ${ink} coloured pixels`);
      }
      assert.match(dom, /not measured: fixture/, "unmeasured entries must be shown");
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
