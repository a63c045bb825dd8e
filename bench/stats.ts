/**
 * Summaries of repeated measurements: median with min and max.
 *
 * @module
 */

/** Median, min and max of repeats. */
export interface Spread {
  /** Median. */
  median: number;
  /** Smallest repeat. */
  min: number;
  /** Largest repeat. */
  max: number;
  /** Every repeat, in run order. */
  runs: number[];
}

/**
 * Summarise repeats.
 *
 * @example
 * ```ts
 * import { spread } from "./bench/stats.ts";
 * console.log(spread([3, 1, 2]).median); // 2
 * ```
 */
export function spread(runs: number[]): Spread {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs };
}

/** "12.34 (11.90-12.80)" */
export function fmtSpread(s: Spread, digits = 2): string {
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
}

/**
 * The order in which `n` cases (single first, then bulk sizes) run in
 * repeat `repeat`: as listed on even repeats, reversed on odd ones, so slow
 * drift of the machine hits every case alike.
 *
 * @example
 * ```ts
 * import { repeatOrder } from "./bench/stats.ts";
 * console.log(repeatOrder(3, 0), repeatOrder(3, 1)); // [ 0, 1, 2 ] [ 2, 1, 0 ]
 * ```
 */
export function repeatOrder(n: number, repeat: number): number[] {
  return Array.from({ length: n }, (_, k) => (repeat % 2 ? n - 1 - k : k));
}
