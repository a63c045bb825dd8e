/// <reference lib="deno.worker" />
/**
 * A producer for the fault tests: allocates and transmits bulks until the
 * main thread sets the stop word or the device goes away. Publishes live
 * counters in a SharedArrayBuffer so the main thread can watch progress and
 * see what the Worker held at any instant, even after terminating it:
 *
 *   ctl[STOP]  set by the main thread to stop
 *   ctl[SENT]  frames accepted by xmit
 *   ctl[DROP]  frames xmit did not accept (returned to the pool, counted)
 *   ctl[LOOPS] bulks attempted (alloc + xmit)
 *   ctl[HELD]  frames allocated and not yet handed to xmit
 *   ctl[ERR]   0, or the error that ended the loop: 1 ENXIO, 2 ECLOSED, 3 other
 *   ctl[DONE]  1 when the loop has ended
 */
import { BulktapError, Device, FramePool } from "../../mod.ts";

export const STOP = 0, SENT = 1, DROP = 2, LOOPS = 3, HELD = 4, ERR = 5, DONE = 6;

export interface FaultProducerJob {
  pool: number;
  device: number;
  cpu: number;
  bulk: number;
  ctl: SharedArrayBuffer;
}

self.onmessage = (e: MessageEvent<FaultProducerJob>) => {
  const job = e.data;
  const ctl = new Int32Array(job.ctl);
  const pool = FramePool.attach(job.pool);
  const dev = Device.attach(job.device, job.cpu);
  const refs = new Uint32Array(job.bulk);
  const opts = { count: 0, flush: true };
  let message = "";
  try {
    while (Atomics.load(ctl, STOP) === 0) {
      const n = pool.alloc(refs, job.bulk);
      Atomics.store(ctl, HELD, n);
      Atomics.add(ctl, LOOPS, 1);
      if (n === 0) continue; // pool empty: readers hold the frames; retry
      for (let i = 0; i < n; i++) pool.setLength(refs[i], 64);
      opts.count = n;
      let ok: number;
      try {
        ok = dev.xmit(refs, opts);
      } finally {
        // xmit took every frame, whether it returned or threw ENXIO.
        Atomics.store(ctl, HELD, 0);
      }
      Atomics.add(ctl, SENT, ok);
      Atomics.add(ctl, DROP, n - ok);
    }
  } catch (err) {
    const code = err instanceof BulktapError ? err.code : "";
    Atomics.store(ctl, ERR, code === "ENXIO" ? 1 : code === "ECLOSED" ? 2 : 3);
    message = String(err);
  }
  Atomics.store(ctl, DONE, 1);
  self.postMessage({ message });
};
