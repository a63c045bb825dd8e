/**
 * A directory served over HTTP on 127.0.0.1 (a random port), as a remote
 * module host would serve it: TypeScript as `application/typescript`,
 * everything else as bytes, 404 for what is not there.
 *
 * @module
 */

/** A running file server; `await using` stops it. */
export interface DirServer {
  /** Base URL, ending in `/`. */
  url: URL;
  /** Stop serving. */
  [Symbol.asyncDispose](): Promise<void>;
}

const TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  js: "application/javascript; charset=utf-8",
  json: "application/json",
};

/**
 * Serve `root` (a `file:` directory URL) on a random port of 127.0.0.1.
 *
 * @example
 * ```ts
 * import { serveDir } from "./serve_dir.ts";
 * await using s = serveDir(new URL("../", import.meta.url));
 * console.log((await fetch(new URL("deno.json", s.url))).status); // 200
 * ```
 */
export function serveDir(root: URL): DirServer {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(new URL(`.${path}`, root));
      const ext = path.split(".").pop() ?? "";
      return new Response(body, {
        headers: { "content-type": TYPES[ext] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return {
    url: new URL(`http://127.0.0.1:${server.addr.port}/`),
    [Symbol.asyncDispose]: async () => {
      await server.shutdown();
    },
  };
}
