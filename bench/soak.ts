/**
 * Soak: producers and a reader at full rate for a fixed time, printing heap,
 * RSS and the pool's in-use count (held + queued) at intervals. Exits 1 if
 * the pool does not end whole or in-use ever exceeds what the ring and the
 * in-flight bulks can hold.
 *
 *   deno run -A bench/soak.ts --soak 60 [--producers 2] [--every 5]
 */
import { Device, FramePool } from "../dataplane/mod.ts";
import { intFlag, numFlag, scriptFlags } from "../dataplane/cli/flags.ts";

const { seconds, producers, every } = scriptFlags(
  "bench/soak.ts",
  "usage: deno run -A bench/soak.ts [--soak S] [--producers N] [--every S]\n" +
    "  --soak S        seconds to run (default 60)\n" +
    "  --producers N   producer Workers, 1..64 (default 2)\n" +
    "  --every S       seconds between samples (default 5)",
  { soak: "string", producers: "string", every: "string" },
  (v) => ({
    seconds: numFlag("soak", v.soak, 60, 0.001, 1e6),
    producers: intFlag("producers", v.producers, 2, 1, 64),
    every: numFlag("every", v.every, 5, 0.001, 1e6),
  }),
);
const RING = 1024, BULK = 16;
const STOP = 0, SENT = 1, DROP = 2;

const pool = new FramePool({ frames: 4096 });
const dev = new Device({ pool, queues: 1, ringSize: RING });
const url = (f: string) => new URL(`../test/workers/${f}`, import.meta.url);
const readerCtl = new Int32Array(new SharedArrayBuffer(8));
const reader = new Worker(url("fault_reader.ts"), { type: "module" });
const readerDone = new Promise((r) => (reader.onmessage = r));
reader.postMessage({ device: dev.handle, queue: 0, ctl: readerCtl.buffer });
const ps = Array.from({ length: producers }, (_, cpu) => {
  const ctl = new Int32Array(new SharedArrayBuffer(32));
  const w = new Worker(url("fault_producer.ts"), { type: "module" });
  const done = new Promise((r) => (w.onmessage = r));
  w.postMessage({ pool: pool.handle, device: dev.handle, cpu, bulk: BULK, ctl: ctl.buffer });
  return { w, ctl, done };
});

const mib = (b: number) => (b / 2 ** 20).toFixed(1);
let maxInUse = 0, last = 0;
const t0 = performance.now();
console.log(`soak: ${producers} producers + 1 reader, 1 queue of ${RING}, ${seconds} s`);
for (let t = every; t <= seconds; t += every) {
  await new Promise((r) => setTimeout(r, t0 + t * 1000 - performance.now()));
  const s = pool.stats();
  const m = Deno.memoryUsage();
  const sent = ps.reduce((a, p) => a + Atomics.load(p.ctl, SENT), 0);
  const drop = ps.reduce((a, p) => a + Atomics.load(p.ctl, DROP), 0);
  maxInUse = Math.max(maxInUse, s.held + s.queued);
  console.log(
    `t=${String(t).padStart(4)} s  sent ${((sent - last) / every / 1e6).toFixed(2)} Mpps  ` +
      `dropped ${drop}  in-use ${s.held + s.queued}  heap ${mib(m.heapUsed)} MiB  ` +
      `rss ${mib(m.rss)} MiB`,
  );
  last = sent;
}
for (const p of ps) Atomics.store(p.ctl, STOP, 1);
await Promise.all(ps.map((p) => p.done));
Atomics.store(readerCtl, 1, 1);
await readerDone;
for (const p of ps) p.w.terminate();
reader.terminate();
const drained = dev.close();
const s = pool.stats();
const bound = RING + 64 + producers * BULK;
console.log(
  `end: drained ${drained} at close, pool free ${s.free}/${s.frames}, ` +
    `in-use peak ${maxInUse} (bound ${bound})`,
);
pool.close();
Deno.exit(s.free === s.frames && maxInUse <= bound ? 0 : 1);
