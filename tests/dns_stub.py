"""A tiny DNS responder for the lab's VPN provider: answers every A query with ANSWER over UDP and TCP,
and appends each query's name and source address to a log file (the test reads it back).

    python -m dns_stub ADDRESS LOGFILE
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

ANSWER = "203.0.113.53"


def reply(query: bytes) -> bytes:
    ident, _flags, qdcount = struct.unpack("!HHH", query[:6])
    end = query.index(b"\0", 12) + 5  # name, type, class of the first question
    header = struct.pack("!HHHHHH", ident, 0x8180, 1, 1, 0, 0)
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ANSWER)
    return header + query[12:end] + answer


def name_of(query: bytes) -> str:
    labels, i = [], 12
    while query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode("ascii", "replace"))
        i += query[i] + 1
    return ".".join(labels)


def serve_udp(address: str, log) -> None:  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    while True:
        data, peer = sock.recvfrom(512)
        log(f"udp {peer[0]} {name_of(data)}")
        sock.sendto(reply(data), peer)


def serve_tcp(address: str, log) -> None:  # type: ignore[no-untyped-def]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 53))
    sock.listen(16)
    while True:
        conn, peer = sock.accept()
        with conn:
            size = struct.unpack("!H", conn.recv(2))[0]
            data = conn.recv(size)
            log(f"tcp {peer[0]} {name_of(data)}")
            answer = reply(data)
            conn.sendall(struct.pack("!H", len(answer)) + answer)


def main() -> None:
    address, path = sys.argv[1], sys.argv[2]
    lock = threading.Lock()

    def log(line: str) -> None:
        with lock, open(path, "a") as handle:
            handle.write(line + "\n")

    threading.Thread(target=serve_tcp, args=(address, log), daemon=True).start()
    serve_udp(address, log)


if __name__ == "__main__":
    main()
