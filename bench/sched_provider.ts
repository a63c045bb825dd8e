/**
 * The scheduler benchmark (bench/sched_bench.ts) as a provider: generator ->
 * forward program -> in-memory device -> readers, single mode (one frame
 * per xmit call) beside every bulk size of the run, for every frame size,
 * on 1 and 2 CPUs with 1 and 2 queues (`--quick`: 1 CPU, 1 queue).
 *
 * A full run also measures what latency recording costs (the case(s) of
 * sched_bench's `COST_CASES` with `latency: false`: shared and distinct
 * timestamps, each beside the same case
 * with recording on, in the same repeat loop), the CPU an idle dataplane
 * uses and the rate a fixed-rate generator achieves; `--quick` skips them.
 *
 * @module
 */
import {
  type BenchFigure,
  type BenchPoint,
  pointFromRuns,
  type ProviderContext,
  rawRunsOf,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";
import {
  type BenchCase,
  type BenchResult,
  COST_CASES,
  generatorRate,
  idleShare,
  schedBench,
} from "./sched_bench.ts";
import { spread } from "./stats.ts";

/** CPU/queue placements of a full run; `--quick` uses the first. */
export const PLACEMENTS: { cpus: number; queues: number }[] = [
  { cpus: 1, queues: 1 },
  { cpus: 1, queues: 2 },
  { cpus: 2, queues: 1 },
  { cpus: 2, queues: 2 },
];

/**
 * The sweep: for each frame size and placement, single mode (bulk 1: one
 * frame per xmit call) and every bulk size above 1 (bulk 1 *is* single
 * mode in the scheduler, so it is not measured twice).
 *
 * @example
 * ```ts
 * import { sweepCases } from "./bench/sched_provider.ts";
 * console.log(sweepCases({ quick: true, bulks: [16], frameSizes: [64] }).length); // 2
 * ```
 */
export function sweepCases(
  o: { quick: boolean; bulks: number[]; frameSizes: number[] },
): BenchCase[] {
  const places = o.quick ? PLACEMENTS.slice(0, 1) : PLACEMENTS;
  const out: BenchCase[] = [];
  for (const frameSize of o.frameSizes) {
    for (const { cpus, queues } of places) {
      for (const bulk of [1, ...o.bulks.filter((b) => b > 1)]) {
        out.push({
          name: `${bulk === 1 ? "single " : `bulk-${bulk}`} cpus=${cpus} queues=${queues} ` +
            `${frameSize} B`,
          bulk,
          stageMode: "target",
          cpus,
          queues,
          frameSize,
        });
      }
    }
  }
  return out;
}

function sameExceptLatency(a: BenchCase, b: BenchCase): boolean {
  const strip = ({ name: _n, latency: _l, ...rest }: BenchCase) => rest;
  const x = strip(a) as Record<string, unknown>, y = strip(b) as Record<string, unknown>;
  const keys = new Set([...Object.keys(x), ...Object.keys(y)]);
  return [...keys].every((k) => x[k] === y[k]);
}

/**
 * The latency-recording cost pairs: every case of sched_bench's `COST_CASES`
 * with `latency: false`, with its partner (the same case with recording on;
 * built if `COST_CASES` has none), at `frameSize`.
 *
 * @example
 * ```ts
 * import { latencyCostCases } from "./bench/sched_provider.ts";
 * for (const { pair, on, off } of latencyCostCases(64)) console.log(pair, on.name, off.name);
 * ```
 */
export function latencyCostCases(
  frameSize: number,
  cases: BenchCase[] = COST_CASES,
): { pair: string; on: BenchCase; off: BenchCase }[] {
  return cases.filter((c) => c.latency === false).map((off) => {
    const on = cases.find((c) => c !== off && c.latency !== false && sameExceptLatency(c, off)) ??
      { ...off, name: `${off.name} (recording on)`, latency: true };
    return {
      pair: off.name.replace(/,?\s*(latency )?recording off\s*/i, "").replace(/^cost:\s*/, "")
        .trim() || off.name,
      on: { ...on, frameSize: on.frameSize ?? frameSize },
      off: { ...off, frameSize: off.frameSize ?? frameSize },
    };
  });
}

function scenarioOf(c: BenchCase): string {
  return `scheduler: ${c.cpus} CPU(s), ${c.queues} queue(s)`;
}

/** Convert sweep results into harness points. */
export function schedPoints(results: BenchResult[], frameSize: number): BenchPoint[] {
  return results.map((r) =>
    pointFromRuns(
      {
        provider: "sched",
        scenario: scenarioOf(r.case),
        impl: "bulktap scheduler",
        ours: true,
        mode: r.case.bulk === 1 ? "single" : "bulk",
        bulk: r.case.bulk,
        frameSize: r.case.frameSize ?? frameSize,
      },
      rawRunsOf(r.runs),
    )
  );
}

/** Convert latency-cost results (on and off, paired) into harness points. */
export function latencyCostPoints(
  pairs: { pair: string; on: BenchResult; off: BenchResult }[],
  frameSize: number,
): BenchPoint[] {
  return pairs.flatMap(({ pair, on, off }) =>
    [on, off].map((r) =>
      pointFromRuns(
        {
          provider: "sched",
          scenario: `latency recording cost: ${scenarioOf(r.case)}`,
          impl: `bulktap scheduler, latency ${r === on ? "on" : "off"}`,
          ours: true,
          mode: r.case.bulk === 1 ? "single" : "bulk",
          bulk: r.case.bulk,
          frameSize: r.case.frameSize ?? frameSize,
          latencyRecording: { pair, on: r === on },
          notApplicable: r === off
            ? { latency: "latency recording is off in this case" }
            : undefined,
        },
        rawRunsOf(r.runs),
      )
    )
  );
}

/** Window of one idle measurement: the run's duration, at least 300 ms. */
function idleMs(ctx: ProviderContext): number {
  return Math.max(ctx.durationMs, 300);
}

/**
 * The rate of the generator-rate figure, frames/s (the rate test/cli_test.ts
 * runs `--rate` at; the test checks the cap, this figure the accuracy).
 *
 * @example
 * ```ts
 * import { GENERATOR_RATE } from "./bench/sched_provider.ts";
 * console.log(GENERATOR_RATE); // 100000
 * ```
 */
export const GENERATOR_RATE = 100_000;

/** Per scheduler run: start, 200 ms warm-up, close. */
const RUN_OVERHEAD_MS = 650;

/**
 * The scheduler provider.
 *
 * @example
 * ```ts ignore
 * import { schedProvider } from "./bench/sched_provider.ts";
 * console.log(schedProvider.name); // "sched"
 * ```
 */
export const schedProvider: ScenarioProvider = {
  name: "sched",
  title: "Scheduler: generator -> forward -> in-memory device -> readers (Workers)",
  estimateMs(ctx) {
    const cases = sweepCases(ctx).length +
      (ctx.quick ? 0 : 2 * latencyCostCases(ctx.frameSizes[0]).length);
    const run = Math.max(ctx.durationMs, 300) + RUN_OVERHEAD_MS;
    // Idle and generator-rate figures: one window each per repeat, plus start and close.
    return cases * ctx.repeats * run + (ctx.quick ? 0 : 2 * ctx.repeats * (idleMs(ctx) + 500));
  },
  async run(ctx) {
    const seconds = Math.max(ctx.durationMs, 300) / 1000;
    const sweep = sweepCases(ctx);
    const costs = ctx.quick ? [] : latencyCostCases(ctx.frameSizes[0]);
    const cases = [...sweep, ...costs.flatMap((c) => [c.on, c.off])];
    let done = 0;
    const total = cases.length * ctx.repeats;
    const r = await schedBench({
      repeats: ctx.repeats,
      seconds,
      frameSize: ctx.frameSizes[0],
      cases,
      // The recordBatch micro-benchmark and the 1 s idle sample would be
      // thrown away here: idle CPU is measured below, per repeat.
      extras: false,
      onRun: (c, repeat) => {
        done++;
        ctx.progress({
          scenario: scenarioOf(c),
          point: c.name,
          repeat: repeat + 1,
          repeats: ctx.repeats,
          done,
          total,
        });
      },
    });
    const byCase = new Map(r.results.map((x) => [x.case, x]));
    const out: ResultEntry[] = schedPoints(sweep.map((c) => byCase.get(c)!), r.frameSize);
    out.push(...latencyCostPoints(
      costs.map(({ pair, on, off }) => ({ pair, on: byCase.get(on)!, off: byCase.get(off)! })),
      r.frameSize,
    ));
    if (!ctx.quick) {
      const shares: number[] = [];
      for (let i = 0; i < ctx.repeats; i++) {
        shares.push(100 * await idleShare(idleMs(ctx)));
        ctx.progress({
          scenario: "idle dataplane",
          point: "CPU share",
          repeat: i + 1,
          repeats: ctx.repeats,
          done,
          total,
        });
      }
      const idle: BenchFigure = {
        measured: true,
        figure: true,
        provider: "sched",
        scenario: "idle dataplane: 2 Workers, 2 queues, no traffic",
        name: "idle CPU",
        unit: "% of one CPU",
        value: spread(shares),
        baseline: `a busy Worker uses 100%; idle Workers busy-poll 200 us, then sleep on the ` +
          `queues' eventfds (${idleMs(ctx)} ms per repeat)`,
      };
      out.push(idle);
      const rates: number[] = [];
      for (let i = 0; i < ctx.repeats; i++) {
        rates.push(100 * await generatorRate(GENERATOR_RATE, idleMs(ctx)) / GENERATOR_RATE);
        ctx.progress({
          scenario: "generator rate",
          point: `${GENERATOR_RATE} frames/s`,
          repeat: i + 1,
          repeats: ctx.repeats,
          done,
          total,
        });
      }
      out.push({
        measured: true,
        figure: true,
        provider: "sched",
        scenario: `generator at a fixed rate: 1 Worker, 1 queue, ${GENERATOR_RATE} frames/s`,
        name: "generated rate",
        unit: "% of the rate asked for",
        value: spread(rates),
        baseline: `the rate asked for (${GENERATOR_RATE} frames/s = 100%) over the same ` +
          `${idleMs(ctx)} ms window per repeat; frames due while the Worker is descheduled ` +
          `come late, so a shortfall is time the machine took away`,
      });
    }
    return out;
  },
};
