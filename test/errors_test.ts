/**
 * Error codes: every errno the C library can return keeps a code of its own
 * name, so a code never says more (or other) than the kernel did.
 */
import assert from "assert";
import { BulktapError } from "../mod.ts";
import { checkErrno, codeForErrno, errnoOfCode } from "../dataplane/errors.ts";
import { needs } from "./capability.ts";

Deno.test("errors: EACCES (13) and EBADFD (77) keep their own codes, not EPERM and ENODEV", () => {
  assert.equal(codeForErrno(-13), "EACCES");
  assert.equal(codeForErrno(-77), "EBADFD");
  assert.equal(codeForErrno(-1), "EPERM");
  assert.equal(codeForErrno(-19), "ENODEV");
  for (const [errno, code] of [[-13, "EACCES"], [-77, "EBADFD"]] as const) {
    assert.throws(() => checkErrno(errno, "opening something"), (e: unknown) => {
      assert.ok(e instanceof BulktapError);
      assert.equal(e.code, code, e.message);
      assert.equal(e.errno, errno);
      assert.ok(e.message.startsWith(`${code}: opening something`), e.message);
      return true;
    });
  }
});

Deno.test("errors: every errno the C library returns (`return -E...` in c/) has a code of its own name", () => {
  const dir = new URL("../c/", import.meta.url);
  const names = new Set<string>();
  for (const f of Deno.readDirSync(dir)) {
    if (!/\.[ch]$/.test(f.name)) continue;
    const src = Deno.readTextFileSync(new URL(f.name, dir));
    for (const m of src.matchAll(/-E([A-Z0-9]+)\b/g)) names.add(`E${m[1]}`);
  }
  assert.ok(names.has("EINVAL") && names.has("ENODEV"), [...names].join(" "));
  for (const name of names) {
    // EOPNOTSUPP and ENOTSUP are one number on Linux.
    const code = name === "EOPNOTSUPP" ? "ENOTSUP" : name;
    const n = errnoOfCode(code as Parameters<typeof errnoOfCode>[0]);
    assert.ok(n !== undefined, `${name} (returned in c/) has no code`);
    assert.equal(codeForErrno(-n), code, name);
  }
});

const python = (() => {
  try {
    return new Deno.Command("python3", { args: ["-c", ""] }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "errors: each errno code stands for its Linux errno number (as Python's errno module says)",
  ignore: needs(
    "python3 for the errno numbers",
    python ? undefined : "python3 is not installed",
    "Install python3.",
  ),
  fn() {
    const table = new Map<string, number>();
    for (let n = 1; n < 4096; n++) {
      const code = codeForErrno(-n);
      if (errnoOfCode(code) === n) table.set(code, n); // else the EIO fallback
    }
    const out = new Deno.Command("python3", {
      args: [
        "-c",
        "import errno, json, sys; print(json.dumps({c: getattr(errno, c, None) for c in sys.argv[1:]}))",
        ...table.keys(),
      ],
      stdout: "piped",
    }).outputSync();
    const linux: Record<string, number | null> = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.ok(table.size >= 25, `only ${table.size} errno codes`);
    for (const [code, n] of table) {
      assert.equal(n, linux[code], `${code} is errno ${linux[code]}, not ${n}`);
    }
  },
});
