/**
 * Typed errors. Every failure in bulktap surfaces as a {@linkcode BulktapError}
 * whose `code` names the class of problem and whose message names the bad
 * value.
 *
 * @module
 */

/** The codes a {@linkcode BulktapError} can carry. */
export type BulktapErrorCode =
  | "EINVAL" // a value out of range or a frame in the wrong state
  | "ENOSPC" // no room: headroom too small for the metadata, or a full ring
  | "ENXIO" // the device or pool is not open (closed, maybe by another Worker)
  | "ECLOSED" // this object was closed by its own close()
  | "EBUSY" // cannot close: frames or devices still use it
  | "E2BIG" // a bulk larger than the library accepts
  | "EFAULT" // a missing buffer
  | "ENOMEM" // the library could not allocate memory
  | "EMFILE" // too many pools, devices or file descriptors
  | "EALREADY" // a frame returned twice
  | "EXDEV" // a frame returned to a pool it does not belong to
  | "EPERM" // missing privilege (CAP_NET_ADMIN)
  | "ENOENT" // something named does not exist
  | "EEXIST" // exists with incompatible settings
  | "ENODEV" // a TAP device was deleted while in use
  | "ENOTSUP" // not supported here (e.g. no /dev/net/tun)
  | "ENOCC" // no C compiler to build the library with
  | "EBUILD" // the C library failed to compile
  | "ENOTSUP" // a feature this build does not have (e.g. TAP devices)
  | "EPROTO" // a malformed or truncated packet header
  | "EIO"; // anything else the kernel reported

const ERRNO_NAMES: Record<number, BulktapErrorCode> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  12: "ENOMEM",
  13: "EPERM", // EACCES: same remedy for our users
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  114: "EALREADY",
  18: "EXDEV",
  19: "ENODEV",
  77: "ENODEV", // EBADFD: the TAP fd lost its device
  71: "EPROTO",
  95: "ENOTSUP",
};

/**
 * The error every bulktap API throws.
 *
 * @example
 * ```ts
 * import { BulktapError, FramePool } from "./mod.ts";
 * try {
 *   new FramePool({ headroom: 8 });
 * } catch (e) {
 *   if (e instanceof BulktapError && e.code === "ENOSPC") console.log(e.message);
 * }
 * ```
 */
export class BulktapError extends Error {
  /** The class of problem, e.g. `"EINVAL"`. */
  readonly code: BulktapErrorCode;
  /** The negative errno the C library returned, when it came from there. */
  readonly errno: number | undefined;

  /** Create an error with a code and a message that names the bad value. */
  constructor(code: BulktapErrorCode, message: string, errno?: number) {
    super(`${code}: ${message}`);
    this.name = "BulktapError";
    this.code = code;
    this.errno = errno;
  }
}

/**
 * The code for a negative errno returned by the C library.
 *
 * @example
 * ```ts
 * import { codeForErrno } from "./dataplane/errors.ts";
 * console.log(codeForErrno(-22)); // "EINVAL"
 * ```
 */
export function codeForErrno(ret: number): BulktapErrorCode {
  return ERRNO_NAMES[-ret] ?? "EIO";
}

/** What each errno means for the object a call named, for messages. */
const ERRNO_TEXT: Partial<Record<BulktapErrorCode, string>> = {
  ENXIO: "is not open (closed, perhaps by another Worker, or never created)",
  EINVAL: "refused an argument",
  E2BIG: "refused a bulk larger than the library accepts",
  EFAULT: "was given an array shorter than its count (or none)",
  ENOMEM: "could not allocate memory",
  EMFILE: "has no free slot (too many pools or devices open)",
  EBUSY: "is still in use",
  ENOSPC: "has no room",
};

/**
 * Throw a {@linkcode BulktapError} if `ret` is a negative errno; return it
 * otherwise. `what` names the operation, the object and the values it was
 * given (e.g. `"alloc of 16 frames from pool 0x101"`), so the message says
 * what failed on what; the code says why.
 *
 * @example
 * ```ts
 * import { checkErrno } from "./dataplane/errors.ts";
 * const n = checkErrno(3, "reading queue 0 of device 0x1001"); // 3
 * ```
 */
export function checkErrno(ret: number, what: string): number {
  if (ret >= 0) return ret;
  const code = codeForErrno(ret);
  const text = ERRNO_TEXT[code] ?? "failed";
  throw new BulktapError(code, `${what}: the library says it ${text} (errno ${-ret})`, ret);
}
