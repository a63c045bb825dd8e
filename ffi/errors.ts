/**
 * The error type every bulktap API throws, defined at the bottom layer so
 * the C build and binding (`ffi/`) and the library (`dataplane/`) share it
 * without an import back up.
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
 * The error every bulktap API throws.
 *
 * @example
 * ```ts
 * import { BulktapError, FramePool } from "../dataplane/mod.ts";
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
