/**
 * iperf3 and ping between two network namespaces: run them (with
 * deadlines) and read their output (`iperf3 --json`, ping's per-reply
 * times).
 *
 * @module
 */
import { Child, exec } from "./netns.ts";

/** A TCP test's result. */
export interface TcpResult {
  /** Goodput the receiver saw, Gbit/s. */
  gbps: number;
  /** Segments the sender retransmitted. */
  retransmits: number;
  /** Bytes the receiver got. */
  bytes: number;
  /** Length of the test, s. */
  seconds: number;
}

/** A UDP test's result. */
export interface UdpResult {
  /** Datagrams received per second. */
  pps: number;
  /** Datagrams lost, % of those sent. */
  lossPct: number;
  /** Datagrams sent. */
  sent: number;
  /** Datagrams received. */
  received: number;
}

/** Ping round-trip times, ms. */
export interface PingResult {
  /** Median over replies. */
  median: number;
  /** Mean over replies. */
  avg: number;
  /** Replies. */
  replies: number;
}

// deno-lint-ignore no-explicit-any
type Json = any;

function iperfJson(text: string): Json {
  let j: Json;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error(`iperf3 printed no JSON: ${text.trim().slice(0, 300)}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  return j;
}

/**
 * Read `iperf3 -c ... --json` of a TCP test.
 *
 * @example
 * ```ts
 * import { parseIperfTcp } from "./bench/iperf.ts";
 * const r = parseIperfTcp(JSON.stringify({ end: {
 *   sum_sent: { retransmits: 3, seconds: 2, bytes: 2.6e9 },
 *   sum_received: { bits_per_second: 1e10, seconds: 2, bytes: 2.5e9 },
 * } }));
 * console.log(r.gbps, r.retransmits); // 10 3
 * ```
 */
export function parseIperfTcp(text: string): TcpResult {
  const end = iperfJson(text).end;
  const rx = end?.sum_received, tx = end?.sum_sent;
  if (!rx || !tx) throw new Error("iperf3 TCP JSON has no end.sum_received/sum_sent");
  return {
    gbps: rx.bits_per_second / 1e9,
    retransmits: tx.retransmits ?? 0,
    bytes: rx.bytes,
    seconds: rx.seconds,
  };
}

/**
 * Read `iperf3 -c ... -u --json` of a UDP test: what the server received
 * (iperf3 3.x reports it in `end.sum_received`, older ones in `end.sum`).
 *
 * @example
 * ```ts
 * import { parseIperfUdp } from "./bench/iperf.ts";
 * const r = parseIperfUdp(JSON.stringify({ end: {
 *   sum_received: { seconds: 2, packets: 1000, lost_packets: 200, lost_percent: 20 },
 * } }));
 * console.log(r.pps, r.lossPct); // 400 20
 * ```
 */
export function parseIperfUdp(text: string): UdpResult {
  const end = iperfJson(text).end;
  const s = end?.sum_received ?? end?.sum;
  if (!s || s.packets === undefined) throw new Error("iperf3 UDP JSON has no end.sum_received");
  const received = s.packets - s.lost_packets;
  return {
    pps: received / s.seconds,
    lossPct: s.lost_percent,
    sent: s.packets,
    received,
  };
}

/**
 * Read ping's output (without -q): the time of every reply.
 *
 * @example
 * ```ts
 * import { parsePing } from "./bench/iperf.ts";
 * const out = "64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=0.050 ms\n" +
 *   "64 bytes from 10.77.0.2: icmp_seq=2 ttl=64 time=0.070 ms\n" +
 *   "64 bytes from 10.77.0.2: icmp_seq=3 ttl=64 time=0.300 ms\n";
 * console.log(parsePing(out).median); // 0.07
 * ```
 */
export function parsePing(text: string): PingResult {
  const t = [...text.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  if (t.length === 0) throw new Error(`ping got no reply: ${text.trim().slice(-300)}`);
  const s = [...t].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return {
    median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2,
    avg: t.reduce((a, b) => a + b, 0) / t.length,
    replies: t.length,
  };
}

/** `ip netns exec ns argv...` */
export function inNs(ns: string, argv: string[]): string[] {
  return ["ip", "netns", "exec", ns, ...argv];
}

/** An iperf3 server in namespace `ns`, ready for clients; stop it with {@linkcode Child.stop}. */
export async function iperfServer(ns: string, timeoutMs: number, port = 5201): Promise<Child> {
  const c = new Child(
    inNs(ns, ["iperf3", "-s", "-p", String(port), "--forceflush"]),
    timeoutMs,
  );
  try {
    await c.waitFor("Server listening", 10_000);
  } catch (e) {
    c.kill();
    throw e;
  }
  return c;
}

async function client(ns: string, args: string[], seconds: number): Promise<string> {
  for (let attempt = 0;; attempt++) {
    const r = await exec(inNs(ns, ["iperf3", ...args, "--json"]), seconds * 1000 + 20_000);
    if (r.timedOut) throw new Error(`iperf3 ${args.join(" ")} timed out`);
    // The server may still be closing the last test: try again shortly.
    if (attempt < 3 && /server is busy/.test(r.stdout)) {
      await new Promise((res) => setTimeout(res, 500));
      continue;
    }
    // On failure iperf3 still prints JSON with "error"; the parser reports it.
    return r.stdout || r.stderr;
  }
}

/** TCP from `ns` to `ip`: `streams` streams for `seconds`. */
export async function tcpTest(
  ns: string,
  ip: string,
  seconds: number,
  streams = 1,
  port = 5201,
): Promise<TcpResult> {
  return parseIperfTcp(
    await client(ns, [
      "-c",
      ip,
      "-p",
      String(port),
      "-t",
      String(seconds),
      "-P",
      String(streams),
    ], seconds),
  );
}

/** UDP from `ns` to `ip`: `len`-byte datagrams as fast as the sender can. */
export async function udpTest(
  ns: string,
  ip: string,
  seconds: number,
  len = 64,
  port = 5201,
): Promise<UdpResult> {
  return parseIperfUdp(
    await client(ns, [
      "-c",
      ip,
      "-p",
      String(port),
      "-t",
      String(seconds),
      "-u",
      "-l",
      String(len),
      "-b",
      "0",
    ], seconds),
  );
}

/** `count` pings from `ns` to `ip`, `intervalS` apart. */
export async function pingTest(
  ns: string,
  ip: string,
  count: number,
  intervalS: number,
): Promise<PingResult> {
  const r = await exec(
    inNs(ns, ["ping", "-n", "-c", String(count), "-i", String(intervalS), "-W", "1", ip]),
    count * intervalS * 1000 + 10_000,
  );
  return parsePing(r.stdout);
}
