"""Where each zone's traffic leaves now, read from the kernel, and whether that matches the settings."""

from __future__ import annotations

import json
import time
from typing import Any

from zonevpn.config import load
from zonevpn.diff import Live
from zonevpn.health import handshake_ages, wg_dump
from zonevpn.kernel_view import View, compute, live_exit, live_policy_exits
from zonevpn.model import Config, Zone
from zonevpn.paths import Paths
from zonevpn.plan import zone_table
from zonevpn.policy_plan import ipv6_verdict

FORMAT, VERSION = "zonevpn-status", 1  # docs/status-json.md: a new field is no new version; a changed one is


def report(paths: Paths, view: View | None = None) -> dict[str, Any]:
    """`view`: what the apply that just ran read last, if it planned as status does (not held, not a flush)."""
    if view is None or view.config.held:
        view = _read(paths)
    config, links, live, steps = view
    drift = steps.describe()
    dump = wg_dump()
    ages = handshake_ages(paths, dump=dump)
    zones = [_zone_status(config, zone, live, links, drift, dump, ages) for zone in config.zones]
    _add_killswitch_state(paths, config, zones, links)
    policies = [{"number": p.policy.number, "source": f"{p.policy.source_type} {p.policy.source}",
                 "exit": where, "bound": p.peer.interface if p.peer else p.way,
                 "killswitch": p.killswitch, "dns_through_tunnel": p.dns, "ipv6": ipv6_verdict(p, config),
                 "remark": p.policy.remark}
                for p, where in zip(config.policies, live_policy_exits(config.policies, live), strict=True)]
    return {"format": FORMAT, "version": VERSION, "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "enabled": config.enabled, "in_sync": not drift, "zones": zones, "policies": policies,
            "warnings": list(config.warnings), "last_apply": _last_apply(paths),
            "last_probe": _read_json(paths.probe_result)}


def _read(paths: Paths) -> View:
    from zonevpn.routing import open_routing

    config = load(paths)
    routing = open_routing()
    try:
        links = routing.links()
        _, live, steps = compute(config, routing, paths)
    finally:
        routing.close()
    return View(config, links, live, steps)


def _add_killswitch_state(paths: Paths, config: Config, zones: list[dict[str, Any]], links: dict) -> None:  # type: ignore[type-arg]
    """Since when and why each engaged kill switch holds (an engagement no apply saw, e.g. a tunnel deleted
    by hand, is counted from now), and how often it engaged since boot and in the last 24 h."""
    from zonevpn import killswitch

    exits = {z["zone"]: z["exit"] for z in zones}
    killswitch.observe(paths, config, exits, exits, lambda: links)
    seen = killswitch.view(paths)
    engaged = [z for z in zones if z["killswitch_engaged"]]
    why = killswitch.reasons(paths, config, links, exits) if engaged else {}
    for z in zones:
        entry = seen.get(z["zone"], {})
        since = entry.get("since") if z["killswitch_engaged"] else None
        z["killswitch_state"] = {
            "engaged": z["killswitch_engaged"], "since": since,
            "since_time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(since)) if since else None,
            "why": why.get(z["zone"], entry.get("why", "")) if z["killswitch_engaged"] else "",
            "engaged_since_boot": entry.get("engaged_since_boot", 0),
            "engaged_last_24h": entry.get("engaged_last_24h", 0)}


def _zone_status(config: Config, zone: Zone, live: Live, links: dict, drift: list[str],  # type: ignore[type-arg]
                 dump: dict, ages: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    exit_ = next((e for e in config.exits if e.zone.name == zone.name), None)
    where = live_exit(zone, live)
    # the tunnel really in use (a fallback during failover), else the bound one: its facts are the ones shown
    peer = next((p for p in exit_.candidates if p.interface == where), exit_.peer) if exit_ else None
    link = links.get(peer.interface) if peer else None
    mine = [line for line in drift if _about(line, zone)]
    facts = dump.get(peer.interface, {}) if peer else {}
    age = ages.get(peer.interface) if peer and facts.get("handshake") else None
    return {
        "zone": zone.name, "device": zone.device, "network": str(zone.network),
        "tunnel": peer.id if peer else None, "tunnel_name": peer.name if peer else None,
        "interface": peer.interface if peer else None, "present": link is not None,
        "up": bool(link and link.up), "killswitch": exit_.killswitch if exit_ else False,
        "killswitch_engaged": where == "refused", "exit": where, "in_sync": not mine, "drift": mine,
        "handshake_age": age, "stale": bool(peer and (ages.get(peer.interface) or 0) > config.stale_after),
        "rx_bytes": facts.get("rx_bytes"), "tx_bytes": facts.get("tx_bytes"),
        "fallbacks": [p.interface for p in exit_.fallbacks] if exit_ else [],
        "bound": exit_.peer.interface if exit_ else None,
        "dns_through_tunnel": bool(exit_ and exit_.dns), "ipv6": "refused" if exit_ else "direct"}


def _about(line: str, zone: Zone) -> bool:
    return any(token in line for token in (f"{zone.network} ", f"table {zone_table(zone.name)}",
                                           f"-i {zone.device} "))


def _last_apply(paths: Paths) -> dict[str, Any] | None:
    return _read_json(paths.last_result)


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
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
        age += " (stale)" if z["stale"] else ""
        lines.append(f"  {z['zone']:<6} {z['network']:<18} exit={tunnel:<18} tunnel {state:<4} "
                     f"handshake {age:<10} leaves via {z['exit']}"
                     + ("  (kill switch engaged)" if z["killswitch_engaged"] else ""))
        lines += _killswitch_lines(z.get("killswitch_state"))
        lines += [f"      drift: {d}" for d in z["drift"]]
    for p in status.get("policies", []):
        lines.append(f"  policy {p['number']:<3} {p['source']:<28} exit={p['bound']:<6} "
                     f"leaves via {p['exit']:<8} IPv6 {p.get('ipv6', '-').split(' (')[0]}")
    lines += [f"  warning: {w}" for w in status.get("warnings", [])]
    last = status.get("last_apply")
    if last:
        lines.append(f"last apply {last['time']}: " + ("ok" if last["ok"] else f"FAILED: {last['error']}")
                     + f", {last['changes']} changes")
    return "\n".join(lines)


def _killswitch_lines(ks: dict[str, Any] | None) -> list[str]:
    if not ks or not (ks["engaged"] or ks["engaged_since_boot"]):
        return []
    counts = f"engaged {ks['engaged_since_boot']}x since boot, {ks['engaged_last_24h']}x in the last 24 h"
    if not ks["engaged"]:
        return [f"      kill switch: released; {counts}"]
    since = f" since {ks['since_time'][11:19]}" if ks["since_time"] else ""
    return [f"      kill switch: engaged{since}: {ks['why']}; {counts}"]
