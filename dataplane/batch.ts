/**
 * A batch of frames read from a queue: refs in a reusable `Uint32Array`,
 * with accessors that reach each frame's pool without allocating.
 *
 * @module
 */
import { intIn, show } from "./boundary.ts";
import { BulktapError } from "./errors.ts";
import { FramePool, freeFrames } from "./pool.ts";

// Set by Batch's static block: module-private access to its fields.
let internals: {
  refs: (b: Batch) => Uint32Array;
  setCount: (b: Batch, n: number) => number;
};

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
  #refs: Uint32Array;
  #capacity: number;
  #count = 0;

  static {
    internals = {
      refs: (b) => (#refs in b ? b.#refs : notBatch(b)),
      setCount: (b, n) => (b.#count = n),
    };
  }

  /** A batch that holds up to `capacity` frames (1..65536). */
  constructor(capacity = 64) {
    this.#capacity = intIn(capacity, 1, 65536, "batch capacity");
    this.#refs = new Uint32Array(this.#capacity);
  }

  /** Refs of the frames; the first {@linkcode Batch.count} are valid. */
  get refs(): Uint32Array {
    return this.#refs;
  }

  /** Number of frames in the batch. */
  get count(): number {
    return this.#count;
  }

  /**
   * Set the number of frames (e.g. after moving some out): a whole number
   * up to the capacity, `EINVAL` otherwise. The frames beyond it are then
   * the caller's to return.
   */
  set count(n: number) {
    this.#count = intIn(n, 0, this.#capacity, "batch count");
  }

  /** Capacity of the batch. */
  get capacity(): number {
    return this.#capacity;
  }

  /** The pool of frame `i` (an array lookup; attaches on first sight). */
  pool(i: number): FramePool {
    return FramePool.of(this.#refs[this.#at(i)]);
  }

  /** Data length of frame `i`. */
  length(i: number): number {
    const ref = this.#refs[this.#at(i)];
    return FramePool.of(ref).length(ref);
  }

  /** View of frame `i`'s data (allocates a view; for convenience). */
  data(i: number): Uint8Array {
    const ref = this.#refs[this.#at(i)];
    return FramePool.of(ref).data(ref);
  }

  #at(i: number): number {
    if (typeof i === "number" && Number.isInteger(i) && i >= 0 && i < this.#count) return i;
    throw new BulktapError("EINVAL", `frame ${show(i)} is not in the batch of ${this.#count}`);
  }

  /** Return every frame still in the batch to its pool; empties the batch. */
  release(): void {
    if (this.#count === 0) return;
    const n = this.#count;
    this.#count = 0;
    freeFrames(this.#refs, n); // freeFrames reads the array's true length
  }

  /** Forget the frames without returning them: the caller took ownership. */
  detach(): void {
    this.#count = 0;
  }
}

function notBatch(b: unknown): never {
  throw new BulktapError("EINVAL", `batch is ${show(b)}, not a Batch`);
}

/**
 * @internal For readers in this library: the batch's own refs array (not
 * what a reassigned or redefined `refs` property says), after checking `b`
 * is a {@linkcode Batch}.
 */
export function batchRefs(b: Batch): Uint32Array {
  return internals.refs(b);
}

/** @internal For readers in this library: set the count a read returned. */
export function setBatchCount(b: Batch, n: number): number {
  return internals.setCount(b, n);
}
