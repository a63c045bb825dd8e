/**
 * Pin the calling Worker's thread to one CPU, for the benchmarks'
 * placements.
 *
 * @module
 */
import { library } from "../../ffi/lib.ts";

/**
 * Pin this thread to `cpu` (nothing for -1). Returns the CPU it is pinned
 * to, or -1; throws if the kernel refuses.
 *
 * @example
 * ```ts ignore
 * import { pinThisThread } from "./bench/workers/pin.ts";
 * pinThisThread(0);
 * ```
 */
export function pinThisThread(cpu: number): number {
  if (cpu < 0) return -1;
  const r = library().bt_pin_thread(cpu);
  if (r !== 0) throw new Error(`bt_pin_thread(${cpu}) = ${r}`);
  return cpu;
}
