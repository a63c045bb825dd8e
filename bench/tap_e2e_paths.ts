/**
 * The paths of the end-to-end TAP sitting (bench/tap_e2e.ts), set up
 * between two network namespaces nsA (10.77.0.1/24) and nsB (10.77.0.2/24)
 * and torn down again; 3-port rows add nsC (10.77.0.3/24) on the third
 * port, which takes no part in the tests but receives what is flooded:
 *
 * - the Linux bridge, in a namespace of its own (so nothing outside the
 *   sitting's own namespaces is touched), over veth pairs, with the default
 *   offloads or every offload ethtool turns off;
 * - DPDK testpmd's io forwarding between two net_tap ports;
 * - `bulktap forward` and `bulktap switch` with a row's flags
 *   (bench/tap_e2e_rows.ts).
 *
 * IPv6 is off in every namespace and on every device moved into one: the
 * measured traffic is IPv4, and a router solicitation or MLD report from
 * the end brought up first would otherwise meet the other end's TAP still
 * down, a frame the forwarder counts as dropped.
 *
 * @module
 */
import { Child, exec, have, must, type Sitting } from "./netns.ts";
import { inNs, pingTest } from "./iperf.ts";
import {
  BRIDGE_ROWS,
  FORWARD_ROWS,
  isBridgeRow,
  isForwardRow,
  isSwitchRow,
  portsOf,
  type RowId,
  SWITCH_ROWS,
} from "./tap_e2e_rows.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

/** Addresses of the two ends. */
export const E2E_ADDR = {
  a: "10.77.0.1/24",
  b: "10.77.0.2/24",
  ipB: "10.77.0.2",
  /** The idle third end of 3-port rows. */
  c: "10.77.0.3/24",
  ipC: "10.77.0.3",
};

/** The names of one sitting's namespaces and root-namespace TAPs. */
export interface Names {
  nsA: string;
  nsB: string;
  /** The third end's (3-port rows). */
  nsC: string;
  nsBr: string;
  tapA: string;
  tapB: string;
  tapC: string;
}

/** A sitting's names from its prefix (throws when a device name would exceed 15 bytes). */
export function namesOf(prefix: string): Names {
  const n = {
    nsA: `${prefix}a`,
    nsB: `${prefix}b`,
    nsC: `${prefix}c`,
    nsBr: `${prefix}br`,
    tapA: `${prefix}ta`,
    tapB: `${prefix}tb`,
    tapC: `${prefix}tc`,
  };
  if (n.tapA.length > 15) throw new Error(`prefix ${prefix} makes names longer than 15 bytes`);
  return n;
}

/** The ends of row `id` in order (namespace, root-namespace TAP): nsA, nsB and maybe nsC. */
function ends(n: Names, id: RowId): [string, string][] {
  return ([[n.nsA, n.tapA], [n.nsB, n.tapB], [n.nsC, n.tapC]] as [string, string][])
    .slice(0, portsOf(id));
}

/** A path under test, set up between the namespaces. */
export interface Path {
  /** The end's device in nsA and in nsB. */
  devA: string;
  devB: string;
  /** The idle third end's device in nsC (3-port rows). */
  devC?: string;
  /** The forwarding process, when there is one. */
  pid?: number;
  /** Stop it; resolves with the frames it dropped, when it says. */
  stop(): Promise<number | undefined>;
}

/** Why row `id` cannot run here, or undefined. */
export function rowProblem(id: RowId): string | undefined {
  if (id === "bridge-off" && !have("ethtool")) return "install ethtool";
  if (id === "testpmd" && !have("dpdk-testpmd")) return "install dpdk-dev (dpdk-testpmd)";
  return undefined;
}

/** Turn IPv6 off for device `dev` in `ns` (`all` and `default`: the namespace's). */
async function ipv6Off(ns: string, dev: string): Promise<void> {
  await must(inNs(ns, ["sysctl", "-qw", `net.ipv6.conf.${dev}.disable_ipv6=1`]));
}

/** A namespace of the sitting: IPv6 off for what is made or moved here, no TCP metrics kept. */
async function addNs(s: Sitting, ns: string): Promise<void> {
  await s.addNetns(ns);
  await ipv6Off(ns, "all");
  await ipv6Off(ns, "default");
  // Every row starts from the same TCP state: no metrics cached from the last.
  await must(inNs(ns, ["sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1"]));
}

async function bridgePath(
  s: Sitting,
  n: Names,
  endNs: string[],
  offloads: boolean,
): Promise<Path> {
  await addNs(s, n.nsBr);
  await must(["ip", "-n", n.nsBr, "link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
  await must(["ip", "-n", n.nsBr, "link", "set", "br0", "up"]);
  // The bridge's side of each end's veth: pa, pb, pc.
  const peers = endNs.map((x, i): [string, string] => [x, `p${"abc"[i]}`]);
  for (const [ns, peer] of peers) {
    await must([
      "ip",
      "-n",
      ns,
      "link",
      "add",
      "e2e0",
      "type",
      "veth",
      "peer",
      "name",
      peer,
      "netns",
      n.nsBr,
    ]);
    await must(["ip", "-n", n.nsBr, "link", "set", peer, "master", "br0", "up"]);
  }
  if (!offloads) {
    for (const [ns, dev] of peers.flatMap(([x, p]) => [[x, "e2e0"], [n.nsBr, p]])) {
      await must(inNs(ns, [
        "ethtool",
        "-K",
        dev,
        "tso",
        "off",
        "gso",
        "off",
        "gro",
        "off",
        "tx",
        "off",
        "rx",
        "off",
      ]));
    }
  }
  return {
    devA: "e2e0",
    devB: "e2e0",
    devC: endNs.length > 2 ? "e2e0" : undefined,
    stop: () => Promise.resolve(undefined),
  };
}

async function linkUp(dev: string): Promise<boolean> {
  const r = await exec(["ip", "-j", "link", "show", "dev", dev], 5000);
  if (r.code !== 0 || r.timedOut) return false;
  const flags: string[] = JSON.parse(r.stdout)[0]?.flags ?? [];
  return flags.includes("UP");
}

/**
 * Move each root-namespace TAP into its end's namespace, IPv6 off on every
 * one: a moved device keeps its own setting, not the namespace's default.
 */
async function moveTaps(taps: [string, string][]): Promise<void> {
  for (const [ns, tap] of taps) await must(["ip", "link", "set", tap, "netns", ns]);
  for (const [ns, tap] of taps) await ipv6Off(ns, tap);
}

async function testpmdPath(s: Sitting, n: Names, budgetMs: number): Promise<Path> {
  const c = s.child(
    new Child(
      [
        "dpdk-testpmd",
        "--no-huge",
        "--no-pci",
        "--no-shconf",
        "-m",
        "512",
        `--file-prefix=${n.tapA}`,
        `--vdev=net_tap0,iface=${n.tapA}`,
        `--vdev=net_tap1,iface=${n.tapB}`,
        "--",
        "--forward-mode=io",
        "--auto-start",
        "--nb-cores=1",
        "--total-num-mbufs=16384",
        "-i",
      ],
      budgetMs,
      true,
    ),
  );
  s.link(n.tapA);
  s.link(n.tapB);
  let exited = false;
  c.child.status.then(() => (exited = true));
  // The PMD sets its TAPs up when the ports start (its stdout is buffered).
  const end = performance.now() + 30_000;
  while (!(await linkUp(n.tapA) && await linkUp(n.tapB))) {
    if (exited || performance.now() > end) {
      c.kill();
      throw new Error(`testpmd did not start its ports: ${(c.err + c.out).trim().slice(-600)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await moveTaps(ends(n, "testpmd"));
  return {
    devA: n.tapA,
    devB: n.tapB,
    pid: c.pid,
    async stop() {
      // "quit" on stdin prints the statistics and exits; a signal if it hangs.
      await c.write("quit\n");
      const t1 = setTimeout(() => c.kill("SIGINT"), 5000);
      const t2 = setTimeout(() => c.kill("SIGKILL"), 10_000);
      await c.finish();
      clearTimeout(t1);
      clearTimeout(t2);
      s.forget(c);
      return testpmdDrops(c.out);
    },
  };
}

/**
 * RX-dropped + TX-dropped of testpmd's accumulated statistics (printed on
 * quit), or undefined when absent.
 *
 * @example
 * ```ts
 * import { testpmdDrops } from "./bench/tap_e2e_paths.ts";
 * const out = "+++ Accumulated forward statistics for all ports+++\n" +
 *   "  RX-packets: 14   RX-dropped: 1   RX-total: 15\n" +
 *   "  TX-packets: 13   TX-dropped: 3   TX-total: 16\n";
 * console.log(testpmdDrops(out)); // 4
 * ```
 */
export function testpmdDrops(out: string): number | undefined {
  const i = out.lastIndexOf("Accumulated forward statistics");
  if (i < 0) return undefined;
  const tail = out.slice(i);
  const rx = tail.match(/RX-dropped:\s*(\d+)/), tx = tail.match(/TX-dropped:\s*(\d+)/);
  if (!rx || !tx) return undefined;
  return Number(rx[1]) + Number(tx[1]);
}

/**
 * Frames `forward --json` (its `devices`) or `switch --json` (its `ports`)
 * says were dropped: every device's drops plus frames a program's transmit
 * was refused.
 *
 * @example
 * ```ts
 * import { forwardDrops } from "./bench/tap_e2e_paths.ts";
 * const j = { devices: { a: { dropped: 2 }, b: { dropped: 1 } }, program: { txDropped: 4 } };
 * console.log(forwardDrops(JSON.stringify(j))); // 7
 * const sw = { ports: { a: { dropped: 1 }, b: { dropped: 0 }, c: { dropped: 2 } } };
 * console.log(forwardDrops(JSON.stringify(sw))); // 3
 * ```
 */
export function forwardDrops(jsonLine: string): number {
  const j = JSON.parse(jsonLine);
  let d = 0;
  for (const dev of Object.values(j.devices ?? j.ports) as { dropped: number }[]) {
    d += dev.dropped;
  }
  return d + (j.program?.txDropped ?? 0);
}

/** `bulktap CMD` (forward or switch) over the ends' TAPs with `args`, the TAPs moved into their ends. */
async function bulktapPath(
  s: Sitting,
  taps: [string, string][],
  cmd: "forward" | "switch",
  args: readonly string[],
  budgetMs: number,
): Promise<Path> {
  const names = taps.map(([, t]) => t);
  const c = s.child(
    new Child([Deno.execPath(), "run", "-A", MOD, cmd, ...names, ...args, "--json"], budgetMs),
  );
  for (const t of names) s.link(t);
  // The first run may build the C library.
  await c.waitFor("ready", 180_000);
  await moveTaps(taps);
  return {
    devA: names[0],
    devB: names[1],
    devC: names[2],
    pid: c.pid,
    async stop() {
      const st = await c.stop("SIGINT", 15_000);
      s.forget(c);
      const last = c.out.trim().split("\n").at(-1) ?? "";
      if (st.code !== 0 || !last.startsWith("{")) {
        throw new Error(`${cmd} exited ${st.code}: ${(c.err + c.out).trim().slice(-600)}`);
      }
      return forwardDrops(last);
    },
  };
}

async function address(ns: string, dev: string, v4: string): Promise<void> {
  await must(["ip", "-n", ns, "addr", "add", v4, "dev", dev]);
  await must(["ip", "-n", ns, "link", "set", dev, "up"]);
}

/** Wait until `ip` (end `name`) answers a ping from nsA. */
async function waitReachable(nsA: string, ip: string, name: string): Promise<void> {
  let last = "";
  for (let i = 0; i < 20; i++) {
    try {
      await pingTest(nsA, ip, 1, 0.2);
      return;
    } catch (e) {
      last = (e as Error).message;
    }
  }
  throw new Error(`${name} is not reachable from nsA through the path: ${last}`);
}

/** Set up row `id`'s path between the ends `taps` (namespaces made already). */
function pathOf(
  id: RowId,
  s: Sitting,
  n: Names,
  taps: [string, string][],
  budgetMs: number,
): Promise<Path> {
  if (isBridgeRow(id)) return bridgePath(s, n, taps.map(([ns]) => ns), BRIDGE_ROWS[id].offloads);
  if (id === "testpmd") return testpmdPath(s, n, budgetMs);
  if (isForwardRow(id)) return bulktapPath(s, taps, "forward", FORWARD_ROWS[id].args, budgetMs);
  if (isSwitchRow(id)) return bulktapPath(s, taps, "switch", SWITCH_ROWS[id].args, budgetMs);
  throw new Error(`no path for row ${id}`);
}

/**
 * Set up row `id`'s path between fresh namespaces nsA and nsB (and nsC on
 * a 3-port row), wait until nsB (and nsC) answers a ping, run `body`, stop the path
 * and remove everything (children killed by `budgetMs` at the latest).
 * Resolves with what `body` returned and the frames the forwarder dropped
 * over the whole run.
 */
export async function withPath<T>(
  id: RowId,
  s: Sitting,
  n: Names,
  budgetMs: number,
  body: (p: Path) => Promise<T>,
): Promise<{ r: T; drops?: number }> {
  try {
    const taps = ends(n, id);
    for (const [ns] of taps) await addNs(s, ns);
    const p = await pathOf(id, s, n, taps, budgetMs);
    await address(n.nsA, p.devA, E2E_ADDR.a);
    await address(n.nsB, p.devB, E2E_ADDR.b);
    if (p.devC) await address(n.nsC, p.devC, E2E_ADDR.c);
    await waitReachable(n.nsA, E2E_ADDR.ipB, "nsB");
    // The third port must work too; then it is idle but for floods.
    if (p.devC) await waitReachable(n.nsA, E2E_ADDR.ipC, "nsC");
    const r = await body(p);
    const drops = await p.stop();
    return { r, drops };
  } finally {
    s.cleanup();
  }
}
