/**
 * The FFI boundary fuzzer's child program: runs the properties of one
 * group with fast-check and prints one `BFZ <json>` line per event on
 * stdout, unbuffered, so a parent that sees it die by a signal knows the
 * property and case it died in.
 *
 * Usage: `deno run -A test/fuzz/boundary/child.ts <group> <seed> <runs>
 * [--only <prop>] [--after <prop>] [--path <path>]`. Groups and their
 * properties are in {@linkcode GROUPS}. Events: `prop` (start), `case`
 * (before each case, with its path), `fail` (a property failed: findings,
 * seed, path, counterexample), `done` (a property finished), `summary`.
 *
 * @module
 */
import fc from "npm:fast-check@^4";

// Count every FFI call: wrap the symbols before the library is loaded.
let ffiCalls = 0;
const dlopen = Deno.dlopen;
// deno-lint-ignore no-explicit-any
(Deno as any).dlopen = (path: string, syms: Deno.ForeignLibraryInterface) => {
  const lib = dlopen(path, syms);
  const wrapped: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(lib.symbols)) {
    wrapped[k] = typeof f === "function"
      ? (...a: unknown[]) => {
        ffiCalls++;
        return (f as (...a: unknown[]) => unknown)(...a);
      }
      : f;
  }
  return { symbols: wrapped, close: () => lib.close() };
};

const { Case, CaseFailure, totals } = await import("./case.ts");
const ops = await import("./ops.ts");
const more = await import("./ops_more.ts");
const flow = await import("./ops_flow.ts");
type Group = import("./ops.ts").Group;

/** The groups: operations, and how many runs each property gets (x runs). */
export const GROUPS: Record<string, { ops: Group; scale?: Record<string, number> }> = {
  pool: { ops: ops.poolOps, scale: { ctor: 0.5 } },
  device: { ops: ops.deviceOps },
  queue: { ops: ops.queueOps, scale: { wait: 0.3, frames: 0.3 } },
  batch: { ops: ops.batchOps },
  devmap: { ops: flow.devmapOps },
  latency: { ops: flow.latencyOps, scale: { fromBuckets: 0.3 } },
  source: { ops: flow.sourceOps },
  pollloop: { ops: flow.pollLoopOps, scale: { loop: 3 } },
  tap: { ops: more.tapOps, scale: { open: 0.15 } },
  scheduler: { ops: more.schedulerOps, scale: { start: 0.04 } },
  headers: { ops: more.headerOps, scale: { helper: 4 } },
  misc: {
    ops: more.miscOps,
    scale: { cli: 0.2, runJob: 0.03, constants: 0.05, clock: 0.05, programFromSpec: 0.3 },
  },
};

/** Operations that never run as another property's prelude (slow or global). */
const NO_PRELUDE = new Set(["start", "open", "runJob", "cli", "loop", "reusedSlot"]);

function emit(ev: Record<string, unknown>): void {
  Deno.stdout.writeSync(new TextEncoder().encode(`BFZ ${JSON.stringify(ev)}\n`));
}

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

async function main() {
  const [group, seedArg, runsArg] = Deno.args;
  const g = GROUPS[group];
  if (!g) throw new Error(`no group ${group}: ${Object.keys(GROUPS).join(", ")}`);
  const seed = Number(seedArg) | 0;
  const runs = Number(runsArg);
  const only = flag("--only"), after = flag("--after"), path = flag("--path");
  const names = Object.keys(g.ops);
  let start = after ? names.indexOf(after) + 1 : 0;
  if (after && start === 0) start = names.length;
  const prelude = Deno.env.get("BULKTAP_FUZZ_PRELUDE") !== "0";
  const pre = names.filter((n) => prelude && !NO_PRELUDE.has(n)).map((n) =>
    g.ops[n].arb.map((a: unknown) => ({ n, a }))
  );
  const t0 = performance.now();
  for (const name of names.slice(start)) {
    if (only && name !== only) continue;
    const numRuns = Math.max(1, Math.round(runs * (g.scale?.[name] ?? 1)));
    emit({ ev: "prop", group, prop: name, seed, numRuns });
    const arb = fc.tuple(
      pre.length ? fc.array(fc.oneof(...pre), { maxLength: 2 }) : fc.constant([]),
      g.ops[name].arb,
    );
    let i = 0;
    const soft = new Set<string>();
    const calls0 = totals.calls, ffi0 = ffiCalls;
    const property = fc.asyncProperty(arb, async ([prelude, a]) => {
      emit({ ev: "case", prop: name, i: path ?? String(i) });
      i++;
      const c = Case.create();
      try {
        for (const p of prelude as { n: string; a: unknown }[]) await g.ops[p.n].run(c, p.a);
        await g.ops[name].run(c, a);
      } catch (e) {
        c.find("untyped", `uncaught in the harness: ${e instanceof Error ? e.stack : e}`);
      }
      const findings = c.finish();
      totals.cases++;
      // Untyped errors and silently accepted values are reported once per
      // kind of call and the property goes on (they must not hide crashes
      // and lost frames); anything worse fails the property here.
      const hard = findings.filter((f) => f.kind !== "untyped" && f.kind !== "unchecked");
      for (const f of findings) {
        if (hard.length) break;
        const key = `${name}|${f.kind}|${
          f.what.replace(/[-0-9.e+]+|"[^"]*"|\(.*?\)/g, "#").slice(0, 80)
        }`;
        if (soft.has(key)) continue;
        soft.add(key);
        emit({
          ev: "soft",
          group,
          prop: name,
          seed,
          path: path ?? String(i - 1),
          finding: f,
          input: fc.stringify([prelude, a]).slice(0, 800),
        });
      }
      if (hard.length) throw new CaseFailure(findings);
    });
    const r = await fc.check(property, {
      seed,
      numRuns,
      path,
      endOnFailure: Deno.env.get("BULKTAP_FUZZ_SHRINK") !== "1",
    });
    if (r.failed) {
      const err = r.errorInstance;
      emit({
        ev: "fail",
        group,
        prop: name,
        seed,
        path: r.counterexamplePath,
        findings: err instanceof CaseFailure
          ? err.findings
          : [{ kind: "untyped", what: String(err) }],
        counterexample: fc.stringify(r.counterexample).slice(0, 2000),
      });
    }
    emit({
      ev: "done",
      prop: name,
      cases: r.numRuns,
      calls: totals.calls - calls0,
      ffi: ffiCalls - ffi0,
    });
  }
  emit({
    ev: "summary",
    group,
    cases: totals.cases,
    calls: totals.calls,
    ffi: ffiCalls,
    ms: Math.round(performance.now() - t0),
  });
}

await main();
// Workers or timers a case left behind must not keep the child alive.
Deno.exit(0);
