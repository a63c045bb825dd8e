/**
 * Builds the self-contained HTML report: the page's TypeScript
 * (bench/report/page.ts, with uPlot) bundled by esbuild, the CSS, and the
 * run's data, all inline in one file that opens without a network.
 *
 * Run directly to render a saved `--json` file:
 * `deno run -A bench/report/build.ts results.json report.html`
 *
 * @module
 */
import * as esbuild from "npm:esbuild@^0.28";
// esbuild resolves page.ts's `uplot` imports in node_modules/, where Deno
// puts a package only once a module it loads names it (npm-lazy-caching).
import "uplot/package.json" with { type: "json" };
import type { BenchResult } from "../result.ts";

const PAGE = new URL("./page.ts", import.meta.url);
const STYLE = new URL("./style.css", import.meta.url);

/** The bundled page script and CSS (uPlot's and ours). */
export async function bundlePage(): Promise<{ js: string; css: string }> {
  try {
    const r = await esbuild.build({
      entryPoints: [PAGE.pathname],
      bundle: true,
      write: false,
      format: "iife",
      platform: "browser",
      target: "es2020",
      minify: true,
      outdir: "out",
      logLevel: "silent",
      absWorkingDir: new URL("../..", import.meta.url).pathname,
    });
    let js = "";
    let css = "";
    for (const f of r.outputFiles) {
      if (f.path.endsWith(".js")) js += f.text;
      else if (f.path.endsWith(".css")) css += f.text;
    }
    css += Deno.readTextFileSync(STYLE);
    return { js, css };
  } finally {
    await esbuild.stop();
  }
}

/** Text safe inside a `<script>` element. */
function scriptSafe(s: string): string {
  return s.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

/**
 * Render a result as one self-contained HTML page.
 *
 * @example
 * ```ts ignore
 * import { buildReport } from "./bench/report/build.ts";
 * const html = await buildReport(result);
 * Deno.writeTextFileSync("report.html", html);
 * ```
 */
export async function buildReport(result: BenchResult): Promise<string> {
  const { js, css } = await bundlePage();
  const json = JSON.stringify(result).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bulktap benchmark report</title>
<style>${css.replace(/<\/style/gi, "<\\/style")}</style>
</head>
<body>
<div id="app"></div>
<script id="bench-data" type="application/json">${json}</script>
<script>${scriptSafe(js)}</script>
</body>
</html>
`;
}

if (import.meta.main) {
  const [input, output] = Deno.args;
  if (!input || !output) {
    console.error("usage: deno run -A bench/report/build.ts RESULTS.json REPORT.html");
    Deno.exit(2);
  }
  const result = JSON.parse(Deno.readTextFileSync(input)) as BenchResult;
  Deno.writeTextFileSync(output, await buildReport(result));
  console.error(`wrote ${output}`);
}
