/**
 * Generates `ffi/abi.ts` from `c/bulktap.h`: every integer `#define BT_*`
 * and every `enum` member, so the TypeScript side copies no constant by
 * hand. Run `deno task abi` after editing the header; `test/abi_test.ts`
 * fails while `ffi/abi.ts` is stale.
 *
 * @module
 */

const HEADER = new URL("../c/bulktap.h", import.meta.url);
const OUT = new URL("./abi.ts", import.meta.url);

/** One constant: its name, value and the header's comment on it. */
interface Constant {
  name: string;
  value: number;
  doc: string;
}

function evaluate(expr: string, known: Map<string, number>): number | undefined {
  const js = expr
    .replace(/\b(0x[0-9a-fA-F]+|[0-9]+)(?:u|ul|ull|l|ll)\b/gi, "$1")
    .replace(/\bBT_[A-Z0-9_]+\b/g, (n) => String(known.get(n) ?? "NaN"));
  if (!/^[0-9a-fA-Fx+\-<>()| ]+$/.test(js)) return undefined;
  // Only digits, + - << | ( ): a constant expression of the header.
  const v = new Function(`return (${js});`)() as number;
  return Number.isSafeInteger(v) ? v : undefined;
}

/**
 * The integer constants `c/bulktap.h` defines, in header order.
 *
 * @example
 * ```ts
 * import { headerConstants } from "./gen_abi.ts";
 * console.log(headerConstants("#define BT_X 4u\nenum { BT_A, BT_B };\n"));
 * ```
 */
export function headerConstants(text: string): Constant[] {
  const out: Constant[] = [];
  const known = new Map<string, number>();
  const add = (name: string, value: number, doc: string) => {
    known.set(name, value);
    out.push({ name, value, doc });
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const def = lines[i].match(
      /^#define\s+(BT_[A-Z0-9_]+)\s+(.+?)\s*(?:\/\*\s*(.*?)\s*(?:\*\/)?)?\s*$/,
    );
    if (def) {
      const v = evaluate(def[2], known);
      if (v !== undefined) add(def[1], v, def[3] ?? "");
      continue;
    }
    if (!/^enum\b.*\{\s*$/.test(lines[i])) continue;
    let next = 0;
    for (i++; i < lines.length && !/^\s*\}/.test(lines[i]); i++) {
      const m = lines[i].match(
        /^\s*(BT_[A-Z0-9_]+)\s*(?:=\s*([^,/]+?))?\s*,?\s*(?:\/\*\s*(.*?)\s*(?:\*\/)?)?$/,
      );
      if (!m) continue;
      const v = m[2] === undefined ? next : evaluate(m[2], known);
      if (v === undefined) throw new Error(`bulktap.h: cannot read ${m[1]} = ${m[2]}`);
      add(m[1], v, m[3] ?? "");
      next = v + 1;
    }
  }
  return out;
}

/**
 * The text of `ffi/abi.ts` for a header's text.
 *
 * @example
 * ```ts
 * import { abiModule } from "./gen_abi.ts";
 * console.log(abiModule("#define BT_VERSION 1\n"));
 * ```
 */
export function abiModule(text: string): string {
  const body = headerConstants(text).map(({ name, value, doc }) => {
    const d = doc.replace(/\*\//g, "").replace(/\s+/g, " ").trim();
    return `/** \`${name}\`${d ? `: ${d}` : ""} */\nexport const ${name} = ${value};\n`;
  });
  return `// Generated from c/bulktap.h by ffi/gen_abi.ts (deno task abi). Do not edit.
/**
 * The C library's constants, enums, flags and layout offsets, as
 * \`c/bulktap.h\` defines them: the one source TypeScript reads them from.
 *
 * @module
 */

${body.join("\n")}`;
}

if (import.meta.main) {
  Deno.writeTextFileSync(OUT, abiModule(Deno.readTextFileSync(HEADER)));
  console.log(`wrote ${OUT.pathname}`);
}
