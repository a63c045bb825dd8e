/**
 * Hostile values for the FFI boundary fuzzer: numbers that are not counts,
 * refs that name no held frame, and arrays of every typed-array kind and
 * backing (guarded, shared, detached, offset, lying about their length,
 * plain arrays, junk). Arbitraries generate plain descriptions (so a
 * counterexample prints readably); {@linkcode makeArray} and
 * {@linkcode makeRef} turn them into values against a case's real frames.
 *
 * @module
 */
import fc from "npm:fast-check@^4";

/** Numbers no count, index, handle or time should silently accept. */
export const NASTY_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  2.5,
  -2.5,
  7,
  255,
  256,
  257,
  4096,
  65535,
  65536,
  65537,
  2 ** 24,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  2 ** 53,
  -(2 ** 53),
  1e6,
  1e300,
  NaN,
  Infinity,
  -Infinity,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
];

/** Any number: small, huge, negative, fractional, NaN, ±Infinity. */
export const anyNumber: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_NUMBERS) },
  { weight: 2, arbitrary: fc.integer({ min: -4, max: 300 }) },
  { weight: 1, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double() },
);

/** Non-numbers a loosely typed caller may pass where a number belongs. */
export const JUNK = [undefined, null, "", "3", "abc", true, {}, [], 1n] as const;

/** A number, or junk (for options objects and untyped callers). */
export const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: anyNumber },
  { weight: 1, arbitrary: fc.constantFrom(...JUNK) },
);

/** An optional hostile value: undefined half of the time (the default). */
export const maybe = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.option(a, { nil: undefined, freq: 2 });

/** Where a ref comes from. */
export type RefSpec =
  | { held: number } // a frame the case holds (index into its held list)
  | { free: number } // a free frame of a case pool
  | { queued: number } // a frame the case transmitted (maybe still queued)
  | { past: number } // index past the end of a case pool
  | { other: number } // a held frame of the case's second pool
  | { stale: number } // a frame of a pool the case closed
  | { raw: number }; // any number at all

/** A ref description: mostly real frames, often forged ones. */
export const refSpec: fc.Arbitrary<RefSpec> = fc.oneof(
  { weight: 6, arbitrary: fc.nat(300).map((held) => ({ held })) },
  { weight: 1, arbitrary: fc.nat(300).map((free) => ({ free })) },
  { weight: 1, arbitrary: fc.nat(300).map((queued) => ({ queued })) },
  { weight: 1, arbitrary: fc.nat(3).map((past) => ({ past })) },
  { weight: 1, arbitrary: fc.nat(300).map((other) => ({ other })) },
  { weight: 1, arbitrary: fc.nat(300).map((stale) => ({ stale })) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      anyNumber,
      fc.constantFrom(0, 0xffffffff, 0x00ffffff, 0x01000000, 0xff000000),
    ).map((raw) => ({ raw })),
  },
);

/** Typed-array kinds, plus DataView. */
export const KINDS = [
  "Uint32Array",
  "Int32Array",
  "Uint8Array",
  "Int8Array",
  "Uint8ClampedArray",
  "Uint16Array",
  "Int16Array",
  "Float32Array",
  "Float64Array",
  "BigInt64Array",
  "BigUint64Array",
  "DataView",
] as const;
/** One of {@linkcode KINDS}. */
export type Kind = (typeof KINDS)[number];

/** How an array's memory is laid out. */
export type Backing =
  | "own" // its own ArrayBuffer (ASan sees any overrun)
  | "guarded" // a window in a larger buffer with canaries either side
  | "shared" // SharedArrayBuffer
  | "detached" // transferred away before the call
  | "offset" // a subarray at an offset of a longer array
  | "lying" // a subclass whose `length` getter lies
  | "ownLength"; // an own `length` property that lies

/** An array argument. */
export type ArrSpec =
  | { t: "typed"; kind: Kind; len: number; backing: Backing; lie: number; refs: RefSpec[] }
  | { t: "plain"; refs: RefSpec[] }
  | { t: "junk"; v: number };

const BACKINGS: Backing[] = [
  "own",
  "guarded",
  "shared",
  "detached",
  "offset",
  "lying",
  "ownLength",
];

/**
 * An array argument: mostly Uint32Arrays (what the API takes) in every
 * backing, often other kinds, sometimes plain arrays or junk. `refs` fill
 * the first elements (as u32 words for non-u32 kinds).
 */
export const arrSpec: fc.Arbitrary<ArrSpec> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      t: fc.constant("typed" as const),
      kind: fc.oneof(
        { weight: 4, arbitrary: fc.constant("Uint32Array" as Kind) },
        { weight: 2, arbitrary: fc.constantFrom(...KINDS) },
      ),
      len: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 300 })),
      backing: fc.oneof(
        { weight: 3, arbitrary: fc.constant("guarded" as Backing) },
        { weight: 3, arbitrary: fc.constantFrom(...BACKINGS) },
      ),
      lie: fc.oneof(fc.integer({ min: 0, max: 2048 }), fc.constantFrom(...NASTY_NUMBERS)),
      refs: fc.array(refSpec, { maxLength: 24 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant("plain" as const), refs: fc.array(refSpec) }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("junk" as const), v: fc.nat(JUNK.length) }) },
);

/** What a ref spec resolves against: the case's frames. */
export interface RefSource {
  ref(spec: RefSpec): number;
}

const GUARD_BYTE = 0xa5;
const GUARD_PRE = 64;
const GUARD_POST = 4096;

/** A made array: the value, and a check that nothing wrote outside it. */
export interface Made {
  value: unknown;
  /** Undefined if the canaries around the array are intact, else what changed. */
  check(): string | undefined;
}

// deno-lint-ignore no-explicit-any
const CTORS: Record<string, any> = globalThis as any;
const lyingClasses = new Map<string, { new (b: ArrayBufferLike, o: number, l: number): unknown }>();
let currentLie = 0;

// deno-lint-ignore no-explicit-any
function lyingClass(kind: Kind): any {
  let c = lyingClasses.get(kind);
  if (!c) {
    const Base = CTORS[kind];
    c = kind === "DataView"
      ? class extends Base {
        lie = currentLie;
        get byteLength() {
          return this.lie;
        }
      }
      : class extends Base {
        lie = currentLie;
        get length() {
          return this.lie;
        }
      };
    lyingClasses.set(kind, c!);
  }
  return c;
}

/** Build the array a spec describes; refs resolved through `src`. */
export function makeArray(spec: ArrSpec, src: RefSource): Made {
  const ok = { check: () => undefined };
  if (spec.t === "junk") return { value: JUNK[spec.v % JUNK.length], ...ok };
  const refs = spec.refs.map((r) => src.ref(r));
  if (spec.t === "plain") return { value: refs, ...ok };
  const Ctor = CTORS[spec.kind];
  const bpe: number = spec.kind === "DataView" ? 1 : Ctor.BYTES_PER_ELEMENT;
  const bytes = spec.len * bpe;
  const words = Math.floor(bytes / 4);
  let buf: ArrayBufferLike;
  let off = 0;
  let guard: Uint8Array | undefined;
  switch (spec.backing) {
    case "guarded":
    case "lying":
    case "ownLength":
      buf = new ArrayBuffer(GUARD_PRE + bytes + GUARD_POST);
      guard = new Uint8Array(buf);
      guard.fill(GUARD_BYTE);
      off = GUARD_PRE;
      break;
    case "shared":
      buf = new SharedArrayBuffer(Math.max(bytes, 0));
      break;
    case "offset":
      buf = new ArrayBuffer(bytes + 8 * bpe);
      off = 8 * bpe;
      break;
    default:
      buf = new ArrayBuffer(bytes);
  }
  // The refs, as u32 words, at the start of the array's bytes.
  const u32 = new Uint32Array(buf, off, words);
  u32.fill(0);
  for (let i = 0; i < Math.min(words, refs.length); i++) u32[i] = refs[i];
  let value: unknown;
  if (spec.backing === "lying") {
    currentLie = spec.lie;
    const C = lyingClass(spec.kind);
    value = new C(buf, off, spec.kind === "DataView" ? bytes : spec.len);
  } else {
    value = spec.kind === "DataView" ? new DataView(buf, off, bytes) : new Ctor(buf, off, spec.len);
    if (spec.backing === "ownLength") {
      Object.defineProperty(value, spec.kind === "DataView" ? "byteLength" : "length", {
        value: spec.lie,
      });
    }
  }
  if (spec.backing === "detached") structuredClone(buf, { transfer: [buf as ArrayBuffer] });
  if (!guard) return { value, ...ok };
  const g = guard;
  return {
    value,
    check() {
      for (let i = 0; i < GUARD_PRE; i++) {
        if (g[i] !== GUARD_BYTE) return `byte ${i - GUARD_PRE} before the array was written`;
      }
      for (let i = GUARD_PRE + bytes; i < g.length; i++) {
        if (g[i] !== GUARD_BYTE) {
          return `byte ${i - GUARD_PRE - bytes} past the end of the ${spec.len}-element ` +
            `${spec.kind} was written`;
        }
      }
      return undefined;
    },
  };
}

/** A count argument: near the array's real length, or anything. */
export const countSpec: fc.Arbitrary<number | "len" | "len+1" | "default"> = fc.oneof(
  fc.constantFrom("default" as const, "len" as const, "len+1" as const),
  anyNumber,
);

/** The count a {@linkcode countSpec} stands for, given the array. */
export function resolveCount(
  c: number | "len" | "len+1" | "default",
  arr: unknown,
): number | undefined {
  if (c === "default") return undefined;
  const len = trueLength(arr);
  if (c === "len") return len;
  if (c === "len+1") return len + 1;
  return c;
}

const TA_LENGTH = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  "length",
)!.get!;

/** An array's intrinsic length (not what a lying getter says). */
export function trueLength(arr: unknown): number {
  if (ArrayBuffer.isView(arr) && !(arr instanceof DataView)) {
    return TA_LENGTH.call(arr) as number;
  }
  if (arr instanceof DataView) return 0;
  return Array.isArray(arr) ? arr.length : 0;
}
