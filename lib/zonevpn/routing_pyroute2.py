"""Routing back-end on pyroute2 (rtnetlink from Python). Reads what zonevpn owns; applies at once.

"Already so" is not an error (EEXIST on add, ENOENT/ESRCH on delete, ENODEV when a tunnel vanished meanwhile);
anything else is, because "couldn't check" must never be taken for "absent".
"""

from __future__ import annotations

import errno
import socket
from typing import Any

from zonevpn.errors import ApplyError
from zonevpn.plan import Link
from zonevpn.state import IPFIRE_PREFS, MAIN, OWNED_PREFS, PROTO, Route, Rule

_RTN_UNICAST, _RTN_PROHIBIT = 1, 8
_FR_ACT_TO_TBL, _FR_ACT_PROHIBIT = 1, 8
_RTPROT_BOOT = 3
_SCOPE_LINK, _SCOPE_UNIVERSE = 253, 0
_NO_SUPPRESS = 0xFFFFFFFF
_HALVES = ("0.0.0.0/1", "128.0.0.0/1")


class Pyroute2Routing:
    """Changes go out one netlink message each, as they are called; `commit` has nothing left to do."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute  # imported here: 120 ms, paid only by runs that touch the kernel

        self.ipr = IPRoute()
        self._index: dict[str, int] = {}
        self._names: dict[int, str] = {}

    def close(self) -> None:
        self.ipr.close()

    def commit(self) -> None:
        pass

    # --- reading -------------------------------------------------------------------------------------
    def links(self) -> dict[str, Link]:
        """Every interface with its state and IPv4 addresses (one dump each: cheaper than lookups)."""
        links: dict[str, tuple[bool, set[str]]] = {}
        for msg in self.ipr.get_links():
            name, index = msg.get("ifname"), msg["index"]
            self._index[name], self._names[index] = index, name
            links[name] = (bool(msg["flags"] & 1), set())  # IFF_UP
        for msg in self.ipr.get_addr(family=socket.AF_INET):
            name = self._names.get(msg["index"])
            if name in links:
                links[name][1].add(msg.get("address"))
        return {name: Link(up, frozenset(addrs)) for name, (up, addrs) in links.items()}

    def rules(self) -> set[Rule]:
        owned = set()
        for msg in self.ipr.get_rules(family=socket.AF_INET):
            if msg.get("protocol") != PROTO or msg.get("priority") not in OWNED_PREFS:
                continue
            src = f"{msg.get('src')}/{msg['src_len']}" if msg.get("src") else None
            dst = f"{msg.get('dst')}/{msg['dst_len']}" if msg.get("dst") else None
            suppress = msg.get("suppress_prefixlen")
            prohibit = msg["action"] == _FR_ACT_PROHIBIT
            ports = msg.get("dport_range")
            fwmask = msg.get("fwmask")
            fwmark = msg.get("fwmark") if fwmask is None else msg.get("fwmark") or 0  # the kernel omits mark 0
            owned.add(Rule(msg.get("priority"), src, 0 if prohibit else msg.get("table"),
                           "prohibit" if prohibit else "lookup", fwmark, fwmask,
                           None if suppress in (None, _NO_SUPPRESS) else suppress, dst=dst,
                           ipproto=_IPPROTO_NAMES.get(msg.get("ip_proto")),  # type: ignore[arg-type]
                           dport=_port_range(ports)))
        return owned

    def base_rules(self) -> set[Rule]:
        found = set()
        for msg in self.ipr.get_rules(family=socket.AF_INET):
            table = msg.get("table")
            if (table in IPFIRE_PREFS and msg.get("protocol") != PROTO and msg["action"] == _FR_ACT_TO_TBL
                    and not msg.get("src") and not msg.get("dst") and not msg.get("fwmark")
                    and not msg.get("iifname") and not msg.get("oifname")
                    and msg.get("suppress_prefixlen") in (None, _NO_SUPPRESS)):
                found.add(Rule(msg.get("priority"), None, table, proto=0))
        return found

    def routes(self) -> tuple[set[Route], set[Route]]:
        """(routes zonevpn owns, the /1 halves in main that any wg interface has)."""
        owned, halves = set(), set()
        for msg in self.ipr.route("dump", family=socket.AF_INET):
            dst = f"{msg.get('dst') or '0.0.0.0'}/{msg['dst_len']}"
            dev = self._names.get(msg.get("oif"))  # type: ignore[arg-type]
            table = msg.get("table")
            if msg["proto"] == PROTO:
                kind = "prohibit" if msg["type"] == _RTN_PROHIBIT else "unicast"
                owned.add(Route(table, dst, kind, dev, msg.get("prefsrc"), msg.get("priority") or 0))
            elif table == MAIN and dst in _HALVES and dev and dev.startswith("wg"):
                halves.add(Route(MAIN, dst, dev=dev, src=msg.get("prefsrc"), proto=0))
        return owned, halves

    # --- changing ------------------------------------------------------------------------------------
    def add_rule(self, rule: Rule) -> None:
        self._call(self.ipr.rule, "add", _rule_args(rule), ok=(errno.EEXIST,), what=rule.describe())

    def del_rule(self, rule: Rule) -> None:
        self._call(self.ipr.rule, "del", _rule_args(rule), ok=(errno.ENOENT,), what=rule.describe())

    def replace_route(self, route: Route) -> None:
        self._call(self.ipr.route, "replace", self._route_args(route), ok=(),
                   what=route.describe())

    def del_route(self, route: Route) -> None:
        self._call(self.ipr.route, "del", self._route_args(route),
                   ok=(errno.ESRCH, errno.ENOENT, errno.ENODEV), what=route.describe())

    def add_main_half(self, route: Route) -> None:
        """Give a /1 route back to main the way IPFire's wireguard initscript adds it (proto boot)."""
        args = self._route_args(route) | {"proto": _RTPROT_BOOT, "scope": _SCOPE_LINK}
        self._call(self.ipr.route, "add", args, ok=(errno.EEXIST, errno.ENODEV), what=route.describe())

    def _route_args(self, route: Route) -> dict[str, Any]:
        args: dict[str, Any] = {"dst": route.dst, "table": route.table, "proto": route.proto,
                                "priority": route.metric}
        if route.kind == "prohibit":
            args["type"] = "prohibit"
        if route.dev:
            if route.dev not in self._index:
                self.links()
            args["oif"] = self._index.get(route.dev, 0)
            args["scope"] = _SCOPE_LINK if route.table == MAIN else _SCOPE_UNIVERSE
        if route.src:
            args["prefsrc"] = route.src
        return args

    @staticmethod
    def _call(func, command: str, args: dict[str, Any], ok: tuple[int, ...], what: str) -> None:  # type: ignore[no-untyped-def]
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            func(command, **args)
        except NetlinkError as err:
            if err.code not in ok:
                raise ApplyError(f"kernel refused `ip {command} {what}`: "
                                 f"{errno.errorcode.get(err.code, err.code)} ({err})") from None


_IPPROTO_NAMES = {6: "tcp", 17: "udp"}


def _port_range(value: str | None) -> tuple[int, int] | None:
    """pyroute2 decodes FRA_DPORT_RANGE as "first:last"."""
    if not value:
        return None
    first, last = value.split(":")
    return int(first), int(last)


def _rule_args(rule: Rule) -> dict[str, Any]:
    args: dict[str, Any] = {"priority": rule.priority}
    if rule.proto:
        args["protocol"] = rule.proto
    if rule.src:
        address, length = rule.src.split("/")
        args["src"], args["src_len"] = address, int(length)
    if rule.dst:
        address, length = rule.dst.split("/")
        args["dst"], args["dst_len"] = address, int(length)
    if rule.fwmark is not None:
        args["fwmark"], args["fwmask"] = rule.fwmark, rule.fwmask
    if rule.ipproto:
        args["ip_proto"] = {name: number for number, name in _IPPROTO_NAMES.items()}[rule.ipproto]
    if rule.dport:
        args["dport_range"] = f"{rule.dport[0]}:{rule.dport[1]}"  # pyroute2's spelling of the range
    if rule.action == "prohibit":
        args["action"] = "FR_ACT_PROHIBIT"
    else:
        args["table"] = rule.table
    if rule.suppress_prefixlen is not None:
        args["suppress_prefixlen"] = rule.suppress_prefixlen
    return args
