/**
 * Fault tests (issue 6): stalled and dead readers, a device closed under
 * load, a Worker terminated mid-run, more Workers than cores, and a bounded
 * soak. Each ends with the accounting invariant and a whole pool.
 */
import assert from "assert";
import { Batch, Device, FramePool, FrameState, freeFrames, META } from "../mod.ts";
import { assertAccounted, eventually } from "./helpers.ts";
import { DONE, DROP, ERR, HELD, LOOPS, SENT, STOP } from "./workers/fault_producer.ts";

const BULK = 16;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  worker: Worker;
  ctl: Int32Array;
  done: Promise<{ message?: string; received?: number }>;
}

function start(file: string, job: Record<string, unknown>, words = 8): Running {
  const sab = new SharedArrayBuffer(4 * words);
  const worker = new Worker(new URL(`./workers/${file}`, import.meta.url), { type: "module" });
  const done = new Promise<{ message?: string; received?: number }>((resolve, reject) => {
    worker.onmessage = (e) => resolve(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`${file}: ${e.message}`));
    };
  });
  worker.postMessage({ ...job, ctl: sab });
  return { worker, ctl: new Int32Array(sab), done };
}

function producer(pool: FramePool, dev: Device, cpu: number): Running {
  return start("fault_producer.ts", {
    pool: pool.handle,
    device: dev.handle,
    cpu,
    bulk: BULK,
  });
}

function reader(dev: Device, queue = 0, stopAfter?: number): Running {
  return start("fault_reader.ts", { device: dev.handle, queue, stopAfter }, 2);
}

async function stopAll(producers: Running[]): Promise<void> {
  for (const p of producers) Atomics.store(p.ctl, STOP, 1);
  await Promise.all(producers.map((p) => p.done));
  for (const p of producers) p.worker.terminate();
}

/** Frames whose headroom says HELD, found by reading every frame's state. */
function heldRefs(pool: FramePool): Uint32Array {
  const out: number[] = [];
  for (let i = 0; i < pool.frames; i++) {
    if (pool.bytes[i * pool.frameSize + META.state] === FrameState.HELD) {
      out.push(((pool.slot << 24) | i) >>> 0);
    }
  }
  return Uint32Array.from(out);
}

function assertWhole(pool: FramePool): void {
  const s = pool.stats();
  assert.equal(s.free, s.frames, `pool whole: ${JSON.stringify(s)}`);
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...opts,
  name:
    "faults: a stalled reader makes producers drop (counted), never block; reading resumes traffic",
  async fn() {
    const pool = new FramePool({ frames: 2048 });
    const dev = new Device({ pool, queues: 1, ringSize: 256 });
    const p = producer(pool, dev, 0);
    // Nobody reads: the ring fills, then every bulk is dropped.
    await eventually(() => Atomics.load(p.ctl, DROP) > 0, 5000, "drops while nobody reads");
    const loops0 = Atomics.load(p.ctl, LOOPS), drop0 = Atomics.load(p.ctl, DROP);
    await sleep(200);
    const loops1 = Atomics.load(p.ctl, LOOPS), drop1 = Atomics.load(p.ctl, DROP);
    assert.ok(loops1 - loops0 > 100, `producer kept calling xmit (${loops1 - loops0} bulks)`);
    assert.ok(drop1 > drop0, "drops keep being counted while the reader stalls");
    assert.equal(dev.stats().queued, 256, "the ring is full, not overfull");

    // The reader resumes: frames flow again.
    const sent0 = Atomics.load(p.ctl, SENT);
    const batch = new Batch(64);
    let got = 0;
    const end = performance.now() + 300;
    while (performance.now() < end) {
      got += dev.queue(0).poll(batch);
      await sleep(0);
    }
    batch.release();
    assert.ok(got > 256, `reader got ${got} frames after resuming`);
    assert.ok(Atomics.load(p.ctl, SENT) > sent0 + 256, "producer's frames are accepted again");

    await stopAll([p]);
    const s = dev.stats();
    assert.equal(s.txDropped, Atomics.load(p.ctl, DROP), "library and producer agree on drops");
    assert.equal(s.txPackets, Atomics.load(p.ctl, SENT));
    assertAccounted(pool, 0, [dev]);
    assert.equal(dev.close(), s.queued, "close returns every queued frame");
    assertWhole(pool);
    pool.close();
  },
});

Deno.test({
  ...opts,
  name: "faults: a reader that exits with frames queued leaves them to close(), which returns all",
  async fn() {
    const pool = new FramePool({ frames: 1024 });
    const dev = new Device({ pool, queues: 1, ringSize: 512 });
    const refs = new Uint32Array(200);
    assert.equal(pool.alloc(refs), 200);
    for (const r of refs) pool.setLength(r, 64);
    assert.equal(dev.xmit(refs.subarray(0, 100), { flush: true }), 100);
    assert.equal(dev.xmit(refs.subarray(100), { flush: true }), 100);
    const r = reader(dev, 0, 50); // reads at least 50, then exits
    const { received } = await r.done;
    r.worker.terminate();
    assert.ok(received! >= 50 && received! < 200, `reader read ${received} then left`);
    const queued = dev.stats().queued;
    assert.equal(queued, 200 - received!);
    assertAccounted(pool, 0, [dev]);
    assert.equal(dev.close(), queued, "close() returned every queued frame");
    assertWhole(pool);
    pool.close();
  },
});

Deno.test({
  ...opts,
  name:
    "faults: closing a device under 2 transmitting Workers fails them with ENXIO, frames go home",
  async fn() {
    const pool = new FramePool({ frames: 4096 });
    const dev = new Device({ pool, queues: 1, ringSize: 256 });
    const rd = reader(dev);
    const ps = [producer(pool, dev, 0), producer(pool, dev, 1)];
    await eventually(
      () => ps.every((p) => Atomics.load(p.ctl, SENT) > 2000),
      10_000,
      "both producers under way",
    );
    const drained = dev.close();
    await Promise.all(ps.map((p) => p.done));
    const { received } = await rd.done;
    for (const p of ps) p.worker.terminate();
    rd.worker.terminate();
    for (const [i, p] of ps.entries()) {
      assert.equal(Atomics.load(p.ctl, DONE), 1);
      assert.ok(
        Atomics.load(p.ctl, ERR) === 1 || Atomics.load(p.ctl, ERR) === 2,
        `producer ${i} ended with ENXIO/ECLOSED (err ${Atomics.load(p.ctl, ERR)})`,
      );
      assert.equal(Atomics.load(p.ctl, HELD), 0, `producer ${i} holds nothing`);
    }
    const sent = ps.reduce((a, p) => a + Atomics.load(p.ctl, SENT), 0);
    assert.equal(received! + drained, sent, "every accepted frame was read or drained by close");
    assertAccounted(pool, 0);
    assertWhole(pool);
    pool.close();
  },
});

Deno.test({
  ...opts,
  name:
    "faults: a Worker terminated mid-xmit holds no lock; the others continue; its frames are found",
  async fn() {
    const pool = new FramePool({ frames: 4096 });
    const dev = new Device({ pool, queues: 1, ringSize: 256 });
    const rd = reader(dev);
    const ps = [producer(pool, dev, 0), producer(pool, dev, 1), producer(pool, dev, 2)];
    await eventually(
      () => ps.every((p) => Atomics.load(p.ctl, SENT) > 1000),
      10_000,
      "three producers under way",
    );
    const [victim, ...rest] = ps;
    victim.worker.terminate(); // mid-loop: between, or inside, FFI calls
    const before = rest.map((p) => Atomics.load(p.ctl, LOOPS));
    const rx0 = Atomics.load(rd.ctl, 0);
    await sleep(300);
    const victimHeld = Atomics.load(victim.ctl, HELD);
    for (const [i, p] of rest.entries()) {
      assert.ok(
        Atomics.load(p.ctl, LOOPS) > before[i] + 100,
        `producer ${i + 1} kept going after the termination: no lock left held`,
      );
    }
    assert.ok(Atomics.load(rd.ctl, 0) > rx0, "the reader kept reading");
    await stopAll(rest);
    Atomics.store(rd.ctl, 1, 1);
    dev.flush();
    await rd.done;
    rd.worker.terminate();
    const drained = dev.close();
    assert.ok(drained >= 0);

    // Only the dead Worker can hold frames now: at most one bulk, the one it
    // had allocated and not yet handed to xmit. Its own last word about
    // that (ctl[HELD]) may lag the truth by one store, so the pool's view is
    // the authority; the frames are found by their HELD state and returned.
    // terminate() does not wait for a library call already under way in
    // the Worker's thread (e.g. a put that has marked frames free but not
    // yet pushed them), so wait until the counts settle. A frame really
    // lost never settles, and fails here after 5 s.
    // Settled means: the counts add up and have not moved for 500 ms (a
    // dead Worker's call that is still running moves them, e.g. an xmit on
    // the closed device that returns its held bulk to the pool).
    let last = "";
    let stableSince = performance.now();
    await eventually(
      () => {
        const t = pool.stats();
        const now = JSON.stringify([t.free, t.queued, t.held]);
        if (now !== last) [last, stableSince] = [now, performance.now()];
        return t.free + t.queued + t.held === t.frames && performance.now() - stableSince >= 500;
      },
      5000,
      "the terminated Workers' last library calls to finish",
    );
    const s = pool.stats();
    const held = heldRefs(pool);
    assert.equal(held.length, s.held, "HELD states agree with the pool's count");
    assert.ok(s.held <= BULK, `dead Worker held ${s.held} <= one bulk of ${BULK}`);
    console.log(`  dead Worker held ${s.held} frames (its last word: ${victimHeld})`);
    assertAccounted(pool, held.length);
    if (held.length) freeFrames(held);
    assertWhole(pool);
    pool.close();
  },
});

function producer1(pool: FramePool, dev: Device, cpu: number): Running {
  return start("fault_producer.ts", { pool: pool.handle, device: dev.handle, cpu, bulk: 1 });
}

Deno.test({
  ...opts,
  name: "faults: 4 Workers sharing 1 queue on this machine's cores all keep sending, and every " +
    "xmit call takes the lock once and is counted",
  async fn() {
    // Correctness only. The throughput claim (4 producers on 2 cores keep
    // >= 0.5 of 2 producers' rate) is the benchmark's: bench/c/ring_bench.c
    // through the ring provider, headline "4p/2p on 2 cores" (scenario
    // 4p1q_2cores over 2p1q, single and bulk, repeats and spread reported).
    const pool = new FramePool({ frames: 8192 });
    const dev = new Device({ pool, queues: 1, ringSize: 1024 });
    const rd = reader(dev);
    // bulk 1: one xmit call, one producer-lock acquisition per frame.
    const calls = (p: Running) => Atomics.load(p.ctl, SENT) + Atomics.load(p.ctl, DROP);
    // Started one at a time: run alone (--filter), with the reader and 4
    // producers spawned at once as the process's first Workers, no producer
    // started within 10 s (the old version of this test failed so too).
    const ps: Running[] = [];
    for (const i of [0, 1, 2, 3]) {
      const p = producer1(pool, dev, i);
      ps.push(p);
      await eventually(() => calls(p) > 0, 10_000, `producer ${i} to start`);
    }
    // No producer is starved by the others holding the shared lock.
    const from = ps.map(calls);
    await eventually(
      () => ps.every((p, i) => calls(p) >= from[i] + 1000),
      30_000,
      "every producer to make 1000 more xmit calls",
    );
    await stopAll(ps);
    const s = dev.stats();
    const sum = (i: number) => ps.reduce((a, p) => a + Atomics.load(p.ctl, i), 0);
    console.log(
      `  4 Workers on ${navigator.hardwareConcurrency} cores, 1 queue, bulk 1: ` +
        `${s.xmitCalls} xmit calls, lock: ${s.lockContended} contended, ${s.lockParks} parked`,
    );
    assert.deepEqual(ps.map((p) => Atomics.load(p.ctl, ERR)), [0, 0, 0, 0], "no producer failed");
    assert.equal(s.xmitCalls, sum(SENT) + sum(DROP), "every call counted once");
    assert.equal(s.lockAcquisitions, s.xmitCalls, "one lock acquisition per call");
    assert.deepEqual([s.txPackets, s.txDropped], [sum(SENT), sum(DROP)]);
    dev.close();
    await rd.done;
    rd.worker.terminate();
    assertWhole(pool);
    pool.close();
  },
});

/**
 * Soak length: 60 s (issue 6). BULKTAP_SOAK_SECONDS may shorten it for a
 * local run; CI runs the full minute.
 */
const SOAK_S = Math.max(4, Number(Deno.env.get("BULKTAP_SOAK_SECONDS") ?? "60"));

Deno.test({
  ...opts,
  name: `faults: a ${SOAK_S} s soak at full rate keeps pool in-use, heap and RSS flat`,
  async fn() {
    const pool = new FramePool({ frames: 4096 });
    const dev = new Device({ pool, queues: 1, ringSize: 1024 });
    const rd = reader(dev);
    const ps = [producer(pool, dev, 0), producer(pool, dev, 1)];
    const samples: { inUse: number; heap: number; rss: number; sent: number }[] = [];
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    // The clock starts when every producer Worker is sending (starting a
    // Worker takes a while on a loaded machine, and is not the soak).
    for (let t = 0; ps.some((p) => Atomics.load(p.ctl, SENT) === 0); t++) {
      assert.ok(t < 1000, "producers did not start within 10 s");
      await sleep(10);
    }
    for (let s = 1; s <= SOAK_S; s++) {
      await sleep(1000);
      const st = pool.stats();
      const m = Deno.memoryUsage();
      const sample = {
        inUse: st.held + st.queued,
        heap: m.heapUsed,
        rss: m.rss,
        sent: ps.reduce((a, p) => a + Atomics.load(p.ctl, SENT), 0),
      };
      samples.push(sample);
      console.log(
        `  t=${s}s sent ${sample.sent} in-use ${sample.inUse} heap ${mib(sample.heap)} MiB ` +
          `rss ${mib(sample.rss)} MiB`,
      );
    }
    await stopAll(ps);
    Atomics.store(rd.ctl, 1, 1);
    dev.flush();
    await rd.done;
    rd.worker.terminate();

    const n = samples.length;
    // The first 10% (at least the first second) is warm-up: the ring fills
    // from empty. The quarters are taken of the steady part after it.
    const warm = Math.max(1, Math.ceil(n / 10));
    const steady = samples.slice(warm);
    const q = Math.max(1, Math.floor(steady.length / 4));
    const maxOf = (xs: typeof samples) => Math.max(...xs.map((x) => x.inUse));
    const firstQ = maxOf(steady.slice(0, q)), lastQ = maxOf(steady.slice(steady.length - q));
    // Structural bound: the ring, one reader batch, one bulk per producer.
    const bound = 1024 + 64 + 2 * BULK;
    const early = samples[Math.max(0, Math.ceil(n / 10) - 1)];
    const last = samples[n - 1];
    const growth = last.rss - early.rss;
    console.log(
      `  in-use max after ${warm} s of warm-up: first quarter ${firstQ}, last quarter ${lastQ} ` +
        `(bound ${bound}); ` +
        `rss ${mib(early.rss)} MiB at t=${Math.max(1, Math.ceil(n / 10))}s -> ${
          mib(last.rss)
        } MiB ` +
        `at t=${n}s (${growth >= 0 ? "+" : ""}${mib(growth)} MiB); heap ${mib(early.heap)} -> ${
          mib(last.heap)
        } MiB`,
    );
    assert.ok(last.sent > samples[0].sent, "traffic flowed for the whole soak");
    // A leak holds frames for good, so in-use would climb past the bound the
    // traffic itself allows (and the pool would not be whole at the end);
    // within the bound, in-use moves with how far the reader lags, so the
    // quarters are printed, not compared.
    const peak = Math.max(...samples.map((x) => x.inUse));
    assert.ok(peak <= bound, `in-use reached ${peak}, above the traffic's bound ${bound}`);
    // Generous: RSS moves with the allocator and V8's heap sizing; a leak
    // of a frame's worth of memory per packet would be gigabytes.
    assert.ok(growth < 32 * 2 ** 20, `RSS grew ${mib(growth)} MiB after the first 10%`);
    assertAccounted(pool, 0, [dev]);
    dev.close();
    assertWhole(pool);
    pool.close();
  },
});

Deno.test({
  ...opts,
  name: "faults: closing a device wakes every reader sleeping on a queue without a timeout",
  async fn() {
    const pool = new FramePool({ frames: 64 });
    const dev = new Device({ pool, queues: 1, ringSize: 16 });
    // Three sleepers on one queue, each on its own blocking-pool thread.
    // close() writes the queue's eventfd once; every sleeper that consumes
    // that wake-up passes it on, so none is left asleep and close() (which
    // waits for every call inside the device) returns.
    const waits = [0, 1, 2].map(() =>
      dev.queue(0).wait(-1).then(
        () => "woke with frames",
        (e) => (e as { code?: string }).code ?? String(e),
      )
    );
    await sleep(50);
    assert.equal(dev.close(), 0);
    assert.deepEqual(await Promise.all(waits), ["ENXIO", "ENXIO", "ENXIO"]);
    assertWhole(pool);
    pool.close();
  },
});
