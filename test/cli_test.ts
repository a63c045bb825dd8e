import assert from "assert";

const MOD = new URL("../mod.ts", import.meta.url).pathname;

async function run(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: --json prints one JSON object with the run's figures", async () => {
  const r = await run("--duration", "1", "--json");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "exactly one line on stdout");
  const j = JSON.parse(lines[0]);
  for (const k of ["mode", "bulk", "cpus", "queues", "frameSize", "frames", "mpps", "dropped"]) {
    assert.ok(k in j, `missing ${k}`);
  }
  assert.deepEqual([j.mode, j.bulk, j.queues, j.frameSize], ["bulk", 16, 2, 64]);
  assert.ok(j.frames > 0 && j.mpps > 0);
  for (const k of ["p50", "p90", "p99", "p999", "max"]) {
    assert.equal(typeof j.latencyNs[k], "number", `latencyNs.${k}`);
  }
  assert.ok(j.latencyNs.p50 <= j.latencyNs.p99 && j.latencyNs.p99 <= j.latencyNs.max);
});

Deno.test("cli: --mode single reports bulk 1", async () => {
  const r = await run("--duration", "0.3", "--mode", "single", "--cpus", "1", "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual([j.mode, j.bulk, j.cpus], ["single", 1, 1]);
});

Deno.test("cli: an unknown flag exits 2 naming it", async () => {
  const r = await run("--bogus");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bogus/);
});

Deno.test("cli: bad values exit 2 naming the flag and the value", async () => {
  for (
    const [flag, value] of [
      ["--cpus", "0"],
      ["--bulk", "300"],
      ["--mode", "turbo"],
      ["--frame-size", "abc"],
      ["--duration", "-1"],
      ["--rate", "fast"],
    ]
  ) {
    const r = await run(`${flag}=${value}`);
    assert.equal(r.code, 2, `${flag} ${value}: ${r.stderr}`);
    assert.ok(r.stderr.includes(`${flag}=${value}`), r.stderr);
  }
});

const canTap = (() => {
  try {
    return Deno.uid() === 0 && Deno.statSync("/dev/net/tun").isCharDevice;
  } catch {
    return false;
  }
})();
if (!canTap) {
  console.error(
    "\n#### cli --tap test IGNORED: needs root (CAP_NET_ADMIN) and /dev/net/tun ####\n",
  );
}

Deno.test({
  name: "cli: --tap transmits into a real TAP, reports written frames, and removes the device",
  ignore: !canTap,
  async fn() {
    const name = `btcli${Deno.pid % 10000}`;
    try {
      const r = await run("--tap", name, "--duration", "0.5", "--rate", "200000", "--json");
      assert.equal(r.code, 0, r.stderr);
      const j = JSON.parse(r.stdout.trim());
      assert.equal(j.target, `tap:${name}`);
      assert.ok(j.frames > 0, "frames were written into the kernel");
      assert.equal(j.latencyNs.p99, null, "no reader latency is claimed for a TAP");
      const gone = await new Deno.Command("ip", { args: ["link", "show", name], stderr: "null" })
        .output();
      assert.ok(!gone.success, `${name} still exists after the run`);
    } finally {
      await new Deno.Command("ip", { args: ["link", "del", name], stderr: "null" }).output();
    }
  },
});

Deno.test("cli: --tap with an invalid interface name exits 2 naming it", async () => {
  const r = await run("--tap", "bad/name", "--duration", "0.1");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--tap=bad\/name/);
});

Deno.test("cli: --help prints usage and exits 0", async () => {
  const r = await run("--help");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--mode bulk\|single/);
});
