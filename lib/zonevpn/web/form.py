"""The page's form: only zones that exist and tunnels that can be exits are accepted; anything else is an
error and the settings are not touched. Fields the page does not show (fallbacks, resolvers) are kept."""

from __future__ import annotations

from urllib.parse import parse_qsl

from zonevpn.model import Binding, Peer, Settings, Zone

MAX_BODY = 64 * 1024


class FormError(Exception):
    pass


def exit_tunnels(peers: tuple[Peer, ...]) -> list[Peer]:
    """Tunnels a zone can leave through: enabled net-to-net, routing 0.0.0.0/0, with a local address."""
    return [p for p in peers if p.kind == "net" and p.enabled and p.routes_everything and p.local_address]


def parse(body: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(body, keep_blank_values=True, strict_parsing=bool(body), max_num_fields=50)
    except ValueError as err:
        raise FormError(f"malformed form: {err}") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if key in fields:
            raise FormError(f"field {key} sent twice")
        fields[key] = value
    return fields


def settings_from(fields: dict[str, str], current: Settings, zones: tuple[Zone, ...],
                  peers: tuple[Peer, ...]) -> Settings:
    names = {z.name for z in zones}
    tunnels = {str(p.id) for p in exit_tunnels(peers)}
    known = {"ACTION", "ENABLED"} | {f"{z}_{k}" for z in names for k in ("TUNNEL", "KILLSWITCH", "DNS")}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise FormError(f"unknown field {unknown[0]} (is that zone on this box?)")
    bindings = []
    for old in current.bindings:
        if old.zone not in names:
            bindings.append(old)  # a zone this box does not have: left as it was
            continue
        tunnel = fields.get(f"{old.zone}_TUNNEL", "")
        if tunnel and tunnel not in tunnels:
            raise FormError(f"{old.zone}: {tunnel!r} is not a tunnel that can be an exit")
        for flag in ("KILLSWITCH", "DNS"):
            if fields.get(f"{old.zone}_{flag}", "on") != "on":
                raise FormError(f"{old.zone}_{flag} must be on or absent")
        bindings.append(Binding(old.zone, int(tunnel) if tunnel else None, f"{old.zone}_KILLSWITCH" in fields,
                                f"{old.zone}_DNS" in fields,
                                old.fallbacks if tunnel and int(tunnel) == old.tunnel else ()))
    return Settings(fields.get("ENABLED") == "on", tuple(bindings), current.resolvers, current.stale_after)
