"""What zonevpn knows about the box: small frozen values built by the readers, used by the planner."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import NamedTuple

ZONES = ("GREEN", "BLUE", "ORANGE")  # the zones that can be bound; red is the way out
EVERYWHERE = IPv4Network("0.0.0.0/0")


class Zone(NamedTuple):
    name: str  # GREEN, BLUE, ORANGE
    device: str  # green0, blue0, orange0
    address: IPv4Address  # the firewall's own address in the zone
    network: IPv4Network


class Peer(NamedTuple):
    """One row of /var/ipfire/wireguard/peers."""

    id: int
    enabled: bool
    kind: str  # "net" (net-to-net, interface wg<id>) or "host" (road warrior on wg0)
    name: str
    remote_subnets: tuple[IPv4Network, ...]
    local_subnets: tuple[IPv4Network, ...]
    local_address: IPv4Interface | None
    line: int  # where it is in the peers file, for error messages

    @property
    def interface(self) -> str:
        return f"wg{self.id}"

    @property
    def address(self) -> str:
        """The tunnel's own address (validated present for every exit by config.load)."""
        return str(self.local_address.ip) if self.local_address else ""

    @property
    def routes_everything(self) -> bool:
        return EVERYWHERE in self.remote_subnets


class Red(NamedTuple):
    device: str  # red0, ppp0
    gateway: IPv4Address | None


class Binding(NamedTuple):
    """A zone's chosen exit: a net-to-net tunnel (peer id), or None for directly through red."""

    zone: str
    tunnel: int | None
    killswitch: bool
    dns: bool = False  # the zone's DNS goes to the tunnel's resolver
    fallbacks: tuple[int, ...] = ()  # tunnels to use, in order, while the first is missing or stale


class Settings(NamedTuple):
    enabled: bool
    bindings: tuple[Binding, ...]  # one per zone named in the file, in ZONES order
    resolvers: tuple[tuple[int, str], ...] = ()  # (peer id, resolver address reached through it)
    stale_after: int = 180  # seconds since the latest handshake after which a tunnel counts as stale
    probes: tuple[tuple[int, str], ...] = ()  # (peer id, address the watcher pings through that tunnel)
    probe_url: str = ""  # the "what is my address" service `zonevpn probe` asks through each exit; "" = none

    def probe_target(self, peer_id: int) -> str | None:
        """Where the watcher's probe through the tunnel goes: the admin's target, else its resolver."""
        return dict(self.probes).get(peer_id) or dict(self.resolvers).get(peer_id)

    def binding(self, zone: str) -> Binding:
        for binding in self.bindings:
            if binding.zone == zone:
                return binding
        return Binding(zone, None, True)


class Exit(NamedTuple):
    """A validated binding: the zone leaves through this tunnel (or, while it is missing or stale, the
    first healthy one of its fallbacks)."""

    zone: Zone
    peer: Peer
    killswitch: bool
    dns: bool = False
    fallbacks: tuple[Peer, ...] = ()

    @property
    def candidates(self) -> tuple[Peer, ...]:
        return (self.peer, *self.fallbacks)


class Config(NamedTuple):
    """Everything the planner needs, all of it validated."""

    enabled: bool
    zones: tuple[Zone, ...]
    peers: tuple[Peer, ...]
    red: Red
    exits: tuple[Exit, ...]
    client_pool: IPv4Network | None  # road-warrior pool (wg0)
    warnings: tuple[str, ...] = ()
    resolvers: tuple[tuple[int, str], ...] = ()
    stale_after: int = 180
    held: bool = False  # `zonevpn hold` (the initscript's stop): every bound zone refused until start
    policies: tuple[PolicyExit, ...] = ()  # enabled exit policies, in order: first match wins

    def resolver(self, peer_id: int) -> str | None:
        return dict(self.resolvers).get(peer_id)

    def zone(self, name: str) -> Zone | None:
        return next((z for z in self.zones if z.name == name), None)

    def peer(self, peer_id: int) -> Peer | None:
        return next((p for p in self.peers if p.id == peer_id), None)


# --- exit policies (policies.py reads them, policy_config.py validates them, policy_plan.py plans them) ---

WAYS = ("tunnel", "red", "block")  # where a policy's traffic leaves: a tunnel, directly through red, nowhere


class Selector(NamedTuple):
    """One part of a policy's traffic that the kernel can match on its own: a source (address or MAC) and,
    optionally, a destination network and a protocol with a destination port range."""

    src: IPv4Network | None  # None when the source is a MAC
    mac: str | None = None  # "aa:bb:cc:dd:ee:ff", as iptables-save prints it
    dst: IPv4Network | None = None  # None: any destination
    proto: str | None = None  # "tcp" | "udp" | None (any)
    ports: tuple[int, int] | None = None  # destination ports, first..last (with proto)


class Policy(NamedTuple):
    """One row of /var/ipfire/zonevpn/policies, syntax-checked (names of host objects not yet resolved)."""

    number: int  # the row's key: its position in the list (1 = first), as IPFire's firewall rules
    enabled: bool
    source_type: str  # addr | mac | zone | host | network | group
    source: str
    destinations: tuple[IPv4Network, ...]  # () = any
    proto: str | None
    ports: tuple[int, int] | None
    way: str  # one of WAYS
    tunnel: int | None  # peer id when way == "tunnel"
    fallbacks: tuple[int, ...] = ()
    killswitch: bool = True
    dns: bool = False
    remark: str = ""
    line: int = 0  # where it is in the policies file


class PolicyExit(NamedTuple):
    """A validated, enabled policy: its sources resolved into kernel selectors, its tunnels into peers."""

    slot: int  # 0-based position in the file: fixes its rule preferences and table (state.py)
    policy: Policy
    selectors: tuple[Selector, ...]
    peer: Peer | None = None  # way == "tunnel"
    fallbacks: tuple[Peer, ...] = ()

    @property
    def candidates(self) -> tuple[Peer, ...]:
        return (self.peer, *self.fallbacks) if self.peer else ()

    @property
    def way(self) -> str:
        return self.policy.way

    @property
    def killswitch(self) -> bool:
        return self.policy.killswitch

    @property
    def dns(self) -> bool:
        return self.policy.dns
