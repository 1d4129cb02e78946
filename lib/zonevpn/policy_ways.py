"""Which open connections changed their way out, with exit policies: each NATed conntrack entry is looked
up in the last run's table of ways and in this run's (policies in order, first match, then the zones), and
only the entries whose way differs are forgotten. Without policies (now or at the last run) the zones'
own rule applies unchanged (engine._switched: the zone's NATed entries, when its way changed).

The table is kept in run/zonevpn/policy-ways.json. As for zones, "refused" is no way out: a policy whose
tunnel is gone for a moment keeps its connections.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from zonevpn import runstate
from zonevpn.model import Config
from zonevpn.paths import Paths
from zonevpn.policy_plan import device_ids
from zonevpn.state import MAC_MARK_MASK, MAC_MARK_SHIFT, Desired

Way = list[Any]  # [src or None, device mark or None, dst or None, proto or None, [first, last] or None, way]


def table(config: Config, desired: Desired, last: dict[str, Any]) -> dict[str, Any]:
    """This run's ways: policy rows in order, then zones; refused keeps the last real way."""
    ids = device_ids(config.policies)
    now = dict(desired.policy_exits)
    old = {str(row[6]): row[5] for row in last.get("policies", []) if len(row) == 7}
    rows = []
    for policy in config.policies:
        way = now.get(policy.policy.number, "red")
        number = str(policy.policy.number)
        if way == "refused":
            way = old.get(number, "refused")
        for sel in policy.selectors:
            rows.append([str(sel.src) if sel.src else None, ids[sel.mac] << MAC_MARK_SHIFT if sel.mac else None,
                         str(sel.dst) if sel.dst else None, sel.proto, list(sel.ports) if sel.ports else None,
                         way, number])
    zones_last = last.get("zones", {})
    zones = {}
    for zone_name, way in dict(desired.exits).items():
        zones[zone_name] = zones_last.get(zone_name, "red") if way == "refused" else way
    return {"policies": rows, "zones": zones,
            "networks": {z.name: str(z.network) for z in config.zones}}


def way_of(ways: dict[str, Any], src: str, dst: str, proto: str, dport: int | None, mark: int) -> str:
    source, target = IPv4Address(src), IPv4Address(dst)
    for row in ways.get("policies", []):
        row_src, row_mark, row_dst, row_proto, row_ports, way = row[:6]
        if row_src is not None and source not in IPv4Network(row_src):
            continue
        if row_mark is not None and mark & MAC_MARK_MASK != row_mark:
            continue
        if row_dst is not None and target not in IPv4Network(row_dst):
            continue
        if row_proto is not None and row_proto != proto:
            continue
        if row_ports is not None and (dport is None or not row_ports[0] <= dport <= row_ports[1]):
            continue
        return str(way)
    for zone, network in ways.get("networks", {}).items():
        if source in IPv4Network(network):
            return str(ways.get("zones", {}).get(zone, "red"))
    return "red"


def forget(paths: Paths, config: Config, desired: Desired, last_zones: dict[str, str],
           zone_networks: list[IPv4Network]) -> int:
    """Forget the NATed connections whose way out changed; returns how many."""
    from zonevpn import conntrack

    path = os.path.join(os.path.dirname(paths.lock), "zonevpn", "policy-ways.json")
    last = runstate._load(path) or {}
    if not config.policies and not last.get("policies"):
        if last:
            os.remove(path)
        return conntrack.forget_nated(zone_networks)
    last.setdefault("zones", last_zones)
    now = table(config, desired, last)
    if now == last:
        return 0
    if last.get("networks") is None:  # the first run with policies: the zones' last ways are all we know
        last = {"policies": [], "zones": last_zones, "networks": now["networks"]}
    runstate._store(path, now)
    return conntrack.forget_nated_where(
        lambda src, dst, proto, dport, mark: way_of(last, src, dst, proto, dport, mark)
        != way_of(now, src, dst, proto, dport, mark))
