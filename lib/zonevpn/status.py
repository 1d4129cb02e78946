"""Where each zone's traffic leaves now, read from the kernel, and whether that matches the settings."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from zonevpn.config import load
from zonevpn.diff import Live
from zonevpn.model import ZONES, Config, Zone
from zonevpn.paths import Paths
from zonevpn.plan import zone_table
from zonevpn.state import PREF_ZONE


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


def wg_facts(interface: str) -> dict[str, int | None]:
    """Latest handshake age and transfer counters from `wg show` (root only; None when unknown)."""
    facts: dict[str, int | None] = {"handshake_age": None, "rx_bytes": None, "tx_bytes": None}
    try:
        dump = subprocess.run(["wg", "show", interface, "dump"], capture_output=True, text=True,
                              timeout=5, check=True).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return facts
    peers = [line.split("\t") for line in dump[1:]]
    handshakes = [int(p[4]) for p in peers if len(p) > 6 and p[4].isdigit() and p[4] != "0"]
    if handshakes:
        facts["handshake_age"] = int(time.time()) - max(handshakes)
    if peers and all(len(p) > 6 for p in peers):
        facts["rx_bytes"] = sum(int(p[5]) for p in peers)
        facts["tx_bytes"] = sum(int(p[6]) for p in peers)
    return facts


def report(paths: Paths) -> dict[str, Any]:
    from zonevpn.engine import compute
    from zonevpn.routing import Routing

    config = load(paths)
    routing = Routing()
    try:
        links = routing.links()
        _, live, steps = compute(config, routing)
    finally:
        routing.close()
    drift = steps.describe()
    zones = [_zone_status(config, zone, live, links, drift) for zone in config.zones]
    return {"generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "enabled": config.enabled,
            "in_sync": not drift, "zones": zones, "last_apply": _last_apply(paths)}


def _zone_status(config: Config, zone: Zone, live: Live, links: dict, drift: list[str]) -> dict:  # type: ignore[type-arg]
    exit_ = next((e for e in config.exits if e.zone.name == zone.name), None)
    peer = exit_.peer if exit_ else None
    link = links.get(peer.interface) if peer else None
    where = live_exit(zone, live)
    mine = [line for line in drift if _about(line, zone)]
    status: dict[str, Any] = {
        "zone": zone.name, "device": zone.device, "network": str(zone.network),
        "tunnel": peer.id if peer else None, "tunnel_name": peer.name if peer else None,
        "interface": peer.interface if peer else None, "present": link is not None,
        "up": bool(link and link.up), "killswitch": exit_.killswitch if exit_ else False,
        "killswitch_engaged": where == "refused", "exit": where, "in_sync": not mine, "drift": mine}
    status.update(wg_facts(peer.interface) if link and peer else
                  {"handshake_age": None, "rx_bytes": None, "tx_bytes": None})
    return status


def _about(line: str, zone: Zone) -> bool:
    return any(token in line for token in (f"{zone.network} ", f"table {zone_table(zone.name)}",
                                           f"-i {zone.device} "))


def _last_apply(paths: Paths) -> dict[str, Any] | None:
    try:
        with open(paths.last_result, encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
            return data
    except (OSError, ValueError):
        return None


def format_text(status: dict[str, Any]) -> str:
    lines = [f"zonevpn {'enabled' if status['enabled'] else 'disabled'}, kernel "
             f"{'in sync' if status['in_sync'] else 'DRIFTED from the settings'}"]
    for z in status["zones"]:
        tunnel = f"{z['tunnel_name']} ({z['interface']})" if z["interface"] else "direct"
        state = ("up" if z["up"] else "down") if z["interface"] else "-"
        age = f"{z['handshake_age']} s ago" if z["handshake_age"] is not None else "never"
        lines.append(f"  {z['zone']:<6} {z['network']:<18} exit={tunnel:<18} tunnel {state:<4} "
                     f"handshake {age:<10} leaves via {z['exit']}"
                     + ("  (kill switch engaged)" if z["killswitch_engaged"] else ""))
        lines += [f"      drift: {d}" for d in z["drift"]]
    last = status.get("last_apply")
    if last:
        lines.append(f"last apply {last['time']}: " + ("ok" if last["ok"] else f"FAILED: {last['error']}")
                     + f", {last['changes']} changes")
    return "\n".join(lines)
