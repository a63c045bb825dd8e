/**
 * Builds the C benchmark programs (bench/c/) into the cache directory, never
 * into the repository. Like the library build, the output name hashes the
 * sources, compiler and flags, so an edit rebuilds and a second run does not.
 *
 * @module
 */
import { C_DIR, cacheDir } from "../ffi/build.ts";

/** Warnings are errors in every benchmark program, as in the library. */
export const BENCH_CFLAGS = ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"];

/** Where the benchmark C sources live. */
export const BENCH_C_DIR = new URL("./c/", import.meta.url);

/** A program to build. */
export interface CProgram {
  /** Output name (the cache file is `<name>-<hash>`). */
  name: string;
  /** Source files, absolute paths. */
  sources: string[];
  /** Extra compiler flags (defines, include paths). */
  cflags?: string[];
  /** Extra linker flags (libraries). */
  libs?: string[];
}

function fnv(chunks: Uint8Array[]): string {
  let h = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) {
      h = Math.imul(h ^ c[i], 0x01000193) >>> 0;
      h2 = Math.imul(h2 ^ c[i], 0x5bd1e995) >>> 0;
    }
  }
  return h.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}

/** The library's C sources and headers (c/), for programs that link it in. */
export function librarySources(): { c: string[]; headers: string[] } {
  const c: string[] = [];
  const headers: string[] = [];
  for (const e of Deno.readDirSync(C_DIR)) {
    if (!e.isFile) continue;
    const p = new URL(e.name, C_DIR).pathname;
    if (e.name.endsWith(".c")) c.push(p);
    else if (e.name.endsWith(".h")) headers.push(p);
  }
  return { c: c.sort(), headers: headers.sort() };
}

/** The compiler: `$CC` or `cc`. */
export function compiler(): string {
  try {
    return Deno.env.get("CC") ?? "cc";
  } catch {
    return "cc";
  }
}

/**
 * Compile a program (cached) and return its path. Throws with the
 * compiler's message on failure.
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./bench/cbuild.ts";
 * const exe = buildProgram({ name: "hello", sources: ["/tmp/hello.c"] });
 * ```
 */
export function buildProgram(p: CProgram, log?: (msg: string) => void): string {
  const cc = compiler();
  const { headers } = librarySources();
  const benchHeaders = [...Deno.readDirSync(BENCH_C_DIR)]
    .filter((e) => e.isFile && e.name.endsWith(".h"))
    .map((e) => new URL(e.name, BENCH_C_DIR).pathname)
    .sort();
  const flags = [
    ...BENCH_CFLAGS,
    `-I${C_DIR.pathname}`,
    `-I${BENCH_C_DIR.pathname}`,
    ...(p.cflags ?? []),
  ];
  const enc = new TextEncoder();
  const files = [...p.sources, ...headers, ...benchHeaders];
  const hash = fnv([
    enc.encode([cc, ...flags, ...(p.libs ?? [])].join(" ")),
    ...files.flatMap((f) => [enc.encode(f), Deno.readFileSync(f)]),
  ]);
  const dir = `${cacheDir()}/bench`;
  const exe = `${dir}/${p.name}-${hash}`;
  try {
    Deno.statSync(exe);
    return exe;
  } catch {
    // build below
  }
  Deno.mkdirSync(dir, { recursive: true });
  const tmp = `${exe}.${Deno.pid}.tmp`;
  const args = [...flags, "-o", tmp, ...p.sources, ...(p.libs ?? [])];
  log?.(`building ${p.name}: ${cc} ${args.join(" ")}`);
  const r = new Deno.Command(cc, { args, stdout: "piped", stderr: "piped" }).outputSync();
  if (!r.success) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing written
    }
    throw new Error(
      `compiling ${p.name} failed:\n${new TextDecoder().decode(r.stderr).trim()}`,
    );
  }
  Deno.renameSync(tmp, exe);
  return exe;
}

/**
 * Run a program and hand every stdout line to `onLine` as it arrives.
 * Resolves with the exit code and the stderr text.
 */
export async function runLines(
  exe: string,
  args: string[],
  onLine: (line: string) => void,
): Promise<{ code: number; stderr: string }> {
  const child = new Deno.Command(exe, { args, stdout: "piped", stderr: "piped" }).spawn();
  const errText = new Response(child.stderr).text();
  let buf = "";
  const dec = new TextDecoder();
  for await (const chunk of child.stdout) {
    buf += dec.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) onLine(line);
    }
  }
  if (buf.trim()) onLine(buf);
  const { code } = await child.status;
  return { code, stderr: await errText };
}
