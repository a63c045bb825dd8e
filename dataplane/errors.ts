/**
 * Typed errors. Every failure in bulktap surfaces as a {@linkcode BulktapError}
 * whose `code` names the class of problem and whose message names the bad
 * value.
 *
 * @module
 */

/**
 * The codes a {@linkcode BulktapError} can carry. An errno the C library
 * returns keeps its own name (EACCES is not EPERM, EBADFD is not ENODEV);
 * what to do about it is in the message. The one translation is deliberate:
 * a TAP deleted while in use is reported as `ENODEV` wherever it shows (rx,
 * wait, xmit, stats), whichever errno the kernel gave its fd (usually
 * EBADFD); `errno` and the message keep the kernel's value.
 */
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
  | "ENFILE" // the system has too many open files
  | "EALREADY" // a frame returned twice
  | "EXDEV" // a frame returned to a pool it does not belong to
  | "EPERM" // missing privilege (CAP_NET_ADMIN, or not the device's owner)
  | "EACCES" // permission denied on a file (e.g. /dev/net/tun)
  | "ENOENT" // something named does not exist
  | "EEXIST" // exists with incompatible settings, or is not a TAP
  | "ENODEV" // a TAP device was deleted while in use, or no such device
  | "EBADFD" // a TAP fd in a bad state (its device was deleted)
  | "EBADF" // a file descriptor that is not open
  | "ESRCH" // no such thread (CPU pinning)
  | "EAGAIN" // try again: the kernel had nothing ready or no room now
  | "EINTR" // interrupted by a signal
  | "ETIME" // a kernel operation timed out
  | "ESHUTDOWN" // the device is shutting down
  | "ENOBUFS" // the kernel has no buffer space
  | "EMSGSIZE" // a frame too big for the device
  | "EAFNOSUPPORT" // the kernel has no IPv4 sockets (needed to set up a link)
  | "ENOSYS" // a system call this kernel does not have
  | "ENOTSUP" // not supported here: no /dev/net/tun, or a feature this build lacks
  | "ENOCC" // no C compiler to build the library with
  | "EBUILD" // the C library failed to compile
  | "EPROTO" // a malformed or truncated packet header
  | "EIO"; // an I/O error the kernel reported, or an errno not listed here

/**
 * Linux errno numbers and their codes: every errno the C library returns
 * (its own `return -E...` and those of the system calls it passes on).
 */
const ERRNO_NAMES: Record<number, BulktapErrorCode> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  18: "EXDEV",
  19: "ENODEV",
  22: "EINVAL",
  23: "ENFILE",
  24: "EMFILE",
  28: "ENOSPC",
  38: "ENOSYS",
  62: "ETIME",
  71: "EPROTO",
  77: "EBADFD",
  90: "EMSGSIZE",
  95: "ENOTSUP", // EOPNOTSUPP is the same number on Linux
  97: "EAFNOSUPPORT",
  105: "ENOBUFS",
  108: "ESHUTDOWN",
  114: "EALREADY",
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

/**
 * The errno number of a code that names one, e.g. 13 for `"EACCES"`;
 * undefined for bulktap's own codes (`ECLOSED`, `ENOCC`, `EBUILD`).
 *
 * @example
 * ```ts
 * import { errnoOfCode } from "./dataplane/errors.ts";
 * console.log(errnoOfCode("EBADFD")); // 77
 * ```
 */
export function errnoOfCode(code: BulktapErrorCode): number | undefined {
  for (const [n, c] of Object.entries(ERRNO_NAMES)) if (c === code) return Number(n);
  return undefined;
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
  EPERM: "is not permitted (needs CAP_NET_ADMIN, or to own the device)",
  EACCES: "was denied access (e.g. to /dev/net/tun: needs read and write access to it)",
  ENOENT: "names something that does not exist",
  EEXIST: "already exists with other settings",
  ENODEV: "has no such device (deleted?)",
  EBADFD: "has a file descriptor in a bad state (its TAP device deleted?)",
  EBADF: "used a file descriptor that is not open",
  ESRCH: "found no such thread",
  EAGAIN: "has nothing ready or no room now (try again)",
  EINTR: "was interrupted by a signal",
  ETIME: "timed out in the kernel",
  ESHUTDOWN: "is shutting down",
  ENFILE: "hit the system's limit of open files",
  ENOBUFS: "got no buffer space from the kernel",
  EMSGSIZE: "was given a frame too big for the device",
  EAFNOSUPPORT: "needs IPv4 sockets, which this kernel lacks",
  ENOSYS: "needs a system call this kernel does not have",
  ENOTSUP: "is not supported here",
  EXDEV: "was given a frame of another pool",
  EALREADY: "was given a frame returned already",
  EPROTO: "got a malformed header",
  EIO: "reported an I/O error",
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
  const text = ERRNO_NAMES[-ret] === undefined
    ? "failed with an errno bulktap has no name for"
    : ERRNO_TEXT[code] ?? "failed";
  throw new BulktapError(code, `${what}: the library says it ${text} (errno ${-ret})`, ret);
}
