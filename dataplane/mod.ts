/**
 * bulktap: a user-space packet dataplane for Deno. Frame pools, multi-queue
 * devices with bulk transmit (one lock per bulk), readers woken only when
 * they sleep, TAP devices, packet programs and header helpers, and typed
 * errors. The C library builds itself into a cache on first use.
 *
 * This is the package's main entry (`"."`); it holds no command line and
 * no benchmark. Latency histograms (`./latency`, the one entry that loads
 * `hdr-histogram-js`) and the multi-Worker `./scheduler` are separate
 * entries; `./headers`, `./offload`, `./programs` and `./tap` are the same
 * modules this one re-exports, one concept each.
 *
 * @example
 * ```ts
 * import { Device, FramePool } from "./mod.ts";
 * using pool = new FramePool({ frames: 1024 });
 * using dev = new Device({ pool, queues: 2 });
 * const refs = new Uint32Array(16);
 * const n = pool.alloc(refs);
 * for (let i = 0; i < n; i++) pool.setLength(refs[i], 64);
 * console.log(dev.xmit(refs, { count: n, flush: true })); // 16
 * ```
 *
 * @module
 */
export { BulktapError, type BulktapErrorCode } from "./errors.ts";
export {
  describeRef,
  FramePool,
  type FramePoolOptions,
  freeFrames,
  type PoolStats,
} from "./pool.ts";
export { Batch } from "./batch.ts";
export { DeviceQueue, type FramesOptions, type QueueOwner, type WaitOptions } from "./queue.ts";
export {
  Device,
  type DeviceOptions,
  type DeviceStats,
  MAX_BULK,
  type XmitOptions,
} from "./device.ts";
export { nowNs } from "./clock.ts";
export {
  type ForwardOptions,
  TAP_MAX_MTU,
  TAP_MAX_QUEUES,
  TAP_OFFLOADS,
  TapDevice,
  type TapDeviceOptions,
  tapFrameSize,
  type TapFramesOptions,
  tapHasVnetHdr,
  tapNameProblem,
  type TapOffload,
  type TapStats,
  type TapWaitOptions,
} from "./tap.ts";
export {
  MAX_REDIRECT_INDEX,
  redirect,
  Verdict,
  type VerdictAction,
  verdictAction,
  verdictTarget,
} from "./verdict.ts";
export type { PacketBatch, Program, ProgramSpec } from "./program.ts";
export {
  drop,
  forward,
  L2Switch,
  type L2SwitchEntry,
  type L2SwitchOptions,
  pair,
  programFromSpec,
  reflect,
} from "./programs.ts";
export * from "./headers.ts";
export { GsoType, VnetFlags } from "./offload.ts";
export {
  BulkQueues,
  type BulkQueuesOptions,
  MAX_TARGETS,
  type StageMode,
  TargetCounter,
  type XmitTarget,
} from "./devmap.ts";
export {
  GeneratorSource,
  type GeneratorSpec,
  QueueSource,
  type QueueSourceSpec,
  registerSourceKind,
  type Source,
  type SourceFactory,
  sourceFromSpec,
  type SourceSpec,
} from "./source.ts";
export { TapSource, type TapSourceSpec } from "./tap_source.ts";
