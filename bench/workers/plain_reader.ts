/// <reference lib="deno.worker" />
/**
 * Reader of the plain-TypeScript peer (bench/plain_dataplane.ts): the same
 * work per batch as api_reader.ts (up to 256 frames per read, latency
 * samples looked up among the refs held, every frame returned to the pool
 * in one call per batch), waiting with a short spin, then the doorbell.
 */
import { encodeHistogram, newLatencyHistogram } from "../../dataplane/latency.ts";
import { nowNs } from "../../dataplane/clock.ts";
import { PlainDataplane, type PlainShared } from "../plain_dataplane.ts";
import { pinThisThread } from "./pin.ts";

export interface PlainReaderJob {
  shared: PlainShared;
  queue: number;
  /** CPU to pin this thread to (-1: not pinned). */
  pin: number;
  producers: number;
  samples: SharedArrayBuffer;
}

/** Looks at the ring before sleeping (a few microseconds). */
export const READER_SPINS = 2000;

self.onmessage = (e: MessageEvent<PlainReaderJob>) => {
  const j = e.data;
  const pinned = pinThisThread(j.pin);
  const dp = new PlainDataplane(j.shared);
  const box = new Int32Array(j.samples, 0, 8);
  const times = new Float64Array(j.samples, 64, 8);
  const hist = newLatencyHistogram();
  const refs = new Int32Array(256);
  const q = j.queue;
  let received = 0;
  for (;;) {
    const n = dp.read(q, refs, 256);
    if (n === 0) {
      if (!dp.wait(q, READER_SPINS, 250)) break;
      continue;
    }
    received += n;
    for (let p = 0; p < j.producers; p++) {
      const want = Atomics.load(box, p);
      if (want === -1) continue;
      for (let i = 0; i < n; i++) {
        if (refs[i] !== want) continue;
        hist.recordValue(Math.max(1, nowNs() - times[p]));
        Atomics.store(box, p, -1);
        break;
      }
    }
    dp.free(refs, 0, n);
  }
  self.postMessage({ received, histogram: encodeHistogram(hist), pinned });
};
