/// <reference lib="deno.worker" />
/**
 * A queue reader: consumes batches until the device closes, checking that
 * each producer's frames arrive in order and at most once. Posts what it
 * saw, including a bitmap of (producer, seq) for the main thread to merge.
 */
import { Device, FramePool } from "../../mod.ts";

export interface ReaderJob {
  device: number;
  queue: number;
  producers: number;
  frames: number;
}

self.onmessage = async (e: MessageEvent<ReaderJob>) => {
  const job = e.data;
  const dev = Device.attach(job.device);
  const seen = new Uint8Array(job.producers * job.frames);
  const last = new Int32Array(job.producers).fill(-1);
  let received = 0, outOfOrder = 0, duplicates = 0, corrupt = 0;
  let pool: FramePool | undefined;
  for await (const batch of dev.queue(job.queue).frames({ batchSize: 256 })) {
    for (let i = 0; i < batch.count; i++) {
      const ref = batch.refs[i];
      pool ??= FramePool.of(ref);
      const off = pool.dataOffset(ref);
      const p = pool.view.getUint32(off, true);
      const s = pool.view.getUint32(off + 4, true);
      if (p >= job.producers || s >= job.frames || pool.length(ref) !== 64) {
        corrupt++;
        continue;
      }
      if (s <= last[p]) outOfOrder++;
      last[p] = s;
      if (seen[p * job.frames + s]++) duplicates++;
      received++;
    }
  }
  self.postMessage({ received, outOfOrder, duplicates, corrupt, seen }, [seen.buffer]);
};
