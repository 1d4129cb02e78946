"""The page's form: only zones that exist and tunnels that can be exits are accepted; anything else is an
error and the settings are not touched. Fields the page does not show (fallbacks, resolvers) are kept."""

from __future__ import annotations

from ipaddress import IPv4Address
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
    known = {"ACTION", "ENABLED"} | {f"{z}_{k}" for z in names for k in ("TUNNEL", "KILLSWITCH", "DNS", "FALLBACK")}
    known |= {f"TUNNEL_{t}_DNS" for t in tunnels}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise FormError(f"unknown field {unknown[0]} (is that zone or tunnel on this box?)")
    resolvers = _resolvers(fields, current, tunnels)
    bindings = [old if old.zone not in names else _binding(fields, old, tunnels, resolvers)
                for old in current.bindings]  # a zone this box does not have is left as it was
    return Settings(fields.get("ENABLED") == "on", tuple(bindings), tuple(sorted(resolvers.items())),
                    current.stale_after)


def _binding(fields: dict[str, str], old: Binding, tunnels: set[str], resolvers: dict[int, str]) -> Binding:
    zone = old.zone
    tunnel, fallback = fields.get(f"{zone}_TUNNEL", ""), fields.get(f"{zone}_FALLBACK", "")
    for key, value in ((f"{zone}_TUNNEL", tunnel), (f"{zone}_FALLBACK", fallback)):
        if value and value not in tunnels:
            raise FormError(f"{key}: {value!r} is not a tunnel that can be an exit")
    if fallback and (not tunnel or fallback == tunnel):
        raise FormError(f"{zone}_FALLBACK: a fallback needs a different tunnel as the exit")
    for flag in ("KILLSWITCH", "DNS"):
        if fields.get(f"{zone}_{flag}", "on") != "on":
            raise FormError(f"{zone}_{flag} must be on or absent")
    dns = f"{zone}_DNS" in fields
    for used in filter(None, (tunnel, fallback)):
        if dns and int(used) not in resolvers:
            raise FormError(f"{zone}: DNS through the tunnel needs a resolver for tunnel {used}")
    return Binding(zone, int(tunnel) if tunnel else None, f"{zone}_KILLSWITCH" in fields, dns,
                   (int(fallback),) if fallback else ())


def _resolvers(fields: dict[str, str], current: Settings, tunnels: set[str]) -> dict[int, str]:
    resolvers = dict(current.resolvers)
    for tunnel in tunnels:
        key = f"TUNNEL_{tunnel}_DNS"
        if key not in fields:
            continue
        value = fields[key].strip()
        if not value:
            resolvers.pop(int(tunnel), None)
            continue
        try:
            resolvers[int(tunnel)] = str(IPv4Address(value))
        except ValueError:
            raise FormError(f"{key}: not an IPv4 address: {value[:40]!r}") from None
    return resolvers
