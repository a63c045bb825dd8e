/**
 * The command line: `deno run -A mod.ts [command] [flags]`. Subcommands
 * are dispatched here; without one, the main job runs (see `run.ts`).
 *
 * @module
 */
import type * as Bench from "../../bench/main.ts";

/**
 * The benchmark, imported by a specifier Deno cannot read ahead of time:
 * Deno fetches every npm package a module graph names, dynamic imports
 * included, before the program starts, so a literal here would make the
 * main job's first run download esbuild (the report's bundler).
 */
const BENCH = "../../bench/main.ts";

/**
 * Run the command line; returns the exit status.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * const status = await main(["--help"]);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "forward") return await (await import("./forward.ts")).forwardMain(args.slice(1));
  if (args[0] === "switch") return await (await import("./switch.ts")).switchMain(args.slice(1));
  if (args[0] === "bench") {
    const { benchMain }: typeof Bench = await import(BENCH);
    return await benchMain(args.slice(1));
  }
  const { runMain } = await import("./run.ts");
  return await runMain(args);
}
