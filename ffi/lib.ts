/**
 * Loads the C library (building it first if needed) and exposes its symbols.
 * Every Worker that imports this module opens the same shared object, so
 * pools and devices created in one Worker are usable, by handle, in all.
 *
 * @module
 */
import { buildLibrary, readSources, type SourceFile } from "./build.ts";
import { type BulktapSymbols, symbols } from "./symbols.ts";

// The C sources, fetched beside this module when it loads (a module loaded
// over HTTP can read them no other way). Without permission to read them
// now, the first use reads them itself and reports what is missing.
const fetched: readonly SourceFile[] | undefined = await readSources().catch(() => undefined);

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
