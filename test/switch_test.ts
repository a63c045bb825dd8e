/**
 * `switch TAP1 TAP2 TAP3`: three network namespaces this test creates (and
 * removes), joined only by the user-space switch over three TAPs.
 */
import assert from "assert";
import { must, Proc, tapTest, tool, tryRun, uid } from "./tap_helpers.ts";
import { L2Switch } from "../mod.ts";
import { SwitchShared } from "../dataplane/cli/switch_program.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

interface PortOut {
  rx: number;
  tx: number;
  dropped: number;
  flooded: number;
  floodedUnknown: number;
  floodedGroup: number;
  unicast: number;
  learned: number;
  rxSuper: number;
  txSuper: number;
  latency?: { count: number; p50: number; p99: number; max: number };
}

interface SwitchOut {
  stoppedBy: string;
  ports: Record<string, PortOut>;
  fdb: { mac: string; port: string; age: number }[];
  learned: number;
  program: Record<string, number>;
}

interface Net {
  taps: string[];
  ns: string[];
  ips: string[];
  macs: string[];
  sw: Proc;
}

/** Three namespaces, the switch over their TAPs, and `body` run on them; returns the JSON. */
async function withSwitch(
  flags: string[],
  body: (n: Net) => Promise<void>,
): Promise<SwitchOut>;
async function withSwitch(
  flags: string[],
  body: (n: Net) => Promise<void>,
  json: false,
): Promise<string[]>;
async function withSwitch(
  flags: string[],
  body: (n: Net) => Promise<void>,
  json: true,
  end: { signal?: "SIGINT" | "SIGTERM" | null; code?: number },
): Promise<SwitchOut>;
async function withSwitch(
  flags: string[],
  body: (n: Net) => Promise<void>,
  json = true,
  end: { signal?: "SIGINT" | "SIGTERM" | null; code?: number } = {},
): Promise<SwitchOut | string[]> {
  const id = uid();
  const taps = [0, 1, 2].map((i) => `bts${i}${id}`);
  const ns = [0, 1, 2].map((i) => `btns${i}-${id}`);
  const ips = [0, 1, 2].map((i) => `10.213.81.${i + 1}`);
  let sw: Proc | undefined;
  try {
    // Made here, down, IPv6 off: the switch brings them up in this
    // namespace, and a router solicitation from one would be flooded into
    // the others while they move (down: the write fails, counted).
    for (const t of taps) {
      must(`ip tuntap add dev ${t} mode tap multi_queue vnet_hdr`);
      must(`sysctl -qw net.ipv6.conf.${t}.disable_ipv6=1`);
    }
    for (const n of ns) {
      must(`ip netns add ${n}`);
      must(`ip netns exec ${n} sysctl -qw net.ipv6.conf.all.disable_ipv6=1`);
      must(`ip netns exec ${n} sysctl -qw net.ipv6.conf.default.disable_ipv6=1`);
    }
    sw = new Proc("deno", [
      "run",
      "-A",
      MOD,
      "switch",
      ...taps,
      "--vnet-hdr-size",
      "10",
      ...flags,
      ...(json ? ["--json"] : []),
    ]);
    await sw.waitFor("ready", 60_000);
    const macs: string[] = [];
    for (const [i, t] of taps.entries()) {
      must(`ip link set ${t} netns ${ns[i]}`);
      // Before it is up: no router solicitation flooded to ports still down.
      must(`ip netns exec ${ns[i]} sysctl -qw net.ipv6.conf.${t}.disable_ipv6=1`);
      must(`ip -n ${ns[i]} link set ${t} up && ip -n ${ns[i]} addr add ${ips[i]}/24 dev ${t}`);
      macs.push(JSON.parse(must(`ip -n ${ns[i]} -j link show dev ${t}`))[0].address);
    }
    await body({ taps, ns, ips, macs, sw });
    // null: the switch is to stop by itself (the body made it).
    if (end.signal !== null) sw.child.kill(end.signal ?? "SIGINT");
    const st = await sw.finish();
    assert.equal(st.code, end.code ?? 0, sw.errLines.join("\n"));
    return json ? JSON.parse(sw.lines.at(-1)!) : sw.lines;
  } finally {
    sw?.kill();
    for (const n of ns) tryRun(`ip netns del ${n}`);
    for (const t of taps) tryRun(`ip link del ${t}`);
  }
}

async function ping(ns: string, ip: string, count: number): Promise<void> {
  const p = new Proc("ip", [
    "netns",
    "exec",
    ns,
    "ping",
    "-c",
    String(count),
    "-i",
    "0.1",
    "-W",
    "2",
    ip,
  ]);
  assert.equal((await p.finish()).code, 0, `ping ${ip} from ${ns}: ${p.lines.join("\n")}`);
}

/** Floods so far, summed over ports, from the last `--stats-interval` line of each. */
function floods(sw: Proc, taps: string[]): { all: number; unknown: number } | undefined {
  let all = 0, unknown = 0;
  for (const t of taps) {
    const line = sw.errLines.findLast((l) => l.includes(`] ${t}:`));
    const m = line?.match(/flooded (\d+) \(unknown (\d+)/);
    if (!m) return undefined;
    all += Number(m[1]);
    unknown += Number(m[2]);
  }
  return { all, unknown };
}

/** Wait for three fresh rounds of status lines (one line per port): the counts are current. */
async function statsTick(sw: Proc, ports: number): Promise<void> {
  const n = sw.errLines.length;
  const end = performance.now() + 5000;
  while (sw.errLines.length < n + 3 * ports && performance.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Permanent neighbour entries for every pair: no ARP at all, so nothing but our pings. */
function staticNeighbours({ taps, ns, ips, macs }: Net): void {
  for (const [i, n] of ns.entries()) {
    for (const j of [0, 1, 2]) {
      if (j === i) continue;
      must(`ip -n ${n} neigh replace ${ips[j]} lladdr ${macs[j]} dev ${taps[i]} nud permanent`);
    }
  }
}

Deno.test({
  name:
    "switch over 3 TAPs: every pair pings, 4 MiB of TCP arrive byte-exact, floods stop once learned",
  ...tapTest,
  async fn() {
    let first: { all: number; unknown: number } | undefined;
    let second: { all: number; unknown: number } | undefined;
    let sums: string[] = [];
    let macs: string[] = [];
    let taps: string[] = [];
    const out = await withSwitch(["--stats-interval", "0.2"], async (net) => {
      const { ns, ips, sw } = net;
      ({ macs, taps } = net);
      for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) await ping(ns[a], ips[b], 3);
      // Every namespace has talked: all three MACs are learned, ARP caches full.
      await statsTick(sw, 3);
      first = floods(sw, taps);
      for (const [a, b] of [[1, 0], [2, 0], [2, 1]]) await ping(ns[a], ips[b], 5);
      await statsTick(sw, 3);
      second = floods(sw, taps);

      const recv = tool(["tcp_recv", ips[2], "9997", "20"], ns[2]);
      await recv.waitFor("ready");
      const send = tool(["tcp_send", ips[2], "9997", String(4 << 20), "7"], ns[0]);
      assert.ok((await send.finish()).success, send.errLines.join("\n"));
      assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
      sums = [send.lines.at(-1)!, recv.lines.at(-1)!];
    });
    assert.match(sums[0], new RegExp(`^${4 << 20} [0-9a-f]{64}$`));
    assert.equal(sums[1], sums[0], "the receiver got exactly the bytes sent (length, sha256)");
    assert.ok(first && second, "live per-port counts were printed");
    // The ARP requests (one per pair) were broadcast: flooded.
    assert.ok(first.all >= 3, `floods during the first pings: ${JSON.stringify(first)}`);
    assert.deepEqual(second, first, "no flood at all once every MAC was learned");
    assert.deepEqual(Object.keys(out.ports), taps);
    for (const [i, t] of taps.entries()) {
      const p = out.ports[t];
      assert.equal(p.learned, 1, `${t}: one MAC learned on it`);
      assert.ok(p.rx > 0 && p.tx > 0, `${t}: rx ${p.rx} tx ${p.tx}`);
      assert.equal(p.dropped, 0, `${t}: nothing dropped: ${JSON.stringify(p)}`);
      const e = out.fdb.find((x) => x.mac === macs[i]);
      assert.ok(e, `${macs[i]} is in the table: ${JSON.stringify(out.fdb)}`);
      assert.equal(e.port, t, `${macs[i]} learned on ${t}`);
      assert.ok(e.age >= 0 && e.age < 60, `age ${e.age}`);
    }
    assert.equal(out.learned, 3);
    assert.equal(out.fdb.length, 3);
    // The stream crossed port 0 -> port 2 only (4 MiB: at least 64 frames
    // even as 64 KiB super-frames); port 1 saw none of it.
    const [p0, p1, p2] = taps.map((t) => out.ports[t]);
    assert.ok(p0.rx > 64 && p2.tx > 64, `stream: ${p0.rx} in, ${p2.tx} out`);
    // With vnet headers and offloads, TCP crossed as super-frames, whole.
    assert.ok(p0.rxSuper > 0 && p2.txSuper > 0, `super-frames ${p0.rxSuper} in, ${p2.txSuper} out`);
    assert.ok(p1.tx < 40, `port 1 got only the floods and its pings: ${p1.tx}`);
    const read = taps.reduce((s, t) => s + out.ports[t].rx, 0);
    assert.equal(out.program.rx, read, "the program saw every frame read");
    assert.equal(out.program.invalid + out.program.txDropped, 0);
  },
});

Deno.test({
  name:
    "switch: each port's latency, receive to transmit, counts every frame written into it, values > 0",
  ...tapTest,
  async fn() {
    let taps: string[] = [];
    const out = await withSwitch([], async (net) => {
      taps = net.taps;
      for (const [a, b] of [[0, 1], [0, 2], [1, 2]]) await ping(net.ns[a], net.ips[b], 3);
    });
    for (const t of taps) {
      const p = out.ports[t];
      assert.equal(p.dropped, 0, `${t}: nothing dropped: ${JSON.stringify(p)}`);
      assert.ok(p.latency, `${t} has a latency: ${JSON.stringify(p)}`);
      assert.equal(p.latency.count, p.tx, `${t}: one count per frame written into it`);
      assert.ok(p.tx >= 3, `${t}: its pings, at least (${p.tx})`);
      assert.ok(p.latency.p50 > 0 && p.latency.max >= p.latency.p99, JSON.stringify(p.latency));
    }
  },
});

Deno.test({
  name: "switch --age 1: an idle MAC is gone from the table after 2 s and is flooded to again",
  ...tapTest,
  async fn() {
    let fresh: { all: number; unknown: number } | undefined;
    let aged: { all: number; unknown: number } | undefined;
    const out = await withSwitch(
      ["--age", "1", "--fdb", "--stats-interval", "0.2"],
      async (net) => {
        const { ns, ips, sw, taps } = net;
        staticNeighbours(net);
        // No ARP: the first request goes to a MAC the switch never saw.
        await ping(ns[0], ips[1], 2);
        await statsTick(sw, 3);
        fresh = floods(sw, taps);
        await new Promise((r) => setTimeout(r, 2000));
        // Idle for 2 s: the switch forgot both MACs, so this request is
        // flooded again.
        await ping(ns[0], ips[1], 1);
        await statsTick(sw, 3);
        aged = floods(sw, taps);
        await new Promise((r) => setTimeout(r, 2000));
      },
    );
    assert.equal(
      fresh?.unknown,
      1,
      `first ping: one unknown-unicast flood: ${JSON.stringify(fresh)}`,
    );
    assert.equal(aged?.unknown, 2, `after aging: one more: ${JSON.stringify(aged)}`);
    assert.deepEqual(out.fdb, [], "every entry aged out");
    assert.equal(out.learned, 0);
  },
});

Deno.test({
  name:
    "switch --fdb --cpus 2 --queues 2: the table at exit (both Workers' merged), one line per MAC with its port and age",
  ...tapTest,
  async fn() {
    let macs: string[] = [];
    let taps: string[] = [];
    const lines = await withSwitch(["--fdb", "--cpus", "2", "--queues", "2"], async (net) => {
      ({ macs, taps } = net);
      staticNeighbours(net);
      await ping(net.ns[0], net.ips[1], 2);
    }, false);
    for (const i of [0, 1]) {
      const l = lines.find((x) => x.startsWith(macs[i]));
      assert.match(
        l ?? "",
        new RegExp(`^${macs[i]} dev ${taps[i]} age \\d+\\.\\d s$`),
        lines.join("\n"),
      );
    }
    assert.ok(!lines.some((x) => x.startsWith(macs[2])), "the silent namespace was not learned");
    assert.ok(lines.some((x) => x.startsWith(`${taps[2]}: rx 0 `)), lines.join("\n"));
  },
});

Deno.test("switch: usage errors exit 2 naming the flag", async () => {
  for (
    const [args, want] of [
      [["btsx0"], /expected 2\.\.64 TAP device names, got 1/],
      [["btsx0", "btsx1", "--cpus", "0"], /--cpus=0/],
      [["btsx0", "btsx1", "--queues", "65"], /--queues=65/],
      [["btsx0", "btsx1", "--age", "-1"], /--age=-1/],
      [["btsx0", "btsx1", "--mode", "turbo"], /--mode=turbo/],
      [["btsx0", "btsx1", "--stats-interval", "x"], /--stats-interval=x/],
      [["btsx0", "btsx0"], /named twice/],
      [["btsx0", "btsx1", "--vnet-hdr-size", "11"], /--vnet-hdr-size=11/],
      [["btsx0", "btsx1", "--frob"], /unknown flag: --frob/],
    ] as [string[], RegExp][]
  ) {
    const p = new Proc("deno", ["run", "-A", MOD, "switch", ...args]);
    const st = await p.finish();
    assert.equal(st.code, 2, `${args.join(" ")}: ${p.errLines.join("\n")}`);
    assert.match(p.errLines.join("\n"), want);
    assert.match(p.errLines.join("\n"), /mod\.ts switch --help/);
  }
});

Deno.test("switch: each Worker's table in shared memory; the merged table keeps the newest sighting, drops the aged", () => {
  const shared = new SwitchShared(2, 1e9, 16);
  const [t0, t1] = shared.options.tables;
  const w0 = new L2Switch({ capacity: 16, ageNs: 1e9, memory: t0 });
  const w1 = new L2Switch({ capacity: 16, ageNs: 1e9, memory: t1 });
  w0.learn(0x020000000001, 0, 100);
  w1.learn(0x020000000001, 2, 200); // moved: Worker 1 saw it later, on port 2
  w1.learn(0x020000000002, 1, 150);
  w0.learn(0x020000000003, 1, 10); // last seen 1 s + 90 ns before "now": aged
  assert.deepEqual(L2Switch.entries(t0).map((e) => e.mac).sort(), [0x020000000001, 0x020000000003]);
  assert.deepEqual(shared.fdb(1e9 + 100), [
    { mac: 0x020000000001, port: 2, seenNs: 200 },
    { mac: 0x020000000002, port: 1, seenNs: 150 },
  ]);
  assert.throws(() => new L2Switch({ capacity: 16, memory: new ArrayBuffer(100) }), /tableBytes/);
});

Deno.test({
  name: "switch: SIGTERM stops it with exit 0 and its final per-port counts",
  ...tapTest,
  async fn() {
    let taps: string[] = [];
    const out = await withSwitch(
      [],
      async (net) => {
        taps = net.taps;
        await ping(net.ns[0], net.ips[1], 3);
      },
      true,
      { signal: "SIGTERM" },
    );
    assert.equal(out.stoppedBy, "SIGTERM");
    assert.deepEqual(Object.keys(out.ports), taps);
    assert.ok(out.ports[taps[1]].tx >= 3, `the pings reached port 1: ${out.ports[taps[1]].tx}`);
    assert.equal(out.program.rx, taps.reduce((s, t) => s + out.ports[t].rx, 0));
  },
});

Deno.test({
  name:
    "switch: a port deleted under load stops it cleanly: the error said, every port's final counts printed, exit 1",
  ...tapTest,
  async fn() {
    let taps: string[] = [];
    let errs: string[] = [];
    const out = await withSwitch(
      [],
      async (net) => {
        taps = net.taps;
        errs = net.sw.errLines;
        // Load: a ping flood between ports 0 and 1 while port 2 goes away.
        const flood = new Proc("ip", [
          "netns",
          "exec",
          net.ns[0],
          "ping",
          "-f",
          "-c",
          "20000",
          "-W",
          "1",
          net.ips[1],
        ]);
        await new Promise((r) => setTimeout(r, 300));
        must(`ip -n ${net.ns[2]} link del ${net.taps[2]}`);
        const t0 = performance.now();
        while (!net.sw.errLines.some((l) => l.includes(net.taps[2]) && !l.includes("ready"))) {
          assert.ok(performance.now() - t0 < 10_000, "the switch said nothing of the deleted port");
          await new Promise((r) => setTimeout(r, 50));
        }
        flood.kill();
        await flood.finish();
      },
      true,
      { signal: null, code: 1 },
    );
    assert.equal(out.stoppedBy, "error");
    assert.ok(
      errs.some((l) => l.startsWith("bulktap switch:") && l.includes(taps[2])),
      `the error names the deleted port: ${errs.join("\n")}`,
    );
    assert.deepEqual(Object.keys(out.ports), taps, "every port's counts, the deleted one too");
    assert.ok(out.ports[taps[1]].tx > 0 && out.ports[taps[0]].rx > 0, JSON.stringify(out.ports));
    // Every frame read (and every flood copy made of one) was sent, refused
    // (counted) or dropped by the program (counted).
    const p = out.program;
    assert.equal(
      p.sent + p.txDropped + p.programDrops + p.invalid + p.thrown,
      p.rx + p.floodCopies,
      JSON.stringify(p),
    );
  },
});
