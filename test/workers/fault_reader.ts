/// <reference lib="deno.worker" />
/**
 * A reader for the fault tests: drains one queue in batches, counting frames
 * in ctl[0], until the device closes, ctl[1] (stop) is set (checked
 * at least every 20 ms), or it has read
 * `stopAfter` frames. It then leaves: its last batch goes back to the pool
 * and whatever is still queued stays queued. Posts how many it read.
 */
import { Device } from "../../mod.ts";

export interface FaultReaderJob {
  device: number;
  queue: number;
  stopAfter?: number;
  ctl: SharedArrayBuffer;
}

self.onmessage = async (e: MessageEvent<FaultReaderJob>) => {
  const job = e.data;
  const ctl = new Int32Array(job.ctl);
  const dev = Device.attach(job.device);
  const limit = job.stopAfter ?? Infinity;
  let received = 0;
  // The stop word is watched off the read loop, so an idle reader stops too.
  const stop = new AbortController();
  const watch = setInterval(() => {
    if (Atomics.load(ctl, 1) !== 0) stop.abort();
  }, 5);
  const frames = dev.queue(job.queue).frames({ batchSize: 64, sleepMs: 20, signal: stop.signal });
  for await (const batch of frames) {
    received += batch.count;
    Atomics.store(ctl, 0, received);
    if (received >= limit || Atomics.load(ctl, 1) !== 0) break;
  }
  clearInterval(watch);
  self.postMessage({ received });
};
