/**
 * The layers, read from the module graph (`deno info --json`): `c/` ->
 * `ffi/` -> `dataplane/` (the library) -> the command line
 * (`dataplane/cli/`, `mod.ts`) and `bench/`; no arrow back up, no cycle,
 * and what a user imports holds no application module and no npm package
 * its API does not need.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const CONFIG = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))) as {
  exports: Record<string, string>;
};

interface Graph {
  /** Repository-relative path (or specifier, outside it) -> what it imports. */
  edges: Map<string, string[]>;
  /** npm packages the graph loads (name@version). */
  npm: string[];
}

async function graph(entry: string): Promise<Graph> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      kind: string;
      npmPackage?: string;
      dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
    }[];
  };
  const rel = (s: string) => s.startsWith(ROOT.href) ? s.slice(ROOT.href.length) : s;
  const edges = new Map<string, string[]>();
  for (const m of info.modules) {
    const deps = (m.dependencies ?? []).flatMap((d) =>
      [d.code?.specifier, d.type?.specifier].filter((s): s is string => !!s).map(rel)
    );
    edges.set(rel(m.specifier), deps);
  }
  const npm = info.modules.filter((m) => m.kind === "npm").map((m) => m.npmPackage!);
  return { edges, npm };
}

const isApp = (p: string) => p === "mod.ts" || p.startsWith("dataplane/cli/");
const isBench = (p: string) => p.startsWith("bench/");

for (const [name, path] of Object.entries(CONFIG.exports)) {
  Deno.test(`layers: the package entry ${name} loads no command line and no benchmark`, async () => {
    const g = await graph(path);
    const bad = [...g.edges.keys()].filter((p) => isApp(p) || isBench(p));
    assert.deepEqual(bad, []);
    assert.deepEqual(g.npm.filter((p) => /^(esbuild|uplot)@/.test(p)), []);
  });
}

Deno.test("layers: the main entry loads no npm package (hdr-histogram-js is behind ./latency)", async () => {
  const g = await graph(CONFIG.exports["."]);
  assert.deepEqual(g.npm, []);
  assert.ok(g.edges.has("dataplane/mod.ts"));
});

Deno.test("layers: no arrow back up (ffi/ imports only ffi/, the library no app or benchmark)", async () => {
  const g = await graph("mod.ts");
  const up: string[] = [];
  for (const [from, deps] of g.edges) {
    for (const to of deps) {
      const lib = to.startsWith("dataplane/") && !to.startsWith("dataplane/cli/");
      if (from.startsWith("ffi/") && (lib || isApp(to) || isBench(to))) up.push(`${from} -> ${to}`);
      if (from.startsWith("dataplane/") && !from.startsWith("dataplane/cli/")) {
        if (isApp(to) || isBench(to)) up.push(`${from} -> ${to}`);
      }
      // The benchmark shares the command line's flag parser, nothing else of it.
      if (isBench(from) && isApp(to) && to !== "dataplane/cli/flags.ts") {
        up.push(`${from} -> ${to}`);
      }
    }
  }
  assert.deepEqual(up, []);
});

Deno.test("layers: the command's module graph has no cycle (dynamic and type imports included)", async () => {
  const g = await graph("mod.ts");
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (u: string, path: string[]) => {
    state.set(u, "open");
    path.push(u);
    for (const v of g.edges.get(u) ?? []) {
      if (state.get(v) === "open") cycles.push([...path.slice(path.indexOf(v)), v].join(" -> "));
      else if (!state.has(v)) visit(v, path);
    }
    path.pop();
    state.set(u, "done");
  };
  for (const u of g.edges.keys()) if (!state.has(u)) visit(u, []);
  assert.deepEqual(cycles, []);
});
