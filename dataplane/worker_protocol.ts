/**
 * What the scheduler and its Workers say to each other: the control words
 * in shared memory, the configuration a Worker starts with, and the
 * messages it posts. Its own module, so that importing the scheduler never
 * evaluates the Worker's main module (which takes over `onmessage`).
 *
 * @module
 */
import type { StageMode } from "./devmap.ts";
import type { LatencyShare } from "./latency.ts";
import type { InvalidReason, ReaderSpec } from "./poll_loop.ts";
import type { ProgramSpec } from "./program.ts";
import type { SourceSpec } from "./source.ts";

/** Control words in shared memory (Int32Array). */
export const Ctrl = { STOP: 0, FLUSHED: 1, COUNT: 2 } as const;

/** What a Worker is started with. */
export interface WorkerConfig {
  cpu: number;
  cpus: number;
  pin: boolean;
  sources: SourceSpec[];
  program: ProgramSpec;
  targets: number[];
  readers: ReaderSpec[];
  bulk: number;
  stageMode: StageMode;
  budget: number;
  deadlineNs: number;
  busyPollNs: number;
  latency: boolean;
  targetLatency: boolean;
  statusIntervalMs: number;
  modules: string[];
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  pass?: number;
  onProgramError: "drop" | "stop";
}

/** Messages a Worker posts. */
export type WorkerMessage =
  | { type: "loaded" }
  | {
    type: "ready";
    cpu: number;
    pinned: boolean;
    latency: LatencyShare[];
    /** Per device-map target (label `t<i>`), empty when not recorded. */
    targetLatency: LatencyShare[];
  }
  | { type: "error"; cpu: number; code: string; message: string }
  | { type: "programError"; cpu: number; message: string }
  | { type: "invalidVerdict"; cpu: number; reason: InvalidReason; message: string }
  | { type: "done"; cpu: number; targets: number[]; unstamped: number };
