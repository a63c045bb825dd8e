/**
 * The command line's summary table: named columns (measure, value, unit,
 * limit, verdict), aligned, each figure beside the limit it is judged
 * against and a plain verdict.
 *
 * @module
 */

/** One row: a measure, its value and unit, and optionally its limit and verdict. */
export interface Row {
  /** What is measured, e.g. `"frames read"`. */
  measure: string;
  /** The figure, already formatted. */
  value: string;
  /** Its unit (`"frames"`, `"us"`), or empty. */
  unit?: string;
  /** The limit it is judged against, with its unit, or empty. */
  limit?: string;
  /** What the figure means against the limit, in plain words, or empty. */
  verdict?: string;
}

const COLUMNS = ["measure", "value", "unit", "limit", "verdict"] as const;

/**
 * Render rows as an aligned table (`│` between columns; values right-aligned).
 *
 * @example
 * ```ts
 * import { table } from "./table.ts";
 * console.log(table([{ measure: "frames read", value: "1200", unit: "frames" }]));
 * ```
 */
export function table(rows: Row[]): string {
  const cells = rows.map((r) => COLUMNS.map((c) => r[c] ?? ""));
  const widths = COLUMNS.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (row: readonly string[]) =>
    "│ " +
    row.map((v, i) => (i === 1 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join(" │ ") +
    " │";
  const rule = (l: string, m: string, r: string) =>
    l + widths.map((w) => "─".repeat(w + 2)).join(m) + r;
  return [
    rule("┌", "┬", "┐"),
    line(COLUMNS),
    rule("├", "┼", "┤"),
    ...cells.map(line),
    rule("└", "┴", "┘"),
  ].join("\n");
}

/**
 * A duration in ns as a value and a unit (ns, us, ms).
 *
 * @example
 * ```ts
 * import { nsParts } from "./table.ts";
 * console.log(nsParts(13_700_000)); // ["13.70", "ms"]
 * ```
 */
export function nsParts(ns: number): [string, string] {
  if (ns >= 1e6) return [(ns / 1e6).toFixed(2), "ms"];
  if (ns >= 1e3) return [(ns / 1e3).toFixed(1), "us"];
  return [String(ns), "ns"];
}
