/// <reference lib="deno.worker" />
/**
 * Benchmark producer: for `durationMs`, allocate frames in bulks of `bulk`
 * and transmit them either as one xmit per bulk ("bulk") or one xmitOne per
 * frame ("single"). Allocation is bulk in both modes, so the comparison
 * isolates the transmit path.
 */
import { Device, FramePool } from "../../mod.ts";

export interface ApiProducerJob {
  pool: number;
  device: number;
  cpu: number;
  bulk: number;
  mode: "bulk" | "single";
  frameSize: number;
  durationMs: number;
  start: number; // Date.now() at which to start, so producers start together
}

self.onmessage = async (e: MessageEvent<ApiProducerJob>) => {
  const j = e.data;
  const pool = FramePool.attach(j.pool);
  const dev = Device.attach(j.device, j.cpu);
  const refs = new Uint32Array(j.bulk);
  const opts = { count: 0, flush: true };
  const one = { flush: false };
  const last = { flush: true };
  while (Date.now() < j.start) await new Promise((r) => setTimeout(r, 1));
  let offered = 0, accepted = 0, starved = 0;
  const t0 = performance.now();
  const end = t0 + j.durationMs;
  let now = t0;
  while (now < end) {
    // Check the clock once per 64 bulks: performance.now() is not free.
    for (let k = 0; k < 64; k++) {
      const n = pool.alloc(refs, j.bulk);
      if (n === 0) {
        starved++;
        continue;
      }
      for (let i = 0; i < n; i++) pool.setLength(refs[i], j.frameSize);
      offered += n;
      if (j.mode === "bulk") {
        opts.count = n;
        accepted += dev.xmit(refs, opts);
      } else {
        for (let i = 0; i < n; i++) {
          if (dev.xmitOne(refs[i], i === n - 1 ? last : one)) accepted++;
        }
      }
    }
    now = performance.now();
  }
  self.postMessage({ offered, accepted, starved, elapsedMs: now - t0 });
};
