/**
 * Fixtures for the TAP tests: a loud skip when the machine cannot run them,
 * shell helpers, unique names, and line-reading subprocesses. Every test
 * creates its own devices and namespaces under unique names and removes
 * them in `finally`.
 */

import { needs } from "./capability.ts";

const TOOLS = new URL("./tap_tools.py", import.meta.url).pathname;
const dec = new TextDecoder();

function probe(): string | undefined {
  if (Deno.build.os !== "linux") return "not Linux";
  try {
    Deno.statSync("/dev/net/tun");
  } catch {
    return "/dev/net/tun is missing";
  }
  try {
    const r = new Deno.Command("id", { args: ["-u"], stdout: "piped" }).outputSync();
    if (dec.decode(r.stdout).trim() !== "0") return "not running as root";
    for (const tool of ["ip", "python3"]) {
      const w = new Deno.Command("sh", { args: ["-c", `command -v ${tool}`], stdout: "null" })
        .outputSync();
      if (!w.success) return `${tool} is not installed`;
    }
    // CAP_NET_ADMIN and netns: can we create and delete a namespace?
    const name = `btprobe${Deno.pid}`;
    const ns = new Deno.Command("ip", { args: ["netns", "add", name], stderr: "piped" })
      .outputSync();
    if (!ns.success) return `cannot create a network namespace: ${dec.decode(ns.stderr).trim()}`;
    new Deno.Command("ip", { args: ["netns", "del", name] }).outputSync();
  } catch (e) {
    return `probe failed: ${(e as Error).message}`;
  }
  return undefined;
}

/** Why the TAP tests cannot run here, or undefined if they can. */
export const skipReason: string | undefined = probe();

/** Options for TAP tests: ignored (loudly) when unsupported, failing under BULKTAP_REQUIRE_ALL=1. */
export const tapTest = {
  ignore: needs(
    "TAP tests",
    skipReason,
    "They need root (CAP_NET_ADMIN), /dev/net/tun, iproute2, python3 and netns; " +
      "nothing about real TAP devices was tested in this run.",
  ),
  sanitizeResources: false,
};

/** A short unique suffix for names (interface names hold 15 bytes). */
export function uid(): string {
  return ((Deno.pid % 0xfff) * 0x1000 + Math.floor(Math.random() * 0x1000)).toString(36)
    .slice(-6);
}

/** Run a shell command; returns its status and output. */
export function sh(cmd: string): { code: number; stdout: string; stderr: string } {
  const r = new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "piped" })
    .outputSync();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** Run a shell command that must succeed. */
export function must(cmd: string): string {
  const r = sh(cmd);
  if (r.code !== 0) throw new Error(`\`${cmd}\` failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Best-effort cleanup: never throws. */
export function tryRun(cmd: string): void {
  try {
    sh(`${cmd} 2>/dev/null`);
  } catch {
    // cleanup is best effort
  }
}

/** A subprocess whose stdout lines can be awaited. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly errLines: string[] = [];
  readonly done: Promise<Deno.CommandStatus>;
  #pumps: Promise<void>[];

  constructor(cmd: string, args: string[], stdin = false) {
    this.child = new Deno.Command(cmd, {
      args,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [
      this.#pump(this.child.stdout, this.lines),
      this.#pump(this.child.stderr, this.errLines),
    ];
    this.done = this.child.status;
  }

  async #pump(s: ReadableStream<Uint8Array>, into: string[]): Promise<void> {
    let buf = "";
    const dec = new TextDecoder();
    for await (const bytes of s) {
      buf += dec.decode(bytes, { stream: true });
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        into.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    }
    if (buf) into.push(buf);
  }

  /** Wait until some line (stdout or stderr) contains `text`. */
  async waitFor(text: string, ms = 20_000): Promise<void> {
    const end = performance.now() + ms;
    while (![...this.lines, ...this.errLines].some((l) => l.includes(text))) {
      if (performance.now() > end) {
        throw new Error(
          `timed out waiting for "${text}"; stdout: ${this.lines.join("\n")}\nstderr: ${
            this.errLines.join("\n")
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Wait for exit and every output line. */
  async finish(): Promise<Deno.CommandStatus> {
    const st = await this.done;
    await Promise.all(this.#pumps);
    return st;
  }

  /** Kill if still running (cleanup; never throws). */
  kill(sig: Deno.Signal = "SIGKILL"): void {
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }
}

/** Run the python helper `tap_tools.py cmd args`, optionally in a netns. */
export function tool(args: string[], netns?: string, stdin = false): Proc {
  return netns
    ? new Proc("ip", ["netns", "exec", netns, "python3", TOOLS, ...args], stdin)
    : new Proc("python3", [TOOLS, ...args], stdin);
}

/** Kernel packet counters of a link (optionally in a netns). */
export function linkCounts(dev: string, netns?: string): { rx: number; tx: number } {
  const out = must(`ip ${netns ? `-n ${netns} ` : ""}-s -j link show dev ${dev}`);
  const j = JSON.parse(out)[0].stats64;
  return { rx: j.rx.packets, tx: j.tx.packets };
}

/** Poll `cond` until it holds or `ms` pass. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Commands that make frames written into TAP `tap` wait inside the kernel,
 * still charged to the TAP's send buffer: its ingress is redirected (tc
 * u32 + mirred, which keeps the frame's owner) to veth `v0`, whose tbf
 * qdisc lets them out at `rate`; they arrive at its peer `v1`. With a small
 * `sndbuf` this makes writes fail with EAGAIN, deterministically.
 */
export function slowPathCommands(tap: string, v0: string, v1: string, rate = "1mbit"): string[] {
  return [
    `ip link add ${v0} type veth peer name ${v1}`,
    `ip link set ${v0} up && ip link set ${v1} up`,
    `tc qdisc add dev ${v0} root tbf rate ${rate} burst 1600 limit 1000000`,
    `tc qdisc add dev ${tap} ingress`,
    `tc filter add dev ${tap} ingress protocol all u32 match u32 0 0 ` +
    `action mirred egress redirect dev ${v0}`,
  ];
}

function probeSlowPath(): string | undefined {
  if (skipReason) return skipReason;
  if (sh("command -v tc").code !== 0) return "tc (iproute2) is not installed";
  const id = (Deno.pid % 0xfffff).toString(36);
  const [t, v0, v1] = [`btpt${id}`, `btpv${id}`, `btpw${id}`];
  try {
    const r = sh(`ip tuntap add dev ${t} mode tap`);
    if (r.code !== 0) return `cannot create a TAP: ${r.stderr.trim()}`;
    for (const c of slowPathCommands(t, v0, v1)) {
      const s = sh(c);
      if (s.code !== 0) return `\`${c}\` failed: ${s.stderr.trim()}`;
    }
    return undefined;
  } finally {
    tryRun(`ip link del ${t}`);
    tryRun(`ip link del ${v0}`);
  }
}

/** Why the TAP backpressure test cannot run here (veth, tc u32/mirred/tbf), or undefined. */
export const slowPathSkipReason: string | undefined = probeSlowPath();

/** Options for the backpressure test: ignored (loudly) when unsupported, failing under BULKTAP_REQUIRE_ALL=1. */
export const slowPathTest = {
  ignore: skipReason !== undefined || needs(
    "TAP backpressure (EAGAIN) test",
    slowPathSkipReason,
    "It needs veth and tc's u32 classifier, mirred action and tbf qdisc; " +
      "writes that wait for writability were not tested in this run.",
  ),
  sanitizeResources: false,
};
