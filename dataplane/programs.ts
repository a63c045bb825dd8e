/**
 * Ready programs: `forward`, `drop`, `reflect` and `l2switch`, and the
 * table Workers use to build a program from a {@linkcode ProgramSpec}.
 *
 * @module
 */
import { show } from "./boundary.ts";
import { BulktapError } from "./errors.ts";
import { ethDst, ethSrc, isGroupMac, swapMacs } from "./headers.ts";
import { FramePool } from "./pool.ts";
import type { PacketBatch, Program, ProgramSpec } from "./program.ts";
import { redirect, Verdict } from "./verdict.ts";

/**
 * Every frame to one device-map index.
 *
 * @example
 * ```ts
 * import { forward } from "./mod.ts";
 * const program = forward(0); // everything to device-map entry 0
 * ```
 */
export function forward(target = 0): Program {
  if (!Number.isInteger(target) || target < 0 || target > 0xffffff) {
    throw new BulktapError("EINVAL", `forward target ${target} is not a device-map index`);
  }
  const v = redirect(target);
  return (batch) => {
    batch.verdicts.fill(v, 0, batch.count);
  };
}

/**
 * Two ports joined: frames that came in on device-map index 0 go out of 1,
 * and from 1 out of 0 (what `forward A B` does, as a program). Frames from
 * any other ingress are dropped.
 *
 * @example
 * ```ts
 * import { pair } from "./mod.ts";
 * const p = pair();
 * const batch = { refs: new Uint32Array(1), count: 1, verdicts: new Uint32Array(1), ingress: 1, nowNs: 0, targets: 2 };
 * p(batch);
 * console.log(batch.verdicts[0] >>> 8); // 0: out of port 0
 * ```
 */
export function pair(): Program {
  const to0 = redirect(0), to1 = redirect(1);
  return (batch) => {
    const v = batch.ingress === 0 ? to1 : batch.ingress === 1 ? to0 : Verdict.DROP;
    batch.verdicts.fill(v, 0, batch.count);
  };
}

/**
 * Every frame dropped (returned to its pool).
 *
 * @example
 * ```ts
 * import { drop } from "./mod.ts";
 * const program = drop();
 * ```
 */
export function drop(): Program {
  return (batch) => {
    batch.verdicts.fill(Verdict.DROP, 0, batch.count);
  };
}

/**
 * Swap source and destination MAC and send each frame back out of the
 * device it came from (`TX`); frames too short for Ethernet are dropped.
 *
 * @example
 * ```ts
 * import { reflect } from "./mod.ts";
 * const program = reflect();
 * ```
 */
export function reflect(): Program {
  return (batch) => {
    const { refs, verdicts } = batch;
    for (let i = 0; i < batch.count; i++) {
      const ref = refs[i];
      const pool = FramePool.of(ref);
      verdicts[i] = swapMacs(pool.bytes, pool.dataOffset(ref), pool.length(ref)) < 0
        ? Verdict.DROP
        : Verdict.TX;
    }
  };
}

/** Options of {@linkcode L2Switch}. */
export interface L2SwitchOptions {
  /** MAC table entries (rounded up to a power of two; default 4096). */
  capacity?: number;
  /** An entry not refreshed for this long is forgotten (default 300 s, as bridges do). */
  ageNs?: number;
  /**
   * Memory for the table, {@linkcode L2Switch.tableBytes}`(capacity)` bytes
   * (e.g. a `SharedArrayBuffer`, so another thread can read what was
   * learned with {@linkcode L2Switch.entries}); default: its own.
   */
  memory?: ArrayBufferLike;
}

/** One learned MAC, as {@linkcode L2Switch.entries} gives it. */
export interface L2SwitchEntry {
  /** The address, as a 48-bit number. */
  mac: number;
  /** The port (device-map index) it was last seen on. */
  port: number;
  /** When it was last seen (the batch's `nowNs`, CLOCK_MONOTONIC ns). */
  seenNs: number;
}

/**
 * A learning switch over the device map: each device-map entry is a port.
 * It learns the source MAC of every frame on its ingress port, sends frames
 * for known MACs to their port (dropping those whose port is the ingress),
 * and floods unknown, broadcast and multicast destinations to every other
 * port (`BROADCAST`). Entries age out after `ageNs`. The table is an
 * open-addressed typed-array hash: learning allocates nothing.
 *
 * @example
 * ```ts
 * import { L2Switch } from "./mod.ts";
 * const sw = new L2Switch({ ageNs: 60e9 });
 * const program = sw.program; // give this to the scheduler
 * console.log(sw.size); // 0
 * ```
 */
export class L2Switch {
  /** The program; the switch's state lives in this object. */
  readonly program: Program;
  /** How long an entry lives without being refreshed, in ns. */
  readonly ageNs: number;
  #macs: Float64Array;
  #ports: Int32Array;
  #seen: Float64Array;
  #mask: number;
  #size = 0;

  /** A switch with an empty table. */
  constructor(options: L2SwitchOptions = {}) {
    const want = options.capacity ?? 4096;
    if (!Number.isInteger(want) || want < 2 || want > 1 << 24) {
      throw new BulktapError("EINVAL", `l2switch capacity ${want} is not in 2..16777216`);
    }
    const cap = L2Switch.#slots(want);
    this.ageNs = options.ageNs ?? 300e9;
    if (!(this.ageNs > 0)) throw new BulktapError("EINVAL", `ageNs ${this.ageNs} is not positive`);
    const mem = options.memory ?? new ArrayBuffer(cap * 20);
    if (mem.byteLength !== cap * 20) {
      throw new BulktapError(
        "EINVAL",
        `l2switch memory is ${mem.byteLength} bytes, not tableBytes(${want}) = ${cap * 20}`,
      );
    }
    // Layout: MACs, last-seen times (f64 each), then ports (i32).
    this.#macs = new Float64Array(mem, 0, cap).fill(-1);
    this.#seen = new Float64Array(mem, cap * 8, cap).fill(0);
    this.#ports = new Int32Array(mem, cap * 16, cap).fill(0);
    this.#mask = cap - 1;
    this.program = (batch) => this.#run(batch);
  }

  static #slots(want: number): number {
    let cap = 2;
    while (cap < want * 2) cap *= 2; // at most half full: short probes
    return cap;
  }

  /**
   * Bytes of the table of a switch with `capacity` entries (the size of
   * {@linkcode L2SwitchOptions.memory}).
   */
  static tableBytes(capacity = 4096): number {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 1 << 24) {
      throw new BulktapError("EINVAL", `l2switch capacity ${capacity} is not in 2..16777216`);
    }
    return L2Switch.#slots(capacity) * 20;
  }

  /**
   * Every entry in a table's memory (given as
   * {@linkcode L2SwitchOptions.memory}), aged ones included: the caller
   * decides what is too old. Read while the switch runs, an entry may be
   * half updated; read after it stopped, the table is exact.
   *
   * @example
   * ```ts
   * import { L2Switch } from "./mod.ts";
   * const memory = new ArrayBuffer(L2Switch.tableBytes(16));
   * const sw = new L2Switch({ capacity: 16, memory });
   * sw.learn(0x020000000001, 1, 5);
   * console.log(L2Switch.entries(memory)); // [{ mac: 2199023255553, port: 1, seenNs: 5 }]
   * ```
   */
  static entries(memory: ArrayBufferLike): L2SwitchEntry[] {
    const cap = memory.byteLength / 20;
    const macs = new Float64Array(memory, 0, cap);
    const seen = new Float64Array(memory, cap * 8, cap);
    const ports = new Int32Array(memory, cap * 16, cap);
    const out: L2SwitchEntry[] = [];
    for (let s = 0; s < cap; s++) {
      if (macs[s] >= 0) out.push({ mac: macs[s], port: ports[s], seenNs: seen[s] });
    }
    return out;
  }

  /** Entries in the table (aged entries count until overwritten or looked up). */
  get size(): number {
    return this.#size;
  }

  #slot(mac: number): number {
    // Mix both halves; MACs of one vendor share their high bytes.
    const h = Math.imul((mac >>> 0) ^ Math.floor(mac / 0x100000000), 0x9e3779b1);
    return (h ^ h >>> 15) & this.#mask;
  }

  /**
   * The port `mac` was last seen on, or -1 if unknown or aged out at `nowNs`.
   */
  lookup(mac: number, nowNs: number): number {
    L2Switch.#check(mac, 0, nowNs, "lookup");
    return this.#lookup(mac, nowNs);
  }

  static #check(mac: number, port: number, nowNs: number, what: string): void {
    if (!(typeof mac === "number" && Number.isInteger(mac) && mac >= 0 && mac < 2 ** 48)) {
      throw new BulktapError("EINVAL", `${what}: mac ${show(mac)} is not a 48-bit address`);
    }
    if (!(typeof port === "number" && Number.isInteger(port) && port >= 0 && port <= 0xffffff)) {
      throw new BulktapError("EINVAL", `${what}: port ${show(port)} is not a device-map index`);
    }
    if (!(typeof nowNs === "number" && nowNs === nowNs)) {
      throw new BulktapError("EINVAL", `${what}: nowNs ${show(nowNs)} is not a time in ns`);
    }
  }

  #lookup(mac: number, nowNs: number): number {
    let s = this.#slot(mac);
    for (let probes = 0; probes <= this.#mask; probes++) {
      const m = this.#macs[s];
      if (m === -1) return -1;
      if (m === mac) {
        return nowNs - this.#seen[s] > this.ageNs ? -1 : this.#ports[s];
      }
      s = (s + 1) & this.#mask;
    }
    return -1;
  }

  /** Record that `mac` was seen on `port` at `nowNs`. */
  learn(mac: number, port: number, nowNs: number): void {
    L2Switch.#check(mac, port, nowNs, "learn");
    this.#learn(mac, port, nowNs);
  }

  #learn(mac: number, port: number, nowNs: number): void {
    let s = this.#slot(mac);
    let oldest = -1;
    for (let probes = 0; probes <= this.#mask; probes++) {
      const m = this.#macs[s];
      if (m === mac || m === -1) {
        if (m === -1) this.#size++;
        this.#macs[s] = mac;
        this.#ports[s] = port;
        this.#seen[s] = nowNs;
        return;
      }
      if (oldest < 0 && nowNs - this.#seen[s] > this.ageNs) oldest = s;
      if (probes >= 8 && oldest >= 0) break; // reuse an aged entry rather than probe on
      s = (s + 1) & this.#mask;
    }
    if (oldest >= 0) {
      this.#macs[oldest] = mac;
      this.#ports[oldest] = port;
      this.#seen[oldest] = nowNs;
    }
    // Table full of live entries: do not learn (flooding still works).
  }

  #run(batch: PacketBatch): void {
    const { refs, verdicts, ingress, nowNs } = batch;
    for (let i = 0; i < batch.count; i++) {
      const ref = refs[i];
      const pool = FramePool.of(ref);
      const off = pool.dataOffset(ref);
      const len = pool.length(ref);
      const dst = ethDst(pool.bytes, off, len);
      if (dst < 0) {
        verdicts[i] = Verdict.DROP;
        continue;
      }
      const src = ethSrc(pool.bytes, off, len);
      if (ingress >= 0 && !isGroupMac(src)) this.#learn(src, ingress, nowNs);
      if (isGroupMac(dst)) {
        verdicts[i] = Verdict.BROADCAST;
        continue;
      }
      const port = this.#lookup(dst, nowNs);
      verdicts[i] = port < 0 ? Verdict.BROADCAST : port === ingress ? Verdict.DROP : redirect(port);
    }
  }
}

/**
 * Build a program from its description (in a Worker). Ready programs:
 * `forward` (`{ target }`), `drop`, `reflect`, `l2switch` (`{ capacity,
 * ageNs }`); with `module`, the module's export `name` is called with
 * `options` and must return a program.
 *
 * @example
 * ```ts
 * import { programFromSpec } from "./mod.ts";
 * const p = await programFromSpec({ name: "forward", options: { target: 1 } });
 * ```
 */
export async function programFromSpec(spec: ProgramSpec): Promise<Program> {
  const o = spec.options ?? {};
  if (spec.module !== undefined) {
    const mod = await import(spec.module);
    const factory = mod[spec.name];
    if (typeof factory !== "function") {
      throw new BulktapError("ENOENT", `${spec.module} has no export ${spec.name}`);
    }
    const p = factory(o);
    if (typeof p !== "function") {
      throw new BulktapError("EINVAL", `${spec.module}#${spec.name}(options) is not a program`);
    }
    return p as Program;
  }
  switch (spec.name) {
    case "forward":
      return forward((o.target as number | undefined) ?? 0);
    case "drop":
      return drop();
    case "pair":
      return pair();
    case "reflect":
      return reflect();
    case "l2switch":
      return new L2Switch(o as L2SwitchOptions).program;
  }
  throw new BulktapError(
    "ENOENT",
    `no program named ${spec.name} (ready programs: forward, pair, drop, reflect, l2switch)`,
  );
}
