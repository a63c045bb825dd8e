/**
 * Typed errors. Every failure in bulktap surfaces as a {@linkcode BulktapError}
 * whose `code` names the class of problem and whose message names the bad
 * value.
 *
 * @module
 */

import { BulktapError, type BulktapErrorCode } from "../ffi/errors.ts";

export { BulktapError, type BulktapErrorCode };

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
 * The code for a negative errno returned by the C library.
 *
 * @example
 * ```ts
 * import { codeForErrno } from "./errors.ts";
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
 * import { errnoOfCode } from "./errors.ts";
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
 * import { checkErrno } from "./errors.ts";
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
