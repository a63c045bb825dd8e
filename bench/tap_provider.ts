/**
 * The TAP benchmark (bench/tap_bench.ts) as a provider: frames per second
 * into a real TAP with `write()` per frame (the baseline every Node/Deno TUN
 * library uses) beside io_uring batches, and the forwarder between two TAPs
 * in single and bulk mode. Needs root (CAP_NET_ADMIN) and /dev/net/tun;
 * without them it reports "not measured" and why.
 *
 * @module
 */
import {
  type BenchPoint,
  INTO_TAP,
  pointFromRuns,
  rawRunsOf,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";
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

/** Why the TAP scenarios cannot measure latency. */
export const TAP_NOT_APPLICABLE = {
  into: {
    latency: "frames end in the kernel (dropped by ethertype there); no reader in this " +
      "process sees them to timestamp",
  },
  forward: {
    latency: "the kernel generates and consumes the frames in other namespaces; nothing " +
      "timestamps both ends",
  },
};

/** Convert TAP figures into harness points. */
export function tapPoints(into: Figure[], forward: Figure[]): BenchPoint[] {
  const out: BenchPoint[] = [];
  for (const f of into) {
    out.push(pointFromRuns({
      provider: "tap",
      // One writer, two I/O modes: write() per frame (what every Node/Deno
      // TUN library does) is "single"; io_uring batches are "bulk".
      scenario: `${INTO_TAP}: write() per frame vs io_uring batches`,
      impl: "bulktap TAP writer",
      ours: true,
      mode: f.mode,
      bulk: f.bulk,
      frameSize: f.frameSize,
      notApplicable: TAP_NOT_APPLICABLE.into,
    }, rawRunsOf(f.raw)));
  }
  for (const f of forward) {
    out.push(pointFromRuns({
      provider: "tap",
      scenario: "forwarder TAP A -> TAP B (end to end; CPU includes the generator)",
      impl: "bulktap forwarder",
      ours: true,
      mode: f.mode,
      bulk: f.bulk,
      frameSize: f.frameSize,
      notApplicable: TAP_NOT_APPLICABLE.forward,
    }, rawRunsOf(f.raw)));
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
    const runs = (ctx.quick ? 3 : 5) * ctx.frameSizes.length * ctx.repeats;
    return runs * (ms + 40) + (ctx.quick ? 1000 : 4000);
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
    const total = (ctx.quick ? 3 : 5) * ctx.frameSizes.length * ctx.repeats;
    let done = 0;
    try {
      const r = await tapBench({
        repeats: ctx.repeats,
        ms,
        frameSizes: ctx.frameSizes,
        intoOnly: ctx.quick,
        onRun: (name, frameSize, repeat) =>
          ctx.progress({
            scenario: "TAP",
            point: `${name}, ${frameSize} B`,
            repeat: repeat + 1,
            repeats: ctx.repeats,
            done: ++done,
            total,
          }),
      });
      for (const f of r.forward) if (f.note) ctx.log(`${f.name}, ${f.frameSize} B: ${f.note}`);
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
