/**
 * TAP benchmarks (needs root: it creates TAP devices and network namespaces
 * under unique names and removes them afterwards).
 *
 * 1. Frames per second into a TAP: a JS producer transmits frames in bulks
 *    of 64 into three one-queue TAP devices whose writer threads write them
 *    with `write()` per frame (the baseline), or io_uring batches of 16 and
 *    64. The figure is the writer's rate (frames the kernel accepted).
 *
 * 2. Forwarder throughput A -> B, bulk vs single mode: a generator TAP G and
 *    TAP A sit in a namespace with IP forwarding; UDP packets written into G
 *    are routed out of A, read by the forwarder and transmitted into B (in a
 *    second namespace, where the kernel drops them). The figure is frames
 *    written into B per second. The kernel's routing of the generated
 *    traffic shares the same CPUs, so this is an end-to-end figure.
 *
 * Every repeat measures every case once per frame size, in an order that
 * flips on odd repeats (write, uring16, uring64, then uring64 first; the
 * forwarder switches between single and bulk mode the same way), so drift
 * hits all alike. Each run also records drops, producer lock acquisitions,
 * writer wake-ups and write syscalls per frame, and the process's CPU time.
 *
 * Run: `deno run -A bench/tap_bench.ts [--repeats N] [--ms M] [--frame-size 64,1500]`.
 *
 * @module
 */
import process from "node:process";
import { FramePool, TapDevice } from "../dataplane/mod.ts";
import { repeatOrder } from "./stats.ts";
import { intFlag, scriptFlags } from "../dataplane/cli/flags.ts";

/** What one run measured (counter deltas over the run). */
export interface TapRun {
  /** Frames delivered per second (written into the kernel, or into B), millions. */
  mpps: number;
  /** Frames delivered. */
  frames: number;
  /** Length of the run, ns. */
  wallNs: number;
  /** CPU time of the process (every thread, user + system), ns. */
  cpuNs: number;
  /** Frames offered (into the TAP; for the forwarder, sent into A by the kernel). */
  offered: number;
  /** Frames dropped on the measured path. */
  drops: number;
  /** Producer lock acquisitions of the measured device per offered frame. */
  locksPerFrame: number;
  /** Doorbells that woke the measured device's writer thread, per frame. */
  wakeupsPerFrame: number;
  /** Write syscalls or io_uring submits per frame written (into a TAP only). */
  syscallsPerFrame?: number;
}

/** One measured figure: the median and range over the repeats. */
export interface Figure {
  /** What was measured. */
  name: string;
  /** Bytes per frame. */
  frameSize: number;
  /** `write()` per frame / forwarder single mode: "single"; batches: "bulk". */
  mode: "single" | "bulk";
  /** io_uring writes per submit, or forwarder frames per xmit; 1 in single mode. */
  bulk: number;
  /** Median of the runs, in Mpps. */
  median: number;
  /** Smallest run, Mpps. */
  min: number;
  /** Largest run, Mpps. */
  max: number;
  /** Every run, Mpps. */
  runs: number[];
  /** Every run with all its metrics. */
  raw: TapRun[];
  /** What limited the figure, when known. */
  note?: string;
}

/** Options for {@linkcode tapBench}. */
export interface TapBenchOptions {
  /** Runs per figure (default 5). */
  repeats?: number;
  /** Duration of one run in ms (default 500). */
  ms?: number;
  /** Frame sizes (default [64]). */
  frameSizes?: number[];
  /** Skip the forwarder (quick runs). */
  intoOnly?: boolean;
  /** Called after every run. */
  onRun?: (name: string, frameSize: number, repeat: number) => void;
}

/** What {@linkcode tapBench} returns. */
export interface TapBenchResult {
  /** CPU model and count, kernel release. */
  machine: string;
  /** Frames/s into a TAP: write() per frame, io_uring 16, io_uring 64, per frame size. */
  into: Figure[];
  /** Forwarder A->B: single and bulk mode, per frame size. */
  forward: Figure[];
}

function sh(cmd: string): string {
  const r = new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "piped" })
    .outputSync();
  if (!r.success) {
    throw new Error(`\`${cmd}\` failed: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return new TextDecoder().decode(r.stdout);
}

function quiet(cmd: string): void {
  try {
    new Deno.Command("sh", { args: ["-c", `${cmd} 2>/dev/null`] }).outputSync();
  } catch {
    // cleanup is best effort
  }
}

function figure(
  name: string,
  frameSize: number,
  mode: "single" | "bulk",
  bulk: number,
  raw: TapRun[],
): Figure {
  const runs = raw.map((r) => r.mpps);
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { name, frameSize, mode, bulk, median, min: s[0], max: s[s.length - 1], runs, raw };
}

function uid(): string {
  return (Deno.pid % 1296).toString(36) + Math.floor(Math.random() * 46656).toString(36);
}

/** Counters a run reads before and after. */
interface Snap {
  delivered: number;
  txPackets: number;
  txDropped: number;
  locks: number;
  wakeups: number;
  submits: number;
  kernelTx: number;
  kernelDropped: number;
  forwardDropped: number;
}

/**
 * Keep `tap` fed with `frame`s (copied into pool frames) in bulks of 64
 * for `ms`, and return the rate at which `delivered` grew, with the
 * counters' deltas.
 */
function drive(
  pool: FramePool,
  tap: TapDevice,
  frame: Uint8Array,
  ms: number,
  snap: () => Snap,
): TapRun & { d: Snap } {
  const refs = new Uint32Array(64);
  const opts = { count: 0, flush: true, cpu: 0 };
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const s0 = snap();
  const u0 = process.cpuUsage();
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    const n = pool.alloc(refs);
    for (let i = 0; i < n; i++) pool.write(refs[i], frame);
    opts.count = n;
    // A full ring (or an empty pool) means the writer is behind: nap for
    // 20 us instead of spinning on the CPU the writer needs (2-core boxes).
    const sent = n ? tap.xmit(refs, opts) : 0;
    if (n < refs.length || sent < n) Atomics.wait(nap, 0, 0, 0.02);
    t = performance.now();
  }
  const s1 = snap();
  const u = process.cpuUsage(u0);
  const d = Object.fromEntries(
    Object.keys(s1).map((k) => [k, s1[k as keyof Snap] - s0[k as keyof Snap]]),
  ) as unknown as Snap;
  const frames = d.delivered;
  return {
    mpps: frames / ((t - t0) * 1000),
    frames,
    wallNs: (t - t0) * 1e6,
    cpuNs: (u.user + u.system) * 1000,
    offered: 0,
    drops: 0,
    locksPerFrame: 0,
    wakeupsPerFrame: d.wakeups / Math.max(1, frames),
    d,
  };
}

/** An Ethernet frame of `size` bytes of an ethertype the kernel drops at once. */
function rawFrame(size: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set([0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5]);
  return f;
}

/** An Ethernet + IPv4 + UDP frame of `size` bytes from 10.213.90.2 to 10.213.91.2. */
function udpFrame(dstMac: number[], size: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set([...dstMac, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]);
  const ipLen = size - 14, udpLen = size - 34;
  const ip = [
    0x45,
    0,
    ipLen >> 8,
    ipLen & 0xff,
    0,
    0,
    0x40,
    0,
    64,
    17,
    0,
    0,
    10,
    213,
    90,
    2,
    10,
    213,
    91,
    2,
  ];
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (ip[i] << 8) | ip[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  sum = ~sum & 0xffff;
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  f.set(ip, 14);
  // UDP 12345 -> 12345, no checksum.
  f.set([0x30, 0x39, 0x30, 0x39, udpLen >> 8, udpLen & 0xff, 0, 0], 34);
  return f;
}

const INTO_CASES: { label: string; io: "write" | "uring"; batch: number }[] = [
  { label: "write() per frame (baseline)", io: "write", batch: 64 },
  { label: "io_uring, 16 per submit", io: "uring", batch: 16 },
  { label: "io_uring, 64 per submit", io: "uring", batch: 64 },
];

async function intoTap(o: Required<Omit<TapBenchOptions, "onRun">> & TapBenchOptions) {
  const pool = new FramePool({ frames: 8192 });
  const taps: TapDevice[] = [];
  const names: string[] = [];
  try {
    for (const c of INTO_CASES) {
      const name = `btb${uid()}`;
      names.push(name);
      taps.push(new TapDevice({ name, pool, io: c.io, ioBatch: c.batch, ringSize: 4096 }));
    }
    const snap = (tap: TapDevice) => (): Snap => {
      const s = tap.stats();
      return {
        delivered: s.written,
        txPackets: s.txPackets,
        txDropped: s.txDropped,
        locks: s.lockAcquisitions,
        wakeups: s.wakeupsSent,
        submits: s.writeSubmits,
        kernelTx: 0,
        kernelDropped: 0,
        forwardDropped: 0,
      };
    };
    const frames = new Map(o.frameSizes.map((fs) => [fs, rawFrame(fs)]));
    for (const tap of taps) {
      drive(pool, tap, frames.get(o.frameSizes[0])!, 100, snap(tap)); // warm up
      await tap.drained(2000);
    }
    const raw = new Map<string, TapRun[]>();
    for (let r = 0; r < o.repeats; r++) {
      for (const fs of o.frameSizes) {
        for (const i of repeatOrder(INTO_CASES.length, r)) {
          const x = drive(pool, taps[i], frames.get(fs)!, o.ms, snap(taps[i]));
          // Let this writer finish before the next case runs beside it.
          await taps[i].drained(2000);
          const offered = x.d.txPackets + x.d.txDropped;
          const run: TapRun = {
            mpps: x.mpps,
            frames: x.frames,
            wallNs: x.wallNs,
            cpuNs: x.cpuNs,
            offered,
            drops: x.d.txDropped,
            locksPerFrame: x.d.locks / Math.max(1, offered),
            wakeupsPerFrame: x.wakeupsPerFrame,
            syscallsPerFrame: x.d.submits / Math.max(1, x.frames),
          };
          const key = `${i}\0${fs}`;
          raw.set(key, [...(raw.get(key) ?? []), run]);
          o.onRun?.(INTO_CASES[i].label, fs, r);
        }
      }
    }
    for (const tap of taps) {
      await tap.drained(2000);
      tap.close();
    }
    const out: Figure[] = [];
    for (const fs of o.frameSizes) {
      INTO_CASES.forEach((c, i) => {
        out.push(
          figure(
            `into a TAP: ${c.label}`,
            fs,
            c.io === "write" ? "single" : "bulk",
            c.io === "write" ? 1 : c.batch,
            raw.get(`${i}\0${fs}`)!,
          ),
        );
      });
    }
    return out;
  } finally {
    for (const t of taps) if (!t.closed) t.close();
    for (const n of names) quiet(`ip link del ${n}`);
    pool.close();
  }
}

/** Frames the forwarder reads (and, in bulk mode, transmits) per batch. */
const FORWARD_BULK = 64;

async function forward(o: Required<Omit<TapBenchOptions, "onRun">> & TapBenchOptions) {
  const id = uid();
  const [g, a, b, ns, nsB] = [`btg${id}`, `bta${id}`, `btb${id}`, `btbn-${id}`, `btbm-${id}`];
  const pool = new FramePool({ frames: 16384 });
  const devs: TapDevice[] = [];
  try {
    sh(`ip netns add ${ns} && ip netns add ${nsB}`);
    const gen = new TapDevice({ name: g, pool, ringSize: 4096 });
    const ta = new TapDevice({ name: a, pool });
    const tb = new TapDevice({ name: b, pool, ringSize: 4096 });
    devs.push(gen, ta, tb);
    sh(`ip link set ${g} address 02:00:00:00:00:01`);
    sh(
      `ip link set ${g} netns ${ns} && ip link set ${a} netns ${ns} && ` +
        `ip link set ${b} netns ${nsB}`,
    );
    sh(
      `ip netns exec ${ns} sysctl -qw net.ipv4.ip_forward=1 ` +
        `net.ipv6.conf.all.disable_ipv6=1 net.ipv4.conf.all.rp_filter=0`,
    );
    sh(`ip -n ${ns} link set ${g} up && ip -n ${ns} addr add 10.213.90.1/24 dev ${g}`);
    sh(`ip -n ${ns} link set ${a} up && ip -n ${ns} addr add 10.213.91.1/24 dev ${a}`);
    sh(`ip -n ${ns} neigh add 10.213.91.2 lladdr 02:00:00:00:00:99 dev ${a} nud permanent`);
    sh(`ip -n ${ns} neigh add 10.213.90.2 lladdr 02:00:00:00:00:02 dev ${g} nud permanent`);
    sh(`ip -n ${nsB} link set ${b} up`);
    // What the kernel sent into A, and dropped for want of a reader.
    const kernelA = () => JSON.parse(sh(`ip -n ${ns} -s -j link show dev ${a}`))[0].stats64.tx;
    const snap = (): Snap => {
      const sb = tb.stats(), sa = ta.stats(), k = kernelA();
      return {
        delivered: sb.written,
        txPackets: sb.txPackets,
        txDropped: sb.txDropped,
        locks: sb.lockAcquisitions,
        wakeups: sb.wakeupsSent,
        submits: sb.writeSubmits,
        kernelTx: k.packets,
        kernelDropped: k.dropped,
        forwardDropped: sa.forwardDropped,
      };
    };
    const frames = new Map(o.frameSizes.map((fs) => [fs, udpFrame([2, 0, 0, 0, 0, 1], fs)]));
    const modes = ["single", "bulk"] as const;
    const raw = new Map<string, TapRun[]>();
    const kernel = new Map<string, { sent: number; dropped: number }>();
    ta.forwardTo(tb, { mode: "bulk", bulk: FORWARD_BULK });
    drive(pool, gen, frames.get(o.frameSizes[0])!, 100, snap); // warm up
    await ta.stopForwarding();
    for (let r = 0; r < o.repeats; r++) {
      for (const fs of o.frameSizes) {
        for (const k of repeatOrder(modes.length, r)) {
          const mode = modes[k];
          ta.forwardTo(tb, { mode, bulk: FORWARD_BULK });
          const x = drive(pool, gen, frames.get(fs)!, o.ms, snap);
          // Let the generator's leftovers through before switching modes.
          await gen.drained(2000);
          await ta.stopForwarding();
          // Frames the kernel routed into A: read by the forwarder, or
          // dropped for want of a reader; then refused by B's full ring.
          const offered = x.d.kernelTx + x.d.kernelDropped;
          const run: TapRun = {
            mpps: x.mpps,
            frames: x.frames,
            wallNs: x.wallNs,
            cpuNs: x.cpuNs,
            offered,
            drops: x.d.kernelDropped + x.d.forwardDropped,
            locksPerFrame: x.d.locks / Math.max(1, x.d.txPackets + x.d.txDropped),
            wakeupsPerFrame: x.wakeupsPerFrame,
          };
          const key = `${mode}\0${fs}`;
          raw.set(key, [...(raw.get(key) ?? []), run]);
          const kk = kernel.get(key) ?? { sent: 0, dropped: 0 };
          kk.sent += x.d.kernelTx;
          kk.dropped += x.d.kernelDropped;
          kernel.set(key, kk);
          o.onRun?.(`forwarder ${mode}`, fs, r);
        }
      }
    }
    const out: Figure[] = [];
    for (const fs of o.frameSizes) {
      for (const mode of modes) {
        const f = figure(
          `forwarder A->B, ${mode} mode (bulk ${FORWARD_BULK} read)`,
          fs,
          mode,
          mode === "single" ? 1 : FORWARD_BULK,
          raw.get(`${mode}\0${fs}`)!,
        );
        const k = kernel.get(`${mode}\0${fs}`)!;
        f.note = `kernel TX into A over its runs: ${k.sent} frames, ${k.dropped} dropped for ` +
          `want of a reader`;
        out.push(f);
      }
    }
    return out;
  } finally {
    for (const d of devs) if (!d.closed) d.close();
    quiet(`ip netns del ${ns}; ip netns del ${nsB}`);
    for (const d of [g, a, b]) quiet(`ip link del ${d}`);
    pool.close();
  }
}

/**
 * Run the TAP benchmarks and return the figures (Mpps, median and range).
 *
 * @example
 * ```ts ignore
 * import { tapBench } from "./bench/tap_bench.ts";
 * const r = await tapBench({ repeats: 5 });
 * console.log(r.into[0].median);
 * ```
 */
export async function tapBench(options: TapBenchOptions = {}): Promise<TapBenchResult> {
  const o = {
    ...options,
    repeats: options.repeats ?? 5,
    ms: options.ms ?? 500,
    frameSizes: options.frameSizes ?? [64],
    intoOnly: options.intoOnly ?? false,
  };
  const cpu = sh("grep -m1 'model name' /proc/cpuinfo").split(":")[1]?.trim() ?? "?";
  const machine = `${cpu}, ${navigator.hardwareConcurrency} CPUs, Linux ${sh("uname -r").trim()}`;
  const into = await intoTap(o);
  return { machine, into, forward: o.intoOnly ? [] : await forward(o) };
}

function show(f: Figure, base: Figure): string {
  const x = f === base ? "baseline" : `${(f.median / base.median).toFixed(2)}x baseline`;
  return `  ${f.name.padEnd(48)} ${String(f.frameSize).padStart(4)} B ${f.median.toFixed(3)} ` +
    `Mpps (min ${f.min.toFixed(3)}, max ${f.max.toFixed(3)}; ${x})`;
}

if (import.meta.main) {
  const { repeats, ms, frameSizes } = scriptFlags(
    "bench/tap_bench.ts",
    "usage: deno run -A bench/tap_bench.ts [--repeats N] [--ms M] [--frame-size 64,1500]\n" +
      "  --repeats N        runs of each case, 1..1000 (default 5)\n" +
      "  --ms M             length of one run in ms (default 500)\n" +
      "  --frame-size LIST  bytes per frame, each 60..1792 (default 64)",
    { repeats: "string", ms: "string", "frame-size": "string" },
    (v) => ({
      repeats: intFlag("repeats", v.repeats, 5, 1, 1000),
      ms: intFlag("ms", v.ms, 500, 1, 3_600_000),
      frameSizes: (v["frame-size"] ?? "64").split(",").map((s) =>
        intFlag("frame-size", s, 64, 60, 1792)
      ),
    }),
  );
  const r = await tapBench({ repeats, ms, frameSizes });
  console.log(`bulktap TAP benchmarks: ${r.machine}`);
  console.log(`${repeats} runs each, interleaved, median (min-max)`);
  for (const fs of frameSizes) {
    const into = r.into.filter((f) => f.frameSize === fs);
    for (const f of into) console.log(show(f, into[0]));
    const fwd = r.forward.filter((f) => f.frameSize === fs);
    for (const f of fwd) console.log(show(f, fwd[0]) + `\n      ${f.note}`);
  }
  console.log(
    "  (ANCHORS.md, earlier run here, 64 B: write() 1.05 Mpps, io_uring 16/64: 1.50/1.62 Mpps)",
  );
}
