// Generated from c/bulktap.h by ffi/gen_abi.ts (deno task abi). Do not edit.
/**
 * The C library's constants, enums, flags and layout offsets, as
 * `c/bulktap.h` defines them: the one source TypeScript reads them from.
 *
 * @module
 */

/** `BT_VERSION` */
export const BT_VERSION = 3;

/** `BT_MAX_POOLS`: pool slots 1..255; slot 0 is never used */
export const BT_MAX_POOLS = 255;

/** `BT_MAX_DEVS` */
export const BT_MAX_DEVS = 4096;

/** `BT_MAX_QUEUES` */
export const BT_MAX_QUEUES = 256;

/** `BT_MIN_RING`: slots of a queue ring */
export const BT_MIN_RING = 2;

/** `BT_MAX_RING` */
export const BT_MAX_RING = 65536;

/** `BT_MAX_BULK`: largest bulk accepted by one xmit call */
export const BT_MAX_BULK = 256;

/** `BT_REF_INDEX_BITS` */
export const BT_REF_INDEX_BITS = 24;

/** `BT_REF_INDEX_MASK` */
export const BT_REF_INDEX_MASK = 16777215;

/** `BT_XMIT_FLUSH`: wake the queue's reader if it sleeps */
export const BT_XMIT_FLUSH = 1;

/** `BT_XMIT_KEEP`: frames that do not fit stay the caller's (HELD), */
export const BT_XMIT_KEEP = 2;

/** `BT_XMIT_DIRECT`: a TAP device: write the frames into the kernel */
export const BT_XMIT_DIRECT = 4;

/** `BT_XMIT_FLAGS_MASK` */
export const BT_XMIT_FLAGS_MASK = 7;

/** `BT_CPU_SELF` */
export const BT_CPU_SELF = -1;

/** `BT_FRAME_MAGIC`: "btfr" */
export const BT_FRAME_MAGIC = 1651795570;

/** `BT_META_SIZE`: sizeof(struct bt_frame_meta), what bt_meta_size() returns */
export const BT_META_SIZE = 64;

/** `BT_META_OFF_MAGIC` */
export const BT_META_OFF_MAGIC = 0;

/** `BT_META_OFF_REF` */
export const BT_META_OFF_REF = 4;

/** `BT_META_OFF_DATA_OFF` */
export const BT_META_OFF_DATA_OFF = 8;

/** `BT_META_OFF_LEN` */
export const BT_META_OFF_LEN = 12;

/** `BT_META_OFF_TSTAMP` */
export const BT_META_OFF_TSTAMP = 16;

/** `BT_META_OFF_MARK` */
export const BT_META_OFF_MARK = 24;

/** `BT_META_OFF_QUEUE` */
export const BT_META_OFF_QUEUE = 28;

/** `BT_META_OFF_STATE` */
export const BT_META_OFF_STATE = 30;

/** `BT_META_OFF_VNET_LEN` */
export const BT_META_OFF_VNET_LEN = 32;

/** `BT_META_OFF_VNET_FLAGS` */
export const BT_META_OFF_VNET_FLAGS = 34;

/** `BT_META_OFF_GSO_TYPE` */
export const BT_META_OFF_GSO_TYPE = 35;

/** `BT_META_OFF_HDR_LEN` */
export const BT_META_OFF_HDR_LEN = 36;

/** `BT_META_OFF_GSO_SIZE` */
export const BT_META_OFF_GSO_SIZE = 38;

/** `BT_META_OFF_CSUM_START` */
export const BT_META_OFF_CSUM_START = 40;

/** `BT_META_OFF_CSUM_OFFSET` */
export const BT_META_OFF_CSUM_OFFSET = 42;

/** `BT_VNET_F_NEEDS_CSUM`: L4 checksum is partial: see csum_* */
export const BT_VNET_F_NEEDS_CSUM = 1;

/** `BT_VNET_F_DATA_VALID`: checksums already verified */
export const BT_VNET_F_DATA_VALID = 2;

/** `BT_GSO_NONE` */
export const BT_GSO_NONE = 0;

/** `BT_GSO_TCPV4` */
export const BT_GSO_TCPV4 = 1;

/** `BT_GSO_UDP`: UFO (IP fragmentation): refused, never produced */
export const BT_GSO_UDP = 3;

/** `BT_GSO_TCPV6` */
export const BT_GSO_TCPV6 = 4;

/** `BT_GSO_UDP_L4`: USO: UDP segmentation, IPv4 or IPv6 */
export const BT_GSO_UDP_L4 = 5;

/** `BT_GSO_ECN`: TCP: the super-frame carries CWR */
export const BT_GSO_ECN = 128;

/** `BT_MAX_FRAME_SIZE` */
export const BT_MAX_FRAME_SIZE = 131072;

/** `BT_MIN_FRAME_SIZE` */
export const BT_MIN_FRAME_SIZE = 128;

/** `BT_FRAME_ALIGN` */
export const BT_FRAME_ALIGN = 64;

/** `BT_MAX_HEADROOM` */
export const BT_MAX_HEADROOM = 65535;

/** `BT_MIN_DATA_ROOM` */
export const BT_MIN_DATA_ROOM = 64;

/** `BT_MAX_SUPER_FRAME` */
export const BT_MAX_SUPER_FRAME = 65554;

/** `BT_FREE`: in its pool */
export const BT_FREE = 0;

/** `BT_HELD`: held by a caller */
export const BT_HELD = 1;

/** `BT_QUEUED`: in a device queue */
export const BT_QUEUED = 2;

/** `BT_PS_FRAMES` */
export const BT_PS_FRAMES = 0;

/** `BT_PS_FREE` */
export const BT_PS_FREE = 1;

/** `BT_PS_HELD` */
export const BT_PS_HELD = 2;

/** `BT_PS_QUEUED` */
export const BT_PS_QUEUED = 3;

/** `BT_PS_ALLOC_FAILED`: frames asked for but not available */
export const BT_PS_ALLOC_FAILED = 4;

/** `BT_PS_DOUBLE_RETURN`: returns of frames that were not held */
export const BT_PS_DOUBLE_RETURN = 5;

/** `BT_PS_FOREIGN_RETURN`: returns of frames of another pool */
export const BT_PS_FOREIGN_RETURN = 6;

/** `BT_PS_INVALID_REF`: refs that name no frame of this pool */
export const BT_PS_INVALID_REF = 7;

/** `BT_PS_CORRUPT`: frames whose state said otherwise than where the */
export const BT_PS_CORRUPT = 8;

/** `BT_PS_COUNT` */
export const BT_PS_COUNT = 9;

/** `BT_PI_SLOT` */
export const BT_PI_SLOT = 0;

/** `BT_PI_FRAMES` */
export const BT_PI_FRAMES = 1;

/** `BT_PI_FRAME_SIZE` */
export const BT_PI_FRAME_SIZE = 2;

/** `BT_PI_HEADROOM` */
export const BT_PI_HEADROOM = 3;

/** `BT_PI_REGION_BYTES` */
export const BT_PI_REGION_BYTES = 4;

/** `BT_PI_COUNT` */
export const BT_PI_COUNT = 5;

/** `BT_DS_TX_PACKETS` */
export const BT_DS_TX_PACKETS = 0;

/** `BT_DS_TX_BYTES` */
export const BT_DS_TX_BYTES = 1;

/** `BT_DS_TX_DROPPED`: not accepted by a full ring: back in the pool */
export const BT_DS_TX_DROPPED = 2;

/** `BT_DS_XMIT_CALLS` */
export const BT_DS_XMIT_CALLS = 3;

/** `BT_DS_FLUSHES` */
export const BT_DS_FLUSHES = 4;

/** `BT_DS_WAKEUPS_SENT` */
export const BT_DS_WAKEUPS_SENT = 5;

/** `BT_DS_WAKEUPS_AVOIDED` */
export const BT_DS_WAKEUPS_AVOIDED = 6;

/** `BT_DS_LOCK_ACQUISITIONS` */
export const BT_DS_LOCK_ACQUISITIONS = 7;

/** `BT_DS_RX_PACKETS` */
export const BT_DS_RX_PACKETS = 8;

/** `BT_DS_RX_BYTES` */
export const BT_DS_RX_BYTES = 9;

/** `BT_DS_RX_BATCHES` */
export const BT_DS_RX_BATCHES = 10;

/** `BT_DS_RX_SLEEPS`: times a reader announced it sleeps */
export const BT_DS_RX_SLEEPS = 11;

/** `BT_DS_RX_DROPPED`: copied entries with no pool frame to land in */
export const BT_DS_RX_DROPPED = 12;

/** `BT_DS_QUEUED`: entries in the queues right now */
export const BT_DS_QUEUED = 13;

/** `BT_DS_LOCK_CONTENDED`: xmit calls that found the producer lock held */
export const BT_DS_LOCK_CONTENDED = 14;

/** `BT_DS_LOCK_PARKS`: ... and slept on its futex (not just spun) */
export const BT_DS_LOCK_PARKS = 15;

/** `BT_DS_COUNT` */
export const BT_DS_COUNT = 16;

/** `BT_DI_QUEUES` */
export const BT_DI_QUEUES = 0;

/** `BT_DI_RING_SIZE` */
export const BT_DI_RING_SIZE = 1;

/** `BT_DI_POOL`: handle of the device's own pool */
export const BT_DI_POOL = 2;

/** `BT_DI_COUNT` */
export const BT_DI_COUNT = 3;

/** `BT_FRAME_OK` */
export const BT_FRAME_OK = 0;

/** `BT_FRAME_NO_POOL`: the slot names no open pool */
export const BT_FRAME_NO_POOL = 1;

/** `BT_FRAME_BAD_INDEX`: index beyond the pool */
export const BT_FRAME_BAD_INDEX = 2;

/** `BT_FRAME_NOT_HELD`: free (double return) */
export const BT_FRAME_NOT_HELD = 3;

/** `BT_FRAME_QUEUED`: still in a device queue */
export const BT_FRAME_QUEUED = 4;

/** `BT_FRAME_BAD_LENGTH`: data_off + len beyond the frame */
export const BT_FRAME_BAD_LENGTH = 5;

/** `BT_FRAME_BAD_OFFSET`: data_off inside the metadata */
export const BT_FRAME_BAD_OFFSET = 6;

/** `BT_MAX_SPIN_NS`: longest spin of bt_queue_read_spin */
export const BT_MAX_SPIN_NS = 1000000;

/** `BT_TAP_CREATE`: create the device if it does not exist */
export const BT_TAP_CREATE = 1;

/** `BT_TAP_WRITE`: write() per frame instead of io_uring batches */
export const BT_TAP_WRITE = 2;

/** `BT_TAP_MAX_QUEUES`: queues (file descriptors) of one TAP device */
export const BT_TAP_MAX_QUEUES = 64;

/** `BT_FWD_BULK`: batches: one write submit (or xmit) per batch */
export const BT_FWD_BULK = 0;

/** `BT_FWD_SINGLE`: one frame per write (or xmit), no coalescing */
export const BT_FWD_SINGLE = 1;

/** `BT_FWD_MODE_MASK` */
export const BT_FWD_MODE_MASK = 1;

/** `BT_FWD_VIA_RING`: hand frames to the target's queue rings */
export const BT_FWD_VIA_RING = 256;

/** `BT_FWD_NO_GRO`: bulk mode: do not coalesce TCP segments */
export const BT_FWD_NO_GRO = 512;

/** `BT_FWD_FLAGS_MASK` */
export const BT_FWD_FLAGS_MASK = 769;

/** `BT_TAP_OFF_CSUM` */
export const BT_TAP_OFF_CSUM = 1;

/** `BT_TAP_OFF_TSO4` */
export const BT_TAP_OFF_TSO4 = 2;

/** `BT_TAP_OFF_TSO6` */
export const BT_TAP_OFF_TSO6 = 4;

/** `BT_TAP_OFF_TSO_ECN` */
export const BT_TAP_OFF_TSO_ECN = 8;

/** `BT_TAP_OFF_USO4` */
export const BT_TAP_OFF_USO4 = 32;

/** `BT_TAP_OFF_USO6` */
export const BT_TAP_OFF_USO6 = 64;

/** `BT_TAP_OFF_ALL` */
export const BT_TAP_OFF_ALL = 111;

/** `BT_TS_TX_WRITTEN`: frames written into the kernel */
export const BT_TS_TX_WRITTEN = 0;

/** `BT_TS_TX_BYTES`: their data bytes (without vnet header) */
export const BT_TS_TX_BYTES = 1;

/** `BT_TS_TX_ERRORS`: frames whose write failed: back in the pool */
export const BT_TS_TX_ERRORS = 2;

/** `BT_TS_TX_SUBMITS`: write syscalls or io_uring submits */
export const BT_TS_TX_SUBMITS = 3;

/** `BT_TS_TX_POLLOUTS`: waits for writability after EAGAIN */
export const BT_TS_TX_POLLOUTS = 4;

/** `BT_TS_RX_PACKETS`: frames read from the kernel */
export const BT_TS_RX_PACKETS = 5;

/** `BT_TS_RX_BYTES` */
export const BT_TS_RX_BYTES = 6;

/** `BT_TS_RX_BATCHES` */
export const BT_TS_RX_BATCHES = 7;

/** `BT_TS_RX_NOFRAME`: reads skipped: the pool had no free frame */
export const BT_TS_RX_NOFRAME = 8;

/** `BT_TS_FWD_PACKETS`: frames a forwarder handed to its target */
export const BT_TS_FWD_PACKETS = 9;

/** `BT_TS_FWD_DROPPED`: frames the target did not accept */
export const BT_TS_FWD_DROPPED = 10;

/** `BT_TS_ERROR`: errno that stopped the device (deleted), else 0 */
export const BT_TS_ERROR = 11;

/** `BT_TS_IO_URING`: 1 if every writer uses io_uring right now */
export const BT_TS_IO_URING = 12;

/** `BT_TS_VNET_LEN` */
export const BT_TS_VNET_LEN = 13;

/** `BT_TS_RX_TRUNCATED`: packets too big for a frame: dropped */
export const BT_TS_RX_TRUNCATED = 14;

/** `BT_TS_STRANDED`: frames kept out of the pool: their io_uring */
export const BT_TS_STRANDED = 15;

/** `BT_TS_TX_URING_QUEUES`: writers using io_uring */
export const BT_TS_TX_URING_QUEUES = 16;

/** `BT_TS_RX_URING_QUEUES`: receive sides using io_uring batches */
export const BT_TS_RX_URING_QUEUES = 17;

/** `BT_TS_OFFLOADS`: BT_TAP_OFF_* the kernel accepted */
export const BT_TS_OFFLOADS = 18;

/** `BT_TS_RX_BAD_VNET`: frames whose vnet header was refused */
export const BT_TS_RX_BAD_VNET = 19;

/** `BT_TS_RX_SUPER`: super-frames (GSO) received */
export const BT_TS_RX_SUPER = 20;

/** `BT_TS_GSO_FRAMES`: super-frames segmented in software for this */
export const BT_TS_GSO_FRAMES = 21;

/** `BT_TS_GSO_SEGMENTS`: segments they became */
export const BT_TS_GSO_SEGMENTS = 22;

/** `BT_TS_GRO_FRAMES`: super-frames coalesced in software into this */
export const BT_TS_GRO_FRAMES = 23;

/** `BT_TS_GRO_SEGMENTS`: frames they were made of */
export const BT_TS_GRO_SEGMENTS = 24;

/** `BT_TS_CSUM_DONE`: partial checksums completed in software */
export const BT_TS_CSUM_DONE = 25;

/** `BT_TS_OFFLOAD_DROPPED`: frames that could not be made fit for */
export const BT_TS_OFFLOAD_DROPPED = 26;

/** `BT_TS_FWD_WAITS`: times a forwarder waited for room in its */
export const BT_TS_FWD_WAITS = 27;

/** `BT_TS_TX_SUPER`: super-frames written (the kernel segments) */
export const BT_TS_TX_SUPER = 28;

/** `BT_TS_TX_LAST_ERRNO`: errno of the last failed write (0: none; */
export const BT_TS_TX_LAST_ERRNO = 29;

/** `BT_TS_COUNT` */
export const BT_TS_COUNT = 30;

/** `BT_TAP_WHY_W_REASON`: enum bt_tap_why */
export const BT_TAP_WHY_W_REASON = 0;

/** `BT_TAP_WHY_W_FLAGS`: the existing device's TUN flags; for */
export const BT_TAP_WHY_W_FLAGS = 1;

/** `BT_TAP_WHY_W_SIZE`: its vnet header size, or the MTU it had */
export const BT_TAP_WHY_W_SIZE = 2;

/** `BT_TAP_WHY_W_DRIVER`: BT_TAP_WHY_NOT_TAP: from here to the end, its */
export const BT_TAP_WHY_W_DRIVER = 3;

/** `BT_TAP_WHY_WORDS`: words it can fill */
export const BT_TAP_WHY_WORDS = 11;

/** `BT_IFF_VNET_HDR`: TUN flag: frames carry a virtio-net header */
export const BT_IFF_VNET_HDR = 16384;

/** `BT_IFF_LOOPBACK`: link flag: the loopback interface */
export const BT_IFF_LOOPBACK = 8;

/** `BT_TAP_WHY_NONE` */
export const BT_TAP_WHY_NONE = 0;

/** `BT_TAP_WHY_KIND`: -EEXIST: not a multi-queue TAP */
export const BT_TAP_WHY_KIND = 1;

/** `BT_TAP_WHY_VNET_FLAG`: -EEXIST: IFF_VNET_HDR differs */
export const BT_TAP_WHY_VNET_FLAG = 2;

/** `BT_TAP_WHY_PI_FLAG`: -EEXIST: without IFF_NO_PI */
export const BT_TAP_WHY_PI_FLAG = 3;

/** `BT_TAP_WHY_VNET_SIZE`: -EEXIST: another vnet header size */
export const BT_TAP_WHY_VNET_SIZE = 4;

/** `BT_TAP_WHY_MTU`: setting the MTU failed */
export const BT_TAP_WHY_MTU = 5;

/** `BT_TAP_WHY_UP`: bringing the link up failed */
export const BT_TAP_WHY_UP = 6;

/** `BT_TAP_WHY_NOT_TAP`: -EEXIST: an interface that is no TUN/TAP */
export const BT_TAP_WHY_NOT_TAP = 7;

/** `BT_DEVMAP_MAX_TARGETS` */
export const BT_DEVMAP_MAX_TARGETS = 64;

/** `BT_DEVMAP_SENT`: frames the target accepted */
export const BT_DEVMAP_SENT = 0;

/** `BT_DEVMAP_DROPPED`: frames it did not: back in their pool */
export const BT_DEVMAP_DROPPED = 1;

/** `BT_DEVMAP_FAILED_CALLS`: xmit calls that failed as a whole */
export const BT_DEVMAP_FAILED_CALLS = 2;

/** `BT_DEVMAP_XMIT_CALLS`: xmit calls, one per stage sent */
export const BT_DEVMAP_XMIT_CALLS = 3;

/** `BT_DEVMAP_COUNTS`: words per target */
export const BT_DEVMAP_COUNTS = 4;

/** `BT_LAT_SUB_BITS` */
export const BT_LAT_SUB_BITS = 7;

/** `BT_LAT_BUCKETS` */
export const BT_LAT_BUCKETS = 4608;

/** `BT_LAT_HEADER` */
export const BT_LAT_HEADER = 8;

/** `BT_LAT_WORDS` */
export const BT_LAT_WORDS = 4616;

/** `BT_LAT_MAX_NS`: 1 hour */
export const BT_LAT_MAX_NS = 3600000000000;

/** `BT_LAT_MAGIC_TAG`: "BTLH", the magic's high 32 bits */
export const BT_LAT_MAGIC_TAG = 1112820808;

/** `BT_LAT_H_MAGIC`: layout check, written by bt_lat_init */
export const BT_LAT_H_MAGIC = 0;

/** `BT_LAT_H_FRAMES`: frames recorded (bucketed + clamped) */
export const BT_LAT_H_FRAMES = 1;

/** `BT_LAT_H_SKIPPED`: frames without timestamp or valid ref */
export const BT_LAT_H_SKIPPED = 2;

/** `BT_LAT_H_CLAMPED`: frames of BT_LAT_MAX_NS or more */
export const BT_LAT_H_CLAMPED = 3;
