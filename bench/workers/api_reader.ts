/// <reference lib="deno.worker" />
/**
 * Benchmark reader: drain one queue in batches until the device closes, and
 * record the latency of the frames producers posted as samples (see
 * api_producer.ts): read time minus the producer's time, in an HDR
 * histogram sent back encoded.
 */
import { Device, encodeHistogram, newLatencyHistogram, nowNs } from "../../mod.ts";
import { pinThisThread } from "./pin.ts";

export interface ApiReaderJob {
  device: number;
  queue: number;
  /** CPU to pin this thread to (-1: not pinned). */
  pin: number;
  producers: number;
  samples: SharedArrayBuffer;
}

self.onmessage = async (e: MessageEvent<ApiReaderJob>) => {
  const j = e.data;
  const pinned = pinThisThread(j.pin);
  const dev = Device.attach(j.device);
  const box = new Int32Array(j.samples, 0, 8);
  const times = new Float64Array(j.samples, 64, 8);
  const hist = newLatencyHistogram();
  let received = 0;
  for await (const batch of dev.queue(j.queue).frames({ batchSize: 256 })) {
    received += batch.count;
    for (let p = 0; p < j.producers; p++) {
      const want = Atomics.load(box, p);
      if (want === -1) continue;
      const refs = batch.refs;
      for (let i = 0; i < batch.count; i++) {
        if ((refs[i] | 0) !== want) continue;
        const t = times[p];
        const now = nowNs();
        hist.recordValue(Math.max(1, now - t));
        Atomics.store(box, p, -1);
        break;
      }
    }
  }
  self.postMessage({ received, histogram: encodeHistogram(hist), pinned });
};
