/**
 * One fuzz case: the objects it made, the refs the library handed it, the
 * findings so far, and the checks run after every case: canaries around
 * arrays intact, a bystander pool untouched, every pool's accounting
 * (free + held + queued = frames), no frame queued once every device is
 * closed, no frame held that the caller never received, and every pool
 * closing without EBUSY once the caller's frames are back.
 *
 * @module
 */
import { BulktapError, Device, FramePool, FrameState, freeFrames, META } from "../../../mod.ts";
import { openPools } from "../../../dataplane/pool.ts";
import { type ArrSpec, makeArray, type RefSource, type RefSpec } from "./values.ts";

/** Kinds of finding, most severe first. */
export type FindingKind =
  | "out-of-bounds" // a write outside the array the caller named
  | "bystander" // memory of a pool the case never touched changed
  | "lost-frame" // accounting broken, a frame queued nowhere or held unseen
  | "hang" // a call did not settle within its timeout
  | "unchecked" // a bad value accepted silently (a ref of another pool, a stale object)
  | "untyped"; // an exception that is not a BulktapError

/** A finding of a case. */
export interface Finding {
  kind: FindingKind;
  what: string;
}

/** Thrown by a property when a case has findings (fast-check reports it). */
export class CaseFailure extends Error {
  constructor(readonly findings: Finding[]) {
    super(findings.map((f) => `[${f.kind}] ${f.what}`).join("\n"));
  }
}

/** Totals over a child run. */
export const totals = { cases: 0, calls: 0, typed: 0, ffi: 0 };

/** Pools a case left unclosable: reported once, then left alone. */
const abandoned = new Set<FramePool>();

/** A pool no case names: its bytes and counters must never change. */
let bystander: { pool: FramePool; held: Uint32Array; sum: number } | undefined;

function checksum(b: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < b.length; i += 4) h = (Math.imul(h, 31) + (b[i] | b[i + 3] << 8)) | 0;
  return h;
}

function getBystander() {
  if (!bystander) {
    const pool = new FramePool({ frames: 16, frameSize: 256, headroom: 64 });
    const held = new Uint32Array(8);
    pool.alloc(held);
    for (const r of held) pool.write(r, new Uint8Array(64).fill(r & 0xff));
    bystander = { pool, held, sum: checksum(pool.bytes) };
  }
  return bystander;
}

/** The bystander pool's slot (forged refs avoid it). */
export function bystanderSlot(): number {
  return getBystander().pool.slot;
}

/** Frames a case starts with. */
export interface CaseOptions {
  frames?: number;
  held?: number;
  queues?: number;
  ringSize?: number;
}

/** The state of one case. */
export class Case implements RefSource {
  readonly findings: Finding[] = [];
  readonly pools: FramePool[] = [];
  readonly devices: Device[] = [];
  readonly closers: (() => unknown)[] = [];
  readonly known = new Set<number>();
  readonly held: number[] = [];
  readonly sent: number[] = [];
  readonly stale: number[] = [];
  readonly #made: { check(): string | undefined; label: string }[] = [];
  pool!: FramePool;
  other!: FramePool;
  dev!: Device;

  /** A case with a main pool, a second pool and a device on the main pool. */
  static create(o: CaseOptions = {}): Case {
    getBystander();
    const c = new Case();
    c.pool = c.newPool({ frames: o.frames ?? 512, frameSize: 256, headroom: 64 });
    c.other = c.newPool({ frames: 64, frameSize: 256, headroom: 64 });
    c.dev = c.newDevice({
      pool: c.pool,
      queues: o.queues ?? 2,
      ringSize: o.ringSize ?? 64,
      cpu: 0,
    });
    const take = (p: FramePool, n: number) => {
      const refs = new Uint32Array(n);
      const got = p.alloc(refs);
      for (let i = 0; i < got; i++) {
        p.setLength(refs[i], 60);
        p.setTimestamp(refs[i], 1);
      }
      c.receive(refs, got);
      return [...refs.subarray(0, got)];
    };
    c.held.push(...take(c.pool, o.held ?? 48));
    c.otherHeld = take(c.other, 8);
    // A few frames in a queue, so reads and closes have something to move.
    const q = Uint32Array.from(take(c.pool, 8));
    c.dev.xmit(q, { cpu: 0 });
    c.sent.push(...q);
    // A stale ref: a frame of a pool that is gone.
    const gone = new FramePool({ frames: 4, frameSize: 128, headroom: 64 });
    c.stale.push((gone.slot << 24) | 1);
    gone.close();
    return c;
  }

  otherHeld: number[] = [];

  /** Register a pool the case made. */
  newPool(o: ConstructorParameters<typeof FramePool>[0]): FramePool {
    const p = new FramePool(o);
    this.pools.push(p);
    return p;
  }

  /** Register a device the case made. */
  newDevice(o: ConstructorParameters<typeof Device>[0]): Device {
    const d = new Device(o);
    this.devices.push(d);
    return d;
  }

  /**
   * Reassign a public field, as a careless caller may. A TypeError from
   * the assignment itself (a read-only field) is the right answer.
   */
  assign(obj: object, field: string, v: unknown): void {
    totals.calls++;
    if (!this.#saved.has(obj)) {
      const keep: Record<string, unknown> = {};
      for (const k of Object.keys(obj)) keep[k] = (obj as Record<string, unknown>)[k];
      for (
        const k of [
          "handle",
          "slot",
          "frames",
          "frameSize",
          "headroom",
          "bytes",
          "refs",
          "count",
          "words",
          "pool",
          "queues",
          "cpu",
        ]
      ) {
        try {
          keep[k] = (obj as Record<string, unknown>)[k];
        } catch {
          // a getter that throws: nothing to restore
        }
      }
      this.#saved.set(obj, keep);
    }
    try {
      (obj as Record<string, unknown>)[field] = v;
    } catch (e) {
      if (!(e instanceof TypeError)) this.#caught(`${field} = ${fmt(v)}`, e);
    }
  }

  readonly #saved = new Map<object, Record<string, unknown>>();

  /** Undo {@linkcode Case.assign}: the harness closes objects by their real fields. */
  #restore(): void {
    for (const [obj, keep] of this.#saved) {
      for (const [k, v] of Object.entries(keep)) {
        try {
          if ((obj as Record<string, unknown>)[k] !== v) (obj as Record<string, unknown>)[k] = v;
        } catch {
          // read-only: it was never changed
        }
      }
    }
  }

  /** Remember the first `n` refs of `arr` as handed to the caller. */
  receive(arr: ArrayLike<number>, n: number): void {
    for (let i = 0; i < n && i < arr.length; i++) this.known.add(arr[i] >>> 0);
  }

  ref(s: RefSpec): number {
    const pick = (xs: number[], i: number, alt: number) => xs.length ? xs[i % xs.length] : alt;
    if ("held" in s) return pick(this.held, s.held, 0);
    if ("free" in s) {
      return (this.pool.slot << 24) | (this.pool.frames - 1 - (s.free % this.pool.frames));
    }
    if ("queued" in s) return pick(this.sent, s.queued, 0);
    if ("past" in s) return (this.pool.slot << 24) | (this.pool.frames + s.past);
    if ("other" in s) return pick(this.otherHeld, s.other, 0);
    if ("stale" in s) return pick(this.stale, s.stale, 0);
    const r = typeof s.raw === "number" ? s.raw : 0;
    // Never forge a ref into the bystander pool: it must stay untouched.
    return (r >>> 24) === bystanderSlot() ? r & 0xffffff : r;
  }

  /** Build a hostile array; its canaries are checked after the case. */
  array(spec: ArrSpec, label: string): unknown {
    const m = makeArray(spec, this);
    this.#made.push({ check: m.check, label });
    return m.value;
  }

  /** Record a finding. */
  find(kind: FindingKind, what: string): void {
    this.findings.push({ kind, what });
  }

  /**
   * Call `fn` as one API call: a BulktapError is the right answer to a bad
   * value; any other exception is an "untyped" finding.
   */
  call<T>(label: string, fn: () => T): T | undefined {
    totals.calls++;
    try {
      return fn();
    } catch (e) {
      this.#caught(label, e);
      return undefined;
    }
  }

  /** Same as {@linkcode Case.call} for async calls, with a timeout ("hang"). */
  async callAsync<T>(label: string, fn: () => Promise<T>, ms = 3000): Promise<T | undefined> {
    totals.calls++;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), ms)));
    try {
      const r = await Promise.race([fn(), timeout]);
      if (r === "timeout") {
        this.find("hang", `${label} did not settle within ${ms} ms`);
        return undefined;
      }
      return r as T;
    } catch (e) {
      this.#caught(label, e);
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  #caught(label: string, e: unknown): void {
    if (e instanceof BulktapError) {
      totals.typed++;
      if (!e.code) this.find("untyped", `${label}: BulktapError without a code: ${e.message}`);
      return;
    }
    const name = e instanceof Error ? e.constructor.name : typeof e;
    const msg = e instanceof Error ? e.message : String(e);
    this.find("untyped", `${label}: ${name}: ${msg.split("\n")[0].slice(0, 300)}`);
  }

  /** Expect `fn` to throw a BulktapError; returning is an "unchecked" finding. */
  refuse(label: string, fn: () => unknown): void {
    totals.calls++;
    try {
      const r = fn();
      this.find(
        "unchecked",
        `${label} was accepted (returned ${fmt(r)}) instead of a BulktapError`,
      );
    } catch (e) {
      this.#caught(label, e);
    }
  }

  /**
   * The checks after a case; then everything the case made is closed.
   * Returns the findings (empty: the case passed).
   */
  finish(): Finding[] {
    this.#restore();
    for (const m of this.#made) {
      const bad = m.check();
      if (bad) this.find("out-of-bounds", `${m.label}: ${bad}`);
    }
    for (const c of this.closers.splice(0)) {
      try {
        c();
      } catch {
        // closing is best effort; the pool checks below judge the result
      }
    }
    for (const p of this.#livePools()) this.#accounting(p, "after the case");
    for (const d of this.devices) {
      try {
        d.close();
      } catch (e) {
        if (!(e instanceof BulktapError)) this.#caught(`closing device ${d.handle}`, e);
      }
    }
    for (const p of this.#livePools()) this.#returnAndClose(p);
    // Attached pools and pools the case made through the API, left open.
    for (const p of openPools()) {
      if (p === bystander?.pool || abandoned.has(p)) continue;
      try {
        p.close();
      } catch {
        if (!this.pools.includes(p)) this.#returnAndClose(p);
      }
    }
    const b = getBystander();
    const s = b.pool.stats();
    if (checksum(b.pool.bytes) !== b.sum || s.held !== 8 || s.free !== 8) {
      this.find("bystander", `pool slot ${b.pool.slot} that no call named changed`);
      bystander = undefined; // a fresh one for the next case
    }
    return this.findings;
  }

  #livePools(): FramePool[] {
    return this.pools.filter((p) => !p.closed);
  }

  #accounting(p: FramePool, when: string): void {
    let s;
    try {
      s = p.stats();
    } catch (e) {
      this.find("lost-frame", `stats of pool ${p.handle} ${when} failed: ${e}`);
      return;
    }
    if (s.free + s.held + s.queued !== s.frames) {
      this.find(
        "lost-frame",
        `pool slot ${p.slot} ${when}: free ${s.free} + held ${s.held} + queued ${s.queued} != ${s.frames}`,
      );
    }
  }

  #returnAndClose(p: FramePool): void {
    if (p.closed) return;
    this.#accounting(p, "after closing the devices");
    const held: number[] = [];
    let queued = 0, unseen = 0;
    for (let i = 0; i < p.frames; i++) {
      const st = p.bytes[i * p.frameSize + META.state];
      const ref = ((p.slot << 24) | i) >>> 0;
      if (st === FrameState.HELD) {
        held.push(ref);
        if (!this.known.has(ref)) unseen++;
      } else if (st === FrameState.QUEUED) queued++;
    }
    if (queued) {
      this.find(
        "lost-frame",
        `pool slot ${p.slot}: ${queued} frames queued after every device closed`,
      );
    }
    if (unseen) {
      this.find(
        "lost-frame",
        `pool slot ${p.slot}: ${unseen} frames held that no call handed to the caller`,
      );
    }
    for (let i = 0; i < held.length; i += 256) {
      try {
        freeFrames(Uint32Array.from(held.slice(i, i + 256)));
      } catch {
        // a frame whose metadata the case scribbled on: the close says
      }
    }
    try {
      p.close();
    } catch (e) {
      const st = (() => {
        try {
          return JSON.stringify(p.stats());
        } catch {
          return "?";
        }
      })();
      this.find("lost-frame", `pool slot ${p.slot} does not close after the case: ${e}; ${st}`);
      abandoned.add(p); // it cannot close: report it once, then leave it
    }
  }
}

/** A short printable form of a value. */
export function fmt(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" || typeof v === "boolean" || v == null) return String(v);
  if (typeof v === "string") return JSON.stringify(v.slice(0, 40));
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as Uint8Array).length ?? "?"})`;
  return Object.prototype.toString.call(v);
}
