/**
 * A program for the latency histogram's cost measurement
 * (`bench/sched_bench.ts`), loaded by Workers through a `ProgramSpec` with
 * `module`.
 *
 * @module
 */
import { FramePool, type Program, redirect } from "../dataplane/mod.ts";

/**
 * `forward`, after giving every frame its own timestamp: what a TAP
 * receive, a queue source or a copy looks like to the readers, and the
 * worst case for recording (no two frames of a batch share a timestamp).
 * Stamps are scattered over 1..66.5 us before the batch's poll time, so
 * consecutive frames also land in different histogram buckets (nothing
 * for the C side to fold either). Costs one timestamp write per frame,
 * with recording on or off alike.
 *
 * @example
 * ```ts
 * import { forwardStampEach } from "./bench/latency_programs.ts";
 * const program = forwardStampEach({ target: 0 });
 * ```
 */
export function forwardStampEach(options: { target?: number }): Program {
  const verdict = redirect(options.target ?? 0);
  let slot = -1;
  let pool: FramePool | undefined;
  return (b) => {
    const refs = b.refs, verdicts = b.verdicts, n = b.count, t = b.nowNs - 1000;
    for (let i = 0; i < n; i++) {
      const ref = refs[i];
      if (ref >>> 24 !== slot) {
        slot = ref >>> 24;
        pool = FramePool.of(ref);
      }
      // Multiplying by an odd constant mod 2^16 visits distinct offsets.
      pool!.setTimestamp(ref, t - ((i * 40503) & 0xffff));
      verdicts[i] = verdict;
    }
  };
}
