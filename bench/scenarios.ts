/**
 * The registry of benchmark providers `deno run -A mod.ts bench` runs, in
 * order. Adding a benchmark is one line here: a {@linkcode ScenarioProvider}
 * whose `run()` returns {@linkcode ResultEntry}s (see bench/points.ts).
 *
 * @module
 */
import { apiProvider } from "./api_provider.ts";
import { peersProvider } from "./peers.ts";
import type { ScenarioProvider } from "./points.ts";
import { ringProvider } from "./ring_provider.ts";
import { schedProvider } from "./sched_provider.ts";
import { tapProvider } from "./tap_provider.ts";

export type { ResultEntry, ScenarioProvider } from "./points.ts";

/**
 * Every provider, in run order.
 *
 * @example
 * ```ts
 * import { PROVIDERS } from "./bench/scenarios.ts";
 * console.log(PROVIDERS.map((p) => p.name).join(", "));
 * ```
 */
export const PROVIDERS: ScenarioProvider[] = [
  peersProvider, // C: bt_ring and public API beside DPDK rte_ring
  ringProvider, // C: bench/c/ring_bench.c, the real bt_xmit path
  apiProvider, // TypeScript API through Workers
  schedProvider, // scheduler: generator -> program -> device -> readers
  tapProvider, // real TAPs: write() per frame vs io_uring, forwarder
];
