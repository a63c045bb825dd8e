/**
 * Verdicts: what a program decides for each frame, one `Uint32Array` word
 * per frame. The low 8 bits are the action; for `REDIRECT` the high 24 bits
 * are the device-map index of the target.
 *
 * @module
 */
import { show } from "./boundary.ts";
import { BulktapError } from "./errors.ts";

/**
 * The actions a program can give a frame.
 *
 * @example
 * ```ts
 * import { Verdict } from "./mod.ts";
 * console.log(Verdict.PASS); // 1
 * ```
 */
export const Verdict = {
  /** Return the frame to its pool, counted as a program drop. */
  DROP: 0,
  /**
   * Hand the frame to the local reader of the Worker that ran the program.
   * By default the poll loop is that reader: it records the frame's latency
   * and returns it to its pool. Give the loop (or scheduler) a `pass`
   * device to receive PASS frames yourself, in bulk, on its queues.
   */
  PASS: 1,
  /** Send the frame back out of the device it came from (its source's ingress). */
  TX: 2,
  /** Send the frame to a device-map index: write `redirect(index)`, not this. */
  REDIRECT: 3,
  /** Send a copy of the frame to every device-map entry except its ingress (flooding). */
  BROADCAST: 4,
} as const;

/** One of the {@linkcode Verdict} actions. */
export type VerdictAction = (typeof Verdict)[keyof typeof Verdict];

/**
 * Largest device-map index a verdict can carry.
 *
 * @example
 * ```ts
 * import { MAX_REDIRECT_INDEX } from "./mod.ts";
 * console.log(MAX_REDIRECT_INDEX); // 16777215
 * ```
 */
export const MAX_REDIRECT_INDEX = 0xffffff;

/**
 * The verdict word for "send to device-map index `index`".
 *
 * @example
 * ```ts
 * import { redirect, verdictAction, verdictTarget, Verdict } from "./mod.ts";
 * const v = redirect(5);
 * console.log(verdictAction(v) === Verdict.REDIRECT, verdictTarget(v)); // true 5
 * ```
 */
export function redirect(index: number): number {
  if (
    !(typeof index === "number" && Number.isInteger(index) && index >= 0 &&
      index <= MAX_REDIRECT_INDEX)
  ) {
    throw new BulktapError(
      "EINVAL",
      `redirect(${show(index)}): a device-map index is a whole number in 0..${MAX_REDIRECT_INDEX}`,
    );
  }
  return ((index & MAX_REDIRECT_INDEX) << 8 | Verdict.REDIRECT) >>> 0;
}

/**
 * The action of a verdict word.
 *
 * @example
 * ```ts
 * import { verdictAction, Verdict } from "./mod.ts";
 * console.log(verdictAction(Verdict.TX)); // 2
 * ```
 */
export function verdictAction(v: number): number {
  if (typeof v !== "number") notVerdict(v);
  return v & 0xff;
}

/**
 * The device-map index of a `REDIRECT` verdict word.
 *
 * @example
 * ```ts
 * import { redirect, verdictTarget } from "./mod.ts";
 * console.log(verdictTarget(redirect(2))); // 2
 * ```
 */
export function verdictTarget(v: number): number {
  if (typeof v !== "number") notVerdict(v);
  return v >>> 8;
}

function notVerdict(v: unknown): never {
  throw new BulktapError("EINVAL", `${show(v)} is not a verdict word (a number)`);
}
