/**
 * The TypeScript API benchmark (bench/api_bench.ts) as a provider: generator
 * Workers -> in-memory device -> reader Workers, single-packet (`xmitOne`)
 * beside bulk (`xmit`), swept over every bulk size and frame size of the
 * run, each run beside the same job on a plain-TypeScript dataplane
 * (bench/plain_dataplane.ts), in every thread placement (producers and
 * readers on different CPUs, or all on one; `--quick`: apart only). Within
 * each repeat single and every bulk size run once, in an order that flips on
 * odd repeats, and bulktap and the peer alternate which goes first.
 *
 * @module
 */
import {
  APART,
  API_SCENARIOS,
  type ApiPoint,
  type ApiScenario,
  placementsFor,
  runApiBench,
} from "./api_bench.ts";
import { type BenchPoint, pointFromRuns, rawRunsOf, type ScenarioProvider } from "./points.ts";

/** Scenarios of a full run: the core issue's two, plus 2 producers on 2 queues. */
export const API_FULL_SCENARIOS: ApiScenario[] = [
  ...API_SCENARIOS,
  { name: "2 producers -> 2 queues -> 2 readers", producers: 2, queues: 2 },
];

/** Convert api_bench points into harness points, with every raw repeat. */
export function apiPoints(points: ApiPoint[]): BenchPoint[] {
  return points.map((p) =>
    pointFromRuns(
      {
        provider: "api",
        scenario: p.scenario,
        impl: p.impl,
        ours: p.ours,
        mode: p.mode,
        bulk: p.bulk,
        frameSize: p.frameSize,
      },
      rawRunsOf(p.runs),
    )
  );
}

/** The placements of a run: `--quick` measures producers and readers apart only. */
function placements(quick: boolean) {
  return quick ? [APART] : placementsFor(navigator.hardwareConcurrency);
}

/** Implementations per point: bulktap and the plain-TypeScript peer. */
const IMPLS = 2;

/** Per run: the duration, ~300 ms for Workers to load, ~100 ms teardown. */
const RUN_OVERHEAD_MS = 420;

/**
 * The API provider.
 *
 * @example
 * ```ts ignore
 * import { apiProvider } from "./bench/api_provider.ts";
 * console.log(apiProvider.name); // "api"
 * ```
 */
export const apiProvider: ScenarioProvider = {
  name: "api",
  title: "TypeScript API: producer Workers -> in-memory device -> reader Workers",
  estimateMs(ctx) {
    const scen = ctx.quick ? API_SCENARIOS.length : API_FULL_SCENARIOS.length;
    const runs = scen * placements(ctx.quick).length * IMPLS * ctx.frameSizes.length *
      (1 + ctx.bulks.length) * ctx.repeats;
    return runs * (ctx.durationMs + RUN_OVERHEAD_MS);
  },
  async run(ctx) {
    const scenarios = ctx.quick ? API_SCENARIOS : API_FULL_SCENARIOS;
    const places = placements(ctx.quick);
    const total = scenarios.length * places.length * ctx.frameSizes.length *
      (1 + ctx.bulks.length) * ctx.repeats;
    let done = 0;
    const points: ApiPoint[] = [];
    for (const frameSize of ctx.frameSizes) {
      for (const sc of scenarios) {
        points.push(
          ...await runApiBench({
            scenarios: [sc],
            placements: places,
            bulks: ctx.bulks,
            frameSize,
            repeats: ctx.repeats,
            durationMs: ctx.durationMs,
            progress: (ev) => {
              done++;
              ctx.progress({
                scenario: ev.scenario,
                point: `${frameSize} B, ${ev.mode === "bulk" ? `bulk-${ev.bulk}` : "single"}`,
                repeat: ev.repeat + 1,
                repeats: ctx.repeats,
                done,
                total,
              });
            },
          }),
        );
      }
    }
    return apiPoints(points);
  },
};
