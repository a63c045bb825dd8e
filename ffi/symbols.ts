/**
 * The dlopen table: every C entry point bulktap binds, with its FFI types.
 * Arrays of frames cross as `buffer` (a typed array) followed by its
 * length in elements (the `bt_ffi_*` entries of c/ffi_abi.c check every
 * count against it), scalars as 32-bit integers, so every call is a V8 fast
 * call. Callers take lengths from dataplane/boundary.ts, never from a field. Calls that may sleep are bound
 * twice: once plain, once `nonblocking` (run on Deno's blocking thread pool
 * and returning a Promise), so a waiting reader never blocks the event loop.
 *
 * @module
 */

/** The FFI signature of every symbol in `c/bulktap.h`. */
export const symbols = {
  bt_version: { parameters: [], result: "u32" },
  bt_now_ns: { parameters: [], result: "u64" },
  bt_current_cpu: { parameters: [], result: "i32" },
  bt_meta_size: { parameters: [], result: "u32" },

  bt_pool_create: { parameters: ["u32", "u32", "u32"], result: "i32" },
  bt_pool_destroy: { parameters: ["u32"], result: "i32" },
  bt_pool_base: { parameters: ["u32"], result: "pointer" },
  bt_pool_info: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  bt_pool_stats: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  bt_pool_alloc: {
    name: "bt_ffi_pool_alloc",
    parameters: ["u32", "buffer", "u32", "u32"],
    result: "i32",
  },
  bt_pool_put: {
    name: "bt_ffi_pool_put",
    parameters: ["u32", "buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  bt_pool_lookup: { parameters: ["u32"], result: "i32" },
  bt_frames_put: {
    name: "bt_ffi_frames_put",
    parameters: ["buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  bt_frame_check: { parameters: ["u32"], result: "i32" },

  bt_dev_create: { parameters: ["u32", "u32", "u32"], result: "i32" },
  bt_dev_close: { parameters: ["u32"], result: "i32" },
  bt_dev_info: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  bt_dev_stats: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  bt_queue_for_cpu: { parameters: ["u32", "i32"], result: "i32" },

  bt_xmit: {
    name: "bt_ffi_xmit",
    parameters: ["u32", "buffer", "u32", "u32", "u32", "i32"],
    result: "i32",
  },
  bt_xmit_copy: {
    name: "bt_ffi_xmit_copy",
    parameters: ["u32", "buffer", "u32", "buffer", "u32", "u32", "u32", "i32"],
    result: "i32",
  },
  bt_flush: { parameters: ["u32", "i32"], result: "i32" },

  bt_queue_read: {
    name: "bt_ffi_queue_read",
    parameters: ["u32", "u32", "buffer", "u32", "u32"],
    result: "i32",
  },
  bt_queue_unread: {
    name: "bt_ffi_queue_unread",
    parameters: ["u32", "u32", "buffer", "u32", "u32"],
    result: "i32",
  },
  bt_queue_read_spin: {
    name: "bt_ffi_queue_read_spin",
    parameters: ["u32", "u32", "buffer", "u32", "u32", "u32"],
    result: "i32",
  },
  bt_queue_count: { parameters: ["u32", "u32"], result: "i32" },
  bt_queue_ready: { parameters: ["u32", "u32"], result: "i32" },
  bt_queue_wait: { parameters: ["u32", "u32", "i32"], result: "i32" },
  bt_queue_wait_async: {
    name: "bt_queue_wait",
    parameters: ["u32", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // The shared waits of dataplane/waiter.ts: cancellable through a word.
  bt_queue_wait_cancellable_async: {
    name: "bt_queue_wait_cancellable",
    parameters: ["u32", "u32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  bt_queue_kick: { parameters: ["u32", "i32"], result: "i32" },

  bt_tap_open: {
    parameters: ["u32", "buffer", "u32", "u32", "u32", "u32", "u32", "u32"],
    result: "i32",
  },
  bt_tap_name_check: { parameters: ["buffer"], result: "i32" },
  bt_tap_open_why: { parameters: ["buffer", "u32"], result: "i32" },
  bt_tap_set_sndbuf: { parameters: ["u32", "i32"], result: "i32" },
  bt_tap_set_offloads: { parameters: ["u32", "u32"], result: "i32" },
  bt_tap_rx: {
    name: "bt_ffi_tap_rx",
    parameters: ["u32", "u32", "buffer", "u32", "u32"],
    result: "i32",
  },
  bt_tap_rx_wait_async: {
    name: "bt_tap_rx_wait",
    parameters: ["u32", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  bt_tap_rx_wait: { parameters: ["u32", "u32", "i32"], result: "i32" },
  bt_tap_rx_wait_cancellable_async: {
    name: "bt_tap_rx_wait_cancellable",
    parameters: ["u32", "u32", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  bt_tap_stats: { parameters: ["u32", "buffer", "u32"], result: "i32" },
  bt_forward_start: { parameters: ["u32", "u32", "u32", "u32"], result: "i32" },
  bt_forward_pair_start: { parameters: ["u32", "u32", "u32", "u32"], result: "i32" },
  // Joins the forwarder threads: may wait for a batch in flight.
  bt_forward_stop_async: {
    name: "bt_forward_stop",
    parameters: ["u32"],
    result: "i32",
    nonblocking: true,
  },
  bt_devmap_xmit: {
    name: "bt_ffi_devmap_xmit",
    parameters: [
      "buffer",
      "u32",
      "u32",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "u32",
      "u32",
      "u32",
      "i32",
      "buffer",
      "u32",
    ],
    result: "i32",
  },
  bt_lat_init: { parameters: ["buffer", "u32"], result: "i32" },
  bt_frames_latency: {
    name: "bt_ffi_frames_latency",
    parameters: ["buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  bt_frames_latency_at: {
    name: "bt_ffi_frames_latency_at",
    parameters: ["buffer", "u32", "u32", "f64", "buffer", "u32"],
    result: "i32",
  },
  bt_queue_consume: {
    name: "bt_ffi_queue_consume",
    parameters: ["u32", "u32", "buffer", "u32", "u32", "buffer", "u32"],
    result: "i32",
  },
  bt_pool_handles: { parameters: [], result: "pointer" },
  bt_pin_thread: { parameters: ["i32"], result: "i32" },
  // The clock without a BigInt per call (hot paths).
  bt_now_ns_f64: { parameters: [], result: "f64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound library: `symbols` as Deno sees them. */
export type BulktapSymbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
