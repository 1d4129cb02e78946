"""Tunnel health from `wg show all dump`: latest-handshake age and transfer, per interface.

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
