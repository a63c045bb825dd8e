/**
 * TAP benchmarks (needs root: it creates TAP devices and network namespaces
 * under unique names and removes them afterwards).
 *
 * 1. Frames per second into a TAP: a JS producer transmits 64-byte frames
 *    in bulks of 64 into a one-queue TAP device whose writer thread writes
 *    them with `write()` per frame (the baseline) or io_uring batches of 16
 *    and 64. The figure is the writer's rate (frames the kernel accepted).
 *
 * 2. Forwarder throughput A -> B, bulk vs single mode: a generator TAP G and
 *    TAP A sit in a namespace with IP forwarding; UDP packets written into G
 *    are routed out of A, read by the forwarder and transmitted into B (in a
 *    second namespace, where the kernel drops them). The figure is frames
 *    written into B per second. The kernel's routing of the generated
 *    traffic shares the same CPUs, so this is an end-to-end figure.
 *
 * Run: `deno run -A bench/tap_bench.ts [--repeats N] [--ms M]`.
 *
 * @module
 */
import { FramePool, TapDevice } from "../mod.ts";

/** One measured figure: the median and range over the repeats. */
export interface Figure {
  /** What was measured. */
  name: string;
  /** Median of the runs, in Mpps. */
  median: number;
  /** Smallest run, Mpps. */
  min: number;
  /** Largest run, Mpps. */
  max: number;
  /** Every run, Mpps. */
  runs: number[];
  /** What limited the figure, when known. */
  note?: string;
}

/** Options for {@linkcode tapBench}. */
export interface TapBenchOptions {
  /** Runs per figure (at least 5; default 5). */
  repeats?: number;
  /** Duration of one run in ms (default 500). */
  ms?: number;
  /** Skip the forwarder (quick runs). */
  intoOnly?: boolean;
}

/** What {@linkcode tapBench} returns. */
export interface TapBenchResult {
  /** CPU model and count, kernel release. */
  machine: string;
  /** Frames/s into a TAP: write() per frame, io_uring 16, io_uring 64. */
  into: Figure[];
  /** Forwarder A->B: bulk and single mode. */
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

function figure(name: string, runs: number[]): Figure {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { name, median, min: s[0], max: s[s.length - 1], runs };
}

function uid(): string {
  return (Deno.pid % 1296).toString(36) + Math.floor(Math.random() * 46656).toString(36);
}

/**
 * Keep `tap` fed with `frame`s (copied into pool frames) in bulks of 64
 * for `ms`, and return the rate at which `count()` grew, in Mpps.
 */
function drive(
  pool: FramePool,
  tap: TapDevice,
  frame: Uint8Array,
  ms: number,
  count: () => number,
): number {
  const refs = new Uint32Array(64);
  const opts = { count: 0, flush: true, cpu: 0 };
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const c0 = count();
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
  const rate = (count() - c0) / ((t - t0) * 1000);
  return rate;
}

/** A 64-byte Ethernet frame of an ethertype the kernel drops at once. */
function rawFrame(): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0x02, 0, 0, 0, 0, 0x99, 0x02, 0, 0, 0, 0, 0x01, 0x88, 0xb5]);
  return f;
}

/** A 64-byte Ethernet + IPv4 + UDP frame from 10.213.90.2 to 10.213.91.2. */
function udpFrame(dstMac: number[]): Uint8Array {
  const f = new Uint8Array(64);
  f.set([...dstMac, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00]);
  const ip = [0x45, 0, 0, 50, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 213, 90, 2, 10, 213, 91, 2];
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (ip[i] << 8) | ip[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  sum = ~sum & 0xffff;
  ip[10] = sum >> 8;
  ip[11] = sum & 0xff;
  f.set(ip, 14);
  f.set([0x30, 0x39, 0x30, 0x39, 0, 30, 0, 0], 34); // UDP 12345 -> 12345, no checksum
  return f;
}

async function intoTap(repeats: number, ms: number): Promise<Figure[]> {
  const cases: [string, "write" | "uring", number][] = [
    ["write() per frame (baseline)", "write", 64],
    ["io_uring, 16 per submit", "uring", 16],
    ["io_uring, 64 per submit", "uring", 64],
  ];
  const out: Figure[] = [];
  const frame = rawFrame();
  for (const [label, io, batch] of cases) {
    const name = `btb${uid()}`;
    const pool = new FramePool({ frames: 8192 });
    try {
      const tap = new TapDevice({ name, pool, io, ioBatch: batch, ringSize: 4096 });
      drive(pool, tap, frame, 100, () => tap.stats().written); // warm up
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        runs.push(drive(pool, tap, frame, ms, () => tap.stats().written));
      }
      await tap.drained(2000);
      tap.close();
      out.push(figure(`into a TAP: ${label}`, runs));
    } finally {
      quiet(`ip link del ${name}`);
      pool.close();
    }
  }
  return out;
}

async function forward(repeats: number, ms: number): Promise<Figure[]> {
  const out: Figure[] = [];
  for (const mode of ["single", "bulk"] as const) {
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
      ta.forwardTo(tb, { mode, bulk: 64 });
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
      const frame = udpFrame([0x02, 0, 0, 0, 0, 0x01]);
      drive(pool, gen, frame, 100, () => tb.stats().written); // warm up
      const runs: number[] = [];
      for (let r = 0; r < repeats; r++) {
        runs.push(drive(pool, gen, frame, ms, () => tb.stats().written));
      }
      await ta.stopForwarding();
      // Did the kernel drop frames it sent into A because the forwarder
      // did not read them in time? If not, the source was the limit.
      const k = JSON.parse(sh(`ip -n ${ns} -s -j link show dev ${a}`))[0].stats64.tx;
      const f = figure(`forwarder A->B, ${mode} mode (bulk 64 read)`, runs);
      f.note = `kernel TX into A: ${k.packets} frames, ${k.dropped} dropped for want of a reader`;
      out.push(f);
    } finally {
      for (const d of devs) if (!d.closed) d.close();
      quiet(`ip netns del ${ns}; ip netns del ${nsB}`);
      for (const d of [g, a, b]) quiet(`ip link del ${d}`);
      pool.close();
    }
  }
  return out;
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
  const repeats = Math.max(5, options.repeats ?? 5);
  const ms = options.ms ?? 500;
  const cpu = sh("grep -m1 'model name' /proc/cpuinfo").split(":")[1]?.trim() ?? "?";
  const machine = `${cpu}, ${navigator.hardwareConcurrency} CPUs, Linux ${sh("uname -r").trim()}`;
  const into = await intoTap(repeats, ms);
  return { machine, into, forward: options.intoOnly ? [] : await forward(repeats, ms) };
}

function show(f: Figure, base: Figure): string {
  const x = f === base ? "baseline" : `${(f.median / base.median).toFixed(2)}x baseline`;
  return `  ${f.name.padEnd(48)} ${f.median.toFixed(3)} Mpps ` +
    `(min ${f.min.toFixed(3)}, max ${f.max.toFixed(3)}; ${x})`;
}

if (import.meta.main) {
  const arg = (n: string) => {
    const i = Deno.args.indexOf(`--${n}`);
    return i >= 0 ? Number(Deno.args[i + 1]) : undefined;
  };
  const r = await tapBench({ repeats: arg("repeats"), ms: arg("ms") });
  console.log(`bulktap TAP benchmarks: ${r.machine}`);
  console.log(`64-byte frames, ${Math.max(5, arg("repeats") ?? 5)} runs each, median (min-max)`);
  for (const f of r.into) console.log(show(f, r.into[0]));
  for (const f of r.forward) console.log(show(f, r.forward[0]) + `\n      ${f.note}`);
  console.log(
    "  (ANCHORS.md, earlier run here: write() 1.05 Mpps, io_uring 16/64: 1.50/1.62 Mpps)",
  );
}
