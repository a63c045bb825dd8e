/**
 * Bad input at the FFI boundary (issue 6). Every entry point is called raw,
 * bypassing the TypeScript checks, with values the C side must refuse: refs
 * outside any pool, lengths past the frame, queues that do not exist, counts
 * over 256, unknown flags and NULL buffers with n > 0. Each must return a
 * negative errno that `checkErrno` surfaces as a typed `BulktapError`, take
 * no frame it should not take, and write nothing past what it was asked to
 * fill (canaries here; under AddressSanitizer in asan_test.ts).
 *
 * Every array crosses with its length in elements (the `bt_ffi_*` entries):
 * C refuses a count past that length with EFAULT before touching anything
 * (tested below), and the TypeScript wrappers refuse it first with EINVAL
 * (tested at the end).
 */
import assert from "assert";
import { BulktapError, FrameState, META } from "../mod.ts";
import { checkErrno } from "../dataplane/errors.ts";
import { library } from "../ffi/lib.ts";
import { BT_DEVMAP_COUNTS } from "../ffi/abi.ts";
import { accounted, assertCode, withDevice } from "./helpers.ts";

const lib = library();
const CANARY = 0xdeadbeef;

/** The typed error a raw return value turns into. */
function typed(ret: number, code: string, what: string): void {
  assert.ok(ret < 0, `${what}: expected a negative errno, got ${ret}`);
  assertCode(() => checkErrno(ret, what), code);
}

Deno.test(
  "boundary: refs outside the pool are refused by xmit, put, unread and check",
  accounted(() =>
    withDevice({}, ({ pool, dev }) => {
      const bad = Uint32Array.from([
        0, // slot 0: never a pool
        (pool.slot << 24) | pool.frames, // one past the last frame
        (pool.slot << 24) | 0xffffff, // the largest index
        (200 << 24) | 1, // a slot with no pool
        0xffffffff,
      ]);
      for (const ref of bad) {
        const one = Uint32Array.of(ref);
        typed(lib.bt_xmit(dev.handle, one, 1, 1, 0, 0), "EINVAL", `xmit 0x${ref.toString(16)}`);
        typed(lib.bt_queue_unread(dev.handle, 0, one, 1, 1), "EINVAL", "unread");
        assert.equal(lib.bt_pool_put(pool.handle, one, 1, 1, null, 0), 0, "put refuses it");
        assert.notEqual(lib.bt_frame_check(ref), 0, "frame_check refuses it");
      }
      const s = pool.stats();
      assert.equal(s.invalidRefs, 5, "each bad ref counted once by put");
      assert.equal(s.free, s.frames, "nothing taken, nothing invented");
    })
  ),
);

Deno.test(
  "boundary: a frame whose length or data offset runs past it is refused by xmit",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(3);
      const f = (i: number) => pool.frameOffset(refs[i]);
      pool.view.setUint32(f(0) + META.len, pool.frameSize, true); // past the end
      pool.view.setUint32(f(1) + META.len, 0xffffffff, true); // would wrap 32 bits
      pool.view.setUint16(f(2) + META.dataOff, 8, true); // inside the metadata
      for (let i = 0; i < 3; i++) {
        typed(lib.bt_xmit(dev.handle, refs.subarray(i, i + 1), 1, 1, 0, 0), "EINVAL", `frame ${i}`);
        typed(
          lib.bt_queue_unread(dev.handle, 0, refs.subarray(i, i + 1), 1, 1),
          "EINVAL",
          "unread",
        );
        assert.equal(pool.bytes[f(i) + META.state], FrameState.HELD, "still held by the caller");
      }
      assert.equal(dev.stats().queued, 0);
      return refs;
    })
  ),
);

Deno.test(
  "boundary: queue numbers that do not exist fail with EINVAL on every queue call",
  accounted(() =>
    withDevice({ device: { queues: 2 } }, ({ dev }) => {
      const refs = new Uint32Array(4);
      for (const q of [2, 255, 256, 0x7fffffff, 0xffffffff]) {
        typed(lib.bt_queue_read(dev.handle, q, refs, 4, 4), "EINVAL", `read queue ${q}`);
        typed(lib.bt_queue_count(dev.handle, q), "EINVAL", `count queue ${q}`);
        typed(lib.bt_queue_wait(dev.handle, q, 0), "EINVAL", `wait queue ${q}`);
        typed(lib.bt_queue_unread(dev.handle, q, refs, 4, 0), "EINVAL", `unread queue ${q}`);
      }
      for (const q of [2, 1000, -2, -0x80000000]) {
        typed(lib.bt_flush(dev.handle, q), "EINVAL", `flush queue ${q}`);
      }
      assert.equal(lib.bt_flush(dev.handle, -1), 0, "-1 still means every queue");
      assertCode(() => dev.queue(2), "EINVAL", "does not exist");
      assertCode(() => dev.flush(2), "EINVAL", "does not exist");
    })
  ),
);

Deno.test(
  "boundary: bulks over 256 fail with E2BIG and take nothing",
  accounted(() =>
    withDevice({ pool: { frames: 512 } }, ({ pool, dev, frames }) => {
      const refs = frames(257);
      const lens = new Uint32Array(257);
      typed(lib.bt_xmit(dev.handle, refs, 257, 257, 0, 0), "E2BIG", "xmit 257");
      typed(
        lib.bt_xmit_copy(dev.handle, new Uint8Array(1), 1, lens, 257, 257, 0, 0),
        "E2BIG",
        "copy 257",
      );
      typed(lib.bt_queue_unread(dev.handle, 0, refs, 257, 257), "E2BIG", "unread 257");
      assertCode(() => dev.xmit(refs), "E2BIG");
      assert.equal(pool.stats().held, 257, "the caller still holds every frame");
      return refs;
    })
  ),
);

Deno.test(
  "boundary: unknown xmit flags fail with EINVAL and take nothing",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(4);
      // BT_XMIT_KEEP (2) and BT_XMIT_DIRECT (4) are flags of xmit, not of
      // copies: copies are never the caller's, nor written directly.
      for (const flags of [8, 0x80000000, 0xffffffff, 9, 2, 3, 4, 5]) {
        if (flags & ~7) {
          typed(lib.bt_xmit(dev.handle, refs, 4, 4, flags, 0), "EINVAL", `flags ${flags}`);
        }
        typed(
          lib.bt_xmit_copy(dev.handle, new Uint8Array(4), 4, Uint32Array.of(4), 1, 1, flags, 0),
          "EINVAL",
          `copy flags ${flags}`,
        );
      }
      assert.equal(pool.stats().held, 4);
      assert.equal(dev.stats().queued, 0);
      return refs;
    })
  ),
);

Deno.test(
  "boundary: NULL buffers with n > 0 fail with EFAULT on every call that takes one",
  accounted(() =>
    withDevice({}, ({ pool, dev }) => {
      const p = pool.handle, d = dev.handle;
      const calls: [string, number][] = [
        ["pool_alloc", lib.bt_pool_alloc(p, null, 4, 4)],
        ["pool_put", lib.bt_pool_put(p, null, 4, 4, null, 0)],
        ["pool_info", lib.bt_pool_info(p, null, 2)],
        ["pool_stats", lib.bt_pool_stats(p, null, 2)],
        ["frames_put", lib.bt_frames_put(null, 4, 4, null, 0)],
        ["dev_info", lib.bt_dev_info(d, null, 2)],
        ["dev_stats", lib.bt_dev_stats(d, null, 2)],
        ["xmit", lib.bt_xmit(d, null, 4, 4, 0, 0)],
        ["xmit_copy(data)", lib.bt_xmit_copy(d, null, 1, Uint32Array.of(1), 1, 1, 0, 0)],
        ["xmit_copy(lens)", lib.bt_xmit_copy(d, new Uint8Array(1), 1, null, 1, 1, 0, 0)],
        ["queue_read", lib.bt_queue_read(d, 0, null, 4, 4)],
        ["queue_unread", lib.bt_queue_unread(d, 0, null, 4, 4)],
      ];
      for (const [what, r] of calls) typed(r, "EFAULT", what);
      // n == 0 with NULL is a valid empty call.
      assert.equal(lib.bt_xmit(d, null, 0, 0, 0, 0), 0);
      assert.equal(lib.bt_queue_read(d, 0, null, 0, 0), 0);
    })
  ),
);

Deno.test(
  "boundary: stale and random handles fail with ENXIO, never touch memory",
  accounted(() => {
    const refs = new Uint32Array(4);
    for (const h of [0, 1, 0x7fffffff, 0xffffffff, 4095, 4096 | 5]) {
      typed(lib.bt_xmit(h, refs, 4, 0, 0, 0), "ENXIO", `xmit on ${h}`);
      typed(lib.bt_queue_read(h, 0, refs, 4, 4), "ENXIO", `read on ${h}`);
      typed(lib.bt_dev_close(h), "ENXIO", `close ${h}`);
      typed(lib.bt_pool_alloc(h, refs, 4, 4), "ENXIO", `alloc on ${h}`);
      typed(lib.bt_pool_destroy(h), "ENXIO", `destroy ${h}`);
      assert.equal(lib.bt_pool_base(h), null);
    }
  }),
);

Deno.test(
  "boundary: calls fill exactly n entries and no more (canaries after n stay)",
  accounted(() =>
    withDevice({}, ({ pool, dev }) => {
      const refs = new Uint32Array(8).fill(CANARY);
      assert.equal(lib.bt_pool_alloc(pool.handle, refs, 8, 3), 3);
      assert.deepEqual([...refs.subarray(3)], Array(5).fill(CANARY), "alloc wrote past n");
      assert.equal(dev.xmit(refs.subarray(0, 3)), 3);
      const out = new Uint32Array(8).fill(CANARY);
      assert.equal(lib.bt_queue_read(dev.handle, 0, out, 8, 2), 2);
      assert.deepEqual([...out.subarray(2)], Array(6).fill(CANARY), "read wrote past max");
      assert.equal(lib.bt_pool_put(pool.handle, out, 8, 2, null, 0), 2);
      const u64 = new BigUint64Array(20).fill(0xdeadn);
      assert.equal(lib.bt_pool_stats(pool.handle, u64, 2), 9);
      assert.deepEqual([...u64.subarray(2)], Array(18).fill(0xdeadn), "pool_stats wrote past n");
      u64.fill(0xdeadn);
      assert.equal(lib.bt_dev_stats(dev.handle, u64, 3), 16, "n larger than the stats is capped");
      assert.deepEqual([...u64.subarray(3)], Array(17).fill(0xdeadn), "dev_stats wrote past n");
      u64.fill(0xdeadn);
      assert.equal(lib.bt_pool_info(pool.handle, u64, 1000), 5, "n larger than the info is capped");
      assert.deepEqual([...u64.subarray(5)], Array(15).fill(0xdeadn), "pool_info wrote past 5");
      const bad = new Uint32Array(4).fill(CANARY);
      const junk = Uint32Array.of(0, 1, 2, 3, 4, 5);
      assert.equal(lib.bt_pool_put(pool.handle, junk, 6, 6, bad, 2), 0);
      assert.deepEqual([...bad], [0, 1, CANARY, CANARY], "put wrote past bad_max");
      assert.equal(lib.bt_frames_put(junk, 6, 6, bad, 3), 0);
      assert.deepEqual([...bad], [0, 1, 2, CANARY], "frames_put wrote past bad_max");
    })
  ),
);

Deno.test(
  "boundary: counts beyond the array are refused in TypeScript before the call",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(4);
      assertCode(() => pool.alloc(new Uint32Array(2), 3), "EINVAL", "does not fit");
      assertCode(() => pool.free(refs, 5), "EINVAL", "does not fit");
      assertCode(() => dev.xmit(refs, { count: 5 }), "EINVAL", "does not fit");
      assertCode(() => dev.xmit(refs, { count: -1 }), "EINVAL");
      // unread takes a count too: beyond the array, the library would read
      // past it. Checked before the call, and nothing is taken.
      assertCode(() => dev.queue(0).unread(refs, 5), "EINVAL", "count=5 does not fit");
      for (const count of [NaN, 1.5, -1]) {
        assertCode(() => dev.queue(0).unread(refs, count), "EINVAL", `count=${count}`);
        assertCode(() => pool.alloc(new Uint32Array(2), count), "EINVAL", `count=${count}`);
        assertCode(() => dev.xmit(refs, { count }), "EINVAL", `count=${count}`);
      }
      assert.equal(dev.stats().queued, 0, "nothing was unread or sent");
      assertCode(
        () => dev.xmitCopy(new Uint8Array(10), Uint32Array.of(8, 8)),
        "EINVAL",
        "lengths add up",
      );
      assertCode(() => pool.setLength(refs[0], pool.frameSize), "EINVAL");
      assert.ok(new BulktapError("EINVAL", "x") instanceof Error);
      return refs;
    })
  ),
);

Deno.test(
  "boundary: C refuses a count past the array length it was given, with EFAULT, taking nothing",
  accounted(() =>
    withDevice({}, ({ pool, dev, frames }) => {
      const refs = frames(4);
      const d = dev.handle, p = pool.handle;
      const calls: [string, number][] = [
        ["pool_alloc", lib.bt_pool_alloc(p, new Uint32Array(4), 4, 5)],
        ["pool_put", lib.bt_pool_put(p, refs, 4, 5, null, 0)],
        ["pool_put(bad)", lib.bt_pool_put(p, refs, 4, 4, null, 1)],
        ["frames_put", lib.bt_frames_put(refs, 4, 5, null, 0)],
        ["xmit", lib.bt_xmit(d, refs, 4, 5, 0, 0)],
        [
          "xmit_copy(lens)",
          lib.bt_xmit_copy(d, new Uint8Array(8), 8, Uint32Array.of(4), 1, 2, 0, 0),
        ],
        [
          "xmit_copy(data)",
          lib.bt_xmit_copy(d, new Uint8Array(8), 8, Uint32Array.of(4, 5), 2, 2, 0, 0),
        ],
        [
          "xmit_copy(wrap)",
          lib.bt_xmit_copy(d, new Uint8Array(8), 8, Uint32Array.of(0xffffffff, 9), 2, 2, 0, 0),
        ],
        ["queue_read", lib.bt_queue_read(d, 0, new Uint32Array(2), 2, 3)],
        ["queue_unread", lib.bt_queue_unread(d, 0, refs, 4, 5)],
        ["frames_latency", lib.bt_frames_latency(refs, 4, 5, new BigUint64Array(8), 8)],
        ["queue_consume", lib.bt_queue_consume(d, 0, new Uint32Array(2), 2, 3, null, 0)],
        [
          "devmap_xmit(refs)",
          lib.bt_devmap_xmit(
            Uint32Array.of(d),
            1,
            1,
            refs,
            4,
            new Uint32Array(8),
            8,
            5,
            16,
            1,
            0,
            new Uint32Array(BT_DEVMAP_COUNTS),
            BT_DEVMAP_COUNTS,
          ),
        ],
        [
          "devmap_xmit(counts)",
          lib.bt_devmap_xmit(
            Uint32Array.of(d),
            1,
            1,
            refs,
            4,
            new Uint32Array(4),
            4,
            4,
            16,
            1,
            0,
            new Uint32Array(BT_DEVMAP_COUNTS - 1),
            BT_DEVMAP_COUNTS - 1,
          ),
        ],
      ];
      for (const [what, r] of calls) typed(r, "EFAULT", what);
      const s = pool.stats();
      assert.equal(s.held, 4, "the caller still holds every frame");
      assert.equal(dev.stats().queued, 0, "nothing was queued");
      return refs;
    })
  ),
);
