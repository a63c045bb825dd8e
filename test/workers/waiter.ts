/// <reference lib="deno.worker" />
/**
 * A queue waiter: waits once on a queue of an attached device and posts
 * whether frames came (true) or the timeout passed (false).
 */
import { Device } from "../../mod.ts";

export interface WaiterJob {
  device: number;
  queue: number;
  timeoutMs: number;
}

self.onmessage = async (e: MessageEvent<WaiterJob>) => {
  const dev = Device.attach(e.data.device);
  self.postMessage(await dev.queue(e.data.queue).wait(e.data.timeoutMs));
};
