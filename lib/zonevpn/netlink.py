"""rtnetlink from the standard library, for the watcher: link, address and route events, a dump of our
routes, and single route changes answered in well under a millisecond.

The resident watcher must stay small and idle at ~0 CPU: pyroute2 would cost ~100 ms and several MiB to
import for the handful of messages needed here. The hook keeps using routing.py (`ip -batch`).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator
from typing import NamedTuple

RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
NEWLINK, DELLINK, NEWADDR, DELADDR, NEWROUTE, DELROUTE, GETROUTE = 16, 17, 20, 21, 24, 25, 26
_DONE, _ERROR = 3, 2
_REQUEST, _ACK, _DUMP, _REPLACE, _CREATE = 0x1, 0x4, 0x300, 0x100, 0x400
_HDR = struct.Struct("=LHHLL")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_IFLA_IFNAME, _IFA_LOCAL, _RTA_DST, _RTA_OIF, _RTA_PRIORITY, _RTA_PREFSRC, _RTA_TABLE = 3, 2, 1, 4, 6, 7, 15
SCOPE_LINK, SCOPE_ANY = 253, 255


class Event(NamedTuple):
    kind: int  # NEWLINK ... DELROUTE
    ifindex: int  # interface index (link, address) or output interface (route; 0 when none)
    name: str = ""  # link name (links only)
    address: str = ""  # the local address (addresses only)
    route: RouteFact | None = None


class RouteFact(NamedTuple):
    """One IPv4 route as the kernel reports it: enough to put it back exactly as it was."""

    table: int
    dst: str  # "0.0.0.0"
    dst_len: int
    kind: int  # rtm_type: 1 unicast, 8 prohibit
    scope: int
    proto: int
    oif: int
    prefsrc: str | None
    metric: int

    @property
    def key(self) -> tuple[int, str, int, int]:
        # what makes two routes the same route for the kernel (`replace` swaps one for the other)
        return (self.table, self.dst, self.dst_len, self.metric)


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def _attr(kind: int, value: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind) + value
    return raw + b"\0" * (-len(raw) % 4)


def parse(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(message type, sequence, whole message) for each netlink message in one datagram."""
    offset = 0
    while offset + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size:
            break
        yield kind, seq, data[offset:offset + length]
        offset += (length + 3) & ~3


def event(kind: int, message: bytes) -> Event | None:
    body = message[_HDR.size:]
    if kind in (NEWLINK, DELLINK):
        _family, _type, index, _flags, _change = _IFINFO.unpack_from(body)
        name = _attrs(body, _IFINFO.size).get(_IFLA_IFNAME, b"").rstrip(b"\0").decode()
        return Event(kind, index, name=name)
    if kind in (NEWADDR, DELADDR):
        family, _plen, _flags, _scope, index = _IFADDR.unpack_from(body)
        local = _attrs(body, _IFADDR.size).get(_IFA_LOCAL)
        if family != socket.AF_INET or not local:
            return None
        return Event(kind, index, address=socket.inet_ntoa(local))
    if kind in (NEWROUTE, DELROUTE):
        route = route_fact(body)
        return Event(kind, route.oif, route=route) if route else None
    return None


def route_fact(body: bytes) -> RouteFact | None:
    family, dst_len, _src_len, _tos, table, proto, scope, kind, _flags = _RTMSG.unpack_from(body)
    if family != socket.AF_INET:
        return None
    attrs = _attrs(body, _RTMSG.size)
    dst = socket.inet_ntoa(attrs[_RTA_DST]) if _RTA_DST in attrs else "0.0.0.0"
    table = struct.unpack("=I", attrs[_RTA_TABLE])[0] if _RTA_TABLE in attrs else table
    oif = struct.unpack("=i", attrs[_RTA_OIF])[0] if _RTA_OIF in attrs else 0
    src = socket.inet_ntoa(attrs[_RTA_PREFSRC]) if _RTA_PREFSRC in attrs else None
    metric = struct.unpack("=I", attrs[_RTA_PRIORITY])[0] if _RTA_PRIORITY in attrs else 0
    return RouteFact(table, dst, dst_len, kind, scope, proto, oif, src, metric)


class Netlink:
    """Two sockets: one subscribed to events, one for requests (so that answers never mix with events)."""

    def __init__(self, groups: int) -> None:
        self.events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                    socket.NETLINK_ROUTE)
        self.events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # a reload is a burst
        self.events.bind((0, groups))
        self.requests = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                      socket.NETLINK_ROUTE)
        self.requests.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.events.close()
        self.requests.close()

    def read_events(self) -> list[Event]:
        """What one wake-up brought; an overrun (ENOBUFS) is reported as an empty NEWLINK: re-check all."""
        try:
            data = self.events.recv(1 << 16)
        except OSError as err:
            if err.errno == errno.ENOBUFS:
                return [Event(NEWLINK, 0)]
            raise
        return [e for kind, _, message in parse(data) if (e := event(kind, message))]

    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.requests.send(_HDR.pack(_HDR.size + len(body), kind, flags, self.seq, 0) + body)
        return self.seq

    def routes(self) -> list[RouteFact]:
        seq = self._send(GETROUTE, _REQUEST | _DUMP, _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0))
        found: list[RouteFact] = []
        while True:
            for kind, got, message in parse(self.requests.recv(1 << 16)):
                if got != seq:
                    continue
                if kind in (_DONE, _ERROR):
                    return found
                route = route_fact(message[_HDR.size:])
                if route:
                    found.append(route)

    def _ack(self, seq: int) -> int:
        """The kernel's answer to request `seq`: 0 or a positive errno."""
        while True:
            for kind, got, message in parse(self.requests.recv(1 << 16)):
                if got == seq and kind == _ERROR:
                    return -struct.unpack_from("=i", message, _HDR.size)[0]

    def replace_route(self, route: RouteFact) -> int:
        return self._ack(self._send(NEWROUTE, _REQUEST | _ACK | _CREATE | _REPLACE, _route_body(route)))

    def delete_route(self, route: RouteFact) -> int:
        return self._ack(self._send(DELROUTE, _REQUEST | _ACK, _route_body(route._replace(scope=SCOPE_ANY))))


def _route_body(route: RouteFact) -> bytes:
    table_byte = route.table if route.table < 256 else 0
    body = _RTMSG.pack(socket.AF_INET, route.dst_len, 0, 0, table_byte, route.proto, route.scope, route.kind, 0)
    body += _attr(_RTA_TABLE, struct.pack("=I", route.table))
    if route.dst_len:
        body += _attr(_RTA_DST, socket.inet_aton(route.dst))
    if route.oif:
        body += _attr(_RTA_OIF, struct.pack("=i", route.oif))
    if route.prefsrc:
        body += _attr(_RTA_PREFSRC, socket.inet_aton(route.prefsrc))
    if route.metric:
        body += _attr(_RTA_PRIORITY, struct.pack("=I", route.metric))
    return body
