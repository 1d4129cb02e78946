"""Routing back-end on iproute2's `ip`: reads with `ip -json -N`, writes one `ip -force -batch -` per run.

"Already so" answers are not errors (File exists on add, a missing rule/route/table/device on delete);
anything else is, because "couldn't check" must never be taken for "absent".
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

from zonevpn.errors import ApplyError
from zonevpn.plan import Link
from zonevpn.state import IPFIRE_PREFS, MAIN, OWNED_PREFS, PROTO, Route, Rule

_PROHIBIT = "8"  # RTN_PROHIBIT / FR_ACT_PROHIBIT, as `ip -N` prints them
_HALVES = ("0.0.0.0/1", "128.0.0.0/1")
_ALREADY = {"add": ("File exists", "Cannot find device"),
            "del": ("No such file or directory", "No such process", "FIB table does not exist",
                    "Cannot find device")}
_BARE = {"priority", "src", "table", "protocol"}  # a rule with nothing else: `from all lookup T`
_FAILED = re.compile(r"Command failed -:(\d+)")


_SNAPSHOT = "rule show\nroute show table all\naddr show\n"


def _snapshot() -> tuple[list[Any], list[Any], list[Any]]:
    """Rules, routes and addressed links in one `ip` process (each answer is one JSON line). Links
    without an IPv4 address are left out: no tunnel can carry a zone without one."""
    try:
        out = subprocess.run(["ip", "-4", "-json", "-N", "-batch", "-"], input=_SNAPSHOT,
                             capture_output=True, text=True, check=True).stdout.splitlines()
        rules, routes, addrs = (json.loads(line) for line in out)
        return rules, routes, addrs
    except (OSError, subprocess.CalledProcessError, ValueError) as err:
        raise ApplyError(f"cannot read the kernel with `ip -4 -json -batch`: {err}") from None


class IprouteRouting:
    def __init__(self) -> None:
        self.batch: list[tuple[str, str]] = []  # (command line, what counts as already so)
        self._read: tuple[list[Any], list[Any], list[Any]] | None = None

    def _kernel(self) -> tuple[list[Any], list[Any], list[Any]]:
        if self._read is None:
            self._read = _snapshot()
        return self._read

    def close(self) -> None:
        self.batch.clear()

    def links(self) -> dict[str, Link]:
        links = {}
        for msg in self._kernel()[2]:
            addresses = {a["local"] for a in msg.get("addr_info", []) if a.get("family") == "inet"}
            links[msg["ifname"]] = Link("UP" in msg.get("flags", []), frozenset(addresses))
        return links

    def rules(self) -> set[Rule]:
        owned = set()
        for msg in self._kernel()[0]:
            if msg.get("protocol") != str(PROTO) or msg.get("priority") not in OWNED_PREFS:
                continue
            src = f"{msg['src']}/{msg.get('srclen', 32)}" if msg.get("src", "all") != "all" else None
            dst = f"{msg['dst']}/{msg.get('dstlen', 32)}" if msg.get("dst", "all") != "all" else None
            prohibit = msg.get("action") == _PROHIBIT
            fwmark = int(msg["fwmark"], 16) if "fwmark" in msg else None
            fwmask = int(msg.get("fwmask", "0xffffffff"), 16) if "fwmark" in msg else None
            owned.add(Rule(msg["priority"], src, 0 if prohibit else int(msg.get("table", MAIN)),
                           "prohibit" if prohibit else "lookup", fwmark, fwmask,
                           msg.get("suppress_prefixlen"), dst=dst, ipproto=_ipproto(msg.get("ipproto")),
                           dport=_dport(msg)))
        return owned

    def base_rules(self) -> set[Rule]:
        names = {"static": 200, "wg": 201, "200": 200, "201": 201}  # `-N` prints numbers; be safe
        found = set()
        for msg in self._kernel()[0]:
            table = names.get(str(msg.get("table")))
            if (table in IPFIRE_PREFS and msg.get("protocol", "unspec") != str(PROTO) and set(msg) <= _BARE
                    and msg.get("src", "all") == "all"):
                found.add(Rule(msg["priority"], None, table, proto=0))
        return found

    def routes(self) -> tuple[set[Route], set[Route]]:
        owned, halves = set(), set()
        for msg in self._kernel()[1]:
            dst = "0.0.0.0/0" if msg["dst"] == "default" else msg["dst"]
            dst = dst if "/" in dst else f"{dst}/32"
            table = int(msg.get("table", MAIN))
            if msg.get("protocol") == str(PROTO):
                kind = "prohibit" if msg.get("type") == _PROHIBIT else "unicast"
                owned.add(Route(table, dst, kind, msg.get("dev"), msg.get("prefsrc"), msg.get("metric", 0)))
            elif table == MAIN and dst in _HALVES and msg.get("dev", "").startswith("wg"):
                halves.add(Route(MAIN, dst, dev=msg["dev"], src=msg.get("prefsrc"), proto=0))
        return owned, halves

    def add_rule(self, rule: Rule) -> None:
        self.batch.append((f"rule add {rule.describe()}", "add"))

    def del_rule(self, rule: Rule) -> None:
        self.batch.append((f"rule del {rule.describe()}", "del"))

    def replace_route(self, route: Route) -> None:
        self.batch.append((f"route replace {route.describe()}", ""))

    def del_route(self, route: Route) -> None:
        self.batch.append((f"route del {route.describe()}", "del"))

    def add_main_half(self, route: Route) -> None:
        self.batch.append((f"route add {route.describe()} scope link", "add"))

    def commit(self) -> None:
        if not self.batch:
            return
        batch, self.batch, self._read = self.batch, [], None
        text = "".join(f"{line}\n" for line, _ in batch)
        try:
            run = subprocess.run(["ip", "-force", "-batch", "-"], input=text, capture_output=True, text=True)
        except OSError as err:
            raise ApplyError(f"cannot run ip: {err}") from None
        refused = _refusals(run.stderr, batch)
        if refused or (run.returncode != 0 and "Command failed" not in run.stderr):
            raise ApplyError("the kernel refused: " + ("; ".join(refused) or run.stderr.strip()))


def _ipproto(value: str | None) -> str | None:
    """`ip -N` prints `ipproto-6`, without -N `tcp`."""
    return {"ipproto-6": "tcp", "ipproto-17": "udp"}.get(value or "", value)


def _dport(msg: dict[str, Any]) -> tuple[int, int] | None:
    if "dport" in msg:
        return int(msg["dport"]), int(msg["dport"])
    if "dport_start" in msg:
        return int(msg["dport_start"]), int(msg["dport_end"])
    return None


def _refusals(stderr: str, batch: list[tuple[str, str]]) -> list[str]:
    """`ip -batch` prints the kernel's answer, then `Command failed -:N`; keep only the real refusals."""
    refused, answer = [], ""
    for line in stderr.splitlines():
        failed = _FAILED.search(line)
        if not failed:
            answer = line.strip()
            continue
        command, already = batch[int(failed.group(1)) - 1]
        if not (already and any(text in answer for text in _ALREADY[already])):
            refused.append(f"`ip {command}`: {answer}")
        answer = ""
    if answer:  # a line ip could not even parse ends the batch without `Command failed`
        refused.append(answer)
    return refused
