/**
 * A batch of frames read from a queue: refs in a reusable `Uint32Array`,
 * with accessors that reach each frame's pool without allocating.
 *
 * @module
 */
import { BulktapError } from "./errors.ts";
import { FramePool, freeFrames } from "./pool.ts";

/**
 * Frames read from a queue. The same object is refilled on every read, so
 * reading allocates nothing per frame or per batch. Frames in a batch are
 * held by the reader until {@linkcode Batch.release} (or the next read,
 * which releases whatever is left).
 *
 * @example
 * ```ts
 * import { Batch, Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * using dev = new Device({ pool, queues: 1 });
 * const refs = new Uint32Array(4);
 * pool.alloc(refs);
 * dev.xmit(refs);
 * const batch = new Batch(16);
 * dev.queue(0).poll(batch);
 * console.log(batch.count); // 4
 * batch.release();
 * ```
 */
export class Batch {
  /** Refs of the frames; the first {@linkcode Batch.count} are valid. */
  readonly refs: Uint32Array;
  /** Number of frames in the batch. */
  count = 0;

  /** A batch that holds up to `capacity` frames (1..65536). */
  constructor(capacity = 64) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65536) {
      throw new BulktapError("EINVAL", `batch capacity ${capacity} is not in 1..65536`);
    }
    this.refs = new Uint32Array(capacity);
  }

  /** Capacity of the batch. */
  get capacity(): number {
    return this.refs.length;
  }

  /** The pool of frame `i` (an array lookup; attaches on first sight). */
  pool(i: number): FramePool {
    return FramePool.of(this.refs[i]);
  }

  /** Data length of frame `i`. */
  length(i: number): number {
    const ref = this.refs[i];
    return FramePool.of(ref).length(ref);
  }

  /** View of frame `i`'s data (allocates a view; for convenience). */
  data(i: number): Uint8Array {
    const ref = this.refs[i];
    return FramePool.of(ref).data(ref);
  }

  /** Return every frame still in the batch to its pool; empties the batch. */
  release(): void {
    if (this.count === 0) return;
    const n = this.count;
    this.count = 0;
    freeFrames(this.refs, n);
  }

  /** Forget the frames without returning them: the caller took ownership. */
  detach(): void {
    this.count = 0;
  }
}
