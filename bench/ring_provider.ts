/**
 * The C ring benchmark (bench/c/ring_bench.c, real bt_xmit path, one lock per
 * frame vs per bulk) as a provider. If the program cannot be built or run,
 * the provider reports it as not measured rather than leaving it out.
 *
 * ring_bench prints one JSON line per run (`"type":"run"`: Mpps, locks,
 * wake-ups and drops per frame, CPU time, sampled enqueue -> dequeue
 * latency); points are built from those raw repeats. Its 4p/2p verdict lines
 * (`"type":"ratio"`) are logged; the headline computes the same ratio with
 * its spread from the points.
 *
 * @module
 */
import { buildProgram, librarySources, runLines } from "./cbuild.ts";
import { type CLatency, cRawRun } from "./peers.ts";
import {
  type BenchPoint,
  pointFromRuns,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";

const SOURCE = new URL("./c/ring_bench.c", import.meta.url);

/** One run line of ring_bench. */
export interface RingRunLine {
  type: "run";
  scenario: string;
  mode: "single" | "bulk";
  bulk: number;
  producers: number;
  repeat: number;
  seconds: number;
  delivered: number;
  mpps: number;
  offered: number;
  dropped: number;
  drop_rate: number;
  calls_per_frame: number;
  locks_per_frame: number;
  wakeups_per_frame: number;
  cpu_ns: number;
  wall_ns: number;
  lat: CLatency;
}

/** Convert ring_bench run lines into harness points (one per scenario, mode and bulk). */
export function ringPoints(lines: RingRunLine[]): BenchPoint[] {
  const groups = new Map<string, RingRunLine[]>();
  for (const l of lines) {
    const k = `${l.scenario}\0${l.mode}\0${l.bulk}`;
    groups.set(k, [...(groups.get(k) ?? []), l]);
  }
  return [...groups.values()].map((ls) => {
    const f = ls[0];
    const runs = ls.map(cRawRun);
    return pointFromRuns({
      provider: "ring",
      scenario: f.scenario,
      impl: "bt_xmit (C)",
      ours: true,
      mode: f.mode,
      bulk: f.bulk,
      // Frame refs with a length set; nobody reads or writes frame data.
      frameSize: 0,
    }, runs);
  });
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
  title: "C ring level through bt_xmit (bench/c/ring_bench.c; frame refs, no frame data moves)",
  meta: {},
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
    const lines: RingRunLine[] = [];
    let total = 3 * (1 + Math.min(8, ctx.bulks.length)) * ctx.repeats;
    const args = [
      "--duration",
      String(ctx.durationMs / 1000),
      "--repeats",
      String(ctx.repeats),
      "--bulk",
      ctx.bulks.slice(0, 8).join(","),
    ];
    const { code, stderr } = await runLines(exe, args, (line) => {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        ctx.log(`ring_bench: ${line}`);
        return;
      }
      if (o.type === "header") {
        total = o.total_runs;
        ringProvider.meta = o;
      } else if (o.type === "run") {
        lines.push(o as RingRunLine);
        ctx.progress({
          scenario: o.scenario,
          point: o.mode === "bulk" ? `bulk-${o.bulk}` : "single",
          repeat: o.repeat + 1,
          repeats: ctx.repeats,
          done: lines.length,
          total,
        });
      } else if (o.type === "ratio") {
        ctx.log(
          `ring_bench: ${o.ratio} ${o.mode}-${o.bulk} = ${o.value} ` +
            `(required >= ${o.required_min}: ${o.ok ? "ok" : "BELOW"})`,
        );
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
