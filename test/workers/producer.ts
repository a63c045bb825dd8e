/// <reference lib="deno.worker" />
/**
 * A producer "CPU": allocates frames in bulks, writes (producer id,
 * sequence number) into each, and transmits them into a shared device.
 * Posts {sent, dropped} when done.
 */
import { Device, FramePool } from "../../mod.ts";

export interface ProducerJob {
  pool: number;
  device: number;
  producer: number;
  cpu: number;
  frames: number;
  bulk: number;
}

self.onmessage = async (e: MessageEvent<ProducerJob>) => {
  const job = e.data;
  const pool = FramePool.attach(job.pool);
  const dev = Device.attach(job.device, job.cpu);
  const refs = new Uint32Array(job.bulk);
  const opts = { count: 0, flush: true };
  let seq = 0, sent = 0, dropped = 0, starved = 0;
  while (seq < job.frames) {
    const n = pool.alloc(refs, Math.min(job.bulk, job.frames - seq));
    if (n === 0) {
      // Readers have every frame: let them return some.
      if (++starved % 64 === 0) await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    for (let i = 0; i < n; i++) {
      const off = pool.dataOffset(refs[i]);
      pool.view.setUint32(off, job.producer, true);
      pool.view.setUint32(off + 4, seq++, true);
      pool.setLength(refs[i], 64);
    }
    opts.count = n;
    const ok = dev.xmit(refs, opts);
    sent += ok;
    dropped += n - ok;
    // Backpressure: a full ring means the reader is behind (or waking up).
    if (ok < n) await new Promise((r) => setTimeout(r, 0));
  }
  self.postMessage({ sent, dropped });
};
