/**
 * Child processes with a deadline, and the network namespaces and devices
 * one benchmark sitting creates: every one is registered, and
 * {@linkcode Sitting.cleanup} removes them all (also from a SIGINT
 * handler, synchronously), so a sitting leaves nothing behind.
 *
 * @module
 */

const dec = new TextDecoder();

/** What a finished command printed. */
export interface Output {
  /** Exit code (the killing signal's number + 128 after a timeout). */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** True when the deadline killed it. */
  timedOut: boolean;
}

/**
 * Run `argv` to completion, killed after `timeoutMs`.
 *
 * @example
 * ```ts ignore
 * import { exec } from "./bench/netns.ts";
 * console.log((await exec(["true"], 1000)).code); // 0
 * ```
 */
export async function exec(argv: string[], timeoutMs: number): Promise<Output> {
  const signal = AbortSignal.timeout(timeoutMs);
  const r = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  return {
    code: r.code,
    stdout: dec.decode(r.stdout),
    stderr: dec.decode(r.stderr),
    timedOut: signal.aborted,
  };
}

/** Run `argv`; throw with its stderr unless it exits 0 in time. */
export async function must(argv: string[], timeoutMs = 10_000): Promise<string> {
  const r = await exec(argv, timeoutMs);
  if (r.code !== 0 || r.timedOut) {
    throw new Error(
      `\`${argv.join(" ")}\` ${
        r.timedOut ? `timed out after ${timeoutMs} ms` : `failed (${r.code})`
      }: ${(r.stderr || r.stdout).trim().slice(-500)}`,
    );
  }
  return r.stdout;
}

/** True when `tool` is on PATH. */
export function have(tool: string): boolean {
  return new Deno.Command("sh", {
    args: ["-c", `command -v ${tool}`],
    stdout: "null",
    stderr: "null",
  }).outputSync().success;
}

/** A long-running child whose output is collected; killed by its deadline at the latest. */
export class Child {
  readonly child: Deno.ChildProcess;
  /** Standard output so far. */
  out = "";
  /** Standard error so far. */
  err = "";
  readonly #pumps: Promise<void>[];
  readonly #writer?: WritableStreamDefaultWriter<Uint8Array>;

  constructor(argv: string[], timeoutMs: number, stdin = false) {
    this.child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).spawn();
    if (stdin) this.#writer = this.child.stdin.getWriter();
    this.#pumps = [
      this.#pump(this.child.stdout, (s) => (this.out += s)),
      this.#pump(this.child.stderr, (s) => (this.err += s)),
    ];
  }

  async #pump(s: ReadableStream<Uint8Array>, add: (s: string) => void): Promise<void> {
    const d = new TextDecoder();
    for await (const b of s) add(d.decode(b, { stream: true }));
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid;
  }

  /** Write `text` to its stdin (ignored once it is gone). */
  async write(text: string): Promise<void> {
    try {
      await this.#writer?.write(new TextEncoder().encode(text));
    } catch {
      // exited already
    }
  }

  /** Wait until stdout or stderr contains `text`, or throw after `ms` (or when it exits first). */
  async waitFor(text: string, ms: number): Promise<void> {
    let exited = false;
    this.child.status.then(() => (exited = true));
    const end = performance.now() + ms;
    while (!this.out.includes(text) && !this.err.includes(text)) {
      if (exited || performance.now() > end) {
        throw new Error(
          `${exited ? "exited" : `timed out after ${ms} ms`} before printing "${text}": ` +
            (this.err + this.out).trim().slice(-800),
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Send `sig` (never throws), then wait for exit and all output, killing it after `ms`. */
  async stop(sig: Deno.Signal, ms = 10_000): Promise<Deno.CommandStatus> {
    this.kill(sig);
    const t = setTimeout(() => this.kill("SIGKILL"), ms);
    try {
      return await this.finish();
    } finally {
      clearTimeout(t);
    }
  }

  /** Wait for exit and all output. */
  async finish(): Promise<Deno.CommandStatus> {
    const st = await this.child.status;
    await Promise.all(this.#pumps);
    try {
      await this.#writer?.close();
    } catch {
      // closed with the process
    }
    return st;
  }

  /** Signal it (never throws). */
  kill(sig: Deno.Signal = "SIGKILL"): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** Kernel counters of one link. */
export interface LinkCounts {
  rxPackets: number;
  txPackets: number;
  rxBytes: number;
  txBytes: number;
}

/** Counters of `dev` in namespace `ns`. */
export async function linkCounts(dev: string, ns: string): Promise<LinkCounts> {
  const j = JSON.parse(await must(["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev]))[0]
    .stats64;
  return {
    rxPackets: j.rx.packets,
    txPackets: j.tx.packets,
    rxBytes: j.rx.bytes,
    txBytes: j.tx.bytes,
  };
}

const CLK_TCK = 100; // USER_HZ: what /proc reports times in on every Linux port

/**
 * User + system CPU time of a process (every thread) from the text of
 * /proc/PID/stat, ns.
 *
 * @example
 * ```ts
 * import { parseProcStatCpuNs } from "./bench/netns.ts";
 * const stat = "42 (a b) S 1 42 42 0 -1 0 0 0 0 0 150 50 0 0 20 0 3 0";
 * console.log(parseProcStatCpuNs(stat)); // 2000000000
 * ```
 */
export function parseProcStatCpuNs(stat: string): number {
  // The command name may hold spaces and parentheses: count from the last ")".
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(f[11]) + Number(f[12])) * (1e9 / CLK_TCK);
}

/** CPU time of process `pid`, ns. */
export function procCpuNs(pid: number): number {
  return parseProcStatCpuNs(Deno.readTextFileSync(`/proc/${pid}/stat`));
}

/**
 * The namespaces and root-namespace devices of one sitting, and its
 * long-running children: whatever is registered is removed by
 * {@linkcode Sitting.cleanup}.
 */
export class Sitting {
  readonly #netns = new Set<string>();
  readonly #links = new Set<string>();
  readonly #children = new Set<Child>();

  /** Create namespace `name` (loopback up) and register it. */
  async addNetns(name: string): Promise<void> {
    this.#netns.add(name);
    await must(["ip", "netns", "add", name]);
    await must(["ip", "-n", name, "link", "set", "lo", "up"]);
  }

  /** Register a root-namespace device some child creates (a TAP) for removal. */
  link(name: string): void {
    this.#links.add(name);
  }

  /** Register a child to kill on cleanup. */
  child(c: Child): Child {
    this.#children.add(c);
    return c;
  }

  /** Forget a child that has been stopped. */
  forget(c: Child): void {
    this.#children.delete(c);
  }

  /** Kill every child, delete every namespace and device (synchronous; never throws). */
  cleanup(): void {
    for (const c of this.#children) c.kill("SIGKILL");
    this.#children.clear();
    const run = (args: string[]) => {
      try {
        new Deno.Command("ip", { args, stdout: "null", stderr: "null" }).outputSync();
      } catch {
        // best effort
      }
    };
    for (const ns of this.#netns) run(["netns", "del", ns]);
    for (const l of this.#links) run(["link", "del", l]);
    this.#netns.clear();
    this.#links.clear();
  }
}
