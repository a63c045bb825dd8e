/**
 * The reader side of a device queue: non-blocking `poll`, an awaitable
 * `wait` that sleeps in the C library (off the event loop), and an async
 * iterator of batches.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { Batch, batchRefs, setBatchCount } from "./batch.ts";
import { checkCount, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno, codeForErrno } from "./errors.ts";
import { describeRef } from "./pool.ts";

/** The part of a device a queue reader needs. */
export interface QueueOwner {
  /** Library handle of the device. */
  readonly handle: number;
  /** Throws `ECLOSED` if the device object was closed. */
  assertOpen(): void;
}

/** Options for {@linkcode DeviceQueue.frames}. */
export interface FramesOptions {
  /** Frames per batch (default 64). */
  batchSize?: number;
  /** Stop iterating when this signal aborts. */
  signal?: AbortSignal;
  /**
   * Longest single sleep in the library, in ms (default 250). The reader
   * wakes earlier when a producer flushes; this only bounds how late an
   * abort is noticed.
   */
  sleepMs?: number;
}

/**
 * One queue of a device, seen by its reader.
 *
 * @example
 * ```ts
 * import { Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * const dev = new Device({ pool, queues: 1 });
 * const refs = new Uint32Array(8);
 * pool.alloc(refs);
 * dev.xmit(refs, { flush: true });
 * const reader = (async () => {
 *   let got = 0;
 *   for await (const batch of dev.queue(0).frames()) {
 *     got += batch.count; // frames are returned when the loop moves on
 *     if (got === 8) break;
 *   }
 *   return got;
 * })();
 * console.log(await reader); // 8
 * dev.close();
 * ```
 */
export class DeviceQueue {
  /** The device. */
  readonly device: QueueOwner;
  /** Queue number. */
  readonly index: number;

  /** @internal Use `device.queue(i)`. */
  constructor(device: QueueOwner, index: number) {
    this.device = device;
    this.index = index;
  }

  /**
   * Read up to `batch.capacity` frames without waiting. Frames still in the
   * batch from the previous read are returned to their pools first. Returns
   * the number read (0 if the queue is empty).
   */
  poll(batch: Batch): number {
    this.device.assertOpen();
    const refs = batchRefs(batch);
    batch.release();
    // Lengths from the engine, not from `refs.length`: the array is handed
    // out by `batch.refs`, and an own `length` property could lie.
    const len = u32Length(refs, "batch refs");
    const n = library().bt_queue_read(this.device.handle, this.index, refs, len, len);
    return setBatchCount(
      batch,
      checkErrno(n, `read of queue ${this.index} of device ${this.device.handle}`),
    );
  }

  /**
   * Wait until the queue has frames (true), the timeout passes (false), or
   * the device closes (throws `ENXIO`). The wait sleeps in the library on
   * the queue's eventfd, off the event loop, and is woken by a producer's
   * flush. A negative timeout waits forever.
   */
  async wait(timeoutMs = -1): Promise<boolean> {
    this.device.assertOpen();
    const r = await library().bt_queue_wait_async(
      this.device.handle,
      this.index,
      Math.max(-1, Math.min(0x7fffffff, Math.trunc(timeoutMs))),
    );
    return checkErrno(r, `wait on queue ${this.index} of device ${this.device.handle}`) > 0;
  }

  /**
   * Batches of frames as they arrive, until the device closes or `signal`
   * aborts. The batch object is reused; its frames are returned to their
   * pools when the loop asks for the next batch (call `batch.detach()` to
   * keep them).
   */
  async *frames(options: FramesOptions = {}): AsyncGenerator<Batch, void, undefined> {
    const batch = new Batch(options.batchSize ?? 64);
    const sleepMs = options.sleepMs ?? 250;
    try {
      while (!options.signal?.aborted) {
        let n: number;
        try {
          n = this.poll(batch);
        } catch (e) {
          if (e instanceof BulktapError && (e.code === "ENXIO" || e.code === "ECLOSED")) return;
          throw e;
        }
        if (n > 0) {
          yield batch;
          continue;
        }
        const r = await library().bt_queue_wait_async(this.device.handle, this.index, sleepMs);
        if (r < 0) {
          if (codeForErrno(r) === "ENXIO") return; // device closed: end of stream
          checkErrno(r, `wait on queue ${this.index} of device ${this.device.handle}`);
        }
      }
    } finally {
      try {
        batch.release();
      } catch {
        // frames already gone with a closed pool
      }
    }
  }

  /**
   * Hand the first `count` frames of `refs` back to the head of this queue,
   * in order, to be read again first. Frames that no longer fit go back to
   * their pool and are counted as dropped. Returns how many were requeued.
   * Throws `EINVAL` (taking nothing) if `count` does not fit `refs` or a
   * frame is not held.
   */
  unread(refs: Uint32Array, count?: number): number {
    this.device.assertOpen();
    const what = `unread into queue ${this.index} of device ${this.device.handle}`;
    const len = u32Length(refs, `${what}: refs`);
    count ??= len;
    checkCount(count, len, what);
    const r = library().bt_queue_unread(this.device.handle, this.index, refs, len, count);
    if (r === -22) {
      for (let i = 0; i < count; i++) {
        if (library().bt_frame_check(refs[i]) !== 0) {
          throw new BulktapError("EINVAL", `unread: refs[${i}]: ${describeRef(refs[i])}`, r);
        }
      }
    }
    return checkErrno(
      r,
      `unread of ${count} frames into queue ${this.index} of device ${this.device.handle}`,
    );
  }

  /** Entries in the queue right now. */
  count(): number {
    this.device.assertOpen();
    return checkErrno(
      library().bt_queue_count(this.device.handle, this.index),
      `count of queue ${this.index} of device ${this.device.handle}`,
    );
  }
}
