/**
 * The FFI boundary's one choke point: where a JavaScript value is about to
 * become a pointer, a count or a C integer, it is checked here.
 *
 * - Arrays: the element type is checked exactly and the length is read
 *   with the engine's own `%TypedArray%` getters (captured when this module
 *   loads), so a subclass or an own `length` property cannot lie about it.
 *   That length travels to C beside the pointer (the `bt_ffi_*` entries),
 *   which checks every count against it again.
 * - Counts, indexes and options: whole numbers in range, or a
 *   `BulktapError` naming the value (NaN, fractions, infinities and values
 *   that would wrap a C field never reach C).
 *
 * @module
 */
import { BulktapError } from "./errors.ts";

const TYPED_ARRAY = Object.getPrototypeOf(Uint8Array.prototype);
const lengthGetter = Object.getOwnPropertyDescriptor(TYPED_ARRAY, "length")!.get!;
const tagGetter = Object.getOwnPropertyDescriptor(TYPED_ARRAY, Symbol.toStringTag)!.get!;
const call = Function.prototype.call.bind(Function.prototype.call) as (
  f: () => unknown,
  self: unknown,
) => unknown;

/** What a value is, for messages: `"a Uint8Array"`, `"a number"`, `"null"`. */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  const tag = call(tagGetter, v);
  if (typeof tag === "string") return `a ${tag}`;
  if (Array.isArray(v)) return "a plain Array";
  if (v instanceof DataView) return "a DataView";
  if (v instanceof ArrayBuffer || v instanceof SharedArrayBuffer) return "an ArrayBuffer";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

/**
 * The true element count of `v` if it is exactly a `kind` typed array
 * (e.g. `"Uint32Array"`); throws `EINVAL` naming what it is otherwise.
 * Detached buffers have length 0.
 *
 * @example
 * ```ts
 * import { arrayLength } from "./boundary.ts";
 * console.log(arrayLength(new Uint32Array(4), "Uint32Array", "refs")); // 4
 * ```
 */
export function arrayLength(v: unknown, kind: string, what: string): number {
  if (call(tagGetter, v) !== kind) {
    throw new BulktapError("EINVAL", `${what} is ${kindOf(v)}, not a ${kind}`);
  }
  return call(lengthGetter, v) as number;
}

/**
 * The true length of a `Uint32Array` of refs (or lengths); throws `EINVAL`
 * for anything else, naming it.
 *
 * @example
 * ```ts
 * import { u32Length } from "./boundary.ts";
 * console.log(u32Length(new Uint32Array(16), "refs")); // 16
 * ```
 */
export function u32Length(v: unknown, what: string): number {
  if (call(tagGetter, v) !== "Uint32Array") {
    throw new BulktapError("EINVAL", `${what} is ${kindOf(v)}, not a Uint32Array`);
  }
  return call(lengthGetter, v) as number;
}

/**
 * Check that `count` is a whole number of elements that fits an array of
 * `length` and return it (as +0 for -0); throws `EINVAL` naming the value
 * otherwise. NaN, fractions and
 * negative numbers are refused too (FFI would truncate them).
 *
 * @example
 * ```ts
 * import { checkCount } from "./boundary.ts";
 * checkCount(4, 8, "xmit"); // fine
 * try {
 *   checkCount(2.5, 8, "xmit");
 * } catch (e) {
 *   console.log((e as Error).message); // EINVAL: xmit: count=2.5 is not a whole number of frames
 * }
 * ```
 */
export function checkCount(count: number, length: number, what: string): number {
  // `+ 0` turns -0 into 0: FFI refuses -0 as an unsigned integer.
  if (Number.isInteger(count) && count >= 0 && count <= length) return count + 0;
  if (typeof count !== "number" || !Number.isInteger(count)) {
    throw new BulktapError(
      "EINVAL",
      `${what}: count=${show(count)} is not a whole number of frames`,
    );
  }
  throw new BulktapError("EINVAL", `${what}: count=${count} does not fit an array of ${length}`);
}

/**
 * `v` if it is a whole number in `min..max`; throws `EINVAL` naming it.
 *
 * @example
 * ```ts
 * import { intIn } from "./boundary.ts";
 * console.log(intIn(3, 0, 7, "queue")); // 3
 * ```
 */
export function intIn(v: unknown, min: number, max: number, what: string): number {
  if (typeof v === "number" && Number.isInteger(v) && v >= min && v <= max) return v + 0;
  throw new BulktapError("EINVAL", `${what}=${show(v)} is not a whole number in ${min}..${max}`);
}

/**
 * `v` if it is a 32-bit unsigned integer (a ref or a handle); throws
 * `EINVAL` naming it. NaN, fractions and negatives are refused rather than
 * truncated to some other frame.
 *
 * @example
 * ```ts
 * import { u32Arg } from "./boundary.ts";
 * console.log(u32Arg(0x01000002, "ref")); // 16777218
 * ```
 */
export function u32Arg(v: unknown, what: string): number {
  if (typeof v === "number" && v === v >>> 0) return v >>> 0;
  throw new BulktapError("EINVAL", `${what}=${show(v)} is not a 32-bit unsigned integer`);
}

/** A value as a message shows it (strings quoted, objects by kind). */
export function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v);
  if (v === undefined) return "undefined";
  return kindOf(v);
}
