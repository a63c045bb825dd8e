/**
 * Builds the C library on first use. The output is cached under a name that
 * hashes the C sources, the compiler and the flags, so editing a C file
 * rebuilds it and a second run does not. "The compiler" is the command named
 * AND what it says it is (`cc --version`): upgrading gcc, or pointing `cc` at
 * clang, rebuilds too. Without permission to run the compiler (a cached run
 * under least privilege) its version cannot be asked, and the newest cached
 * build of the same sources, flags and compiler name is used. Builds write
 * to a temporary file and rename it into place, so two processes (or
 * Workers) building at once never load a half-written library.
 *
 * Environment:
 * - `BULKTAP_FLAVOUR`: `release` (default), `debug` (-O0 -g3) or `asan`
 *   (AddressSanitizer + UBSan; run Deno with
 *   `LD_PRELOAD=$(cc -print-file-name=libasan.so)`).
 * - `BULKTAP_CACHE_DIR`: where libraries go (default
 *   `$XDG_CACHE_HOME/bulktap` or `~/.cache/bulktap`).
 * - `CC`: the compiler (default: the first of `cc`, `gcc`, `clang` found).
 *
 * Run directly (`deno task build`) to build and print the library's path.
 *
 * @module
 */
import { BulktapError } from "./errors.ts";

/** How the library is compiled. */
export type Flavour = "release" | "debug" | "asan";

const FLAGS: Record<Flavour, string[]> = {
  release: ["-O2", "-g"],
  debug: ["-O0", "-g3", "-DBT_STRICT_OWNERSHIP"],
  asan: [
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-DBT_STRICT_OWNERSHIP",
  ],
};

const COMMON = [
  "-std=gnu11",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-fPIC",
  "-shared",
  "-fvisibility=hidden",
  "-pthread",
  // Never unmap on dlclose: threads that used the library run its
  // thread-exit destructor (giving back their counter slot) after Deno
  // closes it at shutdown.
  "-Wl,-z,nodelete",
];

/** Where the C sources live: beside this module, `file:` or `https:` alike. */
export const C_DIR = new URL("../c/", import.meta.url);

/**
 * The files of `c/` the library is built from. A module loaded over HTTP
 * cannot list its directory, so the build names its files; a test checks
 * this list against `c/`.
 */
export const C_SOURCES: readonly string[] = [
  "affinity.c",
  "bt_csum.h",
  "bt_internal.h",
  "bt_lock.h",
  "bt_offload.h",
  "bt_parse.h",
  "bt_ring.h",
  "bulktap.h",
  "device.c",
  "devmap.c",
  "ffi_abi.c",
  "forward.c",
  "gro.c",
  "gso.c",
  "latency.c",
  "lib.c",
  "offload_check.c",
  "pool.c",
  "tap.c",
  "tap_internal.h",
  "tap_rx.c",
  "tap_stats.c",
  "tap_tx.c",
  "tap_uring.c",
];

/** One C source or header: its file name and contents. */
export interface SourceFile {
  /** File name within `c/`, e.g. `"pool.c"`. */
  name: string;
  /** The file's bytes. */
  bytes: Uint8Array;
}

/** Options for {@linkcode buildLibrary}. */
export interface BuildOptions {
  /** Compile flavour; default from `BULKTAP_FLAVOUR`, else `release`. */
  flavour?: Flavour;
  /** Compiler; default from `CC`, else the first of cc, gcc, clang found. */
  cc?: string;
  /** Cache directory; default from `BULKTAP_CACHE_DIR`. */
  cacheDir?: string;
  /** Print what is being built to stderr. */
  verbose?: boolean;
  /**
   * Directory of the C sources, a `file:` URL read synchronously (default:
   * the `c/` beside this module). Ignored when `sources` is given.
   */
  sourceDir?: URL;
  /**
   * The C sources already read (see {@linkcode readSources}, which fetches
   * them from any URL: how a module loaded over HTTP gets them).
   */
  sources?: readonly SourceFile[];
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: use defaults
  }
}

/** The cache directory libraries are built into. */
export function cacheDir(): string {
  const explicit = env("BULKTAP_CACHE_DIR");
  if (explicit) return explicit;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/bulktap`;
  const home = env("HOME");
  if (home) return `${home}/.cache/bulktap`;
  return new URL("../.cache/", import.meta.url).pathname;
}

function fnv1a64(chunks: Uint8Array[]): string {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = 0xffffffffffffffffn;
  // Fold 32 bits at a time through a 32-bit FNV for speed, then mix into 64.
  let h32 = 0x811c9dc5;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++) {
      h32 ^= c[i];
      h32 = Math.imul(h32, 0x01000193) >>> 0;
    }
    h = ((h ^ BigInt(h32)) * prime) & mask;
  }
  return h.toString(16).padStart(16, "0");
}

function readSourcesSync(dir: URL): SourceFile[] {
  return C_SOURCES.map((name) => ({ name, bytes: Deno.readFileSync(new URL(name, dir)) }));
}

/**
 * Read the C sources with `fetch`, from a `file:`, `http:` or `https:`
 * directory URL (default: the `c/` beside this module).
 *
 * @example
 * ```ts
 * import { buildLibrary, readSources } from "./build.ts";
 * const path = buildLibrary({ sources: await readSources() });
 * console.log(path);
 * ```
 */
export async function readSources(dir: URL = C_DIR): Promise<SourceFile[]> {
  return await Promise.all(C_SOURCES.map(async (name) => {
    const url = new URL(name, dir);
    const r = await fetch(url);
    if (!r.ok) {
      await r.body?.cancel();
      throw new BulktapError("ENOENT", `C source ${url.href}: ${r.status} ${r.statusText}`);
    }
    return { name, bytes: new Uint8Array(await r.arrayBuffer()) };
  }));
}

/** Whether this process may run `cc` (no prompt: a query, not a request). */
function mayRun(cc: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "run", command: cc }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * The compiler that would build, and what it says about itself: the first
 * of the candidates (CC, or cc, gcc, clang) that runs `--version`. Undefined
 * when none does, or when running compilers is not permitted.
 */
function compilerIdentity(explicit?: string): { cc: string; version: string } | undefined {
  const wanted = explicit ?? env("CC");
  for (const cc of wanted ? [wanted] : ["cc", "gcc", "clang"]) {
    if (!mayRun(cc)) continue;
    try {
      const r = new Deno.Command(cc, { args: ["--version"], stdout: "piped", stderr: "null" })
        .outputSync();
      if (r.success) return { cc, version: new TextDecoder().decode(r.stdout) };
    } catch {
      // not found: try the next
    }
  }
  return undefined;
}

/** The newest cached library whose name starts with `prefix`, if any. */
function newestCached(dir: string, prefix: string): string | undefined {
  let best: { path: string; mtime: number } | undefined;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (!e.isFile || !e.name.startsWith(prefix) || !e.name.endsWith(".so")) continue;
      const path = `${dir}/${e.name}`;
      const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
      if (!best || mtime > best.mtime) best = { path, mtime };
    }
  } catch {
    return undefined; // no cache directory yet
  }
  return best?.path;
}

function pickCompiler(explicit?: string): string {
  const wanted = explicit ?? env("CC");
  const candidates = wanted ? [wanted] : ["cc", "gcc", "clang"];
  for (const cc of candidates) {
    try {
      const r = new Deno.Command(cc, { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync();
      if (r.success) return cc;
    } catch {
      // not found: try the next
    }
  }
  throw new BulktapError(
    "ENOCC",
    `no C compiler found (tried ${candidates.join(", ")}). bulktap builds its ` +
      "C library on first use: install one, e.g. `apt-get install gcc` " +
      "(Debian/Ubuntu) or `dnf install gcc`, or set CC to its path.",
  );
}

/** Optional system libraries the build links when their headers exist. */
function optionalFeatures(): { defines: string[]; libs: string[] } {
  const defines: string[] = [];
  const libs: string[] = [];
  for (const dir of ["/usr/include", "/usr/local/include"]) {
    try {
      Deno.statSync(`${dir}/liburing.h`);
      defines.push("-DBT_HAVE_LIBURING=1");
      libs.push("-luring");
      break;
    } catch {
      // absent
    }
  }
  return { defines, libs };
}

/**
 * Build the library if the cache does not hold this exact build, and
 * return its path.
 *
 * @example
 * ```ts
 * import { buildLibrary } from "./build.ts";
 * const path = buildLibrary({ flavour: "release" });
 * console.log(path);
 * ```
 */
export function buildLibrary(options: BuildOptions = {}): string {
  const flavour = options.flavour ?? (env("BULKTAP_FLAVOUR") as Flavour | undefined) ??
    "release";
  if (!(flavour in FLAGS)) {
    throw new BulktapError(
      "EINVAL",
      `BULKTAP_FLAVOUR=${flavour} is not one of ${Object.keys(FLAGS).join(", ")}`,
    );
  }
  const srcs = options.sources ?? readSourcesSync(options.sourceDir ?? C_DIR);
  const features = optionalFeatures();
  const cc = options.cc ?? env("CC") ?? "cc";
  const flags = [...COMMON, ...FLAGS[flavour], ...features.defines];
  const enc = new TextEncoder();
  // The name has two keys: what is asked for (sources, flags, compiler
  // name), then which compiler answered and its version.
  const hash = fnv1a64([
    enc.encode([cc, ...flags, ...features.libs].join(" ")),
    ...srcs.flatMap((s) => [enc.encode(s.name), s.bytes]),
  ]);
  const dir = options.cacheDir ?? cacheDir();
  const prefix = `libbulktap-${flavour}-${hash}-`;
  const id = compilerIdentity(options.cc);
  if (!id) {
    // Cannot ask the compiler (not permitted, or none installed): any
    // build of exactly these sources and flags will do.
    const cached = newestCached(dir, prefix);
    if (cached) return cached;
  }
  const compiler = id?.cc ?? pickCompiler(options.cc);
  const lib = `${dir}/${prefix}${fnv1a64([enc.encode(`${compiler}\n${id?.version ?? ""}`)])}.so`;
  try {
    Deno.statSync(lib);
    return lib; // cached
  } catch {
    // build below
  }
  Deno.mkdirSync(dir, { recursive: true });
  const nonce = `${Deno.pid}.${Math.random().toString(36).slice(2)}`;
  const tmp = `${lib}.${nonce}.tmp`;
  // Compile copies written into the cache: the sources may have come over
  // HTTP, and the compiler reads files.
  const srcTmp = `${dir}/src-${hash}.${nonce}`;
  Deno.mkdirSync(srcTmp);
  for (const s of srcs) Deno.writeFileSync(`${srcTmp}/${s.name}`, s.bytes);
  const cfiles = srcs.filter((s) => s.name.endsWith(".c")).map((s) => `${srcTmp}/${s.name}`);
  const args = [...flags, "-o", tmp, ...cfiles, ...features.libs];
  if (options.verbose) console.error(`bulktap: ${compiler} ${args.join(" ")}`);
  const r = new Deno.Command(compiler, { args, stdout: "piped", stderr: "piped" }).outputSync();
  Deno.removeSync(srcTmp, { recursive: true });
  if (!r.success) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // nothing written
    }
    const msg = new TextDecoder().decode(r.stderr).trim();
    throw new BulktapError("EBUILD", `compiling the C library failed:\n${msg}`);
  }
  Deno.renameSync(tmp, lib);
  return lib;
}

if (import.meta.main) {
  const flavour = Deno.args[0] as Flavour | undefined;
  console.log(buildLibrary({ flavour, verbose: true }));
}
