/**
 * The benchmark's peer for the TypeScript API: the dataplane a Deno user
 * would write by hand without bulktap, in `SharedArrayBuffer`s and
 * `Atomics`. Same geometry and semantics as the in-memory device it is
 * measured against:
 *
 * - a frame pool: `frames` frames of `FRAME_STRIDE` bytes in one
 *   `SharedArrayBuffer`, with a free stack of frame indexes behind one
 *   lock (spin briefly, then sleep in `Atomics.wait`; an unlock notifies
 *   only when a thread sleeps);
 * - per queue, a ring of frame indexes (a power of two) with a producer lock
 *   (several producers may share a queue), a tail published with
 *   `Atomics.store` and a head the reader publishes the same way; frames
 *   that do not fit a full ring go back to the pool and are counted as
 *   dropped;
 * - a doorbell: a reader that finds its ring empty spins briefly, then sets
 *   a need-wakeup flag, looks once more and sleeps in `Atomics.wait`; a
 *   producer's flush calls `Atomics.notify` only when the flag is set.
 *
 * Frame refs are plain frame indexes. Nothing here checks a value a caller
 * passes: that is part of what a hand-written dataplane saves.
 *
 * @module
 */

/** Bytes per frame (as the bulktap pool's default `frameSize`). */
export const FRAME_STRIDE = 2048;
/** Offset of the 32-bit data length in a frame (as bulktap's `META.len`). */
export const LEN_OFFSET = 12;
/** Int32 slots per cache line: control words sit on lines of their own. */
const LINE = 16;

// Control words (Int32 indexes into `ctl`).
const POOL_LOCK = 0; // and its sleepers' count at POOL_LOCK + 1
const POOL_TOP = 2;
const QUEUE_BASE = 2 * LINE;
const QUEUE_WORDS = 4 * LINE;
// Within a queue's words: producer side, reader side, doorbell.
const Q_LOCK = 0; // producers' lock, and its sleepers' count at Q_LOCK + 1
const Q_HEAD_SEEN = 2; // producers' cached copy of head (under the lock)
const Q_TAIL = LINE; // published by producers
const Q_HEAD = 2 * LINE; // published by the reader
const Q_NEED_WAKE = 3 * LINE; // set by a reader about to sleep
const Q_SEQ = 3 * LINE + 1; // what a sleeping reader waits on
const Q_CLOSED = 3 * LINE + 2;
const Q_WAKEUPS = 3 * LINE + 3; // doorbells that woke a sleeper

/** Spins before a lock sleeps: about the microseconds bt_lock.h spins (128 `pause`s). */
const LOCK_SPINS = 1000;

/** The shared memory of one plain dataplane: post it to every Worker. */
export interface PlainShared {
  /** Frames in the pool. */
  frames: number;
  /** Queues (rings), one reader each. */
  queues: number;
  /** Slots per ring, a power of two. */
  ringSize: number;
  /** Frame bytes. */
  data: SharedArrayBuffer;
  /** Free stack of frame indexes. */
  stack: SharedArrayBuffer;
  /** Rings, `queues * ringSize` frame indexes. */
  rings: SharedArrayBuffer;
  /** Locks, counters and doorbells. */
  ctl: SharedArrayBuffer;
}

/**
 * Allocate a plain dataplane: every frame free, every ring empty.
 *
 * @example
 * ```ts
 * import { createPlain } from "./bench/plain_dataplane.ts";
 * const s = createPlain(64, 1, 16);
 * console.log(s.frames); // 64
 * ```
 */
export function createPlain(frames: number, queues: number, ringSize: number): PlainShared {
  if ((ringSize & (ringSize - 1)) !== 0) throw new RangeError(`ringSize ${ringSize}: not 2^n`);
  const s: PlainShared = {
    frames,
    queues,
    ringSize,
    data: new SharedArrayBuffer(frames * FRAME_STRIDE),
    stack: new SharedArrayBuffer(frames * 4),
    rings: new SharedArrayBuffer(queues * ringSize * 4),
    ctl: new SharedArrayBuffer((QUEUE_BASE + queues * QUEUE_WORDS) * 4),
  };
  const stack = new Int32Array(s.stack);
  for (let i = 0; i < frames; i++) stack[i] = frames - 1 - i;
  new Int32Array(s.ctl)[POOL_TOP] = frames;
  return s;
}

/**
 * Take the lock word `a[i]` (0 free, 1 held): try, spin a little, then
 * sleep in `Atomics.wait`, counted in `a[i + 1]` so that an unlock with
 * nobody asleep costs no system call.
 */
function lock(a: Int32Array, i: number): void {
  if (Atomics.compareExchange(a, i, 0, 1) === 0) return;
  for (let s = 0; s < LOCK_SPINS; s++) {
    if (Atomics.load(a, i) === 0 && Atomics.compareExchange(a, i, 0, 1) === 0) return;
  }
  Atomics.add(a, i + 1, 1);
  while (Atomics.exchange(a, i, 1) !== 0) Atomics.wait(a, i, 1);
  Atomics.sub(a, i + 1, 1);
}

function unlock(a: Int32Array, i: number): void {
  Atomics.store(a, i, 0);
  if (Atomics.load(a, i + 1) !== 0) Atomics.notify(a, i, 1);
}

/**
 * One thread's handle on a plain dataplane: the pool, the rings and the
 * doorbells.
 *
 * @example
 * ```ts
 * import { createPlain, PlainDataplane } from "./bench/plain_dataplane.ts";
 * const dp = new PlainDataplane(createPlain(64, 1, 16));
 * const refs = new Int32Array(4);
 * const n = dp.alloc(refs, 4);
 * console.log(n, dp.xmit(0, refs, 0, n, true)); // 4 4
 * ```
 */
export class PlainDataplane {
  /** Frame bytes as 32-bit words (the length field is one of them). */
  readonly words: Uint32Array;
  readonly #stack: Int32Array;
  readonly #rings: Int32Array;
  readonly #ctl: Int32Array;
  readonly #mask: number;
  readonly #ringSize: number;
  /** Ring lock acquisitions by this thread. */
  locks = 0;
  /** Frames this thread's xmit calls found no room for. */
  drops = 0;

  /** Views of the shared memory `s` (made by {@linkcode createPlain}). */
  constructor(s: PlainShared) {
    this.words = new Uint32Array(s.data);
    this.#stack = new Int32Array(s.stack);
    this.#rings = new Int32Array(s.rings);
    this.#ctl = new Int32Array(s.ctl);
    this.#mask = s.ringSize - 1;
    this.#ringSize = s.ringSize;
  }

  /** Pop up to `n` free frames into `refs`; returns how many. */
  alloc(refs: Int32Array, n: number): number {
    const ctl = this.#ctl, stack = this.#stack;
    lock(ctl, POOL_LOCK);
    const top = ctl[POOL_TOP];
    const m = n < top ? n : top;
    for (let i = 0; i < m; i++) refs[i] = stack[top - 1 - i];
    ctl[POOL_TOP] = top - m;
    unlock(ctl, POOL_LOCK);
    return m;
  }

  /** Push `refs[from..from+n)` back on the free stack. */
  free(refs: Int32Array, from: number, n: number): void {
    const ctl = this.#ctl, stack = this.#stack;
    lock(ctl, POOL_LOCK);
    const top = ctl[POOL_TOP];
    for (let i = 0; i < n; i++) stack[top + i] = refs[from + i];
    ctl[POOL_TOP] = top + n;
    unlock(ctl, POOL_LOCK);
  }

  /**
   * Publish `refs[from..from+n)` on queue `q` under its producer lock;
   * what does not fit goes back to the pool. With `flush`, ring the
   * doorbell if the reader asked for it. Returns how many were queued.
   */
  xmit(q: number, refs: Int32Array, from: number, n: number, flush: boolean): number {
    const ctl = this.#ctl, base = QUEUE_BASE + q * QUEUE_WORDS;
    const ring = this.#rings, off = q * this.#ringSize, mask = this.#mask;
    lock(ctl, base + Q_LOCK);
    this.locks++;
    const tail = ctl[base + Q_TAIL]; // only producers write it, under this lock
    let room = this.#ringSize - ((tail - ctl[base + Q_HEAD_SEEN]) | 0);
    if (room < n) {
      const head = Atomics.load(ctl, base + Q_HEAD);
      ctl[base + Q_HEAD_SEEN] = head;
      room = this.#ringSize - ((tail - head) | 0);
    }
    const m = n < room ? n : room;
    for (let i = 0; i < m; i++) ring[off + ((tail + i) & mask)] = refs[from + i];
    Atomics.store(ctl, base + Q_TAIL, (tail + m) | 0);
    unlock(ctl, base + Q_LOCK);
    if (m < n) {
      this.drops += n - m;
      this.free(refs, from + m, n - m);
    }
    if (
      flush && Atomics.load(ctl, base + Q_NEED_WAKE) !== 0 &&
      Atomics.exchange(ctl, base + Q_NEED_WAKE, 0) !== 0
    ) {
      Atomics.add(ctl, base + Q_SEQ, 1);
      Atomics.add(ctl, base + Q_WAKEUPS, 1);
      Atomics.notify(ctl, base + Q_SEQ);
    }
    return m;
  }

  /**
   * Take up to `max` frames from queue `q` into `out` without waiting
   * (one reader per queue); returns how many.
   */
  read(q: number, out: Int32Array, max: number): number {
    const ctl = this.#ctl, base = QUEUE_BASE + q * QUEUE_WORDS;
    const head = ctl[base + Q_HEAD]; // only this reader writes it
    const avail = (Atomics.load(ctl, base + Q_TAIL) - head) | 0;
    if (avail === 0) return 0;
    const n = avail < max ? avail : max;
    const ring = this.#rings, off = q * this.#ringSize, mask = this.#mask;
    for (let i = 0; i < n; i++) out[i] = ring[off + ((head + i) & mask)];
    Atomics.store(ctl, base + Q_HEAD, (head + n) | 0);
    return n;
  }

  /**
   * Wait until queue `q` has frames (true) or is closed and empty
   * (false): spin `spins` looks, then set the need-wakeup flag, look once
   * more and sleep on the doorbell (at most `sleepMs` per sleep).
   */
  wait(q: number, spins: number, sleepMs: number): boolean {
    const ctl = this.#ctl, base = QUEUE_BASE + q * QUEUE_WORDS;
    const head = ctl[base + Q_HEAD];
    for (;;) {
      for (let s = 0; s < spins; s++) {
        if (Atomics.load(ctl, base + Q_TAIL) !== head) return true;
      }
      const seq = Atomics.load(ctl, base + Q_SEQ);
      Atomics.store(ctl, base + Q_NEED_WAKE, 1);
      if (Atomics.load(ctl, base + Q_TAIL) !== head) {
        Atomics.store(ctl, base + Q_NEED_WAKE, 0);
        return true;
      }
      if (Atomics.load(ctl, base + Q_CLOSED) !== 0) return false;
      Atomics.wait(ctl, base + Q_SEQ, seq, sleepMs);
    }
  }

  /** Close queue `q`: its reader drains what is left, then stops. */
  close(q: number): void {
    const base = QUEUE_BASE + q * QUEUE_WORDS;
    Atomics.store(this.#ctl, base + Q_CLOSED, 1);
    Atomics.add(this.#ctl, base + Q_SEQ, 1);
    Atomics.notify(this.#ctl, base + Q_SEQ);
  }

  /** Doorbells that woke a sleeping reader of queue `q`. */
  wakeups(q: number): number {
    return Atomics.load(this.#ctl, QUEUE_BASE + q * QUEUE_WORDS + Q_WAKEUPS);
  }

  /** Frames on the free stack now. */
  freeCount(): number {
    return Atomics.load(this.#ctl, POOL_TOP);
  }
}
