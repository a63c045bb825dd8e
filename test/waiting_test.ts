/**
 * Waiting: many waiters cannot exhaust Deno's blocking pool, a flush wakes
 * every waiter of a queue (in one isolate and across Workers), aborts end
 * waits at once, and bad timeouts are refused.
 */
import assert from "assert";
import { BulktapError, Device, FramePool, QueueSource } from "../mod.ts";
import { accounted, assertCode, eventually } from "./helpers.ts";
import { MAX_PARKED } from "../dataplane/waiter.ts";

// Rejects with `what` if `p` has not settled after `ms`: a correctness
// bound (the event should take milliseconds), never a timing floor.
function before<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

function oneFrame(pool: FramePool): Uint32Array {
  const refs = new Uint32Array(1);
  assert.equal(pool.alloc(refs), 1);
  pool.setLength(refs[0], 64);
  return refs;
}

function runWaiter(job: { device: number; queue: number; timeoutMs: number }): {
  result: Promise<boolean>;
  worker: Worker;
} {
  const worker = new Worker(new URL("./workers/waiter.ts", import.meta.url), { type: "module" });
  const result = new Promise<boolean>((resolve, reject) => {
    worker.onmessage = (e) => resolve(e.data as boolean);
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`waiter: ${e.message}`));
    };
  });
  worker.postMessage(job);
  return { result, worker };
}

Deno.test(
  "1000 concurrent waits on queues do not stall an unrelated file read",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    const dev = new Device({ pool, queues: 4 });
    const waits: Promise<boolean>[] = [];
    for (let i = 0; i < 1000; i++) waits.push(dev.queue(i % 4).wait(10_000));
    // Deno's blocking pool has 32 threads: one per wait would leave none
    // for the read until the waits end after 10 s.
    const text = await before(
      Deno.readTextFile(new URL(import.meta.url)),
      5_000,
      "a file read beside 1000 waits",
    );
    assert.ok(text.length > 0);
    dev.close();
    const results = await Promise.allSettled(waits);
    for (const r of results) {
      assert.ok(
        r.status === "rejected" && r.reason instanceof BulktapError && r.reason.code === "ENXIO",
        `a wait ended by close should throw ENXIO: ${JSON.stringify(r)}`,
      );
    }
  }),
);

Deno.test(
  "queue sources waiting on 64 queues do not stall an unrelated file read",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    const devs = Array.from({ length: 16 }, () => new Device({ pool, queues: 4 }));
    const sources = devs.flatMap((d) =>
      [0, 1, 2, 3].map((q) => new QueueSource({ kind: "queue", device: d.handle, queue: q }))
    );
    // One sleeping thread each would take 64 of Deno's ~32 blocking threads.
    const waits = sources.map((s) => s.wait(10_000));
    const text = await before(
      Deno.readTextFile(new URL(import.meta.url)),
      5_000,
      "a file read beside 64 queue-source waits",
    );
    assert.ok(text.length > 0);
    for (const d of devs) d.close();
    await Promise.allSettled(waits);
  }),
);

Deno.test(
  "two waiters of one queue in one isolate both wake on one flush",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const a = dev.queue(0).wait(10_000);
    const b = dev.queue(0).wait(10_000);
    await eventually(() => dev.stats().rxSleeps >= 1, 5_000, "a waiter asleep in C");
    dev.xmit(oneFrame(pool), { flush: true });
    assert.deepEqual(
      await before(Promise.all([a, b]), 5_000, "both waiters waking"),
      [true, true],
    );
  }),
);

Deno.test(
  "two Workers waiting on one queue both wake on one flush",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const w = [0, 1].map(() => runWaiter({ device: dev.handle, queue: 0, timeoutMs: 10_000 }));
    try {
      await eventually(() => dev.stats().rxSleeps >= 2, 30_000, "two Workers asleep in C");
      dev.xmit(oneFrame(pool), { flush: true });
      assert.deepEqual(
        await before(Promise.all(w.map((x) => x.result)), 5_000, "both Workers waking"),
        [true, true],
      );
    } finally {
      for (const x of w) x.worker.terminate();
    }
  }),
);

Deno.test(
  "frames() with a long sleep ends promptly when its signal aborts",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const ac = new AbortController();
    const reader = (async () => {
      let batches = 0;
      for await (const _ of dev.queue(0).frames({ sleepMs: 0x7fffffff, signal: ac.signal })) {
        batches++;
      }
      return batches;
    })();
    await eventually(() => dev.stats().rxSleeps >= 1, 5_000, "the reader asleep in C");
    ac.abort();
    assert.equal(await before(reader, 2_000, "frames() ending on abort"), 0);
  }),
);

Deno.test(
  "a wait that never times out ends on abort (false) and on close (ENXIO)",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    const dev = new Device({ pool, queues: 1 });
    const ac = new AbortController();
    const aborted = dev.queue(0).wait(-2, { signal: ac.signal });
    const closed = dev.queue(0).wait(-1);
    await eventually(() => dev.stats().rxSleeps >= 1, 5_000, "a waiter asleep in C");
    ac.abort();
    assert.equal(await before(aborted, 2_000, "the aborted wait ending"), false);
    dev.close();
    await assert.rejects(
      before(closed, 2_000, "the wait ending on close"),
      (e) => e instanceof BulktapError && e.code === "ENXIO",
    );
  }),
);

Deno.test(
  "bad sleepMs and timeoutMs are refused with EINVAL naming the value",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const q = dev.queue(0);
    for (const v of [NaN, 1.5, 1e12, -2, 0, Infinity]) {
      assertCode(() => q.frames({ sleepMs: v }), "EINVAL", `sleepMs=${v}`);
    }
    for (const v of [NaN, 1.5, 1e12, Infinity, -Infinity]) {
      await assert.rejects(
        q.wait(v),
        (e) => e instanceof BulktapError && e.code === "EINVAL" && e.message.includes(`=${v}`),
      );
    }
  }),
);

Deno.test(
  "bad spinUs is refused with EINVAL naming the value",
  accounted(() => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const q = dev.queue(0);
    for (const v of [NaN, 1.5, -1, 1001, Infinity]) {
      assertCode(() => q.frames({ spinUs: v }), "EINVAL", `spinUs=${v}`);
    }
  }),
);

Deno.test(
  "a reader that spins on an empty queue still goes to sleep",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: 1 });
    const ac = new AbortController();
    const reader = (async () => {
      let got = 0;
      for await (const b of dev.queue(0).frames({ spinUs: 1000, signal: ac.signal })) {
        got += b.count;
      }
      return got;
    })();
    await eventually(() => dev.stats().rxSleeps >= 1, 5_000, "the spinning reader asleep in C");
    dev.xmit(oneFrame(pool), { flush: true });
    await eventually(() => dev.stats().rxPackets === 1, 5_000, "the frame read after the sleep");
    ac.abort();
    assert.equal(await before(reader, 2_000, "frames() ending on abort"), 1);
  }),
);

Deno.test(
  "waiters of more queues than MAX_PARKED still wake on a flush",
  accounted(async () => {
    using pool = new FramePool({ frames: 64 });
    using dev = new Device({ pool, queues: MAX_PARKED + 4 });
    const waits = Array.from({ length: MAX_PARKED + 4 }, (_, q) => dev.queue(q).wait(10_000));
    // The last queues' waits look on a timer: the flush reaches them too.
    for (let q = 0; q < MAX_PARKED + 4; q++) dev.xmit(oneFrame(pool), { cpu: q, flush: true });
    const woke = await before(Promise.all(waits), 5_000, "every queue's waiter waking");
    assert.deepEqual(woke, waits.map(() => true));
  }),
);
