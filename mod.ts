/**
 * bulktap: a user-space packet dataplane for Deno. Frame pools, multi-queue
 * devices with bulk transmit (one lock per bulk), readers woken only when
 * they sleep, and typed errors.
 *
 * Run `deno run -A mod.ts --help` for the command line.
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
export { BulktapError, type BulktapErrorCode } from "./dataplane/errors.ts";
export {
  describeRef,
  FramePool,
  type FramePoolOptions,
  FrameState,
  freeFrames,
  META,
  type PoolStats,
} from "./dataplane/pool.ts";
export { Batch } from "./dataplane/batch.ts";
export { DeviceQueue, type FramesOptions, type WaitOptions } from "./dataplane/queue.ts";
export {
  Device,
  type DeviceOptions,
  type DeviceStats,
  MAX_BULK,
  XMIT_FLUSH,
  type XmitOptions,
} from "./dataplane/device.ts";
export { nowNs } from "./dataplane/clock.ts";
export {
  type ForwardOptions,
  TAP_MAX_QUEUES,
  TapDevice,
  type TapDeviceOptions,
  type TapFramesOptions,
  tapNameProblem,
  type TapStats,
  type TapWaitOptions,
} from "./dataplane/tap.ts";
export {
  MAX_REDIRECT_INDEX,
  redirect,
  Verdict,
  type VerdictAction,
  verdictAction,
  verdictTarget,
} from "./dataplane/verdict.ts";
export type { PacketBatch, Program, ProgramSpec } from "./dataplane/program.ts";
export {
  drop,
  forward,
  L2Switch,
  type L2SwitchOptions,
  pair,
  programFromSpec,
  reflect,
} from "./dataplane/programs.ts";
export {
  arpOperation,
  ETH_HLEN,
  ethDst,
  EtherType,
  ethPayloadOffset,
  ethProtocol,
  ethSrc,
  FiveTuple,
  HeaderError,
  internetChecksum,
  IpProto,
  ipv4DecrementTtl,
  ipv4Dst,
  ipv4HeaderLength,
  ipv4SetDst,
  ipv4SetSrc,
  ipv4Src,
  ipv4UpdateChecksum,
  ipv6DecrementHopLimit,
  ipv6HeaderLength,
  isGroupMac,
  l4Ports,
  l4SetDstPort,
  l4SetSrcPort,
  readMac,
  swapMacs,
  vlanId,
  writeMac,
} from "./dataplane/headers.ts";
export {
  BulkQueues,
  type BulkQueuesOptions,
  MAX_TARGETS,
  type StageMode,
  TargetCounter,
  type XmitTarget,
} from "./dataplane/devmap.ts";
export { TapSource, type TapSourceSpec } from "./dataplane/tap_source.ts";
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
} from "./dataplane/source.ts";
export {
  decodeHistogram,
  encodeHistogram,
  histogramFromBuckets,
  LATENCY_BUCKET_ERROR,
  type LatencyHistogram,
  LatencyLayout,
  LatencyRecorder,
  type LatencyShare,
  type LatencySummary,
  MAX_LATENCY_NS,
  mergeHistograms,
  newLatencyHistogram,
  percentileDistribution,
  summarize,
} from "./dataplane/latency.ts";
export {
  LoopCounter,
  PollLoop,
  type PollLoopOptions,
  type ReaderSpec,
} from "./dataplane/poll_loop.ts";
export {
  Scheduler,
  type SchedulerCounters,
  type SchedulerOptions,
  type SchedulerReport,
} from "./dataplane/scheduler.ts";
export {
  parseRunArgs,
  RUN_HELP,
  runJob,
  runMain,
  type RunOptions,
  type RunResult,
  UsageError,
} from "./dataplane/run.ts";

if (import.meta.main) {
  // No top-level await: this module must finish evaluating at once, or any
  // module that imports it while the CLI runs (benchmarks, Workers) would
  // wait for the CLI forever.
  import("./dataplane/cli.ts")
    .then(({ main }) => main(Deno.args))
    .then((status) => Deno.exit(status));
}
