/**
 * Property-based fuzzing of the public API at the FFI boundary: every
 * export of mod.ts called with hostile arguments (every typed-array kind
 * and length, SharedArrayBuffer-backed, detached, offset and lying-length
 * arrays, plain arrays, junk, counts past the array, NaN/±Infinity/huge/
 * negative/fractional numbers, forged/stale/foreign refs, reassigned
 * public fields, closed and stale objects). After each case: canaries
 * around every array intact, a bystander pool untouched, every pool's
 * accounting whole, no frame lost (see test/fuzz/boundary/case.ts).
 *
 * One child Deno process per group (test/fuzz/boundary/child.ts), under
 * the release build and, when gcc's libasan is present, the ASan/UBSan
 * build. The test fails on a signal death, a non-zero exit, a hang, or any
 * finding, and prints the replay command for each.
 *
 * Environment:
 * - `BULKTAP_FUZZ_SEED`: the seed (default: random per run, printed).
 * - `BULKTAP_FUZZ_RUNS`: runs per property (default 100; ASan gets half).
 * - `BULKTAP_FUZZ_REPLAY=<group>/<prop>:<seed>:<path>[:asan]`: replay one case.
 * - `BULKTAP_FUZZ_GROUPS=pool,device`: only these groups.
 * - `BULKTAP_FUZZ_PRELUDE=0`: no random calls before the property's own.
 * - `BULKTAP_FUZZ_SHRINK=1`: shrink a failing case (slower).
 *
 * Exports covered (by group):
 * - pool: FramePool (constructor, attach, of, alloc, free, index,
 *   frameOffset, dataOffset, length, capacity, setLength, adjustHead,
 *   timestamp, setTimestamp, mark, setMark, vnetLength, queueOf, data,
 *   write, vnetFlags, gsoType, gsoSize, headerLength, csumStart,
 *   csumOffset, setGso, setPartialChecksum, clearOffload, stats, closed,
 *   close, public fields), freeFrames, describeRef,
 *   META, FrameState
 * - device: Device (constructor, attach, queue, queueForCpu, xmit, xmitOne,
 *   xmitCopy, flush, stats, close, cpu/handle/queues/pool fields), MAX_BULK,
 *   XMIT_FLUSH
 * - queue: DeviceQueue (constructor, poll, wait, frames, unread, count)
 * - batch: Batch (constructor, refs/count fields, capacity, pool, length,
 *   data, release, detach)
 * - devmap: BulkQueues (constructor, enqueue, flush, sent, dropped,
 *   pending/oldestNs/counters fields), MAX_TARGETS, TargetCounter
 * - latency: LatencyRecorder (constructor, recordBatch, recordBatchAt,
 *   recordRuns, histogram, summary, count, unstamped, words field),
 *   histogramFromBuckets, newLatencyHistogram, LatencyLayout
 * - source: GeneratorSource, QueueSource (poll, readyAtNs, wait, wake,
 *   close), sourceFromSpec
 * - pollloop: PollLoop (constructor, cycle, readOnly, close), LoopCounter,
 *   forward, drop, reflect, Verdict, redirect (hostile verdicts, lying
 *   sources, PASS devices, counters arrays)
 * - tap: TapDevice (constructor, rx, wait, xmit, forwardTo, stopForwarding,
 *   stats, statsUnchecked, error, drained, close), tapNameProblem,
 *   TAP_MAX_QUEUES
 * - scheduler: Scheduler (constructor, counters, start, close)
 * - headers: readMac, writeMac, isGroupMac (via the switch), ethDst, ethSrc,
 *   swapMacs, ethPayloadOffset, ethProtocol, vlanId, arpOperation,
 *   ipv4HeaderLength, internetChecksum, ipv4UpdateChecksum,
 *   ipv4DecrementTtl, ipv4Src, ipv4Dst, ipv4SetSrc, ipv4SetDst,
 *   ipv6HeaderLength, ipv6DecrementHopLimit, ipv6SetSrc, ipv6SetDst,
 *   l4Ports, l4SetSrcPort,
 *   l4SetDstPort, FiveTuple, HeaderError, EtherType, IpProto, ETH_HLEN
 * - misc: redirect, verdictAction, verdictTarget, MAX_REDIRECT_INDEX,
 *   forward, drop, reflect, L2Switch, programFromSpec, nowNs,
 *   decodeHistogram, encodeHistogram, mergeHistograms, summarize,
 *   percentileDistribution, MAX_LATENCY_NS, LATENCY_BUCKET_ERROR,
 *   parseRunArgs, runMain, runJob, RUN_HELP, UsageError, BulktapError,
 *   registerSourceKind
 * (Types — BulktapErrorCode, FramePoolOptions, PoolStats, FramesOptions,
 * DeviceOptions, ... — have no runtime value.)
 */
import { asanRuntime, needs } from "./capability.ts";
import assert from "assert";

interface Ev {
  ev: string;
  [k: string]: unknown;
}
interface Finding {
  kind: string;
  what: string;
}
interface Fail {
  group: string;
  prop: string;
  seed: number;
  path: string;
  flavour: string;
  outcome: string;
  findings: Finding[];
  counterexample?: string;
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

export const GROUP_NAMES = [
  "pool",
  "device",
  "queue",
  "batch",
  "devmap",
  "latency",
  "source",
  "pollloop",
  "tap",
  "scheduler",
  "headers",
  "misc",
];

const STALL_MS = 15_000;
const ROOT = new URL("..", import.meta.url).pathname;
const CHILD = "test/fuzz/boundary/child.ts";

function childEnv(flavour: string, runtime: string | undefined): Record<string, string> {
  const e: Record<string, string> = { BULKTAP_FLAVOUR: flavour, NO_COLOR: "1" };
  if (flavour === "asan") {
    e.LD_PRELOAD = runtime!;
    e.ASAN_OPTIONS = "detect_leaks=0:abort_on_error=1";
    e.UBSAN_OPTIONS = "halt_on_error=1:print_stacktrace=1";
  }
  return e;
}

/** The command that replays one case. */
function replay(f: { group: string; prop: string; seed: number; path: string; flavour: string }) {
  const fl = f.flavour === "asan" ? ":asan" : "";
  return `BULKTAP_FUZZ_REPLAY=${f.group}/${f.prop}:${f.seed}:${f.path}${fl} ` +
    `deno test -A --no-check=remote test/boundary_fuzz_test.ts`;
}

/** The useful part of a dead child's stderr: the sanitizer report's head, or the tail. */
function crashText(stderr: string): string {
  const lines = stderr.split("\n");
  const at = lines.findIndex((l) => /ERROR: AddressSanitizer|runtime error:/.test(l));
  if (at < 0) return lines.filter((l) => l.trim()).slice(-12).join("\n");
  return lines.slice(at, at + 12).filter((l) => l.trim()).join("\n");
}

interface GroupRun {
  fails: Fail[];
  cases: number;
  calls: number;
  ffi: number;
  ms: number;
}

/**
 * Run one group in child processes: a child that dies (signal, abort,
 * hang) is reported at its last case and the group goes on after that
 * property in a new child.
 */
async function runGroup(
  group: string,
  seed: number,
  runs: number,
  flavour: string,
  runtime: string | undefined,
  only?: { prop: string; path: string },
): Promise<GroupRun> {
  const out: GroupRun = { fails: [], cases: 0, calls: 0, ffi: 0, ms: 0 };
  let after: string | undefined;
  const t0 = performance.now();
  for (let attempt = 0; attempt < 40; attempt++) {
    const args = ["run", "-A", "--no-check", CHILD, group, String(seed), String(runs)];
    if (after) args.push("--after", after);
    if (only) args.push("--only", only.prop, "--path", only.path);
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: ROOT,
      env: childEnv(flavour, runtime),
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // A case that makes no progress for STALL_MS (a synchronous endless
    // loop cannot be interrupted inside the child) is killed: a hang.
    let text = "", lastEvent = performance.now(), stalled = false;
    const stderrP = new Response(child.stderr).text();
    const watchdog = setInterval(() => {
      if (performance.now() - lastEvent > STALL_MS) {
        stalled = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
    }, 500);
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      lastEvent = performance.now();
    }
    const res = await child.status;
    clearInterval(watchdog);
    const stderr = await stderrP;
    let prop: string | undefined, path = "0", finished = false;
    for (const line of text.split("\n")) {
      if (!line.startsWith("BFZ ")) continue;
      const ev = JSON.parse(line.slice(4)) as Ev;
      if (ev.ev === "prop") prop = ev.prop as string;
      else if (ev.ev === "case") path = ev.i as string;
      else if (ev.ev === "fail") {
        out.fails.push({
          group,
          prop: ev.prop as string,
          seed,
          path: ev.path as string,
          flavour,
          outcome: "property failed",
          findings: ev.findings as Finding[],
          counterexample: ev.counterexample as string,
        });
      } else if (ev.ev === "soft") {
        const f = ev.finding as Finding;
        out.fails.push({
          group,
          prop: ev.prop as string,
          seed,
          path: ev.path as string,
          flavour,
          outcome: f.kind === "untyped" ? "untyped error" : "bad value accepted",
          findings: [f],
          counterexample: ev.input as string,
        });
      } else if (ev.ev === "done") {
        out.cases += ev.cases as number;
        out.calls += ev.calls as number;
        out.ffi += ev.ffi as number;
        prop = undefined;
      } else if (ev.ev === "summary") finished = true;
    }
    if (finished && res.code === 0) break;
    // The child died inside `prop` at case `path`.
    const why = stalled
      ? `hung: no progress for ${STALL_MS / 1000} s in one case, killed`
      : res.signal
      ? `killed by ${res.signal}`
      : `exit status ${res.code}`;
    const asan = stderr.match(/ERROR: AddressSanitizer: [^\n]*|runtime error: [^\n]*/)?.[0];
    out.fails.push({
      group,
      prop: prop ?? "?",
      seed,
      path,
      flavour,
      outcome: `child ${why}${asan ? `: ${asan}` : ""}`,
      findings: [{
        kind: "crash",
        what: crashText(stderr),
      }],
    });
    if (!prop || only) break;
    after = prop;
  }
  out.ms = performance.now() - t0;
  return out;
}

function report(label: string, runs: GroupRun[], groups: string[]) {
  const cases = runs.reduce((s, r) => s + r.cases, 0);
  const calls = runs.reduce((s, r) => s + r.calls, 0);
  const ffi = runs.reduce((s, r) => s + r.ffi, 0);
  const ms = runs.reduce((s, r) => s + r.ms, 0);
  console.log(
    `  ${label}: ${groups.length} groups, ${cases} cases, ${calls} API calls, ${ffi} FFI calls, ` +
      `${(ms / 1000).toFixed(1)} s`,
  );
  const all = runs.flatMap((r) => r.fails);
  // Crashes, corruption and lost frames first; untyped errors last.
  const soft = (f: Fail) => f.outcome === "untyped error" || f.outcome === "bad value accepted";
  const fails = [...all.filter((f) => !soft(f)), ...all.filter(soft)];
  console.log(
    `  ${all.filter((f) => !soft(f)).length} crash/corruption/lost-frame/hang findings, ` +
      `${all.filter(soft).length} untyped-error or bad-value-accepted findings`,
  );
  for (const f of fails) {
    const kinds = [...new Set(f.findings.map((x) => x.kind))].join(",");
    console.log(`\n  FINDING [${kinds}] ${f.group}/${f.prop} (${f.flavour}): ${f.outcome}`);
    for (const x of f.findings.slice(0, 6)) {
      console.log(`    - [${x.kind}] ${x.what.replaceAll("\n", "\n      ")}`);
    }
    if (f.counterexample) console.log(`    input: ${f.counterexample.slice(0, 600)}`);
    console.log(`    replay: ${replay(f)}`);
  }
  return fails;
}

const replaySpec = env("BULKTAP_FUZZ_REPLAY");
const SEED = env("BULKTAP_FUZZ_SEED") !== undefined
  ? Number(env("BULKTAP_FUZZ_SEED")) | 0
  : crypto.getRandomValues(new Int32Array(1))[0];
const RUNS = Number(env("BULKTAP_FUZZ_RUNS") ?? 100);
const GROUPS = env("BULKTAP_FUZZ_GROUPS")?.split(",") ?? GROUP_NAMES;
const runtime = asanRuntime();

async function fuzzFlavour(flavour: string, runs: number) {
  console.log(`  seed ${SEED}, ${runs} runs per property (BULKTAP_FUZZ_SEED=${SEED} to repeat)`);
  // Build the library first: a build inside a child's first case would
  // look like a hang to the watchdog.
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "ffi/build.ts", flavour],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.ok(built.success, new TextDecoder().decode(built.stderr));
  const results: GroupRun[] = [];
  for (const g of GROUPS) results.push(await runGroup(g, SEED, runs, flavour, runtime));
  const fails = report(flavour, results, GROUPS);
  assert.equal(
    fails.length,
    0,
    `${fails.length} findings under the ${flavour} build (seed ${SEED}); replay commands above`,
  );
}

if (replaySpec) {
  Deno.test(`boundary fuzz: replay ${replaySpec}`, async () => {
    const [gp, seed, path, flavour] = replaySpec.split(":");
    const [group, prop] = gp.split("/");
    const r = await runGroup(group, Number(seed), 1, flavour ?? "release", runtime, { prop, path });
    const fails = report(`replay ${flavour ?? "release"}`, [r], [group]);
    assert.equal(fails.length, 0, "the replayed case still fails");
  });
} else {
  Deno.test("boundary fuzz: no hostile argument crashes, corrupts or loses a frame (release build)", async () => {
    await fuzzFlavour("release", RUNS);
  });
  Deno.test({
    name:
      "boundary fuzz: no hostile argument crashes, corrupts or loses a frame (ASan/UBSan build)",
    ignore: needs(
      "ASan boundary fuzzing",
      runtime === undefined ? "gcc's libasan.so was not found" : undefined,
      "apt-get install gcc (libasan comes with it)",
    ),
    async fn() {
      await fuzzFlavour("asan", Math.max(1, Math.round(RUNS / 2)));
    },
  });
}
