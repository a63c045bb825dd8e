import assert from "assert";
import { buildLibrary, C_DIR, C_SOURCES } from "../ffi/build.ts";

/** A scratch copy of c/ and an empty cache, removed afterwards. */
function scratch(): { src: URL; cache: string; [Symbol.dispose](): void } {
  const dir = Deno.makeTempDirSync({ prefix: "bulktap-build-" });
  Deno.mkdirSync(`${dir}/c`);
  for (const e of Deno.readDirSync(C_DIR)) {
    if (e.isFile) Deno.copyFileSync(new URL(e.name, C_DIR), `${dir}/c/${e.name}`);
  }
  return {
    src: new URL(`file://${dir}/c/`),
    cache: `${dir}/cache`,
    [Symbol.dispose]: () => Deno.removeSync(dir, { recursive: true }),
  };
}

Deno.test("build: the first use compiles the library into the cache", () => {
  using s = scratch();
  const lib = buildLibrary({ sourceDir: s.src, cacheDir: s.cache });
  assert.ok(lib.startsWith(s.cache) && Deno.statSync(lib).isFile, lib);
});

Deno.test("build: a second run reuses the cached library without compiling", () => {
  using s = scratch();
  const first = buildLibrary({ sourceDir: s.src, cacheDir: s.cache });
  const mtime = Deno.statSync(first).mtime!.getTime();
  const second = buildLibrary({ sourceDir: s.src, cacheDir: s.cache });
  assert.equal(second, first);
  // A build renames a fresh file into place: same mtime, one file = no build.
  assert.equal(Deno.statSync(second).mtime!.getTime(), mtime);
  assert.equal([...Deno.readDirSync(s.cache)].length, 1);
});

Deno.test("build: editing a C file rebuilds under a new name", () => {
  using s = scratch();
  const first = buildLibrary({ sourceDir: s.src, cacheDir: s.cache });
  Deno.writeTextFileSync(new URL("lib.c", s.src), "\n/* edited */\n", { append: true });
  const second = buildLibrary({ sourceDir: s.src, cacheDir: s.cache });
  assert.notEqual(second, first);
});

Deno.test("build: a missing compiler fails with ENOCC saying what to install", () => {
  using s = scratch();
  assert.throws(
    () => buildLibrary({ sourceDir: s.src, cacheDir: s.cache, cc: "/nonexistent/cc" }),
    (e: Error & { code?: string }) =>
      e.code === "ENOCC" && e.message.includes("apt-get install gcc"),
  );
});

Deno.test("build: a C error fails with EBUILD carrying the compiler's message", () => {
  using s = scratch();
  Deno.writeTextFileSync(new URL("lib.c", s.src), "\nint broken(void) { return }\n", {
    append: true,
  });
  assert.throws(
    () => buildLibrary({ sourceDir: s.src, cacheDir: s.cache }),
    (e: Error & { code?: string }) => e.code === "EBUILD" && e.message.includes("lib.c"),
  );
  assert.deepEqual(
    [...Deno.readDirSync(s.cache)].filter((e) => e.name.endsWith(".tmp")),
    [],
    "no half-written file left behind",
  );
});

Deno.test("build: the debug and sanitizer flavours are selectable and cached apart", () => {
  using s = scratch();
  const release = buildLibrary({ sourceDir: s.src, cacheDir: s.cache, flavour: "release" });
  const debug = buildLibrary({ sourceDir: s.src, cacheDir: s.cache, flavour: "debug" });
  const asan = buildLibrary({ sourceDir: s.src, cacheDir: s.cache, flavour: "asan" });
  assert.equal(new Set([release, debug, asan]).size, 3);
  assert.ok(debug.includes("-debug-") && asan.includes("-asan-"));
});

Deno.test("build: an unknown flavour fails with EINVAL naming it", () => {
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => buildLibrary({ flavour: "fast" as any }),
    (e: Error & { code?: string }) => e.code === "EINVAL" && e.message.includes("fast"),
  );
});

Deno.test("build: a different compiler version behind the same name rebuilds", () => {
  using s = scratch();
  // A compiler named the same both times whose --version changes, as when
  // gcc is upgraded or `cc` is pointed at clang.
  const cc = `${s.cache}-cc`;
  const fake = (version: string) =>
    Deno.writeTextFileSync(
      cc,
      `#!/bin/sh\n[ "$1" = --version ] && { echo "fakecc ${version}"; exit 0; }\nexec cc "$@"\n`,
      { mode: 0o755 },
    );
  try {
    fake("1.0");
    const first = buildLibrary({ sourceDir: s.src, cacheDir: s.cache, cc });
    assert.equal(buildLibrary({ sourceDir: s.src, cacheDir: s.cache, cc }), first, "cached");
    fake("2.0");
    const second = buildLibrary({ sourceDir: s.src, cacheDir: s.cache, cc });
    assert.notEqual(second, first, "the new version got its own build");
  } finally {
    Deno.removeSync(cc);
  }
});

Deno.test("build: the source list names every C file and header of c/", () => {
  const files = [...Deno.readDirSync(C_DIR)]
    .filter((e) => e.isFile && /\.(c|h)$/.test(e.name))
    .map((e) => e.name)
    .sort();
  assert.deepEqual([...C_SOURCES].sort(), files);
});
