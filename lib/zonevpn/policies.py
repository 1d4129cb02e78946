"""zonevpn's exit policies, /var/ipfire/zonevpn/policies: one per line, IPFire's hasharray CSV format
(as /var/ipfire/firewall/config keeps the firewall rules), ordered by their key, first match wins:

  key,enabled,source_type,source,destinations,protocol,ports,exit,fallbacks,killswitch,dns,remark

  key           1, 2, 3 ... the position in the list (the page renumbers on move up/down and delete)
  enabled       on | off
  source_type   addr     source = a host address or a subnet inside a zone (192.168.1.50, 192.168.2.0/25)
                mac      source = a device's MAC address (aa:bb:cc:dd:ee:ff)
                zone     source = GREEN | BLUE | ORANGE
                host | network | group   source = the name of one of IPFire's host objects (fwhosts.py)
  destinations  empty = any; else networks joined with | (203.0.113.0/24|198.51.100.7)
  protocol      empty = any; tcp | udp
  ports         empty = any; a destination port or range (443, 8000:8100), only with a protocol
  exit          a WireGuard peer id (a net-to-net tunnel routing 0.0.0.0/0), red (direct) or block
  fallbacks     peer ids joined with |, used in order while the exit tunnel is missing or stale
  killswitch    on (default) | off: with the tunnel gone, refused (on) or direct through red (off)
  dns           off (default) | on: the source's DNS goes to the tunnel's resolver (TUNNEL_<id>_DNS)
  remark        base64, as IPFire keeps WireGuard peers' remarks

Trailing empty fields may be left out. Lines that are empty or start with # are ignored. A missing file
means no policies: the zone bindings in `settings` mean exactly what they meant before policies existed.
"""

from __future__ import annotations

import base64
import binascii
import os
from ipaddress import IPv4Network

from zonevpn.errors import InputError
from zonevpn.fwhosts import MAC
from zonevpn.model import ZONES, Policy
from zonevpn.paths import Paths
from zonevpn.readhash import keyed_rows, write_keeping_owner
from zonevpn.settings import _read_no_link

COLUMNS = ("key", "enabled", "source_type", "source", "destinations", "protocol", "ports", "exit",
           "fallbacks", "killswitch", "dns", "remark")
SOURCE_TYPES = ("addr", "mac", "zone", "host", "network", "group")
MAX_POLICIES = 200  # the preference range state.py gives policies holds this many


def read_policies(paths: Paths) -> tuple[Policy, ...]:
    return parse_policies(paths.policies, read_policies_text(paths))


def read_policies_text(paths: Paths) -> str:
    """The file as it is ("" when there is none): the web page fingerprints exactly what it parses."""
    return _read_no_link(paths.policies) if os.path.lexists(paths.policies) else ""


def parse_policies(path: str, text: str) -> tuple[Policy, ...]:
    rows = keyed_rows(path, text, parse_row, lambda p: p.number, "key", comments=True)
    if len(rows) > MAX_POLICIES:
        raise InputError(path, f"{len(rows)} policies, at most {MAX_POLICIES}")
    return tuple(rows[key] for key in sorted(rows))


def parse_row(path: str, number: int, raw: str) -> Policy:
    cells = raw.split(",")
    if len(cells) > len(COLUMNS):
        raise InputError(path, f"{len(cells)} fields, at most {len(COLUMNS)} expected "
                         f"({','.join(COLUMNS)})", number)
    row = dict(zip(COLUMNS, cells + [""] * (len(COLUMNS) - len(cells)), strict=True))

    def bad(column: str, why: str) -> InputError:
        return InputError(path, f"{why}: {row[column][:60]!r}", number, column)

    if not row["key"].isdigit() or int(row["key"]) < 1:
        raise bad("key", "not a position (1, 2, 3 ...)")
    flags = {column: _on_off(row, column, default, bad)
             for column, default in (("enabled", True), ("killswitch", True), ("dns", False))}
    source_type, source = row["source_type"], row["source"]
    if source_type not in SOURCE_TYPES:
        raise bad("source_type", f"must be one of {', '.join(SOURCE_TYPES)}")
    if not source:
        raise bad("source", "a policy needs a source")
    if source_type == "addr":
        _network(source, "source", bad)
    elif source_type == "mac" and not MAC.match(source):
        raise bad("source", "not a MAC address (aa:bb:cc:dd:ee:ff)")
    elif source_type == "zone" and source not in ZONES:
        raise bad("source", f"not a zone ({', '.join(ZONES)})")
    destinations = tuple(_network(text, "destinations", bad) for text in row["destinations"].split("|")
                         if text)
    proto = row["protocol"] or None
    if proto not in (None, "tcp", "udp"):
        raise bad("protocol", "must be tcp, udp or empty (any)")
    ports = _ports(row["ports"], bad) if row["ports"] else None
    if ports and not proto:
        raise bad("ports", "a port needs a protocol (tcp or udp)")
    way, tunnel = _exit(row["exit"], bad)
    fallbacks = tuple(_peer_id(text, "fallbacks", bad) for text in row["fallbacks"].split("|") if text)
    if fallbacks and way != "tunnel":
        raise bad("fallbacks", "fallback tunnels need a tunnel as exit")
    try:
        remark = base64.b64decode(row["remark"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise bad("remark", "not base64 of UTF-8 text") from None
    return Policy(int(row["key"]), flags["enabled"], source_type,
                  source.lower() if source_type == "mac" else source, destinations, proto, ports, way,
                  tunnel, fallbacks, flags["killswitch"], flags["dns"], remark, number)


def _on_off(row: dict[str, str], column: str, default: bool, bad) -> bool:  # type: ignore[no-untyped-def]
    if row[column] == "":
        return default
    if row[column] not in ("on", "off"):
        raise bad(column, "must be on or off")
    return row[column] == "on"


def _network(text: str, column: str, bad) -> IPv4Network:  # type: ignore[no-untyped-def]
    try:
        return IPv4Network(text)  # strict: 192.168.2.7/24 is a typo, not a network
    except ValueError:
        raise bad(column, f"not an IPv4 address or network ({text[:40]!r})") from None


def _ports(text: str, bad) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    first, _, last = text.partition(":")
    if not first.isdigit() or not (last or first).isdigit():
        raise bad("ports", "not a port or range (443, 8000:8100)")
    low, high = int(first), int(last or first)
    if not 1 <= low <= high <= 65535:
        raise bad("ports", "ports are 1-65535, first <= last")
    return low, high


def _exit(text: str, bad) -> tuple[str, int | None]:  # type: ignore[no-untyped-def]
    if text in ("red", "block"):
        return text, None
    return "tunnel", _peer_id(text, "exit", bad)


def _peer_id(text: str, column: str, bad) -> int:  # type: ignore[no-untyped-def]
    if not text.isdigit():
        raise bad(column, "not a peer id, red or block" if column == "exit" else "not a peer id")
    return int(text)


def format_row(number: int, policy: Policy) -> str:
    cells = [str(number), "on" if policy.enabled else "off", policy.source_type, policy.source,
             "|".join(str(net) for net in policy.destinations), policy.proto or "",
             "" if policy.ports is None else format_ports(policy.ports),
             str(policy.tunnel) if policy.way == "tunnel" else policy.way,
             "|".join(map(str, policy.fallbacks)), "on" if policy.killswitch else "off",
             "on" if policy.dns else "off", base64.b64encode(policy.remark.encode()).decode()]
    for cell in cells:
        if "," in cell or "\n" in cell or "\r" in cell:
            raise ValueError(f"cannot store {cell!r} in a policies row")
    return ",".join(cells) + "\n"


def format_ports(ports: tuple[int, int]) -> str:
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}:{ports[1]}"


def write_policies(paths: Paths, policies: tuple[Policy, ...]) -> None:
    """Atomic replace, renumbered 1..N in list order; keeps the file's owner and mode, and a new file belongs
    to whoever owns the settings beside it (the web server user)."""
    text = "".join(format_row(number, policy) for number, policy in enumerate(policies, start=1))
    write_keeping_owner(paths.policies, text, like=paths.settings)
