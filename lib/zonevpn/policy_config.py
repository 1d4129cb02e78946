"""Cross-check the policies file against the box: host objects resolved, sources inside a zone, tunnels
that can be exits, resolvers for DNS; and warn about a policy that earlier ones cover entirely."""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Network

from zonevpn import fwhosts
from zonevpn.errors import InputError
from zonevpn.model import Peer, Policy, PolicyExit, Selector, Settings, Zone
from zonevpn.paths import Paths
from zonevpn.policies import read_policies


def load_policies(paths: Paths, settings: Settings, zones: tuple[Zone, ...], peers: tuple[Peer, ...],
                  wireguard_on: bool) -> tuple[tuple[PolicyExit, ...], list[str]]:
    rows = read_policies(paths)
    if not rows:
        return (), []
    objects = fwhosts.read_fwhosts(paths) if any(
        p.source_type in ("host", "network", "group") for p in rows) else None
    found: list[PolicyExit] = []
    coverage = Coverage()
    warnings: list[str] = []
    for slot, policy in enumerate(rows):
        if not policy.enabled:
            continue
        selectors = _selectors(paths, policy, zones, objects)
        name = describe(policy)
        if not selectors:
            warnings.append(f"{name}: group {policy.source!r} has no members: the policy matches nothing")
            continue
        exit_ = PolicyExit(slot, policy, selectors, *_tunnels(paths, settings, policy, peers))
        for peer in exit_.candidates:
            if not peer.enabled or not wireguard_on:
                warnings.append(f"{name}: tunnel {peer.name} ({peer.interface}) is disabled")
        earlier = coverage.first_covering(selectors)
        if earlier is not None:
            warnings.append(f"{name} can never match: {describe(earlier.policy)} "
                            f"({paths.policies}:{earlier.policy.line}) covers it entirely")
        found.append(exit_)
        coverage.add(exit_)
    return tuple(found), warnings


def check_policy(paths: Paths, settings: Settings, zones: tuple[Zone, ...], peers: tuple[Peer, ...],
                 policy: Policy) -> None:
    """The cross-checks load_policies makes, for one policy: the web page refuses a policy that would stop
    every later apply, before it is written."""
    kinds = ("host", "network", "group")
    objects = fwhosts.read_fwhosts(paths) if policy.source_type in kinds else None
    _selectors(paths, policy, zones, objects)
    _tunnels(paths, settings, policy, peers)


class Coverage:
    """The policies so far, indexed by source, to find the first one that matches everything a later one
    matches (so the later never does). Comparing each policy with every earlier one made 20 000 `covers`
    calls per run for 200 policies; here a selector meets only the earlier ones with its MAC or a source
    network holding its own (one lookup per prefix length in use)."""

    def __init__(self) -> None:
        self.exits: list[PolicyExit] = []
        self.by_mac: dict[str, list[tuple[int, Selector]]] = {}
        self.by_net: dict[tuple[int, int], list[tuple[int, Selector]]] = {}  # (prefix length, network)
        self.lengths: set[int] = set()

    def add(self, exit_: PolicyExit) -> None:
        at = len(self.exits)
        self.exits.append(exit_)
        for sel in exit_.selectors:
            if sel.mac is not None:
                self.by_mac.setdefault(sel.mac, []).append((at, sel))
            if sel.src is not None:
                self.by_net.setdefault((sel.src.prefixlen, int(sel.src.network_address)), []).append((at, sel))
                self.lengths.add(sel.src.prefixlen)

    def first_covering(self, selectors: Iterable[Selector]) -> PolicyExit | None:
        common: set[int] | None = None
        for sel in selectors:
            found = {at for at, earlier in self._sources(sel) if covers(earlier, sel)}
            common = found if common is None else common & found
            if not common:
                return None
        if common is None:  # no selector: every earlier policy covers it, as covers_all says
            return self.exits[0] if self.exits else None
        return self.exits[min(common)]

    def _sources(self, sel: Selector) -> list[tuple[int, Selector]]:
        """The earlier selectors whose source holds this one's: the only ones that can cover it."""
        if sel.mac is not None:
            return self.by_mac.get(sel.mac, [])
        if sel.src is None:
            return []
        address = int(sel.src.network_address)
        return [item for length in self.lengths if length <= sel.src.prefixlen
                for item in self.by_net.get((length, address & (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF), [])]


def describe(policy: Policy) -> str:
    return f"policy {policy.number} ({policy.source_type} {policy.source})"


def _selectors(paths: Paths, policy: Policy, zones: tuple[Zone, ...],
               objects: fwhosts.HostObjects | None) -> tuple[Selector, ...]:
    def bad(why: str, field: str = "source") -> InputError:
        return InputError(paths.policies, why, policy.line, field)

    nets = {z.name: z.network for z in zones}
    kind, name = policy.source_type, policy.source
    members: tuple[fwhosts.Member, ...]
    if kind == "addr":
        members = (IPv4Network(name),)
    elif kind == "mac":
        members = (name,)
    elif kind == "zone":
        if name not in nets:
            raise bad(f"zone {name} does not exist on this box ({paths.ethernet_settings})")
        members = (nets[name],)
    else:
        assert objects is not None
        known = set(objects.names()[kind])
        if name not in known:
            file = {"host": paths.fwhosts_hosts, "network": paths.fwhosts_networks,
                    "group": paths.fwhosts_groups}[kind]
            raise bad(f"no {kind} {name!r} among IPFire's host objects ({file})")
        members = ((fwhosts.host(objects, name),) if kind == "host" else
                   (fwhosts.network(objects, name),) if kind == "network" else
                   fwhosts.group(objects, name, nets))
    for member in members:
        if isinstance(member, IPv4Network) and not any(member.subnet_of(net) for net in nets.values()):
            where = "" if kind in ("addr", "zone") else f" ({kind} {name!r} in IPFire's host objects)"
            raise bad(f"{member}{where} is inside no zone ("
                      + ", ".join(f"{z} {n}" for z, n in nets.items()) + ")")
    dsts: tuple[IPv4Network | None, ...] = policy.destinations or (None,)
    unique = dict.fromkeys(
        Selector(m if isinstance(m, IPv4Network) else None, None if isinstance(m, IPv4Network) else m,
                 dst, policy.proto, policy.ports)
        for m in members for dst in dsts)
    return tuple(unique)


def _tunnels(paths: Paths, settings: Settings, policy: Policy,
             peers: tuple[Peer, ...]) -> tuple[Peer | None, tuple[Peer, ...]]:
    from zonevpn.config import _exit_peer

    if policy.way != "tunnel":
        if policy.dns:
            raise InputError(paths.policies, "DNS through the tunnel needs a tunnel as exit", policy.line,
                             "dns")
        return None, ()
    assert policy.tunnel is not None
    primary = _exit_peer(paths, policy.line, "exit", policy.tunnel, peers, paths.policies)
    fallbacks = tuple(_exit_peer(paths, policy.line, "fallbacks", peer_id, peers, paths.policies)
                      for peer_id in dict.fromkeys(policy.fallbacks) if peer_id != policy.tunnel)
    if policy.dns:
        if policy.destinations or policy.proto:
            raise InputError(paths.policies, "DNS through the tunnel needs destination any (the resolver "
                             "is reached through the tunnel)", policy.line, "dns")
        resolvers = dict(settings.resolvers)
        for peer in (primary, *fallbacks):
            if peer.id not in resolvers:
                raise InputError(paths.policies, f"DNS through the tunnel needs TUNNEL_{peer.id}_DNS in "
                                 f"{paths.settings}, the resolver to use through {peer.name} "
                                 f"({peer.interface})", policy.line, "dns")
    return primary, fallbacks


def covers(a: Selector, b: Selector) -> bool:
    """Every packet `b` matches, `a` matches too."""
    source = (a.mac is not None and a.mac == b.mac) or (
        a.src is not None and b.src is not None and b.src.subnet_of(a.src))
    dst = a.dst is None or (b.dst is not None and b.dst.subnet_of(a.dst))
    proto = a.proto is None or a.proto == b.proto
    ports = a.ports is None or (b.ports is not None and a.ports[0] <= b.ports[0] and b.ports[1] <= a.ports[1])
    return source and dst and proto and ports


def covers_all(earlier: tuple[Selector, ...], later: tuple[Selector, ...]) -> bool:
    return all(any(covers(a, b) for a in earlier) for b in later)
