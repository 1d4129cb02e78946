"""What zonevpn owns in the kernel now, and how far it is from the plan: below both the engine (which
applies) and status (which reports), so neither has to import the other."""

from __future__ import annotations

from typing import NamedTuple

from zonevpn import firewall, runstate
from zonevpn.diff import Live, Plan, diff
from zonevpn.health import handshake_ages, read_down
from zonevpn.model import ZONES, Config, PolicyExit, Zone
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan, zone_table
from zonevpn.policy_plan import pref
from zonevpn.routing import Routing
from zonevpn.state import PREF_ZONE, Desired, Route, Rule


def read_live(routing: Routing) -> Live:
    owned, halves = routing.routes()
    return Live(frozenset(routing.rules()), frozenset(owned), frozenset(halves), firewall.read(4),
                firewall.read(6), frozenset(routing.base_rules()))


def compute(config: Config, routing: Routing, paths: Paths) -> tuple[Desired, Live, Plan]:
    links = routing.links()
    failover = any(e.fallbacks for e in config.exits) or any(p.fallbacks for p in config.policies)
    ages = handshake_ages(paths) if failover else {}
    desired = plan(config, links, ages, read_down(paths) if failover else frozenset())
    live = read_live(routing)
    return desired, live, diff(desired, live, runstate.read_taken(paths), _up(links))


def recheck(desired: Desired, routing: Routing, paths: Paths) -> tuple[Live, Plan]:
    """The kernel read again after an apply, against the plan just applied: not planned anew (200 policies:
    a third of the read), nor judged by a tunnel's handshake that turned stale in between."""
    links = routing.links()
    live = read_live(routing)
    return live, diff(desired, live, runstate.read_taken(paths), _up(links))


def _up(links: dict[str, Link]) -> frozenset[str]:
    """Interfaces a /1 route can be given back to: the kernel refuses a route on a device that is down
    ("Device for nexthop is not up"), and IPFire's own reload adds them again when it brings the tunnel up."""
    return frozenset(name for name, link in links.items() if link.up)


class View(NamedTuple):
    """The kernel as an apply last read it (after its changes), with the plan it was compared with: what a
    status report needs, so a hook run reads and plans once for both (status.report)."""

    config: Config
    links: dict[str, Link]
    live: Live
    steps: Plan


def live_exit(zone: Zone, live: Live) -> str:
    """'wgN' when the zone's table routes into a tunnel, 'refused' when the kill switch holds, else 'red'."""
    net, table = str(zone.network), zone_table(zone.name)
    rules = [r for r in live.rules if r.src == net]
    if not any(r.priority == PREF_ZONE + ZONES.index(zone.name) + 1 and r.table == table for r in rules):
        return "red"
    routes = [r for r in live.routes if r.table == table and r.dst == "0.0.0.0/0"]
    tunnel = next((r.dev for r in sorted(routes, key=lambda r: r.metric) if r.kind == "unicast"), None)
    if tunnel:
        return tunnel
    refused = any(r.action == "prohibit" for r in rules) or any(r.kind == "prohibit" for r in routes)
    return "refused" if refused else "red"


def live_policy_exits(policies: tuple[PolicyExit, ...], live: Live) -> list[str]:
    """Where each policy's traffic leaves now, by its rules and table in the kernel: 'wgN', 'refused' (kill
    switch), 'red', 'blocked', or 'not applied' when its rules are missing. The kernel's rules and routes are
    sorted once by preference and table: 200 policies looked through 800 rules each otherwise."""
    by_pref: dict[int, list[Rule]] = {}
    for rule in live.rules:
        by_pref.setdefault(rule.priority, []).append(rule)
    defaults: dict[int, list[Route]] = {}
    for route in live.routes:
        if route.dst == "0.0.0.0/0":
            defaults.setdefault(route.table, []).append(route)
    return [_policy_exit(p, by_pref, defaults) for p in policies]


def _policy_exit(policy: PolicyExit, by_pref: dict[int, list[Rule]], defaults: dict[int, list[Route]]) -> str:
    mine = [r for at in range(pref(policy.slot, 0), pref(policy.slot, 3) + 1) for r in by_pref.get(at, [])]
    if not mine:
        return "not applied"
    if policy.way != "tunnel":
        return "blocked" if policy.way == "block" else "red"
    table = next((r.table for r in mine if r.priority == pref(policy.slot, 2)), None)
    routes = sorted(defaults.get(table, []) if table is not None else [], key=lambda r: r.metric)
    tunnel = next((r.dev for r in routes if r.kind == "unicast"), None)
    if tunnel:
        return tunnel
    refused = any(r.action == "prohibit" and r.priority == pref(policy.slot, 3) for r in mine)
    return "refused" if refused else "red"
