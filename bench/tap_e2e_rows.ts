/**
 * The rows of the end-to-end TAP sitting (bench/tap_e2e.ts): the paths it
 * compares, the `forward` flags of each bulktap row, and what one row
 * measured per round.
 *
 * @module
 */
import type { PingResult, TcpResult, UdpResult } from "./iperf.ts";

/** Scenario prefix of every end-to-end entry. */
export const E2E = "end to end nsA -> nsB";

/** `forward` arguments of each bulktap row: ONE table. */
export const FORWARD_ROWS = {
  "fwd-single": {
    label: "bulktap forward single (1 frame per syscall, no offloads)",
    args: ["--mode", "single", "--no-vnet-hdr"],
  },
  "fwd-bulk": {
    label: "bulktap forward bulk, no offloads",
    args: ["--no-vnet-hdr"],
  },
  "fwd-offload": {
    label: "bulktap forward bulk, offloads (pass-through)",
    args: [],
  },
  // The same flags handing frames through the other TAP's queue rings: the
  // design the direct write replaced, measured beside it.
  "fwd-via-ring": {
    label: "bulktap forward bulk, offloads, via rings",
    args: ["--via-ring"],
  },
  "fwd-gro": {
    label: "bulktap forward bulk, software GRO",
    args: ["--offloads", "none"],
  },
  "fwd-program": {
    label: "bulktap forward --program forward (bulk)",
    args: ["--program", "forward"],
  },
  "fwd-program-single": {
    label: "bulktap forward --program forward, single",
    args: ["--program", "forward", "--mode", "single"],
  },
} as const;

/** A bulktap row. */
export type ForwardRowId = keyof typeof FORWARD_ROWS;

/**
 * `switch` arguments and ports of each switch row: ONE table. The switch's
 * defaults are `forward --program`'s (vnet header, every offload, bulk 64,
 * 1 queue, 1 Worker); single mode is a transmit stage of one frame, as
 * `forward --program --mode single`. A third port's TAP is in a namespace
 * of its own, idle but for what is flooded to it.
 */
export const SWITCH_ROWS = {
  switch2: { label: "bulktap switch, 2 ports (bulk)", ports: 2, args: [] },
  "switch2-single": {
    label: "bulktap switch, 2 ports, single",
    ports: 2,
    args: ["--mode", "single"],
  },
  switch3: { label: "bulktap switch, 3 ports (bulk)", ports: 3, args: [] },
  "switch3-single": {
    label: "bulktap switch, 3 ports, single",
    ports: 3,
    args: ["--mode", "single"],
  },
} as const;

/** A `bulktap switch` row. */
export type SwitchRowId = keyof typeof SWITCH_ROWS;

/**
 * The Linux bridge rows: ports, offloads, and the name a figure's baseline
 * gives them. `bridge3` is the 3-port switch's kernel counterpart.
 */
export const BRIDGE_ROWS = {
  bridge: {
    label: "Linux bridge, default offloads",
    baseline: "Linux bridge (default offloads)",
    ports: 2,
    offloads: true,
  },
  "bridge-off": {
    label: "Linux bridge, offloads off (ethtool -K)",
    baseline: "Linux bridge (offloads off)",
    ports: 2,
    offloads: false,
  },
  bridge3: {
    label: "Linux bridge, 3 ports, default offloads",
    baseline: "Linux bridge, 3 ports (default offloads)",
    ports: 3,
    offloads: true,
  },
} as const;

/** A Linux bridge row. */
export type BridgeRowId = keyof typeof BRIDGE_ROWS;

const labelled = <T extends Record<string, { label: string }>>(t: T) =>
  (Object.keys(t) as (keyof T & string)[]).map((id) => ({ id, label: t[id].label }));

/** Every row, in the order of the first round. */
export const ROWS = [
  ...labelled(BRIDGE_ROWS),
  { id: "testpmd", label: "DPDK testpmd io forward (net_tap)" } as const,
  ...labelled(FORWARD_ROWS),
  ...labelled(SWITCH_ROWS),
];

/** A row's id. */
export type RowId = BridgeRowId | "testpmd" | ForwardRowId | SwitchRowId;

/** The baseline row. */
export const BRIDGE: RowId = "bridge";

/** The 3-port rows' baseline. */
export const BRIDGE3: RowId = "bridge3";

/**
 * The rows that are bulktap's bulk C path as it ships (the via-rings row is
 * the design it is compared with, not one of them).
 */
export const BULK_ROWS: RowId[] = ["fwd-bulk", "fwd-offload", "fwd-gro"];

/** Whether row `id` runs `bulktap forward`. */
export function isForwardRow(id: RowId): id is ForwardRowId {
  return id in FORWARD_ROWS;
}

/** Whether row `id` runs `bulktap switch`. */
export function isSwitchRow(id: RowId): id is SwitchRowId {
  return id in SWITCH_ROWS;
}

/** Whether row `id` is a Linux bridge. */
export function isBridgeRow(id: RowId): id is BridgeRowId {
  return id in BRIDGE_ROWS;
}

/**
 * The namespaces row `id` joins: 2, or 3 (iperf3 and ping still between
 * the first two).
 *
 * @example
 * ```ts
 * import { portsOf } from "./bench/tap_e2e_rows.ts";
 * console.log(portsOf("switch3"), portsOf("fwd-bulk")); // 3 2
 * ```
 */
export function portsOf(id: RowId): 2 | 3 {
  if (isSwitchRow(id)) return SWITCH_ROWS[id].ports;
  if (isBridgeRow(id)) return BRIDGE_ROWS[id].ports;
  return 2;
}

/** The bridge row a row's figures stand beside: the one with as many ports. */
export function baselineOf(id: RowId): BridgeRowId {
  return portsOf(id) === 3 ? "bridge3" : "bridge";
}

/**
 * The C-path row that runs the program row's flags without `--program`,
 * if any.
 *
 * @example
 * ```ts
 * import { cPathTwin } from "./bench/tap_e2e_rows.ts";
 * console.log(cPathTwin()); // fwd-offload
 * ```
 */
export function cPathTwin(): ForwardRowId | undefined {
  const args = (id: ForwardRowId): readonly string[] => FORWARD_ROWS[id].args;
  const p = args("fwd-program");
  const i = p.indexOf("--program");
  const want = [...p.slice(0, i), ...p.slice(i + 2)].join(" ");
  return (Object.keys(FORWARD_ROWS) as ForwardRowId[]).find((id) =>
    !args(id).includes("--program") && args(id).join(" ") === want
  );
}

/** What one row measured in one round. */
export interface RowRun {
  /** Round index. */
  round: number;
  tcp: TcpResult;
  udp: UdpResult;
  ping: PingResult;
  /** Forwarder CPU per frame the kernel sent into the path during the UDP test, ns. */
  cpuNsPerFrameUdp?: number;
  /** Forwarder CPU per KiB sent into the path during the TCP test, ns. */
  cpuNsPerKiBTcp?: number;
  /** Forwarder CPU over wall time during the TCP test (cores). */
  cpuCoresTcp?: number;
  /** Frames the forwarder dropped over the whole run of this row (all tests). */
  drops?: number;
  /** Frames the idle third namespace received during the TCP and UDP tests (3-port rows). */
  thirdRx?: number;
}

/** A row over every round. */
export interface RowResult {
  id: RowId;
  label: string;
  runs: RowRun[];
  /** Why it was not measured. */
  unmeasured?: string;
  /** What the row ran with (`forward` flags), or a caveat. */
  note?: string;
}

/** The 4-stream, long TCP comparison. */
export interface LongRun {
  id: RowId;
  label: string;
  tcp: TcpResult;
  drops?: number;
}

/** A whole sitting. */
export interface E2eResult {
  rows: RowResult[];
  long: LongRun[];
  /** Length of every iperf3 test, s. */
  seconds: number;
  rounds: number;
  machine: string;
  /** 1-minute load average before and after. */
  load: { start: number; end: number };
}
