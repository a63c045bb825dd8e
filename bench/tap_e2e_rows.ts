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

/** Every row, in the order of the first round. */
export const ROWS = [
  { id: "bridge", label: "Linux bridge, default offloads" },
  { id: "bridge-off", label: "Linux bridge, offloads off (ethtool -K)" },
  { id: "testpmd", label: "DPDK testpmd io forward (net_tap)" },
  ...Object.entries(FORWARD_ROWS).map(([id, r]) => ({ id, label: r.label })),
] as const;

/** A row's id. */
export type RowId = typeof ROWS[number]["id"];

/** The baseline row. */
export const BRIDGE: RowId = "bridge";

/**
 * The rows that are bulktap's bulk C path as it ships (the via-rings row is
 * the design it is compared with, not one of them).
 */
export const BULK_ROWS: RowId[] = ["fwd-bulk", "fwd-offload", "fwd-gro"];

/** Whether row `id` runs `bulktap forward`. */
export function isForwardRow(id: RowId): id is ForwardRowId {
  return id in FORWARD_ROWS;
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
