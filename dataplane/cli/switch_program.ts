/**
 * The program `switch` runs in each Worker: an {@linkcode L2Switch} whose
 * table lives in shared memory (one table per Worker, read by the main
 * thread for `--fdb`), and per-port counts of what it decided, also in
 * shared memory. Loaded by the Workers as a module (`switchProgram`);
 * `SwitchShared` is the main thread's side.
 *
 * @module
 */
import { FramePool } from "../pool.ts";
import type { Program } from "../program.ts";
import { L2Switch, type L2SwitchEntry } from "../programs.ts";
import { Verdict } from "../verdict.ts";

/** Most ports a switch has. */
export const MAX_PORTS = 64;

/** What the program counted per ingress port, by index in a port's block. */
export const PortCounter = {
  /** Frames the program saw from the port. */
  IN: 0,
  /** Sent to the one port their destination was learned on. */
  UNICAST: 1,
  /** Flooded: destination unicast but not (or no longer) learned. */
  FLOOD_UNKNOWN: 2,
  /** Flooded: broadcast or multicast destination. */
  FLOOD_GROUP: 3,
  /** Dropped: the destination was learned on the port the frame came from. */
  DROP_SAME_PORT: 4,
  /** Dropped: too short for an Ethernet header. */
  DROP_RUNT: 5,
  /** Counters per port. */
  COUNT: 6,
} as const;

/** Options of {@linkcode switchProgram} (structured-cloneable). */
export interface SwitchProgramOptions extends Record<string, unknown> {
  /** Entry lifetime, ns. */
  ageNs: number;
  /** Table entries per Worker. */
  capacity: number;
  /** Int32 slot counter (first 8 bytes), then each Worker's port counters. */
  counters: SharedArrayBuffer;
  /** One table per Worker, `L2Switch.tableBytes(capacity)` bytes each. */
  tables: SharedArrayBuffer[];
}

const BLOCK = MAX_PORTS * PortCounter.COUNT;

/**
 * The factory a Worker calls: takes the next free slot (its table and
 * counter block) and returns the switch's program, counting per port.
 */
export function switchProgram(o: SwitchProgramOptions): Program {
  const slot = Atomics.add(new Int32Array(o.counters, 0, 2), 0, 1);
  const sw = new L2Switch({ ageNs: o.ageNs, capacity: o.capacity, memory: o.tables[slot] });
  const c = new Float64Array(o.counters, 8 + slot * BLOCK * 8, BLOCK);
  const run = sw.program;
  return (batch) => {
    run(batch);
    const ingress = batch.ingress;
    if (ingress < 0 || ingress >= MAX_PORTS) return;
    const { refs, verdicts } = batch;
    let uni = 0, unknown = 0, group = 0, same = 0, runt = 0;
    for (let i = 0; i < batch.count; i++) {
      const action = verdicts[i] & 0xff;
      if (action === Verdict.REDIRECT) {
        uni++;
      } else if (action === Verdict.BROADCAST) {
        const ref = refs[i];
        const pool = FramePool.of(ref);
        if (pool.bytes[pool.dataOffset(ref)] & 1) group++;
        else unknown++;
      } else if (action === Verdict.DROP) {
        const ref = refs[i];
        if (FramePool.of(ref).length(ref) < 14) runt++;
        else same++;
      }
    }
    const b = ingress * PortCounter.COUNT;
    c[b + PortCounter.IN] += batch.count;
    c[b + PortCounter.UNICAST] += uni;
    c[b + PortCounter.FLOOD_UNKNOWN] += unknown;
    c[b + PortCounter.FLOOD_GROUP] += group;
    c[b + PortCounter.DROP_SAME_PORT] += same;
    c[b + PortCounter.DROP_RUNT] += runt;
  };
}

/** What the program counted for one port, summed over Workers. */
export interface SwitchPortCounts {
  /** Frames the program saw from the port. */
  in: number;
  /** Sent to the port their destination was learned on. */
  unicast: number;
  /** Flooded for an unknown unicast destination. */
  floodedUnknown: number;
  /** Flooded for a broadcast or multicast destination. */
  floodedGroup: number;
  /** Dropped: destination learned on this same port. */
  droppedSamePort: number;
  /** Dropped: shorter than an Ethernet header. */
  droppedRunt: number;
}

/** The main thread's side: the shared memory, the options to hand over, and readers. */
export class SwitchShared {
  /** Options for the program spec. */
  readonly options: SwitchProgramOptions;

  /** Memory for `cpus` Workers' tables and counters. */
  constructor(cpus: number, ageNs: number, capacity = 4096) {
    this.options = {
      ageNs,
      capacity,
      counters: new SharedArrayBuffer(8 + cpus * BLOCK * 8),
      tables: Array.from(
        { length: cpus },
        () => new SharedArrayBuffer(L2Switch.tableBytes(capacity)),
      ),
    };
  }

  /** Port `port`'s counts now, over every Worker (live reads of shared memory). */
  port(port: number): SwitchPortCounts {
    const cpus = this.options.tables.length;
    const c = new Float64Array(this.options.counters, 8, cpus * BLOCK);
    const sum = (k: number) => {
      let s = 0;
      for (let w = 0; w < cpus; w++) s += c[w * BLOCK + port * PortCounter.COUNT + k];
      return s;
    };
    return {
      in: sum(PortCounter.IN),
      unicast: sum(PortCounter.UNICAST),
      floodedUnknown: sum(PortCounter.FLOOD_UNKNOWN),
      floodedGroup: sum(PortCounter.FLOOD_GROUP),
      droppedSamePort: sum(PortCounter.DROP_SAME_PORT),
      droppedRunt: sum(PortCounter.DROP_RUNT),
    };
  }

  /**
   * The learned table at `nowNs`: every MAC last seen no longer than the
   * age ago, on the port of its newest sighting over all Workers (each
   * Worker learns what its own queues see), oldest last.
   */
  fdb(nowNs: number): L2SwitchEntry[] {
    const newest = new Map<number, L2SwitchEntry>();
    for (const t of this.options.tables) {
      for (const e of L2Switch.entries(t)) {
        const had = newest.get(e.mac);
        if (!had || had.seenNs < e.seenNs) newest.set(e.mac, e);
      }
    }
    return [...newest.values()]
      .filter((e) => nowNs - e.seenNs <= this.options.ageNs)
      .sort((x, y) => y.seenNs - x.seenNs);
  }
}

/** A 48-bit MAC as `aa:bb:cc:dd:ee:ff`. */
export function macString(mac: number): string {
  const hex = mac.toString(16).padStart(12, "0");
  return hex.match(/../g)!.join(":");
}
