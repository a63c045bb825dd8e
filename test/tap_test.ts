/**
 * Real TAP devices. These tests need root (CAP_NET_ADMIN), /dev/net/tun,
 * iproute2, python3 and network namespaces; without them they are ignored
 * with a loud banner (see tap_helpers.ts), never silently passed. Every
 * device and namespace is created here under a unique name and removed in
 * `finally`.
 */
import assert from "assert";
import { Batch, BulktapError, FramePool, TapDevice, tapNameProblem } from "../mod.ts";
import { library } from "../ffi/lib.ts";
import { tapMaxMtu } from "../dataplane/tap.ts";
import {
  linkCounts,
  must,
  Proc,
  sh,
  skipReason,
  slowPathCommands,
  slowPathTest,
  tapTest,
  tool,
  tryRun,
  uid,
  until,
} from "./tap_helpers.ts";

const ETHERTYPE = 0x88b5; // IEEE local experimental: the kernel ignores it

/** An Ethernet frame of `len` bytes whose payload encodes `i`. */
function frame(i: number, len: number): Uint8Array {
  const f = new Uint8Array(len);
  f.set([0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, ETHERTYPE >> 8, ETHERTYPE & 0xff]);
  for (let b = 14; b < len; b++) f[b] = (i * 7 + b) & 0xff;
  f[14] = i & 0xff;
  f[15] = i >> 8;
  return f;
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function assertPoolWhole(pool: FramePool): void {
  const s = pool.stats();
  assert.equal(s.free, s.frames, `pool whole: ${s.free} free of ${s.frames} (held ${s.held})`);
}

/** Send `frames` into the kernel side of TAP `name` (the kernel transmits them into the TAP). */
async function inject(name: string, frames: Uint8Array[]): Promise<void> {
  const inj = tool(["inject", name], undefined, true);
  const w = inj.child.stdin.getWriter();
  await w.write(new TextEncoder().encode(frames.map(hex).join("\n") + "\n"));
  await w.close();
  assert.ok((await inj.finish()).success, inj.errLines.join("\n"));
}

/**
 * Read queue `q` of `tap` with `frames()` until `want` frames of our
 * ethertype arrived or `ms` pass; returns their hex (kernel chatter skipped).
 */
async function readOurs(tap: TapDevice, q: number, want: number, ms = 3000): Promise<string[]> {
  const pool = tap.pool;
  const got: string[] = [];
  const ac = new AbortController();
  const stop = setTimeout(() => ac.abort(), ms);
  try {
    for await (const b of tap.frames(q, { batchSize: 16, signal: ac.signal, sleepMs: 50 })) {
      for (let i = 0; i < b.count; i++) {
        const bytes = pool.data(b.refs[i]);
        if (bytes[12] * 256 + bytes[13] === ETHERTYPE) got.push(hex(bytes));
      }
      if (got.length >= want) break;
    }
  } finally {
    clearTimeout(stop);
  }
  return got;
}

/** Whether io_uring is in use as asked; says so loudly when it is not available here. */
function uringAsAsked(tap: TapDevice, io: "uring" | "write"): boolean {
  const s = tap.stats();
  if (io === "uring" && s.ioUringWriters === 0) {
    console.error("!!! io_uring unavailable here (no liburing or refused): plain syscalls used");
    return false;
  }
  return true;
}

for (const io of ["uring", "write"] as const) {
  for (const vnetHdr of [0, 10, 12] as const) {
    Deno.test({
      name: `tap: transmit (io=${io}, vnetHdr=${vnetHdr}) reaches a packet socket byte for byte`,
      ...tapTest,
      async fn() {
        const name = `btt${uid()}`;
        const pool = new FramePool({ frames: 512 });
        let tap: TapDevice | undefined;
        let sniffer: Proc | undefined;
        try {
          tap = new TapDevice({ name, queues: 2, pool, vnetHdr, io, mtu: 1500, ioBatch: 16 });
          if (uringAsAsked(tap, io)) {
            const s0 = tap.stats();
            assert.equal(s0.ioUring, io === "uring");
            assert.equal(s0.ioUringWriters, io === "uring" ? 2 : 0);
            assert.equal(s0.ioUringReceivers, io === "uring" ? 2 : 0);
            assert.equal(s0.writeSubmits, 0, "nothing written, nothing submitted");
          }
          const N = 64, COPIES = 4;
          sniffer = tool(["sniff", name, ETHERTYPE.toString(16), String(N + COPIES), "15"]);
          await sniffer.waitFor("ready");
          const want: string[] = [];
          const refs = new Uint32Array(N);
          assert.equal(pool.alloc(refs), N);
          for (let i = 0; i < N; i++) {
            const f = frame(i, 60 + ((i * 37) % 1455));
            pool.write(refs[i], f);
            want.push(hex(f));
          }
          // Two bulks on two queues, then copied (non-pool) frames.
          assert.equal(tap.xmit(refs.subarray(0, 32), { flush: true, cpu: 0 }), 32);
          assert.equal(tap.xmit(refs.subarray(32), { flush: true, cpu: 1 }), 32);
          const copies = [frame(1000, 60), frame(1001, 1514), frame(1002, 99), frame(1003, 200)];
          const data = new Uint8Array(copies.reduce((a, c) => a + c.length, 0));
          let off = 0;
          for (const c of copies) {
            data.set(c, off);
            off += c.length;
            want.push(hex(c));
          }
          const lens = new Uint32Array(copies.map((c) => c.length));
          assert.equal(tap.xmitCopy(data, lens, { flush: true, cpu: 0 }), COPIES);
          assert.ok(await tap.drained(10_000), "writers drained their rings");
          const st = await sniffer.finish();
          assert.ok(st.success, sniffer.errLines.join("\n"));
          const s = tap.stats();
          assert.equal(s.written, N + COPIES);
          assert.equal(s.writeErrors, 0);
          assert.equal(s.stranded, 0);
          const seen = sniffer.lines.filter((l) => l !== "ready");
          assert.deepEqual(seen.sort(), [...want].sort());
          if (s.ioUring) assert.ok(s.writeSubmits < N + COPIES, "batched submits");
          assert.equal(tap.close(), 0);
          assertPoolWhole(pool);
        } finally {
          sniffer?.kill();
          if (tap && !tap.closed) tap.close();
          tryRun(`ip link del ${name}`);
          try {
            pool.close();
          } catch { /* reported by the assertions above */ }
        }
      },
    });
  }
}

for (const io of ["uring", "write"] as const) {
  for (const vnetHdr of [0, 10, 12] as const) {
    Deno.test({
      name:
        `tap: frames the kernel sends in arrive byte for byte, stamped (io=${io}, vnetHdr=${vnetHdr})`,
      ...tapTest,
      async fn() {
        const name = `btr${uid()}`;
        const pool = new FramePool({ frames: 512 });
        let tap: TapDevice | undefined;
        try {
          tap = new TapDevice({ name, queues: 2, pool, vnetHdr, io, mtu: 1500 });
          if (uringAsAsked(tap, io)) {
            assert.equal(tap.stats().ioUringReceivers, io === "uring" ? 2 : 0);
          }
          const want = Array.from({ length: 40 }, (_, i) => hex(frame(i, 60 + i * 30)));
          assert.equal(tap.stats().txPackets, 0); // touch: device works
          await inject(
            name,
            want.map((h) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16))),
          );
          const got: string[] = [];
          const readers = [0, 1].map(async (q) => {
            const ac = new AbortController();
            const stop = setTimeout(() => ac.abort(), 3000);
            for await (
              const b of tap!.frames(q, { batchSize: 16, signal: ac.signal, sleepMs: 50 })
            ) {
              let last = 0;
              for (let i = 0; i < b.count; i++) {
                const ref = b.refs[i];
                const bytes = pool.data(ref);
                // Stamped one by one as each read completed, in order.
                assert.ok(pool.timestamp(ref) >= last && pool.timestamp(ref) > 0, "stamped");
                last = pool.timestamp(ref);
                if (bytes[12] * 256 + bytes[13] !== ETHERTYPE) continue; // kernel chatter
                got.push(hex(bytes));
                assert.equal(pool.queueOf(ref), q);
                assert.equal(pool.vnetLength(ref), vnetHdr);
                const h = pool.bytes.subarray(pool.dataOffset(ref) - vnetHdr, pool.dataOffset(ref));
                assert.ok(h.every((x) => x === 0), "no offloads: all-zero header");
              }
              if (got.length >= want.length) ac.abort();
            }
            clearTimeout(stop);
          });
          await Promise.all(readers);
          assert.deepEqual(got.sort(), [...want].sort());
          const s = tap.stats();
          assert.ok(s.received >= want.length);
          assert.equal(s.receiveTruncated, 0);
          assert.equal(s.stranded, 0);
          tap.close();
          assertPoolWhole(pool);
        } finally {
          if (tap && !tap.closed) tap.close();
          tryRun(`ip link del ${name}`);
          try {
            pool.close();
          } catch { /* reported above */ }
        }
      },
    });
  }

  Deno.test({
    name:
      `tap: a packet too big for a frame (MTU raised after open) is counted as truncated, never delivered cut short (io=${io})`,
    ...tapTest,
    async fn() {
      const name = `btu${uid()}`;
      const pool = new FramePool({ frames: 64 }); // 2048-byte frames, 256 headroom
      let tap: TapDevice | undefined;
      try {
        tap = new TapDevice({ name, pool, io, mtu: 1500 });
        uringAsAsked(tap, io);
        must(`ip link set ${name} mtu 9000`); // behind the device's back
        const room = pool.frameSize - pool.headroom;
        const fits = [frame(1, 100), frame(2, room), frame(3, 60)];
        const big = [frame(4, 3000), frame(5, room + 1)];
        await inject(name, [fits[0], big[0], fits[1], big[1], fits[2]]);
        const got = await readOurs(tap, 0, fits.length);
        // The reader sees exactly the packets that fit, whole.
        assert.deepEqual(got, fits.map(hex));
        await until(() => tap!.stats().receiveTruncated === big.length, 2000, "truncated count");
        tap.close();
        assertPoolWhole(pool);
      } finally {
        if (tap && !tap.closed) tap.close();
        tryRun(`ip link del ${name}`);
        try {
          pool.close();
        } catch { /* reported above */ }
      }
    },
  });

  Deno.test({
    name:
      `tap: a reader whose pool is empty does not spin, and resumes when frames come back (io=${io})`,
    ...tapTest,
    async fn() {
      const name = `btn${uid()}`;
      const pool = new FramePool({ frames: 8 });
      const held = new Uint32Array(8);
      let tap: TapDevice | undefined;
      let reader: Promise<string[]> | undefined;
      try {
        tap = new TapDevice({ name, pool, io, mtu: 1500 });
        assert.equal(pool.alloc(held), 8, "the test holds every frame");
        const want = [frame(1, 60), frame(2, 61), frame(3, 62)];
        await inject(name, want); // readable, but nowhere to read into
        const t0 = tap.stats().receiveNoFrame;
        reader = readOurs(tap, 0, want.length, 10_000);
        await new Promise((r) => setTimeout(r, 300));
        const tries = tap.stats().receiveNoFrame - t0;
        // Counted, not timed: a spinning reader counts thousands of skipped
        // reads in 300 ms; a waiting one a few (a loaded machine, fewer).
        assert.ok(tries >= 1 && tries < 50, `${tries} reads skipped for want of a frame`);
        pool.free(held);
        const got = await reader;
        reader = undefined;
        assert.deepEqual(got, want.map(hex));
        tap.close();
        assertPoolWhole(pool);
      } finally {
        if (tap && !tap.closed) tap.close();
        await reader?.catch(() => {});
        tryRun(`ip link del ${name}`);
        try {
          pool.close();
        } catch { /* reported above */ }
      }
    },
  });
}

for (const io of ["uring", "write"] as const) {
  Deno.test({
    name:
      `tap: a full kernel send buffer (EAGAIN) makes the writer wait for writability; every frame arrives once (io=${io})`,
    ...slowPathTest,
    async fn() {
      const id = uid();
      const [name, v0, v1] = [`bts${id}`, `btsv${id}`, `btsw${id}`];
      const pool = new FramePool({ frames: 512 });
      let tap: TapDevice | undefined;
      let sniffer: Proc | undefined;
      try {
        // A send buffer of about one frame; the frames wait in a slow qdisc.
        tap = new TapDevice({ name, pool, io, sndbuf: 1000, ioBatch: 32 });
        uringAsAsked(tap, io);
        for (const c of slowPathCommands(name, v0, v1)) must(c);
        must(`sysctl -qw net.ipv6.conf.${v1}.disable_ipv6=1 net.ipv6.conf.${v0}.disable_ipv6=1`);
        const N = 200;
        sniffer = tool(["sniff", v1, ETHERTYPE.toString(16), String(N), "20"]);
        await sniffer.waitFor("ready");
        const want: string[] = [];
        const refs = new Uint32Array(50);
        for (let b = 0; b < N / refs.length; b++) {
          assert.equal(pool.alloc(refs), refs.length);
          refs.forEach((ref, i) => {
            const f = frame(b * refs.length + i, 60);
            pool.write(ref, f);
            want.push(hex(f));
          });
          assert.equal(tap.xmit(refs, { flush: true }), refs.length);
        }
        assert.ok(await tap.drained(20_000), "every frame written");
        const s = tap.stats();
        assert.equal(s.written, N);
        assert.equal(s.writeErrors, 0);
        assert.ok(s.writePollouts > 0, `the writer waited for writability: ${JSON.stringify(s)}`);
        assert.ok((await sniffer.finish()).success, sniffer.errLines.join("\n"));
        // Each exactly once. (io_uring: a frame may overtake another of its
        // batch under EAGAIN, see tx_uring_batch in c/tap.c; write(): in order.)
        const seen = sniffer.lines.filter((l) => l !== "ready");
        if (io === "write") assert.deepEqual(seen, want, "all, in order");
        else assert.deepEqual(seen.sort(), [...want].sort(), "all, once each");
        tap.close();
        assertPoolWhole(pool);
      } finally {
        sniffer?.kill();
        if (tap && !tap.closed) tap.close();
        tryRun(`ip link del ${name}`);
        tryRun(`ip link del ${v0}`);
        try {
          pool.close();
        } catch { /* reported above */ }
      }
    },
  });
}

Deno.test({
  name:
    "tap: forwarder between two namespaces: ping, 10,000 UDP datagrams, counts match ip -s link",
  ...tapTest,
  async fn() {
    const id = uid();
    const [a, b, nsA, nsB] = [`btfa${id}`, `btfb${id}`, `btnsa-${id}`, `btnsb-${id}`];
    const [ipA, ipB] = ["10.213.77.1", "10.213.77.2"];
    let fwd: Proc | undefined;
    let recv: Proc | undefined;
    try {
      must(`ip netns add ${nsA} && ip netns add ${nsB}`);
      for (const ns of [nsA, nsB]) {
        // No IPv6 chatter on the test links; a big receive buffer.
        must(
          `ip netns exec ${ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 ` +
            `net.ipv6.conf.default.disable_ipv6=1 net.core.rmem_max=16777216`,
        );
        must(`ip -n ${ns} link set lo up`);
      }
      must(
        `ip tuntap add dev ${a} mode tap multi_queue && ip tuntap add dev ${b} mode tap multi_queue`,
      );
      fwd = new Proc("deno", [
        "run",
        "-A",
        new URL("../mod.ts", import.meta.url).pathname,
        "forward",
        a,
        b,
        "--queues",
        "2",
        "--bulk",
        "32",
        "--json",
      ]);
      await fwd.waitFor("ready", 60_000);
      // Move each TAP into its namespace (its fds stay attached) and address it.
      must(`ip link set ${a} netns ${nsA} && ip link set ${b} netns ${nsB}`);
      must(`ip -n ${nsA} link set ${a} up && ip -n ${nsA} addr add ${ipA}/24 dev ${a}`);
      must(`ip -n ${nsB} link set ${b} up && ip -n ${nsB} addr add ${ipB}/24 dev ${b}`);

      must(`ip netns exec ${nsA} ping -c 5 -i 0.2 -W 2 ${ipB}`);

      const N = 10_000;
      recv = tool(["udp_recv", ipB, "9999", String(N), "5"], nsB);
      await recv.waitFor("ready");
      const send = tool(["udp_send", ipB, "9999", String(N)], nsA);
      assert.ok((await send.finish()).success, send.errLines.join("\n"));
      assert.ok((await recv.finish()).success, recv.errLines.join("\n"));
      assert.equal(Number(recv.lines.at(-1)), N, "every datagram arrived");

      fwd.child.kill("SIGINT");
      const st = await fwd.finish();
      assert.equal(st.code, 0, fwd.errLines.join("\n"));
      const out = JSON.parse(fwd.lines.at(-1)!);
      const ka = linkCounts(a, nsA), kb = linkCounts(b, nsB);
      const fa = out.devices[a], fb = out.devices[b];
      // What the forwarder read from a TAP is what the kernel transmitted
      // into it, and what it wrote is what the kernel received.
      assert.deepEqual({ rx: fa.rx, tx: fa.tx }, { rx: ka.tx, tx: ka.rx }, `${a} vs kernel`);
      assert.deepEqual({ rx: fb.rx, tx: fb.tx }, { rx: kb.tx, tx: kb.rx }, `${b} vs kernel`);
      assert.ok(fa.forwarded >= N && fb.tx >= N, `A->B carried the stream: ${JSON.stringify(out)}`);
      // Frames forwarded while a link was down (moving netns) fail with
      // EIO and count as dropped; they are in neither count above.
    } finally {
      fwd?.kill();
      recv?.kill();
      await fwd?.finish().catch(() => {});
      for (const [dev, ns] of [[a, nsA], [b, nsB]]) {
        tryRun(`ip -n ${ns} link del ${dev}`);
        tryRun(`ip link del ${dev}`);
        tryRun(`ip netns del ${ns}`);
      }
    }
  },
});

Deno.test({
  name: "tap: in-process forwarder in single mode with vnet headers passes ping between namespaces",
  ...tapTest,
  async fn() {
    const id = uid();
    const [a, b, nsA, nsB] = [`btsa${id}`, `btsb${id}`, `btnsc-${id}`, `btnsd-${id}`];
    const pool = new FramePool({ frames: 4096 });
    const devs: TapDevice[] = [];
    try {
      must(`ip netns add ${nsA} && ip netns add ${nsB}`);
      // With 12-byte vnet headers on both sides: read with, written with.
      devs.push(
        new TapDevice({ name: a, pool, queues: 1, vnetHdr: 12 }),
        new TapDevice({ name: b, pool, vnetHdr: 12 }),
      );
      devs[0].forwardTo(devs[1], { mode: "single", bulk: 8 });
      devs[1].forwardTo(devs[0], { mode: "single", bulk: 8 });
      assert.throws(() => devs[0].rx(new Batch(4), 0), (e: BulktapError) => e.code === "EBUSY");
      must(`ip link set ${a} netns ${nsA} && ip link set ${b} netns ${nsB}`);
      must(`ip -n ${nsA} link set ${a} up && ip -n ${nsA} addr add 10.213.78.1/24 dev ${a}`);
      must(`ip -n ${nsB} link set ${b} up && ip -n ${nsB} addr add 10.213.78.2/24 dev ${b}`);
      // ping blocks: run it as a child so the event loop stays free.
      const ping = new Proc("ip", [
        "netns",
        "exec",
        nsA,
        "ping",
        "-c",
        "3",
        "-i",
        "0.2",
        "-W",
        "2",
        "10.213.78.2",
      ]);
      assert.ok((await ping.finish()).success, ping.lines.join("\n"));
      assert.ok(devs[0].stats().forwarded >= 3);
      assert.equal(await devs[0].stopForwarding(), true);
      await devs[1].stopForwarding();
      for (const d of devs) d.close();
      assertPoolWhole(pool);
    } finally {
      for (const d of devs) if (!d.closed) d.close();
      for (const [dev, ns] of [[a, nsA], [b, nsB]]) {
        tryRun(`ip -n ${ns} link del ${dev}`);
        tryRun(`ip link del ${dev}`);
        tryRun(`ip netns del ${ns}`);
      }
      try {
        pool.close();
      } catch { /* reported above */ }
    }
  },
});

function assertOpenFails(
  pool: FramePool,
  opts: Parameters<typeof newTap>[1],
  code: string,
  msg?: string,
): BulktapError {
  let err: unknown;
  try {
    newTap(pool, opts).close();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof BulktapError, `expected ${code}, got ${err}`);
  assert.equal(err.code, code, err.message);
  if (msg) assert.ok(err.message.includes(msg), err.message);
  assertPoolWhole(pool);
  return err;
}

function newTap(pool: FramePool, o: Omit<ConstructorParameters<typeof TapDevice>[0], "pool">) {
  return new TapDevice({ ...o, pool });
}

Deno.test({
  name: "tap: invalid names, queue counts and header sizes fail with EINVAL",
  ...tapTest,
  fn() {
    using pool = new FramePool({ frames: 64 });
    assertOpenFails(pool, { name: "x".repeat(16) }, "EINVAL", "15");
    assertOpenFails(pool, { name: "" }, "EINVAL");
    assertOpenFails(pool, { name: "a/b" }, "EINVAL");
    assertOpenFails(pool, { name: "a b" }, "EINVAL");
    assertOpenFails(pool, { name: `btq${uid()}`, queues: 0 }, "EINVAL");
    assertOpenFails(pool, { name: `btq${uid()}`, queues: 65 }, "EINVAL");
    assertOpenFails(pool, { name: `btq${uid()}`, vnetHdr: 11 as 10 }, "EINVAL");
    assertOpenFails(pool, { name: `btq${uid()}`, mtu: 9000 }, "EINVAL"); // 2 KiB frames
  },
});

Deno.test({
  name: "tap: a device that exists with other flags fails with EEXIST, a missing one with ENOENT",
  ...tapTest,
  fn() {
    using pool = new FramePool({ frames: 64 });
    const id = uid();
    const [single, tun] = [`bte1${id}`, `bte2${id}`];
    try {
      must(`ip tuntap add dev ${single} mode tap`); // not multi_queue
      must(`ip tuntap add dev ${tun} mode tun multi_queue`);
      assertOpenFails(pool, { name: single }, "EEXIST", "multi_queue");
      assertOpenFails(pool, { name: tun }, "EEXIST");
      assertOpenFails(pool, { name: `bten${id}`, create: false }, "ENOENT", "ip tuntap add");
    } finally {
      for (const d of [single, tun]) tryRun(`ip link del ${d}`);
    }
  },
});

Deno.test({
  name:
    "tap: without CAP_NET_ADMIN, creating fails with EPERM naming the fix; an owned persistent TAP attaches; changing its MTU or bringing it up names the missing command",
  ...tapTest,
  async fn() {
    const id = uid();
    const [fresh, owned, down] = [`btp1${id}`, `btp2${id}`, `btp3${id}`];
    const script = (name: string, create: boolean, mtu?: number) =>
      `import { FramePool, TapDevice } from ${
        JSON.stringify(new URL("../mod.ts", import.meta.url).href)
      };
       const pool = new FramePool({ frames: 64 });
       try {
         const t = new TapDevice({ name: ${
        JSON.stringify(name)
      }, pool, queues: 2, create: ${create}, mtu: ${mtu} });
         const r = new Uint32Array(1); pool.alloc(r); pool.write(r[0], new Uint8Array(60));
         t.xmit(r, { flush: true });
         await t.drained();
         console.log("OK", t.stats().written); t.close();
       } catch (e) { console.log(e.code, e.message); }
       const s = pool.stats(); console.log("POOL", s.free === s.frames); pool.close();`;
    const noNetAdmin = (src: string) =>
      new Proc("setpriv", [
        "--inh-caps=-net_admin",
        "--ambient-caps=-net_admin",
        "--bounding-set=-net_admin",
        "--",
        "deno",
        "eval",
        src,
      ]);
    try {
      const p1 = noNetAdmin(script(fresh, true));
      assert.ok((await p1.finish()).success, p1.errLines.join("\n"));
      const out1 = p1.lines.join("\n");
      assert.ok(out1.startsWith("EPERM"), out1);
      assert.ok(out1.includes(`ip tuntap add dev ${fresh} mode tap multi_queue user`), out1);
      assert.ok(out1.includes("POOL true"), out1);

      // Created once by an administrator, owned by uid 0 and up: no
      // CAP_NET_ADMIN needed to attach and transmit.
      must(`ip tuntap add dev ${owned} mode tap multi_queue user 0 && ip link set ${owned} up`);
      const p2 = noNetAdmin(script(owned, false));
      assert.ok((await p2.finish()).success, p2.errLines.join("\n"));
      const out2 = p2.lines.join("\n");
      assert.ok(out2.startsWith("OK 1"), out2);
      assert.ok(out2.includes("POOL true"), out2);

      // Attached fine, but changing the link needs CAP_NET_ADMIN: the advice
      // is the one command that is missing, not "create a device you own".
      const p3 = noNetAdmin(script(owned, false, 1400));
      assert.ok((await p3.finish()).success, p3.errLines.join("\n"));
      const out3 = p3.lines.join("\n");
      assert.ok(out3.startsWith("EPERM"), out3);
      assert.ok(out3.includes(`ip link set ${owned} mtu 1400`), out3);
      assert.ok(out3.includes("leave mtu unset"), out3);
      assert.ok(!out3.includes("ip tuntap add"), out3);
      assert.ok(out3.includes("POOL true"), out3);

      must(`ip tuntap add dev ${down} mode tap multi_queue user 0`); // owned, but down
      const p4 = noNetAdmin(script(down, false));
      assert.ok((await p4.finish()).success, p4.errLines.join("\n"));
      const out4 = p4.lines.join("\n");
      assert.ok(out4.startsWith("EPERM"), out4);
      assert.ok(out4.includes(`is down`) && out4.includes(`ip link set ${down} up`), out4);
      assert.ok(!out4.includes("ip tuntap add"), out4);
      assert.ok(out4.includes("POOL true"), out4);
    } finally {
      tryRun(`ip link del ${fresh}`);
      tryRun(`ip link del ${owned}`);
      tryRun(`ip link del ${down}`);
    }
  },
});

Deno.test({
  name:
    "tap: a device deleted while in use: reader ends with ENODEV, xmit refuses with ENODEV, stats throw, frames go home",
  ...tapTest,
  async fn() {
    const name = `btd${uid()}`;
    const pool = new FramePool({ frames: 256 });
    let tap: TapDevice | undefined;
    let stop = false;
    let sender: Promise<void> | undefined;
    let reader: Promise<void> | undefined;
    try {
      tap = new TapDevice({ name, queues: 2, pool });
      reader = (async () => {
        for await (const _ of tap!.frames(0, { sleepMs: 50 })) { /* chatter */ }
      })();
      const refs = new Uint32Array(32);
      let refused: unknown;
      sender = (async () => {
        while (!stop) {
          const n = pool.alloc(refs);
          for (let i = 0; i < n; i++) pool.write(refs[i], frame(i, 60));
          try {
            tap!.xmit(refs, { count: n, flush: true, cpu: 1 });
          } catch (e) {
            refused = e; // the frames went back to the pool
            return;
          }
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      await until(() => tap!.stats().written > 100, 5000, "frames to flow");
      must(`ip link del ${name}`);
      await assert.rejects(reader!, (e: BulktapError) => e.code === "ENODEV");
      await until(() => tap!.error !== undefined, 5000, "the writers to notice");
      // The producer is told too: xmit fails with ENODEV, taking the frames home.
      await until(() => refused !== undefined, 5000, "xmit to refuse");
      stop = true;
      await sender;
      reader = undefined;
      assert.ok(refused instanceof BulktapError, String(refused));
      assert.equal(refused.code, "ENODEV", refused.message);
      const dropped0 = tap.statsUnchecked().txDropped;
      const more = new Uint32Array(4);
      assert.equal(pool.alloc(more), 4);
      assert.throws(() => tap!.xmit(more), (e: BulktapError) => e.code === "ENODEV");
      assert.equal(tap.statsUnchecked().txDropped, dropped0 + 4, "refused frames count as dropped");
      assertPoolWhole(pool); // nothing held: the refused frames are home already
      assert.throws(() => tap!.stats(), (e: BulktapError) => e.code === "ENODEV");
      assert.throws(() => tap!.rx(new Batch(4), 1), (e: BulktapError) => e.code === "ENODEV");
      assert.ok(await tap.drained(5000));
      tap.close();
      assertPoolWhole(pool);
    } finally {
      stop = true;
      await sender?.catch(() => {});
      await reader?.catch(() => {});
      if (tap && !tap.closed) tap.close();
      tryRun(`ip link del ${name}`);
      try {
        pool.close();
      } catch { /* reported above */ }
    }
  },
});

Deno.test({
  name:
    "tap: an unprivileged user (nobody) attaches to the persistent TAP it owns and transmits; one owned by root is refused with EPERM",
  ...tapTest,
  async fn() {
    const id = uid();
    const [mine, theirs] = [`btu1${id}`, `btu2${id}`];
    // A copy of the library's sources the user can read (the checkout may sit
    // where nobody can), its own Deno and library caches, no capabilities.
    const dir = Deno.makeTempDirSync({ prefix: "bulktap-nobody-" });
    const root = new URL("..", import.meta.url).pathname;
    const script = (name: string) =>
      `import { FramePool } from "./dataplane/pool.ts";
       import { TapDevice } from "./dataplane/tap.ts";
       const pool = new FramePool({ frames: 64 });
       try {
         const t = new TapDevice({ name: ${JSON.stringify(name)}, pool, queues: 2, create: false });
         const r = new Uint32Array(4); pool.alloc(r);
         for (const f of r) pool.write(f, new Uint8Array(60).fill(7));
         t.xmit(r, { flush: true });
         await t.drained();
         console.log("OK", t.stats().written); t.close();
       } catch (e) { console.log(e.code, e.message); }
       const s = pool.stats(); console.log("POOL", s.free === s.frames); pool.close();`;
    const asNobody = (name: string) => {
      Deno.writeTextFileSync(`${dir}/main.ts`, script(name));
      must(`chown -R nobody:nogroup ${dir}`);
      return new Proc("setpriv", [
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        "env",
        "-i",
        `HOME=${dir}`,
        `DENO_DIR=${dir}/deno`,
        `BULKTAP_CACHE_DIR=${dir}/cache`,
        `PATH=${Deno.env.get("PATH")}`,
        Deno.execPath(),
        "run",
        "--allow-ffi",
        `--allow-read=${dir}`,
        `--allow-write=${dir}/cache`,
        "--allow-run",
        "--allow-env",
        `${dir}/main.ts`,
      ]);
    };
    try {
      for (const sub of ["c", "ffi", "dataplane"]) must(`cp -r ${root}${sub} ${dir}/`);
      must(`ip tuntap add dev ${mine} mode tap multi_queue user nobody && ip link set ${mine} up`);
      must(`ip tuntap add dev ${theirs} mode tap multi_queue user 0 && ip link set ${theirs} up`);
      const rx0 = kernelRxPackets(mine);

      const p1 = asNobody(mine);
      assert.ok((await p1.finish()).success, p1.errLines.join("\n"));
      const out1 = p1.lines.join("\n");
      assert.ok(out1.startsWith("OK 4"), `${out1}\n${p1.errLines.join("\n")}`);
      assert.ok(out1.includes("POOL true"), out1);
      assert.ok(kernelRxPackets(mine) - rx0 >= 4, "the kernel received the 4 frames nobody wrote");

      const p2 = asNobody(theirs);
      assert.ok((await p2.finish()).success, p2.errLines.join("\n"));
      const out2 = p2.lines.join("\n");
      assert.ok(out2.startsWith("EPERM"), out2);
      assert.ok(out2.includes(`ip tuntap add dev ${theirs} mode tap multi_queue user`), out2);
      assert.ok(out2.includes("POOL true"), out2);
    } finally {
      tryRun(`ip link del ${mine}`);
      tryRun(`ip link del ${theirs}`);
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

function kernelRxPackets(name: string): number {
  const j = JSON.parse(must(`ip -s -j link show ${name}`));
  return j[0].stats64.rx.packets;
}

Deno.test({
  name: "tap: close wakes a waiting reader and stops a forwarder; nothing hangs",
  ...tapTest,
  async fn() {
    const id = uid();
    const pool = new FramePool({ frames: 256 });
    let a: TapDevice | undefined, b: TapDevice | undefined;
    try {
      a = new TapDevice({ name: `btc1${id}`, pool, queues: 2 });
      b = new TapDevice({ name: `btc2${id}`, pool });
      const [ta, tb] = [a, b];
      // The kernel may send into the TAP (IPv6 chatter): read that and wait
      // again, until close ends the wait.
      const waiting = (async () => {
        const batch = new Batch(64);
        try {
          for (;;) if (await ta.wait(1, 30_000)) ta.rx(batch, 1);
        } finally {
          batch.release();
        }
      })();
      const ended = (async () => {
        for await (const _ of ta.frames(0, { sleepMs: 30_000 })) { /* nothing */ }
      })();
      tb.forwardTo(ta);
      await new Promise((r) => setTimeout(r, 100));
      const t0 = performance.now();
      ta.close();
      tb.close();
      await assert.rejects(
        waiting,
        (e: BulktapError) => e.code === "ENXIO" || e.code === "ECLOSED",
      );
      await ended;
      assert.ok(performance.now() - t0 < 5000, "woken, not timed out");
      assertPoolWhole(pool);
    } finally {
      if (a && !a.closed) a.close();
      if (b && !b.closed) b.close();
      tryRun(`ip link del btc1${id}`);
      tryRun(`ip link del btc2${id}`);
      pool.close();
    }
  },
});

Deno.test({
  name: "tap: a forwarder whose target is deleted counts its frames as dropped and returns them",
  ...tapTest,
  async fn() {
    const id = uid();
    const [a, b] = [`btg1${id}`, `btg2${id}`];
    const pool = new FramePool({ frames: 256 });
    const devs: TapDevice[] = [];
    try {
      devs.push(new TapDevice({ name: a, pool }), new TapDevice({ name: b, pool }));
      devs[0].forwardTo(devs[1], { bulk: 8 });
      must(`ip link del ${b}`);
      const N = 20;
      await inject(a, Array.from({ length: N }, (_, i) => frame(i, 60)));
      // Until the target's writer notices, frames may still be queued and
      // fail there (writeErrors); after, xmit refuses them (forwardDropped).
      await until(
        () => {
          const s = devs[0].stats();
          return s.forwarded + s.forwardDropped >= N;
        },
        5000,
        "the forwarder to handle every frame",
      );
      await devs[0].stopForwarding();
      assert.ok(await devs[1].drained(5000));
      assertPoolWhole(pool);
      for (const d of devs) d.close();
      assertPoolWhole(pool);
    } finally {
      for (const d of devs) if (!d.closed) d.close();
      tryRun(`ip link del ${a}`);
      tryRun(`ip link del ${b}`);
      pool.close();
    }
  },
});

Deno.test({
  name:
    "tap: attaching refuses an existing device whose vnet header flag, size or PI flag differ (EEXIST names it)",
  ...tapTest,
  async fn() {
    using pool = new FramePool({ frames: 64 });
    const id = uid();
    const [withHdr, without, pi, inUse] = [`btv1${id}`, `btv2${id}`, `btv3${id}`, `btv4${id}`];
    let first: TapDevice | undefined;
    let sniffer: Proc | undefined;
    try {
      // Persistent devices nobody has attached yet.
      must(`ip tuntap add dev ${withHdr} mode tap multi_queue vnet_hdr`);
      must(`ip tuntap add dev ${without} mode tap multi_queue`);
      must(`ip tuntap add dev ${pi} mode tap multi_queue pi`);
      assertOpenFails(pool, { name: withHdr, create: false }, "EEXIST", "with IFF_VNET_HDR");
      // A new device's header is 10 bytes: 12 would change it.
      assertOpenFails(pool, { name: withHdr, vnetHdr: 12, create: false }, "EEXIST", "10-byte");
      assertOpenFails(
        pool,
        { name: without, vnetHdr: 12, create: false },
        "EEXIST",
        "without IFF_VNET_HDR",
      );
      assertOpenFails(pool, { name: pi, create: false }, "EEXIST", "IFF_NO_PI");
      const ok = newTap(pool, { name: withHdr, vnetHdr: 10, create: false });
      assert.equal(ok.stats().vnetLen, 10);
      ok.close();

      // In use with a 12-byte header: a second opener must not get frames
      // framed differently from what it asked for, nor change the first's.
      first = newTap(pool, { name: inUse, vnetHdr: 12 });
      assertOpenFails(pool, { name: inUse, create: false }, "EEXIST", "IFF_VNET_HDR");
      assertOpenFails(pool, { name: inUse, vnetHdr: 10, create: false }, "EEXIST", "12-byte");
      // The first device still frames with 12 bytes: what it writes arrives intact.
      sniffer = tool(["sniff", inUse, ETHERTYPE.toString(16), "1", "10"]);
      await sniffer.waitFor("ready");
      const f = frame(7, 99);
      const r = new Uint32Array(1);
      pool.alloc(r);
      pool.write(r[0], f);
      first.xmit(r, { flush: true });
      assert.ok((await sniffer.finish()).success, sniffer.errLines.join("\n"));
      assert.deepEqual(sniffer.lines.filter((l) => l !== "ready"), [hex(f)]);
      first.close();
      assertPoolWhole(pool);
    } finally {
      sniffer?.kill();
      if (first && !first.closed) first.close();
      for (const d of [withHdr, without, pi, inUse]) tryRun(`ip link del ${d}`);
    }
  },
});

Deno.test("tap: bt_tap_open itself refuses bad names, queue counts, header sizes, flags and batches with -EINVAL", () => {
  // The TypeScript layer rejects these before the FFI call; these calls go
  // straight to C, so its own checks are what is tested.
  using pool = new FramePool({ frames: 16 });
  const lib = library();
  const EINVAL = -22;
  const c = (s: string) => new TextEncoder().encode(s + "\0");
  const good = `btk${uid()}`;
  const badNames: [string, Uint8Array][] = [
    ["16 bytes", c("x".repeat(16))],
    ["empty", c("")],
    ["slash", c("a/b")],
    ["colon", c("a:b")],
    ["space", c("a b")],
    ["tab", c("a\tb")],
    ["dot", c(".")],
    ["dotdot", c("..")],
    ["no NUL in 20 bytes", new TextEncoder().encode("y".repeat(20))],
  ];
  try {
    for (const [what, name] of badNames) {
      assert.equal(lib.bt_tap_name_check(name), EINVAL, `name_check: ${what}`);
      assert.equal(lib.bt_tap_open(pool.handle, name, 1, 64, 0, 0, 1, 16), EINVAL, `open: ${what}`);
    }
    assert.equal(lib.bt_tap_name_check(c(good)), 0);
    // pool, name, queues, ring, mtu, vnet, flags, batch
    const bad: [string, number, number, number, number, number][] = [
      ["0 queues", 0, 0, 0, 1, 16],
      ["65 queues", 65, 0, 0, 1, 16],
      ["vnet 11", 1, 0, 11, 1, 16],
      ["vnet 16", 1, 0, 16, 1, 16],
      ["unknown flag", 1, 0, 0, 4, 16],
      ["batch 0", 1, 0, 0, 1, 0],
      ["batch 257", 1, 0, 0, 1, 257],
      ["mtu 67", 1, 67, 0, 1, 16],
      ["mtu 65536", 1, 65536, 0, 1, 16],
      ["mtu 9000 with 2 KiB frames", 1, 9000, 0, 1, 16],
    ];
    for (const [what, queues, mtu, vnet, flags, batch] of bad) {
      assert.equal(
        lib.bt_tap_open(pool.handle, c(good), queues, 64, mtu, vnet, flags, batch),
        EINVAL,
        what,
      );
    }
    assertPoolWhole(pool);
  } finally {
    if (!skipReason) tryRun(`ip link del ${good}`); // only if a check failed
  }
});

/**
 * The kernel's rule for interface names (dev_valid_name), as a reference:
 * on the bytes before the first NUL, 1..15 of them, not "." or "..", none
 * of '/', ':' or a byte its isspace() is true for (\t \n \v \f \r, ' ', 0xA0).
 */
function kernelAcceptsName(bytes: Uint8Array): boolean {
  const end = bytes.indexOf(0);
  const b = end < 0 ? bytes : bytes.subarray(0, end);
  if (b.length === 0 || b.length >= 16) return false;
  const s = String.fromCharCode(...b);
  if (s === "." || s === "..") return false;
  const space = (x: number) => (x >= 0x09 && x <= 0x0d) || x === 0x20 || x === 0xa0;
  return b.every((x) => x !== 0x2f && x !== 0x3a && !space(x));
}

/**
 * For each byte value, a character whose UTF-8 encoding contains it (the
 * ASCII character itself below 0x80; else the first code point with it and
 * no 0xA0 beside it), or undefined for bytes UTF-8 never has (0xC0, 0xC1,
 * 0xF5..0xFF): no string can hand those to the kernel.
 */
function charsWithByte(): (string | undefined)[] {
  const out: (string | undefined)[] = Array.from(
    { length: 256 },
    (_, b) => b < 0x80 ? String.fromCharCode(b) : undefined,
  );
  const enc = new TextEncoder();
  for (let cp = 0x80; cp <= 0x10ffff; cp = cp < 0x800 ? cp + 1 : cp + 0x3f) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    const e = enc.encode(ch);
    for (const b of e) {
      if (out[b] === undefined && (b === 0xa0 || !e.includes(0xa0))) out[b] = ch;
    }
  }
  return out;
}

Deno.test("tap: tapNameProblem refuses exactly the names whose UTF-8 bytes the kernel refuses, naming the byte and its position", () => {
  const enc = new TextEncoder();
  const chars = charsWithByte();
  const hex = (b: number) => `0x${b.toString(16).padStart(2, "0")}`;
  let tried = 0;
  for (let b = 0; b < 256; b++) {
    const ch = chars[b];
    if (ch === undefined) {
      assert.ok(b === 0xc0 || b === 0xc1 || b >= 0xf5, `no character has byte ${hex(b)}`);
      continue;
    }
    for (const [name, pre] of [[ch, 0], [`a${ch}b`, 1]] as const) {
      const bytes = enc.encode(name);
      const at = pre + enc.encode(ch).indexOf(b);
      // A NUL is refused too: the kernel would see a shorter name than asked.
      const want = !bytes.includes(0) && kernelAcceptsName(bytes);
      const why = tapNameProblem(name);
      assert.equal(why === undefined, want, `${JSON.stringify(name)} (byte ${hex(b)}): ${why}`);
      if (why !== undefined && name !== ".") {
        assert.ok(
          why.includes(hex(b)) && why.includes(`at byte ${at}`),
          `${JSON.stringify(name)}: ${why}`,
        );
      }
      tried++;
    }
  }
  assert.equal(tried, 2 * (256 - 13));
  // 0xA0 is also the tail of common letters: "à" is c3 a0.
  assert.match(tapNameProblem("tapà") ?? "", /0xa0 .*at byte 4/);
});

Deno.test("tap: bt_tap_name_check refuses exactly the bytes the kernel refuses, alone and inside a name", () => {
  const lib = library();
  for (let b = 0; b < 256; b++) {
    for (const name of [Uint8Array.of(b, 0), Uint8Array.of(0x61, b, 0x62, 0)]) {
      const want = kernelAcceptsName(name) ? 0 : -22;
      assert.equal(lib.bt_tap_name_check(name), want, `bytes ${Array.from(name).join(",")}`);
    }
  }
});

Deno.test({
  name:
    "tap: opening an existing interface that is not a TAP says what it is and never suggests deleting it",
  ...tapTest,
  fn() {
    const id = uid();
    const [veth, peer] = [`btv${id}`, `btp${id}`];
    using pool = new FramePool({ frames: 64 });
    try {
      must(`ip link add ${veth} type veth peer name ${peer}`);
      for (
        const [name, kind] of [[veth, 'an interface with driver "veth"'], [
          peer,
          'an interface with driver "veth"',
        ], [
          "lo",
          "the loopback interface",
        ]]
      ) {
        for (const create of [true, false]) {
          const m = assertOpenFails(pool, { name, create }, "EEXIST", `it is ${kind}`).message;
          assert.ok(m.includes("is not a TAP device"), m);
          assert.ok(!/\bdel(ete)?\b|recreate/i.test(m), `suggests deleting: ${m}`);
        }
      }
      // Still there, untouched.
      must(`ip link show ${veth} && ip link show ${peer}`);
    } finally {
      tryRun(`ip link del ${veth}`);
    }
  },
});

Deno.test({
  name:
    "tap: an mtu above what the pool's frames hold is refused up front, naming the largest that fits",
  ...tapTest,
  fn() {
    using pool = new FramePool({ frames: 16 }); // 2048-byte frames, 256 of headroom
    const name = `btm${uid()}`;
    try {
      assert.equal(tapMaxMtu(pool), 1774);
      assertOpenFails(pool, { name, mtu: 1775 }, "EINVAL", "mtu=1775");
      const m = assertOpenFails(pool, { name, mtu: 9000 }, "EINVAL").message;
      assert.ok(m.includes("mtu=9000") && m.includes("up to 1774"), m);
      assert.ok(m.includes("frameSize >= 9280"), `says how to get bigger frames: ${m}`);
      assert.ok(!m.includes("queues"), `one cause, not a list: ${m}`);
      assert.ok(sh(`ip link show ${name}`).code !== 0, "no device was created");
    } finally {
      tryRun(`ip link del ${name}`);
    }
  },
});

for (const [sig, json] of [["SIGTERM", true], ["SIGTERM", false]] as const) {
  Deno.test({
    name:
      `tap: forward command: ${sig} right after "ready" exits 0 and prints rx/tx/dropped per device${
        json ? " (--json)" : " (plain text)"
      }`,
    ...tapTest,
    async fn() {
      const id = uid();
      const [a, b] = [`btw1${id}`, `btw2${id}`];
      let fwd: Proc | undefined;
      try {
        fwd = new Proc("deno", [
          "run",
          "-A",
          new URL("../mod.ts", import.meta.url).pathname,
          "forward",
          a,
          b,
          ...(json ? ["--json"] : []),
        ]);
        await fwd.waitFor("ready", 60_000);
        fwd.child.kill(sig); // at once: the listeners are in place before "ready"
        const st = await fwd.finish();
        assert.equal(
          st.code,
          0,
          `exit ${st.code} (signal ${st.signal}): ${fwd.errLines.join("\n")}`,
        );
        if (json) {
          const out = JSON.parse(fwd.lines.at(-1)!);
          assert.equal(out.stoppedBy, sig);
          for (const d of [a, b]) {
            for (const k of ["rx", "tx", "dropped", "forwarded"]) {
              assert.ok(Number.isInteger(out.devices[d][k]), `${d}.${k} in ${JSON.stringify(out)}`);
            }
          }
        } else {
          assert.equal(fwd.lines.length, 2, fwd.lines.join("\n"));
          for (const [i, d] of [a, b].entries()) {
            assert.match(fwd.lines[i], new RegExp(`^${d}: rx \\d+ tx \\d+ dropped \\d+$`));
          }
        }
      } finally {
        fwd?.kill();
        await fwd?.finish().catch(() => {});
        tryRun(`ip link del ${a}`);
        tryRun(`ip link del ${b}`);
      }
    },
  });
}

Deno.test({
  name:
    "tap: forward --vnet-hdr-size 10 attaches to a device made with vnet_hdr; the default 12 is refused naming the size",
  ...tapTest,
  async fn() {
    const id = uid();
    const [a, b] = [`btv1${id}`, `btv2${id}`];
    const mod = new URL("../mod.ts", import.meta.url).pathname;
    try {
      must(`ip tuntap add dev ${a} mode tap multi_queue vnet_hdr`); // a 10-byte header
      const wrong = new Proc("deno", ["run", "-A", mod, "forward", a, b, "--vnet-hdr"]);
      const ws = await wrong.finish();
      assert.notEqual(ws.code, 0, "a 12-byte header on a 10-byte device is refused");
      assert.ok(wrong.errLines.join("\n").includes("10-byte"), wrong.errLines.join("\n"));

      const fwd = new Proc("deno", [
        "run",
        "-A",
        mod,
        "forward",
        a,
        b,
        "--vnet-hdr-size",
        "10",
        "--json",
      ]);
      await fwd.waitFor("ready");
      fwd.child.kill("SIGINT");
      const st = await fwd.finish();
      assert.equal(st.code, 0, fwd.errLines.join("\n"));
      const out = JSON.parse(fwd.lines.at(-1)!);
      assert.ok(out.devices[a] && out.devices[b], JSON.stringify(out));
    } finally {
      tryRun(`ip link del ${a}`);
      tryRun(`ip link del ${b}`);
    }
  },
});

Deno.test("tap: forward command: unknown flags and bad values exit 2 naming them", async () => {
  const mod = new URL("../mod.ts", import.meta.url).pathname;
  const cases: [string[], string][] = [
    [["btx1", "btx2", "--bogus"], "--bogus"],
    [["btx1", "btx2", "--mode", "fast"], "--mode=fast"],
    [["btx1", "btx2", "--queues", "65"], "--queues=65"],
    [["btx1", "btx2", "--bulk", "0"], "--bulk=0"],
    [["btx1", "btx2", "--stats-interval=-1"], "--stats-interval=-1"],
    [["btx1", "btx2", "--vnet-hdr-size", "11"], "--vnet-hdr-size=11"],
    [["btx1"], "two device names"],
    [["a/b", "btx2"], "a/b"],
  ];
  for (const [args, names] of cases) {
    const p = new Proc("deno", ["run", "-A", mod, "forward", ...args]);
    const st = await p.finish();
    assert.equal(st.code, 2, `${args.join(" ")}: ${p.errLines.join("\n")}`);
    assert.ok(p.errLines.join("\n").includes(names), `${args.join(" ")}: ${p.errLines[0]}`);
  }
});

Deno.test("tap: forward command: --mtu above the kernel's largest for a TAP exits 2 naming it", async () => {
  const mod = new URL("../mod.ts", import.meta.url).pathname;
  const p = new Proc("deno", ["run", "-A", mod, "forward", "btx1", "btx2", "--mtu", "65535"]);
  const st = await p.finish();
  const err = p.errLines.join("\n");
  assert.equal(st.code, 2, err);
  const first = p.errLines[0];
  assert.ok(first.includes("--mtu=65535") && first.includes("65521"), first);
});

Deno.test({
  name:
    "tap: forward command on an existing interface that is not a TAP says what it is and does not suggest deleting it",
  ...tapTest,
  async fn() {
    const id = uid();
    const [veth, peer, free] = [`btv${id}`, `btp${id}`, `btf${id}`];
    const mod = new URL("../mod.ts", import.meta.url).pathname;
    try {
      must(`ip link add ${veth} type veth peer name ${peer}`);
      const p = new Proc("deno", ["run", "-A", mod, "forward", veth, free]);
      const st = await p.finish();
      const err = p.errLines.join("\n");
      assert.equal(st.code, 1, err);
      assert.ok(err.includes(`"${veth}" exists and is not a TAP device`), err);
      assert.ok(err.includes('driver "veth"'), `says what it is: ${err}`);
      assert.ok(err.includes("only TAP devices"), `says forward needs a TAP: ${err}`);
      assert.ok(!/\bdel(ete)?\b|recreate/i.test(err), `suggests deleting: ${err}`);
      must(`ip link show ${veth} && ip link show ${peer}`); // untouched
      assert.ok(sh(`ip link show ${free}`).code !== 0, `${free} was not left behind`);
    } finally {
      tryRun(`ip link del ${veth}`);
      tryRun(`ip link del ${free}`);
    }
  },
});
