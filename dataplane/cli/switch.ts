/**
 * `deno run -A mod.ts switch TAP1 TAP2 [TAP3 ...] [flags]`: a learning L2
 * switch over 2..64 TAP devices, the user-space counterpart of a Linux
 * bridge. The `L2Switch` program runs on `--cpus` Workers over every queue
 * of every TAP (a port each): it learns source MACs per port, sends frames
 * for a learned MAC out of its port, floods unknown and group destinations
 * to every other port, and forgets a MAC not seen for `--age` seconds.
 * Super-frames cross whole. Runs until SIGINT/SIGTERM, then prints per-port
 * counts (and with `--fdb` the learned table) and exits 0.
 *
 * @module
 */
import type { BulktapError } from "../errors.ts";
import { nowNs } from "../clock.ts";
import type { SchedulerInvalidVerdict } from "../scheduler.ts";
import { TAP_OFFLOADS, TapDevice, tapNameProblem } from "../tap.ts";
import { intFlag, numFlag, parseFlags, reportFailure, reportUsage, UsageError } from "./flags.ts";
import {
  deviceCounts,
  type ForwardCounts,
  invalidWords,
  latencyWords,
  portPool,
  programNotices,
  programTotals,
  startPortProgram,
  stopSignal,
  targetLatencies,
  type TargetLatency,
  type VnetSize,
  vnetSizes,
} from "./tap_ports.ts";
import {
  macString,
  MAX_PORTS,
  type SwitchPortCounts,
  switchProgram,
  SwitchShared,
} from "./switch_program.ts";

const HELP = `usage: deno run -A mod.ts switch TAP1 TAP2 [TAP3 ...] [flags]

A learning L2 switch over 2..${MAX_PORTS} TAP devices (created, or attached to when
they exist; other interfaces are refused, never changed): source MACs are learned
per port, frames for a learned MAC go out of its port only, unknown, broadcast
and multicast destinations are flooded to every other port, and a MAC not seen
for --age seconds is forgotten. Runs until SIGINT/SIGTERM, then prints per-port
counts and exits 0.

flags:
  --cpus N             Workers running the switch, 1..64 (default 1; queue q of every
                       TAP is read on Worker q % N; each Worker learns on its own)
  --queues N           queues per TAP, 1..64 (default 1)
  --bulk N             frames per transmit stage, 1..256 (default 64)
  --mode bulk|single   bulk (default): read and transmit in batches of --bulk;
                       single: one frame per read, program call and transmit
  --age S              forget a MAC not seen for S seconds (default 300, as bridges do)
  --no-vnet-hdr        no virtio-net header: plain frames, no offloads (default: a
                       header and every offload, so TCP crosses as super-frames; a TAP
                       that exists without a header is used without one)
  --vnet-hdr-size N    the header's size, 10 or 12 (default 12; a device made with
                       \`ip tuntap add ... vnet_hdr\` has 10)
  --stats-interval S   print per-port counts every S seconds (default 0: never)
  --fdb                print the learned table at exit (MAC, port, age), like \`bridge fdb\`
  --json               print the final counts (per port, the program's, the table)
                       as one JSON object
  --help               this text
`;

/** Per-port counts as printed. */
interface PortReport {
  /** Frames read from the TAP, written into it, and not written. */
  rx: number;
  tx: number;
  dropped: number;
  /** Why (device drops of frames meant for this port; program drops of frames from it). */
  drops: ForwardCounts["drops"] & { samePort: number; runt: number };
  /** Frames from this port flooded to the others, and why. */
  flooded: number;
  floodedUnknown: number;
  floodedGroup: number;
  /** Frames from this port sent to the one port of their destination. */
  unicast: number;
  /** MACs learned on this port (at exit). */
  learned: number;
  /** Super-frames read and written. */
  rxSuper: number;
  txSuper: number;
  /** Latency of the frames sent into this port: receive time to the write of their bulk. */
  latency?: TargetLatency;
}

interface SwitchOptions {
  ports: string[];
  cpus: number;
  queues: number;
  bulk: number;
  mode: "bulk" | "single";
  ageS: number;
  vnet: VnetSize[];
  notes: string[];
  statsInterval: number;
  fdb: boolean;
  json: boolean;
}

function portReport(dev: ForwardCounts, p: SwitchPortCounts, learned: number): PortReport {
  const drops = { ...dev.drops, samePort: p.droppedSamePort, runt: p.droppedRunt };
  return {
    rx: dev.rx,
    tx: dev.tx,
    dropped: Object.values(drops).reduce((x, y) => x + y, 0),
    drops,
    flooded: p.floodedUnknown + p.floodedGroup,
    floodedUnknown: p.floodedUnknown,
    floodedGroup: p.floodedGroup,
    unicast: p.unicast,
    learned,
    rxSuper: dev.rxSuper,
    txSuper: dev.txSuper,
  };
}

function portLine(name: string, r: PortReport): string {
  const why = Object.entries(r.drops).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`);
  return `${name}: rx ${r.rx} tx ${r.tx} dropped ${r.dropped}` +
    (why.length ? ` (${why.join(", ")})` : "") +
    `; unicast ${r.unicast} flooded ${r.flooded} (unknown ${r.floodedUnknown}, group ${r.floodedGroup})` +
    `; learned ${r.learned}` +
    (r.rxSuper || r.txSuper ? `; super-frames rx ${r.rxSuper} tx ${r.txSuper}` : "") +
    (r.latency ? `; latency into it ${latencyWords(r.latency)}` : "");
}

/**
 * Run the switch with command-line `args` (after `switch`). Resolves with
 * the exit status: 0 after a signal, 1 on a runtime error, 2 on bad usage.
 *
 * @example
 * ```ts ignore
 * import { switchMain } from "./switch.ts";
 * Deno.exit(await switchMain(["bts0", "bts1", "bts2", "--fdb"]));
 * ```
 */
export async function switchMain(args: string[]): Promise<number> {
  let opts: SwitchOptions;
  try {
    const { values, positionals } = parseFlags(args, {
      cpus: "string",
      queues: "string",
      bulk: "string",
      mode: "string",
      age: "string",
      "no-vnet-hdr": "boolean",
      "vnet-hdr-size": "string",
      "stats-interval": "string",
      fdb: "boolean",
      json: "boolean",
      help: "boolean",
    }, true);
    if (values.help) {
      console.log(HELP);
      return 0;
    }
    if (positionals.length < 2 || positionals.length > MAX_PORTS) {
      throw new UsageError(
        `expected 2..${MAX_PORTS} TAP device names, got ${positionals.length}`,
      );
    }
    for (const n of positionals) {
      const why = tapNameProblem(n);
      if (why) throw new UsageError(`device name ${JSON.stringify(n)} ${why}`);
    }
    const dup = positionals.find((n, i) => positionals.indexOf(n) !== i);
    if (dup !== undefined) throw new UsageError(`${JSON.stringify(dup)} is named twice`);
    const mode = values.mode ?? "bulk";
    if (mode !== "bulk" && mode !== "single") {
      throw new UsageError(`--mode=${mode} is not bulk or single`);
    }
    const cpus = intFlag("cpus", values.cpus, 1, 1, 64);
    const queues = intFlag("queues", values.queues, 1, 1, 64);
    const bulk = intFlag("bulk", values.bulk, 64, 1, 256);
    const ageS = numFlag("age", values.age, 300, 0.001, 1e6);
    const statsInterval = numFlag("stats-interval", values["stats-interval"], 0, 0, 1e6);
    const size = values["vnet-hdr-size"];
    if (size !== undefined && size !== "10" && size !== "12") {
      throw new UsageError(`--vnet-hdr-size=${size} is not 10 or 12`);
    }
    if (values["no-vnet-hdr"] && size !== undefined) {
      throw new UsageError("--no-vnet-hdr contradicts --vnet-hdr-size");
    }
    const asked = values["no-vnet-hdr"]
      ? 0
      : size === undefined
      ? undefined
      : Number(size) as 10 | 12;
    const { vnet, notes } = vnetSizes(positionals, asked);
    opts = {
      ports: positionals,
      cpus,
      queues,
      bulk,
      mode,
      ageS,
      vnet,
      notes,
      statsInterval,
      fdb: values.fdb ?? false,
      json: values.json ?? false,
    };
  } catch (e) {
    if (e instanceof UsageError) return reportUsage("switch", e);
    throw e;
  }
  try {
    return await run(opts);
  } catch (e) {
    return reportFailure("switch", e);
  }
}

async function run(o: SwitchOptions): Promise<number> {
  const made = portPool(o.ports.length, o.queues, o.bulk, o.vnet.some((v) => v > 0));
  using pool = made.pool;
  const taps: TapDevice[] = [];
  try {
    for (const [i, name] of o.ports.entries()) {
      // The constructor refuses a name that is not a TAP, as forward does.
      taps.push(
        new TapDevice({
          name,
          queues: o.queues,
          pool,
          ringSize: made.ringSize,
          ioBatch: Math.min(o.bulk, 256),
          vnetHdr: o.vnet[i],
          offloads: o.vnet[i] ? [...TAP_OFFLOADS] : [],
        }),
      );
    }
    return await runOn(o, taps);
  } finally {
    for (const t of taps.reverse()) t.close();
  }
}

async function runOn(o: SwitchOptions, taps: TapDevice[]): Promise<number> {
  for (const n of o.notes) console.error(`bulktap switch: note: ${n}`);
  const shared = new SwitchShared(o.cpus, o.ageS * 1e9);
  const spec = {
    name: switchProgram.name,
    module: new URL("./switch_program.ts", import.meta.url).href,
    options: shared.options,
  };
  let failed: BulktapError | undefined;
  const signal = stopSignal();
  let why: string;
  const t0 = performance.now();
  let report;
  let notices = () => {};
  let programErrors: { cpu: number; message: string }[] = [];
  let invalidVerdicts: SchedulerInvalidVerdict[] = [];
  try {
    const sched = await startPortProgram(taps, spec, o.cpus, o.bulk, o.mode);
    try {
      console.error(
        `bulktap switch: ${o.ports.join(", ")} (${o.queues} queue(s) each, ${o.cpus} Worker(s), ` +
          `mode ${o.mode}, bulk ${o.bulk}, age ${o.ageS} s, vnet ${o.vnet.join("/")}); ` +
          "ready, SIGINT/SIGTERM to stop",
      );
      // A deleted device ends the run with its error; a program error or
      // an invalid verdict is said once (the frames dropped and counted).
      notices = programNotices("switch", () => sched.programErrors, () => sched.invalidVerdicts);
      const watch = setInterval(() => {
        failed = taps.find((t) => t.error)?.error;
        if (failed) signal.stop("error");
        notices();
      }, 200);
      const tick = o.statsInterval > 0
        ? setInterval(() => {
          const secs = ((performance.now() - t0) / 1000).toFixed(1);
          const fdb = shared.fdb(nowNs());
          for (const [i, t] of taps.entries()) {
            const learned = fdb.filter((e) => e.port === i).length;
            const r = portReport(deviceCounts(t), shared.port(i), learned);
            console.error(`[${secs} s] ${portLine(t.name, r)}`);
          }
        }, o.statsInterval * 1000)
        : undefined;
      why = await signal.stopped;
      clearInterval(watch);
      if (tick !== undefined) clearInterval(tick);
    } finally {
      // A Worker that failed (its TAP deleted under it) ends the run, but
      // what every Worker did is still counted and printed.
      report = await sched.close({ rethrow: false });
      failed ??= report.failure;
      notices();
      programErrors = [...sched.programErrors];
      invalidVerdicts = [...sched.invalidVerdicts];
    }
  } finally {
    signal.remove();
  }
  for (const t of taps) await t.drained(2000);
  const now = nowNs();
  const fdb = shared.fdb(now).map((e) => ({
    mac: macString(e.mac),
    port: o.ports[e.port] ?? `#${e.port}`,
    age: Number(((now - e.seenNs) / 1e9).toFixed(3)),
  }));
  const ports: Record<string, PortReport> = {};
  const latency = targetLatencies(report, taps.map((t) => t.name));
  for (const [i, t] of taps.entries()) {
    const learned = fdb.filter((e) => e.port === t.name).length;
    ports[t.name] = portReport(deviceCounts(t), shared.port(i), learned);
    if (latency[t.name]) ports[t.name].latency = latency[t.name];
  }
  const c = report.counters;
  const program = {
    ...programTotals(c),
    programErrors,
    invalidVerdicts,
    floodCopies: c.broadcastCopies,
    floodMissed: c.broadcastMissed,
  };
  const seconds = (performance.now() - t0) / 1000;
  if (o.json) {
    console.log(JSON.stringify({
      ports,
      fdb,
      learned: fdb.length,
      program,
      cpus: o.cpus,
      queues: o.queues,
      bulk: o.bulk,
      mode: o.mode,
      ageSeconds: o.ageS,
      vnetHdr: Object.fromEntries(o.ports.map((n, i) => [n, o.vnet[i]])),
      seconds: Number(seconds.toFixed(3)),
      stoppedBy: why,
    }));
  } else {
    for (const [name, r] of Object.entries(ports)) console.log(portLine(name, r));
    console.log(
      `switch (${o.cpus} Worker(s)): read ${program.rx}, sent ${program.sent} ` +
        `(flood copies ${program.floodCopies}, missed for want of frames ${program.floodMissed}), ` +
        `refused by a full ring ${program.txDropped}, dropped ${program.programDrops}, ` +
        `invalid ${program.invalid} (${invalidWords(program.invalidByReason)}), ` +
        `dropped because the program threw ${program.thrown}; ${fdb.length} MAC(s) learned`,
    );
    if (o.fdb) {
      for (const e of fdb) console.log(`${e.mac} dev ${e.port} age ${e.age.toFixed(1)} s`);
    }
  }
  if (failed) {
    console.error(`bulktap switch: ${failed.message}`);
    return 1;
  }
  return 0;
}
