/**
 * The calling thread's CPU affinity, for tests that pin the test runner's
 * thread for a moment: {@linkcode allowedCpus} reads it and
 * {@linkcode pinnedTo} pins with the library's `bt_pin_thread` (what
 * `--pin` uses) and restores the saved mask afterwards. The mask is read
 * and restored through libc's `sched_getaffinity`/`sched_setaffinity`
 * (pid 0: this thread only), so Deno's other threads are never touched.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";

const MASK_BYTES = 128; // cpu_set_t: 1024 CPUs

let libc:
  | Deno.DynamicLibrary<{
    sched_getaffinity: { parameters: ["i32", "usize", "buffer"]; result: "i32" };
    sched_setaffinity: { parameters: ["i32", "usize", "buffer"]; result: "i32" };
  }>
  | undefined;

function affinity() {
  libc ??= Deno.dlopen("libc.so.6", {
    sched_getaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
    sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  });
  return libc.symbols;
}

function getMask(): Uint8Array {
  const mask = new Uint8Array(MASK_BYTES);
  const r = affinity().sched_getaffinity(0, BigInt(MASK_BYTES), mask);
  if (r !== 0) throw new Error(`sched_getaffinity failed (${r})`);
  return mask;
}

/**
 * The CPUs this thread may run on, ascending.
 *
 * @example
 * ```ts
 * import { allowedCpus } from "./thread_affinity.ts";
 * console.log(allowedCpus()); // [0, 1] on a 2-core machine
 * ```
 */
export function allowedCpus(): number[] {
  const mask = getMask();
  const cpus: number[] = [];
  for (let i = 0; i < MASK_BYTES * 8; i++) if (mask[i >> 3] & (1 << (i & 7))) cpus.push(i);
  return cpus;
}

/**
 * Run `body` with this thread pinned to `cpu` by `bt_pin_thread`, then
 * restore the thread's previous affinity (also when `body` throws).
 *
 * @example
 * ```ts
 * import { pinnedTo } from "./thread_affinity.ts";
 * import { library } from "../ffi/lib.ts";
 * console.log(pinnedTo(0, () => library().bt_current_cpu())); // 0
 * ```
 */
export function pinnedTo<T>(cpu: number, body: () => T): T {
  const saved = getMask();
  const r = library().bt_pin_thread(cpu);
  if (r !== 0) throw new Error(`bt_pin_thread(${cpu}) failed (errno ${-r})`);
  let result: T;
  try {
    result = body();
  } catch (e) {
    restore(saved);
    throw e;
  }
  restore(saved);
  return result;
}

function restore(saved: Uint8Array): void {
  const r = affinity().sched_setaffinity(0, BigInt(MASK_BYTES), saved);
  if (r !== 0) throw new Error(`restoring the thread's affinity failed (${r})`);
}
