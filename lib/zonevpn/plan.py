"""The planner: a validated Config and the kernel's link facts in, the desired kernel state out. No I/O.

For each zone bound to a tunnel (k = 1 GREEN, 2 BLUE, 3 ORANGE; table 1000+k):
  pref 1010+k  from ZONE lookup main suppress_prefixlength 1    local destinations stay local
  pref 1020+k  from ZONE lookup static suppress_prefixlength 1  so do IPFire's static routes
(suppressing /1 too: another tunnel that routes everything keeps its 0.0.0.0/1 + 128.0.0.0/1 in main, and a
bound zone must not ride on them)
  pref 1030+k  from ZONE lookup 100k                            default dev wgN src <tunnel address>
  pref 1040+k  from ZONE prohibit                               kill switch: never fall through to main
The kill switch is doubled inside the table (a prohibit default behind the tunnel's route) and in the firewall
(the zone may not open new connections to red), because each of the three can be undone by a different event.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import NamedTuple

from zonevpn.model import ZONES, Config, Exit, Peer
from zonevpn.policy_plan import POLICY_CHAIN, PolicyPlan, plan_policies
from zonevpn.state import (
    COMMENT,
    INBOUND_MARK,
    IPFIRE_PREFS,
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

FILTER_CHAIN, KILL_CHAIN, NAT_CHAIN = "ZONEVPN", "ZONEVPN-KILL", "ZONEVPN-NAT"
DNS_CHAIN, MARK_CHAIN, MSS_CHAIN = "ZONEVPN-DNS", "ZONEVPN-MARK", "ZONEVPN-MSS"
REPLY_CHAIN = "ZONEVPN-REPLY"
OWN_CHAINS = (("filter", FILTER_CHAIN), ("filter", KILL_CHAIN), ("nat", NAT_CHAIN), ("nat", DNS_CHAIN),
              ("mangle", MARK_CHAIN), ("mangle", MSS_CHAIN), ("filter", REPLY_CHAIN), ("mangle", POLICY_CHAIN))
AT_END = ("",)  # no rule jumps to "": a Jump anchored on it goes last in its chain
# FORWARD: the kill switch before the admin's own rules (FORWARDFW), which may accept zone -> red; the
# zone's way into the tunnel after them (just before POLICYFWD), so that they still apply to it.
JUMPS = (Jump("filter", "FORWARD", KILL_CHAIN, before=("FORWARDFW", "POLICYFWD")),
         Jump("filter", "FORWARD", FILTER_CHAIN, before=("POLICYFWD",)),
         Jump("nat", "POSTROUTING", NAT_CHAIN, before=("WGNAT",)),
         Jump("nat", "PREROUTING", DNS_CHAIN), Jump("mangle", "PREROUTING", MARK_CHAIN),
         Jump("mangle", "FORWARD", MSS_CHAIN),
         # every `wireguard reload` flushes WGBLOCK and our RETURNs with it until its hook runs: replies of
         # the zone's own connections are accepted just before WGBLOCK, in chains the reload leaves alone
         Jump("filter", "FORWARD", REPLY_CHAIN, before=("WGBLOCK",)),
         # after IPFire's `-m mark --mark 0 -j CONNMARK --restore-mark`, which a device mark would skip
         Jump("mangle", "PREROUTING", POLICY_CHAIN, before=AT_END))
OWN_CHAINS6 = (("filter", FILTER_CHAIN),)
JUMPS6 = (Jump("filter", "FORWARD", FILTER_CHAIN),)


class Link(NamedTuple):
    """What the kernel says about an interface; with handshake ages, the planner's only outside input."""

    up: bool
    addresses: frozenset[str]


def zone_table(zone: str) -> int:
    return ZONE_TABLE_BASE + ZONES.index(zone) + 1


def tunnel_table(peer_id: int) -> int:
    return TUNNEL_TABLE_BASE + peer_id


def usable(peer: Peer, links: Mapping[str, Link]) -> bool:
    """A tunnel can carry traffic only when it exists, is up and holds its address (the route's src)."""
    link = links.get(peer.interface)
    return bool(peer.enabled and link and link.up and peer.address in link.addresses)


def choose(exit_: Exit, links: Mapping[str, Link], ages: Mapping[str, int | None],
           stale_after: int, down: AbstractSet[str] = frozenset()) -> Peer | None:
    """The tunnel the zone uses now. Without fallbacks: the bound tunnel whenever it is usable. With them:
    the first usable one the watcher does not find silent (`down`) whose latest handshake is fresh, else
    the first not yet known to be stale; none left: None (the kill switch holds)."""
    if not exit_.fallbacks:
        return exit_.peer if usable(exit_.peer, links) else None
    live = [peer for peer in exit_.candidates if usable(peer, links) and peer.interface not in down]
    fresh = [p for p in live if (ages.get(p.interface) or 0) <= stale_after and p.interface in ages]
    unknown = [p for p in live if ages.get(p.interface) is None]  # wg could not be read: benefit of doubt
    return next(iter(fresh or unknown), None)


def plan(config: Config, links: Mapping[str, Link], ages: Mapping[str, int | None] | None = None,
         down: AbstractSet[str] = frozenset()) -> Desired:
    exits = config.exits if config.enabled else ()
    if config.held:  # stopped, restarting or upgrading: no zone moves, none leaves through red
        exits = tuple(e._replace(killswitch=True) for e in exits)
    rules: set[Rule] = set()
    routes: set[Route] = set()
    main_absent: set[Route] = set()
    states, chosen = [], {}
    for exit_ in exits:
        peer = None if config.held else choose(exit_, links, ages or {}, config.stale_after, down)
        chosen[exit_.zone.name] = peer
        rules |= zone_rules(exit_)
        routes |= zone_routes(exit_, peer)
        states.append((exit_.zone.name, peer.interface if peer else
                       "refused" if exit_.killswitch else "red"))
    # a policy has what choose() reads of a zone's exit: its tunnel, fallbacks and candidates
    policies = plan_policies(config, lambda p: choose(p, links, ages or {}, config.stale_after, down))  # type: ignore[arg-type]
    rules |= policies.rules
    routes |= policies.routes
    for peer in {p for e in exits for p in e.candidates} | policies.tunnels:
        rules.add(Rule(PREF_TUNNEL_SOURCE, f"{peer.address}/32", tunnel_table(peer.id)))
        if usable(peer, links):  # every usable candidate is an exit: none may hijack the main table
            routes.add(Route(tunnel_table(peer.id), "0.0.0.0/0", dev=peer.interface, src=peer.address))
            main_absent |= {Route(MAIN, half, dev=peer.interface, proto=0)
                            for half in ("0.0.0.0/1", "128.0.0.0/1")}
    if exits:
        rules.add(Rule(PREF_INBOUND, table=MAIN, fwmark=INBOUND_MARK, fwmask=INBOUND_MARK))
    # our `lookup static` rules make IPFire's static-routes (`ip rule | grep -q static`) skip its own
    base = frozenset({Rule(IPFIRE_PREFS[STATIC], None, STATIC, proto=0)}) if rules else frozenset()
    return Desired(frozenset(rules), frozenset(routes), frozenset(main_absent),
                   firewall(exits, chosen, config, policies), firewall6(exits, config.red.device, policies),
                   bool(rules), tuple(states), base, policies.exits)


def zone_rules(exit_: Exit) -> set[Rule]:
    k = ZONES.index(exit_.zone.name) + 1
    net = str(exit_.zone.network)
    rules = {Rule(PREF_LOCAL_MAIN + k, net, MAIN, suppress_prefixlen=1),
             Rule(PREF_LOCAL_STATIC + k, net, STATIC, suppress_prefixlen=1),
             Rule(PREF_ZONE + k, net, zone_table(exit_.zone.name))}
    if exit_.killswitch:
        rules.add(Rule(PREF_REFUSE + k, net, action="prohibit"))
    return rules


def zone_routes(exit_: Exit, peer: Peer | None) -> set[Route]:
    table = zone_table(exit_.zone.name)
    routes = set()
    if peer:
        routes.add(Route(table, "0.0.0.0/0", dev=peer.interface, src=peer.address))
    if exit_.killswitch:
        routes.add(Route(table, "0.0.0.0/0", kind="prohibit", metric=REFUSE_METRIC))
    return routes


def firewall(exits: tuple[Exit, ...], chosen: Mapping[str, Peer | None], config: Config,
             policies: PolicyPlan | None = None) -> Firewall:
    """Rules in iptables-save's canonical text, so that live and desired compare as strings. The policies'
    rules come first in each chain: the first match wins, as in the routing rules."""
    red = config.red.device
    p = policies or plan_policies(config._replace(policies=()), lambda _: None)
    forward, kill, nat, dns = list(p.forward), list(p.kill), list(p.nat), list(p.dns)
    mss: list[str] = []
    wgblock = list(p.wgblock)
    # a policy device's replies pass a reload's emptied WGBLOCK the way a zone's do (see REPLY_CHAIN)
    replies = [spec.replace(f" -m comment --comment {COMMENT} -j RETURN",
                            " -m conntrack --ctstate ESTABLISHED -j ACCEPT") for spec in p.wgblock]
    for exit_ in exits:
        zone = exit_.zone
        for peer in exit_.candidates:
            wg = peer.interface
            # IPFire's POLICYFWD lets blue/orange out only to red: the zone may open connections into wgN.
            forward.append(f"-s {zone.network} -i {zone.device} -o {wg} -j ACCEPT")
            nat.append(f"-s {zone.network} -o {wg} -j SNAT --to-source {peer.address}")
            # WGBLOCK sees packets from wg+ before conntrack: replies to the zone must pass it.
            wgblock.append(f"-d {zone.network} -i {wg} -m comment --comment {COMMENT} -j RETURN")
            replies.append(f"-d {zone.network} -i {wg} -m conntrack --ctstate ESTABLISHED -j ACCEPT")
            mss.append(f"-o {wg} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu")
        if exit_.killswitch:
            kill.append(f"-i {zone.device} -o {red} -j REJECT --reject-with icmp-admin-prohibited")
        active = chosen.get(zone.name)
        resolver = config.resolver(active.id if active else exit_.peer.id)
        # DNS follows the zone: through the chosen tunnel; refused with it when the kill switch holds.
        if exit_.dns and resolver and (active or exit_.killswitch):
            dns += [f"-i {zone.device} -p {proto} -m {proto} --dport 53 -j DNAT --to-destination {resolver}"
                    for proto in ("udp", "tcp")]
    tunnels = {t for e in exits for t in e.candidates} | p.tunnels
    mss += [f"-o {wg} -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu"
            for wg in sorted({t.interface for t in p.tunnels})]
    for address, wg in sorted({(t.address, t.interface) for t in tunnels}):
        wgblock.append(f"-d {address}/32 -i {wg} -m comment --comment {COMMENT} -j RETURN")
    mark = f"{INBOUND_MARK:#x}"
    marks = [f"-i {red} -m conntrack --ctstate NEW -j CONNMARK --set-xmark {mark}/{mark}",
             f"-j CONNMARK --restore-mark --nfmask {mark} --ctmask {mark}"] if exits or p.rules else []
    chains = tuple((table, chain, tuple(_unique(specs))) for (table, chain), specs in zip(
        OWN_CHAINS, (forward, kill, nat, dns, marks, mss, replies, list(p.marks)), strict=True) if specs)
    return Firewall(chains, tuple(_unique(wgblock)), _jumps_for(chains, JUMPS))


def firewall6(exits: tuple[Exit, ...], red: str, policies: PolicyPlan | None = None) -> Firewall:
    """The tunnels carry IPv4 only: a bound zone's IPv6 has no way out but red, so it is refused (a
    MAC-selected device's too; before the zones', as the first match wins)."""
    specs = tuple(_unique([*(policies.ipv6 if policies else ()), *(
        f"-i {e.zone.device} -o {red} -j REJECT --reject-with icmp6-adm-prohibited" for e in exits)]))
    chains = (("filter", FILTER_CHAIN, specs),) if specs else ()
    return Firewall(chains, (), _jumps_for(chains, JUMPS6))


def _jumps_for(chains: tuple[tuple[str, str, tuple[str, ...]], ...],
               jumps: tuple[Jump, ...]) -> tuple[Jump, ...]:
    wanted = {(table, chain) for table, chain, _ in chains}
    return tuple(j for j in jumps if (j.table, j.target) in wanted)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

