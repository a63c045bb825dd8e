/**
 * `deno run -A mod.ts bench`: every benchmark provider (bench/scenarios.ts)
 * in one run, single-packet beside bulk, peers beside ours, each figure with
 * its baseline and spread from the same run on the same machine.
 *
 * @module
 */
import { intFlag, parseFlags, reportUsage, UsageError } from "../dataplane/cli/flags.ts";
import { machineInfo, machineLine } from "./machine.ts";
import {
  headlines,
  type ProgressEvent,
  type ProviderContext,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";
import { PROVIDERS } from "./scenarios.ts";
import type { BenchOptions, BenchResult } from "./result.ts";
import type * as Report from "./report/build.ts";

export type { BenchOptions, BenchResult };
import { headlineText, pointsTable } from "./table.ts";

/** The report builder (esbuild, uPlot), loaded only for `--html`. */
const REPORT = "./report/build.ts";

/** Help text for `mod.ts bench`. */
export const BENCH_HELP = `bulktap bench: bulk vs single-packet, peers in the same run

usage: deno run -A mod.ts bench [flags]

flags:
  --quick             CI mode: bulk 16 vs single, 64 B frames, short runs, headline
                      scenarios only, no latency-cost, idle or generator-rate figures (< 60 s,
                      plus ~1 min for the TAP end-to-end sitting when root with iperf3;
                      BULKTAP_BENCH_E2E=0 leaves it out)
  --repeats N         repeats per point, alternating single and bulk (default 5)
  --duration-ms N     length of one run in ms (default 500, --quick 100)
  --bulk LIST         bulk sizes to sweep (default 1,4,8,16,32,64; --quick 16)
  --frame-size LIST   frame sizes in bytes (default 64,1500; --quick 64)
  --only LIST         providers to run (${PROVIDERS.map((p) => p.name).join(", ")})
  --json FILE         write every raw repeat and the machine to FILE
  --html FILE         write a self-contained HTML report to FILE
  --install-peers     install missing peers (DPDK rte_ring) with apt-get first
  --help              this text

Every point is repeated (median, min-max shown); within each repeat single
and every bulk size run once, in an order that flips on odd repeats, so drift
hits all. Per point: Mpps, ns per frame, lock acquisitions and wake-ups per
frame, drops, CPU time, latency p50/p99/p99.9 ("n/a" where a scenario cannot
measure one, with the reason). Headlines: bulk-16/single per scenario,
ours/DPDK rte_ring (single and bulk), batched/per-frame into a TAP, 4
producers on 2 cores over 2, and (full runs) the cost of latency recording.
`;

export { UsageError };

const OPTIONS = {
  quick: "boolean",
  repeats: "string",
  "duration-ms": "string",
  bulk: "string",
  "frame-size": "string",
  only: "string",
  json: "string",
  html: "string",
  "install-peers": "boolean",
  help: "boolean",
} as const;

function intIn(name: string, raw: string, min: number, max: number): number {
  return intFlag(name, raw, 0, min, max);
}

function intList(name: string, raw: string, min: number, max: number): number[] {
  const xs = raw.split(",").map((s) => intIn(name, s, min, max));
  return [...new Set(xs)].sort((a, b) => a - b);
}

/**
 * Parse `mod.ts bench` flags. Throws {@linkcode UsageError} naming every
 * unknown flag, or a bad value.
 *
 * @example
 * ```ts
 * import { parseBenchArgs } from "./bench/main.ts";
 * console.log(parseBenchArgs(["--quick"]).bulks); // [16]
 * ```
 */
export function parseBenchArgs(args: string[]): BenchOptions {
  const { values } = parseFlags(args, OPTIONS);
  const v = values as Record<string, string | boolean | undefined>;
  const quick = v.quick === true;
  const names = PROVIDERS.map((p) => p.name);
  const only = typeof v.only === "string" ? v.only.split(",").map((s) => s.trim()) : names;
  const bad = only.filter((n) => !names.includes(n));
  if (bad.length) {
    throw new UsageError(`--only: no provider ${bad.join(", ")} (have ${names.join(", ")})`);
  }
  return {
    quick,
    repeats: typeof v.repeats === "string" ? intIn("repeats", v.repeats, 1, 64) : 5,
    durationMs: typeof v["duration-ms"] === "string"
      ? intIn("duration-ms", v["duration-ms"], 10, 600_000)
      : quick
      ? 100
      : 500,
    bulks: typeof v.bulk === "string"
      ? intList("bulk", v.bulk, 1, 256)
      : quick
      ? [16]
      : [1, 4, 8, 16, 32, 64],
    frameSizes: typeof v["frame-size"] === "string"
      ? intList("frame-size", v["frame-size"], 14, 1792)
      : quick
      ? [64]
      : [64, 1500],
    only,
    json: typeof v.json === "string" ? v.json : undefined,
    html: typeof v.html === "string" ? v.html : undefined,
    installPeers: v["install-peers"] === true,
    help: v.help === true,
  };
}

/** The 1-minute load average, or NaN where /proc/loadavg does not exist. */
function loadavg1(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

function fmtDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Progress on stderr: one rewritten line on a terminal, a line per few seconds otherwise. */
class Progress {
  #tty = Deno.stderr.isTerminal();
  #last = 0;
  #enc = new TextEncoder();
  #t0 = performance.now();
  #index = 0;
  #providerStart = performance.now();
  /** Estimated duration of each provider, ms. */
  estimates: number[] = [];

  startProvider(i: number): void {
    this.#index = i;
    this.#providerStart = performance.now();
  }

  update(name: string, ev: ProgressEvent): void {
    const now = performance.now();
    const inProv = now - this.#providerStart;
    const projected = ev.done > 0 && ev.total > 0
      ? (inProv / ev.done) * ev.total
      : this.estimates[this.#index];
    const later = this.estimates.slice(this.#index + 1).reduce((a, b) => a + b, 0);
    const eta = Math.max(0, projected - inProv) + later;
    const msg = `[${name} ${ev.done}/${ev.total}] ${ev.scenario} | ${ev.point} | ` +
      `repeat ${ev.repeat}/${ev.repeats} | elapsed ${fmtDuration(now - this.#t0)} | ` +
      `ETA ${fmtDuration(eta)}`;
    if (this.#tty) {
      const cols = (() => {
        try {
          return Deno.consoleSize().columns;
        } catch {
          return 120;
        }
      })();
      Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[K${msg.slice(0, cols - 1)}`));
    } else if (now - this.#last > 2000 || ev.done === ev.total) {
      this.#last = now;
      console.error(msg);
    }
  }

  log(msg: string): void {
    if (this.#tty) Deno.stderr.writeSync(this.#enc.encode("\r\x1b[K"));
    console.error(msg);
  }

  end(): void {
    if (this.#tty) Deno.stderr.writeSync(this.#enc.encode("\r\x1b[K"));
  }
}

/**
 * Run the providers and collect their entries.
 *
 * @example
 * ```ts ignore
 * import { parseBenchArgs, runBench } from "./bench/main.ts";
 * const result = await runBench(parseBenchArgs(["--quick", "--only", "peers"]));
 * console.log(result.entries.length);
 * ```
 */
export async function runBench(
  o: BenchOptions,
  providers: ScenarioProvider[] = PROVIDERS.filter((p) => o.only.includes(p.name)),
): Promise<BenchResult> {
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const load0 = loadavg1();
  const base = {
    quick: o.quick,
    repeats: o.repeats,
    durationMs: o.durationMs,
    bulks: o.bulks,
    frameSizes: o.frameSizes,
    installPeers: o.installPeers,
  };
  const progress = new Progress();
  const ctxFor = (p: ScenarioProvider): ProviderContext => ({
    ...base,
    progress: (ev) => progress.update(p.name, ev),
    log: (m) => progress.log(`${p.name}: ${m}`),
  });
  progress.estimates = providers.map((p) => p.estimateMs(ctxFor(p)));
  const entries: ResultEntry[] = [];
  for (let i = 0; i < providers.length; i++) {
    const p = providers[i];
    progress.startProvider(i);
    progress.log(`${p.name}: ${p.title}`);
    try {
      entries.push(...await p.run(ctxFor(p)));
    } catch (e) {
      entries.push({
        measured: false,
        provider: p.name,
        impl: p.name,
        reason: `failed: ${(e as Error).stack ?? e}`,
      });
    }
  }
  progress.end();
  const { help: _help, ...options } = o;
  return {
    schema: "bulktap-bench/2",
    startedAt,
    elapsedS: (performance.now() - t0) / 1000,
    loadavg: { start: load0, end: loadavg1() },
    machine: machineInfo(),
    options,
    providers: providers.map((p) => ({ name: p.name, title: p.title, meta: p.meta })),
    entries,
    headlines: headlines(entries),
  };
}

/** Print the terminal table and headlines of a result. */
export function printResult(r: BenchResult): void {
  console.log(`machine: ${machineLine(r.machine)}`);
  console.log(
    `run: ${r.startedAt}, ${r.elapsedS.toFixed(0)} s; ${r.options.repeats} repeats x ` +
      `${r.options.durationMs} ms per point; bulk ${r.options.bulks.join(",")}; ` +
      `frames ${r.options.frameSizes.join(",")} B` +
      (r.loadavg
        ? `; load average ${r.loadavg.start.toFixed(2)} at start, ${
          r.loadavg.end.toFixed(2)
        } at end ` +
          `(${r.machine.cores} cores; above ~${r.machine.cores} other work shared the CPUs)`
        : ""),
  );
  console.log(pointsTable(r.entries));
  console.log();
  console.log(headlineText(r.entries));
}

/**
 * Run the benchmarks from the command line; returns the exit status (2 for
 * usage errors, 1 when a provider failed, else 0).
 *
 * @example
 * ```ts ignore
 * import { benchMain } from "./bench/main.ts";
 * Deno.exit(await benchMain(["--quick"]));
 * ```
 */
export async function benchMain(args: string[]): Promise<number> {
  let o: BenchOptions;
  try {
    o = parseBenchArgs(args);
  } catch (e) {
    if (e instanceof UsageError) return reportUsage("bench", e);
    throw e;
  }
  if (o.help) {
    console.log(BENCH_HELP);
    return 0;
  }
  if (o.repeats < 5) console.error("note: fewer than 5 repeats; the spread means little");
  const result = await runBench(o);
  printResult(result);
  if (o.json) {
    Deno.writeTextFileSync(o.json, JSON.stringify(result, null, 1));
    console.error(`wrote ${o.json}`);
  }
  if (o.html) {
    // Not a literal: a bench run without --html does not download esbuild.
    const { buildReport }: typeof Report = await import(REPORT);
    Deno.writeTextFileSync(o.html, await buildReport(result));
    console.error(`wrote ${o.html}`);
  }
  return result.entries.some((e) => !e.measured && e.reason.startsWith("failed")) ? 1 : 0;
}
