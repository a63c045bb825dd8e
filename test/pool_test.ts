import assert from "assert";
import { FramePool, FrameState, freeFrames, META } from "../mod.ts";
import { accounted, assertCode } from "./helpers.ts";

Deno.test(
  "pool: alloc hands out held frames whose refs carry the pool slot",
  accounted(() => {
    using pool = new FramePool({ frames: 8 });
    const refs = new Uint32Array(8);
    assert.equal(pool.alloc(refs), 8);
    for (let i = 0; i < 8; i++) {
      assert.equal(refs[i] >>> 24, pool.slot);
      assert.equal(pool.index(refs[i]), i);
      assert.equal(pool.length(refs[i]), 0);
      assert.equal(pool.dataOffset(refs[i]) - pool.frameOffset(refs[i]), 256);
    }
    assert.deepEqual(
      [pool.stats().held, pool.stats().free],
      [8, 0],
    );
    pool.free(refs);
    assert.equal(pool.stats().free, 8);
  }),
);

Deno.test(
  "pool: alloc beyond the free frames returns fewer and counts the shortfall",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const refs = new Uint32Array(6);
    assert.equal(pool.alloc(refs), 4);
    assert.equal(pool.stats().allocFailed, 2);
    pool.free(refs, 4);
  }),
);

Deno.test(
  "pool: headroom smaller than the metadata fails with ENOSPC naming it",
  accounted(() => {
    assertCode(() => new FramePool({ headroom: 16 }), "ENOSPC", "headroom=16");
  }),
);

Deno.test(
  "pool: a frame size that is not a multiple of 64 fails with EINVAL naming it",
  accounted(() => {
    assertCode(() => new FramePool({ frameSize: 1000 }), "EINVAL", "frameSize=1000");
    assertCode(() => new FramePool({ frames: 0 }), "EINVAL", "frames=0");
    assertCode(() => new FramePool({ frames: 1.5 }), "EINVAL", "frames=1.5");
  }),
);

Deno.test(
  "pool: a frame returned twice is refused with EALREADY, counted, and the pool stays whole",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const refs = new Uint32Array(4);
    pool.alloc(refs);
    pool.free(refs, 2);
    const twice = Uint32Array.of(refs[0], refs[2], refs[3]);
    assertCode(() => pool.free(twice), "EALREADY", "refs[0]");
    assert.equal(pool.stats().doubleReturns, 1);
    // refs[2] and refs[3] were returned despite the error: all 4 allocate once each.
    const again = new Uint32Array(4);
    assert.equal(pool.alloc(again), 4);
    assert.deepEqual([...again].map((r) => pool.index(r)).sort(), [0, 1, 2, 3]);
    pool.free(again);
  }),
);

Deno.test(
  "pool: a frame of another pool is refused with EXDEV and stays held",
  accounted(() => {
    using a = new FramePool({ frames: 2 });
    using b = new FramePool({ frames: 2 });
    const ra = new Uint32Array(1);
    a.alloc(ra);
    assertCode(() => b.free(ra), "EXDEV", `slot ${a.slot}`);
    assert.equal(b.stats().foreignReturns, 1);
    assert.equal(a.stats().held, 1);
    a.free(ra);
  }),
);

Deno.test(
  "pool: freeFrames returns frames of several pools in one call",
  accounted(() => {
    using a = new FramePool({ frames: 2 });
    using b = new FramePool({ frames: 2 });
    const refs = new Uint32Array(4);
    a.alloc(refs.subarray(0, 2));
    b.alloc(refs.subarray(2, 4));
    freeFrames(refs);
    assert.equal(a.stats().free + b.stats().free, 4);
  }),
);

Deno.test(
  "pool: a length beyond the frame fails with EINVAL",
  accounted(() => {
    using pool = new FramePool({ frames: 1, frameSize: 2048, headroom: 256 });
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    pool.setLength(refs[0], 1792);
    assertCode(() => pool.setLength(refs[0], 1793), "EINVAL", "1792 bytes");
    assertCode(() => pool.write(refs[0], new Uint8Array(1793)), "EINVAL", "capacity 1792");
    pool.free(refs);
  }),
);

Deno.test(
  "pool: setLengths sets the first count frames and no others",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const refs = new Uint32Array(4);
    pool.alloc(refs);
    pool.setLengths(refs, 3, 64);
    assert.deepEqual([...refs].map((r) => pool.length(r)), [64, 64, 64, 0]);
    pool.free(refs);
  }),
);

Deno.test(
  "pool: setLengths refuses a ref of another pool, a length that does not fit and a bad count, naming them",
  accounted(() => {
    using pool = new FramePool({ frames: 2, frameSize: 2048, headroom: 256 });
    using other = new FramePool({ frames: 1 });
    const refs = new Uint32Array(2);
    pool.alloc(refs);
    const foreign = new Uint32Array(1);
    other.alloc(foreign);
    const mixed = Uint32Array.of(refs[0], foreign[0]);
    assertCode(() => pool.setLengths(mixed, 2, 10), "EINVAL", `0x${foreign[0].toString(16)}`);
    assert.equal(pool.length(refs[0]), 10, "the frames before the bad ref are set");
    assertCode(() => pool.setLengths(refs, 2, 1793), "EINVAL", "1792 bytes");
    assertCode(() => pool.setLengths(refs, 2, 1.5), "EINVAL", "1.5");
    assertCode(() => pool.setLengths(refs, 3, 1), "EINVAL", "count=3");
    other.free(foreign);
    pool.free(refs);
  }),
);

Deno.test(
  "pool: pushing headers into the metadata fails with ENOSPC",
  accounted(() => {
    using pool = new FramePool({ frames: 1, headroom: 96 });
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    pool.setLength(refs[0], 100);
    pool.adjustHead(refs[0], -32); // 96 - 32 = 64: just fits after the metadata
    assert.equal(pool.length(refs[0]), 132);
    assertCode(() => pool.adjustHead(refs[0], -1), "ENOSPC", "headroom");
    pool.free(refs);
  }),
);

Deno.test(
  "pool: timestamps and marks round-trip through the headroom",
  accounted(() => {
    using pool = new FramePool({ frames: 1 });
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    const t = 123_456_789_012_345;
    pool.setTimestamp(refs[0], t);
    pool.setMark(refs[0], 0xdeadbeef);
    assert.equal(pool.timestamp(refs[0]), t);
    assert.equal(pool.mark(refs[0]), 0xdeadbeef);
    pool.free(refs);
  }),
);

Deno.test(
  "pool: closing with frames held fails with EBUSY and keeps the pool usable",
  accounted(() => {
    const pool = new FramePool({ frames: 2 });
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    assertCode(() => pool.close(), "EBUSY", "1 held");
    pool.free(refs);
    pool.close();
    assertCode(() => pool.alloc(refs), "ECLOSED");
  }),
);

Deno.test(
  "pool: a second view attached by handle (as a Worker attaches) shares frames both ways",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const other = FramePool.attach(pool.handle);
    assert.notEqual(other.bytes.buffer, pool.bytes.buffer, "a view of its own");
    const refs = new Uint32Array(1);
    pool.alloc(refs);
    pool.write(refs[0], Uint8Array.of(1, 2, 3));
    assert.deepEqual([...other.data(refs[0])], [1, 2, 3]);
    other.write(refs[0], Uint8Array.of(4, 5));
    assert.deepEqual([...pool.data(refs[0])], [4, 5]);
    assert.equal(other.stats().held, 1, "one pool: the attached view sees the allocation");
    pool.free(refs);
  }),
);

Deno.test(
  "pool: freeFrames refuses each bad ref with the code for its problem, returning the rest",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const refs = new Uint32Array(4);
    pool.alloc(refs);
    pool.free(refs.subarray(0, 1));
    // Returned twice: EALREADY.
    assertCode(() => freeFrames(Uint32Array.of(refs[0], refs[1])), "EALREADY", "refs[0]");
    assert.equal(pool.stats().held, 2, "refs[1] was returned despite the error");
    // An index beyond the pool: EINVAL.
    const beyond = ((pool.slot << 24) | 100) >>> 0;
    assertCode(() => freeFrames(Uint32Array.of(refs[2], beyond)), "EINVAL", "beyond its pool");
    // A frame of a pool that was closed: ENXIO.
    const gone = new FramePool({ frames: 2 });
    const stale = new Uint32Array(1);
    gone.alloc(stale);
    gone.free(stale);
    gone.close();
    assertCode(() => freeFrames(Uint32Array.of(stale[0], refs[3])), "ENXIO", "no open pool");
    assert.equal(pool.stats().free, 4, "every acceptable frame came home");
  }),
);

Deno.test(
  "pool: counts that are NaN, fractional or negative fail with EINVAL naming them",
  accounted(() => {
    using pool = new FramePool({ frames: 4 });
    const refs = new Uint32Array(4);
    for (const count of [NaN, 1.5, -1]) {
      assertCode(() => pool.alloc(refs, count), "EINVAL", `count=${count}`);
      assertCode(() => pool.free(refs, count), "EINVAL", `count=${count}`);
      assertCode(() => freeFrames(refs, count), "EINVAL", `count=${count}`);
    }
    assert.equal(pool.stats().free, 4, "nothing was allocated");
  }),
);

Deno.test(
  "pool: a library error names the call, the pool and the count, with the errno's code",
  accounted(() => {
    const pool = new FramePool({ frames: 4 });
    const elsewhere = FramePool.attach(pool.handle); // as another Worker would
    pool.close();
    const err = assertCode(() => elsewhere.alloc(new Uint32Array(3), 3), "ENXIO");
    assert.match(err.message, new RegExp(`alloc of 3 frames from pool ${pool.handle}: .*not open`));
    elsewhere.close();
  }),
);

Deno.test(
  "pool: a frame whose state byte was scribbled on is counted as corrupt, not handed out twice",
  accounted(() => {
    using pool = new FramePool({ frames: 3 });
    const refs = new Uint32Array(3);
    pool.alloc(refs);
    pool.free(refs, 2); // refs[0] and refs[1] free, refs[2] held
    // A caller writes HELD into the free frame's headroom and returns it
    // again: the library cannot tell that from a real return, so the frame
    // is now on the free stack twice (the caller confused its accounting).
    pool.bytes[pool.frameOffset(refs[0]) + META.state] = FrameState.HELD;
    pool.free(refs.subarray(0, 1));
    // Alloc finds the second entry's frame not FREE: skipped and counted.
    const got = new Uint32Array(3);
    assert.equal(pool.alloc(got), 2, "the stack's 3 entries give 2 distinct frames");
    assert.notEqual(pool.index(got[0]), pool.index(got[1]));
    assert.equal(pool.stats().corrupt, 1, "the duplicate entry was counted");
    const s = pool.stats();
    assert.equal(s.free + s.held + s.queued, s.frames, "consistent again");
    pool.free(got, 2);
    pool.free(refs.subarray(2));
  }),
);
