/**
 * Copies for flooded frames: a `BROADCAST` verdict sends the frame to the
 * first target that is not its ingress and a copy to every other. The
 * copies a batch needs are allocated when the loop meets its first
 * `BROADCAST`, one bulk allocation per pool the flooded frames come from,
 * and handed out per frame; any not used go back in one call.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { BT_MAX_POOLS, BT_REF_INDEX_BITS, BT_REF_INDEX_MASK } from "../ffi/abi.ts";
import { FramePool, FrameState, META } from "./pool.ts";
import { Verdict } from "./verdict.ts";

/**
 * One poll loop's flood copies (per pool slot: `[at, end)` of one array).
 *
 * @example
 * ```ts
 * import { FloodCopies, heldPool } from "./flood.ts";
 * import { FramePool, Verdict } from "./mod.ts";
 * using pool = new FramePool({ frames: 8 });
 * const refs = new Uint32Array(1);
 * pool.alloc(refs);
 * const flood = new FloodCopies(8);
 * console.log(flood.alloc(refs, Uint32Array.of(Verdict.BROADCAST), 0, 1, 2)); // 2 copies
 * const copy = flood.copyOf(heldPool(refs[0])!, refs[0]); // a copy in a fresh frame
 * flood.returnUnused(); // the second copy goes back
 * pool.free(Uint32Array.of(refs[0], copy));
 * ```
 */
export class FloodCopies {
  #copies = new Uint32Array(0);
  // Per pool slot (slot 0 is never used).
  readonly #need = new Uint32Array(BT_MAX_POOLS + 1);
  readonly #at = new Uint32Array(BT_MAX_POOLS + 1);
  readonly #end = new Uint32Array(BT_MAX_POOLS + 1);
  readonly #ref = new Uint32Array(BT_MAX_POOLS + 1);
  readonly #slots = new Uint8Array(BT_MAX_POOLS + 1);
  #nslots = 0;
  readonly #minCapacity: number;
  readonly #lib = library();

  /** Copies for batches of up to `budget` frames (the array grows if needed). */
  constructor(budget: number) {
    this.#minCapacity = budget;
  }

  /**
   * Allocate `per` copies for every `BROADCAST` frame of `refs[from..n)`,
   * one allocation per pool. Returns how many copies it got: a pool may
   * supply fewer (those floods reach fewer targets; the caller counts them
   * as {@linkcode FloodCopies.copyOf} fails), and a ref of no open pool
   * gets none (a source that hands out refs it does not hold).
   */
  alloc(refs: Uint32Array, verdicts: Uint32Array, from: number, n: number, per: number): number {
    if (per === 0) return 0;
    const need = this.#need, slots = this.#slots;
    let nslots = 0, total = 0;
    for (let i = from; i < n; i++) {
      if ((verdicts[i] & 0xff) !== Verdict.BROADCAST) continue;
      const slot = refs[i] >>> BT_REF_INDEX_BITS;
      if (need[slot] === 0) {
        slots[nslots++] = slot;
        this.#ref[slot] = refs[i];
      }
      need[slot] += per;
      total += per;
    }
    if (this.#copies.length < total) {
      this.#copies = new Uint32Array(Math.max(total, this.#minCapacity * per));
    }
    let at = 0, copies = 0;
    for (let k = 0; k < nslots; k++) {
      const slot = slots[k];
      const want = need[slot];
      need[slot] = 0;
      const pool = poolOf(this.#ref[slot]);
      // A view per pool and flooded batch, not per frame.
      const into = at === 0 ? this.#copies : this.#copies.subarray(at);
      const got = pool === undefined
        ? 0
        : Math.max(0, this.#lib.bt_pool_alloc(pool.handle, into, into.length, want));
      this.#at[slot] = at;
      this.#end[slot] = at + got;
      copies += got;
      at += want;
    }
    this.#nslots = nslots;
    return copies;
  }

  /**
   * The next copy for frame `ref` of `pool` (see {@linkcode heldPool}),
   * filled with a copy of it; or -1 when none is left, or when the frame's
   * metadata cannot be copied (a program overwrote it: the copy stays
   * unused, and goes home with the others).
   */
  copyOf(pool: FramePool, ref: number): number {
    const slot = ref >>> BT_REF_INDEX_BITS;
    const at = this.#at[slot];
    if (at >= this.#end[slot]) return -1;
    const cref = this.#copies[at];
    try {
      copyFrame(pool, ref, cref);
    } catch {
      return -1;
    }
    this.#at[slot] = at + 1;
    return cref;
  }

  /**
   * Return the copies a batch did not use (every copy allocated is used by
   * its floods; this guards against a pool handing out more than asked:
   * never lose a frame).
   */
  returnUnused(): void {
    for (let k = 0; k < this.#nslots; k++) {
      const slot = this.#slots[k];
      const left = this.#end[slot] - this.#at[slot];
      if (left > 0) {
        const rest = this.#copies.subarray(this.#at[slot]);
        this.#lib.bt_frames_put(rest, rest.length, left, null, 0);
      }
      this.#at[slot] = this.#end[slot] = 0;
    }
    this.#nslots = 0;
  }
}

/** The open pool of `ref`, or undefined (no pool has its slot). */
function poolOf(ref: number): FramePool | undefined {
  try {
    return FramePool.of(ref);
  } catch {
    return undefined;
  }
}

/**
 * The pool of frame `ref` if the frame is held (a source's frame, the
 * loop's to copy); otherwise undefined: a ref of no open pool, past the end
 * of its pool, or of a frame free or queued elsewhere (a source that hands
 * out refs it does not hold) is never read.
 *
 * @example
 * ```ts
 * import { heldPool } from "./flood.ts";
 * import { FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 2 });
 * const refs = new Uint32Array(1);
 * pool.alloc(refs);
 * console.log(heldPool(refs[0]) === pool); // true
 * pool.free(refs);
 * console.log(heldPool(refs[0])); // undefined
 * ```
 */
export function heldPool(ref: number): FramePool | undefined {
  const pool = poolOf(ref);
  if (pool === undefined) return undefined;
  const idx = ref & BT_REF_INDEX_MASK;
  if (idx >= pool.frames) return undefined;
  return pool.bytes[idx * pool.frameSize + META.state] === FrameState.HELD ? pool : undefined;
}

/**
 * Copy frame `ref` into the fresh frame `cref` of the same pool: the same
 * data offset (so the same headroom), length, bytes, timestamp, mark and
 * offload metadata (GSO type and sizes, checksum flags and offsets).
 *
 * @example
 * ```ts
 * import { copyFrame } from "./flood.ts";
 * import { FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 2 });
 * const refs = new Uint32Array(2);
 * pool.alloc(refs);
 * pool.write(refs[0], new Uint8Array([1, 2, 3]));
 * copyFrame(pool, refs[0], refs[1]);
 * console.log(pool.length(refs[1])); // 3
 * pool.free(refs);
 * ```
 */
export function copyFrame(pool: FramePool, ref: number, cref: number): void {
  const len = pool.length(ref);
  const src = pool.dataOffset(ref);
  const delta = (src - pool.frameOffset(ref)) - (pool.dataOffset(cref) - pool.frameOffset(cref));
  if (delta !== 0) {
    // A fresh frame has length 0: move its start to where the original's is.
    pool.setLength(cref, delta > 0 ? delta : 0);
    pool.adjustHead(cref, delta);
  }
  // The length first: it checks that `len` fits the copy (a program may
  // have overwritten the original's), so the bytes copied stay inside both.
  pool.setLength(cref, len);
  pool.bytes.copyWithin(pool.dataOffset(cref), src, src + len);
  pool.setTimestamp(cref, pool.timestamp(ref));
  pool.setMark(cref, pool.mark(ref));
  // A copy of a super-frame or of a frame with a partial checksum is one
  // too: the device must segment it or complete its checksum the same way.
  const from = pool.frameOffset(ref) + META.vnetFlags;
  pool.bytes.copyWithin(pool.frameOffset(cref) + META.vnetFlags, from, from + OFFLOAD_BYTES);
}

/** Offload metadata bytes, flags through csum_offset (see `struct bt_frame_meta`). */
const OFFLOAD_BYTES = META.csumOffset + 2 - META.vnetFlags;
