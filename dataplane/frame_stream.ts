/**
 * The batch stream behind `DeviceQueue.frames()` and `TapDevice.frames()`:
 * one loop for both kinds of queue.
 *
 * @module
 */
import type { Batch } from "./batch.ts";
import { BulktapError, codeForErrno } from "./errors.ts";
import { waitShared, type WaitSource } from "./waiter.ts";

/**
 * The iterator `frames()` returns, for device queues and TAP queues alike.
 * Not an async generator: when frames are waiting, `next()` reads them at once and
 * returns an already-settled promise, so a busy reader pays one `await` per
 * batch and no generator machinery. Only an empty queue takes the async
 * path (sleep on the doorbell, then read). Calls made while a wait is
 * pending run in order after it, as a generator's would.
 */
export class FrameStream implements AsyncGenerator<Batch, void, undefined> {
  #readInto: (batch: Batch) => number;
  #waitFailed: (r: number) => never;
  #batch: Batch;
  #sleepMs: number;
  #signal: AbortSignal | undefined;
  #source: WaitSource;
  #done = false;
  #pending: Promise<unknown> | undefined;

  /**
   * Batches read by `readInto` (returns frames read; `ENXIO` or `ECLOSED`
   * end the stream), sleeping on `source` at most `sleepMs` at a time when
   * nothing is waiting, until `signal` aborts. A wait that fails with
   * anything but `ENXIO` (closed: the end) is thrown by `waitFailed`.
   */
  constructor(
    readInto: (batch: Batch) => number,
    batch: Batch,
    sleepMs: number,
    signal: AbortSignal | undefined,
    source: WaitSource,
    waitFailed: (r: number) => never,
  ) {
    this.#readInto = readInto;
    this.#waitFailed = waitFailed;
    this.#batch = batch;
    this.#sleepMs = sleepMs;
    this.#signal = signal;
    this.#source = source;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.return();
  }

  next(): Promise<IteratorResult<Batch, void>> {
    if (this.#pending !== undefined) return this.#after(() => this.next());
    let r: IteratorResult<Batch, void> | null;
    try {
      r = this.#read();
    } catch (e) {
      return Promise.reject(e);
    }
    if (r !== null) return Promise.resolve(r);
    const p = this.#waitThenRead();
    this.#pending = p;
    const clear = () => {
      if (this.#pending === p) this.#pending = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  return(): Promise<IteratorResult<Batch, void>> {
    if (this.#pending !== undefined) return this.#after(() => this.return());
    this.#finish();
    return Promise.resolve({ done: true, value: undefined });
  }

  throw(e?: unknown): Promise<IteratorResult<Batch, void>> {
    if (this.#pending !== undefined) return this.#after(() => this.throw(e));
    this.#finish();
    return Promise.reject(e);
  }

  #after<T>(f: () => Promise<T>): Promise<T> {
    return this.#pending!.then(f, f);
  }

  /** The next batch, the end, or null when the queue is empty. */
  #read(): IteratorResult<Batch, void> | null {
    if (this.#done || this.#signal?.aborted) return this.#end();
    let n: number;
    try {
      n = this.#readInto(this.#batch);
    } catch (e) {
      if (e instanceof BulktapError && (e.code === "ENXIO" || e.code === "ECLOSED")) {
        return this.#end();
      }
      this.#finish();
      throw e;
    }
    return n > 0 ? { done: false, value: this.#batch } : null;
  }

  async #waitThenRead(): Promise<IteratorResult<Batch, void>> {
    for (;;) {
      const r = await waitShared(this.#source, this.#sleepMs, this.#signal);
      if (r < 0) {
        if (codeForErrno(r) === "ENXIO") return this.#end(); // device closed: end of stream
        this.#finish();
        this.#waitFailed(r);
      }
      const got = this.#read();
      if (got !== null) return got;
    }
  }

  #end(): IteratorResult<Batch, void> {
    this.#finish();
    return { done: true, value: undefined };
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#batch.release();
    } catch {
      // frames already gone with a closed pool
    }
  }
}
