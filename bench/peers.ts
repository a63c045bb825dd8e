/**
 * Peers in the same run: DPDK's `rte_ring` beside our ring, measured by one C
 * program (bench/c/ring_peer.c) with one harness, one pool and one thread
 * placement, so "ours/DPDK" is a measurement, not a quote.
 *
 * Implementations measured:
 * - `bt_ring`: c/bt_ring.h + c/bt_lock.h moving pointers (what rte_ring
 *   moves): the apples-to-apples comparison.
 * - `bulktap_api`: the public path bt_pool_alloc -> bt_xmit -> bt_queue_read
 *   -> bt_pool_put (validation, frame states, counters, doorbell).
 * - `dpdk_mpmc`, `dpdk_rts`: rte_ring on plain memory (rte_ring_init, no EAL),
 *   default MP/MC and relaxed-tail-sync modes.
 *
 * When DPDK is not installed the program is built without it and the DPDK
 * implementations are reported as {@linkcode Unmeasured} with the packages to
 * install; `--install-peers` installs them with apt-get first. Setting
 * `BULKTAP_BENCH_NO_DPDK=1` builds and runs as if DPDK were absent.
 *
 * @module
 */
import { buildProgram, librarySources, runLines } from "./cbuild.ts";
import {
  type BenchPoint,
  pointFromRuns,
  type ProviderContext,
  type RawRun,
  type ResultEntry,
  type ScenarioProvider,
} from "./points.ts";

/** Debian packages that provide rte_ring. */
export const DPDK_PACKAGES = ["librte-ring23", "libdpdk-dev"];

/** The reason printed for a peer that is not installed. */
export const DPDK_MISSING = `not measured: install ${
  DPDK_PACKAGES.join(" ")
} (apt-get), or run with --install-peers`;

/** The DPDK implementations ring_peer can measure. */
export const DPDK_IMPLS = ["dpdk_mpmc", "dpdk_rts"];

/** Scenario labels of ring_peer, with what they mean. */
export const PEER_SCENARIOS: Record<string, string> = {
  "1p1c": "1 producer + 1 consumer thread",
  "2p1q": "2 producers share 1 queue + 1 consumer",
  "4p1q_2cores": "4 producers + 1 consumer pinned to 2 cores",
};

/** How to compile against DPDK, or why not. */
export interface DpdkFlags {
  /** True when headers and libraries were found. */
  found: boolean;
  /** Compiler flags (include paths, rte_config.h, -march). */
  cflags: string[];
  /** Linker flags. */
  libs: string[];
  /** Why not found. */
  reason?: string;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Find DPDK's rte_ring: pkg-config first, then the Debian paths.
 *
 * @example
 * ```ts
 * import { dpdkFlags } from "./bench/peers.ts";
 * console.log(dpdkFlags().found);
 * ```
 */
export function dpdkFlags(): DpdkFlags {
  let hide: string | undefined;
  try {
    hide = Deno.env.get("BULKTAP_BENCH_NO_DPDK");
  } catch {
    // no --allow-env
  }
  if (hide) {
    // Lets tests (and users) see the "not installed" path on a machine that has DPDK.
    return { found: false, cflags: [], libs: [], reason: "hidden by BULKTAP_BENCH_NO_DPDK" };
  }
  let cflags: string[] | undefined;
  try {
    const r = new Deno.Command("pkg-config", {
      args: ["--cflags", "libdpdk"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (r.success) {
      const words = new TextDecoder().decode(r.stdout).trim().split(/\s+/);
      cflags = [];
      // Keep what rte_ring needs: include paths, the forced config header
      // and the target architecture; drop libnl/dbus paths of other parts.
      for (let i = 0; i < words.length; i++) {
        const w = words[i];
        if (w === "-include" && i + 1 < words.length) cflags.push(w, words[++i]);
        else if (w.startsWith("-I") && w.includes("dpdk")) cflags.push(w);
        else if (w.startsWith("-march=") || w.startsWith("-D")) cflags.push(w);
      }
    }
  } catch {
    // no pkg-config
  }
  if (!cflags && exists("/usr/include/dpdk/rte_ring.h")) {
    cflags = [
      "-I/usr/include/dpdk",
      "-I/usr/include/x86_64-linux-gnu/dpdk",
      "-include",
      "rte_config.h",
    ];
  }
  if (!cflags) return { found: false, cflags: [], libs: [], reason: "libdpdk-dev not installed" };
  const libdirs = [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
  ];
  const hasLib = libdirs.some((d) => exists(`${d}/librte_ring.so`) || exists(`${d}/librte_ring.a`));
  if (!hasLib) return { found: false, cflags: [], libs: [], reason: "librte_ring not installed" };
  return {
    found: true,
    cflags: [...cflags, "-DBT_PEER_HAVE_DPDK"],
    libs: ["-lrte_ring", "-lrte_eal"],
  };
}

/** Install the DPDK packages with apt-get (as root, or through sudo -n). */
export async function installDpdk(log: (m: string) => void): Promise<boolean> {
  const root = Deno.uid() === 0;
  const cmd = root ? "apt-get" : "sudo";
  const args = [
    ...(root ? [] : ["-n", "apt-get"]),
    "install",
    "-y",
    "--no-install-recommends",
    ...DPDK_PACKAGES,
  ];
  log(`installing peers: ${cmd} ${args.join(" ")}`);
  try {
    const r = await new Deno.Command(cmd, {
      args,
      stdout: "inherit",
      stderr: "inherit",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    return r.success;
  } catch (e) {
    log(`install failed: ${(e as Error).message}`);
    return false;
  }
}

/** Build ring_peer (with DPDK when found) and return its path and flags. */
export function buildRingPeer(log?: (m: string) => void): { exe: string; dpdk: DpdkFlags } {
  const dpdk = dpdkFlags();
  const dir = new URL("./c/", import.meta.url);
  const sources = [
    new URL("ring_peer.c", dir).pathname,
    new URL("bulktap_ring_peer.c", dir).pathname,
    ...(dpdk.found ? [new URL("dpdk_ring_peer.c", dir).pathname] : []),
    ...librarySources().c,
  ];
  const exe = buildProgram(
    {
      name: dpdk.found ? "ring_peer-dpdk" : "ring_peer",
      sources,
      cflags: dpdk.cflags,
      libs: dpdk.libs,
    },
    log,
  );
  return { exe, dpdk };
}

/** Latency fields of a C benchmark's run line (bench/c/lat_hist.h). */
export interface CLatency {
  samples: number;
  p50?: number;
  p99?: number;
  p999?: number;
  max?: number;
  curve?: [number, number][];
}

/** One run line of ring_peer (`"type":"run"`). */
export interface PeerRunLine {
  type: "run";
  impl: string;
  scenario: string;
  producers: number;
  pinned: boolean;
  mode: "single" | "bulk";
  bulk: number;
  repeat: number;
  seconds?: number;
  delivered?: number;
  mpps: number;
  ns_per_frame: number;
  calls_per_frame: number;
  /** null: the implementation has no lock (rte_ring). */
  locks_per_frame?: number | null;
  /** null: the queue has no doorbell. */
  wakeups_per_frame?: number | null;
  offered?: number;
  dropped?: number;
  drop_rate: number;
  cpu_ns?: number;
  wall_ns?: number;
  lat: CLatency;
}

/**
 * A C run line's latency as a {@linkcode RawRun} latency (undefined without samples).
 *
 * @example
 * ```ts
 * import { cLatency } from "./bench/peers.ts";
 * console.log(cLatency({ samples: 0 })); // undefined
 * ```
 */
export function cLatency(l: CLatency): RawRun["latency"] {
  return l.samples > 0
    ? {
      samples: l.samples,
      p50: l.p50!,
      p99: l.p99!,
      p999: l.p999!,
      max: l.max!,
      curve: l.curve!,
    }
    : undefined;
}

/** The fields every C benchmark run line has (ring_peer and ring_bench). */
export interface CRunLine {
  repeat: number;
  mpps: number;
  delivered?: number;
  wall_ns?: number;
  cpu_ns?: number;
  dropped?: number;
  drop_rate: number;
  calls_per_frame: number;
  /** null: the implementation has no lock (rte_ring). */
  locks_per_frame?: number | null;
  /** null: the queue has no doorbell. */
  wakeups_per_frame?: number | null;
  lat: CLatency;
}

/**
 * A C run line as a {@linkcode RawRun}.
 *
 * @example
 * ```ts
 * import { cRawRun } from "./bench/peers.ts";
 * const r = cRawRun({ repeat: 1, mpps: 9, drop_rate: 0, calls_per_frame: 1, locks_per_frame: null, lat: { samples: 0 } });
 * console.log(r.repeat, r.locksPerFrame); // 1 undefined
 * ```
 */
export function cRawRun(l: CRunLine): RawRun {
  return {
    repeat: l.repeat,
    mpps: l.mpps,
    frames: l.delivered,
    wallNs: l.wall_ns,
    cpuNs: l.cpu_ns,
    drops: l.dropped,
    dropShare: l.drop_rate,
    callsPerFrame: l.calls_per_frame,
    locksPerFrame: l.locks_per_frame ?? undefined,
    wakeupsPerFrame: l.wakeups_per_frame ?? undefined,
    latency: cLatency(l.lat),
  };
}

/**
 * Why ring_peer cannot count a metric for an implementation.
 *
 * @example
 * ```ts
 * import { peerNotApplicable } from "./bench/peers.ts";
 * console.log(Object.keys(peerNotApplicable("dpdk_mpmc")!)); // [ "locksPerFrame", "wakeupsPerFrame" ]
 * ```
 */
export function peerNotApplicable(impl: string): BenchPoint["notApplicable"] {
  if (impl.startsWith("dpdk")) {
    return {
      locksPerFrame: "rte_ring is lockless (CAS on head/tail); no lock to count",
      wakeupsPerFrame: "rte_ring has no doorbell; the consumer polls",
    };
  }
  if (impl === "bt_ring") {
    return { wakeupsPerFrame: "the raw ring has no doorbell; the consumer polls" };
  }
  return undefined;
}

/** Turn ring_peer's JSON lines into points (one per impl/scenario/mode/bulk). */
export function peerPoints(lines: PeerRunLine[]): BenchPoint[] {
  const groups = new Map<string, PeerRunLine[]>();
  for (const l of lines) {
    const k = `${l.impl}\0${l.scenario}\0${l.mode}\0${l.bulk}`;
    groups.set(k, [...(groups.get(k) ?? []), l]);
  }
  const out: BenchPoint[] = [];
  for (const ls of groups.values()) {
    const f = ls[0];
    const runs = ls.map(cRawRun);
    out.push(pointFromRuns({
      provider: "peers",
      scenario: f.scenario,
      impl: f.impl,
      ours: !f.impl.startsWith("dpdk"),
      mode: f.mode,
      bulk: f.bulk,
      // Objects are pointers (or frame refs) with a length field: no frame
      // data is written or read, so a frame size would claim too much.
      frameSize: 0,
      notApplicable: peerNotApplicable(f.impl),
    }, runs));
  }
  return out;
}

/** Arguments for ring_peer from the harness context. */
export function peerArgs(ctx: ProviderContext): string[] {
  return [
    "--duration",
    String(ctx.durationMs / 1000),
    "--repeats",
    String(ctx.repeats),
    "--bulk",
    ctx.bulks.join(","),
  ];
}

/**
 * The peers provider: ring_peer with every implementation it was built with.
 *
 * @example
 * ```ts ignore
 * import { peersProvider } from "./bench/peers.ts";
 * console.log(peersProvider.name); // "peers"
 * ```
 */
export const peersProvider: ScenarioProvider = {
  name: "peers",
  title: "C ring level: our bt_ring and public API beside DPDK rte_ring (same harness, same run; " +
    "objects are pointers or frame refs, no frame data moves)",
  meta: {},
  estimateMs(ctx) {
    const impls = dpdkFlags().found ? 4 : 2;
    const runs = ctx.repeats * 3 * (1 + ctx.bulks.length) * impls;
    // Each run: its duration plus thread start/join; plus the warm-up.
    return runs * (ctx.durationMs + 5) + impls * ctx.durationMs / 4 + 1500;
  },
  async run(ctx) {
    const entries: ResultEntry[] = [];
    let { found } = dpdkFlags();
    if (!found && ctx.installPeers) {
      found = (await installDpdk(ctx.log)) && dpdkFlags().found;
    }
    let built;
    try {
      built = buildRingPeer(ctx.log);
    } catch (e) {
      return [{
        measured: false,
        provider: "peers",
        impl: "ring_peer",
        reason: `not measured: ${(e as Error).message}`,
      }];
    }
    if (!built.dpdk.found) {
      for (const impl of DPDK_IMPLS) {
        entries.push({ measured: false, provider: "peers", impl, reason: DPDK_MISSING });
      }
    }
    const lines: PeerRunLine[] = [];
    let total = 0;
    const { code, stderr } = await runLines(built.exe, peerArgs(ctx), (line) => {
      let o;
      try {
        o = JSON.parse(line);
      } catch {
        ctx.log(`ring_peer: ${line}`);
        return;
      }
      if (o.type === "header") {
        total = o.total_runs;
        peersProvider.meta = { ...o, dpdkCflags: built.dpdk.cflags };
      } else if (o.type === "run") {
        lines.push(o);
        ctx.progress({
          scenario: o.scenario,
          point: `${o.impl} ${o.mode === "bulk" ? `bulk-${o.bulk}` : "single"}`,
          repeat: o.repeat + 1,
          repeats: ctx.repeats,
          done: lines.length,
          total,
        });
      }
    });
    if (code !== 0) {
      entries.push({
        measured: false,
        provider: "peers",
        impl: "ring_peer",
        reason: `ring_peer exited with ${code}: ${stderr.trim()}`,
      });
    }
    entries.push(...peerPoints(lines));
    return entries;
  },
};
