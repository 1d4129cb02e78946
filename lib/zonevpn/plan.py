"""The planner: a validated Config and the tunnels' link facts in, the desired kernel state out. No I/O.

For each zone bound to tunnel wgN (k = 1 GREEN, 2 BLUE, 3 ORANGE; table 1000+k):
  pref 1010+k  from ZONE lookup main suppress_prefixlength 0    local destinations stay local
  pref 1020+k  from ZONE lookup static suppress_prefixlength 0  so do IPFire's static routes
  pref 1030+k  from ZONE lookup 100k                            default dev wgN src <tunnel address>
  pref 1040+k  from ZONE prohibit                               kill switch: never fall through to main
The kill switch is doubled inside the table (a prohibit default behind the tunnel's route) and in the firewall
(the zone may not open new connections to red), because each of the three can be undone by a different event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zonevpn.model import ZONES, Config, Exit
from zonevpn.state import (
    COMMENT,
    INBOUND_MARK,
    MAIN,
    PREF_INBOUND,
    PREF_LOCAL_MAIN,
    PREF_LOCAL_STATIC,
    PREF_REFUSE,
    PREF_TUNNEL_SOURCE,
    PREF_ZONE,
    REFUSE_METRIC,
    STATIC,
    TUNNEL_TABLE_BASE,
    ZONE_TABLE_BASE,
    Desired,
    Firewall,
    Jump,
    Route,
    Rule,
)

FILTER_CHAIN, NAT_CHAIN, MARK_CHAIN = "ZONEVPN", "ZONEVPN-NAT", "ZONEVPN-MARK"
OWN_CHAINS = (("filter", FILTER_CHAIN), ("nat", NAT_CHAIN), ("mangle", MARK_CHAIN))
JUMPS = (Jump("filter", "FORWARD", FILTER_CHAIN, before="POLICYFWD"),
         Jump("nat", "POSTROUTING", NAT_CHAIN, before="WGNAT"),
         Jump("mangle", "PREROUTING", MARK_CHAIN))


@dataclass(frozen=True)
class Link:
    """What the kernel says about a tunnel interface; the planner's only input from outside the files."""

    up: bool
    addresses: frozenset[str]


def zone_table(zone: str) -> int:
    return ZONE_TABLE_BASE + ZONES.index(zone) + 1


def tunnel_table(peer_id: int) -> int:
    return TUNNEL_TABLE_BASE + peer_id


def usable(exit_: Exit, links: Mapping[str, Link]) -> bool:
    """A tunnel can carry the zone only when it exists, is up and holds its address (the route's src)."""
    link = links.get(exit_.peer.interface)
    return bool(exit_.peer.enabled and link and link.up and str(exit_.tunnel_address) in link.addresses)


def plan(config: Config, links: Mapping[str, Link]) -> Desired:
    exits = config.exits if config.enabled else ()
    rules: set[Rule] = set()
    routes: set[Route] = set()
    main_absent: set[Route] = set()
    states = []
    for exit_ in exits:
        rules |= zone_rules(exit_)
        routes |= zone_routes(exit_, links)
        live = usable(exit_, links)
        states.append((exit_.zone.name, exit_.peer.interface if live else
                       "refused" if exit_.killswitch else "red"))
        rules.add(Rule(PREF_TUNNEL_SOURCE, f"{exit_.tunnel_address}/32", tunnel_table(exit_.peer.id)))
        if live:
            routes.add(Route(tunnel_table(exit_.peer.id), "0.0.0.0/0", dev=exit_.peer.interface,
                             src=str(exit_.tunnel_address)))
            main_absent |= {Route(MAIN, half, dev=exit_.peer.interface, proto=0)
                            for half in ("0.0.0.0/1", "128.0.0.0/1")}
    if exits:
        rules.add(Rule(PREF_INBOUND, table=MAIN, fwmark=INBOUND_MARK, fwmask=INBOUND_MARK))
    return Desired(frozenset(rules), frozenset(routes), frozenset(main_absent),
                   firewall(exits, config.red.device), bool(exits), tuple(states))


def zone_rules(exit_: Exit) -> set[Rule]:
    k = ZONES.index(exit_.zone.name) + 1
    net = str(exit_.zone.network)
    rules = {Rule(PREF_LOCAL_MAIN + k, net, MAIN, suppress_prefixlen=0),
             Rule(PREF_LOCAL_STATIC + k, net, STATIC, suppress_prefixlen=0),
             Rule(PREF_ZONE + k, net, zone_table(exit_.zone.name))}
    if exit_.killswitch:
        rules.add(Rule(PREF_REFUSE + k, net, action="prohibit"))
    return rules


def zone_routes(exit_: Exit, links: Mapping[str, Link]) -> set[Route]:
    table = zone_table(exit_.zone.name)
    routes = set()
    if usable(exit_, links):
        routes.add(Route(table, "0.0.0.0/0", dev=exit_.peer.interface, src=str(exit_.tunnel_address)))
    if exit_.killswitch:
        routes.add(Route(table, "0.0.0.0/0", kind="prohibit", metric=REFUSE_METRIC))
    return routes


def firewall(exits: tuple[Exit, ...], red: str) -> Firewall:
    """Rules in iptables-save's canonical text, so that live and desired compare as strings."""
    forward, nat, wgblock = [], [], []
    for exit_ in exits:
        zone, wg = exit_.zone, exit_.peer.interface
        # IPFire's POLICYFWD lets blue/orange out only to red: the zone may open connections into wgN.
        forward.append(f"-s {zone.network} -i {zone.device} -o {wg} -j ACCEPT")
        if exit_.killswitch:
            forward.append(f"-i {zone.device} -o {red} -j REJECT --reject-with icmp-admin-prohibited")
        nat.append(f"-s {zone.network} -o {wg} -j SNAT --to-source {exit_.tunnel_address}")
        # WGBLOCK sees packets from wg+ before conntrack: replies to the zone, and to the tunnel address.
        wgblock.append(f"-d {zone.network} -i {wg} -m comment --comment {COMMENT} -j RETURN")
    for address, wg in sorted({(str(e.tunnel_address), e.peer.interface) for e in exits}):
        wgblock.append(f"-d {address}/32 -i {wg} -m comment --comment {COMMENT} -j RETURN")
    mark = f"{INBOUND_MARK:#x}"
    marks = [f"-i {red} -m conntrack --ctstate NEW -j CONNMARK --set-xmark {mark}/{mark}",
             f"-j CONNMARK --restore-mark --nfmask {mark} --ctmask {mark}"] if exits else []
    chains = (("filter", FILTER_CHAIN, tuple(_unique(forward))), ("nat", NAT_CHAIN, tuple(nat)),
              ("mangle", MARK_CHAIN, tuple(marks)))
    return Firewall(chains if exits else (), tuple(_unique(wgblock)), JUMPS if exits else ())


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def stock_halves(config: Config, links: Mapping[str, Link]) -> frozenset[Route]:
    """The /1 routes IPFire's wireguard initscript gives every present tunnel that routes 0.0.0.0/0:
    `dev wgN src <first of the GREEN/BLUE/ORANGE addresses inside local_subnets>` — what flush gives back."""
    halves: set[Route] = set()
    for peer in config.peers:
        if peer.kind != "net" or not peer.enabled or not peer.routes_everything:
            continue
        if peer.interface not in links:
            continue
        src = next((str(z.address) for z in config.zones
                    if any(z.address in net for net in peer.local_subnets)), None)
        halves |= {Route(MAIN, half, dev=peer.interface, src=src, proto=0)
                   for half in ("0.0.0.0/1", "128.0.0.0/1")}
    return frozenset(halves)
