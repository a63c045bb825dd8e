/**
 * Frame pools: fixed-size frames in one region of memory owned by the C
 * library, seen from TypeScript through zero-copy views. A frame is named by
 * a 32-bit ref (pool slot in the top 8 bits, frame index in the low 24), so
 * frames travel between Workers and through the library as plain numbers in
 * `Uint32Array`s.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import * as abi from "../ffi/abi.ts";
import { arrayLength, checkCount, intIn, show, u32Arg, u32Length } from "./boundary.ts";
import { BulktapError, type BulktapErrorCode, checkErrno, codeForErrno } from "./errors.ts";

/** Byte offsets of the metadata at the start of each frame (its headroom). */
export const META = {
  magic: abi.BT_META_OFF_MAGIC,
  ref: abi.BT_META_OFF_REF,
  dataOff: abi.BT_META_OFF_DATA_OFF,
  vnetLen: abi.BT_META_OFF_VNET_LEN,
  len: abi.BT_META_OFF_LEN,
  tstamp: abi.BT_META_OFF_TSTAMP,
  mark: abi.BT_META_OFF_MARK,
  queue: abi.BT_META_OFF_QUEUE,
  state: abi.BT_META_OFF_STATE,
  vnetFlags: abi.BT_META_OFF_VNET_FLAGS,
  gsoType: abi.BT_META_OFF_GSO_TYPE,
  hdrLen: abi.BT_META_OFF_HDR_LEN,
  gsoSize: abi.BT_META_OFF_GSO_SIZE,
  csumStart: abi.BT_META_OFF_CSUM_START,
  csumOffset: abi.BT_META_OFF_CSUM_OFFSET,
  size: abi.BT_META_SIZE,
} as const;

/** Frame states as the library keeps them in the headroom. */
export const FrameState = { FREE: abi.BT_FREE, HELD: abi.BT_HELD, QUEUED: abi.BT_QUEUED } as const;

/** GSO types `setGso` accepts (ECN aside): UFO (`BT_GSO_UDP`) is refused. */
const GSO_TYPES = [abi.BT_GSO_TCPV4, abi.BT_GSO_TCPV6, abi.BT_GSO_UDP_L4];
const NEEDS_CSUM = abi.BT_VNET_F_NEEDS_CSUM;

const INDEX_BITS = abi.BT_REF_INDEX_BITS;
const INDEX_MASK = (1 << INDEX_BITS) - 1;

/** Options for a new {@linkcode FramePool}. */
export interface FramePoolOptions {
  /** Number of frames (default 4096, at most 16,777,216). */
  frames?: number;
  /** Bytes per frame including headroom, a multiple of 64 (default 2048). */
  frameSize?: number;
  /** Bytes before the data; holds the 64-byte metadata (default 256). */
  headroom?: number;
}

/** A snapshot of a pool's counters. */
export interface PoolStats {
  /** Frames in the pool. */
  frames: number;
  /** Frames in the pool's free stack. */
  free: number;
  /** Frames held by callers (allocated, or read from a queue). */
  held: number;
  /** Frames sitting in device queues. */
  queued: number;
  /** Frames asked for when none were free. */
  allocFailed: number;
  /** Returns of frames that were not held (returned twice, or queued). */
  doubleReturns: number;
  /** Returns of frames that belong to another pool. */
  foreignReturns: number;
  /** Refs that named no frame of this pool. */
  invalidRefs: number;
  /**
   * Frames the library found in a state other than where it found them (a
   * headroom scribbled on, e.g. a state byte overwritten): skipped, not used.
   */
  corrupt: number;
}

/** How many counters {@linkcode FramePool.stats} reads (`BT_PS_COUNT`). */
const POOL_STATS = abi.BT_PS_COUNT;

/** `bt_frame_check`'s answers (enum bt_frame_problem): text and error code. */
const PROBLEMS: Record<number, { text: string; code: BulktapErrorCode }> = {
  [abi.BT_FRAME_NO_POOL]: { text: "names no open pool (closed, or never created)", code: "ENXIO" },
  [abi.BT_FRAME_BAD_INDEX]: { text: "has an index beyond its pool", code: "EINVAL" },
  [abi.BT_FRAME_NOT_HELD]: { text: "is free, not held (returned twice?)", code: "EALREADY" },
  [abi.BT_FRAME_QUEUED]: { text: "is still in a device queue", code: "EALREADY" },
  [abi.BT_FRAME_BAD_LENGTH]: {
    text: "has a length that runs past the end of its frame",
    code: "EINVAL",
  },
  [abi.BT_FRAME_BAD_OFFSET]: {
    text: `has a data offset inside the ${abi.BT_META_SIZE}-byte metadata`,
    code: "EINVAL",
  },
};

/**
 * Describe why the library refuses a ref, for error messages.
 *
 * @example
 * ```ts
 * import { describeRef } from "./pool.ts";
 * console.log(describeRef(0)); // "frame ref 0x0 names no open pool (closed, or never created)"
 * ```
 */
export function describeRef(ref: number): string {
  return refProblem(ref).text;
}

/**
 * Why the library refuses a ref right now, as a message and the code an
 * error about it should carry: `ENXIO` (its pool is not open), `EALREADY`
 * (free or queued: not held), `EINVAL` (bad index, length or offset). A
 * ref that checks out now (another thread changed it meanwhile) gets
 * `EINVAL` with "is valid now".
 *
 * @example
 * ```ts
 * import { refProblem } from "./pool.ts";
 * console.log(refProblem(0).code); // "ENXIO"
 * ```
 */
export function refProblem(ref: number): { code: BulktapErrorCode; text: string } {
  if (typeof ref !== "number" || ref !== ref >>> 0) {
    return { code: "EINVAL", text: `frame ref ${show(ref)} is not a 32-bit unsigned integer` };
  }
  const why = library().bt_frame_check(ref >>> 0);
  const p = PROBLEMS[why];
  const name = `frame ref 0x${(ref >>> 0).toString(16)}`;
  return p
    ? { code: p.code, text: `${name} ${p.text}` }
    : { code: "EINVAL", text: `${name} was refused (it is valid now: changed meanwhile?)` };
}

/** Module-private: marks the constructor call made by {@linkcode FramePool.attach}. */
class AttachToken {
  constructor(readonly handle: number) {}
}

/** Pools seen by this Worker, by slot, so any ref can find its views. */
const bySlot: (FramePool | undefined)[] = new Array(abi.BT_MAX_POOLS + 1);

/** Every pool object of this Worker not yet closed (see {@linkcode openPools}). */
const live = new Set<FramePool>();

/**
 * The pool objects this Worker has created or attached and not closed, in
 * creation order. Tests use it to check the accounting invariant of every
 * pool a test left open.
 *
 * @example
 * ```ts
 * import { FramePool, openPools } from "./pool.ts";
 * using pool = new FramePool({ frames: 8 });
 * console.log(openPools().includes(pool)); // true
 * ```
 */
export function openPools(): FramePool[] {
  return [...live];
}

/** Scratch for the first refused position: freeFrames runs per batch. */
const FIRST_BAD = new Uint32Array(1);

/**
 * The library's table of open pool handles by slot (`bt_pool_handles`): a
 * pool object whose handle is no longer there is stale (closed here or by
 * its owner in another Worker, perhaps with its slot reused), and its
 * accessors refuse to touch the region. One word read per access.
 */
let handleTable: Uint32Array | undefined;
function handles(): Uint32Array {
  if (handleTable) return handleTable;
  const p = library().bt_pool_handles();
  // bt_pool_handles: one uint32_t per slot, 0..BT_MAX_POOLS.
  const bytes = (abi.BT_MAX_POOLS + 1) * Uint32Array.BYTES_PER_ELEMENT;
  return handleTable = new Uint32Array(Deno.UnsafePointerView.getArrayBuffer(p!, bytes));
}

/**
 * A pool of fixed-size frames. Allocate and return in bulk; reach frame
 * bytes through {@linkcode FramePool.bytes} at {@linkcode FramePool.dataOffset}.
 *
 * @example
 * ```ts
 * import { FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 1024 });
 * const refs = new Uint32Array(16);
 * const n = pool.alloc(refs);
 * pool.write(refs[0], new TextEncoder().encode("hello"));
 * console.log(n, pool.length(refs[0])); // 16 5
 * pool.free(refs, n);
 * ```
 */
export class FramePool implements Disposable {
  // Geometry the accessors trust: private, so no assignment can change
  // which bytes a ref names.
  #handle: number;
  #slot: number;
  #frames: number;
  #frameSize: number;
  #headroom: number;
  #bytes: Uint8Array;
  #view: DataView;
  #u32: Uint32Array;
  #u16: Uint16Array;
  #owner: boolean;
  #closed = false;
  #bad = new Uint32Array(8);
  // What bulk calls name in their messages, built once.
  #allocWhat: string;
  #freeWhat: string;
  #setLengthsWhat: string;

  /** Create a pool. Throws `ENOSPC` if the headroom cannot hold the metadata. */
  constructor(options?: FramePoolOptions);
  /** @internal Attach to an existing pool; use {@linkcode FramePool.attach}. */
  constructor(options: FramePoolOptions | undefined, attachHandle: AttachToken);
  constructor(options: FramePoolOptions = {}, attachHandle?: AttachToken) {
    let h: number;
    if (attachHandle !== undefined) {
      h = u32Arg(attachHandle.handle, "pool handle");
      this.#owner = false;
    } else {
      h = FramePool.#create(options);
      this.#owner = true;
    }
    const base = library().bt_pool_base(h);
    if (!base) throw new BulktapError("ENXIO", `pool handle ${h} names no open pool`);
    const info = FramePool.#info(h);
    this.#handle = h;
    this.#allocWhat = `alloc from pool ${h}`;
    this.#freeWhat = `free to pool ${h}`;
    this.#setLengthsWhat = `setLengths in pool ${h}`;
    this.#slot = info.slot;
    this.#frames = info.frames;
    this.#frameSize = info.frameSize;
    this.#headroom = info.headroom;
    const ab = Deno.UnsafePointerView.getArrayBuffer(base, info.regionBytes);
    this.#bytes = new Uint8Array(ab);
    this.#view = new DataView(ab);
    this.#u32 = new Uint32Array(ab);
    this.#u16 = new Uint16Array(ab);
    handles();
    bySlot[this.#slot] = this;
    live.add(this);
  }

  static #create(options: FramePoolOptions): number {
    if (typeof options !== "object" || options === null) {
      throw new BulktapError("EINVAL", `pool options are ${show(options)}, not an object`);
    }
    const frames = options.frames ?? 4096;
    const frameSize = options.frameSize ?? 2048;
    const headroom = options.headroom ?? 256;
    for (const [k, v] of Object.entries({ frames, frameSize, headroom })) {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
        throw new BulktapError(
          "EINVAL",
          `pool option ${k}=${show(v)} is not a non-negative integer`,
        );
      }
    }
    // + 0: FFI refuses -0 as an unsigned integer.
    const h = library().bt_pool_create(frames + 0, frameSize + 0, headroom + 0);
    if (h >= 0) return h;
    const code = codeForErrno(h);
    const why = code === "ENOSPC"
      ? `headroom=${headroom} cannot hold the ${META.size}-byte frame metadata`
      : code === "EINVAL"
      ? `frames=${frames}, frameSize=${frameSize}, headroom=${headroom}: frames must ` +
        `be 1..${abi.BT_REF_INDEX_MASK + 1}, frameSize a multiple of ${abi.BT_FRAME_ALIGN} in ` +
        `${abi.BT_MIN_FRAME_SIZE}..${abi.BT_MAX_FRAME_SIZE}, headroom at most ` +
        `${abi.BT_MAX_HEADROOM} and headroom + ${abi.BT_MIN_DATA_ROOM} <= frameSize`
      : `cannot create a pool of ${frames} x ${frameSize} bytes`;
    throw new BulktapError(code, why, h);
  }

  static #info(h: number) {
    const out = new BigUint64Array(5);
    checkErrno(library().bt_pool_info(h, out, 5), `pool ${h}`);
    return {
      slot: Number(out[0]),
      frames: Number(out[1]),
      frameSize: Number(out[2]),
      headroom: Number(out[3]),
      regionBytes: Number(out[4]),
    };
  }

  /**
   * Use a pool created elsewhere (another Worker) by its handle. Closing an
   * attached pool only forgets it here; the creator destroys it.
   *
   * @example
   * ```ts
   * import { FramePool } from "./mod.ts";
   * using pool = new FramePool({ frames: 64 });
   * const same = FramePool.attach(pool.handle); // e.g. inside a Worker
   * console.log(same.frames); // 64
   * ```
   */
  static attach(handle: number): FramePool {
    return new FramePool(undefined, new AttachToken(handle));
  }

  /**
   * The pool that owns `ref`, attaching to it if this Worker has not seen it.
   *
   * @example
   * ```ts
   * import { FramePool } from "./mod.ts";
   * using pool = new FramePool({ frames: 8 });
   * const refs = new Uint32Array(1);
   * pool.alloc(refs);
   * console.log(FramePool.of(refs[0]) === pool); // true
   * pool.free(refs);
   * ```
   */
  static of(ref: number): FramePool {
    u32Arg(ref, "frame ref");
    const slot = ref >>> INDEX_BITS;
    const p = bySlot[slot];
    if (p !== undefined && !p.#closed) return p;
    const h = library().bt_pool_lookup(slot);
    if (h < 0) throw new BulktapError("ENXIO", describeRef(ref));
    return FramePool.attach(h);
  }

  // `op` names the call in messages; a bulk call passes its count apart,
  // so no message is built unless one is thrown.
  #check(op = "use of", count?: number | null): void {
    if (!this.#closed && handleTable![this.#slot] === this.#handle) return;
    if (count !== undefined) {
      op = `${op} of ${count ?? "all"} frames ${op === "alloc" ? "from" : "to"}`;
    }
    if (this.#closed) {
      throw new BulktapError("ECLOSED", `${op} pool ${this.#handle}: this object was closed`);
    }
    this.#staleError(op);
  }

  #staleError(op: string): never {
    throw new BulktapError(
      "ENXIO",
      `${op} pool ${this.#handle}: the pool is not open (closed by its owner, perhaps in another ` +
        `Worker${
          handleTable![this.#slot]
            ? `; slot ${this.#slot} now holds pool ${handleTable![this.#slot]}`
            : ""
        })`,
    );
  }

  /**
   * Byte offset of frame `ref` in the region, after checking that `ref` is
   * a frame of this pool and that this pool object is not closed or stale:
   * no accessor touches a frame it was not named, or another pool's region.
   */
  #frame(ref: number): number {
    const idx = ref & INDEX_MASK;
    if (
      ref >>> INDEX_BITS === this.#slot && ref === ref >>> 0 && idx < this.#frames &&
      handleTable![this.#slot] === this.#handle && !this.#closed
    ) {
      return idx * this.#frameSize;
    }
    return this.#refError(ref);
  }

  #refError(ref: number): never {
    this.#check("frame access in");
    if (typeof ref !== "number" || ref !== ref >>> 0) {
      throw new BulktapError("EINVAL", `frame ref ${show(ref)} is not a 32-bit unsigned integer`);
    }
    const name = `frame ref 0x${ref.toString(16)}`;
    if (ref >>> INDEX_BITS !== this.#slot) {
      throw new BulktapError(
        "EINVAL",
        `${name} belongs to pool slot ${ref >>> INDEX_BITS}, not this pool (slot ${this.#slot})`,
      );
    }
    throw new BulktapError(
      "EINVAL",
      `${name} has index ${ref & INDEX_MASK}, beyond the pool's ${this.#frames} frames`,
    );
  }

  /**
   * The data offset of the frame at byte `f`, checked: it lies after the
   * metadata and inside the frame (the headroom is writable through
   * `bytes`, so the library never trusts what it reads there).
   */
  #dataOff(f: number, ref: number): number {
    const off = this.#u32[(f + META.dataOff) >>> 2];
    if (off >= META.size && off <= this.#frameSize) return off;
    throw new BulktapError(
      "EINVAL",
      `frame 0x${
        ref.toString(16)
      } has data offset ${off}, outside ${META.size}..${this.#frameSize} ` +
        `(its metadata was overwritten)`,
    );
  }

  /** Library handle; pass it to a Worker and {@linkcode FramePool.attach}. */
  get handle(): number {
    return this.#handle;
  }

  /** Slot in the top 8 bits of this pool's refs. */
  get slot(): number {
    return this.#slot;
  }

  /** Number of frames. */
  get frames(): number {
    return this.#frames;
  }

  /** Bytes per frame, headroom included. */
  get frameSize(): number {
    return this.#frameSize;
  }

  /** Bytes of headroom before the data by default. */
  get headroom(): number {
    return this.#headroom;
  }

  /** The whole frame region, zero-copy. Do not use a view of it after `close()`. */
  get bytes(): Uint8Array {
    return this.#bytes;
  }

  /** The same region as a DataView. */
  get view(): DataView {
    return this.#view;
  }

  /**
   * Take up to `count` free frames; their refs go into `refs`. Returns how
   * many were taken (fewer when the pool runs low). Each frame starts with
   * its data at the headroom and length 0.
   */
  alloc(refs: Uint32Array, count?: number): number {
    this.#check("alloc", count ?? null);
    const len = u32Length(refs, "alloc: refs");
    let n = count ?? len;
    n = checkCount(n, len, this.#allocWhat);
    const r = library().bt_pool_alloc(this.#handle, refs, len, n);
    return r >= 0 ? r : checkErrno(r, `alloc of ${n} frames from pool ${this.#handle}`);
  }

  /**
   * Return `count` held frames. Frames returned twice, frames of another
   * pool and bad refs are refused (and counted); the rest are returned, then
   * a `BulktapError` (`EALREADY`, `EXDEV` or `EINVAL`) names the first bad one.
   */
  free(refs: Uint32Array, count?: number): void {
    this.#check("free", count ?? null);
    const len = u32Length(refs, "free: refs");
    let n = count ?? len;
    n = checkCount(n, len, this.#freeWhat);
    const done = checkErrno(
      library().bt_pool_put(this.#handle, refs, len, n, this.#bad, this.#bad.length),
      `free of ${n} frames to pool ${this.#handle}`,
    );
    if (done === n) return;
    const pos = this.#bad[0];
    const ref = refs[pos];
    const nbad = n - done;
    const problem = refProblem(ref);
    if (ref >>> INDEX_BITS !== this.#slot && problem.code !== "ENXIO") {
      throw new BulktapError(
        "EXDEV",
        `refs[${pos}] = 0x${ref.toString(16)} belongs to pool slot ${
          ref >>> INDEX_BITS
        }, not this pool (slot ${this.#slot}); ${nbad} of ${n} refused, the rest returned`,
      );
    }
    throw new BulktapError(
      problem.code,
      `refs[${pos}]: ${problem.text}; ${nbad} of ${n} refused, the rest returned`,
    );
  }

  /** Frame index of a ref of this pool. */
  index(ref: number): number {
    this.#frame(ref);
    return ref & INDEX_MASK;
  }

  /** Byte offset in {@linkcode FramePool.bytes} where the frame starts. */
  frameOffset(ref: number): number {
    return this.#frame(ref);
  }

  /** Byte offset in {@linkcode FramePool.bytes} where the frame's data starts. */
  dataOffset(ref: number): number {
    const f = this.#frame(ref);
    return f + this.#dataOff(f, ref);
  }

  /** Length of the frame's data. */
  length(ref: number): number {
    return this.#u32[(this.#frame(ref) + META.len) >>> 2];
  }

  /** Largest data length the frame can hold at its current data offset. */
  capacity(ref: number): number {
    const f = this.#frame(ref);
    return this.#frameSize - this.#dataOff(f, ref);
  }

  /**
   * Set the data length. Throws `EINVAL` if it is not a whole number or runs
   * past the frame, or if it would cut what the offload metadata points at:
   * the headers of a GSO super-frame (shorter than `headerLength`) or the
   * field of a partial checksum. A super-frame may otherwise grow or shrink.
   */
  setLength(ref: number, len: number): void {
    const f = this.#frame(ref);
    const off = this.#dataOff(f, ref);
    if (
      !(typeof len === "number" && Number.isInteger(len) && len >= 0 &&
        off + len <= this.#frameSize)
    ) {
      throw new BulktapError(
        "EINVAL",
        `length ${show(len)} does not fit frame 0x${ref.toString(16)}: it must be a whole number ` +
          `of at most ${this.#frameSize - off} bytes (what follows its data offset)`,
      );
    }
    if (this.#bytes[f + META.gsoType] !== 0 || this.#bytes[f + META.vnetFlags] & NEEDS_CSUM) {
      this.#checkOffloadFits(f, ref, len, `setLength(${len})`);
    }
    this.#u32[(f + META.len) >>> 2] = len;
  }

  /**
   * Throw `EINVAL` if a frame of length `len` would lose what its offload
   * metadata points at: the headers of a GSO super-frame (`hdr_len`), or
   * the field of a partial checksum.
   */
  #checkOffloadFits(f: number, ref: number, len: number, op: string): void {
    const name = `frame 0x${ref.toString(16)}`;
    const hdr = this.#u16[(f + META.hdrLen) >>> 1];
    if (this.#bytes[f + META.gsoType] !== 0 && len < hdr) {
      throw new BulktapError(
        "EINVAL",
        `${op}: ${name} is a GSO super-frame whose ${hdr} bytes of headers (hdr_len) ` +
          `would not fit ${len} bytes`,
      );
    }
    const end = this.#u16[(f + META.csumStart) >>> 1] + this.#u16[(f + META.csumOffset) >>> 1] +
      2;
    if (this.#bytes[f + META.vnetFlags] & NEEDS_CSUM && len < end) {
      throw new BulktapError(
        "EINVAL",
        `${op}: ${name} has a partial checksum whose field ends at byte ${end}, past ${len} bytes`,
      );
    }
  }

  /**
   * Set the data length of the first `count` frames of `refs` (default:
   * all) to `len`, with the same checks as {@linkcode FramePool.setLength}
   * on every ref, and the pool's own state checked once per call instead of
   * once per frame. Throws `EINVAL` naming the first ref that is not a
   * frame of this pool or cannot hold `len` bytes; the frames before it are
   * set.
   *
   * @example
   * ```ts
   * import { FramePool } from "./mod.ts";
   * using pool = new FramePool({ frames: 16 });
   * const refs = new Uint32Array(16);
   * pool.alloc(refs);
   * pool.setLengths(refs, 16, 64);
   * console.log(pool.length(refs[15])); // 64
   * pool.free(refs);
   * ```
   */
  setLengths(refs: Uint32Array, count: number | undefined, len: number): void {
    this.#check("setLengths in");
    const n = u32Length(refs, "setLengths: refs");
    const k = checkCount(count ?? n, n, this.#setLengthsWhat);
    if (!(typeof len === "number" && Number.isInteger(len) && len >= 0)) {
      throw new BulktapError("EINVAL", `length ${show(len)} is not a whole number of bytes`);
    }
    const slot = this.#slot, frames = this.#frames, size = this.#frameSize;
    const u32 = this.#u32, bytes = this.#bytes;
    for (let i = 0; i < k; i++) {
      const ref = refs[i];
      const idx = ref & INDEX_MASK;
      if (ref >>> INDEX_BITS !== slot || idx >= frames) this.#refError(ref);
      const f = idx * size;
      const off = u32[(f + META.dataOff) >>> 2];
      if (
        !(off >= META.size && off + len <= size) ||
        (bytes[f + META.gsoType] | bytes[f + META.vnetFlags] & NEEDS_CSUM) !== 0
      ) {
        this.setLength(ref, len); // checks the offload metadata too; throws, naming a bad one
        continue;
      }
      u32[(f + META.len) >>> 2] = len;
    }
  }

  /**
   * Move the start of the data by `delta` bytes (negative grows it into the
   * headroom, like `bpf_xdp_adjust_head`), keeping the end in place. Throws
   * `ENOSPC` if the data would overlap the metadata, `EINVAL` if `delta` is
   * not a whole number or the start would pass the end of the data.
   *
   * The offload offsets count from the data start, so they move by
   * `-delta`: `headerLength` when set (non-zero) and `csumStart` when the
   * checksum is partial (`NEEDS_CSUM`). `EINVAL`, naming the field, if one
   * would then lie before the data (or past 65535); nothing changes then.
   */
  adjustHead(ref: number, delta: number): void {
    const f = this.#frame(ref);
    const off = this.#dataOff(f, ref);
    const len = this.#u32[(f + META.len) >>> 2];
    if (typeof delta !== "number" || !Number.isInteger(delta)) {
      throw new BulktapError("EINVAL", `adjustHead(${show(delta)}): delta is not a whole number`);
    }
    const nOff = off + delta;
    if (nOff < META.size) {
      throw new BulktapError(
        "ENOSPC",
        `adjustHead(${delta}) needs ${META.size - nOff} bytes more headroom than ` +
          `the ${off - META.size} left after the metadata`,
      );
    }
    if (delta > len || off + len > this.#frameSize) {
      throw new BulktapError("EINVAL", `adjustHead(${delta}) is past the ${len}-byte data`);
    }
    // Offload offsets count from the data start: they move the other way.
    // hdr_len counts when set (non-zero), csum_start with NEEDS_CSUM.
    const u16 = this.#u16;
    const hw = (f + META.hdrLen) >>> 1, cw = (f + META.csumStart) >>> 1;
    const hdr = u16[hw], cs = u16[cw];
    const shiftCsum = (this.#bytes[f + META.vnetFlags] & NEEDS_CSUM) !== 0;
    if (hdr !== 0) this.#checkShift(ref, delta, hdr, "hdr_len");
    if (shiftCsum) this.#checkShift(ref, delta, cs, "csum_start");
    if (hdr !== 0) u16[hw] = hdr - delta;
    if (shiftCsum) u16[cw] = cs - delta;
    this.#u32[(f + META.dataOff) >>> 2] = nOff;
    this.#u32[(f + META.len) >>> 2] = len - delta;
  }

  /** Throw `EINVAL` if moving the data start by `delta` takes `field` (`v`) out of 0..65535. */
  #checkShift(ref: number, delta: number, v: number, field: string): void {
    const nv = v - delta;
    if (nv >= 0 && nv <= 0xffff) return;
    throw new BulktapError(
      "EINVAL",
      `adjustHead(${delta}) would move ${field} ${v} of frame 0x${ref.toString(16)} to ${nv}, ` +
        (nv < 0 ? "before the start of the data" : "past 65535"),
    );
  }

  /** CLOCK_MONOTONIC nanoseconds stamped on the frame (0 if never). */
  timestamp(ref: number): number {
    const w = (this.#frame(ref) + META.tstamp) >>> 2;
    return this.#u32[w + 1] * 4294967296 + this.#u32[w];
  }

  /**
   * Stamp the frame with a CLOCK_MONOTONIC time in nanoseconds: a whole
   * number in 0..2^53 (`EINVAL` otherwise).
   */
  setTimestamp(ref: number, ns: number): void {
    const w = (this.#frame(ref) + META.tstamp) >>> 2;
    if (
      !(typeof ns === "number" && ns >= 0 && ns <= Number.MAX_SAFE_INTEGER && ns === Math.floor(ns))
    ) {
      throw new BulktapError(
        "EINVAL",
        `timestamp ${show(ns)} is not a whole number of nanoseconds in 0..2^53`,
      );
    }
    this.#u32[w] = ns >>> 0;
    this.#u32[w + 1] = Math.floor(ns / 4294967296);
  }

  /** The 32-bit mark programs may use freely. */
  mark(ref: number): number {
    return this.#u32[(this.#frame(ref) + META.mark) >>> 2];
  }

  /** Set the 32-bit mark (a 32-bit unsigned integer; `EINVAL` otherwise). */
  setMark(ref: number, mark: number): void {
    const f = this.#frame(ref);
    this.#u32[(f + META.mark) >>> 2] = u32Arg(mark, "mark");
  }

  /**
   * Bytes of virtio-net header a TAP read placed right before the data
   * (0 if none): `bytes.subarray(dataOffset(ref) - vnetLength(ref), dataOffset(ref))`.
   */
  vnetLength(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.vnetLen) >>> 1];
  }

  /**
   * The frame's offload flags (`VnetFlags`): `NEEDS_CSUM` if its
   * UDP/TCP checksum is partial, `DATA_VALID` if its checksums were
   * verified. 0 for a plain frame.
   *
   * @example
   * ```ts
   * import { FramePool, VnetFlags } from "./mod.ts";
   * using pool = new FramePool({ frames: 4 });
   * const refs = new Uint32Array(1);
   * pool.alloc(refs);
   * pool.setLength(refs[0], 60);
   * pool.setPartialChecksum(refs[0], 34, 6);
   * console.log(pool.vnetFlags(refs[0]) === VnetFlags.NEEDS_CSUM); // true
   * pool.free(refs);
   * ```
   */
  vnetFlags(ref: number): number {
    return this.#bytes[this.#frame(ref) + META.vnetFlags];
  }

  /**
   * The frame's GSO type (`GsoType`, possibly with `ECN` or-ed
   * in); `GsoType.NONE` (0) if it is not a super-frame.
   */
  gsoType(ref: number): number {
    return this.#bytes[this.#frame(ref) + META.gsoType];
  }

  /** Payload bytes per segment of a GSO super-frame (0 if none). */
  gsoSize(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.gsoSize) >>> 1];
  }

  /**
   * Bytes of headers (Ethernet + IP + UDP/TCP) of a GSO super-frame, which
   * every segment repeats (`hdr_len`; 0 if not set).
   */
  headerLength(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.hdrLen) >>> 1];
  }

  /** Offset from the data start where a partial checksum's sum begins. */
  csumStart(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.csumStart) >>> 1];
  }

  /** Where a partial checksum's field is, counted from `csumStart`. */
  csumOffset(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.csumOffset) >>> 1];
  }

  /**
   * Make the frame a GSO super-frame of `type` (`GsoType`:
   * `TCPV4` or `TCPV6`, either with `ECN` or-ed in, or `UDP_L4`) cut into
   * segments of `gsoSize` payload bytes (1..65535) behind its first
   * `hdrLen` bytes of headers (1..the frame's length); or, with
   * `GsoType.NONE`, a plain frame (`gsoSize` 0; `hdrLen` may stay as a
   * hint, 0..length). Set the length first. Throws `EINVAL` naming a bad
   * value (unknown type, UFO, NaN, fractions, out of range); the frame is
   * unchanged then.
   *
   * @example
   * ```ts
   * import { FramePool, GsoType } from "./mod.ts";
   * using pool = new FramePool({ frames: 4, frameSize: 65536 + 256 });
   * const refs = new Uint32Array(1);
   * pool.alloc(refs);
   * pool.setLength(refs[0], 14 + 20 + 20 + 10 * 1448);
   * pool.setGso(refs[0], GsoType.TCPV4, 1448, 54);
   * console.log(pool.gsoSize(refs[0]), pool.headerLength(refs[0])); // 1448 54
   * pool.free(refs);
   * ```
   */
  setGso(ref: number, type: number, gsoSize: number, hdrLen: number): void {
    const f = this.#frame(ref);
    const len = this.#u32[(f + META.len) >>> 2];
    const name = `setGso(0x${ref.toString(16)})`;
    const t = intIn(type, 0, 0xff, `${name}: type`);
    const base = t & ~abi.BT_GSO_ECN;
    const known = t === abi.BT_GSO_NONE || GSO_TYPES.includes(base) &&
        (base !== abi.BT_GSO_UDP_L4 || t === base);
    if (!known) {
      throw new BulktapError(
        "EINVAL",
        `${name}: type=${t} is not a GSO type this library segments (NONE ` +
          `${abi.BT_GSO_NONE}, TCPV4 ${abi.BT_GSO_TCPV4}, TCPV6 ${abi.BT_GSO_TCPV6}, either | ` +
          `ECN ${abi.BT_GSO_ECN}, UDP_L4 ${abi.BT_GSO_UDP_L4}; UFO ${abi.BT_GSO_UDP} is refused)`,
      );
    }
    const none = t === abi.BT_GSO_NONE;
    if (none && gsoSize !== 0) {
      throw new BulktapError(
        "EINVAL",
        `${name}: gsoSize=${show(gsoSize)} must be 0 for GsoType.NONE (not a super-frame)`,
      );
    }
    const size = none ? 0 : intIn(gsoSize, 1, 0xffff, `${name}: gsoSize`);
    const hdr = intIn(hdrLen, none ? 0 : 1, 0xffff, `${name}: hdrLen`);
    if (hdr > len) {
      throw new BulktapError("EINVAL", `${name}: hdrLen=${hdr} is past the ${len}-byte data`);
    }
    this.#bytes[f + META.gsoType] = t;
    this.#u16[(f + META.gsoSize) >>> 1] = size;
    this.#u16[(f + META.hdrLen) >>> 1] = hdr;
  }

  /**
   * Mark the frame's UDP/TCP checksum partial (`NEEDS_CSUM`, and clear
   * `DATA_VALID`): the device sums the bytes from `start` (the L4 header,
   * counted from the data start) to the end and stores the complement
   * `offset` bytes past `start` (16 for TCP, 6 for UDP), where the folded
   * pseudo-header sum must be now. The field (`start + offset + 2`) must
   * lie inside the data; throws `EINVAL` naming a bad value otherwise.
   *
   * @example
   * ```ts
   * import { FramePool } from "./mod.ts";
   * using pool = new FramePool({ frames: 4 });
   * const refs = new Uint32Array(1);
   * pool.alloc(refs);
   * pool.setLength(refs[0], 14 + 20 + 8);
   * pool.setPartialChecksum(refs[0], 34, 6); // UDP over IPv4
   * console.log(pool.csumStart(refs[0]), pool.csumOffset(refs[0])); // 34 6
   * pool.free(refs);
   * ```
   */
  setPartialChecksum(ref: number, start: number, offset: number): void {
    const f = this.#frame(ref);
    const len = this.#u32[(f + META.len) >>> 2];
    const name = `setPartialChecksum(0x${ref.toString(16)})`;
    const s = intIn(start, 0, 0xffff, `${name}: start`);
    const o = intIn(offset, 0, 0xffff, `${name}: offset`);
    if (s + o + 2 > len) {
      throw new BulktapError(
        "EINVAL",
        `${name}: start=${s} + offset=${o} puts the checksum field at bytes ${s + o}..${
          s + o + 1
        }, past the ${len}-byte data`,
      );
    }
    this.#u16[(f + META.csumStart) >>> 1] = s;
    this.#u16[(f + META.csumOffset) >>> 1] = o;
    const fl = f + META.vnetFlags;
    this.#bytes[fl] = (this.#bytes[fl] & ~abi.BT_VNET_F_DATA_VALID) | NEEDS_CSUM;
  }

  /**
   * Make the frame plain: no GSO, complete checksums (flags, GSO type and
   * sizes, checksum offsets all 0). The caller completes a partial
   * checksum first if the frame has one.
   *
   * @example
   * ```ts
   * import { FramePool } from "./mod.ts";
   * using pool = new FramePool({ frames: 4 });
   * const refs = new Uint32Array(1);
   * pool.alloc(refs);
   * pool.setLength(refs[0], 60);
   * pool.setPartialChecksum(refs[0], 34, 6);
   * pool.clearOffload(refs[0]);
   * console.log(pool.vnetFlags(refs[0]), pool.csumStart(refs[0])); // 0 0
   * pool.free(refs);
   * ```
   */
  clearOffload(ref: number): void {
    const f = this.#frame(ref);
    this.#bytes.fill(0, f + META.vnetFlags, f + META.csumOffset + 2);
  }

  /** Queue the frame was last read from. */
  queueOf(ref: number): number {
    return this.#u16[(this.#frame(ref) + META.queue) >>> 1];
  }

  /**
   * A view of the frame's data (allocates a view: not for the per-frame hot
   * path). Throws `EINVAL` if the frame's length runs past it.
   */
  data(ref: number): Uint8Array {
    const f = this.#frame(ref);
    const off = this.#dataOff(f, ref);
    const len = this.#u32[(f + META.len) >>> 2];
    if (off + len > this.#frameSize) {
      throw new BulktapError(
        "EINVAL",
        `frame 0x${ref.toString(16)} has length ${len}, past its end (metadata overwritten)`,
      );
    }
    return this.#bytes.subarray(f + off, f + off + len);
  }

  /** Copy `src` (a `Uint8Array`) into the frame's data and set its length. */
  write(ref: number, src: Uint8Array): void {
    const f = this.#frame(ref);
    const off = this.#dataOff(f, ref);
    const n = arrayLength(src, "Uint8Array", "write: src");
    if (n > this.#frameSize - off) {
      throw new BulktapError(
        "EINVAL",
        `${n} bytes do not fit frame 0x${ref.toString(16)} (capacity ${this.#frameSize - off})`,
      );
    }
    this.#bytes.set(src, f + off);
    this.#u32[(f + META.len) >>> 2] = n;
  }

  /** Counters, summed now. */
  stats(): PoolStats {
    this.#check();
    const out = new BigUint64Array(POOL_STATS);
    checkErrno(
      library().bt_pool_stats(this.#handle, out, POOL_STATS),
      `stats of pool ${this.#handle}`,
    );
    return {
      frames: Number(out[abi.BT_PS_FRAMES]),
      free: Number(out[abi.BT_PS_FREE]),
      held: Number(out[abi.BT_PS_HELD]),
      queued: Number(out[abi.BT_PS_QUEUED]),
      allocFailed: Number(out[abi.BT_PS_ALLOC_FAILED]),
      doubleReturns: Number(out[abi.BT_PS_DOUBLE_RETURN]),
      foreignReturns: Number(out[abi.BT_PS_FOREIGN_RETURN]),
      invalidRefs: Number(out[abi.BT_PS_INVALID_REF]),
      corrupt: Number(out[abi.BT_PS_CORRUPT]),
    };
  }

  /** Whether {@linkcode FramePool.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Destroy the pool (or, for an attached pool, just forget it here).
   * Throws `EBUSY`, naming what is outstanding, if frames are still held or
   * queued or a device still uses the pool; the pool stays usable then.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#owner) {
      const r = library().bt_pool_destroy(this.#handle);
      if (r < 0 && codeForErrno(r) === "EBUSY") {
        const s = this.stats();
        throw new BulktapError(
          "EBUSY",
          `pool ${this.#handle} still has ${s.held} held and ${s.queued} queued ` +
            `frames, or a device that uses it; return them or close the device first`,
          r,
        );
      }
      if (r < 0 && codeForErrno(r) !== "ENXIO") checkErrno(r, `close of pool ${this.#handle}`);
    }
    this.#closed = true;
    live.delete(this);
    if (bySlot[this.#slot] === this) bySlot[this.#slot] = undefined;
  }

  /** Same as {@linkcode FramePool.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Return frames of any pools (e.g. a batch read from a device fed by several
 * pools). Every acceptable frame is returned; then, if any ref was refused,
 * throws for the first one with the code for its problem: `EALREADY` (free
 * or queued, not held), `ENXIO` (its pool is closed), `EINVAL` (no such
 * frame).
 *
 * @example
 * ```ts
 * import { FramePool, freeFrames } from "./mod.ts";
 * using pool = new FramePool({ frames: 8 });
 * const refs = new Uint32Array(4);
 * pool.alloc(refs);
 * freeFrames(refs);
 * ```
 */
export function freeFrames(refs: Uint32Array, count?: number): void {
  const len = u32Length(refs, "freeFrames: refs");
  let n = count ?? len;
  n = checkCount(n, len, "freeFrames");
  const r = library().bt_frames_put(refs, len, n, FIRST_BAD, 1);
  if (r === n) return;
  const done = checkErrno(r, `freeFrames of ${n} frames`);
  const pos = FIRST_BAD[0];
  const problem = refProblem(refs[pos]);
  throw new BulktapError(
    problem.code,
    `refs[${pos}]: ${problem.text}; ${n - done} of ${n} refused, the rest returned`,
  );
}
