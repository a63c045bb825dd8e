import assert from "node:assert/strict";
import { abiModule, headerConstants } from "../ffi/gen_abi.ts";
import { checkAbi, library } from "../ffi/lib.ts";
import { BT_META_SIZE, BT_VERSION } from "../ffi/abi.ts";
import { BulktapError } from "../ffi/errors.ts";
import { symbols } from "../ffi/symbols.ts";

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

/** `BT_API` prototypes of a header: name -> result and parameter C types. */
function prototypes(text: string): Map<string, { result: string; params: string[] }> {
  const out = new Map<string, { result: string; params: string[] }>();
  const flat = text.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\s+/g, " ");
  for (const m of flat.matchAll(/BT_API ([\w\s*]+?)\b(bt_\w+)\s*\(([^)]*)\)\s*;/g)) {
    const list = m[3].trim();
    out.set(m[2], {
      result: m[1].trim(),
      params: list === "void" || list === "" ? [] : list.split(",").map((p) => p.trim()),
    });
  }
  return out;
}

/** The FFI types a C declaration (type and maybe a name) may be bound as. */
function ffiTypes(decl: string): string[] {
  if (decl.includes("*")) return ["buffer", "pointer"];
  const t = decl.replace(/\bconst\b/g, "").trim().replace(/\s+\w+$/, "");
  const map: Record<string, string> = {
    uint8_t: "u8",
    uint16_t: "u16",
    uint32_t: "u32",
    int32_t: "i32",
    uint64_t: "u64",
    int64_t: "i64",
    double: "f64",
    void: "void",
  };
  return [map[t] ?? `(no FFI type for ${t})`];
}

/** Where a dlopen table disagrees with the header's prototypes. */
function signatureMismatches(
  table: Record<string, { name?: string; parameters: readonly string[]; result: string }>,
  header: string,
): string[] {
  const protos = prototypes(header);
  const bad: string[] = [];
  for (const [key, s] of Object.entries(table)) {
    const name = s.name ?? key;
    const p = protos.get(name);
    if (!p) {
      bad.push(`${name}: no BT_API prototype`);
      continue;
    }
    if (s.parameters.length !== p.params.length) {
      bad.push(`${name}: ${s.parameters.length} parameters, the header has ${p.params.length}`);
    }
    s.parameters.forEach((t, i) => {
      if (i < p.params.length && !ffiTypes(p.params[i]).includes(t)) {
        bad.push(`${name}: parameter ${i} is ${t}, the header says ${p.params[i]}`);
      }
    });
    if (!ffiTypes(`${p.result} r`).includes(s.result)) {
      bad.push(`${name}: result ${s.result}, the header says ${p.result}`);
    }
  }
  return bad;
}

Deno.test("abi: every signature of ffi/symbols.ts is its c/bulktap.h prototype's", () => {
  assert.deepEqual(signatureMismatches(symbols, HEADER), []);
  assert.ok(Object.keys(symbols).length > 40, "the whole table was checked");
});

Deno.test("abi: a signature that disagrees with the header is caught", () => {
  const header = "BT_API int32_t bt_f(uint32_t dev, const uint32_t *refs,\n\t\tuint32_t n);\n";
  assert.deepEqual(
    signatureMismatches({ bt_f: { parameters: ["u32", "buffer", "u32"], result: "i32" } }, header),
    [],
  );
  assert.deepEqual(
    signatureMismatches({ bt_f: { parameters: ["u32", "u32"], result: "u32" } }, header),
    [
      "bt_f: 2 parameters, the header has 3",
      "bt_f: parameter 1 is u32, the header says const uint32_t *refs",
      "bt_f: result u32, the header says int32_t",
    ],
  );
  assert.deepEqual(signatureMismatches({ bt_g: { parameters: [], result: "i32" } }, header), [
    "bt_g: no BT_API prototype",
  ]);
});
