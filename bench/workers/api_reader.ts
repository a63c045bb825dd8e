/// <reference lib="deno.worker" />
/** Benchmark reader: drain one queue in batches until the device closes. */
import { Device } from "../../mod.ts";

self.onmessage = async (e: MessageEvent<{ device: number; queue: number }>) => {
  const dev = Device.attach(e.data.device);
  let received = 0;
  for await (const batch of dev.queue(e.data.queue).frames({ batchSize: 256 })) {
    received += batch.count;
  }
  self.postMessage({ received });
};
