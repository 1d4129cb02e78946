"""Load and cross-check every input into one validated Config (or one InputError naming file/line/field)."""

from __future__ import annotations

from zonevpn.errors import InputError
from zonevpn.ipfire import read_client_pool, read_peers, read_red, read_wg_settings, read_zones
from zonevpn.model import Binding, Config, Exit, Peer, Settings, Zone
from zonevpn.paths import Paths
from zonevpn.readhash import parse_strict, read_text
from zonevpn.settings import read_settings


def load(paths: Paths, with_settings: bool = True) -> Config:
    """with_settings=False: IPFire's files only, as if zonevpn were disabled (what `flush` needs, so that
    a broken zonevpn settings file can never stop an admin from removing zonevpn's state)."""
    settings = read_settings(paths) if with_settings else Settings(False, ())
    zones = read_zones(paths)
    peers = read_peers(paths)
    wg = read_wg_settings(paths)
    pool = read_client_pool(paths.wg_settings, wg)
    exits, warnings = [], []
    if settings.enabled:
        for binding in settings.bindings:
            if binding.tunnel is None:
                continue
            exit_ = _exit(paths, settings, binding, zones, peers)
            if not exit_.peer.enabled or wg.get("ENABLED") != "on":
                warnings.append(f"{binding.zone}: tunnel {exit_.peer.name} ({exit_.peer.interface}) "
                                "is disabled: " + ("kill switch holds" if binding.killswitch
                                                   else "exits through red"))
            exits.append(exit_)
    return Config(settings.enabled, zones, peers, read_red(paths), tuple(exits), pool,
                  tuple(warnings))


def _exit(paths: Paths, settings: Settings, binding: Binding, zones: tuple[Zone, ...],
          peers: tuple[Peer, ...]) -> Exit:
    key = f"{binding.zone}_TUNNEL"
    line = _line_of(paths, key)

    def bad(why: str) -> InputError:
        return InputError(paths.settings, why, line, key)

    zone = next((z for z in zones if z.name == binding.zone), None)
    if zone is None:
        raise bad(f"zone {binding.zone} does not exist on this box ({paths.ethernet_settings})")
    peer = next((p for p in peers if p.id == binding.tunnel), None)
    if peer is None:
        raise bad(f"no WireGuard peer with id {binding.tunnel} in {paths.wg_peers}")
    if peer.kind != "net":
        raise bad(f"peer {binding.tunnel} ({peer.name}) is a road warrior, not a net-to-net tunnel")
    if not peer.routes_everything:
        raise bad(f"tunnel {peer.name} ({peer.interface}) does not route 0.0.0.0/0 "
                  f"(remote subnets on {paths.wg_peers}:{peer.line}), so it cannot be an exit")
    if peer.local_address is None:
        raise bad(f"tunnel {peer.name} ({peer.interface}) has no local address "
                  f"({paths.wg_peers}:{peer.line} field local_address; IPFire clears it when the "
                  "peer is edited): zonevpn needs it to send the zone's traffic from it")
    return Exit(zone, peer, binding.killswitch)


def _line_of(paths: Paths, key: str) -> int | None:
    try:
        return parse_strict(read_text(paths.settings), paths.settings).get(key, ("", None))[1]
    except InputError:
        return None
