/// <reference lib="deno.worker" />
/**
 * Benchmark producer: for `durationMs`, allocate frames in chunks and
 * transmit them either as one xmit per chunk of `bulk` ("bulk") or one
 * xmitOne per frame from chunks of 16 ("single"). Allocation is bulk in both
 * modes, so the comparison isolates the transmit path.
 *
 * Latency sampling: once at least 1024 frames have gone by and the reader
 * took the previous sample, the first frame of a chunk is posted in this
 * producer's mailbox (`samples`: its ref, and the clock just before its
 * xmit). Readers look for posted refs among the refs they already hold, so
 * no frame is touched and one clock read per sample is taken on each side.
 */
import { Device, FramePool, nowNs } from "../../mod.ts";
import { pinThisThread } from "./pin.ts";

export interface ApiProducerJob {
  pool: number;
  device: number;
  cpu: number;
  /** CPU to pin this thread to (-1: not pinned). */
  pin: number;
  bulk: number;
  mode: "bulk" | "single";
  frameSize: number;
  durationMs: number;
  start: number; // Date.now() at which to start, so producers start together
  /** Int32 refs per producer (-1 = empty), then Float64 times (see api_bench.ts). */
  samples: SharedArrayBuffer;
}

/** Frames per allocation in single mode (ring_bench.c and ring_peer.c use the same). */
export const SINGLE_CHUNK = 16;
/** Frames between latency samples. */
export const SAMPLE_EVERY = 1024;

self.onmessage = async (e: MessageEvent<ApiProducerJob>) => {
  const j = e.data;
  const pinned = pinThisThread(j.pin);
  const pool = FramePool.attach(j.pool);
  const dev = Device.attach(j.device, j.cpu);
  const chunk = j.mode === "bulk" ? j.bulk : SINGLE_CHUNK;
  const refs = new Uint32Array(chunk);
  const opts = { count: 0, flush: true };
  const one = { flush: false };
  const last = { flush: true };
  const box = new Int32Array(j.samples, 0, 8);
  const times = new Float64Array(j.samples, 64, 8);
  while (Date.now() < j.start) await new Promise((r) => setTimeout(r, 1));
  let offered = 0, accepted = 0, starved = 0, since = 0;
  const t0 = performance.now();
  const end = t0 + j.durationMs;
  let now = t0;
  while (now < end) {
    // Check the clock once per 64 chunks: performance.now() is not free.
    for (let k = 0; k < 64; k++) {
      const n = pool.alloc(refs, chunk);
      if (n === 0) {
        starved++;
        continue;
      }
      pool.setLengths(refs, n, j.frameSize);
      offered += n;
      since += n;
      let sampled = false;
      if (since >= SAMPLE_EVERY && Atomics.load(box, j.cpu) === -1) {
        // The time first, then the ref: the reader reads the ref, then the time.
        times[j.cpu] = nowNs();
        Atomics.store(box, j.cpu, refs[0] | 0);
        since = 0;
        sampled = true;
      }
      let first = 0;
      if (j.mode === "bulk") {
        opts.count = n;
        first = dev.xmit(refs, opts);
        accepted += first;
      } else {
        for (let i = 0; i < n; i++) {
          const ok = dev.xmitOne(refs[i], i === n - 1 ? last : one);
          if (ok) accepted++;
          if (i === 0) first = ok ? 1 : 0;
        }
      }
      // A refused sample is back in the pool and never read: withdraw it.
      if (sampled && first === 0) Atomics.store(box, j.cpu, -1);
    }
    now = performance.now();
  }
  self.postMessage({ offered, accepted, starved, elapsedMs: now - t0, pinned });
};
