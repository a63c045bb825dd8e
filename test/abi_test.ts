import assert from "node:assert/strict";
import { abiModule, headerConstants } from "../ffi/gen_abi.ts";
import { checkAbi, library } from "../ffi/lib.ts";
import { BT_META_SIZE, BT_VERSION } from "../ffi/abi.ts";
import { BulktapError } from "../ffi/errors.ts";

const HEADER = Deno.readTextFileSync(new URL("../c/bulktap.h", import.meta.url));

Deno.test("abi: ffi/abi.ts is what c/bulktap.h generates (run deno task abi if not)", () => {
  const committed = Deno.readTextFileSync(new URL("../ffi/abi.ts", import.meta.url));
  assert.equal(committed, abiModule(HEADER));
});

Deno.test("abi: defines, enums with implicit and explicit values and expressions are read", () => {
  const got = headerConstants(
    "#define BT_A 4u /* four */\n#define BT_B ((1u << BT_A) - 1)\n" +
      "enum bt_x {\n\tBT_X0,\n\tBT_X1, /* one */\n\tBT_X5 = 5,\n\tBT_X6\n};\n",
  );
  assert.deepEqual(got.map((c) => [c.name, c.value]), [
    ["BT_A", 4],
    ["BT_B", 15],
    ["BT_X0", 0],
    ["BT_X1", 1],
    ["BT_X5", 5],
    ["BT_X6", 6],
  ]);
});

Deno.test("abi: the loaded library reports the header's version and metadata size", () => {
  assert.equal(library().bt_version(), BT_VERSION);
  assert.equal(library().bt_meta_size(), BT_META_SIZE);
});

Deno.test("abi: a library of another version is closed and refused with EBUILD naming both", () => {
  let closed = false;
  assert.throws(
    () => checkAbi(BT_VERSION + 1, BT_META_SIZE, "/cache/libbulktap-x.so", () => closed = true),
    (e) =>
      e instanceof BulktapError && e.code === "EBUILD" &&
      e.message.includes(`bt_version() is ${BT_VERSION + 1}`) &&
      e.message.includes(`BT_VERSION ${BT_VERSION}`) &&
      e.message.includes("/cache/libbulktap-x.so"),
  );
  assert.ok(closed);
});

Deno.test("abi: a library with another metadata size is refused with EBUILD naming both", () => {
  assert.throws(
    () => checkAbi(BT_VERSION, 40, "/cache/lib.so", () => {}),
    (e) =>
      e instanceof BulktapError && e.code === "EBUILD" && /bt_meta_size\(\) is 40/.test(e.message),
  );
});
