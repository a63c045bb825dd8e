/**
 * Runs the libFuzzer harness (test/fuzz/fuzz_api.c, ASan + UBSan) for a
 * bounded time: 60 s by default (what CI runs), `BULKTAP_FUZZ_SECONDS=5` to
 * shorten it locally. Ignored, loudly, when clang or its libFuzzer runtime is
 * missing.
 */
import assert from "assert";
import { needs } from "./capability.ts";

const RUN = new URL("./fuzz/run.sh", import.meta.url).pathname;
const SECONDS = Number(Deno.env.get("BULKTAP_FUZZ_SECONDS") ?? "60");

function haveLibFuzzer(): string | undefined {
  try {
    const r = new Deno.Command("clang", {
      args: ["-print-file-name=libclang_rt.fuzzer-x86_64.a"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!r.success) return "clang -print-file-name failed";
    const path = new TextDecoder().decode(r.stdout).trim();
    // clang echoes the bare name back when it has no such file.
    if (!path.startsWith("/")) return "libclang_rt.fuzzer is not installed (libclang-rt-14-dev)";
    Deno.statSync(path);
    return undefined;
  } catch {
    return "clang is not installed";
  }
}

const missing = needs(
  "fuzz (libFuzzer)",
  haveLibFuzzer(),
  "Install clang and libclang-rt-14-dev to run the libFuzzer harness.",
);

Deno.test({
  name: `fuzz: ${SECONDS} s of random API call sequences break no invariant (ASan, UBSan)`,
  ignore: missing,
  sanitizeResources: false,
  async fn() {
    const out = await new Deno.Command("bash", {
      args: [RUN],
      env: { FUZZ_SECONDS: String(SECONDS) },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    console.log(`  ${text.trim().split("\n").at(-1)}`);
    assert.ok(out.success, text);
    const m = text.match(/fuzz_api: (\d+) executions/);
    assert.ok(m && Number(m[1]) > 0, `no executions reported:\n${text}`);
  },
});
