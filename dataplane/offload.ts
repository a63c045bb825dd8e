/**
 * Offload metadata of a frame: the virtio-net header's flags and GSO types,
 * as a TAP device with offloads reads them and as programs set them
 * (see `FramePool.gsoType`, `FramePool.setGso` and
 * `FramePool.setPartialChecksum`).
 *
 * A frame may be a "super-frame": one TCP or UDP packet of up to 64 KiB
 * (Ethernet header included) that the device cuts into segments of
 * `gsoSize` payload bytes, each behind a copy of the first `headerLength`
 * bytes. A frame may also carry a partial checksum (`NEEDS_CSUM`): the
 * UDP/TCP checksum field holds the folded pseudo-header sum, not
 * complemented, and the device completes it over the bytes from
 * `csumStart` to the end. Offsets are counted from the start of the data
 * (the Ethernet header), as in the virtio-net header.
 *
 * @example
 * ```ts
 * import { FramePool, GsoType, VnetFlags } from "./mod.ts";
 * using pool = new FramePool({ frames: 4 });
 * const refs = new Uint32Array(1);
 * pool.alloc(refs);
 * pool.setLength(refs[0], 1514);
 * pool.setGso(refs[0], GsoType.TCPV4, 1448, 54);
 * pool.setPartialChecksum(refs[0], 34, 16);
 * console.log(pool.gsoType(refs[0]) === GsoType.TCPV4); // true
 * console.log((pool.vnetFlags(refs[0]) & VnetFlags.NEEDS_CSUM) !== 0); // true
 * pool.free(refs);
 * ```
 *
 * @module
 */
import * as abi from "../ffi/abi.ts";

/**
 * GSO types of a frame (the virtio-net header's, same values). `ECN` is a
 * flag or-ed into a TCP type: the super-frame carries CWR. `UDP` (UFO, IP
 * fragmentation) is never produced and refused by `FramePool.setGso`.
 *
 * @example
 * ```ts
 * import { GsoType } from "./offload.ts";
 * console.log(GsoType.TCPV6 | GsoType.ECN); // 132
 * ```
 */
export const GsoType = {
  /** Not a super-frame. */
  NONE: abi.BT_GSO_NONE,
  /** TCP over IPv4, cut into segments of `gsoSize` payload bytes. */
  TCPV4: abi.BT_GSO_TCPV4,
  /** UFO: UDP cut by IP fragmentation (refused, never produced). */
  UDP: abi.BT_GSO_UDP,
  /** TCP over IPv6. */
  TCPV6: abi.BT_GSO_TCPV6,
  /** USO: UDP over IPv4 or IPv6, cut into datagrams of `gsoSize` payload bytes. */
  UDP_L4: abi.BT_GSO_UDP_L4,
  /** Flag or-ed into a TCP type: the super-frame carries CWR. */
  ECN: abi.BT_GSO_ECN,
} as const;

/**
 * Flags of a frame's offload metadata (the virtio-net header's, same
 * values), as `FramePool.vnetFlags` answers them.
 *
 * @example
 * ```ts
 * import { VnetFlags } from "./offload.ts";
 * console.log(VnetFlags.NEEDS_CSUM, VnetFlags.DATA_VALID); // 1 2
 * ```
 */
export const VnetFlags = {
  /**
   * The UDP/TCP checksum is partial: its field (at `csumStart +
   * csumOffset`) holds the folded pseudo-header sum; the device completes
   * it over `csumStart`..end.
   */
  NEEDS_CSUM: abi.BT_VNET_F_NEEDS_CSUM,
  /** The checksums were verified already (by the sender or the kernel). */
  DATA_VALID: abi.BT_VNET_F_DATA_VALID,
} as const;
