import assert from "node:assert/strict";
import { intFlag, numFlag, parseFlags, UsageError } from "../dataplane/cli/flags.ts";

const SPEC = { rate: "string", json: "boolean", help: "boolean" } as const;

Deno.test("flags: a negative value reads the same after a space as after =", () => {
  assert.deepEqual(parseFlags(["--rate", "-5"], SPEC).values, { rate: "-5" });
  assert.deepEqual(parseFlags(["--rate=-5"], SPEC).values, { rate: "-5" });
});

Deno.test("flags: every unknown flag is named in one error", () => {
  assert.throws(
    () => parseFlags(["--frobnicate", "--json", "--colour=red"], SPEC),
    (e) => e instanceof UsageError && e.message === "unknown flags: --frobnicate, --colour",
  );
});

Deno.test("flags: a string flag without its value is named", () => {
  assert.throws(
    () => parseFlags(["--rate"], SPEC),
    (e) => e instanceof UsageError && e.message === "--rate needs a value",
  );
  assert.throws(() => parseFlags(["--rate", "--json"], SPEC), /--rate needs a value/);
});

Deno.test("flags: a boolean flag given a value is named", () => {
  assert.throws(() => parseFlags(["--json=yes"], SPEC), /--json takes no value/);
});

Deno.test("flags: -h is --help; arguments are refused unless the command takes them", () => {
  assert.deepEqual(parseFlags(["-h"], SPEC).values, { help: true });
  assert.throws(() => parseFlags(["stray"], SPEC), /unexpected argument: stray/);
  assert.deepEqual(parseFlags(["a", "--json", "b"], SPEC, true).positionals, ["a", "b"]);
});

Deno.test("flags: integers and numbers are checked against their range, naming flag and value", () => {
  assert.equal(intFlag("bulk", undefined, 16, 1, 256), 16);
  assert.equal(intFlag("bulk", "32", 16, 1, 256), 32);
  for (const bad of ["0", "257", "1.5", "abc", "", "-5"]) {
    assert.throws(
      () => intFlag("bulk", bad, 16, 1, 256),
      (e) => e instanceof UsageError && e.message === `--bulk=${bad} is not an integer in 1..256`,
    );
  }
  assert.equal(numFlag("rate", "0.5", 0, 0, 1e9), 0.5);
  assert.throws(
    () => numFlag("rate", "-5", 0, 0, 1e9),
    /--rate=-5 is not a number in 0\.\.1000000000/,
  );
});
