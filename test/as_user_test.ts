/**
 * bulktap as a user meets it: a program in a folder of its own (its own
 * empty `deno.json`, a fresh `DENO_DIR` and bulktap cache) imports the
 * package entry (a) by file path and (b) by an `http://127.0.0.1:<port>/`
 * URL served here, as any remote module would be. The first use builds
 * the C library from sources fetched beside the module; the program sends
 * frames and reads them back, and it type-checks. Neither it nor the main
 * job's first run in a fresh copy of this repository downloads the
 * benchmark's or the tests' npm packages (esbuild, uPlot, fast-check).
 */
import assert from "node:assert/strict";
import { needs } from "./capability.ts";
import { serveDir } from "./serve_dir.ts";

const ROOT = new URL("../", import.meta.url);
const ENTRY = "dataplane/mod.ts";

const PROGRAM = (entry: string) =>
  `import { Batch, Device, FramePool } from ${JSON.stringify(entry)};

using pool = new FramePool({ frames: 64 });
using dev = new Device({ pool });
const refs = new Uint32Array(8);
const n = pool.alloc(refs);
for (let i = 0; i < n; i++) {
  pool.setLength(refs[i], 60);
  pool.data(refs[i])[0] = i;
}
const sent = dev.xmit(refs, { count: n, flush: true });
const batch = new Batch(16);
dev.queue(0).poll(batch);
const got = [...batch.refs.subarray(0, batch.count)].map((r) => pool.data(r)[0]);
batch.release();
console.log(JSON.stringify({ sent, got }));
`;

/** A user's folder: its own empty deno.json, DENO_DIR and bulktap cache. */
function userFolder(): { dir: string; env: Record<string, string>; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "bulktap-user-" });
  Deno.writeTextFileSync(`${dir}/deno.json`, "{}\n");
  Deno.mkdirSync(`${dir}/deno_dir`);
  Deno.mkdirSync(`${dir}/cache`);
  return {
    dir,
    env: { DENO_DIR: `${dir}/deno_dir`, BULKTAP_CACHE_DIR: `${dir}/cache`, NO_COLOR: "1" },
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

async function deno(
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ ok: boolean; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: r.success, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

/** Names of the npm packages in a DENO_DIR's cache and a folder's node_modules. */
function npmPackages(denoDir: string, project: string): string[] {
  const names = new Set<string>();
  const dirs = (p: string) => {
    try {
      return [...Deno.readDirSync(p)].filter((e) => e.isDirectory).map((e) => e.name);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
  };
  const registry = `${denoDir}/npm/registry.npmjs.org`;
  for (const n of dirs(registry)) {
    if (n.startsWith("@")) { for (const m of dirs(`${registry}/${n}`)) names.add(`${n}/${m}`); }
    else names.add(n);
  }
  // node_modules/.deno/<name>@<version> (a scope's "/" is a "+" there)
  for (const n of dirs(`${project}/node_modules/.deno`)) {
    if (n !== "node_modules") names.add(n.replace(/(.)@[^@]*$/, "$1").replace("+", "/"));
  }
  return [...names].sort();
}

async function runsAsUser(entry: string): Promise<void> {
  using u = userFolder();
  Deno.writeTextFileSync(`${u.dir}/main.ts`, PROGRAM(entry));
  const check = await deno(["check", "--allow-import", "main.ts"], u.dir, u.env);
  assert.ok(check.ok, `deno check failed:\n${check.err}`);
  const run = await deno(["run", "-A", "main.ts"], u.dir, u.env);
  assert.ok(run.ok, `deno run failed:\n${run.err}`);
  assert.deepEqual(JSON.parse(run.out), { sent: 8, got: [0, 1, 2, 3, 4, 5, 6, 7] });
  assert.deepEqual(npmPackages(u.env.DENO_DIR, u.dir), [], "the library downloads no npm package");
  const built = [...Deno.readDirSync(`${u.dir}/cache`)].filter((e) => e.name.endsWith(".so"));
  assert.equal(built.length, 1, "the first use built the library into the user's cache");
  assert.deepEqual(
    [...Deno.readDirSync(u.dir)].map((e) => e.name).filter((n) => n === "node_modules"),
    [],
    "no npm package downloaded",
  );
}

Deno.test("as a user: the package imported by file path builds, sends, reads back, checks", async () => {
  await runsAsUser(new URL(ENTRY, ROOT).pathname);
});

Deno.test("as a user: the package imported by http:// URL builds, sends, reads back, checks", async () => {
  await using server = serveDir(ROOT);
  await runsAsUser(new URL(ENTRY, server.url).href);
});

Deno.test("as a user: the scheduler imported by http:// URL starts its Workers and reports", async () => {
  await using server = serveDir(ROOT);
  using u = userFolder();
  Deno.writeTextFileSync(
    `${u.dir}/main.ts`,
    `import { Device, FramePool } from "${new URL(ENTRY, server.url)}";
import { Scheduler } from "${new URL("dataplane/scheduler.ts", server.url)}";
using pool = new FramePool({ frames: 4096 });
using dev = new Device({ pool, queues: 2 });
const sched = new Scheduler({
  cpus: 2,
  sources: [0, 1].map(() => ({ kind: "generator", pool: pool.handle, rate: 1000 })),
  program: { name: "forward", options: { target: 0 } },
  targets: [dev],
  readers: [0, 1].map((q) => ({ device: dev.handle, queue: q })),
});
await sched.start();
await new Promise((r) => setTimeout(r, 200));
const report = await sched.close();
console.log(JSON.stringify({ frames: report.targets[0].sent > 0 }));
`,
  );
  const run = await deno(["run", "-A", "main.ts"], u.dir, u.env);
  assert.ok(run.ok, `deno run failed:\n${run.err}`);
  assert.deepEqual(JSON.parse(run.out), { frames: true });
});

Deno.test("as a user: the entry imported by URL loads no app, benchmark, esbuild or uPlot", async () => {
  await using server = serveDir(ROOT);
  using u = userFolder();
  const r = await deno(["info", "--json", new URL(ENTRY, server.url).href], u.dir, u.env);
  assert.ok(r.ok, r.err);
  const info = JSON.parse(r.out) as { modules: { specifier: string; kind: string }[] };
  const paths = info.modules.map((m) => m.specifier.replace(server.url.href, ""));
  assert.deepEqual(
    paths.filter((p) => /^(bench\/|dataplane\/cli\/|mod\.ts$)|esbuild|uplot/i.test(p)),
    [],
  );
  assert.deepEqual(info.modules.filter((m) => m.kind === "npm"), []);
  assert.ok(paths.includes(ENTRY));
});

/** Where the npm registry cannot be reached, why (undefined when it can). */
async function registryUnreachable(): Promise<string | undefined> {
  const base = Deno.env.get("NPM_CONFIG_REGISTRY") ?? "https://registry.npmjs.org/";
  try {
    const r = await fetch(new URL("hdr-histogram-js", base), {
      method: "HEAD",
      signal: AbortSignal.timeout(10_000),
    });
    await r.body?.cancel();
    return r.ok ? undefined : `${base} answered ${r.status}`;
  } catch (e) {
    return `${base}: ${(e as Error).message}`;
  }
}

/** What a fresh clone holds: everything but node_modules/, .git and caches. */
function copyRepo(from: string, to: string): void {
  const skip = new Set(["node_modules", ".git", ".cache", "out"]);
  for (const e of Deno.readDirSync(from)) {
    if (skip.has(e.name)) continue;
    const [src, dst] = [`${from}/${e.name}`, `${to}/${e.name}`];
    if (e.isDirectory) {
      Deno.mkdirSync(dst);
      copyRepo(src, dst);
    } else if (e.isFile) Deno.copyFileSync(src, dst);
  }
}

const BENCH_OR_TEST_ONLY = /^(esbuild|@esbuild\/.*|uplot|fast-check|pure-rand)$/;

Deno.test({
  name:
    "as a user: the main job's first run downloads hdr-histogram-js, not esbuild, uPlot or fast-check",
  ignore: needs(
    "npm registry",
    await registryUnreachable(),
    "the main job's first run downloads hdr-histogram-js from the npm registry",
  ),
  async fn() {
    using u = userFolder();
    const repo = `${u.dir}/bulktap`;
    Deno.mkdirSync(repo);
    copyRepo(new URL(".", ROOT).pathname.replace(/\/$/, ""), repo);
    // The C library's cache is the developer's (keyed by the sources' hash):
    // this test is about npm packages, not the first build.
    const env = { DENO_DIR: u.env.DENO_DIR, NO_COLOR: "1" };
    const run = await deno(["run", "-A", "mod.ts", "--duration", "1", "--json"], repo, env);
    assert.ok(run.ok, `the main job failed:\n${run.err}`);
    assert.ok(JSON.parse(run.out).frames > 0, run.out);
    const got = npmPackages(u.env.DENO_DIR, repo);
    assert.ok(got.includes("hdr-histogram-js"), `what it uses was downloaded: ${got}`);
    assert.deepEqual(got.filter((n) => BENCH_OR_TEST_ONLY.test(n)), [], `downloaded: ${got}`);
    const fetched = [...run.err.matchAll(/^Download (\S+)/gm)].map((m) => m[1]);
    assert.ok(fetched.length > 0, "Deno reports its downloads");
    assert.deepEqual(fetched.filter((f) => /esbuild|uplot|fast-check/.test(f)), []);
  },
});
