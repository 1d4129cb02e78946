"""Desired vs live as one ordered list of changes, each able to say what it does (`ip ...`/`iptables ...`).

Order is make-before-break, so that no intermediate state lets a bound zone out through red:
firewall (one atomic transaction) -> routes into the zone tables -> rules pointing at them -> give back /1
routes of tunnels that stopped being exits -> remove stale rules -> stale routes -> the exit tunnels' /1
routes in main (only now is the zone held by its own rules).
"""

from __future__ import annotations

from typing import NamedTuple

from zonevpn import firewall
from zonevpn.firewall import Live as FirewallLive
from zonevpn.plan import JUMPS, JUMPS6, OWN_CHAINS, OWN_CHAINS6
from zonevpn.state import IPFIRE_PREFS, OWNED_PREFS, Desired, FwRule, Route, Rule


class Live(NamedTuple):
    rules: frozenset[Rule]
    routes: frozenset[Route]
    halves: frozenset[Route]  # /1 routes in main on wg interfaces
    firewall: FirewallLive
    firewall6: FirewallLive
    base: frozenset[Rule] = frozenset()  # IPFire's `from all lookup static|wg` rules, wherever they are


class Plan(NamedTuple):
    firewall: tuple[tuple[str, FwRule], ...]
    firewall6: tuple[tuple[str, FwRule], ...]
    route_replace: tuple[Route, ...]
    rule_add: tuple[Rule, ...]
    halves_restore: tuple[Route, ...]
    rule_del: tuple[Rule, ...]
    route_del: tuple[Route, ...]
    halves_del: tuple[Route, ...]
    base_add: tuple[Rule, ...] = ()
    base_del: tuple[Rule, ...] = ()

    def __len__(self) -> int:
        return sum(len(part) for part in self)

    def describe(self) -> list[str]:
        return ([firewall.describe(v, r) for v, r in self.firewall]
                + [firewall.describe(v, r).replace("iptables", "ip6tables", 1) for v, r in self.firewall6]
                + [f"ip route replace {r.describe()}" for r in self.route_replace]
                + [f"ip rule add {r.describe()}" for r in self.rule_add]
                + [f"ip route add {r.describe()}" for r in self.halves_restore]
                + [f"ip rule del {r.describe()}" for r in self.rule_del]
                + [f"ip route del {r.describe()}" for r in self.route_del]
                + [f"ip route del {r.describe()}" for r in self.halves_del]
                + [f"ip rule add {r.describe()}" for r in self.base_add]
                + [f"ip rule del {r.describe()}" for r in self.base_del])


def _route_key(route: Route) -> tuple[int, str, int]:
    # what the kernel treats as the same route: `replace` swaps one for the other in one message
    return (route.table, route.dst, route.metric)


def diff(want: Desired, live: Live, taken: frozenset[Route], links: frozenset[str]) -> Plan:
    """`taken`: the /1 routes zonevpn removed earlier; given back once their tunnel is no exit any more,
    the interface exists and main has no route for that half (stock IPFire gives each half to one tunnel)."""
    replace = sorted(want.routes - live.routes)
    replaced = {_route_key(r) for r in replace}
    stale_routes = sorted(r for r in live.routes - want.routes if _route_key(r) not in replaced)
    absent = {(r.dst, r.dev) for r in want.main_absent}
    occupied = {r.dst for r in live.halves if (r.dst, r.dev) not in absent}
    restore: list[Route] = []
    for route in sorted(taken):
        if (route.dst, route.dev) not in absent and route.dev in links and route.dst not in occupied:
            restore.append(route)
            occupied.add(route.dst)
    return Plan(
        firewall=tuple(firewall.changes(want.firewall, live.firewall, OWN_CHAINS, JUMPS)),
        firewall6=tuple(firewall.changes(want.firewall6, live.firewall6, OWN_CHAINS6, JUMPS6)),
        route_replace=tuple(replace),
        rule_add=tuple(sorted(want.rules - live.rules)),
        halves_restore=tuple(restore),
        rule_del=tuple(sorted(live.rules - want.rules, reverse=True)),
        route_del=tuple(stale_routes),
        halves_del=tuple(sorted(r for r in live.halves if (r.dst, r.dev) in absent)),
        **_base_rules(want, live.base),
    )


def _base_rules(want: Desired, live: frozenset[Rule]) -> dict[str, tuple[Rule, ...]]:
    """IPFire's `from all lookup static|wg` in their stock place. Added without a pref while our rules
    exist (at boot zonevpn starts first), the kernel puts them just before ours: moved back (added at
    the stock pref, then the early one deleted). Missing `lookup static` (its script saw ours in `ip rule`
    and skipped its own): added. With nothing of ours in the kernel, IPFire's rules are left alone."""
    if not want.rules:
        return {}
    early = {r for r in live if r.priority < OWNED_PREFS.stop}
    stock = set(want.base_rules) | {Rule(IPFIRE_PREFS[r.table], None, r.table, proto=0) for r in early}
    return {"base_add": tuple(sorted(stock - live)), "base_del": tuple(sorted(early))}
