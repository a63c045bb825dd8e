/**
 * `forward A B --program NAME|PATH`: the forwarder with a TypeScript
 * program between the two TAPs instead of the C fast path. A `Scheduler`
 * runs one Worker per CPU; each reads its own queues of both TAPs (queue q
 * on CPU q % cpus), runs the program on every batch, and transmits into
 * queue `cpu % queues` of the target in bulks (one lock per bulk, flushed
 * at the end of each poll cycle). Frames are not copied between receive and
 * transmit.
 *
 * @module
 */
import type { BulktapError } from "../errors.ts";
import { UsageError } from "./flags.ts";
import type { ProgramSpec } from "../program.ts";
import type { SchedulerInvalidVerdict, SchedulerReport } from "../scheduler.ts";
import type { TapDevice } from "../tap.ts";
import {
  type InvalidCounts,
  programTotals,
  startPortProgram,
  targetLatencies,
  type TargetLatency,
} from "./tap_ports.ts";

/** The ready programs `--program` takes by name, for two ports. */
export const FORWARD_PROGRAMS = ["forward", "drop", "reflect", "l2switch"] as const;

/**
 * The program spec for `--program VALUE`: a ready program's name
 * (`forward` joins the two ports: A -> B and B -> A), or a module path or
 * URL with an optional `#export` (default `program`) naming a factory
 * `(options) => Program`.
 *
 * @example
 * ```ts ignore
 * import { programSpec } from "./forward_program.ts";
 * console.log(programSpec("forward")); // { name: "pair" }
 * ```
 */
export function programSpec(value: string): ProgramSpec {
  if (value === "forward") return { name: "pair" };
  if ((FORWARD_PROGRAMS as readonly string[]).includes(value)) return { name: value };
  if (!/[/.]/.test(value)) {
    throw new UsageError(
      `--program=${value} is neither a ready program (${FORWARD_PROGRAMS.join(", ")}) ` +
        "nor a module path (./firewall.ts, ./nat.ts#program)",
    );
  }
  const [path, name = "program"] = value.split("#");
  let url: URL;
  try {
    url = /^[a-z]+:/i.test(path) ? new URL(path) : new URL(path, `file://${Deno.cwd()}/`);
  } catch {
    throw new UsageError(`--program=${value}: ${path} is not a path or URL`);
  }
  return { name, module: url.href };
}

/** What a program run reports besides the TAP counters. */
export interface ProgramCounts {
  /** The program as given. */
  program: string;
  /** Worker threads ("CPUs"). */
  cpus: number;
  /** Frames read from both TAPs. */
  rx: number;
  /** Frames transmitted into a TAP. */
  sent: number;
  /** Frames a target's ring refused (returned to the pool, counted). */
  txDropped: number;
  /** Frames the program dropped. */
  programDrops: number;
  /** Frames with an invalid verdict or target (dropped, counted): the sum of `invalidByReason`. */
  invalid: number;
  /** The invalid verdicts by reason. */
  invalidByReason: InvalidCounts;
  /** The first invalid verdict of each reason on each Worker that met one. */
  invalidVerdicts: SchedulerInvalidVerdict[];
  /** Frames the program passed to the local stack (none here: dropped, counted). */
  passed: number;
  /** Frames dropped because the program threw on their batch. */
  thrown: number;
  /** The first error the program threw on each Worker that saw one. */
  programErrors: { cpu: number; message: string }[];
  /**
   * Per TAP (by name), the latency of the frames sent into it: receive
   * time to the write of their bulk.
   */
  latency: Record<string, TargetLatency>;
  /** Frames sent into A and into B. */
  toA: number;
  /** Frames sent into B. */
  toB: number;
}

/** A program running between two TAPs; `stop()` ends it and gives its counts. */
export interface RunningProgram {
  /** Stop the Workers (they flush what is staged) and return the final counts. */
  stop(): Promise<ProgramCounts>;
  /** The program's errors so far: the first of each Worker (it keeps running). */
  errors(): readonly { cpu: number; message: string }[];
  /** Its invalid verdicts so far: the first of each reason on each Worker. */
  invalidVerdicts(): readonly SchedulerInvalidVerdict[];
  /** After `stop()`: the first Worker's failure (a TAP deleted under it), if any. */
  failure(): BulktapError | undefined;
}

/**
 * Start `spec` between `a` and `b` on `cpus` Workers, reading and
 * staging `bulk` frames at a time, or one frame per read, program call
 * and transmit in single mode.
 *
 * @example
 * ```ts ignore
 * import { startProgram } from "./forward_program.ts";
 * const running = await startProgram(a, b, { name: "pair" }, "forward", 2, 64);
 * const counts = await running.stop();
 * ```
 */
export async function startProgram(
  a: TapDevice,
  b: TapDevice,
  spec: ProgramSpec,
  label: string,
  cpus: number,
  bulk: number,
  mode: "bulk" | "single" = "bulk",
): Promise<RunningProgram> {
  const sched = await startPortProgram([a, b], spec, cpus, bulk, mode);
  let failure: BulktapError | undefined;
  return {
    errors: () => sched.programErrors,
    invalidVerdicts: () => sched.invalidVerdicts,
    failure: () => failure,
    async stop(): Promise<ProgramCounts> {
      // A failed Worker ends the run; its counts are still reported.
      const report: SchedulerReport = await sched.close({ rethrow: false });
      failure = report.failure;
      const c = report.counters;
      return {
        program: label,
        cpus,
        ...programTotals(c),
        invalidVerdicts: [...sched.invalidVerdicts],
        passed: c.passed,
        programErrors: [...sched.programErrors],
        latency: targetLatencies(report, [a.name, b.name]),
        toA: report.targets[0]?.sent ?? 0,
        toB: report.targets[1]?.sent ?? 0,
      };
    },
  };
}
