/**
 * TAP offloads end to end: two network namespaces this test creates (and
 * removes) joined only by the forwarder, real kernel TCP between them.
 * Super-frames pass through unchanged, are coalesced (GRO) or segmented
 * (GSO) in software, jumbo MTUs work, and every transfer is byte-exact.
 */
import assert from "assert";
import { FramePool, TAP_OFFLOADS, TapDevice, tapFrameSize } from "../dataplane/mod.ts";
import { META } from "../dataplane/pool.ts";
import { must, Proc, tapTest, tool, tryRun, uid } from "./tap_helpers.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;
const IP_A = "10.213.81.1", IP_B = "10.213.81.2";

interface Net {
  nsA: string;
  nsB: string;
  a: string;
  b: string;
}

/** Namespaces A and B holding TAPs a and b (already made), addressed and up. */
function plumb(a: string, b: string, nsA: string, nsB: string, mtu?: number): void {
  // No IPv6 (no router solicitations racing the setup), and B up before A:
  // nothing A sends meets a B that is down (a write into a down TAP fails).
  for (const ns of [nsA, nsB]) {
    must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1`);
    must(`ip netns exec ${ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1`);
  }
  must(`ip link set ${a} netns ${nsA} && ip link set ${b} netns ${nsB}`);
  // A moved device keeps its own IPv6 setting: turn it off there too.
  must(`ip netns exec ${nsA} sysctl -qw net.ipv6.conf.${a}.disable_ipv6=1`);
  must(`ip netns exec ${nsB} sysctl -qw net.ipv6.conf.${b}.disable_ipv6=1`);
  if (mtu) {
    must(`ip -n ${nsA} link set ${a} mtu ${mtu} && ip -n ${nsB} link set ${b} mtu ${mtu}`);
  }
  must(`ip -n ${nsB} addr add ${IP_B}/24 dev ${b} && ip -n ${nsB} link set ${b} up`);
  must(`ip -n ${nsA} addr add ${IP_A}/24 dev ${a} && ip -n ${nsA} link set ${a} up`);
}

function names(): { a: string; b: string; nsA: string; nsB: string } {
  const id = uid();
  return { a: `btoa${id}`, b: `btob${id}`, nsA: `btnoa-${id}`, nsB: `btnob-${id}` };
}

function cleanup(n: { a: string; b: string; nsA: string; nsB: string }): void {
  tryRun(`ip netns del ${n.nsA}`);
  tryRun(`ip netns del ${n.nsB}`);
  tryRun(`ip link del ${n.a}`);
  tryRun(`ip link del ${n.b}`);
}

/** `forward a b ...flags` between two namespaces; returns its JSON counts. */
async function withForward(
  flags: string[],
  body: (n: Net) => Promise<unknown>,
  mtu?: number,
  before?: (n: { a: string; b: string }) => void,
): Promise<{ out: Record<string, unknown>; a: string; b: string }> {
  const n = names();
  let fwd: Proc | undefined;
  try {
    must(`ip netns add ${n.nsA} && ip netns add ${n.nsB}`);
    before?.(n);
    fwd = new Proc("deno", [
      "run",
      "-A",
      MOD,
      "forward",
      n.a,
      n.b,
      ...flags,
      "--stats-interval",
      "0.1",
      "--json",
    ]);
    await fwd.waitFor("ready", 60_000);
    plumb(n.a, n.b, n.nsA, n.nsB, mtu);
    const setup = await setupDrops(fwd, [n.a, n.b]);
    await body(n);
    fwd.child.kill("SIGINT");
    const st = await fwd.finish();
    assert.equal(st.code, 0, fwd.errLines.join("\n"));
    const out = JSON.parse(fwd.lines.at(-1)!);
    // What the kernel refused while a link was still down during setup is
    // counted (as it must be) but is no part of what the test runs: the
    // figures the tests check start once both links are up.
    for (const [name, k] of Object.entries(setup)) {
      const d = (out.devices as Record<string, { dropped: number; drops: Record<string, number> }>)[
        name
      ];
      d.dropped -= k;
      d.drops.writeFailed -= k;
    }
    return { out, a: n.a, b: n.b };
  } finally {
    try {
      fwd?.child.kill("SIGKILL");
    } catch {
      // already gone
    }
    cleanup(n);
  }
}

/**
 * Frames per device the kernel refused while setting up, read from the
 * first `--stats-interval` line printed after both links are up. Only a
 * write into a TAP whose link was still down (`EIO`) may fail then.
 */
async function setupDrops(fwd: Proc, devs: string[]): Promise<Record<string, number>> {
  const from = fwd.errLines.length;
  const end = performance.now() + 5000;
  let line: string | undefined;
  while (!(line = fwd.errLines.slice(from).find((l) => l.startsWith("[")))) {
    assert.ok(performance.now() < end, "no --stats-interval line after setup");
    await new Promise((r) => setTimeout(r, 20));
  }
  const out: Record<string, number> = {};
  for (const d of devs) {
    const m = line.match(new RegExp(`${d}: rx \\d+ tx \\d+ dropped (\\d+)( \\(([^)]*)\\))?`));
    assert.ok(m, `no counts of ${d} in: ${line}`);
    out[d] = Number(m[1]);
    if (out[d] > 0) {
      assert.match(m[3] ?? "", /^writeFailed \d+ \(last EIO$/, `setup drops of ${d}: ${line}`);
    }
  }
  return out;
}

/**
 * Send `bytes` pseudo-random bytes A -> B over TCP; both ends' sha256 must
 * match. Returns the address B saw the connection come from.
 */
async function transfer(n: Net, bytes: number, port: number, to = IP_B): Promise<string> {
  const recv = tool(["tcp_recv", to, String(port), "30"], n.nsB);
  await recv.waitFor("ready");
  const send = tool(["tcp_send", to, String(port), String(bytes), "7"], n.nsA);
  const s = await send.finish(), r = await recv.finish();
  assert.ok(s.success, send.errLines.join("\n"));
  assert.ok(r.success, recv.errLines.join("\n"));
  const sent = send.lines.at(-1)!, got = recv.lines.at(-1)!;
  assert.equal(got, sent, "what B read is what A sent (bytes, sha256)");
  assert.match(sent, new RegExp(`^${bytes} [0-9a-f]{64}$`));
  return (recv.lines.find((l) => l.startsWith("peer ")) ?? "").slice(5);
}

async function ping(n: Net, size: number): Promise<void> {
  const p = new Proc("ip", [
    "netns",
    "exec",
    n.nsA,
    "ping",
    "-c",
    "3",
    "-i",
    "0.2",
    "-W",
    "2",
    "-M",
    "do",
    "-s",
    String(size),
    IP_B,
  ]);
  const st = await p.finish();
  assert.equal(st.code, 0, `ping -s ${size}: ${p.lines.join("\n")} ${p.errLines.join("\n")}`);
}

type Dev = Record<string, number & Record<string, number>> & {
  drops: Record<string, number>;
  gro: { frames: number; segments: number };
  gso: { frames: number; segments: number };
  offloads: string[];
};

const MIB = 1 << 20;

Deno.test({
  name:
    "offloads: by default forward negotiates every offload and TCP crosses as unchanged super-frames, byte-exact",
  ...tapTest,
  async fn() {
    const { out, a, b } = await withForward([], (n) => transfer(n, 16 * MIB, 5201));
    const devs = out.devices as Record<string, Dev>;
    const da = devs[a], db = devs[b];
    assert.ok(da.offloads.includes("tso4") && da.offloads.includes("csum"), `${da.offloads}`);
    assert.ok(da.rxSuper > 0, `A handed over ${da.rxSuper} super-frames`);
    assert.equal(db.txSuper, da.rxSuper, "every super-frame read from A was written into B whole");
    assert.equal(db.gso.frames, 0, "nothing segmented in user space");
    assert.equal(da.dropped + db.dropped, 0, JSON.stringify(out));
  },
});

Deno.test({
  name:
    "offloads: --offloads none makes the kernel segment, and bulk mode coalesces the segments (GRO), byte-exact",
  ...tapTest,
  async fn() {
    const { out, a, b } = await withForward(
      ["--offloads", "none"],
      (n) => transfer(n, 16 * MIB, 5202),
    );
    const devs = out.devices as Record<string, Dev>;
    const da = devs[a], db = devs[b];
    assert.deepEqual(da.offloads, []);
    assert.equal(da.rxSuper, 0, "A hands over no super-frames");
    assert.ok(db.gro.frames > 0, `super-frames coalesced into B: ${JSON.stringify(db.gro)}`);
    assert.ok(
      db.gro.segments >= 2 * db.gro.frames,
      `each is made of 2 or more frames: ${JSON.stringify(db.gro)}`,
    );
    assert.equal(da.dropped + db.dropped, 0, JSON.stringify(out));
  },
});

Deno.test({
  name: "offloads: --mode single --offloads none writes every frame as read (no GRO), byte-exact",
  ...tapTest,
  async fn() {
    const { out, b } = await withForward(
      ["--mode", "single", "--offloads", "none"],
      (n) => transfer(n, 4 * MIB, 5203),
    );
    const db = (out.devices as Record<string, Dev>)[b];
    assert.equal(db.gro.frames, 0);
    assert.equal(db.txSuper, 0);
  },
});

Deno.test({
  name:
    "offloads: super-frames into a TAP without a vnet header are segmented in software (GSO), byte-exact",
  ...tapTest,
  async fn() {
    const n = names();
    const frameSize = tapFrameSize({ superFrames: true });
    using pool = new FramePool({ frames: 2048, frameSize });
    try {
      must(`ip netns add ${n.nsA} && ip netns add ${n.nsB}`);
      using a = new TapDevice({
        name: n.a,
        pool,
        vnetHdr: 12,
        offloads: ["csum", "tso4", "tso6"],
        ringSize: 256,
      });
      using b = new TapDevice({ name: n.b, pool, ringSize: 256 });
      assert.deepEqual(a.offloads, ["csum", "tso4", "tso6"]);
      a.forwardTo(b);
      b.forwardTo(a);
      plumb(n.a, n.b, n.nsA, n.nsB);
      await transfer(n, 16 * MIB, 5204);
      await a.stopForwarding();
      await b.stopForwarding();
      const sa = a.stats(), sb = b.stats();
      assert.ok(sa.receivedSuper > 0, `A handed over ${sa.receivedSuper} super-frames`);
      assert.equal(sb.gsoFrames, sa.receivedSuper, "every one segmented for B");
      assert.ok(sb.gsoSegments > 2 * sb.gsoFrames, `${sb.gsoSegments} segments`);
      assert.equal(sb.offloadDropped + sb.writeErrors, 0);
      assert.equal(sb.writtenSuper, 0, "B got no super-frame");
    } finally {
      cleanup(n);
    }
  },
});

for (const mtu of [9000, 65521]) { // 65521: the kernel's largest TAP MTU
  Deno.test({
    name: `offloads: MTU ${mtu} works end to end: ping -M do -s ${mtu - 28} and TCP, byte-exact`,
    ...tapTest,
    async fn() {
      const { out } = await withForward(["--mtu", String(mtu)], async (n) => {
        await ping(n, mtu - 28);
        await transfer(n, 4 * MIB, 5205);
      }, mtu);
      for (const d of Object.values(out.devices as Record<string, Dev>)) {
        assert.equal(d.dropped, 0, JSON.stringify(d));
      }
    },
  });
}

Deno.test({
  name: "offloads: asking without a vnet header, or TSO without csum, is refused naming why",
  ...tapTest,
  fn() {
    using pool = new FramePool({ frames: 64, frameSize: tapFrameSize({ superFrames: true }) });
    const name = `btoz${uid()}`;
    try {
      assert.throws(
        () => new TapDevice({ name, pool, offloads: ["csum"] }),
        /need a virtio-net header/,
      );
      assert.throws(
        () => new TapDevice({ name, pool, vnetHdr: 12, offloads: ["tso4"] }),
        /need "csum" too/,
      );
      using small = new FramePool({ frames: 64 });
      assert.throws(
        () => new TapDevice({ name, pool: small, vnetHdr: 12, offloads: ["csum", "tso4"] }),
        /hold a 64 KiB super-frame.*frameSize >= \d+/,
      );
    } finally {
      tryRun(`ip link del ${name}`);
    }
  },
});

/** A TCP/IPv4 frame of `len` bytes (headers valid, payload zero) at ref's data. */
function tcpFrame(pool: FramePool, ref: number, len: number): void {
  const d = pool.dataOffset(ref), b = pool.bytes;
  b.fill(0, d, d + len);
  b.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], d); // unicast to nobody
  const ip = d + 14;
  b.set([0x45, 0, (len - 14) >> 8, (len - 14) & 255, 0, 1, 0x40, 0, 64, 6], ip);
  b.set([10, 213, 82, 1, 10, 213, 82, 2], ip + 12);
  b[ip + 20 + 12] = 5 << 4; // TCP data offset
  pool.setLength(ref, len);
}

Deno.test({
  name:
    "offloads: frames with hostile offload metadata are dropped and counted on transmit, never handed to the kernel",
  ...tapTest,
  async fn() {
    using pool = new FramePool({ frames: 256, frameSize: tapFrameSize({ superFrames: true }) });
    const view = new DataView(pool.bytes.buffer, pool.bytes.byteOffset, pool.bytes.byteLength);
    // [what, gso_type, gso_size, hdr_len, flags, csum_start, csum_offset]
    const hostile: [string, number, number, number, number, number, number][] = [
      ["unknown gso type", 9, 1000, 54, 1, 34, 16],
      ["UFO", 3, 1000, 42, 1, 34, 6],
      ["gso_size 0", 1, 0, 54, 1, 34, 16],
      ["hdr_len past the frame", 1, 1000, 60000, 1, 34, 16],
      ["csum_start past the frame", 0, 0, 0, 1, 5000, 16],
      ["csum_offset past the frame", 0, 0, 0, 1, 34, 4000],
      ["TCPv6 type on an IPv4 packet", 4, 1000, 54, 1, 34, 16],
    ];
    for (const vnetHdr of [12, 0] as const) {
      const name = `bth${uid()}`;
      try {
        using tap = new TapDevice({ name, pool, vnetHdr });
        const refs = new Uint32Array(hostile.length);
        assert.equal(pool.alloc(refs), hostile.length);
        hostile.forEach(([, type, size, hdr, flags, start, off], i) => {
          const ref = refs[i], f = pool.frameOffset(ref);
          tcpFrame(pool, ref, 3000);
          pool.bytes[f + META.gsoType] = type;
          pool.bytes[f + META.vnetFlags] = flags;
          view.setUint16(f + META.gsoSize, size, true);
          view.setUint16(f + META.hdrLen, hdr, true);
          view.setUint16(f + META.csumStart, start, true);
          view.setUint16(f + META.csumOffset, off, true);
        });
        assert.equal(tap.xmit(refs, { flush: true }), hostile.length);
        await tap.drained(5000);
        const s = tap.stats();
        assert.equal(s.offloadDropped, hostile.length, `vnetHdr ${vnetHdr}: ${JSON.stringify(s)}`);
        assert.equal(s.written, 0, `vnetHdr ${vnetHdr}: nothing written`);
        assert.equal(pool.stats().free, pool.frames, "every frame back in the pool");
      } finally {
        tryRun(`ip link del ${name}`);
      }
    }
  },
});

Deno.test({
  name:
    "offloads: a TypeScript NAT rewrites TSO super-frames with partial checksums, and B's stack checks and accepts every segment, byte-exact",
  ...tapTest,
  async fn() {
    const nat = new URL("./fixtures/snat.ts", import.meta.url).pathname;
    let peer = "";
    const { out, a, b } = await withForward(
      ["--program", nat],
      async (n) => {
        // A answers for the NAT address too (ARP from B's side).
        must(`ip -n ${n.nsA} addr add 10.213.81.3/24 dev ${n.a}`);
        peer = await transfer(n, 8 * MIB, 5206);
      },
      undefined,
      // B without a vnet header: the NAT'd super-frames are segmented and
      // their checksums completed in C, and B's kernel verifies each one
      // (a partial checksum into a vnet header would be trusted, not checked).
      (n) => must(`ip tuntap add dev ${n.b} mode tap multi_queue`),
    );
    assert.equal(peer, "10.213.81.3", "B saw the NAT address");
    const devs = out.devices as Record<string, Dev>;
    assert.ok(devs[a].rxSuper > 0, `A handed over ${devs[a].rxSuper} super-frames`);
    assert.ok(devs[b].gso.frames > 0, `NAT'd super-frames segmented for B: ${devs[b].gso.frames}`);
    assert.equal(devs[b].drops.offload + devs[b].drops.writeFailed, 0, JSON.stringify(devs[b]));
  },
});

Deno.test({
  name:
    "offloads: UDP super-frames (USO) and TCP over IPv6 are segmented in software for a TAP without a vnet header",
  ...tapTest,
  async fn() {
    const n = names();
    const ip6A = "fd77:51::1", ip6B = "fd77:51::2";
    using pool = new FramePool({ frames: 2048, frameSize: tapFrameSize({ superFrames: true }) });
    try {
      must(`ip netns add ${n.nsA} && ip netns add ${n.nsB}`);
      using a = new TapDevice({ name: n.a, pool, vnetHdr: 12, offloads: [...TAP_OFFLOADS] });
      using b = new TapDevice({ name: n.b, pool });
      if (!a.offloads.includes("uso4")) {
        throw new Error(`this kernel did not accept USO on a TAP: ${a.offloads}`);
      }
      a.forwardBoth(b);
      must(`ip link set ${n.a} netns ${n.nsA} && ip link set ${n.b} netns ${n.nsB}`);
      // B up first: whatever A sends on coming up finds B ready.
      must(`ip -n ${n.nsB} addr add ${IP_B}/24 dev ${n.b}`);
      must(
        `ip -n ${n.nsB} addr add ${ip6B}/64 dev ${n.b} nodad && ip -n ${n.nsB} link set ${n.b} up`,
      );
      must(`ip -n ${n.nsA} addr add ${IP_A}/24 dev ${n.a}`);
      must(
        `ip -n ${n.nsA} addr add ${ip6A}/64 dev ${n.a} nodad && ip -n ${n.nsA} link set ${n.a} up`,
      );
      await transfer(n, 8 * MIB, 5207, ip6B);
      const afterTcp = b.stats();
      assert.ok(afterTcp.gsoFrames > 0, `TCPv6 super-frames segmented: ${afterTcp.gsoFrames}`);
      // 200 sends of 8 x 1200 bytes with UDP_SEGMENT: 1,600 datagrams.
      const recv = tool(["udp_recv", IP_B, "5208", "1600", "3"], n.nsB);
      await recv.waitFor("ready");
      const send = tool(["udp_gso_send", IP_B, "5208", "200", "1200", "8"], n.nsA);
      assert.ok((await send.finish()).success, send.errLines.join("\n"));
      assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
      assert.equal(Number(recv.lines.at(-1)), 1600, "every datagram arrived, each checked by B");
      await a.stopForwarding();
      const sa = a.stats(), sb = b.stats();
      assert.ok(sa.receivedSuper >= afterTcp.gsoFrames + 1, "A handed over UDP super-frames too");
      assert.ok(sb.gsoFrames > afterTcp.gsoFrames, `USO super-frames segmented: ${sb.gsoFrames}`);
      assert.equal(sb.offloadDropped + sb.writeErrors, 0, JSON.stringify(sb));
      assert.equal(sb.writtenSuper, 0, "B got no super-frame");
    } finally {
      cleanup(n);
    }
  },
});
