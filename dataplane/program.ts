/**
 * Packet programs: a TypeScript function over a batch of frames that writes
 * one verdict per frame. The scheduler calls it once per batch; it must not
 * allocate or call into the library per frame.
 *
 * @module
 */

/**
 * What a program sees: a batch of held frames and the array it writes its
 * verdicts into. The object is reused for every batch of a Worker.
 */
export interface PacketBatch {
  /** Frame refs; the first {@linkcode PacketBatch.count} are valid. */
  readonly refs: Uint32Array;
  /** Number of frames in the batch. */
  count: number;
  /** One verdict word per frame (see `Verdict` and `redirect`). Pre-filled with DROP. */
  readonly verdicts: Uint32Array;
  /** Device-map index of the device the frames came from, -1 if none (a generator). */
  ingress: number;
  /** CLOCK_MONOTONIC ns when the batch was taken from its source. */
  nowNs: number;
  /** Number of device-map entries (valid `redirect` indexes are 0..targets-1). */
  targets: number;
}

/**
 * A packet program. Read frame bytes with `FramePool.of(ref)` and the
 * helpers in `headers.ts`; write `batch.verdicts[i]` for each frame.
 *
 * @example
 * ```ts
 * import { type Program, redirect, Verdict } from "./mod.ts";
 * const evenOdd: Program = (batch) => {
 *   for (let i = 0; i < batch.count; i++) {
 *     batch.verdicts[i] = batch.refs[i] & 1 ? Verdict.DROP : redirect(0);
 *   }
 * };
 * ```
 */
export type Program = (batch: PacketBatch) => void;

/**
 * How a Worker finds a program: a ready program by name (`forward`, `pair`, `drop`,
 * `reflect`, `l2switch`), or the export of a module that builds one from
 * `options` (`(options) => Program`). Programs cannot cross to Workers as
 * functions, so they cross as this description.
 */
export interface ProgramSpec {
  /** Name of a ready program, or of the module's export. */
  name: string;
  /** URL of a module exporting `name` as a program factory; omit for ready programs. */
  module?: string;
  /** Options handed to the factory (structured-cloneable). */
  options?: Record<string, unknown>;
}
