/**
 * The bulktap command: `deno run -A mod.ts [bench|forward] [flags]` (run
 * with `--help` for the flags). Without a subcommand it runs the main job.
 *
 * This module is the application, not the package: a program that uses
 * bulktap imports the package entry, `dataplane/mod.ts` (`"."` in
 * `deno.json`), whose module graph holds no command line, no benchmark
 * and no npm package besides what its own API needs. This module also
 * re-exports everything this repository's tests and benchmarks use: the
 * library, its latency and scheduler entries, the internals the tests
 * inspect, and the command line's own functions.
 *
 * @example
 * ```ts
 * import { Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * using dev = new Device({ pool });
 * const refs = new Uint32Array(4);
 * const n = pool.alloc(refs);
 * console.log(dev.xmit(refs, { count: n, flush: true })); // 4
 * ```
 *
 * @module
 */
export * from "./dataplane/mod.ts";
export * from "./dataplane/latency.ts";
export * from "./dataplane/poll_loop.ts";
export * from "./dataplane/scheduler.ts";
export { FrameState, META } from "./dataplane/pool.ts";
export { XMIT_FLUSH } from "./dataplane/device.ts";
export {
  parseRunArgs,
  RUN_HELP,
  runJob,
  runMain,
  type RunOptions,
  type RunResult,
  UsageError,
} from "./dataplane/cli/run.ts";

if (import.meta.main) {
  // No top-level await: a Worker or benchmark that imports this module
  // while the command runs must not wait for the command to finish.
  import("./dataplane/cli/main.ts")
    .then(({ main }) => main(Deno.args))
    .then((status) => Deno.exit(status));
}
