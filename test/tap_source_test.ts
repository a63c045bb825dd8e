/**
 * TAP queues as poll-loop sources: a TypeScript program between two TAP
 * devices in two network namespaces this test creates (and removes).
 */
import assert from "assert";
import {
  BulktapError,
  FramePool,
  LoopCounter,
  PollLoop,
  type Program,
  redirect,
  Scheduler,
  sourceFromSpec,
  TapDevice,
  TapSource,
} from "../mod.ts";
import { linkCounts, must, Proc, tapTest, tool, tryRun, uid } from "./tap_helpers.ts";

/** Sends each frame out of the other TAP: target 1 for ingress 0, and back. */
const cross: Program = (b) => {
  const to = redirect(b.ingress === 0 ? 1 : 0);
  for (let i = 0; i < b.count; i++) b.verdicts[i] = to;
};

/** Two TAPs, each moved into its own namespace and addressed. */
async function twoNamespaces(
  body: (x: { a: TapDevice; b: TapDevice; nsA: string; ipB: string; names: string[] }) => Promise<
    void
  >,
  queues = 1,
): Promise<void> {
  const id = uid();
  const [na, nb, nsA, nsB] = [`btsa${id}`, `btsb${id}`, `btnsa-${id}`, `btnsb-${id}`];
  const [ipA, ipB] = ["10.213.78.1", "10.213.78.2"];
  using pool = new FramePool({ frames: 1024 });
  try {
    must(`ip netns add ${nsA} && ip netns add ${nsB}`);
    for (const ns of [nsA, nsB]) {
      must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1`);
      must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1`);
    }
    using a = new TapDevice({ name: na, pool, queues });
    using b = new TapDevice({ name: nb, pool, queues });
    // The fds stay attached when the devices move.
    must(`ip link set ${na} netns ${nsA} && ip link set ${nb} netns ${nsB}`);
    must(`ip -n ${nsA} link set ${na} up && ip -n ${nsA} addr add ${ipA}/24 dev ${na}`);
    must(`ip -n ${nsB} link set ${nb} up && ip -n ${nsB} addr add ${ipB}/24 dev ${nb}`);
    await body({ a, b, nsA, ipB, names: [na, nb, nsA, nsB] });
  } finally {
    tryRun(`ip netns del ${nsA}`);
    tryRun(`ip netns del ${nsB}`);
    tryRun(`ip link del ${na}`);
    tryRun(`ip link del ${nb}`);
  }
}

/** Runs `loop` on this thread until `stop` resolves; sleeps on the sources when idle. */
async function run(loop: PollLoop, sources: TapSource[], stop: Promise<unknown>): Promise<void> {
  let done = false;
  stop.finally(() => (done = true));
  while (!done) {
    if (loop.cycle() > 0) continue;
    await Promise.race([stop, ...sources.map((s) => s.wait(20))]);
  }
  loop.close();
}

Deno.test({
  name: "tap source: a TypeScript program forwards ping and 2,000 UDP datagrams between namespaces",
  ...tapTest,
  async fn() {
    await twoNamespaces(async ({ a, b, nsA, ipB, names }) => {
      const sources = [
        new TapSource({ kind: "tap", device: a.handle, queue: 0, ingress: 0 }),
        new TapSource({ kind: "tap", device: b.handle, queue: 0, ingress: 1 }),
      ];
      const loop = new PollLoop({ sources, program: cross, targets: [a, b], latency: false });
      const N = 2000;
      const traffic = (async () => {
        const ping = new Proc("ip", ["netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", ipB]);
        const p = await ping.finish();
        assert.equal(p.code, 0, `ping failed: ${ping.lines.join("\n")}`);
        const recv = tool(["udp_recv", ipB, "9998", String(N), "5"], names[3]);
        await recv.waitFor("ready");
        const send = tool(["udp_send", ipB, "9998", String(N)], nsA);
        assert.ok((await send.finish()).success, send.errLines.join("\n"));
        assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
        return Number(recv.lines.at(-1));
      })();
      await run(loop, sources, traffic);
      assert.equal(await traffic, N, "every datagram arrived");
      const c = loop.counters;
      const ka = linkCounts(names[0], names[2]), kb = linkCounts(names[1], names[3]);
      // The loop read what the kernel sent into either TAP: the datagrams,
      // pings and replies at least, and never more than the kernel sent (it
      // may send more after the loop stops, e.g. an ARP refresh).
      assert.ok(c[LoopCounter.RX] <= ka.tx + kb.tx, "no frame read twice or invented");
      assert.ok(c[LoopCounter.RX] >= N + 6, "the datagrams, pings and replies were read");
      assert.equal(c[LoopCounter.REDIRECT], c[LoopCounter.RX], "every frame redirected");
      assert.equal(
        c[LoopCounter.TX_SENT] + c[LoopCounter.TX_DROPPED],
        c[LoopCounter.RX],
        "every frame sent or counted as dropped",
      );
      assert.ok(c[LoopCounter.TX_SENT] >= N + 6, "the datagrams and the pings went through");
    });
  },
});

Deno.test({
  name: 'tap source: the "tap" kind builds from a spec; a queue the TAP lacks fails with EINVAL',
  ...tapTest,
  async fn() {
    await twoNamespaces(({ a }) => {
      const s = sourceFromSpec({ kind: "tap", device: a.handle, queue: 0 }, 0);
      assert.ok(s instanceof TapSource);
      // The kernel may already have sent something (IPv6 or ARP chatter).
      const refs = new Uint32Array(4);
      const n = s.poll(refs, 4);
      assert.ok(n >= 0 && n <= 4);
      a.pool.free(refs, n);
      assert.throws(
        () => new TapSource({ kind: "tap", device: a.handle, queue: 1 }),
        (e) => e instanceof BulktapError && e.code === "EINVAL" && /no queue 1/.test(e.message),
      );
      assert.throws(
        () => s.poll(new Uint8Array(4) as unknown as Uint32Array, 4),
        (e) => e instanceof BulktapError && e.code === "EINVAL",
      );
      return Promise.resolve();
    });
  },
});

Deno.test({
  name:
    "tap source: a TAP deleted while the loop reads it stops the loop with ENODEV, no frame lost",
  ...tapTest,
  async fn() {
    await twoNamespaces(({ a, b, names }) => {
      const src = new TapSource({ kind: "tap", device: a.handle, queue: 0, ingress: 0 });
      const loop = new PollLoop({
        sources: [src],
        program: cross,
        targets: [a, b],
        latency: false,
      });
      must(`ip -n ${names[2]} link del ${names[0]}`);
      let err: unknown;
      for (let i = 0; i < 100 && !err; i++) {
        try {
          loop.cycle();
        } catch (e) {
          err = e;
        }
      }
      assert.ok(err instanceof BulktapError && err.code === "ENODEV", `got ${err}`);
      loop.close();
      const s = a.pool.stats();
      assert.equal(s.free + s.queued, s.frames, "every frame back in the pool or queued");
      return Promise.resolve();
    });
  },
});

Deno.test({
  name:
    "tap source: the scheduler runs the pair program on 2 Workers x 2 TAP queues between namespaces",
  ...tapTest,
  async fn() {
    await twoNamespaces(async ({ a, b, nsA, ipB, names }) => {
      // Each Worker ("CPU") reads its own queue of each TAP and transmits
      // into queue cpu % 2 of the other: receive and transmit queue choice
      // per CPU, one lock per bulk.
      const sched = new Scheduler({
        cpus: 2,
        sources: [a, b].flatMap((t, port) =>
          [0, 1].map((q) => ({ kind: "tap", device: t.handle, queue: q, ingress: port, cpu: q }))
        ),
        program: { name: "pair" },
        targets: [a, b],
      });
      await sched.start();
      const N = 2000;
      try {
        const ping = new Proc("ip", ["netns", "exec", nsA, "ping", "-c", "3", "-i", "0.2", ipB]);
        assert.equal((await ping.finish()).code, 0, `ping failed: ${ping.lines.join("\n")}`);
        const recv = tool(["udp_recv", ipB, "9997", String(N), "5"], names[3]);
        await recv.waitFor("ready");
        const send = tool(["udp_send", ipB, "9997", String(N)], nsA);
        assert.ok((await send.finish()).success, send.errLines.join("\n"));
        assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
        assert.equal(Number(recv.lines.at(-1)), N, "every datagram arrived");
      } finally {
        const r = await sched.close();
        const c = r.counters;
        assert.ok(c.rx >= N + 6, `read ${c.rx}`);
        assert.equal(c.txSent + c.txDropped, c.rx, "every frame read was sent or counted");
        assert.equal(c.programDrops + c.invalid, 0);
      }
    }, 2);
  },
});
