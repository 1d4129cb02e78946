"""The page's form, both ways. `build` says what the page shows for the settings as they are — including
bindings the page could not set itself (a tunnel disabled or deleted in IPFire, several fallbacks, a zone the
box lost), shown marked and posted back unchanged. `settings_from` takes a posted form back: only the
complete form this page rendered is accepted, every value is checked, and a value left as rendered keeps
exactly what the settings had. So a Save that changes nothing gives back equal settings."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import NamedTuple

from zonevpn.model import Binding, Peer, Settings, Zone
from zonevpn.web.request import Refused


class Option(NamedTuple):
    value: str  # what the form posts: "", a peer id, or the fallbacks as stored ("4,6")
    label: str  # "nordvpn (wg3)"
    note: str = ""  # a language key when the choice is kept but cannot be chosen anew (disabled, deleted)


class ZoneRow(NamedTuple):
    zone: str  # GREEN, BLUE, ORANGE
    network: str  # "" for a zone this box no longer has: shown, not editable, kept as it is
    binding: Binding
    exits: tuple[Option, ...]
    fallbacks: tuple[Option, ...]

    @property
    def exit_value(self) -> str:
        return "" if self.binding.tunnel is None else str(self.binding.tunnel)

    @property
    def fallback_value(self) -> str:
        return ",".join(map(str, self.binding.fallbacks))

    @property
    def exit_label(self) -> str:
        return next((o.label for o in self.exits if o.value == self.exit_value), "-")

    @property
    def fallback_label(self) -> str:
        return next((o.label for o in self.fallbacks if o.value == self.fallback_value), "-")


class ResolverRow(NamedTuple):
    tunnel: int
    label: str
    note: str
    value: str


class Form(NamedTuple):
    zones: tuple[ZoneRow, ...]
    resolvers: tuple[ResolverRow, ...]

    @property
    def rows(self) -> str:
        """Posted back in a hidden field: the proof that the form is whole and was made for this box as it is."""
        zones = ",".join(r.zone for r in self.zones if r.network)
        return f"{zones};{','.join(str(r.tunnel) for r in self.resolvers)}"


def can_exit(peer: Peer) -> bool:
    """A tunnel a zone can leave through: enabled net-to-net, routing 0.0.0.0/0, with a local address."""
    return peer.kind == "net" and peer.enabled and peer.routes_everything and bool(peer.local_address)


def exit_tunnels(peers: tuple[Peer, ...]) -> list[Peer]:
    return [p for p in peers if can_exit(p)]


def describe(peer_id: int, peers: dict[int, Peer]) -> Option:
    peer = peers.get(peer_id)
    if peer is None:
        return Option(str(peer_id), f"wg{peer_id}", "zonevpn tunnel deleted")
    note = "" if can_exit(peer) else "zonevpn tunnel disabled" if not peer.enabled else "zonevpn tunnel unusable"
    return Option(str(peer_id), f"{peer.name} ({peer.interface})", note)


def build(zones: tuple[Zone, ...], peers: tuple[Peer, ...], settings: Settings) -> Form:
    by_id = {p.id: p for p in peers}
    exits = tuple(describe(p.id, by_id) for p in exit_tunnels(peers))
    networks = {z.name: str(z.network) for z in zones}
    rows = []
    for binding in settings.bindings:
        network = networks.get(binding.zone, "")
        if not network and binding.tunnel is None and not binding.fallbacks:
            continue  # a zone the box does not have and nothing bound: nothing to show or keep
        kept = () if binding.tunnel is None or str(binding.tunnel) in {o.value for o in exits} \
            else (describe(binding.tunnel, by_id),)
        fallbacks = exits + _kept_fallbacks(binding, exits, by_id)
        rows.append(ZoneRow(binding.zone, network, binding, exits + kept, fallbacks))
    return Form(tuple(rows), _resolver_rows(peers, settings, set(networks), by_id))


def _resolver_rows(peers: tuple[Peer, ...], settings: Settings, present: set[str],
                   by_id: dict[int, Peer]) -> tuple[ResolverRow, ...]:
    """Every tunnel that can be an exit, has a resolver stored, or is bound to a zone of this box."""
    used = {p.id for p in exit_tunnels(peers)} | {i for i, _ in settings.resolvers}
    used |= {i for b in settings.bindings if b.zone in present for i in (b.tunnel, *b.fallbacks) if i is not None}
    resolvers = dict(settings.resolvers)
    rows = []
    for peer_id in sorted(used):
        option = describe(peer_id, by_id)
        rows.append(ResolverRow(peer_id, option.label, option.note, resolvers.get(peer_id, "")))
    return tuple(rows)


def _kept_fallbacks(binding: Binding, exits: tuple[Option, ...], by_id: dict[int, Peer]) -> tuple[Option, ...]:
    """Fallbacks the page cannot choose (several, or not usable now) as one option holding them as stored."""
    value = ",".join(map(str, binding.fallbacks))
    if not value or value in {o.value for o in exits}:
        return ()
    parts = [describe(i, by_id) for i in binding.fallbacks]
    return (Option(value, ", ".join(p.label for p in parts), next((p.note for p in parts if p.note), "")),)


def settings_from(form: Form, fields: dict[str, str], current: Settings) -> Settings:
    """The settings the posted form asks for. Raises Refused for anything but the whole form, as rendered
    for this box now, with valid values."""
    _check_whole(form, fields)
    resolvers = _resolvers(form, fields, current)
    rows = {r.zone: r for r in form.zones if r.network}
    bindings = []
    for old in current.bindings:
        new = _binding(rows[old.zone], fields) if old.zone in rows else old  # a lost zone is kept as it was
        if new != old or _used_resolvers(new, resolvers) != _used_resolvers(old, dict(current.resolvers)):
            _check_dns(new, resolvers)  # a binding kept as it was is not judged again
        bindings.append(new)
    # from the current settings: what the page does not show (stale time, probes, probe URL) stays as it was
    return current._replace(enabled="ENABLED" in fields, bindings=tuple(bindings),
                            resolvers=tuple(sorted(resolvers.items())))


def _check_whole(form: Form, fields: dict[str, str]) -> None:
    if fields.get("ACTION") != "save" or fields.get("ROWS") is None:
        raise Refused("zonevpn err incomplete")
    if fields["ROWS"] != form.rows:
        raise Refused("zonevpn err outdated")
    zones = [r.zone for r in form.zones if r.network]
    required = {"ACTION", "ROWS"} | {f"{z}_{k}" for z in zones for k in ("TUNNEL", "FALLBACK")}
    required |= {f"TUNNEL_{r.tunnel}_DNS" for r in form.resolvers}
    checkboxes = {"ENABLED"} | {f"{z}_{k}" for z in zones for k in ("KILLSWITCH", "DNS")}
    if required - set(fields):
        raise Refused("zonevpn err incomplete")
    if set(fields) - required - checkboxes:
        raise Refused("zonevpn err unknown field")
    if any(fields[k] != "on" for k in checkboxes & set(fields)):
        raise Refused("zonevpn err checkbox")  # a browser sends "on" for a ticked box, nothing otherwise


def _binding(row: ZoneRow, fields: dict[str, str]) -> Binding:
    zone, old = row.zone, row.binding
    exit_, fallback = fields[f"{zone}_TUNNEL"], fields[f"{zone}_FALLBACK"]
    if exit_ not in {o.value for o in row.exits} | {""}:
        raise Refused("zonevpn err not an exit", zone=zone)
    if fallback not in {o.value for o in row.fallbacks} | {""}:
        raise Refused("zonevpn err not a fallback", zone=zone)
    killswitch, dns = f"{zone}_KILLSWITCH" in fields, f"{zone}_DNS" in fields
    if (exit_, fallback) == (row.exit_value, row.fallback_value):
        return Binding(zone, old.tunnel, killswitch, dns, old.fallbacks)
    tunnel = int(exit_) if exit_ else None
    fallbacks = tuple(int(i) for i in fallback.split(",")) if fallback else ()
    if fallbacks and (tunnel is None or tunnel in fallbacks):
        raise Refused("zonevpn err fallback needs exit", zone=zone)
    return Binding(zone, tunnel, killswitch, dns, fallbacks)


def _used_resolvers(binding: Binding, resolvers: dict[int, str]) -> list[str | None]:
    return [resolvers.get(i) for i in (binding.tunnel, *binding.fallbacks) if i is not None]


def _check_dns(binding: Binding, resolvers: dict[int, str]) -> None:
    for peer_id in (binding.tunnel, *binding.fallbacks):
        if binding.dns and peer_id is not None and peer_id not in resolvers:
            raise Refused("zonevpn err resolver needed", zone=binding.zone, tunnel=f"wg{peer_id}")


def _resolvers(form: Form, fields: dict[str, str], current: Settings) -> dict[int, str]:
    resolvers = dict(current.resolvers)
    for row in form.resolvers:
        value = fields[f"TUNNEL_{row.tunnel}_DNS"].strip()
        if value == row.value:
            continue  # as rendered: kept exactly
        if not value:
            resolvers.pop(row.tunnel, None)
            continue
        try:
            resolvers[row.tunnel] = str(IPv4Address(value))
        except ValueError:
            raise Refused("zonevpn err resolver", tunnel=row.label) from None
    return resolvers
