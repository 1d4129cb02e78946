"""Tunnel health: latest-handshake age and transfer from `wg show all dump`, and the watcher's verdicts.

The watcher (watch.py) probes every exit tunnel of a zone with fallbacks once a second, like OPNsense's
dpinger watches gateways: an ICMP echo through the tunnel from its own address to a target the admin sets
(TUNNEL_<id>_PROBE, else the tunnel's resolver), and whether the tunnel received anything at all. A Tracker
turns those ticks into up/down with hysteresis; the verdicts go to run/zonevpn/health.json, which every
plan (hook or watcher) reads, so that a hook never moves a zone back into a tunnel the watcher found silent.
Verdicts count only while the watcher that wrote them runs: with it gone, handshake age decides alone.

A tunnel that never completed a handshake is given the age it has had since zonevpn first saw it so
(kept in run/zonevpn/never-handshaked.json): a provider dead at boot becomes stale after STALE_AFTER
seconds like any other, while a tunnel that just came up is not failed over before it had its chance.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic

DOWN_AFTER = 5  # consecutive silent ticks (1 s apart) before a tunnel is down: failover in ~5-6 s
UP_AFTER = 3  # consecutive answered ticks before it is up again: no flapping on a half-working tunnel


def wg_dump() -> dict[str, dict[str, int | None]]:
    """interface -> {handshake: unix time or None, rx_bytes, tx_bytes}; {} when wg cannot be read."""
    try:
        out = subprocess.run(["wg", "show", "all", "dump"], capture_output=True, text=True, timeout=5,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    facts: dict[str, dict[str, int | None]] = {}
    for line in out.splitlines():
        cells = line.split("\t")
        if len(cells) == 5:  # the interface's own line
            facts.setdefault(cells[0], {"handshake": None, "rx_bytes": 0, "tx_bytes": 0})
        elif len(cells) >= 8 and cells[5].isdigit():
            entry = facts.setdefault(cells[0], {"handshake": None, "rx_bytes": 0, "tx_bytes": 0})
            stamp = int(cells[5]) or None
            if stamp and (entry["handshake"] is None or stamp > entry["handshake"]):  # type: ignore[operator]
                entry["handshake"] = stamp
            entry["rx_bytes"] = (entry["rx_bytes"] or 0) + int(cells[6])
            entry["tx_bytes"] = (entry["tx_bytes"] or 0) + int(cells[7])
    return facts


def handshake_ages(paths: Paths, now: float | None = None,
                   dump: dict[str, dict[str, int | None]] | None = None) -> dict[str, int | None]:
    now = time.time() if now is None else now
    dump = wg_dump() if dump is None else dump
    state_path = os.path.join(os.path.dirname(paths.lock), "zonevpn", "never-handshaked.json")
    seen = _read_state(state_path)
    ages: dict[str, int | None] = {}
    never = {}
    for interface, facts in dump.items():
        stamp = facts["handshake"]
        if stamp:
            ages[interface] = max(0, int(now - stamp))
        else:
            never[interface] = seen.get(interface, now)
            ages[interface] = int(now - never[interface])
    if never != seen:
        try:
            os.makedirs(os.path.dirname(state_path), exist_ok=True)
            write_atomic(state_path, json.dumps(never))
        except OSError:
            pass  # without the file a never-handshaked tunnel just stays "new" a little longer
    return ages


def _read_state(path: str) -> dict[str, float]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return {str(k): float(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


class Tracker:
    """Up/down with hysteresis from one piece of evidence per tick: True (the tunnel carried something
    back), False (silence) or None (no evidence: the interface or its address is missing, which the planner
    already sees for itself). A new tunnel starts up: it has its chance before it is failed over."""

    def __init__(self, down_after: int = DOWN_AFTER, up_after: int = UP_AFTER) -> None:
        self.up, self.run = True, 0
        self.down_after, self.up_after = down_after, up_after

    def tick(self, good: bool | None) -> bool:
        """Feed one tick; True when the verdict changed."""
        if good is None or good == self.up:
            self.run = 0
            return False
        self.run += 1
        if self.run < (self.down_after if self.up else self.up_after):
            return False
        self.up, self.run = good, 0
        return True


def verdicts_path(paths: Paths) -> str:
    return os.path.join(os.path.dirname(paths.lock), "zonevpn", "health.json")


def write_down(paths: Paths, down: set[str]) -> None:
    os.makedirs(os.path.dirname(verdicts_path(paths)), exist_ok=True)
    write_atomic(verdicts_path(paths), json.dumps({"pid": os.getpid(), "down": sorted(down)}) + "\n")


def read_down(paths: Paths) -> frozenset[str]:
    """Tunnels the running watcher found silent; nothing when no watcher runs (a dead watcher's verdicts
    would keep a zone away from a tunnel that recovered since)."""
    from zonevpn.service import watcher_pid

    try:
        with open(verdicts_path(paths), encoding="utf-8") as handle:
            data = json.load(handle)
        pid, down = int(data["pid"]), frozenset(str(name) for name in data["down"])
    except (OSError, ValueError, KeyError, TypeError):
        return frozenset()
    return down if down and watcher_pid(paths) == pid else frozenset()
