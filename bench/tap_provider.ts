/**
 * The TAP benchmark (bench/tap_bench.ts) as a provider: frames per second
 * into a real TAP with `write()` per frame (the baseline every Node/Deno TUN
 * library uses) beside io_uring batches, and the forwarder between two TAPs
 * in single and bulk mode; then the end-to-end sitting (bench/tap_e2e.ts:
 * iperf3 and ping between two namespaces through the Linux bridge, DPDK
 * testpmd and `bulktap forward`). Needs root (CAP_NET_ADMIN) and
 * /dev/net/tun; without them it reports "not measured" and why.
 * `BULKTAP_BENCH_E2E=0` leaves the end-to-end sitting out (said on stderr).
 *
 * @module
 */
import {
  type BenchPoint,
  INTO_TAP,
  pointFromRuns,
  type ProviderContext,
  rawRunsOf,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";
import { type Figure, tapBench } from "./tap_bench.ts";
import { E2E, e2eEntries, e2eProblem, e2eTable, ROWS, runE2e } from "./tap_e2e.ts";

/** The end-to-end sitting's shape in this context: rounds, seconds per test, long test. */
export function e2ePlan(
  ctx: { quick: boolean },
): { rounds: number; seconds: number; long: boolean } {
  return ctx.quick
    ? { rounds: 1, seconds: 2, long: false }
    : { rounds: 3, seconds: 10, long: true };
}

function e2eSkipped(): boolean {
  try {
    return Deno.env.get("BULKTAP_BENCH_E2E") === "0";
  } catch {
    return false;
  }
}

/** Rough duration of the end-to-end sitting, ms. */
function e2eEstimateMs(ctx: { quick: boolean }): number {
  if (e2eSkipped() || e2eProblem()) return 0;
  const p = e2ePlan(ctx);
  // Per row and round: TCP and UDP tests, 1 s of pings, ~4 s of setup.
  const row = (2 * p.seconds + 1 + 4) * 1000;
  return ROWS.length * p.rounds * row + (p.long ? 2 * (60 + 5) * 1000 : 0);
}

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
  title: "Real TAP devices: write() per frame vs io_uring batches; forwarder single vs bulk; " +
    "end to end (iperf3, ping) through bulktap forward vs the Linux bridge and DPDK testpmd",
  estimateMs(ctx) {
    if (tapProblem()) return 0;
    const ms = ctx.quick ? 100 : Math.min(ctx.durationMs, 500);
    const runs = (ctx.quick ? 3 : 5) * ctx.frameSizes.length * ctx.repeats;
    return runs * (ms + 40) + (ctx.quick ? 1000 : 4000) + e2eEstimateMs(ctx);
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
    const out: ResultEntry[] = [];
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
      out.push(...tapPoints(r.into, r.forward));
    } catch (e) {
      out.push({
        measured: false,
        provider: "tap",
        impl: "TAP paths",
        reason: `not measured: ${(e as Error).message}`,
      });
    }
    out.push(...await e2e(ctx));
    return out;
  },
};

/** The end-to-end sitting as entries, or why it did not run. */
async function e2e(ctx: ProviderContext): Promise<ResultEntry[]> {
  if (e2eSkipped()) {
    ctx.log("BULKTAP_BENCH_E2E=0: the end-to-end sitting (iperf3, bridge, testpmd) was NOT run");
    return [];
  }
  const why = e2eProblem();
  if (why) {
    ctx.log(`end to end: NOT MEASURED: ${why}`);
    // Every row says so, bridge and testpmd included: none ran.
    return ROWS.map((r) => ({
      measured: false,
      provider: "tap",
      impl: r.label,
      scenario: E2E,
      reason: `not measured: ${why}`,
    }));
  }
  const plan = e2ePlan(ctx);
  const r = await runE2e({
    ...plan,
    log: ctx.log,
    progress: (row, round, done, total) =>
      ctx.progress({
        scenario: "TAP end to end",
        point: row,
        repeat: round + 1,
        repeats: plan.rounds,
        done,
        total,
      }),
  });
  for (const line of e2eTable(r).split("\n")) ctx.log(line);
  return e2eEntries(r);
}
