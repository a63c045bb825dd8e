/**
 * Runs the in-memory spec, boundary and fault tests again against the
 * AddressSanitizer + UBSan build of the C library (BULKTAP_FLAVOUR=asan),
 * with the ASan runtime preloaded into Deno. A use-after-free, an
 * out-of-bounds write or undefined behaviour in C aborts the child run.
 *
 * Which runtime works: gcc's libasan.so (`gcc -print-file-name=libasan.so`),
 * matching the compiler that builds the library (`cc` is gcc here). Deno
 * itself leaks at exit by design, so leak detection is off
 * (ASAN_OPTIONS=detect_leaks=0); C-level leaks are covered by the libFuzzer
 * run (fuzz_test.ts), which keeps LeakSanitizer on.
 */
import assert from "assert";
import { asanRuntime, needs } from "./capability.ts";

const inChild = Deno.env.get("BULKTAP_FLAVOUR") === "asan";

const runtime = inChild ? undefined : asanRuntime();
const noRuntime = !inChild && needs(
  "asan (TypeScript tests against the ASan/UBSan library)",
  runtime ? undefined : "gcc's libasan.so was not found",
  "apt-get install gcc; the C library was not checked under AddressSanitizer from Deno.",
);

const FILES = [
  "test/boundary_test.ts",
  "test/pool_test.ts",
  "test/xmit_test.ts",
  "test/reader_test.ts",
  "test/faults_test.ts",
];

Deno.test({
  name: "asan: spec, boundary and fault tests pass against the ASan/UBSan library",
  ignore: inChild || noRuntime,
  async fn() {
    const root = new URL("..", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "-A", "--no-check", ...FILES],
      cwd: root,
      env: {
        BULKTAP_FLAVOUR: "asan",
        LD_PRELOAD: runtime!,
        ASAN_OPTIONS: "detect_leaks=0:abort_on_error=1",
        UBSAN_OPTIONS: "halt_on_error=1:print_stacktrace=1",
        BULKTAP_SOAK_SECONDS: "2",
        NO_COLOR: "1",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const summary = text.split("\n").filter((l) => /passed \|/.test(l)).at(-1) ?? "";
    console.log(`  under ASan: ${summary.trim()}`);
    assert.ok(!/ERROR: AddressSanitizer|runtime error:/.test(text), text.slice(-6000));
    assert.ok(out.success, text.slice(-6000));
  },
});
