/**
 * Loads the C library (building it first if needed) and exposes its symbols.
 * Every Worker that imports this module opens the same shared object, so
 * pools and devices created in one Worker are usable, by handle, in all.
 *
 * @module
 */
import { buildLibrary, C_DIR, readSources, type SourceFile } from "./build.ts";
import { type BulktapSymbols, symbols } from "./symbols.ts";
import { BT_META_SIZE, BT_VERSION } from "./abi.ts";
import { BulktapError } from "./errors.ts";

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
    const lib = Deno.dlopen(path, symbols);
    checkAbi(lib.symbols.bt_version(), lib.symbols.bt_meta_size(), path, () => lib.close());
    loaded = { path, symbols: lib.symbols };
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

/**
 * Check a loaded library against the header this module was generated
 * from (`ffi/abi.ts`): its version and frame metadata size. A mismatch
 * throws `EBUILD` naming both values and the library's path (after
 * `close`, so nothing keeps using it).
 *
 * @example
 * ```ts
 * import { checkAbi } from "./lib.ts";
 * checkAbi(1, 32, "/tmp/libbulktap.so", () => {});
 * ```
 */
export function checkAbi(version: number, metaSize: number, path: string, close: () => void): void {
  const problems: string[] = [];
  if (version !== BT_VERSION) {
    problems.push(`bt_version() is ${version}, c/bulktap.h says BT_VERSION ${BT_VERSION}`);
  }
  if (metaSize !== BT_META_SIZE) {
    problems.push(`bt_meta_size() is ${metaSize}, c/bulktap.h says BT_META_SIZE ${BT_META_SIZE}`);
  }
  if (!problems.length) return;
  close();
  throw new BulktapError(
    "EBUILD",
    `the C library ${path} does not match this bulktap: ${problems.join("; ")}. ` +
      "Remove it from the cache to rebuild, or run ffi/gen_abi.ts (deno task abi) " +
      "after editing c/bulktap.h",
  );
}
