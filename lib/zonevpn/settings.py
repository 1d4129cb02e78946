"""zonevpn's own settings file (/var/ipfire/zonevpn/settings), in IPFire's readhash format.

Keys: ENABLED=on|off; per zone <ZONE>_TUNNEL=<peer id or empty> and <ZONE>_KILLSWITCH=on|off (default on).
"""

from __future__ import annotations

import os

from zonevpn.errors import InputError
from zonevpn.model import ZONES, Binding, Settings
from zonevpn.paths import Paths
from zonevpn.readhash import format_hash, parse_strict, read_text, write_atomic

ZONE_KEYS = ("TUNNEL", "KILLSWITCH")
KNOWN_KEYS = ("ENABLED",) + tuple(f"{z}_{k}" for z in ZONES for k in ZONE_KEYS)


def read_settings(paths: Paths) -> Settings:
    path = paths.settings
    values = parse_strict(read_text(path), path)
    for key, (_, line) in values.items():
        if key not in KNOWN_KEYS:
            zone = key.split("_", 1)[0]
            why = f"unknown zone {zone!r}" if key.endswith(ZONE_KEYS) and zone not in ZONES \
                else "unknown key"
            raise InputError(path, f"{why} (known: {', '.join(KNOWN_KEYS)})", line, key)
    enabled = _on_off(path, values, "ENABLED", default=False)
    bindings = []
    for zone in ZONES:
        tunnel_text, line = values.get(f"{zone}_TUNNEL", ("", 0))
        if tunnel_text and not tunnel_text.isdigit():
            raise InputError(path, f"not a peer id: {tunnel_text!r}", line, f"{zone}_TUNNEL")
        tunnel = int(tunnel_text) if tunnel_text else None
        bindings.append(Binding(zone, tunnel, _on_off(path, values, f"{zone}_KILLSWITCH", True)))
    return Settings(enabled, tuple(bindings))


def _on_off(path: str, values: dict[str, tuple[str, int]], key: str, default: bool) -> bool:
    if key not in values or values[key][0] == "":
        return default
    value, line = values[key]
    if value not in ("on", "off"):
        raise InputError(path, f"must be on or off, not {value!r}", line, key)
    return value == "on"


def settings_values(settings: Settings) -> dict[str, str]:
    values = {"ENABLED": "on" if settings.enabled else "off"}
    for binding in settings.bindings:
        values[f"{binding.zone}_TUNNEL"] = "" if binding.tunnel is None else str(binding.tunnel)
        values[f"{binding.zone}_KILLSWITCH"] = "on" if binding.killswitch else "off"
    return values


def write_settings(paths: Paths, settings: Settings) -> None:
    """Atomic replace; keeps the file's owner (the web server user `nobody` on IPFire) and mode."""
    path = paths.settings
    owner, mode = None, 0o644
    try:
        st = os.stat(path)
        owner, mode = (st.st_uid, st.st_gid), st.st_mode & 0o777
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, format_hash(settings_values(settings)), mode=mode,
                 owner=owner if owner and os.geteuid() == 0 else None)
