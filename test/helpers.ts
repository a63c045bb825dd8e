/**
 * Test fixtures. The accounting invariant
 *
 *   frames free + frames in queues + frames held by the caller == frames in the pool
 *
 * is checked after every spec test: {@linkcode accounted} wraps a test body
 * and checks it for every pool the test created and left open (a pool that
 * was closed could only close whole), and {@linkcode withDevice} also checks
 * how many frames the caller holds and that closing the device and the pool
 * leaves nothing behind.
 */
import assert from "assert";
import { Device, type DeviceOptions, FramePool, type FramePoolOptions } from "../mod.ts";
import { openPools } from "../dataplane/pool.ts";

/** What a spec test gets. */
export interface Fixture {
  pool: FramePool;
  dev: Device;
  /** Allocate `n` frames with `len` bytes of data each (data byte i = i & 255). */
  frames(n: number, len?: number): Uint32Array;
}

/** Assert the invariant; `held` is how many frames the caller holds. */
export function assertAccounted(pool: FramePool, held: number, devices: Device[] = []): void {
  const s = pool.stats();
  assert.equal(
    s.free + s.queued + s.held,
    s.frames,
    `free ${s.free} + queued ${s.queued} + held ${s.held} != ${s.frames} frames`,
  );
  assert.equal(s.held, held, `the caller should hold ${held} frames, the pool says ${s.held}`);
  if (devices.length > 0) {
    const inQueues = devices.reduce((a, d) => a + d.stats().queued, 0);
    assert.equal(s.queued, inQueues, `pool says ${s.queued} queued, devices hold ${inQueues}`);
  }
}

/**
 * Run `body` with a fresh pool and device. `body` returns how many frames it
 * still holds (default 0); the invariant is checked with that number, then
 * the device is closed (its queued frames must come back) and the held
 * frames are freed, and the pool must close whole.
 */
export async function withDevice(
  options: { pool?: FramePoolOptions; device?: Omit<DeviceOptions, "pool"> },
  body: (fx: Fixture) => Promise<Uint32Array | void> | Uint32Array | void,
): Promise<void> {
  const pool = new FramePool({ frames: 256, ...options.pool });
  const dev = new Device({ pool, queues: 1, ringSize: 64, ...options.device });
  const fx: Fixture = {
    pool,
    dev,
    frames(n, len = 64) {
      const refs = new Uint32Array(n);
      assert.equal(pool.alloc(refs), n, `pool should have ${n} free frames`);
      for (let i = 0; i < n; i++) {
        const off = pool.dataOffset(refs[i]);
        for (let b = 0; b < len; b++) pool.bytes[off + b] = b & 255;
        pool.setLength(refs[i], len);
      }
      return refs;
    },
  };
  let held: Uint32Array | void = undefined;
  try {
    held = await body(fx);
  } catch (e) {
    // Clean up what we can, then report the body's own failure.
    if (!dev.closed) dev.close();
    try {
      pool.close();
    } catch { /* frames the failed body held keep the pool open */ }
    throw e;
  }
  assertAccounted(pool, held?.length ?? 0, dev.closed ? [] : [dev]);
  const queued = dev.closed ? 0 : dev.stats().queued;
  assert.equal(dev.close(), queued, "close returns every queued frame");
  if (held && held.length) pool.free(held);
  const s = pool.stats();
  assert.equal(s.free, s.frames, "pool whole after the test");
  pool.close();
}

/**
 * Wrap a test body so that, when it ends (passed or failed), every pool it
 * created or attached and left open satisfies free + queued + held ==
 * frames. Use as `Deno.test("name", accounted(() => { ... }))`.
 */
export function accounted(body: () => void | Promise<void>): () => Promise<void> {
  return async () => {
    const before = new Set(openPools());
    let failure: unknown = undefined;
    try {
      await body();
    } catch (e) {
      failure = e;
    }
    const broken: string[] = [];
    for (const pool of openPools()) {
      if (before.has(pool)) continue;
      let s;
      try {
        s = pool.stats();
      } catch {
        continue; // destroyed by its creator elsewhere: nothing to count
      }
      if (s.free + s.queued + s.held !== s.frames) {
        broken.push(
          `pool ${pool.handle}: free ${s.free} + queued ${s.queued} + held ${s.held} != ${s.frames} frames`,
        );
      }
    }
    if (failure !== undefined) throw failure;
    assert.deepEqual(broken, [], "accounting invariant after the test");
  };
}

/** Poll `cond` every ms until it holds or `ms` pass. */
export async function eventually(
  cond: () => boolean,
  ms = 5000,
  what = "condition",
): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Assert `fn` throws a BulktapError with `code`; returns it. */
export function assertCode(fn: () => unknown, code: string, msgIncludes?: string): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `expected a BulktapError ${code}, nothing was thrown`);
  assert.equal((err as { code?: string }).code, code, `wrong code: ${(err as Error).message}`);
  if (msgIncludes) assert.ok((err as Error).message.includes(msgIncludes), (err as Error).message);
  return err as Error;
}
