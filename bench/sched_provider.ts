/**
 * The scheduler benchmark (bench/sched_bench.ts) as a provider: generator ->
 * forward program -> in-memory device -> readers, bulk-16 beside single
 * mode, 1 and 2 CPUs on 1 and 2 queues. (Its p99 latency per case is in
 * `deno run -A bench/sched_bench.ts`; the main job's `--json` has the full
 * distribution.)
 *
 * @module
 */
import type { BenchPoint, ScenarioProvider } from "./points.ts";
import { pointFromRuns } from "./points.ts";
import { type BenchResult, CASES, schedBench } from "./sched_bench.ts";

/** The closing-note cases: single and bulk-16 for 1/2 CPUs x 1/2 queues. */
const HEADLINE = CASES.filter((c) => /^(single|bulk-16) +cpus=/.test(c.name));
/** Quick runs (CI): the 1 CPU, 1 queue pair only. */
const QUICK = HEADLINE.filter((c) => c.cpus === 1 && c.queues === 1);

/** Convert scheduler results into harness points. */
export function schedPoints(results: BenchResult[], frameSize: number): BenchPoint[] {
  return results.map((r) =>
    pointFromRuns(
      {
        provider: "sched",
        scenario: `scheduler: ${r.case.cpus} CPU(s), ${r.case.queues} queue(s)`,
        impl: "bulktap scheduler",
        ours: true,
        mode: r.case.bulk === 1 ? "single" : "bulk",
        bulk: r.case.bulk,
        frameSize,
      },
      // Only throughput here: sched_bench keeps p99 alone (no curve), and a
      // point's latency summary needs the whole distribution.
      r.mpps.runs.map((mpps, repeat) => ({ repeat, mpps })),
    )
  );
}

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
    return (ctx.quick ? QUICK : HEADLINE).length * ctx.repeats *
      (Math.max(ctx.durationMs, 300) + 600);
  },
  async run(ctx) {
    const seconds = Math.max(ctx.durationMs, 300) / 1000;
    const cases = ctx.quick ? QUICK : HEADLINE;
    let done = 0;
    const total = cases.length * ctx.repeats;
    const r = await schedBench({
      repeats: ctx.repeats,
      seconds,
      cases,
      log: (line) => {
        done++;
        ctx.progress({
          scenario: "scheduler",
          point: line.replace(/^repeat \S+ /, "").replace(/:.*/, ""),
          repeat: Math.ceil(done / cases.length),
          repeats: ctx.repeats,
          done,
          total,
        });
      },
    });
    return schedPoints(r.results, r.frameSize);
  },
};
