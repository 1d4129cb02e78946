"""What zonevpn must remember between runs, in run/zonevpn/ (tmpfs: a reboot starts it afresh):

- taken-routes.json: the /1 routes it took out of main, so it gives back exactly those. Written *before*
  they are deleted, so a run killed in between still knows what it owes.
- exits.json: each zone's last real way out (wgN or red). A kill switch engaged for a moment (every
  `wireguard reload` flushes the tunnel address) is no switch: the zone's connections are kept.
- held: present between the initscript's stop and its next start (restart, a Services-page stop): every
  bound zone is refused, whatever hooks run meanwhile. A reboot clears it, and boot starts zonevpn.
"""

from __future__ import annotations

import json
import os
from typing import Any

from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic
from zonevpn.state import MAIN, Route


def _path(paths: Paths, name: str) -> str:
    return os.path.join(os.path.dirname(paths.lock), "zonevpn", name)


def _load(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _store(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, json.dumps(data, sort_keys=True) + "\n")


def read_taken(paths: Paths) -> frozenset[Route]:
    try:
        rows = _load(_path(paths, "taken-routes.json")) or []
        return frozenset(Route(MAIN, dst, dev=dev, src=src or None, proto=0) for dst, dev, src in rows)
    except (TypeError, ValueError):
        return frozenset()


def write_taken(paths: Paths, routes: frozenset[Route]) -> None:
    path = _path(paths, "taken-routes.json")
    if routes or os.path.exists(path):
        _store(path, sorted([r.dst, r.dev, r.src or ""] for r in routes))


def is_held(paths: Paths) -> bool:
    return os.path.exists(_path(paths, "held"))


def set_held(paths: Paths, held: bool) -> None:
    path = _path(paths, "held")
    if held:
        _store(path, "held by `zonevpn hold`: bound zones refused until `zonevpn apply --resume`")
    elif os.path.exists(path):
        os.remove(path)


def read_exits(paths: Paths) -> dict[str, str]:
    data = _load(_path(paths, "exits.json"))
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def write_exits(paths: Paths, exits: dict[str, str]) -> None:
    if exits != read_exits(paths):
        _store(_path(paths, "exits.json"), exits)
