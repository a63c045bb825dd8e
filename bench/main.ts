/**
 * `deno run -A mod.ts bench`: placeholder until the benchmark suite lands.
 *
 * @module
 */

/** Run the benchmarks; returns the exit status. */
export function benchMain(_args: string[]): Promise<number> {
  console.error("bulktap bench: not implemented yet");
  return Promise.resolve(1);
}
