"""HTTPS requests from inside a network namespace, byte for byte as given (a chunked body, no length, a NUL):
the connection is opened by a thread that has joined the namespace (setns applies to one thread only)."""

from __future__ import annotations

import base64
import ctypes
import os
import socket
import ssl
import threading
from typing import NamedTuple

CLONE_NEWNET = 0x40000000


class Response(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def connect(netns: str, host: str, port: int) -> socket.socket:
    found: list[socket.socket | BaseException] = []

    def inside() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            found.append(socket.create_connection((host, port), timeout=90))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            found.append(err)

    thread = threading.Thread(target=inside)
    thread.start()
    thread.join()
    if isinstance(found[0], BaseException):
        raise found[0]
    return found[0]


def auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def request(netns: str, method: str, url_path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
            host: str = "127.0.0.1", port: int = 444, length: bool = True) -> Response:
    """`length=False` sends the body without Content-Length (chunked when a Transfer-Encoding header says so)."""
    head = {"Host": f"{host}:{port}", "Connection": "close", **(headers or {})}
    if body is not None and length:
        head.setdefault("Content-Length", str(len(body)))
    raw = f"{method} {url_path} HTTP/1.1\r\n".encode() + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in head.items()) + b"\r\n" + (body or b"")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with context.wrap_socket(connect(netns, host, port)) as conn:
        conn.sendall(raw)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return _parse(data)


def _parse(data: bytes) -> Response:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Response(int(lines[0].split()[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, rest = data.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out, data = out + rest[:n], rest[n + 2:]
    return out


def chunked(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
