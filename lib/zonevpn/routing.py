"""The routing seam: what the engine needs from the kernel's rules, routes and links, and the back-ends.

Two back-ends, one contract: `iproute2` (the default: IPFire's own `ip`, JSON to read and one `ip -batch`
per run to write: ~6 ms, nothing to import) and `pyroute2` (rtnetlink from Python; its import alone costs
~100 ms, too much for a hook that runs while a reload holds traffic). ZONEVPN_ROUTING=pyroute2 selects it.
"""

from __future__ import annotations

import os
from typing import Protocol

from zonevpn.plan import Link
from zonevpn.state import Route, Rule


class Routing(Protocol):
    def links(self) -> dict[str, Link]: ...
    def rules(self) -> set[Rule]: ...
    def base_rules(self) -> set[Rule]: ...  # IPFire's unmarked `from all lookup static|wg`, any pref
    def routes(self) -> tuple[set[Route], set[Route]]: ...  # (ours, /1 halves on wg devices in main)
    def add_rule(self, rule: Rule) -> None: ...
    def del_rule(self, rule: Rule) -> None: ...
    def replace_route(self, route: Route) -> None: ...
    def del_route(self, route: Route) -> None: ...
    def add_main_half(self, route: Route) -> None: ...
    def commit(self) -> None: ...  # changes are in the kernel when this returns
    def close(self) -> None: ...


def open_routing() -> Routing:
    if os.environ.get("ZONEVPN_ROUTING") == "pyroute2":
        from zonevpn.routing_pyroute2 import Pyroute2Routing

        return Pyroute2Routing()
    from zonevpn.routing_iproute2 import IprouteRouting

    return IprouteRouting()
