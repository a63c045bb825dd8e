/**
 * Loads the C library (building it first if needed) and exposes its symbols.
 * Every Worker that imports this module opens the same shared object, so
 * pools and devices created in one Worker are usable, by handle, in all.
 *
 * @module
 */
import { buildLibrary, C_DIR, readSources, type SourceFile } from "./build.ts";
import { type BulktapSymbols, symbols } from "./symbols.ts";

// A module loaded over HTTP(S) fetches its C sources when it loads (it can
// read them no other way); without permission to, the first use reports what
// is missing. A local module reads them at first use, and has no top-level
// await: a Worker whose module is still evaluating when its first message
// arrives loses that message (the Scheduler's Workers would never start).
const fetched: readonly SourceFile[] | undefined = C_DIR.protocol === "file:"
  ? undefined
  : await readSources().catch(() => undefined);

let loaded: { path: string; symbols: BulktapSymbols } | undefined;

/**
 * The bound C library, loaded on first call.
 *
 * @example
 * ```ts
 * import { library } from "./lib.ts";
 * console.log(library().bt_version());
 * ```
 */
export function library(): BulktapSymbols {
  if (!loaded) {
    const path = buildLibrary({ sources: fetched });
    loaded = { path, symbols: Deno.dlopen(path, symbols).symbols };
  }
  return loaded.symbols;
}

/**
 * The path of the loaded shared library (for `--allow-ffi=<path>`).
 *
 * @example
 * ```ts
 * import { libraryPath } from "./lib.ts";
 * console.log(libraryPath());
 * ```
 */
export function libraryPath(): string {
  library();
  return loaded!.path;
}
