"""Load and cross-check every input into one validated Config (or one InputError naming file/line/field)."""

from __future__ import annotations

from zonevpn.errors import InputError
from zonevpn.ipfire import read_client_pool, read_peers, read_red, read_wg_settings, read_zones
from zonevpn.model import Binding, Config, Exit, Peer, PolicyExit, Settings, Zone
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
        lines = _lines(paths)
        for binding in settings.bindings:
            if binding.tunnel is None:
                continue
            exit_ = _exit(paths, lines, settings, binding, zones, peers)
            for peer in exit_.candidates:
                if not peer.enabled or wg.get("ENABLED") != "on":
                    warnings.append(f"{binding.zone}: tunnel {peer.name} ({peer.interface}) is disabled")
            exits.append(exit_)
    policies: tuple[PolicyExit, ...] = ()
    if settings.enabled:
        from zonevpn.policy_config import load_policies

        policies, policy_warnings = load_policies(paths, settings, zones, peers, wg.get("ENABLED") == "on")
        warnings += policy_warnings
    return Config(settings.enabled, zones, peers, read_red(paths), tuple(exits), pool,
                  tuple(warnings), settings.resolvers, settings.stale_after, policies=policies)


def _exit(paths: Paths, lines: dict[str, int], settings: Settings, binding: Binding,
          zones: tuple[Zone, ...], peers: tuple[Peer, ...]) -> Exit:
    key = f"{binding.zone}_TUNNEL"
    zone = next((z for z in zones if z.name == binding.zone), None)
    if zone is None:
        raise InputError(paths.settings, f"zone {binding.zone} does not exist on this box "
                         f"({paths.ethernet_settings})", lines.get(key), key)
    assert binding.tunnel is not None
    primary = _exit_peer(paths, lines.get(key), key, binding.tunnel, peers)
    fallback_key = f"{binding.zone}_FALLBACK"
    fallbacks = tuple(_exit_peer(paths, lines.get(fallback_key), fallback_key, peer_id, peers)
                      for peer_id in binding.fallbacks if peer_id != binding.tunnel)
    if binding.dns:
        resolvers = dict(settings.resolvers)
        for peer in (primary, *fallbacks):
            if peer.id not in resolvers:
                raise InputError(paths.settings, f"DNS through the tunnel needs TUNNEL_{peer.id}_DNS, "
                                 f"the resolver to use through {peer.name} ({peer.interface})",
                                 lines.get(f"{binding.zone}_DNS"), f"{binding.zone}_DNS")
    return Exit(zone, primary, binding.killswitch, binding.dns, fallbacks)


def _exit_peer(paths: Paths, line: int | None, key: str, peer_id: int, peers: tuple[Peer, ...],
               path: str | None = None) -> Peer:
    """`path`: the file that names the tunnel (zonevpn's settings unless a policy does)."""
    def bad(why: str) -> InputError:
        return InputError(path or paths.settings, why, line, key)

    peer = next((p for p in peers if p.id == peer_id), None)
    if peer is None:
        raise bad(f"no WireGuard peer with id {peer_id} in {paths.wg_peers}")
    if peer.kind != "net":
        raise bad(f"peer {peer_id} ({peer.name}) is a road warrior, not a net-to-net tunnel")
    if not peer.routes_everything:
        raise bad(f"tunnel {peer.name} ({peer.interface}) does not route 0.0.0.0/0 "
                  f"(remote subnets on {paths.wg_peers}:{peer.line}), so it cannot be an exit")
    if peer.local_address is None:
        raise bad(f"tunnel {peer.name} ({peer.interface}) has no local address "
                  f"({paths.wg_peers}:{peer.line} field local_address; IPFire clears it when the "
                  "peer is edited): zonevpn needs it to send the zone's traffic from it")
    return peer


def _lines(paths: Paths) -> dict[str, int]:
    """Key -> line in zonevpn's settings, for error messages (the file parsed cleanly already)."""
    return {key: line for key, (_, line) in parse_strict(read_text(paths.settings), paths.settings).items()}
