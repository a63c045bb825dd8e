/**
 * The benchmark harness: flags, exit codes, the shape of --json output, and
 * the pieces that turn raw runs into points and ratios.
 */
import assert from "assert";
import { BENCH_HELP, benchMain, parseBenchArgs, UsageError } from "../bench/main.ts";
import { headlines, pointFromRuns } from "../bench/points.ts";
import { DPDK_MISSING, peerPoints } from "../bench/peers.ts";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

Deno.test("bench flags: defaults and --quick", () => {
  const full = parseBenchArgs([]);
  assert.deepEqual(full.bulks, [1, 4, 8, 16, 32, 64]);
  assert.deepEqual(full.frameSizes, [64, 1500]);
  assert.ok(full.repeats >= 5, "at least 5 repeats by default");
  const q = parseBenchArgs(["--quick", "--repeats", "6", "--duration-ms=50"]);
  assert.deepEqual(q.bulks, [16]);
  assert.equal(q.repeats, 6);
  assert.equal(q.durationMs, 50);
  assert.deepEqual(parseBenchArgs(["--bulk", "16,4,16"]).bulks, [4, 16]);
});

Deno.test("bench flags: every unknown flag is named", () => {
  assert.throws(
    () => parseBenchArgs(["--quick", "--frobnicate", "--colour=red"]),
    (e: unknown) =>
      e instanceof UsageError && /--frobnicate/.test(e.message) && /--colour/.test(e.message),
  );
  assert.throws(() => parseBenchArgs(["--repeats"]), UsageError);
  assert.throws(() => parseBenchArgs(["--repeats", "zero"]), UsageError);
  assert.throws(() => parseBenchArgs(["--quick=yes"]), UsageError);
  assert.throws(() => parseBenchArgs(["--only", "nosuch"]), UsageError);
  assert.throws(() => parseBenchArgs(["stray"]), UsageError);
});

Deno.test("mod.ts bench: bad flags exit 2 and name the flag", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, "bench", "--nonsense-flag"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 2, err);
  assert.match(err, /--nonsense-flag/);
});

Deno.test("benchMain: --help exits 0, bad value exits 2", async () => {
  const log = console.log, error = console.error;
  const out: string[] = [];
  console.log = (m: string) => out.push(m);
  console.error = () => {};
  try {
    assert.equal(await benchMain(["--help"]), 0);
    assert.equal(out[0], BENCH_HELP);
    assert.equal(await benchMain(["--duration-ms", "-3"]), 2);
  } finally {
    console.log = log;
    console.error = error;
  }
});

Deno.test("points: spreads, ratios and ours/peer pairing", () => {
  const mk = (impl: string, ours: boolean, mode: "single" | "bulk", bulk: number, m: number[]) =>
    pointFromRuns(
      { provider: "peers", scenario: "1p1c", impl, ours, mode, bulk, frameSize: 64 },
      m.map((mpps, repeat) => ({ repeat, mpps })),
    );
  const e = [
    mk("bt_ring", true, "single", 1, [10, 11, 9]),
    mk("bt_ring", true, "bulk", 16, [40, 44, 36]),
    mk("bt_ring", true, "bulk", 4, [20, 20, 20]),
    mk("dpdk_mpmc", false, "single", 1, [20, 20, 20]),
    mk("dpdk_mpmc", false, "bulk", 16, [40, 40, 40]),
  ];
  assert.equal(e[0].mpps.median, 10);
  assert.equal(e[0].nsPerFrame.median, 100);
  const h = headlines(e);
  const bt = h.bulkOverSingle.find((r) => r.point.startsWith("bt_ring"))!;
  assert.equal(bt.label, "bulk-16/single");
  assert.equal(bt.value, 4);
  assert.equal(bt.low, 36 / 11);
  const single = h.oursOverPeer.find((r) => r.point === "single")!;
  assert.equal(single.value, 0.5);
  const bulk = h.oursOverPeer.filter((r) => r.point.startsWith("bulk"));
  assert.deepEqual(bulk.map((r) => r.point), ["bulk-16"], "ours/peer uses the headline bulk");
});

Deno.test("peers: ring_peer lines become points with every repeat", () => {
  const line = (impl: string, repeat: number, mpps: number) => ({
    type: "run" as const,
    impl,
    scenario: "2p1q",
    producers: 2,
    pinned: false,
    mode: "bulk" as const,
    bulk: 16,
    repeat,
    mpps,
    ns_per_frame: 1000 / mpps,
    calls_per_frame: 1 / 16,
    drop_rate: 0,
    lat: {
      samples: 10,
      p50: 100,
      p99: 200,
      p999: 300,
      max: 400,
      curve: [[0, 50], [100, 400]] as [number, number][],
    },
  });
  const ps = peerPoints([line("bt_ring", 0, 10), line("dpdk_mpmc", 0, 20), line("bt_ring", 1, 12)]);
  const bt = ps.find((p) => p.impl === "bt_ring")!;
  assert.equal(bt.runs.length, 2);
  assert.equal(bt.ours, true);
  assert.equal(ps.find((p) => p.impl === "dpdk_mpmc")!.ours, false);
  assert.equal(bt.latency!.p99.median, 200);
  assert.match(DPDK_MISSING, /^not measured: install librte-ring23 libdpdk-dev/);
});

Deno.test({
  name: "mod.ts bench --quick --json: every raw repeat, the machine, headlines (< 60 s)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "bulktap-bench-" });
    try {
      const json = `${dir}/r.json`;
      const t0 = performance.now();
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", MOD, "bench", "--quick", "--json", json, "--html", `${dir}/r.html`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const secs = (performance.now() - t0) / 1000;
      const out = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr).slice(-3000));
      assert.ok(secs < 60, `--quick took ${secs.toFixed(1)} s`);
      assert.match(out, /Headline: bulk\/single/);
      const res = JSON.parse(Deno.readTextFileSync(json));
      assert.equal(res.schema, "bulktap-bench/1");
      for (const k of ["cpu", "cores", "kernel", "deno", "cc"]) {
        assert.ok(res.machine[k], `machine.${k} missing`);
      }
      const points = res.entries.filter((e: { measured: boolean }) => e.measured);
      assert.ok(points.length > 0);
      for (const p of points) {
        assert.ok(["single", "bulk"].includes(p.mode));
        assert.ok(p.mpps.median > 0, `${p.impl} ${p.scenario} ${p.mode}: no throughput`);
        assert.ok(p.mpps.min <= p.mpps.median && p.mpps.median <= p.mpps.max);
        assert.ok(p.runs.length >= res.options.repeats, `${p.impl} ${p.scenario}: raw repeats`);
      }
      for (const provider of ["peers", "api"]) {
        assert.ok(
          res.headlines.bulkOverSingle.some((x: { provider: string }) => x.provider === provider),
          `no bulk/single headline for ${provider}`,
        );
      }
      // DPDK is either measured (ours/peer ratios exist) or named as missing.
      const dpdkMissing = res.entries.some((e: { measured: boolean; impl: string }) =>
        !e.measured && e.impl.startsWith("dpdk")
      );
      assert.ok(dpdkMissing || res.headlines.oursOverPeer.length > 0);
      assert.ok(Deno.statSync(`${dir}/r.html`).size > 10_000);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "peers: a missing DPDK is reported as not measured, never left out",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "bulktap-bench-" });
    try {
      const json = `${dir}/r.json`;
      const r = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MOD,
          "bench",
          "--only",
          "peers",
          "--bulk",
          "16",
          "--repeats",
          "1",
          "--duration-ms",
          "20",
          "--json",
          json,
        ],
        env: { BULKTAP_BENCH_NO_DPDK: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const out = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr).slice(-2000));
      assert.match(out, /dpdk_mpmc: not measured: install librte-ring23 libdpdk-dev/);
      const res = JSON.parse(Deno.readTextFileSync(json));
      const missing = res.entries.filter((e: { measured: boolean }) => !e.measured).map((
        e: { impl: string },
      ) => e.impl);
      assert.deepEqual(missing.sort(), ["dpdk_mpmc", "dpdk_rts"]);
      assert.ok(
        res.entries.some((e: { measured: boolean; impl: string }) =>
          e.measured && e.impl === "bt_ring"
        ),
      );
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
