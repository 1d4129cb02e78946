"""One probe from a client: prints JSON {seen, error, ms}. An ICMP error (the kill switch's refusal)
comes back as an error at once; silence is "timeout".

  python -m lab.probe udp|tcp HOST PORT [--bind ADDR] [--timeout S]
  python -m lab.probe stream HOST PORT RATE   (UDP at RATE/s until SIGTERM; prints counts)
  python -m lab.probe dns HOST [udp|tcp]      (an A query; seen = the answer)
"""

from __future__ import annotations

import errno
import json
import signal
import socket
import struct
import sys
import time


def once(proto: str, host: str, port: int, bind: str | None, timeout: float) -> dict[str, object]:
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.settimeout(timeout)
    if bind:
        sock.bind((bind, 0))
    start = time.monotonic()
    try:
        sock.connect((host, port))
        if proto == "udp":
            sock.send(b"probe")
        seen = sock.recv(200).decode()
        result = {"seen": seen.split()[1], "reply": seen, "error": None, "ms": _ms(start)}
        if proto == "tcp":
            _drain(sock)
        return result
    except TimeoutError:
        return {"seen": None, "error": "timeout", "ms": _ms(start)}
    except OSError as err:
        return {"seen": None, "error": errno.errorcode.get(err.errno or 0, str(err)), "ms": _ms(start)}
    finally:
        sock.close()


def dns(host: str, proto: str, timeout: float) -> dict[str, object]:
    """An A query for zonevpn.test; `seen` is the answer's address."""
    query = struct.pack("!HHHHHH", 0x5A5A, 0x0100, 1, 0, 0, 0) + b"\x07zonevpn\x04test\x00" + b"\x00\x01\x00\x01"
    start = time.monotonic()
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind)
    sock.settimeout(timeout)
    try:
        sock.connect((host, 53))
        if proto == "udp":
            sock.send(query)
            answer = sock.recv(512)
        else:
            sock.sendall(struct.pack("!H", len(query)) + query)
            answer = sock.recv(514)[2:]
            _drain(sock)
        return {"seen": socket.inet_ntoa(answer[-4:]), "error": None, "ms": _ms(start)}
    except TimeoutError:
        return {"seen": None, "error": "timeout", "ms": _ms(start)}
    except OSError as err:
        return {"seen": None, "error": errno.errorcode.get(err.errno or 0, str(err)), "ms": _ms(start)}
    finally:
        sock.close()


def _drain(sock: socket.socket) -> None:
    """Wait for the server's FIN before closing: our own FIN then goes out inside close(), and no ACK of
    ours trails after this process has exited (a late one would be counted against the next probe)."""
    try:
        while sock.recv(200):
            pass
    except OSError:
        pass


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


def stream(host: str, port: int, rate: int) -> dict[str, int]:
    """One socket, one source port: a flow like a game or a call. Counts answers and refusals."""
    counts = {"sent": 0, "answered": 0, "errors": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.setblocking(False)
    interval = 1.0 / rate
    while not stop:
        try:
            sock.send(b"stream")
            counts["sent"] += 1
        except OSError:
            counts["errors"] += 1
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            try:
                sock.recv(200)
                counts["answered"] += 1
            except BlockingIOError:
                time.sleep(min(0.002, max(0.0, deadline - time.monotonic())))
            except OSError:
                counts["errors"] += 1
    return counts


def main() -> None:
    args = sys.argv[1:]
    if args[0] == "dns":
        print(json.dumps(dns(args[1], args[2] if len(args) > 2 else "udp", 1.0)))
        return
    if args[0] == "stream":
        print(json.dumps(stream(args[1], int(args[2]), int(args[3]))), flush=True)
        return
    bind = args[args.index("--bind") + 1] if "--bind" in args else None
    timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 1.0
    print(json.dumps(once(args[0], args[1], int(args[2]), bind, timeout)))


if __name__ == "__main__":
    main()
