#!/usr/bin/env python3
"""Helpers for test/tap_test.ts, run as subprocesses (some via ip netns exec).

  sniff IFACE ETHERTYPE N TIMEOUT   print "ready", then the hex of the first N
                                    frames of ETHERTYPE (hex) arriving on
                                    IFACE (kernel side of a TAP), one a line
  inject IFACE                      send the hex frames read from stdin (one a
                                    line) out through IFACE, print the count
  udp_recv ADDR PORT N TIMEOUT      print "ready", count datagrams until N
                                    arrived or TIMEOUT s pass idle, print it
  udp_send ADDR PORT N              send N 64-byte datagrams, paced
  tcp_recv ADDR PORT TIMEOUT        print "ready", accept one connection, read
                                    it to the end, print "BYTES SHA256"
  tcp_send ADDR PORT BYTES SEED     send BYTES pseudo-random bytes (from SEED)
                                    on one connection, print "BYTES SHA256"
  udp_gso_send ADDR PORT N SIZE SEGS  send N buffers of SEGS x SIZE bytes, each
                                    one send with UDP_SEGMENT SIZE (the kernel
                                    hands them on as UDP super-frames), paced
"""
import hashlib
import random
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def sniff(iface, ethertype, n, timeout):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    got = 0
    end = time.monotonic() + timeout
    while got < n and time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue  # what the kernel sends into the TAP, not what we wrote
        if len(frame) >= 14 and int.from_bytes(frame[12:14], "big") == ethertype:
            print(frame.hex(), flush=True)
            got += 1


def inject(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    n = 0
    for line in sys.stdin:
        line = line.strip()
        if line:
            s.send(bytes.fromhex(line))
            n += 1
    print(n, flush=True)


def udp_recv(addr, port, n, timeout):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    s.settimeout(timeout)
    print("ready", flush=True)
    got = 0
    try:
        while got < n:
            s.recv(2048)
            got += 1
    except socket.timeout:
        pass
    print(got, flush=True)


def udp_send(addr, port, n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(range(64))
    for i in range(n):
        s.sendto(payload, (addr, port))
        if i % 50 == 49:
            time.sleep(0.002)  # pace: no queue along the path overflows
    print(n, flush=True)


def tcp_recv(addr, port, timeout):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(timeout)
    print("ready", flush=True)
    c, peer = s.accept()
    print("peer", peer[0], flush=True)
    c.settimeout(timeout)
    h = hashlib.sha256()
    n = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    print(n, h.hexdigest(), flush=True)


def tcp_send(addr, port, nbytes, seed):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    rnd = random.Random(seed)
    s = socket.create_connection((addr, port), timeout=30) if fam == socket.AF_INET else None
    if s is None:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect((addr, port))
    h = hashlib.sha256()
    left = nbytes
    while left:
        chunk = rnd.randbytes(min(left, 1 << 20))
        s.sendall(chunk)
        h.update(chunk)
        left -= len(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)  # wait for the peer to close: everything was read
    print(nbytes, h.hexdigest(), flush=True)


def udp_gso_send(addr, port, n, size, segs):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_UDP, 103, size)  # UDP_SEGMENT
    payload = bytes(range(256)) * (size * segs // 256 + 1)
    for i in range(n):
        s.sendto(payload[: size * segs], (addr, port))
        if i % 10 == 9:
            time.sleep(0.002)
    print(n * segs, flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sniff":
        sniff(args[0], int(args[1], 16), int(args[2]), float(args[3]))
    elif cmd == "inject":
        inject(args[0])
    elif cmd == "udp_recv":
        udp_recv(args[0], int(args[1]), int(args[2]), float(args[3]))
    elif cmd == "udp_send":
        udp_send(args[0], int(args[1]), int(args[2]))
    elif cmd == "tcp_recv":
        tcp_recv(args[0], int(args[1]), float(args[2]))
    elif cmd == "udp_gso_send":
        udp_gso_send(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "tcp_send":
        tcp_send(args[0], int(args[1]), int(args[2]), int(args[3]))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
