/**
 * The C tests (test/c/run.sh): spec tests under AddressSanitizer + UBSan
 * with gcc and clang, and the threaded concurrency test under
 * ThreadSanitizer and AddressSanitizer. One Deno test per run of the script;
 * its output is shown when it fails.
 */
import assert from "assert";

Deno.test("C: spec tests under ASan/UBSan and concurrency tests under TSan all pass", async () => {
  const script = new URL("./c/run.sh", import.meta.url).pathname;
  const r = await new Deno.Command("bash", { args: [script], stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const summary = out.trim().split("\n").at(-1) ?? "";
  const m = summary.match(/^(\d+) passed, (\d+) failed$/);
  if (!r.success || !m || m[2] !== "0") console.error(out);
  assert.ok(m, `no summary line from test/c/run.sh; last line: ${summary}`);
  console.log(`  test/c/run.sh: ${summary}`);
  assert.equal(Number(m[2]), 0, `${m[2]} C checks failed (output above)`);
  assert.ok(Number(m[1]) > 100, `only ${m[1]} C checks ran`);
  assert.ok(r.success, `test/c/run.sh exited ${r.code}`);
});
