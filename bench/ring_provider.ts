/**
 * The C ring benchmark (bench/c/ring_bench.c, real bt_xmit path, one lock per
 * frame vs per bulk) as a provider. If the program cannot be built or run,
 * the provider reports it as not measured rather than leaving it out.
 *
 * ring_bench prints one JSON line per point with median, min, max and every
 * raw repeat (`runs`).
 *
 * @module
 */
import { buildProgram, librarySources, runLines } from "./cbuild.ts";
import type { BenchPoint, ResultEntry, ScenarioProvider } from "./points.ts";

const SOURCE = new URL("./c/ring_bench.c", import.meta.url);

interface RingBenchLine {
  scenario?: string;
  mode?: "single" | "bulk";
  bulk?: number;
  median?: number;
  min?: number;
  max?: number;
  locks_per_frame?: number;
  drop_rate?: number;
  repeats?: number;
  /** Every repeat in run order. */
  runs?: { mpps: number; drop_rate: number }[];
}

/** Convert ring_bench point lines into harness points. */
export function ringPoints(lines: RingBenchLine[]): BenchPoint[] {
  return lines.filter((l) => l.scenario && l.mode && l.median !== undefined).map((l) => ({
    measured: true as const,
    provider: "ring",
    scenario: l.scenario!,
    impl: "bt_xmit (C)",
    ours: true,
    mode: l.mode!,
    bulk: l.bulk ?? 1,
    frameSize: 64,
    mpps: {
      median: l.median!,
      min: l.min!,
      max: l.max!,
      runs: l.runs?.map((r) => r.mpps) ?? [l.median!],
    },
    nsPerFrame: {
      median: 1000 / l.median!,
      min: 1000 / l.max!,
      max: 1000 / l.min!,
      runs: (l.runs?.map((r) => r.mpps) ?? [l.median!]).map((m) => 1000 / m),
    },
    locksPerFrame: l.locks_per_frame,
    runs: l.runs?.map((r, repeat) => ({ repeat, mpps: r.mpps, dropShare: r.drop_rate })) ??
      [{ repeat: 0, mpps: l.median!, dropShare: l.drop_rate }],
  }));
}

/**
 * The ring provider.
 *
 * @example
 * ```ts ignore
 * import { ringProvider } from "./bench/ring_provider.ts";
 * console.log(ringProvider.name); // "ring"
 * ```
 */
export const ringProvider: ScenarioProvider = {
  name: "ring",
  title: "C ring level through bt_xmit (bench/c/ring_bench.c)",
  estimateMs(ctx) {
    try {
      Deno.statSync(SOURCE);
    } catch {
      return 0;
    }
    return ctx.repeats * 3 * (1 + ctx.bulks.length) * (ctx.durationMs + 5) + 1500;
  },
  async run(ctx): Promise<ResultEntry[]> {
    try {
      Deno.statSync(SOURCE);
    } catch {
      return [{
        measured: false,
        provider: "ring",
        impl: "bt_xmit (C)",
        reason: "not measured: bench/c/ring_bench.c is not on this branch yet",
      }];
    }
    let exe;
    try {
      exe = buildProgram(
        { name: "ring_bench", sources: [SOURCE.pathname, ...librarySources().c] },
        ctx.log,
      );
    } catch (e) {
      return [{
        measured: false,
        provider: "ring",
        impl: "bt_xmit (C)",
        reason: `not measured: ${(e as Error).message}`,
      }];
    }
    const lines: RingBenchLine[] = [];
    const total = 3 * (1 + ctx.bulks.length);
    const args = [
      "--duration",
      String(ctx.durationMs / 1000),
      "--repeats",
      String(ctx.repeats),
      "--bulk",
      ctx.bulks.slice(0, 8).join(","),
    ];
    const { code, stderr } = await runLines(exe, args, (line) => {
      try {
        const o = JSON.parse(line) as RingBenchLine;
        if (o.scenario && o.mode) {
          lines.push(o);
          ctx.progress({
            scenario: o.scenario,
            point: `${o.mode}${o.mode === "bulk" ? `-${o.bulk}` : ""}`,
            repeat: ctx.repeats,
            repeats: ctx.repeats,
            done: lines.length,
            total,
          });
        }
      } catch {
        ctx.log(`ring_bench: ${line}`);
      }
    });
    const out: ResultEntry[] = ringPoints(lines);
    if (code !== 0) {
      out.push({
        measured: false,
        provider: "ring",
        impl: "bt_xmit (C)",
        reason: `ring_bench exited with ${code}: ${stderr.trim().slice(0, 500)}`,
      });
    }
    return out;
  },
};
