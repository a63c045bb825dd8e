import assert from "assert";
import { needs } from "./capability.ts";

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

Deno.test("cli: --rate caps generation at the rate, and every generated frame is read, dropped or left queued", async () => {
  const t0 = performance.now();
  const r = await run(
    "--rate",
    "100000",
    "--duration",
    "1",
    "--cpus",
    "1",
    "--queues",
    "1",
    "--json",
  );
  const wallS = (performance.now() - t0) / 1000;
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  // How close to the rate it gets is a benchmark figure (bench/sched_provider.ts,
  // "generated rate", % of the rate asked for, with its spread over repeats).
  console.log(`generated ${j.generated} frames (${j.generatedPps.toFixed(0)} pps in the window)`);
  assert.equal(j.rate, 100_000);
  assert.ok(j.generated > 0, "frames were generated");
  // A fixed-rate generator has made floor(elapsed * rate) + 1 frames at any
  // moment, and its Worker lived less than this process: it never runs ahead
  // (a loaded machine only makes it fall behind). Unpaced, one Worker makes
  // millions per second.
  assert.ok(
    j.generated <= Math.floor(100_000 * wallS) + 1,
    `${j.generated} frames in a process that ran ${wallS.toFixed(3)} s at --rate 100000`,
  );
  assert.equal(
    j.generated,
    j.frames + j.dropped + j.leftInQueues,
    `generated ${j.generated} != read ${j.frames} + dropped ${j.dropped} + left ${j.leftInQueues}`,
  );
  assert.equal(typeof j.poolEmpty, "number");
  assert.equal(typeof j.maxStageAgeNs, "number");
});

Deno.test("cli: says what it runs before it runs, then a table with named columns", async () => {
  const r = await run("--duration", "0.3");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  assert.match(lines[0], /^bulktap: running generator -> forward -> in-memory device, bulk mode/);
  assert.match(r.stdout, /^│ measure +│ +value │ unit +│ limit +│ verdict +│$/m);
  assert.match(
    r.stdout,
    /^│ dropped +│ +\d+ │ frames +│ 0 +│ (none|[\d.]+ % of generated: .+?) +│$/m,
  );
  assert.match(
    r.stdout,
    /^│ longest stage wait +│ +[\d.]+ │ (ns|us|ms) +│ 50\.0 us \+ one turn +│ \S.+│$/m,
  );
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

Deno.test("cli: every command words a bad flag the same and points at its own --help", async () => {
  for (const cmd of [[], ["bench"], ["forward"], ["switch"]]) {
    const r = await run(...cmd, "--frobnicate");
    const name = cmd.length ? ` ${cmd[0]}` : "";
    assert.equal(r.code, 2, r.stderr);
    assert.equal(
      r.stderr.trim(),
      `bulktap${name}: unknown flag: --frobnicate\n` +
        `run \`deno run -A mod.ts${name} --help\` for usage`,
    );
  }
});

Deno.test("cli: a negative value is refused the same after a space as after =", async () => {
  const spaced = await run("--rate", "-5");
  const joined = await run("--rate=-5");
  assert.equal(spaced.code, 2, spaced.stderr);
  assert.equal(spaced.stderr, joined.stderr);
  assert.match(spaced.stderr, /--rate=-5 is not a number in 0\.\.1000000000/);
});

const canTap = (() => {
  try {
    return Deno.uid() === 0 && Deno.statSync("/dev/net/tun").isCharDevice;
  } catch {
    return false;
  }
})();
const noTap = needs(
  "cli --tap test",
  canTap ? undefined : "not root, or no /dev/net/tun",
  "It needs root (CAP_NET_ADMIN) and /dev/net/tun.",
);

/** A TAP name no other test or run uses (IFNAMSIZ: at most 15 bytes). */
let tapSeq = 0;
const tapName = () => `btcli${Deno.pid % 10000}x${tapSeq++}`;

async function ip(...args: string[]): Promise<boolean> {
  return (await new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).output()).success;
}

function kernelReceived(name: string): number {
  return Number(Deno.readTextFileSync(`/sys/class/net/${name}/statistics/rx_packets`));
}

Deno.test({
  name:
    "cli: --tap NAME that does not exist is refused, says how to create it, and creates nothing",
  ignore: noTap,
  async fn() {
    const name = tapName();
    try {
      const r = await run("--tap", name, "--duration", "0.5");
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`--tap ${name}: no such device`));
      assert.match(r.stderr, /ip tuntap add dev \S+ mode tap multi_queue/);
      assert.match(r.stderr, /--tap-create/);
      assert.ok(!(await ip("link", "show", name)), `${name} was created`);
    } finally {
      await ip("link", "del", name);
    }
  },
});

Deno.test({
  name: "cli: --tap-create makes the TAP for the run, says nobody read it, and removes it",
  ignore: noTap,
  async fn() {
    const name = tapName();
    try {
      const j = await run(
        "--tap",
        name,
        "--tap-create",
        "--duration",
        "0.5",
        "--rate",
        "200000",
        "--json",
      );
      assert.equal(j.code, 0, j.stderr);
      const r = JSON.parse(j.stdout.trim());
      assert.equal(r.target, `tap:${name}`);
      assert.equal(r.tap.created, true);
      assert.ok(r.frames > 0 && r.frames === r.tap.written, "frames were written into the kernel");
      assert.equal(r.latencyNs.p99, null, "no reader latency is claimed for a TAP");
      assert.ok(!(await ip("link", "show", name)), `${name} still exists after the run`);
      const t = await run("--tap", name, "--tap-create", "--duration", "0.3", "--rate", "100000");
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout, /created for this run if missing/, "said before the run");
      assert.match(t.stdout, /created for this run, now deleted/, "said after it");
      assert.match(t.stdout, /nobody read them/);
    } finally {
      await ip("link", "del", name);
    }
  },
});

Deno.test({
  name:
    "cli: --tap on an existing TAP is left in place; writes that fail when its link goes down are drops with their errno",
  ignore: noTap,
  async fn() {
    const name = tapName();
    assert.ok(await ip("tuntap", "add", "dev", name, "mode", "tap", "multi_queue"));
    try {
      const job = spawn("--tap", name, "--duration", "3", "--rate", "200000", "--json");
      // Down once the kernel has taken frames (a TAP counts what it is written as received).
      const deadline = Date.now() + 20_000;
      while (kernelReceived(name) === 0) {
        assert.ok(Date.now() < deadline, `nothing reached ${name}: ${job.stderr()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.ok(await ip("link", "set", name, "down"));
      const out = await job.done();
      assert.equal(out.code, 0, out.stderr);
      const r = JSON.parse(out.stdout.trim());
      assert.equal(r.tap.created, false);
      assert.ok(r.tap.written > 0, "frames went in while the link was up");
      assert.ok(r.tap.writeErrors > 0, "writes failed once it was down");
      assert.equal(r.tap.lastWriteError, "EIO");
      assert.ok(r.dropped >= r.tap.writeErrors, "failed writes are drops");
      assert.equal(r.generated, r.frames + r.dropped + r.leftInQueues, "every frame accounted for");
      assert.ok(await ip("link", "show", name), "an existing device is not deleted");
    } finally {
      await ip("link", "del", name);
    }
  },
});

Deno.test("cli: --tap-create without --tap exits 2 naming both", async () => {
  const r = await run("--tap-create", "--duration", "0.1");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--tap-create needs --tap NAME/);
  assert.match(r.stderr, /--help/);
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

/** Start the main job as a child process whose output we read as it comes. */
function spawn(...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MOD, ...args],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const dec = new TextDecoder();
  let stderr = "";
  const stdout = new Response(child.stdout).text();
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) stderr += dec.decode(chunk, { stream: true });
  })();
  return {
    child,
    stderr: () => stderr,
    async done() {
      const status = await child.status;
      await stderrDone;
      return { code: status.code, signal: status.signal, stdout: await stdout, stderr };
    },
  };
}

/** The summary table's rows: `│ measure │ value │ unit │ limit │ verdict │`, measure -> value. */
function tableRows(out: string): Record<string, string> {
  const rows: Record<string, string> = {};
  for (const m of out.matchAll(/^│ (.+?)\s+│\s+(\S+) │/gm)) rows[m[1]] = m[2];
  return rows;
}

Deno.test("cli: SIGINT stops the main job early: the summary accounts for every frame, exit 130", async () => {
  const job = spawn("--duration", "60");
  try {
    // The live status (on stderr, once a second) shows frames are moving.
    const end = performance.now() + 30_000;
    while (!/Mpps/.test(job.stderr())) {
      if (performance.now() > end) throw new Error(`no status line in 30 s: ${job.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    job.child.kill("SIGINT");
  } catch (e) {
    job.child.kill("SIGKILL");
    await job.done();
    throw e;
  }
  const r = await job.done();
  assert.equal(r.code, 130, `exit ${r.code} (signal ${r.signal}): ${r.stderr}`);
  const t = tableRows(r.stdout);
  const n = (k: string) => {
    assert.ok(k in t, `summary row "${k}" missing:\n${r.stdout}`);
    return Number(t[k]);
  };
  const generated = n("frames generated");
  assert.ok(generated > 0, "it was producing when stopped");
  assert.equal(
    generated,
    n("frames read") + n("dropped") + n("left in queues at close"),
    "generated == read + dropped + left",
  );
  assert.ok(Number(r.stdout.match(/, ([\d.]+) s\n/)?.[1]) < 30, "stopped long before --duration");
});

Deno.test("cli: SIGTERM stops a --json run early: one JSON object, frames accounted, exit 143", async () => {
  const job = spawn("--duration", "60", "--json");
  // --json prints nothing before the end, so there is no line to wait for:
  // wait well past start-up (< 1 s here), then check frames were generated.
  await new Promise((r) => setTimeout(r, 2500));
  job.child.kill("SIGTERM");
  const r = await job.done();
  assert.equal(r.code, 143, `exit ${r.code} (signal ${r.signal}): ${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "exactly one line on stdout");
  const j = JSON.parse(lines[0]);
  assert.ok(j.generated > 0, "it was producing when stopped");
  assert.equal(
    j.generated,
    j.frames + j.dropped + j.leftInQueues,
    "generated == read + dropped + left",
  );
  assert.ok(j.seconds < 30, `stopped after ${j.seconds} s, not at --duration`);
});

Deno.test("cli: benchmark scripts run on their own word bad flags and --help as the commands do", async () => {
  for (const script of ["bench/sched_bench.ts", "bench/tap_bench.ts", "bench/soak.ts"]) {
    const path = new URL(`../${script}`, import.meta.url).pathname;
    const sh = async (...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", path, ...args],
        stdout: "piped",
        stderr: "piped",
        stdin: "null",
      }).output();
      const dec = new TextDecoder();
      return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
    };
    const flag = script.endsWith("soak.ts") ? "--producers" : "--repeats";
    const spaced = await sh(flag, "-5");
    const joined = await sh(`${flag}=-5`);
    assert.equal(spaced.code, 2, `${script}: ${spaced.stderr}`);
    assert.equal(spaced.stderr, joined.stderr);
    assert.equal(
      spaced.stderr,
      `bulktap ${script}: ${flag}=-5 is not an integer in 1..${
        flag === "--repeats" ? 1000 : 64
      }\n` +
        `run \`deno run -A ${script} --help\` for usage\n`,
    );
    const unknown = await sh("--frobnicate");
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^bulktap \S+: unknown flag: --frobnicate\n/);
    const help = await sh("--help");
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`^usage: deno run -A ${script}`));
  }
});
