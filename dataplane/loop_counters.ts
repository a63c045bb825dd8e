/**
 * The poll loop's counters: which counter is which, and the shared layout
 * that gives each loop (each scheduler Worker) its own pair of cache lines,
 * so no two loops write the same line.
 *
 * @module
 */
import { BulktapError } from "./errors.ts";

/**
 * Indexes into {@linkcode PollLoop.counters}.
 *
 * @example
 * ```ts
 * import { LoopCounter } from "./poll_loop.ts";
 * console.log(LoopCounter.READ); // 7
 * ```
 */
export const LoopCounter = {
  /** Frames taken from sources. */
  RX: 0,
  /** DROP verdicts. */
  DROP: 1,
  /** PASS verdicts (consumed by the loop, or staged to the PASS device). */
  PASS: 2,
  /** TX verdicts. */
  TX: 3,
  /** REDIRECT verdicts. */
  REDIRECT: 4,
  /** Extra frames made by BROADCAST (copies). */
  BROADCAST_COPIES: 5,
  /**
   * Frames dropped for an invalid verdict, all reasons: the sum of
   * {@linkcode LoopCounter.BAD_VERDICT}, {@linkcode LoopCounter.MISSING_TARGET}
   * and {@linkcode LoopCounter.NO_INGRESS}.
   */
  INVALID: 6,
  /** Frames consumed by local readers (latency recorded). */
  READ: 7,
  /** Poll cycles. */
  CYCLES: 8,
  /** Times the loop slept. */
  SLEEPS: 9,
  /** Flushes forced by the deadline before the end of a cycle. */
  DEADLINE_FLUSHES: 10,
  /** Frames the targets (and the PASS device, if any) accepted. */
  TX_SENT: 11,
  /** Frames the targets (and the PASS device, if any) refused (back in their pool). */
  TX_DROPPED: 12,
  /**
   * Longest any stage waited before its flush, ns: from the moment its
   * oldest frame's batch was taken (before the source's poll) to the flush.
   * A maximum, not a sum. The loop guarantees it is at most `deadlineNs`
   * plus {@linkcode LoopCounter.MAX_SOURCE_RUN_NS}: stages are flushed at
   * the end of every cycle, and before a source's turn once the deadline
   * has passed.
   */
  MAX_STAGE_AGE_NS: 13,
  /** Longest one source's turn took (poll, program, staging), ns. A maximum. */
  MAX_SOURCE_RUN_NS: 14,
  /**
   * Polls in which a generator's pool could not supply every frame due
   * (the sources' `poolEmpty`, summed). At a fixed rate the frames are made
   * late, not skipped.
   */
  POOL_EMPTY: 15,
  /**
   * `BROADCAST` copies not made (those targets missed the frame): the pool
   * was empty, or the ref names no frame the loop holds, or its metadata
   * was overwritten so that it cannot be copied.
   */
  BROADCAST_MISSED: 16,
  /** Frames dropped because the program threw on their batch (back in their pool). */
  THROWN: 17,
  /** Times the program threw. */
  PROGRAM_ERRORS: 18,
  /** Invalid: a verdict whose action is none of `Verdict`'s (dropped). */
  BAD_VERDICT: 19,
  /** Invalid: `REDIRECT` to a device-map index the map does not hold (dropped). */
  MISSING_TARGET: 20,
  /** Invalid: `TX` from a source without an ingress device in the map (dropped). */
  NO_INGRESS: 21,
  /** Number of counters. */
  COUNT: 22,
} as const;

/**
 * Why a verdict was invalid, in the order of their bits in
 * `PollLoop.invalidSeen`: an action that is none of `Verdict`'s, a
 * `REDIRECT` to an index the device map does not hold, a `TX` from a
 * source without an ingress device.
 */
export type InvalidReason = "badVerdict" | "missingTarget" | "noIngress";

/**
 * The invalid-verdict reasons, each with its counter; reason `i` is bit
 * `1 << i` of `PollLoop.invalidSeen`.
 *
 * @example
 * ```ts
 * import { INVALID_REASONS, LoopCounter } from "./loop_counters.ts";
 * console.log(INVALID_REASONS[1].reason, INVALID_REASONS[1].counter === LoopCounter.MISSING_TARGET); // missingTarget true
 * ```
 */
export const INVALID_REASONS: readonly { reason: InvalidReason; counter: number }[] = [
  { reason: "badVerdict", counter: LoopCounter.BAD_VERDICT },
  { reason: "missingTarget", counter: LoopCounter.MISSING_TARGET },
  { reason: "noIngress", counter: LoopCounter.NO_INGRESS },
];

// Hardware prefetchers fetch cache lines in pairs (Intel's adjacent-line
// prefetcher), so two Workers writing counters within one 128-byte block
// still bounce lines between cores; each block is 128-byte aligned and sized.
const LINE_PAIR = 128;

/**
 * Float64 slots of one loop's counter block in shared memory:
 * {@linkcode LoopCounter.COUNT} rounded up to a multiple of 128 bytes, so
 * no two Workers' counters share a cache line (or an adjacent-line pair).
 *
 * @example
 * ```ts
 * import { COUNTER_BLOCK } from "./poll_loop.ts";
 * console.log((COUNTER_BLOCK * 8) % 128); // 0
 * ```
 */
export const COUNTER_BLOCK = Math.ceil(LoopCounter.COUNT * 8 / LINE_PAIR) * LINE_PAIR / 8;

/**
 * Shared memory for the counter blocks of `loops` poll loops (one per
 * Worker), with room to align the first block to 128 bytes.
 *
 * @example
 * ```ts
 * import { counterBlock, counterBuffer } from "./poll_loop.ts";
 * const buf = counterBuffer(2);
 * console.log(counterBlock(buf, 1).length); // 22 (LoopCounter.COUNT)
 * ```
 */
export function counterBuffer(loops: number): SharedArrayBuffer {
  return new SharedArrayBuffer(loops * COUNTER_BLOCK * 8 + LINE_PAIR);
}

/**
 * Loop `i`'s counters in a {@linkcode counterBuffer}: a view that starts on
 * a 128-byte boundary of the memory (found from its address, which is the
 * same in every Worker sharing the buffer) and spans
 * {@linkcode LoopCounter.COUNT} slots of its {@linkcode COUNTER_BLOCK}.
 *
 * @example
 * ```ts
 * import { counterBlock, counterBuffer, LoopCounter } from "./poll_loop.ts";
 * const buf = counterBuffer(2);
 * counterBlock(buf, 1)[LoopCounter.RX] = 5;
 * console.log(counterBlock(buf, 0)[LoopCounter.RX], counterBlock(buf, 1)[LoopCounter.RX]); // 0 5
 * ```
 */
export function counterBlock(buf: SharedArrayBuffer, i: number): Float64Array {
  const addr = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(buf))));
  const base = (LINE_PAIR - addr % LINE_PAIR) % LINE_PAIR;
  if (base + (i + 1) * COUNTER_BLOCK * 8 > buf.byteLength) {
    throw new BulktapError("EINVAL", `counter block ${i} is beyond the buffer`);
  }
  return new Float64Array(buf, base + i * COUNTER_BLOCK * 8, LoopCounter.COUNT);
}
