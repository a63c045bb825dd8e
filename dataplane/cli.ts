/**
 * The command line: `deno run -A mod.ts [command] [flags]`.
 *
 * @module
 */
import { parseArgs } from "parse-args";
import { Device } from "./device.ts";
import { BulktapError } from "./errors.ts";
import { FramePool } from "./pool.ts";

const HELP = `bulktap: a user-space packet dataplane for Deno

usage:
  deno run -A mod.ts [flags]         demo: bulk transmit into an in-memory device
  deno run -A mod.ts bench [flags]   benchmarks: bulk vs single, side by side
  deno run -A mod.ts forward A B     forward between TAP devices A and B (--help)

flags (demo):
  --frames N        frames to transmit (default 1000000)
  --bulk N          frames per xmit call, 1..256 (default 16)
  --queues N        device queues, 1..256 (default 2)
  --frame-size N    bytes of data per frame (default 64)
  --help            this text
`;

/** Run the command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "forward") return await (await import("./forward.ts")).forwardMain(args.slice(1));
  if (args[0] === "bench") {
    const { benchMain } = await import("../bench/main.ts");
    return await benchMain(args.slice(1));
  }
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        frames: { type: "string" },
        bulk: { type: "string" },
        queues: { type: "string" },
        "frame-size": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`bulktap: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  try {
    const frames = intFlag("frames", values.frames, 1_000_000, 1, 1e12);
    const bulk = intFlag("bulk", values.bulk, 16, 1, 256);
    const queues = intFlag("queues", values.queues, 2, 1, 256);
    const frameSize = intFlag("frame-size", values["frame-size"], 64, 14, 1792);
    await demo({ frames, bulk, queues, frameSize });
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`bulktap: ${e.message}`);
      return 2;
    }
    if (e instanceof BulktapError) {
      console.error(`bulktap: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

class UsageError extends Error {}

function intFlag(
  name: string,
  raw: string | undefined,
  def: number,
  min: number,
  max: number,
): number {
  if (raw === undefined) return def;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`--${name}=${raw} is not an integer in ${min}..${max}`);
  }
  return v;
}

interface DemoOptions {
  frames: number;
  bulk: number;
  queues: number;
  frameSize: number;
}

async function demo(o: DemoOptions): Promise<void> {
  using pool = new FramePool({ frames: 8192 });
  const dev = new Device({ pool, queues: o.queues, ringSize: 1024 });
  let received = 0;
  const readers = Array.from({ length: o.queues }, async (_, q) => {
    for await (const batch of dev.queue(q).frames({ batchSize: 256 })) received += batch.count;
  });

  const refs = new Uint32Array(o.bulk);
  const opts = { count: 0, flush: true, cpu: 0 };
  let sent = 0, dropped = 0, cpu = 0;
  const t0 = performance.now();
  while (sent + dropped < o.frames) {
    const n = pool.alloc(refs, Math.min(o.bulk, o.frames - sent - dropped));
    if (n === 0) {
      await new Promise((r) => setTimeout(r, 0)); // let readers return frames
      continue;
    }
    for (let i = 0; i < n; i++) pool.setLength(refs[i], o.frameSize);
    opts.count = n;
    opts.cpu = cpu++; // spread bulks over the queues, as CPUs would
    const ok = dev.xmit(refs, opts);
    sent += ok;
    dropped += n - ok;
    if ((sent & 0xffff) < o.bulk) await new Promise((r) => setTimeout(r, 0));
  }
  const txMs = performance.now() - t0;
  while (received < sent) await new Promise((r) => setTimeout(r, 1));
  const stats = dev.stats();
  const returned = dev.close();
  await Promise.all(readers);

  const mpps = sent / txMs / 1000;
  console.log(
    `bulktap demo: ${o.frames} frames of ${o.frameSize} B, bulk ${o.bulk}, ` +
      `${o.queues} queues (in-memory device)`,
  );
  console.table({
    transmitted: stats.txPackets,
    dropped: stats.txDropped,
    received: received,
    "xmit calls (locks)": stats.xmitCalls,
    "wake-ups sent": stats.wakeupsSent,
    "wake-ups avoided": stats.wakeupsAvoided,
    "left in queues at close": returned,
  });
  console.log(
    `transmit rate: ${mpps.toFixed(2)} Mpps over ${txMs.toFixed(0)} ms ` +
      `(one producer and ${o.queues} readers on one JS thread)`,
  );
  const s = pool.stats();
  console.log(`pool: ${s.free} free of ${s.frames}, ${s.held} held, ${s.queued} queued`);
}
