"""`zonevpn probe`: each exit proven. Asks the "what is my address" service (PROBE_URL) through each exit
tunnel, from the tunnel's own address and bound to its device (so a probe can only leave through that
tunnel, never through red, whatever the routes are at that moment), and looks the answer up in IPFire's
location database (libloc) with IPFire's own `location` command.

PROBE_URL schemes: http:// and https:// (GET; the body's first IPv4 address, as ifconfig.co/ip or
api.ipify.org answer), tcp://host:port (the first address in whatever the service sends) and
udp://host:port (one datagram, the first address in the answer). Nothing is contacted unless asked; a
host name is resolved by the firewall's own resolver (give an address to avoid even that).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from ipaddress import IPv4Address
from typing import Any
from urllib.parse import urlsplit

from zonevpn.errors import InputError
from zonevpn.model import Config, Peer
from zonevpn.paths import Paths

TIMEOUT = 5.0
_ADDRESS = re.compile(r"(?<![0-9.])([0-9]{1,3}(?:\.[0-9]{1,3}){3})(?![0-9.])")


def probe_exits(paths: Paths, config: Config, url: str, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """One result per exit tunnel (primary and fallbacks of every binding), in peer id order."""
    if not url:
        raise InputError(paths.settings, "no PROBE_URL set: the service to ask through each exit "
                         "(e.g. https://ifconfig.co/ip or udp://ADDRESS:PORT)", field="PROBE_URL")
    peers: dict[int, Peer] = {p.id: p for e in config.exits for p in e.candidates}
    if not peers:
        raise InputError(paths.settings, "no zone is bound to a tunnel: there is no exit to probe")
    zones = {p.id: [e.zone.name for e in config.exits if p in e.candidates] for p in peers.values()}
    results = []
    for peer_id in sorted(peers):
        peer = peers[peer_id]
        result = probe_one(peer.interface, peer.address, url, timeout)
        result.update(tunnel=peer.id, name=peer.name, zones=zones[peer_id])
        if result["public"]:
            result.update(locate(paths, result["public"]))
        results.append(result)
    return results


def probe_one(interface: str, source: str, url: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    started = time.monotonic()
    result: dict[str, Any] = {"interface": interface, "source": source, "url": url, "public": None,
                              "error": None}
    try:
        answer = _ask(interface, source, url, timeout)
        found = _ADDRESS.search(answer)
        if not found:
            raise ValueError(f"no IPv4 address in the answer: {answer[:80]!r}")
        result["public"] = str(IPv4Address(found.group(1)))
    except (OSError, ValueError) as err:
        result["error"] = _error_text(err)
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _ask(interface: str, source: str, url: str, timeout: float) -> str:
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    address = socket.getaddrinfo(host, port, socket.AF_INET)[0][4][0]
    kind = socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        # the device as well as the address: with our routes gone for a moment, the probe fails rather
        # than leaving through red
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.bind((source, 0))
        sock.connect((address, port))
        if scheme == "udp":
            sock.send(b"zonevpn probe\n")
            return sock.recv(2048).decode("utf-8", "replace")
        if scheme == "tcp":
            return _read_all(sock)
        return _http_get(sock, scheme, host, parts.path or "/")


def _http_get(sock: socket.socket, scheme: str, host: str, path: str) -> str:
    stream: Any = sock
    if scheme == "https":
        import ssl

        stream = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    stream.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: curl/8 (zonevpn probe)\r\n"
                   "Accept: text/plain\r\nConnection: close\r\n\r\n".encode())
    head, _, body = _read_all(stream).partition("\r\n\r\n")
    status = head.split("\r\n", 1)[0]
    if " 200 " not in f"{status} ":
        raise ValueError(f"the service answered {status[:60]!r}")
    return body


def _read_all(stream: Any, limit: int = 65536) -> str:
    data = b""
    while len(data) < limit:
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def _error_text(err: Exception) -> str:
    if isinstance(err, TimeoutError):
        return "no answer (timeout)"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err)


def locate(paths: Paths, address: str) -> dict[str, Any]:
    """Country (and network, AS) from IPFire's location database, with IPFire's own `location` tool."""
    found: dict[str, Any] = {"country": None, "country_code": None, "network": None, "as": None}
    database = paths.location_db
    if not os.path.exists(database):
        found["location_error"] = f"no location database at {database}"
        return found
    env = dict(os.environ, LANG="C", LC_ALL="C")
    try:
        run = subprocess.run(["location", "--database", database, "lookup", address], capture_output=True,
                             text=True, timeout=10, env=env)
    except (OSError, subprocess.SubprocessError) as err:
        found["location_error"] = f"cannot run `location`: {err}"
        return found
    for line in run.stdout.splitlines():
        label, _, value = line.partition(":")
        key = {"Network": "network", "Country": "country", "Autonomous System": "as"}.get(label.strip())
        if key:
            found[key] = value.strip()
    if run.returncode != 0 and not found["network"]:
        found["location_error"] = run.stderr.strip() or f"not in {database}"
    if found["country"]:
        found["country_code"] = _country_code(database, found["country"], env)
    return found


def _country_code(database: str, name: str, env: dict[str, str]) -> str | None:
    """`location lookup` prints the country's name (its code when the database has no name for it)."""
    if re.fullmatch(r"[A-Z]{2}", name):
        return name
    run = subprocess.run(["location", "--database", database, "list-countries", "--show-name"],
                         capture_output=True, text=True, timeout=10, env=env)
    for line in run.stdout.splitlines():
        code, _, country = line.partition(" ")
        if country.strip() == name:
            return code
    return None


def format_text(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        head = f"{r['interface']} ({r['name']}, zones {', '.join(r['zones'])}) from {r['source']}"
        if r["error"]:
            lines.append(f"{head}: FAILED: {r['error']}")
            continue
        where = r.get("country") or r.get("location_error") or "country unknown"
        code = f" [{r['country_code']}]" if r.get("country_code") else ""
        asn = f", {r['as']}" if r.get("as") else ""
        lines.append(f"{head}: the world sees {r['public']} — {where}{code}{asn} ({r['ms']:.0f} ms)")
    return "\n".join(lines)
