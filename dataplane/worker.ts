/**
 * The Worker side of the scheduler: one poll loop per Worker ("CPU").
 * Started by {@linkcode Scheduler}; not meant to be imported directly.
 *
 * Loop: run cycles while there is work; after `busyPollUs` without work,
 * sleep until a queue the loop reads signals (eventfd, via the nonblocking
 * FFI wait) or a rate-limited generator is due. Stop is a word in shared
 * memory, checked every cycle: a stopping Worker flushes its stages, then
 * keeps reading its queues until every Worker has flushed, reads them one
 * last time, and reports.
 *
 * Latency: each reader's histogram is a bucket array in shared memory that
 * the C library adds to as the reader consumes frames (see
 * `dataplane/latency.ts`). The Worker hands the arrays to the main thread
 * once, in its "ready" message; the main thread builds HDR histograms from
 * them whenever it wants percentiles, so the hot loop never encodes or
 * posts a histogram. Histograms are per Worker and per target: a reader
 * without a label of its own is labelled `t<i>/q<n>`, queue n of
 * device-map target i (`dev<handle>/q<n>` if its device is not in the
 * map); PASS frames are labelled `pass`. With target latency on, each
 * device-map target i has one more (`t<i>`): receive (or creation) time to
 * the transmit of its stage, recorded the same way, one call per stage.
 *
 * @module
 */
import { queueWaitSource } from "./queue.ts";
import "./tap_source.ts"; // registers the "tap" source kind in this Worker
import { waitShared, type WaitSource } from "./waiter.ts";
import { library } from "../ffi/lib.ts";
import { BulktapError } from "./errors.ts";
import {
  counterBlock,
  INVALID_REASONS,
  LoopCounter,
  PollLoop,
  type ReaderSpec,
} from "./poll_loop.ts";
import { programFromSpec } from "./programs.ts";
import { type Source, sourceFromSpec } from "./source.ts";
import type { LatencyShare } from "./latency.ts";
import { Ctrl, type WorkerConfig, type WorkerMessage } from "./worker_protocol.ts";

/** This Worker's own scope, typed here (a published module sets no `lib`). */
const scope = globalThis as unknown as {
  postMessage(message: WorkerMessage): void;
  onmessage: ((e: MessageEvent<{ type: "start"; config: WorkerConfig }>) => void) | null;
};

// A reader queue's sleep: shared with every other waiter of the queue in
// this Worker, and bounded with them (waiter.ts).
class QueueWaiter {
  #source: WaitSource;
  constructor(readonly device: number, readonly queue: number) {
    this.#source = queueWaitSource(device, queue);
  }
  wait(ms: number): Promise<unknown> {
    return waitShared(this.#source, ms);
  }
}

/** A reader's histogram label: its own, else by device-map target and queue. */
function readerLabel(r: ReaderSpec, targets: readonly number[]): string {
  if (r.label !== undefined) return r.label;
  const t = targets.indexOf(r.device);
  return t >= 0 ? `t${t}/q${r.queue}` : `dev${r.device}/q${r.queue}`;
}

const MAX_SLEEP_MS = 50;

async function run(cfg: WorkerConfig): Promise<void> {
  const lib = library();
  let pinned = false;
  if (cfg.pin) {
    const r = lib.bt_pin_thread(cfg.cpu);
    if (r < 0) {
      throw new BulktapError(
        "EINVAL",
        `cannot pin Worker ${cfg.cpu} to CPU ${cfg.cpu} (errno ${-r})`,
      );
    }
    pinned = true;
  }
  for (const m of cfg.modules) await import(m);
  const program = await programFromSpec(cfg.program);
  const sources: Source[] = cfg.sources.map((s) => sourceFromSpec(s, cfg.cpu));
  const ctrl = new Int32Array(cfg.control);
  const counters = counterBlock(cfg.counters, cfg.cpu);
  const loop = new PollLoop({
    sources,
    program,
    targets: cfg.targets.map((handle) => ({ handle })),
    readers: cfg.readers.map((r) => ({ ...r, label: readerLabel(r, cfg.targets) })),
    cpu: cfg.cpu,
    bulk: cfg.bulk,
    stageMode: cfg.stageMode,
    budget: cfg.budget,
    deadlineNs: cfg.deadlineNs,
    latency: cfg.latency,
    targetLatency: cfg.targetLatency,
    counters,
    pass: cfg.pass === undefined ? undefined : { handle: cfg.pass },
    onProgramError: cfg.onProgramError,
  });
  let errorReported = false;
  let invalidSaid = 0; // bits of INVALID_REASONS already reported
  const readerWaits = loop.readerQueues.map((r) => new QueueWaiter(r.device, r.queue));
  const latency: LatencyShare[] = [...loop.latency].map(([label, rec]) => ({
    label,
    buffer: rec.shared,
  }));
  const targetLatency: LatencyShare[] = loop.targetLatency.map((rec, t) => ({
    label: `t${t}`,
    buffer: rec.shared,
  }));
  scope.postMessage(
    { type: "ready", cpu: cfg.cpu, pinned, latency, targetLatency } satisfies WorkerMessage,
  );

  // The first invalid verdict of each reason, once per Worker (the loop
  // counts every frame).
  const reportInvalid = () => {
    for (const v of loop.invalidVerdicts) {
      const bit = 1 << INVALID_REASONS.findIndex((r) => r.reason === v.reason);
      if (invalidSaid & bit) continue;
      invalidSaid |= bit;
      scope.postMessage(
        {
          type: "invalidVerdict",
          cpu: cfg.cpu,
          reason: v.reason,
          message: v.message,
        } satisfies WorkerMessage,
      );
    }
  };
  const now = () => lib.bt_now_ns_f64();
  let lastWork = now();
  let lastStatus = lastWork;
  const statusNs = cfg.statusIntervalMs * 1e6;
  let stopping = false;
  try {
    for (;;) {
      if (!stopping && Atomics.load(ctrl, Ctrl.STOP) !== 0) {
        // Phase 1: no more frames from sources; staged frames out.
        stopping = true;
        for (const s of sources) s.close();
        Atomics.add(ctrl, Ctrl.FLUSHED, 1);
      }
      let work: number;
      if (stopping) {
        // Phase 2: keep consuming until every Worker has flushed.
        work = loop.readOnly();
        if (Atomics.load(ctrl, Ctrl.FLUSHED) >= cfg.cpus) break;
      } else {
        work = loop.cycle();
        if (!errorReported && loop.programError !== undefined) {
          // Once per Worker, not per frame: the loop counts the rest.
          errorReported = true;
          const e = loop.programError;
          scope.postMessage(
            {
              type: "programError",
              cpu: cfg.cpu,
              message: e instanceof Error ? e.message : String(e),
            } satisfies WorkerMessage,
          );
        }
        if (loop.invalidSeen !== invalidSaid) reportInvalid();
      }
      const t = now();
      if (t - lastStatus >= statusNs) {
        lastStatus = t;
        // Let the event loop breathe (resolve finished waits). Histograms
        // need nothing here: the main thread reads them from shared memory.
        await new Promise((r) => setTimeout(r, 0));
      }
      if (work > 0) {
        lastWork = t;
        continue;
      }
      if (t - lastWork < cfg.busyPollNs) continue;
      // Idle: sleep until a queue signals or a generator is due.
      let sleepNs = MAX_SLEEP_MS * 1e6;
      if (!stopping) {
        for (const s of sources) {
          const at = s.readyAtNs(t);
          if (at === 0) sleepNs = 0;
          else if (at !== Infinity) sleepNs = Math.min(sleepNs, at - t);
        }
      } else {
        sleepNs = 1e6;
      }
      if (sleepNs <= 0) continue;
      const ms = Math.max(1, Math.ceil(sleepNs / 1e6));
      const waits: Promise<unknown>[] = [];
      if (!stopping) { for (const s of sources) if (s.wait) waits.push(s.wait(ms)); }
      for (const w of readerWaits) waits.push(w.wait(ms));
      counters[LoopCounter.SLEEPS]++;
      if (waits.length === 0 || sleepNs < 1e6) {
        await new Promise((r) => setTimeout(r, Math.floor(sleepNs / 1e6)));
      } else {
        await Promise.race(waits);
      }
      lastWork = now() - cfg.busyPollNs; // poll once, then sleep again if still idle
    }
  } catch (e) {
    // Flush what is staged and close the sources, then report the error.
    loop.close();
    throw e;
  }
  loop.close();
  // After this message the main thread's reads of the latency buckets are
  // exact: every add above happens before it (postMessage synchronises).
  scope.postMessage(
    {
      type: "done",
      cpu: cfg.cpu,
      targets: Array.from(loop.queues.counters),
      unstamped: [...loop.latency.values()].reduce((a, r) => a + r.unstamped, 0),
    } satisfies WorkerMessage,
  );
}

scope.onmessage = (e: MessageEvent<{ type: "start"; config: WorkerConfig }>) => {
  if (e.data.type !== "start") return;
  run(e.data.config).catch((err) => {
    scope.postMessage(
      {
        type: "error",
        cpu: e.data.config.cpu,
        code: err instanceof BulktapError ? err.code : "EIO",
        message: err instanceof Error ? err.message : String(err),
      } satisfies WorkerMessage,
    );
  });
};
// Only now can a "start" be received: a message that arrives while this
// module (or one it imports, e.g. a library loaded over HTTP fetching its C
// sources) is still evaluating would be lost. Nothing imports this module:
// it is only ever a Worker's main module (the protocol lives in
// worker_protocol.ts), so this message goes to the scheduler.
scope.postMessage({ type: "loaded" });
