/**
 * The clock frames are stamped with: CLOCK_MONOTONIC nanoseconds, read in
 * the C library (one call per batch, never per frame).
 *
 * @module
 */
import { library } from "../ffi/lib.ts";

/**
 * CLOCK_MONOTONIC now, in nanoseconds, as a number (exact for 104 days of
 * uptime).
 *
 * @example
 * ```ts
 * import { nowNs } from "./mod.ts";
 * const t0 = nowNs();
 * console.log(nowNs() >= t0); // true
 * ```
 */
export function nowNs(): number {
  return Number(library().bt_now_ns());
}
