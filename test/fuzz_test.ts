/**
 * Runs the libFuzzer harnesses (test/fuzz/fuzz_*.c, ASan + UBSan) for a
 * bounded time in all: 60 s by default (what CI runs), `BULKTAP_FUZZ_SECONDS=5`
 * to shorten it locally. Every harness must report executions. Ignored,
 * loudly, when clang or its libFuzzer runtime is missing.
 */
import assert from "assert";
import { needs } from "./capability.ts";

const RUN = new URL("./fuzz/run.sh", import.meta.url).pathname;
const HARNESSES = ["fuzz_api", "fuzz_gso", "fuzz_gro"].filter((h) => {
  try {
    return Deno.statSync(new URL(`./fuzz/${h}.c`, import.meta.url)).isFile;
  } catch {
    return false;
  }
});
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
  name:
    `fuzz: ${SECONDS} s of random API call sequences and offload frames break no invariant (ASan, UBSan)`,
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
    for (const line of text.trim().split("\n").filter((l) => /^fuzz_\w+: /.test(l))) {
      console.log(`  ${line}`);
    }
    assert.ok(out.success, text);
    for (const h of HARNESSES) {
      const m = text.match(new RegExp(`${h}: (\\d+) executions`));
      assert.ok(m && Number(m[1]) > 0, `${h}: no executions reported:\n${text}`);
    }
  },
});
