/**
 * Programs used by the benchmarks (loaded by Workers through a
 * `ProgramSpec` with `module`).
 *
 * @module
 */
import { type Program, redirect } from "../dataplane/mod.ts";

/**
 * Spread frames round-robin over `targets` device-map entries.
 *
 * @example
 * ```ts
 * import { spread } from "./bench/programs.ts";
 * const program = spread({ targets: 4 });
 * ```
 */
export function spread(options: { targets?: number }): Program {
  const n = options.targets ?? 1;
  const verdicts = Uint32Array.from({ length: n }, (_, i) => redirect(i));
  let next = 0;
  return (b) => {
    for (let i = 0; i < b.count; i++) {
      b.verdicts[i] = verdicts[next];
      if (++next === n) next = 0;
    }
  };
}
