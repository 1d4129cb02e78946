"""The lab's internet host (its own ipinfo.io): answers every UDP datagram and TCP connection on the given
ports with the source address it saw.   python -m lab.echo_server ADDRESS PORT [PORT...]"""

from __future__ import annotations

import socket
import sys
import threading


def udp(address: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, port))
    while True:
        _, peer = sock.recvfrom(2048)
        sock.sendto(f"seen {peer[0]}".encode(), peer)


def tcp(address: str, port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(64)
    while True:
        conn, peer = sock.accept()
        with conn:
            mss = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
            conn.sendall(f"seen {peer[0]} mss {mss}".encode())


def main() -> None:
    address, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    for port in ports:
        threading.Thread(target=tcp, args=(address, port), daemon=True).start()
        threading.Thread(target=udp, args=(address, port), daemon=True).start()
    threading.Event().wait()


if __name__ == "__main__":
    main()
