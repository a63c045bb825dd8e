/**
 * A TAP queue as a poll-loop source: what the kernel sends into one queue
 * of a TAP device, read a batch per FFI call (`bt_tap_rx`: io_uring batches
 * or `readv()`), each frame stamped with its receive time in C. The frames
 * read are the frames a program redirects: nothing is copied between
 * receive and transmit. An idle source sleeps on the queue's fd (a shared,
 * bounded wait: see `waiter.ts`) and wakes on traffic.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { BT_MAX_QUEUES } from "../ffi/abi.ts";
import { checkCount, intIn, show, u32Arg, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno, codeForErrno } from "./errors.ts";
import { registerSourceKind, type Source } from "./source.ts";
import { waitShared, type WaitSource, waitTimeout } from "./waiter.ts";

/** A TAP queue as a source (see {@linkcode TapSource}). */
export interface TapSourceSpec {
  /** The source kind: `"tap"`. */
  kind: "tap";
  /** The TAP device's handle (`TapDevice.handle`). */
  device: number;
  /** Queue to read (each Worker reads its own queues). */
  queue: number;
  /** Device-map index of this TAP, for `TX` and for a switch's learning (default -1). */
  ingress?: number;
  /** What messages call this source (default `tap(<handle>:<queue>)`), e.g. the interface name. */
  name?: string;
}

/**
 * What the shared waits of TAP queue `queue` sleep on: the queue's fd
 * turning readable (and the pool having a frame to read into). The C wait
 * looks at its cancel word every 50 ms, since a TAP fd cannot be woken from
 * outside; so `kick` has nothing to do.
 *
 * @example
 * ```ts ignore
 * import { tapWaitSource } from "./tap_source.ts";
 * import { waitShared } from "./waiter.ts";
 * import { TapDevice } from "./mod.ts";
 * using tap = new TapDevice({ name: "bt0" });
 * console.log(await waitShared(tapWaitSource(tap.handle, 0), 100)); // 0: nothing came
 * ```
 */
export function tapWaitSource(handle: number, queue: number): WaitSource {
  return {
    key: `tap:${handle}:${queue}`,
    sleep: (ms, cancel) => library().bt_tap_rx_wait_cancellable_async(handle, queue, ms, cancel),
    look: () => library().bt_tap_rx_wait(handle, queue, 0),
    kick: () => {},
  };
}

/**
 * Frames the kernel sends into one TAP queue, as a poll-loop source. A
 * deleted TAP ends the source with `ENODEV` (the loop stops with it); a
 * queue a C forwarder already reads fails with `EBUSY`.
 *
 * @example
 * ```ts ignore
 * import { PollLoop, TapDevice, TapSource, forward } from "./mod.ts";
 * using a = new TapDevice({ name: "bta" });
 * using b = new TapDevice({ name: "btb" });
 * const loop = new PollLoop({
 *   sources: [new TapSource({ kind: "tap", device: a.handle, queue: 0, ingress: 0 })],
 *   program: forward(1),
 *   targets: [a, b],
 * });
 * loop.cycle(); // what the kernel sent into bta goes out of btb
 * loop.close();
 * ```
 */
export class TapSource implements Source {
  /** For status and errors. */
  readonly name: string;
  /** Device-map index of this TAP, or -1. */
  readonly ingress: number;
  readonly #dev: number;
  readonly #queue: number;
  readonly #waits: WaitSource;
  #lib = library();

  /** A reader of queue `spec.queue` of the TAP device `spec.device`. */
  constructor(spec: TapSourceSpec) {
    if (typeof spec !== "object" || spec === null) {
      throw new BulktapError("EINVAL", "a TAP source spec must be an object");
    }
    this.#dev = u32Arg(spec.device, "TAP source device");
    this.#queue = intIn(spec.queue, 0, BT_MAX_QUEUES - 1, "TAP source queue");
    this.ingress = intIn(spec.ingress ?? -1, -1, 0x7fffffff, "TAP source ingress");
    const name = spec.name ?? `tap(${this.#dev}:${this.#queue})`;
    if (typeof name !== "string" || name.length === 0 || name.length > 64) {
      throw new BulktapError("EINVAL", `TAP source name ${show(name)} is not a string of 1..64`);
    }
    this.name = name;
    // Fails now (ENXIO, EINVAL for a queue it lacks, ENODEV) rather than
    // on the first poll: a zero-timeout look at the queue.
    const r = this.#lib.bt_tap_rx_wait(this.#dev, this.#queue, 0);
    if (r < 0) this.#fail(r);
    this.#waits = tapWaitSource(this.#dev, this.#queue);
  }

  /** Read up to `max` frames the kernel sent (one FFI call); 0 when none are waiting. */
  poll(refs: Uint32Array, max: number): number {
    const len = u32Length(refs, `${this.name}: refs`);
    max = checkCount(max, len, `${this.name}: poll`);
    const n = this.#lib.bt_tap_rx(this.#dev, this.#queue, refs, len, max);
    return n >= 0 ? n : this.#fail(n);
  }

  /** Only a wake-up says when frames come. */
  readyAtNs(): number {
    return Infinity;
  }

  /** Resolves when the kernel has sent frames into the queue, or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<unknown> {
    return waitShared(this.#waits, waitTimeout("timeoutMs", timeoutMs));
  }

  /** Holds nothing between polls. */
  close(): void {}

  #fail(r: number): never {
    const code = codeForErrno(r);
    if (code === "EBUSY") {
      throw new BulktapError("EBUSY", `${this.name}: a forwarder already reads this queue`, r);
    }
    if (code === "EINVAL") {
      throw new BulktapError("EINVAL", `${this.name}: the TAP has no queue ${this.#queue}`, r);
    }
    if (code === "ENODEV" || code === "EBADFD" || code === "EIO") {
      throw new BulktapError("ENODEV", `${this.name}: the TAP is gone (deleted while in use?)`, r);
    }
    return checkErrno(r, `${this.name}`) as never;
  }
}

registerSourceKind("tap", (spec) => new TapSource(spec as unknown as TapSourceSpec));
