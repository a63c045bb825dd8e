/**
 * The shape of a benchmark run: the options it ran with and the result it
 * writes (`--json`), read by the report page. Kept apart from `main.ts` so
 * the report imports no command line.
 *
 * @module
 */
import type { MachineInfo } from "./machine.ts";
import type { Headlines, ResultEntry } from "./points.ts";

/** Options after parsing. */
export interface BenchOptions {
  /** CI mode. */
  quick: boolean;
  /** Repeats per point. */
  repeats: number;
  /** Run length, ms. */
  durationMs: number;
  /** Bulk sizes. */
  bulks: number[];
  /** Frame sizes. */
  frameSizes: number[];
  /** Provider names to run. */
  only: string[];
  /** JSON output path. */
  json?: string;
  /** HTML output path. */
  html?: string;
  /** Install peers with apt-get. */
  installPeers: boolean;
  /** Print help. */
  help: boolean;
}

/** Everything a run produced: what `--json` writes and the report reads. */
export interface BenchResult {
  /** Format tag (2: per-repeat locks, wake-ups, drops, CPU, latency; figures; n/a reasons). */
  schema: "bulktap-bench/2";
  /** ISO time the run started. */
  startedAt: string;
  /** Wall time of the whole run, s. */
  elapsedS: number;
  /** 1-minute load average at the start and the end (other work on the machine). */
  loadavg?: { start: number; end: number };
  /** The machine. */
  machine: MachineInfo;
  /** Options in effect. */
  options: Omit<BenchOptions, "help">;
  /** Providers that ran, with their titles and headers. */
  providers: { name: string; title: string; meta?: Record<string, unknown> }[];
  /** Every point (with every raw repeat), every figure and every unmeasured entry. */
  entries: ResultEntry[];
  /** Headline ratios computed from entries. */
  headlines: Headlines;
}
