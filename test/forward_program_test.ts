/**
 * `forward A B --program P`: TypeScript programs on real traffic between two
 * network namespaces this test creates (and removes), through two TAPs.
 */
import assert from "assert";
import { linkCounts, must, Proc, tapTest, tool, tryRun, uid } from "./tap_helpers.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

/** Two namespaces, the forwarder between their TAPs, and `body` run on them. */
async function withForward(
  flags: string[],
  body: (x: { nsA: string; nsB: string; ipB: string }) => Promise<void>,
  after?: (p: Proc) => void,
): Promise<Record<string, unknown>> {
  const id = uid();
  const [a, b, nsA, nsB] = [`btpa${id}`, `btpb${id}`, `btnpa-${id}`, `btnpb-${id}`];
  const [ipA, ipB] = ["10.213.79.1", "10.213.79.2"];
  let fwd: Proc | undefined;
  try {
    must(`ip netns add ${nsA} && ip netns add ${nsB}`);
    for (const ns of [nsA, nsB]) {
      must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1`);
      must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1`);
    }
    must(
      `ip tuntap add dev ${a} mode tap multi_queue && ip tuntap add dev ${b} mode tap multi_queue`,
    );
    fwd = new Proc("deno", ["run", "-A", MOD, "forward", a, b, ...flags, "--json"]);
    await fwd.waitFor("ready", 60_000);
    must(`ip link set ${a} netns ${nsA} && ip link set ${b} netns ${nsB}`);
    must(`ip -n ${nsA} link set ${a} up && ip -n ${nsA} addr add ${ipA}/24 dev ${a}`);
    must(`ip -n ${nsB} link set ${b} up && ip -n ${nsB} addr add ${ipB}/24 dev ${b}`);
    await body({ nsA, nsB, ipB });
    fwd.child.kill("SIGINT");
    const st = await fwd.finish();
    assert.equal(st.code, 0, fwd.errLines.join("\n"));
    const out = JSON.parse(fwd.lines.at(-1)!);
    after?.(fwd);
    const ka = linkCounts(a, nsA), kb = linkCounts(b, nsB);
    const da = out.devices[a], db = out.devices[b];
    // What the forwarder read from a TAP is what the kernel sent into it.
    assert.deepEqual({ rx: da.rx, tx: da.tx }, { rx: ka.tx, tx: ka.rx }, `${a} vs kernel`);
    assert.deepEqual({ rx: db.rx, tx: db.tx }, { rx: kb.tx, tx: kb.rx }, `${b} vs kernel`);
    return out;
  } finally {
    if (fwd) {
      try {
        fwd.child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }
    tryRun(`ip netns del ${nsA}`);
    tryRun(`ip netns del ${nsB}`);
    tryRun(`ip link del ${a}`);
    tryRun(`ip link del ${b}`);
  }
}

async function udp(nsA: string, nsB: string, ipB: string, port: number, n: number, idle = 5) {
  const recv = tool(["udp_recv", ipB, String(port), String(n), String(idle)], nsB);
  await recv.waitFor("ready");
  const send = tool(["udp_send", ipB, String(port), String(n)], nsA);
  assert.ok((await send.finish()).success, send.errLines.join("\n"));
  assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
  return Number(recv.lines.at(-1));
}

Deno.test({
  name:
    "forward --program forward: 2 Workers x 2 queues carry ping and 3,000 datagrams, every frame counted",
  ...tapTest,
  async fn() {
    const N = 3000;
    const out = await withForward(
      ["--program", "forward", "--cpus", "2", "--queues", "2"],
      async ({ nsA, nsB, ipB }) => {
        const ping = new Proc("ip", ["netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", ipB]);
        assert.equal((await ping.finish()).code, 0, ping.lines.join("\n"));
        assert.equal(await udp(nsA, nsB, ipB, 9995, N), N, "every datagram arrived");
      },
    );
    const p = out.program as Record<string, number>;
    assert.ok(p.rx >= N + 6, `read ${p.rx}`);
    assert.equal(p.sent + p.txDropped, p.rx, "every frame read was sent or counted as refused");
    assert.equal(p.programDrops + p.invalid + p.passed, 0);
    assert.equal(p.toA + p.toB, p.sent);
  },
});

Deno.test({
  name:
    "forward --program forward --mode single: one frame per read and per transmit, every frame counted",
  ...tapTest,
  async fn() {
    const N = 2000;
    const out = await withForward(
      ["--program", "forward", "--mode", "single"],
      async ({ nsA, nsB, ipB }) => {
        assert.equal(await udp(nsA, nsB, ipB, 9994, N), N, "every datagram arrived");
      },
    );
    const p = out.program as Record<string, number>;
    assert.ok(p.rx >= N, `read ${p.rx}`);
    assert.equal(p.sent + p.txDropped, p.rx, "every frame read was sent or counted as refused");
    for (
      const d of Object.values(out.devices as Record<string, { rx: number; rxBatches: number }>)
    ) {
      assert.equal(d.rxBatches, d.rx, `one frame per read: ${d.rx} frames in ${d.rxBatches} reads`);
    }
  },
});

Deno.test({
  name:
    "forward --program forward: each TAP's latency histogram counts every frame sent into it, receive to transmit, values > 0",
  ...tapTest,
  async fn() {
    const out = await withForward(["--program", "forward"], async ({ nsA, ipB }) => {
      const ping = new Proc("ip", ["netns", "exec", nsA, "ping", "-c", "5", "-i", "0.2", ipB]);
      assert.equal((await ping.finish()).code, 0, ping.lines.join("\n"));
    });
    const [a, b] = Object.keys(out.devices as object);
    const p = out.program as {
      toA: number;
      toB: number;
      txDropped: number;
      latency: Record<string, { count: number; p50: number; p99: number; max: number }>;
    };
    assert.equal(p.txDropped, 0, "nothing refused: every frame handed over was sent");
    assert.deepEqual(Object.keys(p.latency), [a, b]);
    assert.equal(p.latency[a].count, p.toA, `into ${a}: one count per frame sent`);
    assert.equal(p.latency[b].count, p.toB, `into ${b}: one count per frame sent`);
    for (const name of [a, b]) {
      const l = p.latency[name];
      assert.ok(l.count >= 5, `${name}: the echo requests or replies, at least (${l.count})`);
      assert.ok(l.p50 > 0 && l.p99 >= l.p50 && l.max >= l.p99, `${name}: ${JSON.stringify(l)}`);
      // Receive to transmit inside one Worker: well under a second.
      assert.ok(l.max < 1e9, `${name}: max ${l.max} ns`);
    }
  },
});

Deno.test({
  name:
    "forward --program ./firewall.ts: datagrams to the blocked port are dropped and counted, the rest pass",
  ...tapTest,
  async fn() {
    const fw = new URL("./fixtures/udp_firewall.ts", import.meta.url).pathname;
    const out = await withForward(["--program", fw], async ({ nsA, nsB, ipB }) => {
      assert.equal(await udp(nsA, nsB, ipB, 9995, 500), 500, "an open port gets everything");
      assert.equal(await udp(nsA, nsB, ipB, 9996, 200, 1), 0, "the blocked port gets nothing");
    });
    const p = out.program as Record<string, number>;
    assert.ok(p.programDrops >= 200, `dropped ${p.programDrops}`);
    assert.equal(
      p.sent + p.txDropped + p.programDrops,
      p.rx,
      "every frame sent, refused or dropped",
    );
  },
});

Deno.test({
  name:
    "forward --program: a program that throws is said once, its frames dropped and counted, and the forwarder keeps running",
  ...tapTest,
  async fn() {
    const mod = new URL("./throwing_program.ts", import.meta.url).pathname;
    let errs: string[] = [];
    const out = await withForward(["--program", `${mod}#throwing`], async ({ nsA, nsB, ipB }) => {
      // Nothing gets through (not even ARP): the kernel asks again each
      // second, so the program throws on batch after batch.
      assert.equal(await udp(nsA, nsB, ipB, 9995, 50, 3), 0, "nothing gets through");
    }, (p) => errs = p.errLines);
    const p = out.program as Record<string, number> & { programErrors: { message: string }[] };
    assert.ok(p.thrown >= 3, `frames dropped because it threw, batch after batch: ${p.thrown}`);
    assert.equal(p.thrown, p.rx, "every frame read was dropped and counted");
    assert.equal(p.sent, 0);
    assert.deepEqual(p.programErrors.map((e) => e.message), ["boom"]);
    const said = errs.filter((l) => l.includes("the program threw"));
    assert.equal(said.length, 1, `said once: ${errs.join("\n")}`);
  },
});

for (
  const [exported, reason] of [
    ["badVerdict", "a bad verdict"],
    ["missingTarget", "a redirect to a missing target"],
  ] as const
) {
  Deno.test({
    name:
      `forward --program: ${reason} drops those frames, counted as ${exported} and said once, ` +
      "and the forwarder keeps forwarding the rest",
    ...tapTest,
    async fn() {
      const mod = new URL("./fixtures/invalid_verdicts.ts", import.meta.url).pathname;
      let errs: string[] = [];
      const out = await withForward(
        ["--program", `${mod}#${exported}`],
        async ({ nsA, nsB, ipB }) => {
          assert.equal(await udp(nsA, nsB, ipB, 9996, 200, 1), 0, "its port gets nothing");
          // After the invalid verdicts, traffic still flows.
          assert.equal(await udp(nsA, nsB, ipB, 9995, 300), 300, "another port gets everything");
          const ping = new Proc("ip", ["netns", "exec", nsA, "ping", "-c", "2", "-i", "0.2", ipB]);
          assert.equal((await ping.finish()).code, 0, ping.lines.join("\n"));
        },
        (p) => errs = p.errLines,
      );
      const p = out.program as {
        rx: number;
        sent: number;
        txDropped: number;
        programDrops: number;
        invalid: number;
        invalidByReason: Record<string, number>;
        invalidVerdicts: { cpu: number; reason: string; message: string }[];
      };
      assert.equal(p.invalid, 200, "every datagram to the port, and nothing else");
      const want = { badVerdict: 0, missingTarget: 0, noIngress: 0, [exported]: 200 };
      assert.deepEqual(p.invalidByReason, want);
      assert.equal(p.sent + p.txDropped + p.invalid, p.rx, "every frame sent or counted");
      assert.deepEqual(p.invalidVerdicts.map((v) => [v.cpu, v.reason]), [[0, exported]]);
      const said = errs.filter((l) => l.includes("invalid verdict"));
      assert.equal(said.length, 1, `said once: ${errs.join("\n")}`);
      assert.match(said[0], exported === "badVerdict" ? /0x77/ : /index 9 .*0\.\.1/);
    },
  });
}

Deno.test({
  name: "forward --program: an unknown program name or --cpus without a program exits 2",
  ...tapTest,
  async fn() {
    for (const flags of [["--program", "nosuch"], ["--cpus", "2"]]) {
      const p = new Proc("deno", ["run", "-A", MOD, "forward", "btx0", "btx1", ...flags]);
      const st = await p.finish();
      assert.equal(st.code, 2, p.errLines.join("\n"));
      assert.match(p.errLines.join("\n"), /--program|--cpus/);
    }
  },
});
