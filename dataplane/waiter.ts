/**
 * Shared waits: every JavaScript waiter of one queue in this isolate shares
 * ONE sleeping call into the C library.
 *
 * A sleeping FFI call (`nonblocking`) holds one of Deno's blocking-pool
 * threads for as long as it sleeps, and that pool is small and shared with
 * the runtime's own file I/O (32 threads in Deno 2.x): a thousand waits
 * made one each would stall every `Deno.readFile` of the process until
 * they timed out. Here:
 *
 * - waiters of the same queue (same {@linkcode WaitSource.key}) share one C
 *   sleep; each keeps its own timeout and abort signal in JavaScript, and
 *   when the C sleep returns with frames (or an error) every waiter hears
 *   it. So parked threads <= distinct queues being waited on.
 * - at most {@linkcode MAX_PARKED} C sleeps run at once per isolate; waits
 *   on further queues look at their queue on a timer instead (1 ms,
 *   doubling up to 16 ms) until a sleep ends and frees its place.
 * - when the last waiter of a queue leaves (timeout or abort), its C sleep
 *   is cancelled through a word it watches (set, then kicked), so the
 *   thread comes back at once and a pending call never keeps the process
 *   alive.
 *
 * Wake-ups from C may be spurious (another reader took the frames, a
 * cancelled sleep of a neighbour); waiters only ever re-check.
 *
 * @module
 */
import { BulktapError } from "./errors.ts";

/** Longest timeout the library takes, in ms (an `int32_t`). */
export const MAX_WAIT_MS = 0x7fffffff;

/** C sleeps one isolate runs at once; further queues are looked at on a timer. */
export const MAX_PARKED = 8;

const POLL_MAX_MS = 16;

/**
 * What a shared wait sleeps on: one queue of one device, in C.
 *
 * @example
 * ```ts
 * import type { WaitSource } from "./waiter.ts";
 * const never: WaitSource = {
 *   key: "example",
 *   sleep: () => Promise.resolve(0),
 *   look: () => 0,
 *   kick: () => {},
 * };
 * console.log(never.look()); // 0
 * ```
 */
export interface WaitSource {
  /** Names the queue: waiters with the same key share one C sleep. */
  readonly key: string;
  /**
   * Sleep in C until the queue is ready (> 0), `timeoutMs` passes (-1:
   * never) or `cancel[0]` is set (0), or it fails (negative errno).
   */
  sleep(timeoutMs: number, cancel: Uint32Array): Promise<number>;
  /** Look without sleeping: > 0 ready, 0 not, negative errno. */
  look(): number;
  /** Wake the C sleeper so it sees its cancel word. */
  kick(): void;
}

/**
 * `v` as a wait timeout for the library: an integer up to
 * {@linkcode MAX_WAIT_MS}; any negative integer means forever (-1).
 * Anything else throws `EINVAL` naming `what`.
 *
 * @example
 * ```ts
 * import { waitTimeout } from "./waiter.ts";
 * console.log(waitTimeout("timeoutMs", -5)); // -1
 * ```
 */
export function waitTimeout(what: string, v: number): number {
  if (!Number.isInteger(v) || v > MAX_WAIT_MS) {
    throw new BulktapError(
      "EINVAL",
      `${what}=${v} is not an integer up to ${MAX_WAIT_MS} (negative: forever)`,
    );
  }
  return v < 0 ? -1 : v;
}

/**
 * `v` as a sleep bound: an integer in 1..{@linkcode MAX_WAIT_MS}, or
 * `EINVAL` naming `what`.
 *
 * @example
 * ```ts
 * import { sleepBound } from "./waiter.ts";
 * console.log(sleepBound("sleepMs", 250)); // 250
 * ```
 */
export function sleepBound(what: string, v: number): number {
  if (!Number.isInteger(v) || v < 1 || v > MAX_WAIT_MS) {
    throw new BulktapError("EINVAL", `${what}=${v} is not an integer in 1..${MAX_WAIT_MS}`);
  }
  return v;
}

interface Waiter {
  readonly deadline: number; // performance.now() ms; Infinity: none
  settle(r: number): void;
  fail(e: unknown): void;
}

let parked = 0;
const groups = new Map<string, Group>();

class Group {
  readonly waiters = new Set<Waiter>();
  running = false;
  #cancel: Uint32Array | null = null;

  constructor(readonly source: WaitSource) {}

  /** The last waiter left: give the C sleep's thread back now. */
  release(): void {
    if (this.waiters.size > 0 || !this.#cancel) return;
    Atomics.store(this.#cancel, 0, 1);
    this.source.kick();
  }

  async run(): Promise<void> {
    this.running = true;
    let backoff = 1;
    try {
      while (this.waiters.size > 0) {
        const slice = this.#slice();
        if (slice === 0) continue; // #slice settled the late ones
        let r: number;
        if (parked < MAX_PARKED) {
          const cancel = new Uint32Array(1);
          this.#cancel = cancel;
          parked++;
          try {
            r = await this.source.sleep(slice, cancel);
          } finally {
            parked--;
            this.#cancel = null;
          }
          backoff = 1;
        } else {
          r = this.source.look();
          if (r === 0) {
            await new Promise((res) => setTimeout(res, backoff));
            backoff = Math.min(backoff * 2, POLL_MAX_MS);
            continue;
          }
        }
        // Frames or an error: everybody hears it. Nothing (a timeout,
        // cancel or spurious wake): each waiter's own timer decides.
        if (r !== 0) { for (const w of [...this.waiters]) w.settle(r); }
      }
    } catch (e) {
      for (const w of [...this.waiters]) w.fail(e); // the FFI call threw
    } finally {
      this.running = false;
      if (groups.get(this.source.key) === this && this.waiters.size === 0) {
        groups.delete(this.source.key);
      }
    }
  }

  /** How long the C sleep may last: until the latest deadline (-1: none).
   * Waiters already past theirs are settled (with a last look) here, and 0
   * returned if that was all of them. */
  #slice(): number {
    const now = performance.now();
    let latest = 0;
    for (const w of [...this.waiters]) {
      if (w.deadline <= now) w.settle(this.source.look());
      else latest = Math.max(latest, w.deadline);
    }
    if (this.waiters.size === 0) return 0;
    if (latest === Infinity) return -1;
    return Math.min(MAX_WAIT_MS, Math.max(1, Math.ceil(latest - now)));
  }
}

/**
 * Wait until `source` is ready (> 0), `timeoutMs` passes (a last look: > 0
 * or 0; -1: never) or `signal` aborts (0), or the library fails (negative
 * errno), sharing the C sleep with every other waiter of the same queue in
 * this isolate.
 * `timeoutMs` must already be checked ({@linkcode waitTimeout}).
 *
 * @example
 * ```ts
 * import { waitShared } from "./waiter.ts";
 * let ready = 0;
 * const r = await waitShared({
 *   key: "example",
 *   sleep: () => Promise.resolve(++ready),
 *   look: () => ready,
 *   kick: () => {},
 * }, 100);
 * console.log(r); // 1
 * ```
 */
export function waitShared(
  source: WaitSource,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<number> {
  if (signal?.aborted) return Promise.resolve(0);
  const now = source.look();
  if (now !== 0 || timeoutMs === 0) return Promise.resolve(now);
  let g = groups.get(source.key);
  if (!g) {
    g = new Group(source);
    groups.set(source.key, g);
  }
  const group = g;
  return new Promise((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => w.settle(0);
    const leave = () => {
      if (!group.waiters.delete(w)) return false;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      group.release();
      return true;
    };
    const w: Waiter = {
      deadline: timeoutMs < 0 ? Infinity : performance.now() + timeoutMs,
      settle: (r) => leave() && resolve(r),
      fail: (e) => leave() && reject(e),
    };
    group.waiters.add(w);
    // Timed out: one last look, so frames that came without a flush are
    // still reported (as the C wait does at its deadline).
    if (timeoutMs > 0) timer = setTimeout(() => w.settle(source.look()), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (!group.running) group.run();
  });
}
