/**
 * The reader side of a device queue: non-blocking `poll`, an awaitable
 * `wait` that sleeps in the C library (off the event loop; all waiters of a
 * queue in one isolate share one sleeping thread, see waiter.ts), and an
 * async iterator of batches.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { BT_MAX_QUEUES, BT_MAX_SPIN_NS } from "../ffi/abi.ts";
import { Batch, batchRefs, setBatchCount } from "./batch.ts";
import { FrameStream } from "./frame_stream.ts";
import { checkCount, intIn, show, u32Arg, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno } from "./errors.ts";
import { describeRef } from "./pool.ts";
import { sleepBound, waitShared, type WaitSource, waitTimeout } from "./waiter.ts";

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
   * Longest single wait, in ms: an integer in 1..2147483647 (default 250);
   * anything else throws `EINVAL`. The reader wakes earlier when a
   * producer flushes, and at once when `signal` aborts.
   */
  sleepMs?: number;
  /**
   * When a read finds the queue empty, keep watching it for this many
   * microseconds before going to sleep: an integer in 0..1000 (default
   * {@linkcode DEFAULT_SPIN_US}: sleep at once). Busy polling's trade: a
   * reader that stays on its CPU a little longer is not put to sleep and
   * woken between bursts, at the price of that CPU time; between looks the
   * CPU is offered to any thread waiting for it, and an idle queue still
   * ends up asleep. For throughput it does not pay here: measured with the
   * api benchmark's 1 producer -> 1 reader, bulk 16, a 50 µs spin made the
   * reader take smaller batches (18 frames instead of 34-45) and moved 5 %
   * fewer frames.
   */
  spinUs?: number;
}

/**
 * How long `frames()` watches an empty queue before it sleeps, in µs, by
 * default: 0, sleep at once (see {@linkcode FramesOptions.spinUs}).
 *
 * @example
 * ```ts
 * import { DEFAULT_SPIN_US } from "./queue.ts";
 * console.log(DEFAULT_SPIN_US); // 0
 * ```
 */
export const DEFAULT_SPIN_US = 0;

/** Options for {@linkcode DeviceQueue.wait}. */
export interface WaitOptions {
  /** Stop waiting (resolve false) when this signal aborts. */
  signal?: AbortSignal;
}

/**
 * What the shared waits of queue `queue` of device `handle` sleep on (see
 * `waiter.ts`): every waiter of the queue in this isolate, whether a
 * `DeviceQueue`, a queue source or a scheduler Worker's reader, shares one
 * sleeping thread. The key holds the handle, whose generation changes when
 * a slot is reused.
 *
 * @example
 * ```ts
 * import { queueWaitSource } from "./queue.ts";
 * import { waitShared } from "./waiter.ts";
 * import { Device } from "./mod.ts";
 * using dev = new Device();
 * console.log(await waitShared(queueWaitSource(dev.handle, 0), 1)); // 0: timed out
 * ```
 */
export function queueWaitSource(handle: number, queue: number): WaitSource {
  return {
    key: `queue:${handle}:${queue}`,
    sleep: (ms, cancel) => library().bt_queue_wait_cancellable_async(handle, queue, ms, cancel),
    look: () => library().bt_queue_ready(handle, queue),
    kick: () => void library().bt_queue_kick(handle, queue),
  };
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
  // What every call hands to C: checked once, private so no assignment
  // can change them.
  #device: QueueOwner;
  #handle: number;
  #index: number;

  #source?: WaitSource;

  /** @internal Use `device.queue(i)`. */
  constructor(device: QueueOwner, index: number) {
    if (typeof device !== "object" || device === null || typeof device.assertOpen !== "function") {
      throw new BulktapError("EINVAL", `device is ${show(device)}, not a device`);
    }
    this.#handle = u32Arg(device.handle, "device handle");
    this.#index = intIn(index, 0, BT_MAX_QUEUES - 1, "queue index");
    this.#device = device;
  }

  /** The device. */
  get device(): QueueOwner {
    return this.#device;
  }

  /** Queue number. */
  get index(): number {
    return this.#index;
  }

  // What the shared waits of this queue sleep on (waiter.ts). The key
  // holds the handle, whose generation changes when a slot is reused.
  get #waitSource(): WaitSource {
    return this.#source ??= queueWaitSource(this.#handle, this.#index);
  }

  /**
   * Read up to `batch.capacity` frames without waiting. Frames still in the
   * batch from the previous read are returned to their pools first. Returns
   * the number read (0 if the queue is empty).
   */
  poll(batch: Batch): number {
    return this.#read(batch, 0);
  }

  // A read that watches an empty queue for up to spinNs first (0: none).
  #read(batch: Batch, spinNs: number): number {
    this.#device.assertOpen();
    const refs = batchRefs(batch);
    batch.release();
    // Lengths from the engine, not from `refs.length`: the array is handed
    // out by `batch.refs`, and an own `length` property could lie.
    const len = u32Length(refs, "batch refs");
    const n = spinNs === 0
      ? library().bt_queue_read(this.#handle, this.#index, refs, len, len)
      : library().bt_queue_read_spin(this.#handle, this.#index, refs, len, len, spinNs);
    if (n < 0) checkErrno(n, `read of queue ${this.#index} of device ${this.#handle}`);
    return setBatchCount(batch, n);
  }

  /**
   * Wait until the queue has frames (true), the timeout passes or
   * `options.signal` aborts (false), or the device closes (throws
   * `ENXIO`). The wait sleeps in the library on the queue's doorbell, off
   * the event loop, and is woken by a producer's flush; every waiter of
   * the queue (in any Worker) wakes. Waiters of one queue in one isolate
   * share one sleeping thread, so any number of them cannot exhaust
   * Deno's blocking pool. `timeoutMs` is an integer up to 2147483647; a
   * negative one waits forever (still ended by abort or close). Anything
   * else throws `EINVAL`.
   */
  async wait(timeoutMs = -1, options: WaitOptions = {}): Promise<boolean> {
    const t = waitTimeout("timeoutMs", timeoutMs);
    this.#device.assertOpen();
    const r = await waitShared(this.#waitSource, t, options.signal);
    return checkErrno(r, `wait on queue ${this.#index} of device ${this.#handle}`) > 0;
  }

  /**
   * Batches of frames as they arrive, until the device closes or `signal`
   * aborts. The batch object is reused; its frames are returned to their
   * pools when the loop asks for the next batch (call `batch.detach()` to
   * keep them).
   */
  frames(options: FramesOptions = {}): AsyncGenerator<Batch, void, undefined> {
    // Checked here, not at the first next(): a bad value fails the call.
    const sleepMs = sleepBound("sleepMs", options.sleepMs ?? 250);
    const spinNs = intIn(options.spinUs ?? DEFAULT_SPIN_US, 0, BT_MAX_SPIN_NS / 1000, "spinUs") *
      1000;
    return new FrameStream(
      (batch) => this.#read(batch, spinNs),
      new Batch(options.batchSize ?? 64),
      sleepMs,
      options.signal,
      this.#waitSource,
      (r) => checkErrno(r, `wait on queue ${this.#index} of device ${this.#handle}`) as never,
    );
  }

  /**
   * Hand the first `count` frames of `refs` back to the head of this queue,
   * in order, to be read again first. Frames that no longer fit go back to
   * their pool and are counted as dropped. Returns how many were requeued.
   * Throws `EINVAL` (taking nothing) if `count` does not fit `refs` or a
   * frame is not held.
   */
  unread(refs: Uint32Array, count?: number): number {
    this.#device.assertOpen();
    const what = `unread into queue ${this.#index} of device ${this.#handle}`;
    const len = u32Length(refs, `${what}: refs`);
    count ??= len;
    count = checkCount(count, len, what);
    const r = library().bt_queue_unread(this.#handle, this.#index, refs, len, count);
    if (r === -22) {
      for (let i = 0; i < count; i++) {
        if (library().bt_frame_check(refs[i]) !== 0) {
          throw new BulktapError("EINVAL", `unread: refs[${i}]: ${describeRef(refs[i])}`, r);
        }
      }
    }
    return checkErrno(
      r,
      `unread of ${count} frames into queue ${this.#index} of device ${this.#handle}`,
    );
  }

  /** Entries in the queue right now. */
  count(): number {
    this.#device.assertOpen();
    return checkErrno(
      library().bt_queue_count(this.#handle, this.#index),
      `count of queue ${this.#index} of device ${this.#handle}`,
    );
  }
}
