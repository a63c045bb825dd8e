/// <reference lib="deno.worker" />
/**
 * Producer of the plain-TypeScript peer (bench/plain_dataplane.ts): the
 * same work per frame as api_producer.ts (allocate chunks, set each
 * frame's length, post latency samples, transmit one bulk per chunk or one
 * frame per call with a flush at the end of the chunk), on the hand-written
 * dataplane instead of bulktap.
 */
import { nowNs } from "../../dataplane/clock.ts";
import { FRAME_STRIDE, LEN_OFFSET, PlainDataplane, type PlainShared } from "../plain_dataplane.ts";
import { pinThisThread } from "./pin.ts";

// As api_producer.ts (not imported: that module installs its own onmessage).
const SINGLE_CHUNK = 16;
const SAMPLE_EVERY = 1024;

export interface PlainProducerJob {
  shared: PlainShared;
  /** Producer index: its mailbox, and its queue (index % queues). */
  id: number;
  /** CPU to pin this thread to (-1: not pinned). */
  pin: number;
  bulk: number;
  mode: "bulk" | "single";
  frameSize: number;
  durationMs: number;
  start: number;
  samples: SharedArrayBuffer;
}

self.onmessage = async (e: MessageEvent<PlainProducerJob>) => {
  const j = e.data;
  const pinned = pinThisThread(j.pin);
  const dp = new PlainDataplane(j.shared);
  const q = j.id % j.shared.queues;
  const words = dp.words;
  const stride = FRAME_STRIDE >>> 2, lenAt = LEN_OFFSET >>> 2;
  const chunk = j.mode === "bulk" ? j.bulk : SINGLE_CHUNK;
  const refs = new Int32Array(chunk);
  const box = new Int32Array(j.samples, 0, 8);
  const times = new Float64Array(j.samples, 64, 8);
  const len = j.frameSize, bulk = j.mode === "bulk", id = j.id;
  while (Date.now() < j.start) await new Promise((r) => setTimeout(r, 1));
  let offered = 0, accepted = 0, starved = 0, since = 0;
  const t0 = performance.now();
  const end = t0 + j.durationMs;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 64; k++) {
      const n = dp.alloc(refs, chunk);
      if (n === 0) {
        starved++;
        continue;
      }
      for (let i = 0; i < n; i++) words[refs[i] * stride + lenAt] = len;
      offered += n;
      since += n;
      let sampled = false;
      if (since >= SAMPLE_EVERY && Atomics.load(box, id) === -1) {
        times[id] = nowNs();
        Atomics.store(box, id, refs[0]);
        since = 0;
        sampled = true;
      }
      let first = 0;
      if (bulk) {
        first = dp.xmit(q, refs, 0, n, true);
        accepted += first;
      } else {
        for (let i = 0; i < n; i++) {
          const ok = dp.xmit(q, refs, i, 1, i === n - 1);
          accepted += ok;
          if (i === 0) first = ok;
        }
      }
      if (sampled && first === 0) Atomics.store(box, id, -1);
    }
    now = performance.now();
  }
  self.postMessage({
    offered,
    accepted,
    starved,
    elapsedMs: now - t0,
    locks: dp.locks,
    pinned,
  });
};
