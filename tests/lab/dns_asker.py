"""A client that keeps asking: A queries for fresh names (`<tag>-<server>-<n>.zonevpn.example`) to each
server, RATE a second each (one thread per server, so that one server's silence does not slow the others),
until SIGTERM; then prints JSON per server: answers (by address), REFUSED, other errors, timeouts. Fresh
names mean no cache can hide where a query went.

    python -m lab.dns_asker TAG RATE SERVER [SERVER...]
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
import threading


def query(name: str, ident: int) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\0\x00\x01\x00\x01"


def ask(server: str, name: str, ident: int, timeout: float) -> str:
    """'refused', 'timeout', 'error:<errno>', 'rcode:<n>' or the answer's address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(timeout)
    try:
        sock.connect((server, 53))
        sock.send(query(name, ident))
        answer = sock.recv(512)
    except TimeoutError:
        return "timeout"
    except OSError as err:
        return f"error:{err.errno}"
    finally:
        sock.close()
    rcode = answer[3] & 0x0F
    if rcode == 5:
        return "refused"
    if rcode or struct.unpack("!H", answer[6:8])[0] == 0:
        return f"rcode:{rcode}"
    return socket.inet_ntoa(answer[-4:])


def keep_asking(tag: str, rate: float, server: str, stop: threading.Event, results: dict[str, int]) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        outcome = ask(server, f"{tag}-{server.replace('.', '-')}-{n}.zonevpn.example", n & 0xFFFF, 0.2)
        results[outcome] = results.get(outcome, 0) + 1
        stop.wait(1.0 / rate)


def main() -> None:
    tag, rate, servers = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    results: dict[str, dict[str, int]] = {server: {} for server in servers}
    threads = [threading.Thread(target=keep_asking, args=(tag, rate, server, stop, results[server]))
               for server in servers]
    for thread in threads:
        thread.start()
    while not stop.is_set():
        stop.wait(0.1)
    for thread in threads:
        thread.join()
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
