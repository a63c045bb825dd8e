/**
 * Multi-queue devices and bulk transmit. A device has 1..256 queues; `xmit`
 * picks one queue per call (`cpu % queues`), takes its lock once, enqueues
 * as many frames as fit, returns the rest to their pool counted as dropped,
 * and returns how many it accepted.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import * as abi from "../ffi/abi.ts";
import { BT_MAX_BULK, BT_XMIT_FLUSH } from "../ffi/abi.ts";
import { arrayLength, checkCount, show, u32Arg, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno, codeForErrno } from "./errors.ts";
import { describeRef, FramePool } from "./pool.ts";
import { DeviceQueue } from "./queue.ts";

/** The library's flag for "wake the reader" (`BT_XMIT_FLUSH`). */
export const XMIT_FLUSH: number = BT_XMIT_FLUSH;
/**
 * Largest bulk one `xmit` call accepts.
 *
 * @example
 * ```ts
 * import { MAX_BULK } from "./mod.ts";
 * console.log(MAX_BULK); // 256
 * ```
 */
export const MAX_BULK: number = BT_MAX_BULK;

/** Options for a new in-memory {@linkcode Device}. */
export interface DeviceOptions {
  /** The device's pool; copied frames land here. Default: a new pool of 4096 frames. */
  pool?: FramePool;
  /** Number of queues, 1..256 (default 1). */
  queues?: number;
  /** Slots per queue ring, 2..65536 (default 1024). */
  ringSize?: number;
  /**
   * Default CPU number for queue choice: `cpu % queues`. Default: the
   * calling thread's CPU (`sched_getcpu()`), as the kernel does. Give each
   * Worker its own number to make it one "CPU".
   */
  cpu?: number;
}

/** Per-call transmit options. Hoist the object out of hot loops. */
export interface XmitOptions {
  /** Frames to send from the start of the array (default: all of it). */
  count?: number;
  /** Ring the doorbell: wake the queue's reader if it sleeps. */
  flush?: boolean;
  /** CPU for queue choice, overriding the device's default. */
  cpu?: number;
}

/** A snapshot of a device's counters (summed over threads and queues). */
export interface DeviceStats {
  /** Frames accepted into queues. */
  txPackets: number;
  /** Bytes of data accepted. */
  txBytes: number;
  /** Frames not accepted (ring full) and returned to their pool. */
  txDropped: number;
  /** Calls to xmit (bulks). */
  xmitCalls: number;
  /** Doorbells rung. */
  flushes: number;
  /** Doorbells that woke a sleeping reader (one syscall each). */
  wakeupsSent: number;
  /** Doorbells that found the reader busy (no syscall). */
  wakeupsAvoided: number;
  /** Producer lock acquisitions (one per xmit call, dropped bulks included). */
  lockAcquisitions: number;
  /** Frames read by readers. */
  rxPackets: number;
  /** Bytes read by readers. */
  rxBytes: number;
  /** Non-empty reads. */
  rxBatches: number;
  /** Times a reader announced it would sleep. */
  rxSleeps: number;
  /** Frames lost on the reader side (copies with no free frame, unread overflow). */
  rxDropped: number;
  /** Frames sitting in the queues now. */
  queued: number;
  /**
   * Producer lock acquisitions that found the lock held by another thread
   * (they spun, and maybe parked). 0 while every queue has one producer.
   */
  lockContended: number;
  /** Of those, the ones that had to sleep on the lock's futex. */
  lockParks: number;
}

/** Where each counter sits in `bt_dev_stats`' output (enum bt_dev_stat, from the header). */
const STAT_INDEX: Record<keyof DeviceStats, number> = {
  txPackets: abi.BT_DS_TX_PACKETS,
  txBytes: abi.BT_DS_TX_BYTES,
  txDropped: abi.BT_DS_TX_DROPPED,
  xmitCalls: abi.BT_DS_XMIT_CALLS,
  flushes: abi.BT_DS_FLUSHES,
  wakeupsSent: abi.BT_DS_WAKEUPS_SENT,
  wakeupsAvoided: abi.BT_DS_WAKEUPS_AVOIDED,
  lockAcquisitions: abi.BT_DS_LOCK_ACQUISITIONS,
  rxPackets: abi.BT_DS_RX_PACKETS,
  rxBytes: abi.BT_DS_RX_BYTES,
  rxBatches: abi.BT_DS_RX_BATCHES,
  rxSleeps: abi.BT_DS_RX_SLEEPS,
  rxDropped: abi.BT_DS_RX_DROPPED,
  queued: abi.BT_DS_QUEUED,
  lockContended: abi.BT_DS_LOCK_CONTENDED,
  lockParks: abi.BT_DS_LOCK_PARKS,
};
const STAT_KEYS = Object.keys(STAT_INDEX) as (keyof DeviceStats)[];

/**
 * @internal Marks the constructor call made by {@linkcode Device.attach}, or
 * by a subclass that opened the device itself (`owner`: close it on close;
 * `pool`: the pool object to use, `ownsPool`: close that pool too).
 */
export class AttachToken {
  constructor(
    readonly handle: number,
    readonly cpu: number,
    readonly owner = false,
    readonly pool?: FramePool,
    readonly ownsPool = false,
  ) {}
}

/**
 * An in-memory multi-queue device: a TAP device without the kernel.
 *
 * @example
 * ```ts
 * import { Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 256 });
 * using dev = new Device({ pool, queues: 2 });
 * const refs = new Uint32Array(16);
 * const n = pool.alloc(refs);
 * for (let i = 0; i < n; i++) pool.setLength(refs[i], 64);
 * const sent = dev.xmit(refs, { count: n, flush: true, cpu: 0 });
 * console.log(sent, dev.stats().txPackets); // 16 16
 * ```
 */
export class Device implements Disposable {
  #handle: number;
  #nqueues: number;
  #ringSize: number;
  #pool: FramePool;
  #cpu: number;
  #owner: boolean;
  #ownsPool: boolean;
  #closed = false;
  #queues: DeviceQueue[] = [];
  #one = new Uint32Array(1);
  // What xmit names in its messages, built once.
  #xmitWhat = "";
  #xmitFrames = "";
  #xmitOneRef = "";

  /** Create an in-memory device. */
  constructor(options?: DeviceOptions);
  /** @internal Attach to an existing device; use {@linkcode Device.attach}. */
  constructor(options: DeviceOptions | undefined, attach: AttachToken);
  constructor(options: DeviceOptions = {}, attach?: AttachToken) {
    let h: number;
    // The pool this constructor created (or was given): the device keeps
    // that object, so closing it destroys a pool the device made.
    let created: FramePool | undefined;
    if (attach) {
      h = u32Arg(attach.handle, "device handle");
      this.#owner = attach.owner;
      this.#ownsPool = attach.ownsPool;
      this.#cpu = Device.#checkCpu(attach.cpu);
    } else {
      if (typeof options !== "object" || options === null) {
        throw new BulktapError("EINVAL", `device options are ${show(options)}, not an object`);
      }
      if (options.pool !== undefined && !(options.pool instanceof FramePool)) {
        throw new BulktapError("EINVAL", `pool is ${show(options.pool)}, not a FramePool`);
      }
      const cpu = Device.#checkCpu(options.cpu ?? -1);
      const queues = options.queues ?? 1;
      const ringSize = options.ringSize ?? 1024;
      if (!Number.isInteger(queues) || queues < 1 || queues > abi.BT_MAX_QUEUES) {
        throw new BulktapError("EINVAL", `queues=${queues} is not in 1..${abi.BT_MAX_QUEUES}`);
      }
      if (
        !Number.isInteger(ringSize) || ringSize < abi.BT_MIN_RING || ringSize > abi.BT_MAX_RING
      ) {
        throw new BulktapError(
          "EINVAL",
          `ringSize=${ringSize} is not in ${abi.BT_MIN_RING}..${abi.BT_MAX_RING}`,
        );
      }
      this.#ownsPool = options.pool === undefined;
      const pool = options.pool ?? new FramePool();
      if (pool.closed) throw new BulktapError("ECLOSED", `pool ${pool.handle} was closed`);
      h = library().bt_dev_create(pool.handle, queues, ringSize);
      if (h < 0) {
        if (this.#ownsPool) pool.close();
        checkErrno(h, `creating a device with ${queues} queues of ${ringSize} slots`);
      }
      this.#owner = true;
      this.#cpu = cpu;
      created = pool;
    }
    const info = new BigUint64Array(3);
    checkErrno(library().bt_dev_info(h, info, 3), `info of device ${h}`);
    this.#handle = h;
    this.#xmitWhat = `xmit on device ${h}`;
    this.#xmitFrames = `xmit on device ${h}: frames`;
    this.#xmitOneRef = `xmitOne on device ${h}: ref`;
    this.#nqueues = Number(info[0]);
    this.#ringSize = Number(info[1]);
    this.#pool = attach ? (attach.pool ?? FramePool.attach(Number(info[2]))) : created!;
    for (let i = 0; i < this.#nqueues; i++) this.#queues.push(new DeviceQueue(this, i));
  }

  static #checkCpu(cpu: number): number {
    if (typeof cpu !== "number" || !Number.isInteger(cpu) || cpu < -1 || cpu > 0x7fffffff) {
      throw new BulktapError(
        "EINVAL",
        `cpu=${show(cpu)} is not -1 (this thread's CPU) or a CPU number`,
      );
    }
    return cpu + 0; // -0 is not an FFI integer
  }

  /** Library handle; pass it to a Worker and {@linkcode Device.attach}. */
  get handle(): number {
    return this.#handle;
  }

  /** Number of queues. */
  get queues(): number {
    return this.#nqueues;
  }

  /** Slots per queue ring. */
  get ringSize(): number {
    return this.#ringSize;
  }

  /** The device's own pool. */
  get pool(): FramePool {
    return this.#pool;
  }

  /** Default CPU for queue choice (-1: the calling thread's CPU). Checked when set. */
  get cpu(): number {
    return this.#cpu;
  }

  set cpu(cpu: number) {
    this.#cpu = Device.#checkCpu(cpu);
  }

  /**
   * Use a device created elsewhere (e.g. in the main thread) from a Worker,
   * by handle. `cpu` makes this Worker one "CPU" for queue choice.
   *
   * @example
   * ```ts
   * import { Device } from "./mod.ts";
   * using dev = new Device({ queues: 2 });
   * const inWorker = Device.attach(dev.handle, 1);
   * console.log(inWorker.queueForCpu()); // 1
   * ```
   */
  static attach(handle: number, cpu = -1): Device {
    u32Arg(handle, "device handle");
    return new Device(undefined, new AttachToken(handle, Device.#checkCpu(cpu)));
  }

  /** @internal Throws `ECLOSED` after {@linkcode Device.close}. */
  assertOpen(): void {
    if (this.#closed) {
      throw new BulktapError("ECLOSED", `device ${this.#handle} was closed`);
    }
  }

  /** Queue `i`'s reader side. */
  queue(i: number): DeviceQueue {
    this.assertOpen();
    if (!(typeof i === "number" && Number.isInteger(i) && i >= 0 && i < this.#nqueues)) {
      throw new BulktapError(
        "EINVAL",
        `queue ${show(i)} does not exist: the device has ${this.#nqueues}`,
      );
    }
    return this.#queues[i];
  }

  /** The queue `xmit` picks for `cpu` (default: this device's cpu). */
  queueForCpu(cpu: number = this.#cpu): number {
    this.assertOpen();
    cpu = Device.#checkCpu(cpu);
    return checkErrno(
      library().bt_queue_for_cpu(this.#handle, cpu),
      `queueForCpu(${cpu}) on device ${this.#handle}`,
    );
  }

  /**
   * Transmit a bulk of frames: one FFI call, one queue, one lock. Returns
   * how many were accepted: always the first ones. The library has already
   * returned the rest to their pool and counted them in `txDropped`; the
   * caller must not touch them. Throws `EINVAL` (taking no frame) if any
   * frame is not held or its length runs past its frame or a count or cpu
   * is not a valid number. Throws `ENXIO` if the device was closed
   * elsewhere, `ECLOSED` if this object was closed: either way the held
   * frames went back to their pool first, so the caller must not touch them.
   */
  xmit(frames: Uint32Array, options?: XmitOptions): number {
    const len = u32Length(frames, this.#xmitFrames);
    const n = checkCount(options?.count ?? len, len, this.#xmitWhat);
    const flags = options?.flush ? XMIT_FLUSH : 0;
    const cpu = options?.cpu === undefined ? this.#cpu : Device.#checkCpu(options.cpu);
    if (this.#closed) this.#closedError(frames, n);
    const r = library().bt_xmit(this.#handle, frames, len, n, flags, cpu);
    if (r < 0) this.#xmitError(r, frames, n);
    return r;
  }

  /**
   * Single-packet mode: transmit one frame (one call and one lock per
   * frame). Returns true if it was accepted; false if the ring was full (the
   * frame went back to its pool, counted as dropped).
   */
  xmitOne(ref: number, options?: XmitOptions): boolean {
    const one = this.#one;
    one[0] = u32Arg(ref, this.#xmitOneRef);
    const flags = options?.flush ? XMIT_FLUSH : 0;
    const cpu = options?.cpu === undefined ? this.#cpu : Device.#checkCpu(options.cpu);
    if (this.#closed) this.#closedError(one, 1);
    const r = library().bt_xmit(this.#handle, one, 1, 1, flags, cpu);
    if (r < 0) this.#xmitError(r, one, 1);
    return r === 1;
  }

  /**
   * Transmit bytes that are not in a pool: `data` holds the frames back to
   * back, `lengths` their sizes. Each is copied into a library buffer (the
   * slow path the kernel takes for socket buffers) and queued as a tagged
   * entry; the reader receives it in a frame of this device's pool.
   */
  xmitCopy(data: Uint8Array, lengths: Uint32Array, options?: XmitOptions): number {
    this.assertOpen();
    const dataLen = arrayLength(data, "Uint8Array", `xmitCopy on device ${this.#handle}: data`);
    const nlens = u32Length(lengths, `xmitCopy on device ${this.#handle}: lengths`);
    const count = checkCount(
      options?.count ?? nlens,
      nlens,
      `xmitCopy on device ${this.#handle} (lengths)`,
    );
    const cpu = options?.cpu === undefined ? this.#cpu : Device.#checkCpu(options.cpu);
    let total = 0;
    for (let i = 0; i < count; i++) total += lengths[i];
    if (total > dataLen) {
      throw new BulktapError(
        "EINVAL",
        `lengths add up to ${total} bytes but data has ${dataLen}`,
      );
    }
    const flags = options?.flush ? XMIT_FLUSH : 0;
    const r = library().bt_xmit_copy(
      this.#handle,
      data,
      dataLen,
      lengths,
      nlens,
      count,
      flags,
      cpu,
    );
    if (r >= 0) return r;
    if (r === -22) {
      const max = this.#pool.frameSize - this.#pool.headroom;
      for (let i = 0; i < count; i++) {
        if (lengths[i] > max) {
          throw new BulktapError(
            "EINVAL",
            `lengths[${i}] = ${
              lengths[i]
            } exceeds the ${max} bytes a frame of the device's pool holds`,
            r,
          );
        }
      }
    }
    return this.#xmitError(r, undefined, count);
  }

  /**
   * xmit on an object closed by its own close(): the frames are handed back
   * to their pool, as the library does for a device closed elsewhere, so the
   * rule "a frame given to xmit is sent or returned" holds here too.
   */
  #closedError(frames: Uint32Array, count: number): never {
    const returned = count > 0 ? library().bt_frames_put(frames, count, count, null, 0) : 0;
    throw new BulktapError(
      "ECLOSED",
      `xmit on device ${this.#handle}, which this object's close() closed; ` +
        `${Math.max(0, returned)} of the ${count} frames were returned to their pool`,
    );
  }

  #xmitError(r: number, frames: Uint32Array | undefined, count: number): never {
    const code = codeForErrno(r);
    if (code === "EINVAL" && frames) {
      for (let i = 0; i < count; i++) {
        if (library().bt_frame_check(frames[i]) !== 0) {
          throw new BulktapError(
            "EINVAL",
            `frames[${i}]: ${describeRef(frames[i])}; no frame was sent`,
            r,
          );
        }
      }
    }
    if (code === "E2BIG") {
      throw new BulktapError(
        "E2BIG",
        `a bulk of ${count} frames exceeds the maximum of ${MAX_BULK}`,
        r,
      );
    }
    if (code === "ENXIO") {
      throw new BulktapError(
        "ENXIO",
        `xmit on device ${this.#handle}: the device is closed (perhaps by another Worker); ` +
          `the ${count} frames were returned to their pool`,
        r,
      );
    }
    if (code === "ENODEV") {
      const back = frames ? "were returned to their pool" : "were not copied";
      throw new BulktapError(
        "ENODEV",
        `device ${this.#handle} can no longer transmit (a deleted TAP?); the ${count} frames ${back}`,
        r,
      );
    }
    return checkErrno(r, `xmit of ${count} frames on device ${this.#handle}`) as never;
  }

  /** Ring the doorbell of one queue, or of all queues if none is named. */
  flush(queue = -1): void {
    this.assertOpen();
    if (queue !== -1 && !(Number.isInteger(queue) && queue >= 0 && queue < this.#nqueues)) {
      throw new BulktapError(
        "EINVAL",
        `flush: queue ${show(queue)} does not exist: the device has ${this.#nqueues}`,
      );
    }
    checkErrno(
      library().bt_flush(this.#handle, queue + 0), // + 0: FFI refuses -0
      `flush of queue ${queue} on device ${this.#handle}`,
    );
  }

  /** Counters, summed now over every thread and queue. */
  stats(): DeviceStats {
    this.assertOpen();
    const out = new BigUint64Array(abi.BT_DS_COUNT);
    checkErrno(
      library().bt_dev_stats(this.#handle, out, out.length),
      `stats of device ${this.#handle}`,
    );
    const s = {} as DeviceStats;
    for (const k of STAT_KEYS) s[k] = Number(out[STAT_INDEX[k]]);
    return s;
  }

  /** Whether {@linkcode Device.close} was called on this object. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Close the device: wake and stop its readers, return every queued frame
   * to its pool, and free the queues. Returns how many queued frames were
   * returned. Calls on this device from other Workers then fail with
   * `ENXIO`. On an attached device this only forgets it here (returns 0).
   */
  close(): number {
    if (this.#closed) return 0;
    this.#closed = true;
    if (!this.#owner) return 0;
    const r = library().bt_dev_close(this.#handle);
    if (this.#ownsPool) {
      try {
        this.#pool.close();
      } catch {
        // frames still held by the caller keep the pool alive
      }
    }
    if (r < 0 && codeForErrno(r) === "ENXIO") return 0;
    return checkErrno(r, `close of device ${this.#handle}`);
  }

  /** Same as {@linkcode Device.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
