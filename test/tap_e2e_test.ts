/**
 * The TAP end-to-end sitting (bench/tap_e2e.ts): its parsers, and one tiny
 * real sitting (Linux bridge and `bulktap forward` bulk, 1 s tests) whose
 * figures must be positive and which must leave no namespace or device
 * behind.
 */
import assert from "assert";
import { parseIperfTcp, parseIperfUdp, parsePing } from "../bench/iperf.ts";
import { parseProcStatCpuNs } from "../bench/netns.ts";
import {
  cPathTwin,
  e2eEntries,
  e2eProblem,
  e2eTable,
  forwardArgs,
  forwardDrops,
  runE2e,
  testpmdDrops,
} from "../bench/tap_e2e.ts";
import { isFigure } from "../bench/points.ts";
import { needs } from "./capability.ts";
import { skipReason } from "./tap_helpers.ts";

Deno.test("e2e: iperf3 JSON, ping, /proc/PID/stat, forward --json and testpmd drops parse", () => {
  const tcp = parseIperfTcp(JSON.stringify({
    end: {
      sum_sent: { retransmits: 7, bytes: 1e9, seconds: 1 },
      sum_received: { bits_per_second: 8e9, bytes: 1e9, seconds: 1 },
    },
  }));
  assert.deepEqual(tcp, { gbps: 8, retransmits: 7, bytes: 1e9, seconds: 1 });
  assert.throws(() => parseIperfTcp(JSON.stringify({ error: "unable to connect" })), /unable/);
  assert.throws(() => parseIperfTcp("iperf3: error"), /no JSON/);
  const udp = parseIperfUdp(JSON.stringify({
    end: { sum_received: { seconds: 2, packets: 100, lost_packets: 40, lost_percent: 40 } },
  }));
  assert.deepEqual(udp, { pps: 30, lossPct: 40, sent: 100, received: 60 });
  const ping = parsePing(
    "64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=0.200 ms\n" +
      "64 bytes from 10.77.0.2: icmp_seq=2 ttl=64 time=0.100 ms\n",
  );
  assert.deepEqual(ping, { median: 0.15000000000000002, avg: 0.15000000000000002, replies: 2 });
  assert.throws(() => parsePing("1 packets transmitted, 0 received"), /no reply/);
  // A command name with ") " in it must not shift the fields.
  const stat = "7 (a) b) R 1 7 7 0 -1 4194304 10 0 0 0 30 20 0 0 20 0 9 0 1 2 3";
  assert.equal(parseProcStatCpuNs(stat), 50 * 1e7);
  assert.equal(
    forwardDrops(JSON.stringify({ devices: { a: { dropped: 1 }, b: { dropped: 2 } } })),
    3,
  );
  assert.equal(testpmdDrops("no statistics"), undefined);
  // The program row is compared with the C row of the same flags.
  for (const nf of [true, false]) {
    const twin = cPathTwin(nf)!;
    assert.deepEqual(
      ["--program", "forward", ...forwardArgs(twin, nf)].sort(),
      forwardArgs("fwd-program", nf).sort(),
    );
  }
});

const why = skipReason ?? e2eProblem();

function leftovers(prefix: string): string[] {
  const run = (args: string[]) =>
    new TextDecoder().decode(new Deno.Command("ip", { args, stdout: "piped" }).outputSync().stdout);
  return [...run(["netns", "list"]).split("\n"), ...run(["-o", "link", "show"]).split("\n")]
    .filter((l) => l.includes(prefix));
}

Deno.test({
  name: "e2e: bridge and bulktap forward bulk carry TCP, UDP and ping; nothing is left behind",
  ignore: needs(
    "TAP end-to-end sitting",
    why,
    "It needs root, /dev/net/tun, iproute2 and iperf3 (apt-get install iperf3 ethtool); " +
      "the end-to-end benchmark was not tested in this run.",
  ),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const prefix = `bte2t${Deno.pid % 100000}`;
    const r = await runE2e({
      rows: ["bridge", "fwd-bulk"],
      seconds: 1,
      rounds: 1,
      pings: 5,
      prefix,
      log: (m) => console.log(`  ${m}`),
    });
    console.log(e2eTable(r));
    assert.deepEqual(leftovers(prefix), [], "namespaces or devices left behind");
    for (const row of r.rows) {
      assert.equal(row.unmeasured, undefined, `${row.label}: ${row.unmeasured}`);
      assert.equal(row.runs.length, 1);
      const [x] = row.runs;
      assert.ok(x.tcp.gbps > 0 && x.tcp.bytes > 0, `${row.label}: TCP`);
      assert.ok(x.udp.pps > 0 && x.udp.received > 0, `${row.label}: UDP`);
      assert.ok(x.ping.median > 0 && x.ping.replies > 0, `${row.label}: ping`);
    }
    const fwd = r.rows.find((x) => x.id === "fwd-bulk")!.runs[0];
    assert.ok(fwd.cpuNsPerFrameUdp! > 0, "forwarder CPU per frame");
    assert.ok(fwd.cpuNsPerKiBTcp! > 0, "forwarder CPU per KiB");
    assert.ok(fwd.drops !== undefined && fwd.drops >= 0, "forward --json drops");
    const bridge = r.rows.find((x) => x.id === "bridge")!.runs[0];
    assert.equal(bridge.cpuNsPerFrameUdp, undefined, "no process forwards for the bridge");
    // Entries: every figure of the bulktap row names the bridge's beside it.
    const figs = e2eEntries(r).filter(isFigure);
    const tcp = figs.find((f) =>
      f.scenario.includes("bulk, no offloads") && f.name === "TCP 1 stream"
    )!;
    assert.match(tcp.baseline, /Linux bridge \(default offloads\), same rounds: [\d.]+/);
    assert.ok(figs.some((f) => f.scenario.includes("headline") && f.name.startsWith("TCP")));
    assert.ok(figs.every((f) => Number.isFinite(f.value.median)));
  },
});
