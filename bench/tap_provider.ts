/**
 * The TAP benchmark (bench/tap_bench.ts) as a provider: frames per second
 * into a real TAP with `write()` per frame (the baseline every Node/Deno TUN
 * library uses) beside io_uring batches, and the forwarder between two TAPs
 * in single and bulk mode. Needs root (CAP_NET_ADMIN) and /dev/net/tun;
 * without them it reports "not measured" and why.
 *
 * @module
 */
import type { BenchPoint, ResultEntry, ScenarioProvider } from "./points.ts";
import { pointFromRuns } from "./points.ts";
import { type Figure, tapBench } from "./tap_bench.ts";

function tapProblem(): string | undefined {
  try {
    if (!Deno.statSync("/dev/net/tun").isCharDevice) return "/dev/net/tun is not a device";
  } catch {
    return "no /dev/net/tun";
  }
  if (Deno.uid() !== 0) return "needs root (CAP_NET_ADMIN) to create TAP devices and namespaces";
  return undefined;
}

/** Convert TAP figures into harness points. */
export function tapPoints(into: Figure[], forward: Figure[]): BenchPoint[] {
  const out: BenchPoint[] = [];
  for (const f of into) {
    const m = f.name.match(/io_uring, (\d+) per submit/);
    out.push(pointFromRuns({
      provider: "tap",
      // One writer, two I/O modes: write() per frame (what every Node/Deno
      // TUN library does) is "single"; io_uring batches are "bulk".
      scenario: "into a TAP: write() per frame vs io_uring batches",
      impl: "bulktap TAP writer",
      ours: true,
      mode: m ? "bulk" : "single",
      bulk: m ? Number(m[1]) : 1,
      frameSize: 64,
    }, f.runs.map((mpps, repeat) => ({ repeat, mpps }))));
  }
  for (const f of forward) {
    const single = /single mode/.test(f.name);
    out.push(pointFromRuns({
      provider: "tap",
      scenario: "forwarder TAP A -> TAP B",
      impl: "bulktap forwarder",
      ours: true,
      mode: single ? "single" : "bulk",
      bulk: single ? 1 : 64,
      frameSize: 64,
    }, f.runs.map((mpps, repeat) => ({ repeat, mpps }))));
  }
  return out;
}

/**
 * The TAP provider.
 *
 * @example
 * ```ts ignore
 * import { tapProvider } from "./bench/tap_provider.ts";
 * console.log(tapProvider.name); // "tap"
 * ```
 */
export const tapProvider: ScenarioProvider = {
  name: "tap",
  title: "Real TAP devices: write() per frame vs io_uring batches; forwarder single vs bulk",
  estimateMs(ctx) {
    if (tapProblem()) return 0;
    const ms = ctx.quick ? 100 : Math.min(ctx.durationMs, 500);
    return (ctx.quick ? 3 : 5) * Math.max(5, ctx.repeats) * (ms + 20) + 4000;
  },
  async run(ctx): Promise<ResultEntry[]> {
    const problem = tapProblem();
    if (problem) {
      return [{
        measured: false,
        provider: "tap",
        impl: "TAP paths",
        reason: `not measured: ${problem}`,
      }];
    }
    const ms = ctx.quick ? 100 : Math.min(ctx.durationMs, 500);
    try {
      const r = await tapBench({ repeats: ctx.repeats, ms, intoOnly: ctx.quick });
      ctx.progress({
        scenario: "TAP",
        point: "all",
        repeat: ctx.repeats,
        repeats: ctx.repeats,
        done: 1,
        total: 1,
      });
      for (const f of r.forward) if (f.note) ctx.log(`tap: ${f.name}: ${f.note}`);
      return tapPoints(r.into, r.forward);
    } catch (e) {
      return [{
        measured: false,
        provider: "tap",
        impl: "TAP paths",
        reason: `not measured: ${(e as Error).message}`,
      }];
    }
  },
};
