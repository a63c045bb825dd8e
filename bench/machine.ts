/**
 * What machine a benchmark ran on, printed beside every figure.
 *
 * @module
 */

/** The machine a run happened on. */
export interface MachineInfo {
  /** CPU model name. */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  /** Kernel release. */
  kernel: string;
  /** Deno version. */
  deno: string;
  /** C compiler version line. */
  cc: string;
}

/**
 * Describe this machine.
 *
 * @example
 * ```ts
 * import { machineInfo } from "./bench/machine.ts";
 * console.log(machineInfo().cores);
 * ```
 */
export function machineInfo(): MachineInfo {
  let cpu = "unknown";
  try {
    const m = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/);
    if (m) cpu = m[1].trim();
  } catch { /* not Linux */ }
  let cc = "unknown";
  try {
    const r = new Deno.Command(Deno.env.get("CC") ?? "cc", { args: ["--version"] }).outputSync();
    cc = new TextDecoder().decode(r.stdout).split("\n")[0];
  } catch { /* no compiler */ }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    cc,
  };
}

/** One line for report headers. */
export function machineLine(m: MachineInfo = machineInfo()): string {
  return `${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Deno ${m.deno}, ${m.cc}`;
}
