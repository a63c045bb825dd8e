/**
 * One rule for tests that need something the machine may lack (root, a TAP,
 * clang, Chromium, ...): say so loudly, and never let a missing capability
 * pass silently where it is required.
 *
 * - On a developer machine without the capability, the tests that need it
 *   are reported as ignored, under a banner saying what was not tested and
 *   what to install.
 * - Where `BULKTAP_REQUIRE_ALL=1` (set by `.ci/run`: our CI machines are
 *   root and have every package installed), a missing capability is a
 *   failing test named for it instead.
 */

const reported = new Set<string>();

/** True when every capability is required (CI). */
export const requireAll = (() => {
  try {
    return Deno.env.get("BULKTAP_REQUIRE_ALL") === "1";
  } catch {
    return false; // no env permission (the least-privilege runs): not CI's parent run
  }
})();

/**
 * Decide whether tests needing `what` run. `reason` is why they cannot (or
 * undefined when they can). Returns the value for `Deno.test`'s `ignore`.
 *
 * @example
 * ```ts
 * import { needs } from "./capability.ts";
 * const ignore = needs("clang", Deno.build.os === "linux" ? undefined : "not Linux", "apt-get install clang");
 * Deno.test({ name: "needs clang", ignore, fn() {} });
 * ```
 */
export function needs(what: string, reason: string | undefined, fix: string): boolean {
  if (reason === undefined) return false;
  if (reported.has(what)) return true;
  reported.add(what);
  const bar = "!".repeat(78);
  console.error(
    `\n${bar}\n!!! ${what}: ${requireAll ? "REQUIRED BUT MISSING" : "IGNORED"}: ${reason}.\n` +
      `!!! ${fix}\n${bar}\n`,
  );
  if (requireAll) {
    Deno.test(`${what}: required capability is present (BULKTAP_REQUIRE_ALL=1)`, () => {
      throw new Error(`${what} cannot run: ${reason}. ${fix}`);
    });
  }
  return true;
}

/**
 * The path of gcc's AddressSanitizer runtime (to `LD_PRELOAD` into a Deno
 * running the `asan` build), or undefined when it is not installed.
 *
 * @example
 * ```ts
 * import { asanRuntime } from "./capability.ts";
 * console.log(asanRuntime() ?? "no libasan");
 * ```
 */
export function asanRuntime(): string | undefined {
  try {
    const r = new Deno.Command("gcc", {
      args: ["-print-file-name=libasan.so"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    const path = new TextDecoder().decode(r.stdout).trim();
    if (!r.success || !path.startsWith("/")) return undefined;
    Deno.statSync(path);
    return path;
  } catch {
    return undefined;
  }
}
