/**
 * The TypeScript API benchmark (bench/api_bench.ts) as a provider: generator
 * Workers -> in-memory device -> reader Workers, single-packet (`xmitOne`)
 * beside bulk (`xmit`), swept over bulk and frame sizes.
 *
 * Every `runApiBench` call measures single and one bulk size, alternating
 * them repeat by repeat. Single mode does not depend on the bulk size, so
 * its repeats from every call of a frame size are pooled into one point
 * (more repeats, each taken right beside a bulk repeat).
 *
 * @module
 */
import { API_SCENARIOS, type ApiPoint, type ApiScenario, runApiBench } from "./api_bench.ts";
import { type BenchPoint, pointFromRuns, type RawRun, type ScenarioProvider } from "./points.ts";

/** Scenarios of a full run: the core issue's two, plus 2 producers on 2 queues. */
export const API_FULL_SCENARIOS: ApiScenario[] = [
  ...API_SCENARIOS,
  { name: "2 producers -> 2 queues -> 2 readers", producers: 2, queues: 2 },
];

/** Bulk sizes swept at a frame size: the whole sweep at 64 B, the headline bulk elsewhere. */
export function apiBulks(bulks: number[], frameSize: number, quick: boolean): number[] {
  if (quick || frameSize === 64) return bulks;
  return bulks.includes(16) ? [16] : [Math.max(...bulks)];
}

/** Convert api_bench points (per bulk call) into harness points. */
export function apiPoints(calls: ApiPoint[][]): BenchPoint[] {
  const single = new Map<string, { p: ApiPoint; runs: RawRun[] }>();
  const out: BenchPoint[] = [];
  const toRuns = (p: ApiPoint, offset: number): RawRun[] =>
    p.mpps.runs.map((mpps, i) => ({
      repeat: offset + i,
      mpps,
      dropShare: p.dropShare.runs[i],
    }));
  for (const points of calls) {
    for (const p of points) {
      const key = {
        provider: "api",
        scenario: p.scenario,
        impl: "bulktap TS API",
        ours: true,
        mode: p.mode,
        bulk: p.bulk,
        frameSize: p.frameSize,
        locksPerFrame: p.locksPerFrame,
        wakeupsPerFrame: p.wakeupsPerFrame,
      };
      if (p.mode === "bulk") {
        out.push(pointFromRuns(key, toRuns(p, 0)));
      } else {
        const k = `${p.scenario}\0${p.frameSize}`;
        const acc = single.get(k) ?? { p, runs: [] };
        acc.runs.push(...toRuns(p, acc.runs.length));
        single.set(k, acc);
      }
    }
  }
  for (const { p, runs } of single.values()) {
    out.push(pointFromRuns({
      provider: "api",
      scenario: p.scenario,
      impl: "bulktap TS API",
      ours: true,
      mode: "single",
      bulk: 1,
      frameSize: p.frameSize,
      locksPerFrame: p.locksPerFrame,
      wakeupsPerFrame: p.wakeupsPerFrame,
    }, runs));
  }
  return out;
}

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
    let calls = 0;
    for (const fs of ctx.frameSizes) calls += apiBulks(ctx.bulks, fs, ctx.quick).length;
    // Per run: the duration, ~300 ms for Workers to load, ~100 ms teardown.
    return calls * scen * 2 * ctx.repeats * (ctx.durationMs + 420);
  },
  async run(ctx) {
    const scenarios = ctx.quick ? API_SCENARIOS : API_FULL_SCENARIOS;
    const calls: ApiPoint[][] = [];
    const plan: { frameSize: number; bulk: number }[] = [];
    for (const frameSize of ctx.frameSizes) {
      for (const bulk of apiBulks(ctx.bulks, frameSize, ctx.quick)) plan.push({ frameSize, bulk });
    }
    const total = plan.length * scenarios.length * 2 * ctx.repeats;
    let done = 0;
    for (const { frameSize, bulk } of plan) {
      for (const sc of scenarios) {
        let r = 0;
        calls.push(
          await runApiBench({
            scenarios: [sc],
            bulk,
            frameSize,
            repeats: ctx.repeats,
            durationMs: ctx.durationMs,
            progress: (msg) => {
              done++;
              r++;
              ctx.progress({
                scenario: sc.name,
                point: `${frameSize} B, ${msg.includes(" bulk ") ? `bulk-${bulk}` : "single"}`,
                repeat: Math.ceil(r / 2),
                repeats: ctx.repeats,
                done,
                total,
              });
            },
          }),
        );
      }
    }
    return apiPoints(calls);
  },
};
