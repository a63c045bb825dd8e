/**
 * Sources: where a Worker's poll loop takes frames from. A source hands out
 * held frames in batches; the loop runs the program over them. Sources are
 * described by a plain {@linkcode SourceSpec} so they can cross to Workers,
 * and built there by a factory registered per kind: `generator` and `queue`
 * are built in; a TAP source registers its kind with
 * {@linkcode registerSourceKind} and plugs in unchanged.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import { checkCount, intIn, show, u32Arg, u32Length } from "./boundary.ts";
import { BulktapError, checkErrno } from "./errors.ts";
import { FramePool } from "./pool.ts";
import { queueWaitSource } from "./queue.ts";
import { waitShared, type WaitSource, waitTimeout } from "./waiter.ts";

/** A source of frames for a poll loop. */
export interface Source {
  /** For status and errors. */
  readonly name: string;
  /** Device-map index of the device frames come from (target of `TX`), or -1. */
  readonly ingress: number;
  /**
   * Take up to `max` frames into `refs` (held by the caller from then on).
   * `nowNs` is the loop's clock. Returns how many; 0 when none are ready.
   */
  poll(refs: Uint32Array, max: number, nowNs: number): number;
  /**
   * When frames may next be ready: 0 = maybe now (poll to see),
   * `Infinity` = only after a {@linkcode Source.wait} wakes, else a
   * CLOCK_MONOTONIC ns time (a rate-limited generator).
   */
  readyAtNs(nowNs: number): number;
  /**
   * Sleep until the source may have frames or `timeoutMs` passes. Sources
   * that cannot signal (generators) omit it. Must not stack: a call while a
   * previous wait is pending returns that wait's promise.
   */
  wait?(timeoutMs: number): Promise<unknown>;
  /** Wake a pending {@linkcode Source.wait} (used at shutdown). */
  wake?(): void;
  /** Stop: return any frames the source itself holds. */
  close(): void;
  /**
   * Polls in which the source's pool could not supply every frame due
   * (generators); the poll loop reports the sum as `POOL_EMPTY`.
   */
  readonly poolEmpty?: number;
}

/** A generator source: synthetic UDP frames, stamped with their creation time. */
export interface GeneratorSpec {
  /** Names this kind of source. */
  kind: "generator";
  /** Pool handle frames are allocated from. */
  pool: number;
  /** Bytes of frame data (Ethernet header onwards), 42..pool capacity (default 64). */
  frameSize?: number;
  /** Distinct flows (UDP source ports), 1..65535 (default 1). */
  flows?: number;
  /** Frames per second; 0 = as fast as possible (default 0). */
  rate?: number;
  /** Stop after this many frames (default: never). */
  limit?: number;
}

/** A device queue as a source (chains pipelines: one Worker's target is another's source). */
export interface QueueSourceSpec {
  /** Names this kind of source. */
  kind: "queue";
  /** Device handle. */
  device: number;
  /** Queue number. */
  queue: number;
  /** Device-map index of this device, for `TX` (default -1: TX drops). */
  ingress?: number;
}

/** Any source description; TAP sources add their own kind. */
export type SourceSpec = GeneratorSpec | QueueSourceSpec | { kind: string; [k: string]: unknown };

/** Builds a source from its description, inside the Worker that polls it. */
export type SourceFactory = (spec: SourceSpec, cpu: number) => Source;

const kinds = new Map<string, SourceFactory>();

/**
 * Register a source kind (e.g. `"tap"` from the TAP module). Workers build
 * sources through this table, so the module registering the kind must be
 * imported by the Worker: list it in `SchedulerOptions.modules`.
 *
 * @example
 * ```ts
 * import { registerSourceKind } from "./mod.ts";
 * registerSourceKind("nothing", () => ({
 *   name: "nothing", ingress: -1,
 *   poll: () => 0, readyAtNs: () => Infinity, close() {},
 * }));
 * ```
 */
export function registerSourceKind(kind: string, factory: SourceFactory): void {
  if (typeof kind !== "string" || kind === "" || typeof factory !== "function") {
    throw new BulktapError(
      "EINVAL",
      `registerSourceKind(${show(kind)}, ${show(factory)}): needs a kind name and a factory`,
    );
  }
  kinds.set(kind, factory);
}

/**
 * Build a source from its description.
 *
 * @example
 * ```ts
 * import { FramePool, sourceFromSpec } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * const gen = sourceFromSpec({ kind: "generator", pool: pool.handle, limit: 4 }, 0);
 * const refs = new Uint32Array(8);
 * console.log(gen.poll(refs, 8, 0)); // 4
 * pool.free(refs, 4);
 * gen.close();
 * ```
 */
export function sourceFromSpec(spec: SourceSpec, cpu: number): Source {
  if (typeof spec !== "object" || spec === null) {
    throw new BulktapError("EINVAL", `source spec is ${show(spec)}, not an object`);
  }
  intIn(cpu, -1, 0x7fffffff, "source cpu");
  const f = kinds.get(spec.kind);
  if (!f) {
    throw new BulktapError(
      "ENOTSUP",
      `source kind "${spec.kind}" is not available in this build (known: ${
        [...kinds.keys()].join(", ")
      })`,
    );
  }
  return f(spec, cpu);
}

/** Ethernet + IPv4 + UDP, 42 bytes, the generator's template. */
function udpTemplate(frameSize: number): Uint8Array {
  const t = new Uint8Array(42);
  t.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00], 0);
  const ipLen = frameSize - 14;
  t.set([0x45, 0, ipLen >> 8, ipLen & 255, 0, 0, 0x40, 0, 64, 17, 0, 0], 14);
  t.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  // Header checksum over the 20 IPv4 bytes.
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += t[i] << 8 | t[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const c = ~sum & 0xffff;
  t[24] = c >> 8;
  t[25] = c & 255;
  const udpLen = frameSize - 34;
  t.set([0x04, 0x00, 0x10, 0x00, udpLen >> 8, udpLen & 255, 0, 0], 34);
  return t;
}

/**
 * The generator (MoonGen-like): allocates frames from a pool, writes an
 * Ethernet/IPv4/UDP header whose UDP source port cycles over `flows`, and
 * stamps every frame of a batch with one clock reading. At a fixed
 * rate it produces exactly `floor(elapsed * rate)` frames by any moment
 * (budget permitting), so the count over a second is accurate to one
 * frame plus scheduling jitter at the edges.
 *
 * @example
 * ```ts
 * import { FramePool, GeneratorSource, nowNs } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * const gen = new GeneratorSource({ kind: "generator", pool: pool.handle, frameSize: 60 });
 * const refs = new Uint32Array(16);
 * const n = gen.poll(refs, 16, nowNs());
 * console.log(n, pool.length(refs[0])); // 16 60
 * pool.free(refs, n);
 * ```
 */
export class GeneratorSource implements Source {
  readonly name: string;
  readonly ingress: number = -1;
  /** Frames produced. */
  produced = 0;
  /**
   * Polls in which the pool could not supply every frame due. At a fixed
   * rate those frames are made late (on a later poll), not skipped.
   */
  poolEmpty = 0;
  readonly #pool: FramePool;
  #frameSize = 0;
  #flows = 0;
  #rate = 0;
  #limit = 0;
  readonly #template: Uint8Array;
  #startNs = -1;
  #flow = 0;
  #lib = library();

  /** A generator as described by `spec`. */
  constructor(spec: GeneratorSpec) {
    if (typeof spec !== "object" || spec === null) {
      throw new BulktapError("EINVAL", `generator spec is ${show(spec)}, not an object`);
    }
    this.#pool = FramePool.attach(spec.pool);
    try {
      this.#check(spec);
    } catch (e) {
      this.#pool.close(); // attached: only forgotten here
      throw e;
    }
    this.#template = udpTemplate(this.#frameSize);
    this.name = `generator(${this.#frameSize}B, ${this.#flows} flows, ${
      this.#rate ? this.#rate + " pps" : "max"
    })`;
  }

  #check(spec: GeneratorSpec): void {
    const frameSize = spec.frameSize ?? 64;
    const cap = this.#pool.frameSize - this.#pool.headroom;
    if (!Number.isInteger(frameSize) || frameSize < 42 || frameSize > cap) {
      throw new BulktapError("EINVAL", `generator frameSize ${frameSize} is not in 42..${cap}`);
    }
    const flows = spec.flows ?? 1;
    if (!Number.isInteger(flows) || flows < 1 || flows > 65535) {
      throw new BulktapError("EINVAL", `generator flows ${flows} is not in 1..65535`);
    }
    const rate = spec.rate ?? 0;
    if (!(rate >= 0) || !Number.isFinite(rate)) {
      throw new BulktapError("EINVAL", `generator rate ${rate} is not a non-negative number`);
    }
    this.#frameSize = frameSize;
    this.#flows = flows;
    this.#rate = rate;
    const limit = spec.limit ?? Infinity;
    if (limit !== Infinity) intIn(limit, 0, Number.MAX_SAFE_INTEGER, "generator limit");
    this.#limit = limit;
  }

  #due(nowNs: number): number {
    if (this.#startNs < 0) this.#startNs = nowNs;
    const want = this.#rate === 0
      ? Infinity
      : Math.floor((nowNs - this.#startNs) * this.#rate / 1e9) + 1;
    return Math.min(want, this.#limit) - this.produced;
  }

  poll(refs: Uint32Array, max: number, nowNs: number): number {
    const len = u32Length(refs, `${this.name}: refs`);
    max = checkCount(max, len, `${this.name}: poll`);
    if (!(typeof nowNs === "number" && nowNs >= 0 && nowNs < Infinity)) {
      throw new BulktapError("EINVAL", `${this.name}: nowNs=${show(nowNs)} is not a time in ns`);
    }
    const due = this.#due(nowNs);
    if (due <= 0) return 0;
    const want = due < max ? due : max;
    const pool = this.#pool;
    const n = this.#lib.bt_pool_alloc(pool.handle, refs, len, want);
    if (n < want) this.poolEmpty++;
    if (n <= 0) return 0;
    // One clock reading per batch: every frame carries its batch's time.
    const stamp = this.#lib.bt_now_ns_f64();
    const bytes = pool.bytes, t = this.#template, size = this.#frameSize;
    let flow = this.#flow;
    for (let i = 0; i < n; i++) {
      const ref = refs[i];
      const off = pool.dataOffset(ref);
      bytes.set(t, off);
      const port = 1024 + flow;
      bytes[off + 34] = port >>> 8;
      bytes[off + 35] = port;
      if (++flow === this.#flows) flow = 0;
      pool.setLength(ref, size);
      pool.setTimestamp(ref, stamp);
    }
    this.#flow = flow;
    this.produced += n;
    return n;
  }

  readyAtNs(nowNs: number): number {
    if (this.produced >= this.#limit) return Infinity;
    if (this.#rate === 0 || this.#startNs < 0) return 0;
    const next = this.#startNs + Math.ceil(this.produced * 1e9 / this.#rate);
    return next <= nowNs ? 0 : next;
  }

  close(): void {
    // Holds nothing between polls.
  }
}

/**
 * A device queue as a source: frames transmitted to the device by one
 * stage of a pipeline are read here by the next. Sleeps on the queue's
 * eventfd (nonblocking FFI wait) and is woken by a producer's flush.
 *
 * @example
 * ```ts
 * import { Device, FramePool, QueueSource } from "./mod.ts";
 * using pool = new FramePool({ frames: 64 });
 * using dev = new Device({ pool });
 * const src = new QueueSource({ kind: "queue", device: dev.handle, queue: 0 });
 * console.log(src.poll(new Uint32Array(8), 8)); // 0: nothing sent yet
 * ```
 */
export class QueueSource implements Source {
  readonly name: string;
  readonly ingress: number;
  readonly #dev: number;
  readonly #queue: number;
  #waits: WaitSource;
  #lib = library();

  /** A reader of queue `spec.queue` of device `spec.device`. */
  constructor(spec: QueueSourceSpec) {
    this.#dev = u32Arg(spec.device, "queue source device");
    this.#queue = intIn(spec.queue, 0, 255, "queue source queue");
    this.ingress = intIn(spec.ingress ?? -1, -1, 0x7fffffff, "queue source ingress");
    this.name = `queue(${spec.device}:${spec.queue})`;
    checkErrno(this.#lib.bt_queue_count(this.#dev, this.#queue), `source ${this.name}`);
    this.#waits = queueWaitSource(this.#dev, this.#queue);
  }

  poll(refs: Uint32Array, max: number): number {
    const len = u32Length(refs, `${this.name}: refs`);
    max = checkCount(max, len, `${this.name}: poll`);
    const n = this.#lib.bt_queue_read(this.#dev, this.#queue, refs, len, max);
    return n < 0 ? 0 : n; // a closed device is an empty source
  }

  readyAtNs(): number {
    return Infinity;
  }

  /**
   * Resolves when the queue has frames or `timeoutMs` passes (negative:
   * never). Shares one sleeping thread with every other waiter of the
   * queue in this Worker (see `waiter.ts`).
   */
  wait(timeoutMs: number): Promise<unknown> {
    return waitShared(this.#waits, waitTimeout("timeoutMs", timeoutMs));
  }

  wake(): void {
    this.#lib.bt_flush(this.#dev, this.#queue);
  }

  close(): void {
    // Frames left in the queue stay there; the device's close returns them.
  }
}

registerSourceKind("generator", (spec) => new GeneratorSource(spec as GeneratorSpec));
registerSourceKind("queue", (spec) => new QueueSource(spec as QueueSourceSpec));
