/**
 * The package face: every function, class and constant an entry of
 * `deno.json` exports carries an `@example` (types and interfaces are
 * documented by the functions that take them; `@internal` ones are not
 * part of the face). `deno doc --lint` checks the rest of the docs.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const CONFIG = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT))) as {
  exports: Record<string, string>;
};

interface DocTag {
  kind: string;
}
interface DocDecl {
  kind: string;
  declarationKind: string;
  jsDoc?: { tags?: DocTag[] };
}

for (const [name, path] of Object.entries(CONFIG.exports)) {
  Deno.test(`docs: every function, class and constant of ${name} has an @example`, async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["doc", "--json", path],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      nodes: Record<string, { symbols?: { name: string; declarations: DocDecl[] }[] }>;
    };
    const missing: string[] = [];
    let checked = 0;
    for (const mod of Object.values(doc.nodes)) {
      for (const s of mod.symbols ?? []) {
        const d = s.declarations.find((x) => x.declarationKind === "export");
        if (!d || d.kind === "interface" || d.kind === "typeAlias") continue;
        const tags = d.jsDoc?.tags ?? [];
        if (tags.some((t) => t.kind === "internal")) continue;
        checked++;
        if (!tags.some((t) => t.kind === "example")) missing.push(`${d.kind} ${s.name}`);
      }
    }
    assert.ok(checked > 0, `${path} exports nothing deno doc can see`);
    assert.deepEqual(missing, []);
  });
}
