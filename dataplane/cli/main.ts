/**
 * The command line: `deno run -A mod.ts [command] [flags]`. Subcommands
 * are dispatched here; without one, the main job runs (see `run.ts`).
 *
 * @module
 */

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
    const { benchMain } = await import("../../bench/main.ts");
    return await benchMain(args.slice(1));
  }
  const { runMain } = await import("./run.ts");
  return await runMain(args);
}
