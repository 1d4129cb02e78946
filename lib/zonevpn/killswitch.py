"""The kill switch's state per zone: engaged or not, since when and why, and how often since boot and in the
last 24 h; and the history events that follow from each change of a zone's way out.

Every apply (hook, page, boot, watcher) and every `status` hands `observe` the zones' ways out. It compares
them with the last ones seen (run/zonevpn/killswitch.json; tmpfs, so a reboot starts the counts afresh):
  anything -> refused      engaged (why: each tunnel's fault: missing, down, no address, disabled, stale...)
  refused -> a way out     released
  wgA -> wgB of a binding  failover;  any other change: switch
  same way out, but the kernel had refused the zone before this run   repair (a reload flushed the tunnel's
                           address and the kernel dropped our route with it; this run put it back)
A refusal only inside a reload, repaired by its own hook, is a repair and no engagement: the zone never
left through red and lost only the packets of that moment.

Cheap on the hook's path: one small JSON read; the reasons (which may run `wg show`) only on an engagement.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from zonevpn import history
from zonevpn.model import Config, Exit
from zonevpn.paths import Paths
from zonevpn.plan import Link, usable
from zonevpn.readhash import write_atomic

REFUSED = "refused"
DAY = 86400
_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def why(exit_: Exit, links: Mapping[str, Link], ages: Mapping[str, int | None], stale_after: int,
        down: AbstractSet[str] = frozenset(), held: bool = False, wg_enabled: bool = True,
        until: str | None = None) -> str:
    """Why each of the binding's tunnels (before `until`, the one in use) cannot carry the zone."""
    if held:
        return "held: zonevpn is stopped (`zonevpn hold`, the initscript's stop) until its next start"
    faults = []
    for peer in exit_.candidates:
        if peer.interface == until:
            break
        link, wg = links.get(peer.interface), peer.interface
        if not peer.enabled or not wg_enabled:
            faults.append(f"{wg} ({peer.name}) disabled in IPFire")
        elif link is None:
            faults.append(f"{wg} missing")
        elif not link.up:
            faults.append(f"{wg} down")
        elif peer.address not in link.addresses:
            faults.append(f"{wg} has no address (needs {peer.address})")
        elif wg in down:
            faults.append(f"{wg} silent (the watcher's probe through it goes unanswered)")
        elif exit_.fallbacks and (ages.get(wg) or 0) > stale_after:
            faults.append(f"{wg} stale for {ages.get(wg)} s (no handshake; STALE_AFTER={stale_after})")
        elif usable(peer, links):
            faults.append(f"{wg} usable again (the next apply sends the zone through it)")
    return ", ".join(faults) or ("" if until and until.startswith("wg") else "no tunnel could be chosen")


def reasons(paths: Paths, config: Config, links: Mapping[str, Link],
            exits: Mapping[str, str]) -> dict[str, str]:
    """zone -> why its way out is not its first tunnel (or why it is refused), read from the box now."""
    from zonevpn import runstate
    from zonevpn.health import handshake_ages, read_down
    from zonevpn.ipfire import read_wg_settings

    failover = any(e.fallbacks for e in config.exits)
    ages = handshake_ages(paths) if failover else {}
    down = read_down(paths) if failover else frozenset()
    try:
        wg_enabled = read_wg_settings(paths).get("ENABLED") == "on"
    except Exception:  # noqa: BLE001 - an unreadable file is no reason to lose the event
        wg_enabled = True
    held = runstate.is_held(paths)
    return {e.zone.name: why(e, links, ages, config.stale_after, down, held, wg_enabled,
                             until=exits.get(e.zone.name)) for e in config.exits}


def observe(paths: Paths, config: Config, after: Mapping[str, str], before: Mapping[str, str],
            links: Callable[[], Mapping[str, Link]], now: float | None = None) -> None:
    """Record what changed since the last observation. `after`: zone -> wgN | refused | red as the kernel
    holds it now; `before`: the same as the kernel held it when this run began; `links` is called only
    when a reason is needed. Never raises: this is bookkeeping on the hook's path."""
    now = time.time() if now is None else now
    try:
        with _Locked(paths.killswitch_state):
            state = _load(paths.killswitch_state)
            old = json.dumps(state, sort_keys=True)
            zones = state.setdefault("zones", {})
            found: dict[str, str] | None = None
            for zone in config.zones:
                entry = zones.setdefault(zone.name, {"exit": None, "since": None, "why": "",
                                                     "engagements": [], "since_boot": 0})
                exit_now = after.get(zone.name, "red")
                event = _change(config, zone.name, entry["exit"], exit_now, before.get(zone.name, exit_now))
                if event and event[0] in ("engaged", "failover") and found is None:
                    found = reasons(paths, config, links(), after)
                if event:
                    _apply(paths, entry, zone.name, exit_now, event, found or {}, now)
                entry["exit"] = exit_now
                entry["engagements"] = [t for t in entry["engagements"] if t > now - DAY][-1000:]
            if json.dumps(state, sort_keys=True) != old:
                os.makedirs(os.path.dirname(paths.killswitch_state), exist_ok=True)
                write_atomic(paths.killswitch_state, json.dumps(state, sort_keys=True) + "\n")
    except Exception:  # noqa: BLE001 - never the caller's failure (the hook must not fail IPFire's scripts)
        pass


def _change(config: Config, zone: str, prev: str | None, now: str, before: str) -> tuple[str, str] | None:
    """(kind, text) for the history, or None when nothing worth telling happened."""
    if now == REFUSED:
        return ("engaged", "") if prev != REFUSED else None
    if prev == REFUSED:
        return "released", f"the kill switch let go: the zone leaves via {now}"
    if prev is None or prev == now:
        return ("repair", f"route via {now} put back (the kernel had dropped it with the tunnel's "
                "address: the zone was refused, never sent to red)") if prev == now and before == REFUSED else None
    exit_ = next((e for e in config.exits if e.zone.name == zone), None)
    tunnels = {p.interface for p in exit_.candidates} if exit_ and exit_.fallbacks else set()
    kind = "failover" if {prev, now} <= tunnels else "switch"
    return kind, f"now leaves via {now} (was {prev})"


def _apply(paths: Paths, entry: dict[str, Any], zone: str, exit_now: str, event: tuple[str, str],
           found: Mapping[str, str], now: float) -> None:
    kind, text = event
    if kind == "engaged":
        entry["since"], entry["why"] = now, found.get(zone, "zone unbound while refused")
        entry["engagements"].append(now)
        entry["since_boot"] += 1
        text = f"kill switch engaged: {entry['why']}"
    elif kind == "released":
        if entry.get("since"):
            text += f" (engaged for {now - entry['since']:.0f} s: {entry['why']})"
        entry["since"], entry["why"] = None, ""
    elif kind == "failover" and found.get(zone):
        text += f": {found[zone]}"
    history.record(paths, kind, zone=zone, detail=text, now=now, exit=exit_now)


def exits_of(config: Config, live: Any) -> dict[str, str]:
    """zone -> its way out as the kernel holds it (`live`: what engine.read_live read)."""
    from zonevpn.status import live_exit

    return {zone.name: live_exit(zone, live) for zone in config.zones}


def view(paths: Paths, now: float | None = None) -> dict[str, dict[str, Any]]:
    """zone -> {since, why (at engagement), engaged_since_boot, engaged_last_24h} as last observed."""
    now = time.time() if now is None else now
    out = {}
    for zone, entry in _load(paths.killswitch_state).get("zones", {}).items():
        out[zone] = {"since": entry.get("since"), "why": entry.get("why", ""),
                     "engaged_since_boot": int(entry.get("since_boot", 0)),
                     "engaged_last_24h": sum(1 for t in entry.get("engagements", []) if t > now - DAY)}
    return out


def _load(path: str) -> dict[str, Any]:
    """The state, or a fresh one after a reboot (another boot id) or when unreadable."""
    boot = _boot_id()
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if isinstance(data, dict) and data.get("boot_id") == boot and isinstance(data.get("zones"), dict):
            return data
    except (OSError, ValueError):
        pass
    return {"boot_id": boot, "zones": {}}


def _boot_id() -> str:
    try:
        with open(_BOOT_ID, encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


class _Locked:
    """flock beside the state file: an apply and a `status` observing at once must not count twice."""

    def __init__(self, path: str) -> None:
        self.path, self.fd = f"{path}.lock", -1

    def __enter__(self) -> _Locked:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
