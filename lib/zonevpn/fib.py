"""The kernel's routing decision for one flow, replayed from its own rule and route dumps, to name the rule
and table that decide it. No I/O: explain.py reads `ip -4 -json -N rule|route show` and checks the outcome
against `ip route get`, so a replay that ever disagrees with the kernel is shown as such, never trusted.

Replayed as fib_rules does it: rules in priority order; a rule matches on from/to/iif/fwmark/ipproto/dport
(`not` inverts); `lookup T` takes T's longest matching prefix (lowest metric among equals) unless
suppress_prefixlength rejects it, or goes on when T has none; prohibit/blackhole/unreachable end it.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any, NamedTuple

REFUSING = {"6": "blackhole", "7": "unreachable", "8": "prohibit"}  # rule actions and route types (`-N`)
_ROUTE_TYPES = {"2": "local", "3": "broadcast", "4": "anycast", "5": "multicast", "9": "throw", **REFUSING}
_TABLE_NAMES = {253: "default", 254: "main", 255: "local", 200: "static", 201: "wg"}
_KNOWN = {"priority", "src", "srclen", "dst", "dstlen", "iif", "fwmark", "fwmask", "table", "action", "not",
          "suppress_prefixlen", "protocol", "ipproto", "dport", "flags"}


class Flow(NamedTuple):
    src: str
    dst: str
    iif: str | None = None  # None: the firewall's own traffic
    mark: int = 0
    proto: str | None = None  # tcp | udp
    dport: int | None = None


class Decision(NamedTuple):
    kind: str  # route | local | refused | none
    rule: dict[str, Any] | None  # the rule that decided, as `ip -json` gives it
    table: int | None
    route: dict[str, Any] | None
    skipped: tuple[str, ...] = ()  # rules with selectors not replayed here (they never matched, we assume)


def table_name(table: int | None) -> str:
    return _TABLE_NAMES.get(table or 0, str(table))


def describe_rule(rule: dict[str, Any]) -> str:
    parts = [f"{rule['priority']}:"] + (["not"] if "not" in rule else [])
    src = rule.get("src", "all")
    parts.append(f"from {src}" + (f"/{rule['srclen']}" if "srclen" in rule else ""))
    if "dst" in rule:
        parts.append(f"to {rule['dst']}/{rule.get('dstlen', 32)}")
    for key in ("iif", "ipproto", "dport"):
        if key in rule:
            parts.append(f"{key} {rule[key]}".replace("ipproto-6", "tcp").replace("ipproto-17", "udp"))
    if "fwmark" in rule:
        parts.append(f"fwmark {rule['fwmark']}/{rule.get('fwmask', '0xffffffff')}")
    action = rule.get("action")
    parts.append(REFUSING.get(action, str(action)) if action else f"lookup {table_name(int(rule['table']))}")
    if "suppress_prefixlen" in rule:
        parts.append(f"suppress_prefixlength {rule['suppress_prefixlen']}")
    return " ".join(parts)


def describe_route(route: dict[str, Any]) -> str:
    kind = _ROUTE_TYPES.get(str(route.get("type", "")), "")
    parts = ([kind] if kind else []) + [route.get("dst", "default")]
    for key, word in (("gateway", "via"), ("dev", "dev"), ("prefsrc", "src"), ("metric", "metric")):
        if key in route:
            parts.append(f"{word} {route[key]}")
    parts.append(f"table {table_name(int(route.get('table', 254)))}")
    return " ".join(parts)


def decide(flow: Flow, rules: list[dict[str, Any]], routes: list[dict[str, Any]]) -> Decision:
    skipped = []
    for rule in sorted(rules, key=lambda r: int(r.get("priority", 0))):
        if set(rule) - _KNOWN:
            skipped.append(describe_rule(rule))
            continue
        if _selects(rule, flow) == ("not" in rule):
            continue
        action = rule.get("action")
        if action in REFUSING:
            return Decision("refused", rule, None, None, tuple(skipped))
        if action or "table" not in rule:
            continue  # goto, nop: not used on IPFire
        table = int(rule["table"])
        route = _lookup(flow, table, routes)
        if route is None or route.get("type") == "9":
            continue
        if _prefixlen(route) <= int(rule.get("suppress_prefixlen", -1)):
            continue
        kind = _ROUTE_TYPES.get(str(route.get("type", "")), "route")
        kind = "refused" if kind in REFUSING.values() else "local" if kind in ("local", "broadcast") else "route"
        return Decision(kind, rule, table, route, tuple(skipped))
    return Decision("none", None, None, None, tuple(skipped))


def _selects(rule: dict[str, Any], flow: Flow) -> bool:
    if rule.get("src", "all") != "all" and not _within(flow.src, rule["src"], rule.get("srclen", 32)):
        return False
    if "dst" in rule and not _within(flow.dst, rule["dst"], rule.get("dstlen", 32)):
        return False
    if "iif" in rule and rule["iif"] != (flow.iif or "lo"):
        return False
    if "fwmark" in rule:
        mask = int(rule.get("fwmask", "0xffffffff"), 16)
        if flow.mark & mask != int(rule["fwmark"], 16) & mask:
            return False
    if "ipproto" in rule and rule["ipproto"] != {"tcp": "ipproto-6", "udp": "ipproto-17"}.get(flow.proto or ""):
        return False
    if "dport" in rule:
        low, _, high = str(rule["dport"]).partition("-")
        if flow.dport is None or not int(low) <= flow.dport <= int(high or low):
            return False
    return True


def _within(address: str, network: str, length: int) -> bool:
    return IPv4Address(address) in IPv4Network(f"{network}/{length}", strict=False)


def _lookup(flow: Flow, table: int, routes: list[dict[str, Any]]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for route in routes:
        if int(route.get("table", 254)) != table or "linkdown" in route.get("flags", []):
            continue
        dst = route.get("dst", "default")
        network = IPv4Network("0.0.0.0/0" if dst == "default" else dst, strict=False)
        if IPv4Address(flow.dst) not in network:
            continue
        if best is None or (_prefixlen(route), -int(route.get("metric", 0))) > \
                (_prefixlen(best), -int(best.get("metric", 0))):
            best = route
    return best


def _prefixlen(route: dict[str, Any]) -> int:
    dst = route.get("dst", "default")
    return 0 if dst == "default" else int(dst.partition("/")[2] or 32)
