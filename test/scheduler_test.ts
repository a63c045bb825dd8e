import assert from "assert";
import { Device, FramePool, GeneratorSource, LoopCounter, Scheduler, Verdict } from "../mod.ts";
import { COUNTER_BLOCK, counterBlock, counterBuffer } from "../dataplane/poll_loop.ts";
import { assertAccounted, eventually } from "./helpers.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("generator: at a fixed rate it has made floor(elapsed * rate) + 1 frames at any moment", () => {
  using pool = new FramePool({ frames: 4096 });
  const gen = new GeneratorSource({ kind: "generator", pool: pool.handle, rate: 10_000 });
  const refs = new Uint32Array(64);
  const t0 = 5e9;
  let made = 0;
  // A fake clock: 1 ms steps for one second; frames are returned at once.
  for (let t = t0; t <= t0 + 1e9; t += 1e6) {
    let n;
    while ((n = gen.poll(refs, 64, t)) > 0) {
      made += n;
      pool.free(refs, n);
    }
  }
  assert.equal(made, 10_001);
  gen.close();
});

Deno.test("generator: frames carry the configured size, a valid UDP header and one stamp per batch", () => {
  using pool = new FramePool({ frames: 64 });
  const gen = new GeneratorSource({
    kind: "generator",
    pool: pool.handle,
    frameSize: 128,
    flows: 4,
  });
  const refs = new Uint32Array(8);
  assert.equal(gen.poll(refs, 8, 0), 8);
  const ports = new Set<number>();
  for (const r of refs) {
    const off = pool.dataOffset(r);
    assert.equal(pool.length(r), 128);
    assert.equal(pool.bytes[off + 23], 17, "UDP");
    ports.add(pool.bytes[off + 34] << 8 | pool.bytes[off + 35]);
    assert.equal(pool.timestamp(r), pool.timestamp(refs[0]));
  }
  assert.equal(ports.size, 4);
  assert.ok(pool.timestamp(refs[0]) > 0);
  pool.free(refs);
});

Deno.test("scheduler: after close every generated frame is read, dropped, or back in the pool", async () => {
  const pool = new FramePool({ frames: 4096 });
  const dev = new Device({ pool, queues: 2, ringSize: 256 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle })),
    program: { name: "forward", options: { target: 0 } },
    targets: [dev],
    readers: [0, 1].map((q) => ({ device: dev.handle, queue: q })),
  });
  await sched.start();
  await sleep(300);
  const r = await sched.close();
  const left = dev.close();
  const c = r.counters;
  assert.ok(c.rx > 0, "frames flowed");
  assert.equal(c.rx, c.read + c.txDropped + c.programDrops + c.invalid + left);
  assert.equal(r.targets[0].sent, c.txSent);
  assert.equal(r.latency.count, c.read, "every read frame has a latency");
  assertAccounted(pool, 0);
  pool.close();
});

Deno.test("scheduler: a trickle is read whole, no stage waiting past the deadline plus one source turn", async () => {
  const pool = new FramePool({ frames: 1024 });
  const dev = new Device({ pool, queues: 1, ringSize: 256 });
  const sched = new Scheduler({
    cpus: 1,
    sources: [{ kind: "generator", pool: pool.handle, rate: 200 }],
    program: { name: "forward" },
    targets: [dev],
    readers: [{ device: dev.handle, queue: 0 }],
  });
  await sched.start();
  await sleep(400);
  const r = await sched.close();
  dev.close();
  const c = r.counters;
  assert.ok(c.read >= 20, `read ${c.read}`);
  assert.equal(c.read, c.rx, "nothing left staged");
  // The deadline claim, on the loop's own measurement: a stage is flushed
  // at the end of its cycle, or before a source's turn once the deadline
  // (50 us) has passed, so no stage waits longer than the deadline plus one
  // source's turn (poll, program, staging), whatever the machine's load.
  console.log(
    `longest stage wait ${c.maxStageAgeNs} ns, longest source turn ${c.maxSourceRunNs} ns`,
  );
  assert.ok(c.maxStageAgeNs > 0, "stages were flushed and measured");
  assert.ok(
    c.maxStageAgeNs <= 50_000 + c.maxSourceRunNs,
    `stage waited ${c.maxStageAgeNs} ns > 50 us + ${c.maxSourceRunNs} ns`,
  );
  // End-to-end latency (generation to reader) is a benchmark figure
  // (bench/sched_provider.ts points, p99 per repeat), not bounded here.
  assert.equal(r.latency.count, c.read, "every read frame has a latency");
  pool.close();
});

Deno.test("scheduler: two sources on one Worker, the second slow, still flush within the deadline bound", async () => {
  const pool = new FramePool({ frames: 1024 });
  const dev = new Device({ pool, queues: 1, ringSize: 256 });
  const sched = new Scheduler({
    cpus: 1,
    sources: [
      { kind: "generator", pool: pool.handle, rate: 2000 },
      { kind: "generator", pool: pool.handle, rate: 2000 },
    ],
    program: {
      name: "slow",
      module: new URL("./slow_program.ts", import.meta.url).href,
      options: { spinUs: 200 },
    },
    targets: [dev],
    readers: [{ device: dev.handle, queue: 0 }],
  });
  await sched.start();
  await sleep(300);
  const r = await sched.close();
  dev.close();
  const c = r.counters;
  console.log(
    `longest stage wait ${c.maxStageAgeNs} ns, longest source turn ${c.maxSourceRunNs} ns, ` +
      `${c.deadlineFlushes} deadline flushes`,
  );
  assert.ok(c.read > 0 && c.read === c.rx);
  assert.ok(c.maxSourceRunNs >= 200_000, "each turn spins 200 us");
  assert.ok(c.maxStageAgeNs <= 50_000 + c.maxSourceRunNs);
  assertAccounted(pool, 0);
  pool.close();
});

Deno.test("scheduler: an idle dataplane sleeps: one poll per wake-up, each sleep at least 1 ms", async () => {
  const pool = new FramePool({ frames: 256 });
  const dev = new Device({ pool, queues: 2, ringSize: 64 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map((q) => ({ kind: "queue", device: dev.handle, queue: q })),
    program: { name: "drop" },
    targets: [],
    busyPollUs: 100,
  });
  await sched.start();
  // Past the first busy-poll window: every Worker has gone to sleep.
  await eventually(() => sched.counters().sleeps >= 2 * sched.cpus, 10_000, "Workers to sleep");
  const c0 = sched.counters();
  const t0 = performance.now();
  await sleep(300);
  const c1 = sched.counters();
  const ms = performance.now() - t0;
  const r = await sched.close();
  dev.close();
  pool.close();
  // Counters, not CPU time (the idle CPU share is a benchmark figure:
  // bench/sched_provider.ts, "idle CPU"). A sleeping Worker wakes, polls
  // once and sleeps again: polls track wake-ups (+-1 per Worker for the
  // moments the counters were read). A spinning one polls without sleeping.
  const cycles = c1.cycles - c0.cycles, sleeps = c1.sleeps - c0.sleeps;
  console.log(`idle: ${cycles} polls, ${sleeps} sleeps in ${ms.toFixed(0)} ms`);
  assert.ok(sleeps > 0, "the Workers kept sleeping");
  assert.ok(Math.abs(cycles - sleeps) <= sched.cpus, `${cycles} polls for ${sleeps} wake-ups`);
  // Each sleep lasts at least 1 ms (a load can only lengthen it): a wait
  // that returned at once would count thousands here.
  assert.ok(sleeps <= sched.cpus * (ms + 1), `${sleeps} sleeps in ${ms.toFixed(0)} ms`);
  assert.equal(r.counters.rx, 0, "no traffic");
});

Deno.test("scheduler: a device queue is a source, so pipelines chain", async () => {
  const pool = new FramePool({ frames: 2048 });
  const a = new Device({ pool, queues: 1, ringSize: 256 });
  const b = new Device({ pool, queues: 1, ringSize: 256 });
  // Stage 2 reads a, forwards to b and reads b; stage 1 generates into a.
  const stage2 = new Scheduler({
    cpus: 1,
    sources: [{ kind: "queue", device: a.handle, queue: 0 }],
    program: { name: "forward", options: { target: 0 } },
    targets: [b],
    readers: [{ device: b.handle, queue: 0 }],
  });
  await stage2.start();
  const gen = new Scheduler({
    cpus: 1,
    sources: [{ kind: "generator", pool: pool.handle, rate: 5000 }],
    program: { name: "forward" },
    targets: [a],
  });
  await gen.start();
  await sleep(300);
  const g = await gen.close();
  await sleep(50);
  const s = await stage2.close();
  a.close();
  b.close();
  assert.ok(g.counters.txSent > 0);
  assert.equal(s.counters.read, g.counters.txSent, "every frame crossed both stages");
  assert.ok(s.latency.count > 0);
  assertAccounted(pool, 0);
  pool.close();
});

Deno.test("scheduler: a program that does not exist fails start with ENOENT naming it", async () => {
  using pool = new FramePool({ frames: 64 });
  const sched = new Scheduler({
    sources: [{ kind: "generator", pool: pool.handle }],
    program: { name: "nosuch" },
    targets: [],
  });
  await assert.rejects(() => sched.start(), /ENOENT.*nosuch/);
});

Deno.test("scheduler: a program that throws keeps running: its batches are dropped and counted, the error reported once", async () => {
  const pool = new FramePool({ frames: 1024 });
  const dev = new Device({ pool, queues: 1, ringSize: 64 });
  const sched = new Scheduler({
    sources: [{ kind: "generator", pool: pool.handle, rate: 10000 }],
    program: {
      name: "throwing",
      module: new URL("./throwing_program.ts", import.meta.url).href,
      options: { message: "program bug 43" },
    },
    targets: [dev],
  });
  await sched.start();
  await sleep(300);
  const report = await sched.close();
  const c = report.counters;
  assert.ok(c.programErrors >= 2, `it threw more than once: ${c.programErrors}`);
  assert.ok(c.thrown >= c.programErrors, `every batch it threw on was dropped: ${c.thrown}`);
  assert.equal(c.thrown, c.rx, "every frame read was dropped and counted");
  assert.deepEqual(sched.programErrors, [{ cpu: 0, message: "program bug 43" }], "said once");
  dev.close();
  assertAccounted(pool, 0);
  pool.close();
});

for (
  const [reason, verdict, words] of [
    ["badVerdict", 0x77, /verdict 0x77 .*action 119 is none of/],
    ["missingTarget", (5 << 8 | Verdict.REDIRECT) >>> 0, /device-map index 5 .*holds 0\.\.0/],
  ] as const
) {
  Deno.test(`scheduler: a program giving verdict ${reason} keeps running: its frames dropped, counted by reason, said once per Worker`, async () => {
    const pool = new FramePool({ frames: 1024 });
    const dev = new Device({ pool, queues: 2, ringSize: 64 });
    const sched = new Scheduler({
      cpus: 2,
      sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, rate: 5000 })),
      program: {
        name: "fixed",
        module: new URL("./slow_program.ts", import.meta.url).href,
        options: { verdict },
      },
      targets: [dev],
    });
    await sched.start();
    await eventually(() => sched.counters()[reason] > 0, 5000);
    const early = sched.counters().rx;
    // Still taking frames after the first invalid ones.
    await eventually(() => sched.counters().rx > early + 100, 5000);
    const report = await sched.close();
    const c = report.counters;
    assert.equal(c.invalid, c.rx, "every frame read was dropped as invalid");
    const byReason = {
      badVerdict: c.badVerdict,
      missingTarget: c.missingTarget,
      noIngress: c.noIngress,
    };
    assert.deepEqual(byReason, { badVerdict: 0, missingTarget: 0, noIngress: 0, [reason]: c.rx });
    assert.equal(c.txSent + c.programDrops + c.thrown, 0);
    const said = sched.invalidVerdicts.map((v) => [v.cpu, v.reason]).sort();
    assert.deepEqual(said, [[0, reason], [1, reason]], "once per Worker, not per frame");
    for (const v of sched.invalidVerdicts) assert.match(v.message, words);
    dev.close();
    assertAccounted(pool, 0);
    pool.close();
  });
}

Deno.test("scheduler: with onProgramError stop, a program that throws stops with its error and loses no frame", async () => {
  const pool = new FramePool({ frames: 1024 });
  const dev = new Device({ pool, queues: 1, ringSize: 64 });
  const sched = new Scheduler({
    sources: [{ kind: "generator", pool: pool.handle, rate: 1000 }],
    program: {
      name: "throwing",
      module: new URL("./throwing_program.ts", import.meta.url).href,
      options: { message: "program bug 42" },
    },
    targets: [dev],
    onProgramError: "stop",
  });
  await sched.start();
  await sleep(100);
  await assert.rejects(() => sched.close(), /program bug 42/);
  dev.close();
  assertAccounted(pool, 0);
  pool.close();
});

Deno.test("scheduler: close({ rethrow: false }) resolves with the counts and the failure in the report", async () => {
  const pool = new FramePool({ frames: 1024 });
  const dev = new Device({ pool, queues: 1, ringSize: 64 });
  const sched = new Scheduler({
    sources: [{ kind: "generator", pool: pool.handle, rate: 1000 }],
    program: {
      name: "throwing",
      module: new URL("./throwing_program.ts", import.meta.url).href,
      options: { message: "program bug 43" },
    },
    targets: [dev],
    onProgramError: "stop",
  });
  await sched.start();
  await sleep(100);
  const report = await sched.close({ rethrow: false });
  assert.match(String(report.failure?.message), /program bug 43/);
  assert.ok(report.counters.rx > 0, `the counts are there: read ${report.counters.rx}`);
  // The same report, and the default close still rejects with the failure.
  assert.equal(await sched.close({ rethrow: false }), report);
  await assert.rejects(() => sched.close(), /program bug 43/);
  dev.close();
  assertAccounted(pool, 0);
  pool.close();
});

Deno.test("scheduler: each Worker's counters sit in their own 128-byte-aligned block", () => {
  const buf = counterBuffer(4);
  const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(new Uint8Array(buf))));
  assert.equal((COUNTER_BLOCK * 8) % 128, 0);
  assert.ok(COUNTER_BLOCK >= LoopCounter.COUNT);
  const blocks = [0, 1, 2, 3].map((w) => counterBlock(buf, w));
  for (let w = 0; w < 4; w++) {
    assert.equal(blocks[w].length, LoopCounter.COUNT);
    assert.equal(
      (base + blocks[w].byteOffset) % 128,
      0,
      `block ${w} starts on a 128-byte boundary`,
    );
    if (w > 0) assert.equal(blocks[w].byteOffset - blocks[w - 1].byteOffset, COUNTER_BLOCK * 8);
  }
  assert.throws(() => counterBlock(buf, 4), /EINVAL/);
});

Deno.test("scheduler: with a pass device, PASS frames reach it for the user to read", async () => {
  const pool = new FramePool({ frames: 1024 });
  const passDev = new Device({ pool, queues: 2, ringSize: 512 });
  const sched = new Scheduler({
    cpus: 2,
    sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, limit: 100 })),
    program: {
      name: "fixed",
      module: new URL("./slow_program.ts", import.meta.url).href,
      options: { verdict: Verdict.PASS },
    },
    targets: [],
    pass: passDev,
  });
  await sched.start();
  await sleep(200);
  const r = await sched.close();
  assert.equal(r.counters.passed, 200);
  assert.equal(r.counters.txSent, 200);
  let got = 0;
  for (const q of [0, 1]) {
    for await (const batch of passDev.queue(q).frames()) {
      got += batch.count;
      if (passDev.queue(q).count() === 0) break;
    }
  }
  assert.equal(got, 200, "every PASS frame was read from the pass device");
  passDev.close();
  assertAccounted(pool, 0);
  pool.close();
});
