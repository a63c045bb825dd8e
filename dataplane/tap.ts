/**
 * Real Linux TAP devices behind the {@linkcode Device} API. Frames a program
 * transmits (`xmit`) are written into the kernel by one C writer thread per
 * queue (io_uring batches, or one `write()` per frame); frames the kernel
 * sends into the TAP are read into pool frames in batches (`rx`, `frames`:
 * one io_uring submit of a batch of reads, or one `readv()` per frame), or
 * forwarded to another device without leaving C (`forwardTo`).
 *
 * Without root, attach to a persistent TAP an administrator created once:
 *
 * ```sh
 * sudo ip tuntap add dev bt0 mode tap multi_queue user $USER
 * sudo ip link set bt0 up
 * ```
 *
 * then `new TapDevice({ name: "bt0", queues: 2, create: false })`.
 *
 * @module
 */
import { library } from "../ffi/lib.ts";
import * as abi from "../ffi/abi.ts";
import { Batch, batchRefs, setBatchCount } from "./batch.ts";
import { intIn, show, u32Length } from "./boundary.ts";
import { AttachToken, Device, type DeviceStats } from "./device.ts";
import { BulktapError, type BulktapErrorCode, checkErrno, codeForErrno } from "./errors.ts";
import { FramePool } from "./pool.ts";
import { FrameStream } from "./frame_stream.ts";
import { tapWaitSource } from "./tap_source.ts";
import { sleepBound, waitShared, type WaitSource, waitTimeout } from "./waiter.ts";

/**
 * Largest number of queues of a TAP device.
 *
 * @example
 * ```ts
 * import { TAP_MAX_QUEUES } from "./tap.ts";
 * console.log(TAP_MAX_QUEUES); // 64
 * ```
 */
export const TAP_MAX_QUEUES: number = abi.BT_TAP_MAX_QUEUES;

/**
 * The largest MTU the kernel gives a TAP device: 65535 minus the Ethernet header.
 *
 * @example
 * ```ts
 * import { TAP_MAX_MTU } from "./tap.ts";
 * console.log(TAP_MAX_MTU); // 65521
 * ```
 */
export const TAP_MAX_MTU = 65521;

const CREATE = abi.BT_TAP_CREATE;
const WRITE = abi.BT_TAP_WRITE;

/** Options for {@linkcode TapDevice}. */
export interface TapDeviceOptions {
  /**
   * Interface name: 1..15 bytes of UTF-8, not `.` or `..`, no `/`, `:` or
   * byte the kernel counts as whitespace (see {@linkcode tapNameProblem}).
   */
  name: string;
  /** Queues (file descriptors), 1..64 (default 1). */
  queues?: number;
  /** Set the link MTU (68..65521, the kernel's largest for a TAP); default: leave it as it is. */
  mtu?: number;
  /** Virtio-net header size: 0 (none, default), 10 or 12. */
  vnetHdr?: 0 | 10 | 12;
  /**
   * How frames cross the fd, both ways: `"uring"` (default: io_uring batches
   * of writes and of reads) or `"write"` (one `write()` / `readv()` per frame).
   * `stats()` says which queues really use io_uring.
   */
  io?: "uring" | "write";
  /** Create the device if it does not exist (default true; needs CAP_NET_ADMIN). */
  create?: boolean;
  /** Pool that received frames land in. Default: a new pool of 4096 frames. */
  pool?: FramePool;
  /** Slots per queue ring, 2..65536 (default 1024). */
  ringSize?: number;
  /** Frames per writer batch (one io_uring submit each), 1..256 (default 64). */
  ioBatch?: number;
  /** Default CPU for queue choice on xmit (see {@linkcode DeviceOptions}). */
  cpu?: number;
  /**
   * Kernel send buffer of the queues in bytes (`TUNSETSNDBUF`; device-wide,
   * so it also applies to others attached to a persistent device). Default:
   * leave it (the kernel's is unlimited). Frames written into the kernel
   * and still queued there count against it; past it writes wait for
   * writability (counted in `writePollouts`).
   */
  sndbuf?: number;
  /**
   * Offloads to ask the kernel for (needs `vnetHdr`): partial checksums
   * (`"csum"`) and TCP/UDP super-frames of up to 64 KiB (`"tso4"`, `"tso6"`,
   * `"tso_ecn"`, `"uso4"`, `"uso6"`; each needs `"csum"`, and the pool's frames
   * must hold a super-frame: see {@linkcode tapFrameSize}). What the kernel
   * accepted is in {@linkcode TapDevice.offloads}. Default: none.
   */
  offloads?: readonly TapOffload[];
}

/** One TAP offload (`TUN_F_*`), see {@linkcode TapDeviceOptions.offloads}. */
export type TapOffload = "csum" | "tso4" | "tso6" | "tso_ecn" | "uso4" | "uso6";

/**
 * Every offload, in the order they are reported.
 *
 * @example
 * ```ts
 * import { TAP_OFFLOADS } from "./tap.ts";
 * console.log(TAP_OFFLOADS.join(",")); // csum,tso4,tso6,tso_ecn,uso4,uso6
 * ```
 */
export const TAP_OFFLOADS: readonly TapOffload[] = [
  "csum",
  "tso4",
  "tso6",
  "tso_ecn",
  "uso4",
  "uso6",
];

const OFFLOAD_BIT: Record<TapOffload, number> = {
  csum: abi.BT_TAP_OFF_CSUM,
  tso4: abi.BT_TAP_OFF_TSO4,
  tso6: abi.BT_TAP_OFF_TSO6,
  tso_ecn: abi.BT_TAP_OFF_TSO_ECN,
  uso4: abi.BT_TAP_OFF_USO4,
  uso6: abi.BT_TAP_OFF_USO6,
};

/** The offloads of a `BT_TAP_OFF_*` mask, by name. */
function offloadNames(mask: number): TapOffload[] {
  return TAP_OFFLOADS.filter((o) => (mask & OFFLOAD_BIT[o]) !== 0);
}

/** {@linkcode DeviceStats} plus what the TAP's kernel side did. */
export interface TapStats extends DeviceStats {
  /** Frames written into the kernel (the kernel's RX packets). */
  written: number;
  /** Data bytes written (without the vnet header). */
  writtenBytes: number;
  /** Frames whose write failed (returned to their pool). */
  writeErrors: number;
  /** Write syscalls, or io_uring submits (one per batch). */
  writeSubmits: number;
  /** Waits for writability after `EAGAIN`. */
  writePollouts: number;
  /** Frames read from the kernel (the kernel's TX packets). */
  received: number;
  /** Data bytes read (without the vnet header). */
  receivedBytes: number;
  /** Non-empty reads. */
  receiveBatches: number;
  /** Reads skipped because the pool had no free frame. */
  receiveNoFrame: number;
  /** Packets too big for a frame (the MTU was raised after open): dropped, not cut short. */
  receiveTruncated: number;
  /** Frames a forwarder handed to its target device. */
  forwarded: number;
  /** Frames the target did not accept (full ring or closed). */
  forwardDropped: number;
  /** Whether every writer uses io_uring (false if any fell back to `write()`). */
  ioUring: boolean;
  /** Writers using io_uring now (a writer whose ring failed uses `write()`). */
  ioUringWriters: number;
  /** Receive sides using io_uring batches now (else one `readv()` per frame). */
  ioUringReceivers: number;
  /**
   * Frames kept out of their pool because their io_uring completion could
   * not be reaped (a failed ring): the kernel might still use them. 0 unless
   * io_uring itself failed.
   */
  stranded: number;
  /** Virtio-net header size. */
  vnetLen: number;
  /** Frames whose virtio-net header was refused (offsets outside the frame, unknown GSO type): dropped. */
  receiveBadVnet: number;
  /** Super-frames (GSO) read from the kernel. */
  receivedSuper: number;
  /** Super-frames written into the kernel (it segments them, or delivers them whole). */
  writtenSuper: number;
  /** Super-frames cut into segments in software because this TAP could not take them. */
  gsoFrames: number;
  /** The segments they became. */
  gsoSegments: number;
  /** Super-frames a bulk forwarder coalesced (GRO) before writing them into this TAP. */
  groFrames: number;
  /** The frames they were made of. */
  groSegments: number;
  /** Partial checksums completed in software for this TAP (it has no vnet header). */
  checksumsCompleted: number;
  /** Frames that could not be made fit for this TAP (no frames to segment into, bad metadata): dropped. */
  offloadDropped: number;
  /** Times a forwarder reading this TAP waited for room in its target instead of dropping. */
  forwardWaits: number;
  /** The error code of the last failed write (`writeErrors`), or "" if none failed. */
  lastWriteError: string;
}

/** Where each counted statistic sits in `bt_tap_stats`' output (enum bt_tap_stat, from the header). */
const TAP_INDEX: Partial<Record<keyof TapStats, number>> = {
  written: abi.BT_TS_TX_WRITTEN,
  writtenBytes: abi.BT_TS_TX_BYTES,
  writeErrors: abi.BT_TS_TX_ERRORS,
  writeSubmits: abi.BT_TS_TX_SUBMITS,
  writePollouts: abi.BT_TS_TX_POLLOUTS,
  received: abi.BT_TS_RX_PACKETS,
  receivedBytes: abi.BT_TS_RX_BYTES,
  receiveBatches: abi.BT_TS_RX_BATCHES,
  receiveNoFrame: abi.BT_TS_RX_NOFRAME,
  forwarded: abi.BT_TS_FWD_PACKETS,
  forwardDropped: abi.BT_TS_FWD_DROPPED,
  receiveBadVnet: abi.BT_TS_RX_BAD_VNET,
  receivedSuper: abi.BT_TS_RX_SUPER,
  writtenSuper: abi.BT_TS_TX_SUPER,
  gsoFrames: abi.BT_TS_GSO_FRAMES,
  gsoSegments: abi.BT_TS_GSO_SEGMENTS,
  groFrames: abi.BT_TS_GRO_FRAMES,
  groSegments: abi.BT_TS_GRO_SEGMENTS,
  checksumsCompleted: abi.BT_TS_CSUM_DONE,
  offloadDropped: abi.BT_TS_OFFLOAD_DROPPED,
  forwardWaits: abi.BT_TS_FWD_WAITS,
};
const TAP_KEYS = Object.keys(TAP_INDEX) as (keyof TapStats)[];
const TS_ERROR = abi.BT_TS_ERROR;
const TS_IO_URING = abi.BT_TS_IO_URING;
const TS_VNET_LEN = abi.BT_TS_VNET_LEN;
const TS_RX_TRUNCATED = abi.BT_TS_RX_TRUNCATED;
const TS_STRANDED = abi.BT_TS_STRANDED;
const TS_TX_URING_QUEUES = abi.BT_TS_TX_URING_QUEUES;
const TS_RX_URING_QUEUES = abi.BT_TS_RX_URING_QUEUES;
const TS_OFFLOADS = abi.BT_TS_OFFLOADS;
const TS_COUNT = abi.BT_TS_COUNT;

// Why bt_tap_open failed, beyond its errno (enum bt_tap_why).
const WHY_KIND = abi.BT_TAP_WHY_KIND;
const WHY_VNET_FLAG = abi.BT_TAP_WHY_VNET_FLAG;
const WHY_PI_FLAG = abi.BT_TAP_WHY_PI_FLAG;
const WHY_VNET_SIZE = abi.BT_TAP_WHY_VNET_SIZE;
const WHY_MTU = abi.BT_TAP_WHY_MTU;
const WHY_UP = abi.BT_TAP_WHY_UP;
const WHY_NOT_TAP = abi.BT_TAP_WHY_NOT_TAP;
const WHY_WORDS = abi.BT_TAP_WHY_WORDS;
const IFF_LOOPBACK = abi.BT_IFF_LOOPBACK;
/** Bytes of a frame beyond the MTU: an Ethernet header (14) and one VLAN tag (4). */
const L2_OVERHEAD = 18;
const MAX_FRAME_SIZE = abi.BT_MAX_FRAME_SIZE; // FramePool's largest frameSize
const IFF_VNET_HDR = abi.BT_IFF_VNET_HDR;

/** Options for {@linkcode TapDevice.forwardTo}. */
export interface ForwardOptions {
  /** Frames read per batch, 1..256 (default 64). */
  bulk?: number;
  /**
   * `"bulk"` (default): one write submit (or xmit) per batch, and TCP
   * segments coalesced into super-frames for a target with a vnet header;
   * `"single"`: one write (or xmit) per frame.
   */
  mode?: "bulk" | "single";
  /**
   * Hand frames to a TAP target's queue rings (one `bt_xmit` per batch; its
   * writer threads write them) instead of writing them from the reading
   * thread (default false: one wake-up fewer per frame). Targets that are
   * not TAP devices always take the ring.
   */
  viaRing?: boolean;
  /** Bulk mode: coalesce TCP segments into super-frames (default true). */
  gro?: boolean;
}

/** Options for {@linkcode TapDevice.frames}. */
export interface TapFramesOptions {
  /** Frames per batch, 1..256 (default 64). */
  batchSize?: number;
  /** Stop iterating when this signal aborts. */
  signal?: AbortSignal;
  /**
   * Longest single wait, in ms: an integer in 1..2147483647 (default 250);
   * anything else throws `EINVAL`. An abort ends the wait at once.
   */
  sleepMs?: number;
}

/** Options for {@linkcode TapDevice.wait}. */
export interface TapWaitOptions {
  /** Stop waiting (resolve false) when this signal aborts. */
  signal?: AbortSignal;
}

const ENCODER = new TextEncoder();

/**
 * Whether the kernel's `isspace()` is true for byte `b`: its ctype table
 * classes \t \n \v \f \r, ' ' and 0xA0 (Latin-1 no-break space) as space,
 * and no other byte (not the other control bytes, not DEL).
 */
function kernelSpace(b: number): boolean {
  return (b >= 0x09 && b <= 0x0d) || b === 0x20 || b === 0xa0;
}

const hexByte = (b: number) => `0x${b.toString(16).padStart(2, "0")}`;

/**
 * Why `name` is not a valid interface name (as a phrase), or undefined if
 * it is one. The kernel's rule (dev_valid_name) is checked byte by byte on
 * the name's UTF-8 encoding, as the kernel sees it: 1..15 bytes, not `.` or
 * `..`, and no `/`, `:` or byte the kernel counts as whitespace (\t \n \v
 * \f \r, space, and 0xA0, which is also the second byte of UTF-8 `à`,
 * `U+00A0` and others). Also refused: a NUL byte (the kernel would see only
 * the bytes before it) and a lone UTF-16 surrogate (it has no UTF-8 form).
 * The C library checks the same rule (`bt_tap_name_check`).
 *
 * @example
 * ```ts
 * import { tapNameProblem } from "./mod.ts";
 * console.log(tapNameProblem("a/b")); // "has '/' (byte 0x2f) at byte 1; the kernel refuses '/' and ':' in interface names"
 * console.log(tapNameProblem("tapà")); // 'has byte 0xa0 (byte 2 of "à", U+00E0, UTF-8 c3 a0) at byte 4, ...'
 * console.log(tapNameProblem("tap0")); // undefined
 * ```
 */
export function tapNameProblem(name: string): string | undefined {
  if (typeof name !== "string") return `is not a string but ${typeof name}`;
  if (name.length === 0) return "is empty";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const pair = c <= 0xdbff && i + 1 < name.length &&
        name.charCodeAt(i + 1) >= 0xdc00 && name.charCodeAt(i + 1) <= 0xdfff;
      if (!pair) {
        return `has a lone UTF-16 surrogate (\\u${c.toString(16)}) at index ${i}, which has ` +
          "no UTF-8 encoding";
      }
      i++;
    }
  }
  const bytes = ENCODER.encode(name);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return `has a NUL byte (0x00) at byte ${nul}; the kernel would see only ${
      JSON.stringify(name.slice(0, name.indexOf("\0")))
    }`;
  }
  if (bytes.length > 15) {
    return `is ${bytes.length} bytes; at most 15 fit IFNAMSIZ (16 with the NUL)`;
  }
  if (name === "." || name === "..") return `is ${JSON.stringify(name)}, which the kernel refuses`;
  let at = 0; // the character the byte belongs to
  for (const ch of name) {
    const enc = ENCODER.encode(ch);
    for (let k = 0; k < enc.length; k++) {
      const b = enc[k];
      const pos = at + k;
      if (b === 0x2f || b === 0x3a) {
        return `has '${ch}' (byte ${hexByte(b)}) at byte ${pos}; the kernel refuses '/' and ':' ` +
          "in interface names";
      }
      if (kernelSpace(b)) {
        const what = enc.length === 1
          ? `${JSON.stringify(ch)} (byte ${hexByte(b)})`
          : `byte ${hexByte(b)} (byte ${k + 1} of ${JSON.stringify(ch)}, U+${
            ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")
          }, UTF-8 ${Array.from(enc, (x) => x.toString(16).padStart(2, "0")).join(" ")})`;
        return `has ${what} at byte ${pos}, which the kernel counts as whitespace ` +
          "and refuses in interface names";
      }
    }
    at += enc.length;
  }
  return undefined;
}

/**
 * Whether an fd error means the TAP's device is gone: the kernel says
 * EBADFD on the fd of a deleted TAP (ENODEV, EBADF as well; EIO as before).
 * Users see all of them as `ENODEV`, the errno kept in the error.
 */
function fdLostDevice(code: BulktapErrorCode): boolean {
  return code === "ENODEV" || code === "EBADFD" || code === "EBADF" || code === "EIO";
}

/**
 * The largest MTU a TAP can have with `pool`'s frames: a received frame
 * (MTU + Ethernet header + one VLAN tag) must fit the bytes after the
 * headroom.
 *
 * @example
 * ```ts
 * import { FramePool } from "./mod.ts";
 * import { tapMaxMtu } from "./tap.ts";
 * using pool = new FramePool({ frames: 16 }); // 2048-byte frames, 256 of headroom
 * console.log(tapMaxMtu(pool)); // 1774
 * ```
 */
export function tapMaxMtu(pool: { frameSize: number; headroom: number }): number {
  return pool.frameSize - pool.headroom - L2_OVERHEAD;
}

/**
 * The pool `frameSize` a TAP needs for frames of `mtu` (default 1500) and,
 * with `superFrames`, for 64 KiB super-frames (TSO/USO offloads, or
 * frames a forwarder coalesces): a multiple of 64.
 *
 * @example
 * ```ts
 * import { tapFrameSize } from "./tap.ts";
 * console.log(tapFrameSize({ mtu: 1500 })); // 2048
 * console.log(tapFrameSize({ superFrames: true }) > 65536); // true
 * ```
 */
export function tapFrameSize(
  o: { mtu?: number; superFrames?: boolean; headroom?: number } = {},
): number {
  const headroom = o.headroom ?? 256;
  const packet = o.superFrames ? abi.BT_MAX_SUPER_FRAME : (o.mtu ?? 1500) + L2_OVERHEAD;
  const need = alignFrame(Math.max(packet, (o.mtu ?? 0) + L2_OVERHEAD) + headroom);
  return Math.max(2048, need);
}

/** `bytes` rounded up to a pool's frame size granule. */
function alignFrame(bytes: number): number {
  return Math.ceil(bytes / abi.BT_FRAME_ALIGN) * abi.BT_FRAME_ALIGN;
}

/** How to get frames that hold `mtu`: the pool's frameSize it takes. */
function biggerFrames(mtu: number, headroom: number): string {
  const need = alignFrame(mtu + L2_OVERHEAD + headroom);
  if (need <= MAX_FRAME_SIZE) return `give the TAP a pool with frameSize >= ${need}`;
  return `even the largest frames (frameSize ${MAX_FRAME_SIZE}) hold an MTU up to ` +
    `${MAX_FRAME_SIZE - headroom - L2_OVERHEAD} with ${headroom} bytes of headroom`;
}

/**
 * Whether an existing TUN/TAP device was made with a virtio-net header
 * (`IFF_VNET_HDR`, device-wide: attaching must match it), read from sysfs;
 * undefined when no TUN/TAP device has that name (or sysfs cannot be read).
 *
 * @example
 * ```ts
 * import { tapHasVnetHdr } from "./tap.ts";
 * console.log(tapHasVnetHdr("no-such-tap")); // undefined
 * ```
 */
export function tapHasVnetHdr(name: string): boolean | undefined {
  if (tapNameProblem(name)) return undefined;
  try {
    const text = Deno.readTextFileSync(`/sys/class/net/${name}/tun_flags`).trim();
    const flags = Number.parseInt(text, 16);
    return Number.isNaN(flags) ? undefined : (flags & IFF_VNET_HDR) !== 0;
  } catch {
    return undefined;
  }
}

/** The mask of `offloads`, checked: known names, a vnet header, csum with TSO/USO. */
function offloadMask(offloads: readonly TapOffload[] | undefined, vnet: number): number {
  if (offloads === undefined) return 0;
  if (!Array.isArray(offloads)) {
    throw new BulktapError("EINVAL", `offloads=${show(offloads)} is not an array of offload names`);
  }
  let mask = 0;
  for (const o of offloads) {
    if (typeof o !== "string" || !Object.hasOwn(OFFLOAD_BIT, o)) {
      throw new BulktapError(
        "EINVAL",
        `offload ${show(o)} is not one of ${TAP_OFFLOADS.join(", ")}`,
      );
    }
    mask |= OFFLOAD_BIT[o as TapOffload];
  }
  if (mask && !vnet) {
    throw new BulktapError(
      "EINVAL",
      `offloads ${offloads.join(",")} need a virtio-net header (vnetHdr 10 or 12): ` +
        "the kernel describes partial checksums and super-frames in it",
    );
  }
  if ((mask & ~abi.BT_TAP_OFF_CSUM) && !(mask & abi.BT_TAP_OFF_CSUM)) {
    throw new BulktapError(
      "EINVAL",
      `offloads ${offloads.join(",")} need "csum" too (the kernel's rule: segmentation ` +
        "offloads come with checksum offload)",
    );
  }
  return mask;
}

/** "mode 0600 here; " for /dev/net/tun, or "" if it cannot be read. */
function tunMode(): string {
  try {
    const mode = Deno.statSync("/dev/net/tun").mode;
    return mode === null ? "" : `mode ${(mode & 0o777).toString(8).padStart(4, "0")} here; `;
  } catch {
    return "";
  }
}

function user(): string {
  try {
    return Deno.env.get("USER") ?? "$USER";
  } catch {
    return "$USER";
  }
}

function openError(
  r: number,
  o: TapDeviceOptions,
  queues: number,
  why: Uint32Array,
): BulktapError {
  const code = codeForErrno(r);
  const n = JSON.stringify(o.name);
  const reason = why[abi.BT_TAP_WHY_W_REASON];
  const flags = why[abi.BT_TAP_WHY_W_FLAGS];
  const size = why[abi.BT_TAP_WHY_W_SIZE];
  const vnet = o.vnetHdr ?? 0;
  if (code === "EEXIST" && reason === WHY_NOT_TAP) {
    // Not ours to delete: say what it is, and what would work instead.
    const driver = new TextDecoder().decode(why.subarray(abi.BT_TAP_WHY_W_DRIVER)).replace(
      /\0.*$/s,
      "",
    );
    const kind = flags & IFF_LOOPBACK
      ? "the loopback interface"
      : driver
      ? `an interface with driver ${JSON.stringify(driver)}`
      : "an interface of another kind";
    return new BulktapError(
      "EEXIST",
      `${n} exists and is not a TAP device: it is ${kind}. bulktap opens only TAP devices ` +
        "and leaves other interfaces alone: use the name of a multi-queue TAP, or a name no " +
        "interface has yet (a TAP is then created under it)",
      r,
    );
  }
  if (code === "EPERM" && reason === WHY_MTU) {
    return new BulktapError(
      "EPERM",
      `TAP ${n} is attached, but setting its MTU to ${o.mtu}${
        size ? ` (it is ${size})` : ""
      } needs CAP_NET_ADMIN: have an administrator run \`sudo ip link set ${o.name} mtu ${o.mtu}\` ` +
        "once, or leave mtu unset to keep the MTU the link has",
      r,
    );
  }
  if (code === "EPERM" && reason === WHY_UP) {
    return new BulktapError(
      "EPERM",
      `TAP ${n} is attached, but it is down and bringing it up needs CAP_NET_ADMIN: have an ` +
        `administrator run \`sudo ip link set ${o.name} up\` once (it stays up while the device exists)`,
      r,
    );
  }
  if (code === "EEXIST" && reason === WHY_VNET_FLAG) {
    const has = (flags & IFF_VNET_HDR) !== 0;
    return new BulktapError(
      "EEXIST",
      `${n} exists ${has ? "with" : "without"} IFF_VNET_HDR (vnet_hdr) but vnetHdr ${vnet} asks ` +
        `for ${
          vnet ? "a virtio-net header" : "none"
        }: the flag is device-wide, so attaching would ` +
        `change the framing of every queue. Open it with ${
          has ? "vnetHdr set to its header size (10 unless a program set 12)" : "vnetHdr 0"
        }, or ` +
        `recreate it (\`ip link del ${o.name}\`, \`ip tuntap add dev ${o.name} mode tap ` +
        `multi_queue${vnet ? " vnet_hdr" : ""}\`)`,
      r,
    );
  }
  if (code === "EEXIST" && reason === WHY_VNET_SIZE) {
    return new BulktapError(
      "EEXIST",
      `${n} exists with a ${size}-byte virtio-net header (IFF_VNET_HDR; the size is ` +
        `device-wide) but vnetHdr ${vnet} asks for ${vnet} bytes: open it with vnetHdr ${size}`,
      r,
    );
  }
  if (code === "EEXIST" && reason === WHY_PI_FLAG) {
    return new BulktapError(
      "EEXIST",
      `${n} exists without IFF_NO_PI (created with \`pi\`): every frame would carry a packet ` +
        `information header. Recreate it: \`ip link del ${o.name}\`, \`ip tuntap add dev ` +
        `${o.name} mode tap multi_queue\``,
      r,
    );
  }
  if (code === "EINVAL" && reason === WHY_MTU) {
    return new BulktapError(
      "EINVAL",
      `TAP ${n} is attached, but the kernel refused MTU ${o.mtu} for it${
        size ? ` (it is ${size})` : ""
      }`,
      r,
    );
  }
  switch (code) {
    case "EACCES":
      return new BulktapError(
        "EACCES",
        `opening TAP ${n}: this user may not read and write /dev/net/tun (${tunMode()}its ` +
          "usual mode is 0666): have an administrator restore it (`sudo chmod 0666 /dev/net/tun`), " +
          "or run as root",
        r,
      );
    case "EPERM":
      return new BulktapError(
        "EPERM",
        `opening TAP ${n} needs CAP_NET_ADMIN. Either run as root, grant it once ` +
          "(`sudo setcap cap_net_admin+ep $(command -v deno)`), or have an administrator " +
          `create a persistent device you own: \`sudo ip tuntap add dev ${o.name} mode tap ` +
          `multi_queue user ${user()} && sudo ip link set ${o.name} up\` and open it with ` +
          "create: false",
        r,
      );
    case "ENOENT":
      return new BulktapError(
        "ENOENT",
        `TAP ${n} does not exist and create is false: create it with \`sudo ip tuntap add ` +
          `dev ${o.name} mode tap multi_queue user ${user()}\``,
        r,
      );
    case "EEXIST":
      return new BulktapError(
        "EEXIST",
        `${n} exists but is not a multi-queue TAP${
          reason === WHY_KIND ? "" : ` with these flags (vnetHdr ${vnet})`
        }: delete it (\`ip link del ${o.name}\`) or recreate it with \`ip tuntap add dev ${o.name} ` +
          "mode tap multi_queue`",
        r,
      );
    case "ENOSPC":
      return new BulktapError(
        "ENOSPC",
        `the pool's headroom cannot hold the metadata plus a ${o.vnetHdr}-byte vnet header`,
        r,
      );
    case "EINVAL":
      return new BulktapError(
        "EINVAL",
        `opening TAP ${n} with ${queues} queues: the kernel refused it (errno ${-r})`,
        r,
      );
    default:
      return new BulktapError(
        code,
        `opening TAP ${n} with ${queues} queues failed (errno ${-r})`,
        r,
      );
  }
}

// False only when /dev/net/tun is missing. Without --allow-read for it (a
// least-privilege run) the C library still opens it, so that is not an error.
function tunExists(): boolean {
  try {
    Deno.statSync("/dev/net/tun");
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.NotFound);
  }
}

/**
 * A multi-queue Linux TAP device. `xmit`, `xmitOne`, `flush`, `stats` and
 * `close` work as on any {@linkcode Device}; frames from the kernel arrive
 * through {@linkcode TapDevice.rx} or {@linkcode TapDevice.frames}.
 *
 * @example
 * ```ts ignore
 * import { FramePool, TapDevice } from "./mod.ts";
 * using pool = new FramePool({ frames: 1024 });
 * using tap = new TapDevice({ name: "bt0", queues: 2, pool, mtu: 1500 });
 * const refs = new Uint32Array(1);
 * pool.alloc(refs);
 * pool.write(refs[0], new Uint8Array(60)); // an Ethernet frame
 * tap.xmit(refs, { flush: true }); // written into the kernel
 * for await (const batch of tap.frames(0)) {
 *   console.log(batch.count, "frames from the kernel");
 *   break;
 * }
 * ```
 */
export class TapDevice extends Device {
  /** Interface name. */
  readonly name: string;
  /** Virtio-net header size (0, 10 or 12). */
  readonly vnetHdr: number;
  #tapOut = new BigUint64Array(TS_COUNT);
  #forwarding = false;

  /** Create or attach to the TAP device `options.name`. */
  constructor(options: TapDeviceOptions) {
    super(undefined, TapDevice.#open(options));
    this.name = options.name;
    this.vnetHdr = options.vnetHdr ?? 0;
  }

  static #open(o: TapDeviceOptions): AttachToken {
    const why = tapNameProblem(o.name);
    if (why) throw new BulktapError("EINVAL", `TAP name ${show(o.name)} ${why}`);
    const queues = intIn(o.queues ?? 1, 1, TAP_MAX_QUEUES, "queues");
    const ringSize = intIn(o.ringSize ?? 1024, abi.BT_MIN_RING, abi.BT_MAX_RING, "ringSize");
    const batch = intIn(o.ioBatch ?? 64, 1, abi.BT_MAX_BULK, "ioBatch");
    const mtu = o.mtu === undefined ? 0 : intIn(o.mtu, 68, 65535, "mtu");
    if (mtu > TAP_MAX_MTU) {
      throw new BulktapError(
        "EINVAL",
        `mtu=${mtu} is more than the kernel allows a TAP device: ${TAP_MAX_MTU} ` +
          "(65535 minus its 14-byte Ethernet header)",
      );
    }
    const vnetIn = o.vnetHdr ?? 0;
    if (vnetIn !== 0 && vnetIn !== 10 && vnetIn !== 12) {
      throw new BulktapError("EINVAL", `vnetHdr=${show(vnetIn)} is not 0, 10 or 12`);
    }
    const vnet = vnetIn + 0; // + 0: FFI refuses -0
    const io = o.io ?? "uring";
    if (io !== "uring" && io !== "write") {
      throw new BulktapError("EINVAL", `io=${show(io)} is not "uring" or "write"`);
    }
    const sndbuf = o.sndbuf === undefined ? 0 : intIn(o.sndbuf, 1, 0x7fffffff, "sndbuf");
    const want = offloadMask(o.offloads, vnet);
    const cpu = o.cpu ?? -1;
    if (!Number.isInteger(cpu) || cpu < -1) {
      throw new BulktapError("EINVAL", `cpu=${cpu} is not -1 or a CPU number`);
    }
    if (!tunExists()) {
      throw new BulktapError(
        "ENOTSUP",
        "/dev/net/tun does not exist: this kernel or container has no TUN/TAP support " +
          "(modprobe tun, or run the container with --device /dev/net/tun)",
      );
    }
    const ownsPool = o.pool === undefined;
    const pool = o.pool ?? new FramePool();
    if (pool.closed) throw new BulktapError("ECLOSED", `pool ${pool.handle} was closed`);
    const maxMtu = tapMaxMtu(pool);
    if (mtu > maxMtu) {
      if (ownsPool) pool.close();
      throw new BulktapError(
        "EINVAL",
        `mtu=${mtu} does not fit the pool's frames: a ${pool.frameSize}-byte frame with ` +
          `${pool.headroom} bytes of headroom holds frames of an MTU up to ${maxMtu} ` +
          `(plus ${L2_OVERHEAD} bytes of Ethernet header and VLAN tag); ${
            biggerFrames(mtu, pool.headroom)
          }`,
      );
    }
    const flags = (o.create ?? true ? CREATE : 0) | (io === "write" ? WRITE : 0);
    const name = ENCODER.encode(o.name + "\0");
    const h = library().bt_tap_open(pool.handle, name, queues, ringSize, mtu, vnet, flags, batch);
    if (h < 0) {
      const why = new Uint32Array(WHY_WORDS);
      library().bt_tap_open_why(why, WHY_WORDS);
      if (ownsPool) pool.close();
      throw openError(h, o, queues, why);
    }
    if (want) {
      const r = library().bt_tap_set_offloads(h, want);
      if (r < 0) {
        library().bt_dev_close(h);
        if (ownsPool) pool.close();
        const code = codeForErrno(r);
        if (code === "EMSGSIZE") {
          throw new BulktapError(
            "EMSGSIZE",
            `offloads ${offloadNames(want).join(",")} on TAP ${JSON.stringify(o.name)} need ` +
              `frames that hold a 64 KiB super-frame: the pool's frameSize is ${pool.frameSize}, ` +
              `give it frameSize >= ${
                tapFrameSize({ superFrames: true, headroom: pool.headroom })
              }`,
            r,
          );
        }
        checkErrno(r, `asking TAP ${JSON.stringify(o.name)} for offloads ${offloadNames(want)}`);
      }
    }
    if (sndbuf) {
      const r = library().bt_tap_set_sndbuf(h, sndbuf);
      if (r < 0) {
        library().bt_dev_close(h);
        if (ownsPool) pool.close();
        checkErrno(r, `setting the send buffer of TAP ${JSON.stringify(o.name)} to ${sndbuf}`);
      }
    }
    return new AttachToken(h, cpu, true, pool, ownsPool);
  }

  /**
   * Read up to `batch.capacity` frames that the kernel sent into queue
   * `queue`, without waiting (one FFI call). Frames still in the batch are
   * returned to their pools first. Each frame is stamped with its receive
   * time; with a vnet header its bytes sit just before the data. Returns 0
   * when nothing is readable or the pool has no free frame (counted in
   * `receiveNoFrame`); a packet too big for a frame is dropped and counted
   * in `receiveTruncated`, never delivered cut short. Throws
   * `ENODEV` if the device was deleted, `EBUSY` if a forwarder reads this
   * queue.
   *
   * @example
   * ```ts ignore
   * import { Batch, TapDevice } from "./mod.ts";
   * using tap = new TapDevice({ name: "bt0" });
   * const batch = new Batch(64);
   * const n = tap.rx(batch, 0);
   * console.log(n, "frames");
   * batch.release();
   * ```
   */
  rx(batch: Batch, queue = 0): number {
    this.assertOpen();
    queue = intIn(queue, 0, this.queues - 1, `rx on TAP ${JSON.stringify(this.name)}: queue`);
    const refs = batchRefs(batch);
    batch.release();
    const len = u32Length(refs, "batch refs");
    const r = library().bt_tap_rx(this.handle, queue, refs, len, len);
    if (r < 0) throw this.#rxError(r, queue);
    return setBatchCount(batch, r);
  }

  #rxError(r: number, queue: number): BulktapError {
    const code = codeForErrno(r);
    if (fdLostDevice(code)) {
      return new BulktapError(
        "ENODEV",
        `TAP ${JSON.stringify(this.name)} is gone (deleted while in use?): the kernel said ` +
          `${code} (errno ${-r}) on its fd`,
        r,
      );
    }
    if (code === "EBUSY") {
      return new BulktapError("EBUSY", `queue ${queue} is read by a forwarder`, r);
    }
    if (code === "EINVAL") {
      return new BulktapError("EINVAL", `queue ${queue} does not exist: ${this.queues} queues`, r);
    }
    return new BulktapError(code, `reading queue ${queue} failed (errno ${-r})`, r);
  }

  /**
   * Wait until queue `queue` has frames to read and the pool a frame to
   * read them into (true), or the timeout passes (false); off the event
   * loop. With an empty pool it naps in 1 ms steps until a frame is back,
   * so a wait/rx loop never spins. Throws `ENXIO` when the device closes
   * and `ENODEV` when it was deleted; resolves false when
   * `options.signal` aborts. Waiters of one queue in one isolate share one
   * sleeping thread (see waiter.ts). `timeoutMs` is an integer up to
   * 2147483647, negative for forever; anything else throws `EINVAL`.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using tap = new TapDevice({ name: "bt0" });
   * console.log(await tap.wait(0, 100));
   * ```
   */
  async wait(queue = 0, timeoutMs = -1, options: TapWaitOptions = {}): Promise<boolean> {
    const t = waitTimeout("timeoutMs", timeoutMs);
    this.assertOpen();
    queue = intIn(queue, 0, this.queues - 1, `wait on TAP ${JSON.stringify(this.name)}: queue`);
    const r = await waitShared(this.#waitSource(queue), t, options.signal);
    if (r < 0) {
      if (codeForErrno(r) === "ENXIO") checkErrno(r, `waiting on queue ${queue}`);
      throw this.#rxError(r, queue);
    }
    return r > 0;
  }

  /**
   * Batches of frames from the kernel on queue `queue`, until the device
   * closes or `signal` aborts; throws `ENODEV` if the device is deleted.
   * The batch object is reused and its frames are returned when the loop
   * asks for the next one (`batch.detach()` keeps them).
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using tap = new TapDevice({ name: "bt0" });
   * for await (const batch of tap.frames(0)) {
   *   console.log(batch.count);
   *   break;
   * }
   * ```
   */
  frames(queue = 0, options: TapFramesOptions = {}): AsyncGenerator<Batch, void, undefined> {
    queue = intIn(queue, 0, this.queues - 1, `frames of TAP ${JSON.stringify(this.name)}: queue`);
    const batch = new Batch(intIn(options.batchSize ?? 64, 1, 256, "batchSize"));
    const sleepMs = sleepBound("sleepMs", options.sleepMs ?? 250);
    const q = queue;
    return new FrameStream(
      (b) => this.rx(b, q),
      batch,
      sleepMs,
      options.signal,
      this.#waitSource(q),
      (r) => {
        throw this.#rxError(r, q);
      },
    );
  }

  // What the shared waits of queue `queue` sleep on (waiter.ts). The C
  // wait looks at its cancel word every 50 ms (a TAP fd cannot be woken
  // from outside), so kick has nothing to do.
  #waitSource(queue: number): WaitSource {
    return tapWaitSource(this.handle, queue);
  }

  /**
   * Forward every frame the kernel sends into this TAP to `target`, in C:
   * one thread per queue reads a batch and hands it to `target`'s bulk
   * transmit (queue `i` feeds the target's queue `i % queues`). Frames the
   * target does not accept go back to the pool, counted in
   * `forwardDropped`. While forwarding, `rx` on this device throws `EBUSY`.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using a = new TapDevice({ name: "btA" });
   * using b = new TapDevice({ name: "btB" });
   * a.forwardTo(b);
   * b.forwardTo(a);
   * ```
   */
  forwardTo(target: Device, options: ForwardOptions = {}): void {
    this.#startForwarding(target, options, false);
  }

  /**
   * Forward both ways between this TAP and `other` in C: thread i reads
   * queue i of each and writes what it read into the other, so a request
   * and its answer (a ping, a TCP segment and its ACK) cost one wake-up,
   * not two. `stopForwarding()` on either stops both directions. Throws
   * `EBUSY` if either already forwards or is being read.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using a = new TapDevice({ name: "btA" });
   * using b = new TapDevice({ name: "btB" });
   * a.forwardBoth(b);
   * await a.stopForwarding();
   * ```
   */
  forwardBoth(other: TapDevice, options: ForwardOptions = {}): void {
    if (!(other instanceof TapDevice)) {
      throw new BulktapError(
        "EINVAL",
        `forwardBoth(${show(other)}): the other end is no TapDevice`,
      );
    }
    if (other === this) {
      throw new BulktapError("EINVAL", `forwardBoth: ${this.name} cannot forward to itself`);
    }
    this.#startForwarding(other, options, true);
    other.#forwarding = true;
  }

  #startForwarding(target: Device, options: ForwardOptions, both: boolean): void {
    this.assertOpen();
    target.assertOpen();
    const bulk = intIn(options.bulk ?? 64, 1, abi.BT_MAX_BULK, "bulk");
    const mode = options.mode ?? "bulk";
    if (mode !== "bulk" && mode !== "single") {
      throw new BulktapError("EINVAL", `mode=${JSON.stringify(mode)} is not "bulk" or "single"`);
    }
    const flags = (mode === "bulk" ? abi.BT_FWD_BULK : abi.BT_FWD_SINGLE) |
      (options.viaRing ? abi.BT_FWD_VIA_RING : 0) |
      (options.gro === false ? abi.BT_FWD_NO_GRO : 0);
    const r = both
      ? library().bt_forward_pair_start(this.handle, target.handle, bulk, flags)
      : library().bt_forward_start(this.handle, target.handle, bulk, flags);
    if (r < 0) {
      const code = codeForErrno(r);
      if (code === "EBUSY") {
        const who = both ? `${this.name} or ${(target as TapDevice).name}` : this.name;
        throw new BulktapError("EBUSY", `${who} already forwards or is being read`, r);
      }
      if (fdLostDevice(code)) throw this.#rxError(r, 0);
      checkErrno(r, `forwarding ${this.name}`);
    }
    this.#forwarding = true;
  }

  /**
   * Stop forwarding (waits for the batch in flight). Returns whether it was
   * forwarding.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using a = new TapDevice({ name: "btA" });
   * a.forwardTo(a);
   * await a.stopForwarding();
   * ```
   */
  async stopForwarding(): Promise<boolean> {
    if (this.closed || !this.#forwarding) return false;
    this.#forwarding = false;
    const r = await library().bt_forward_stop_async(this.handle);
    if (r < 0 && codeForErrno(r) === "ENXIO") return false;
    return checkErrno(r, `stopping the forwarder of ${this.name}`) > 0;
  }

  /**
   * The error that stopped the device (it was deleted while in use), or
   * undefined while it works.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using tap = new TapDevice({ name: "bt0" });
   * console.log(tap.error); // undefined
   * ```
   */
  get error(): BulktapError | undefined {
    if (this.closed) return undefined;
    const out = this.#tapOut;
    const r = library().bt_tap_stats(this.handle, out, TS_COUNT);
    if (r < 0) return undefined;
    const e = Number(out[TS_ERROR]);
    return e ? this.#rxError(-e, 0) : undefined;
  }

  /**
   * Counters of the device and of its kernel side. Throws `ENODEV` (with
   * the counts gathered so far in the message) once the device was deleted.
   */
  override stats(): TapStats {
    const s = super.stats() as TapStats;
    const out = this.#tapOut;
    checkErrno(library().bt_tap_stats(this.handle, out, TS_COUNT), `TAP ${this.name} stats`);
    TapDevice.#fill(s, out);
    const e = Number(out[TS_ERROR]);
    if (e) {
      const err = this.#rxError(-e, 0);
      throw new BulktapError(
        err.code,
        `${err.message.replace(/^\w+: /, "")}; counts so far: written ${s.written}, ` +
          `received ${s.received}`,
        -e,
      );
    }
    return s;
  }

  /**
   * Counters without the error check, for a final report after the device
   * was deleted.
   */
  statsUnchecked(): TapStats {
    try {
      return this.stats();
    } catch (e) {
      if (!(e instanceof BulktapError) || e.code !== "ENODEV") throw e;
      const s = super.stats() as TapStats;
      TapDevice.#fill(s, this.#tapOut);
      return s;
    }
  }

  static #fill(s: TapStats, out: BigUint64Array): void {
    for (const k of TAP_KEYS) {
      (s as unknown as Record<string, number>)[k] = Number(out[TAP_INDEX[k]!]);
    }
    s.ioUring = out[TS_IO_URING] === 1n;
    s.vnetLen = Number(out[TS_VNET_LEN]);
    s.receiveTruncated = Number(out[TS_RX_TRUNCATED]);
    s.stranded = Number(out[TS_STRANDED]);
    s.ioUringWriters = Number(out[TS_TX_URING_QUEUES]);
    s.ioUringReceivers = Number(out[TS_RX_URING_QUEUES]);
    const e = Number(out[abi.BT_TS_TX_LAST_ERRNO]);
    s.lastWriteError = e ? codeForErrno(-e) : "";
  }

  /**
   * The offloads the kernel accepted for this TAP (see
   * {@linkcode TapDeviceOptions.offloads}); empty without them.
   *
   * @example
   * ```ts ignore
   * import { FramePool, TapDevice, tapFrameSize } from "./mod.ts";
   * using pool = new FramePool({ frames: 256, frameSize: tapFrameSize({ superFrames: true }) });
   * using tap = new TapDevice({ name: "bt0", pool, vnetHdr: 12, offloads: ["csum", "tso4", "tso6"] });
   * console.log(tap.offloads); // [ "csum", "tso4", "tso6" ]
   * ```
   */
  get offloads(): TapOffload[] {
    this.assertOpen();
    const out = this.#tapOut;
    if (library().bt_tap_stats(this.handle, out, TS_COUNT) < 0) return [];
    return offloadNames(Number(out[TS_OFFLOADS]));
  }

  /**
   * Wait until every frame queued for the kernel has been written (or
   * `timeoutMs` passes). Returns whether the queues drained.
   *
   * @example
   * ```ts ignore
   * import { TapDevice } from "./mod.ts";
   * using tap = new TapDevice({ name: "bt0" });
   * await tap.drained();
   * ```
   */
  async drained(timeoutMs = 5000): Promise<boolean> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const s = this.statsUnchecked();
      const gone = s.written + s.writeErrors + s.stranded + s.offloadDropped;
      if (s.queued === 0 && gone >= s.txPackets) return true;
      if (performance.now() > end) return false;
      await new Promise((r) => setTimeout(r, 1));
    }
  }
}
