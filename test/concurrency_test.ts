import assert from "assert";
import { Device, FramePool } from "../mod.ts";
import { accounted, eventually } from "./helpers.ts";

interface Result {
  sent: number;
  dropped: number;
}
interface ReaderResult {
  received: number;
  outOfOrder: number;
  duplicates: number;
  corrupt: number;
  seen: Uint8Array;
}

function run<T>(file: string, job: unknown): Promise<T> {
  const w = new Worker(new URL(`./workers/${file}`, import.meta.url), { type: "module" });
  return new Promise<T>((resolve, reject) => {
    w.onmessage = (e) => {
      resolve(e.data as T);
      w.terminate();
    };
    w.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`${file}: ${e.message}`));
      w.terminate();
    };
    w.postMessage(job);
  });
}

const FRAMES = 200_000;

for (const producers of [2, 4]) {
  for (const queues of [1, 2]) {
    Deno.test(
      `concurrency: ${producers} Workers x ${FRAMES} frames into ${queues} queue(s): ` +
        "each delivered once or counted as dropped, in order per producer",
      accounted(async () => {
        const pool = new FramePool({ frames: 8192 });
        const dev = new Device({ pool, queues, ringSize: 1024 });
        const readers = Array.from(
          { length: queues },
          (_, queue) =>
            run<ReaderResult>("reader.ts", {
              device: dev.handle,
              queue,
              producers,
              frames: FRAMES,
            }),
        );
        const results = await Promise.all(
          Array.from({ length: producers }, (_, p) =>
            run<Result>("producer.ts", {
              pool: pool.handle,
              device: dev.handle,
              producer: p,
              cpu: p,
              frames: FRAMES,
              bulk: 16,
            })),
        );
        const sent = results.reduce((a, r) => a + r.sent, 0);
        const dropped = results.reduce((a, r) => a + r.dropped, 0);
        await eventually(() => dev.stats().rxPackets === sent, 20_000, "readers to drain");
        const stats = dev.stats();
        assert.equal(dev.close(), 0, "nothing left queued");
        const seen = await Promise.all(readers);

        assert.equal(sent + dropped, producers * FRAMES, "every frame sent or dropped");
        assert.equal(stats.txPackets, sent);
        assert.equal(stats.txDropped, dropped, "library drop count matches the producers'");
        const received = seen.reduce((a, r) => a + r.received, 0);
        assert.equal(received, sent, "every accepted frame was delivered");
        for (const r of seen) {
          assert.equal(r.duplicates, 0, "no frame delivered twice within a queue");
          assert.equal(r.outOfOrder, 0, "each producer's frames in order within a queue");
          assert.equal(r.corrupt, 0, "no frame with foreign contents");
        }
        // Across queues too: merge the bitmaps.
        const all = new Uint8Array(producers * FRAMES);
        for (const r of seen) {
          for (let i = 0; i < all.length; i++) all[i] += r.seen[i];
        }
        assert.ok(all.every((v) => v <= 1), "no frame delivered by two queues");
        console.log(
          `  delivered ${sent}, dropped ${dropped} (ring full), wake-ups sent ` +
            `${stats.wakeupsSent}, avoided ${stats.wakeupsAvoided}`,
        );
        const s = pool.stats();
        assert.equal(s.free, s.frames, "pool whole");
        pool.close();
      }),
    );
  }
}
