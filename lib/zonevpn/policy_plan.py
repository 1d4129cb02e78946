"""The exit policies' part of the plan: pure, called from plan.plan(). Preferences and tables: state.py.

Per policy slot i (P = 200+4i, table 2000+i), for each of its selectors S (`from ADDR` or `fwmark DEVICE`,
with `to NET`, `ipproto`, `dport` when the policy names a destination, protocol or port):

  exit tunnel  P   S lookup main suppress_prefixlength 1   local destinations stay local
               P+1 S lookup static suppress_prefixlength 1 so do IPFire's static routes
               P+2 S lookup 2000+i                       default dev wgN src <tunnel address>
               P+3 S prohibit   (kill switch off: S lookup main, i.e. direct through red)
  exit red     P+1 S lookup static, P+2 S lookup main,   P+3 S prohibit (red down: refused, never the
                                                          zone's tunnel or a later policy's)
  block        P   S lookup main suppress_prefixlength 1, P+1 the same for static, P+3 S prohibit

In the firewall, policies come before the zones in each chain, in order, so the first match wins there as in
the rules: ZONEVPN-KILL refuses or lets (RETURN) a policy's traffic to red before a zone's refusal,
ZONEVPN-DNS DNATs or lets its DNS go; ZONEVPN accepts it into its tunnels (IPFire's policy lets blue and
orange out only to red), ZONEVPN-NAT SNATs it to the tunnel address, WGBLOCK lets the replies in, and
ZONEVPN-POLICY (mangle PREROUTING, last) marks MAC-selected devices (see state.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from zonevpn.model import Config, Peer, PolicyExit, Selector
from zonevpn.state import (
    ALIVE_MARK,
    COMMENT,
    INBOUND_MARK,
    MAC_MARK_MASK,
    MAC_MARK_SHIFT,
    MAIN,
    POLICY_PREF_BASE,
    POLICY_PREF_STEP,
    POLICY_TABLE_BASE,
    PREF_POLICY_INBOUND,
    REFUSE_METRIC,
    STATIC,
    Route,
    Rule,
)

POLICY_CHAIN = "ZONEVPN-POLICY"
Chooser = Callable[[PolicyExit], "Peer | None"]


class PolicyPlan(NamedTuple):
    rules: frozenset[Rule]
    routes: frozenset[Route]
    tunnels: frozenset[Peer]  # every candidate tunnel: exits (tunnel-address rule, /1 routes out of main)
    forward: tuple[str, ...]  # filter ZONEVPN: into the tunnels
    kill: tuple[str, ...]  # filter ZONEVPN-KILL: to red, refused or let through, before the zones'
    nat: tuple[str, ...]  # nat ZONEVPN-NAT
    dns: tuple[str, ...]  # nat ZONEVPN-DNS, before the zones'
    wgblock: tuple[str, ...]
    marks: tuple[str, ...]  # mangle ZONEVPN-POLICY
    ipv6: tuple[str, ...]  # ip6tables ZONEVPN, before the zones'
    exits: tuple[tuple[int, str], ...]  # (policy number, wgN | refused | red | blocked)


def pref(slot: int, step: int) -> int:
    return POLICY_PREF_BASE + POLICY_PREF_STEP * slot + step


def table(slot: int) -> int:
    return POLICY_TABLE_BASE + slot


def device_ids(policies: tuple[PolicyExit, ...]) -> dict[str, int]:
    """MAC -> device id (1, 2 ... in order of first appearance): the mark its packets carry."""
    macs = dict.fromkeys(s.mac for p in policies for s in p.selectors if s.mac)
    return {mac: index for index, mac in enumerate(macs, start=1)}


def plan_policies(config: Config, choose: Chooser) -> PolicyPlan:
    policies = config.policies if config.enabled else ()
    ids = device_ids(policies)
    red = config.red.device
    rules: set[Rule] = set()
    routes: set[Route] = set()
    chains: dict[str, list[str]] = {name: [] for name in PolicyPlan._fields[3:10]}
    exits = []
    # whether some zone or policy DNATs DNS: once per plan, not once per selector (200 policies: 40 000 looks)
    others_dnat = any(e.dns for e in config.exits) or any(e.dns for e in config.policies)
    for policy in policies:
        peer = None if config.held or policy.way != "tunnel" else choose(policy)
        killswitch = policy.killswitch or config.held
        for sel in policy.selectors:
            rules |= _rules(policy, sel, ids, killswitch)
            _firewall(chains, policy, sel, ids, red, killswitch, peer, config, others_dnat)
        if policy.way == "tunnel":
            if peer:
                routes.add(Route(table(policy.slot), "0.0.0.0/0", dev=peer.interface, src=peer.address))
            if killswitch:
                routes.add(Route(table(policy.slot), "0.0.0.0/0", kind="prohibit", metric=REFUSE_METRIC))
        exits.append((policy.policy.number, peer.interface if peer else "blocked" if policy.way == "block"
                      else "red" if policy.way == "red" or not killswitch else "refused"))
    if policies:
        rules.add(Rule(PREF_POLICY_INBOUND, table=MAIN, fwmark=INBOUND_MARK, fwmask=INBOUND_MARK))
    rules |= _alive_guard(config, policies)
    if ids:
        chains["marks"] = _marks(ids)
    final = {name: tuple(dict.fromkeys(specs)) for name, specs in chains.items()}
    return PolicyPlan(frozenset(rules), frozenset(routes), frozenset(p for e in policies for p in e.candidates),
                      final["forward"], final["kill"], final["nat"], final["dns"], final["wgblock"],
                      final["marks"], final["ipv6"], tuple(exits))


def _selector(sel: Selector, ids: Mapping[str, int]) -> dict[str, object]:
    fields: dict[str, object] = {"src": str(sel.src) if sel.src else None,
                                 "dst": str(sel.dst) if sel.dst else None,
                                 "ipproto": sel.proto, "dport": sel.ports}
    if sel.mac:
        fields.update(fwmark=ids[sel.mac] << MAC_MARK_SHIFT, fwmask=MAC_MARK_MASK)
    return fields


def _rules(policy: PolicyExit, sel: Selector, ids: Mapping[str, int], killswitch: bool) -> set[Rule]:
    s, slot = _selector(sel, ids), policy.slot

    def rule(step: int, **what: object) -> Rule:
        return Rule(pref(slot, step), **s, **what)  # type: ignore[arg-type]

    local = {rule(0, table=MAIN, suppress_prefixlen=1), rule(1, table=STATIC, suppress_prefixlen=1)}
    if policy.way == "tunnel":
        last = rule(3, action="prohibit") if killswitch else rule(3, table=MAIN)
        return local | {rule(2, table=table(slot)), last}
    if policy.way == "red":
        return {rule(1, table=STATIC), rule(2, table=MAIN), rule(3, action="prohibit")}
    return local | {rule(3, action="prohibit")}


def _alive_guard(config: Config, policies: tuple[PolicyExit, ...]) -> set[Rule]:
    """From the first MAC policy whose traffic must never reach red: while the firewall is flushed (no
    packet carries ALIVE_MARK) the zones' unmarked traffic is refused, local destinations kept."""
    first = next((p for p in policies if any(s.mac for s in p.selectors)
                  and (p.way == "block" or (p.way == "tunnel" and (p.killswitch or config.held)))), None)
    if first is None:
        return set()
    guard: set[Rule] = set()
    for zone in config.zones:
        net = str(zone.network)
        guard.add(Rule(pref(first.slot, 0), net, MAIN, fwmark=0, fwmask=ALIVE_MARK, suppress_prefixlen=1))
        guard.add(Rule(pref(first.slot, 3), net, action="prohibit", fwmark=0, fwmask=ALIVE_MARK))
    return guard


def _marks(ids: Mapping[str, int]) -> list[str]:
    mask = f"{MAC_MARK_MASK:#x}"
    specs = [f"-j MARK --set-xmark {ALIVE_MARK:#x}/{ALIVE_MARK:#x}"]
    specs += [f"-m mac --mac-source {mac} -j MARK --set-xmark {device << MAC_MARK_SHIFT:#x}/{mask}"
              for mac, device in ids.items()]
    # replies carry no MAC: the connection remembers the device (strict rp_filter, WGBLOCK, routing)
    specs += [f"-m mark ! --mark 0x0/{mask} -j CONNMARK --save-mark --nfmask {mask} --ctmask {mask}",
              f"-m mark --mark 0x0/{mask} -j CONNMARK --restore-mark --nfmask {mask} --ctmask {mask}"]
    return specs


def match(sel: Selector, ids: Mapping[str, int], out: str | None = None, source_only: bool = False,
          mark: bool = False, dns: str | None = None) -> str:
    """The selector in iptables-save's canonical text. `mark`: select a MAC by its device mark (nat
    POSTROUTING cannot match a MAC); `dns`: udp|tcp to port 53 instead of the selector's protocol/port."""
    parts = []
    if sel.src:
        parts.append(f"-s {sel.src}")
    if sel.dst and not source_only:
        parts.append(f"-d {sel.dst}")
    if out:
        parts.append(f"-o {out}")
    proto = dns or (None if source_only else sel.proto)
    if proto:
        parts.append(f"-p {proto}")
    if sel.mac and mark:
        parts.append(f"-m mark --mark {ids[sel.mac] << MAC_MARK_SHIFT:#x}/{MAC_MARK_MASK:#x}")
    elif sel.mac:
        parts.append(f"-m mac --mac-source {sel.mac}")
    if dns:
        parts.append(f"-m {dns} --dport 53")
    elif sel.ports and not source_only:
        first, last = sel.ports
        parts.append(f"-m {sel.proto} --dport {first}" + (f":{last}" if last != first else ""))
    return " ".join(parts)


def ipv6_source(policy: PolicyExit, sel: Selector, config: Config) -> str | None:
    """How ip6tables knows the selector's devices (a template for `{out}`, in iptables-save's order): by
    MAC, or a whole zone by its interface. An IPv4 address or subnet says nothing about a device's IPv6
    address: None (status: select it by MAC)."""
    if sel.dst or sel.proto:
        return None  # an IPv4 destination or port: its IPv6 follows the zone
    if sel.mac:
        return f"{{out}} -m mac --mac-source {sel.mac}"
    if policy.policy.source_type == "zone":
        device = next((z.device for z in config.zones if z.name == policy.policy.source), None)
        return f"-i {device} {{out}}" if device else None
    return None


def ipv6_verdict(policy: PolicyExit, config: Config) -> str:
    """The policy's IPv6, for status: refused, direct, or out of its reach (addresses and subnets)."""
    if not all(ipv6_source(policy, sel, config) for sel in policy.selectors):
        return "follows the zone (an IPv4 address does not select IPv6: select the device by MAC)"
    return "refused" if policy.way in ("tunnel", "block") else "direct"


def _dns_matches(sel: Selector) -> list[str]:
    """The protocols in which the selector can match a DNS query (to any resolver, port 53)."""
    if sel.dst or (sel.ports and not sel.ports[0] <= 53 <= sel.ports[1]):
        return []  # its DNS is not this policy's: it follows the next policy or the zone
    return [sel.proto] if sel.proto else ["udp", "tcp"]


def _firewall(chains: dict[str, list[str]], policy: PolicyExit, sel: Selector, ids: Mapping[str, int],
              red: str, killswitch: bool, peer: Peer | None, config: Config, others_dnat: bool) -> None:
    refuse = policy.way == "block" or (policy.way == "tunnel" and killswitch)
    verdict = "-j REJECT --reject-with icmp-admin-prohibited" if refuse else "-j RETURN"
    chains["kill"].append(f"{match(sel, ids, out=red)} {verdict}")
    v6_source = ipv6_source(policy, sel, config)
    if v6_source:  # tunnels carry IPv4: what the policy takes off red, its IPv6 may not take either
        chains["ipv6"].append(v6_source.format(out=f"-o {red}") + " "
                              + ("-j REJECT --reject-with icmp6-adm-prohibited" if refuse or
                                 policy.way == "tunnel" else "-j RETURN"))
    resolver = config.resolver(peer.id if peer else policy.peer.id) if policy.peer else None
    for proto in _dns_matches(sel):
        dnat = policy.dns and resolver and (peer or killswitch)
        if not dnat and not others_dnat:
            continue  # nothing after it would take its DNS: no exception needed
        chains["dns"].append(f"{match(sel, ids, dns=proto)} "
                             + (f"-j DNAT --to-destination {resolver}" if dnat else "-j RETURN"))
    for tunnel in policy.candidates:
        wg = tunnel.interface
        chains["forward"].append(f"{match(sel, ids, out=wg, source_only=True)} -j ACCEPT")
        chains["nat"].append(f"{match(sel, ids, out=wg, source_only=True, mark=True)} "
                             f"-j SNAT --to-source {tunnel.address}")
        back = (f"-d {sel.src} -i {wg}" if sel.src else
                f"-i {wg} -m connmark --mark {ids[sel.mac or ''] << MAC_MARK_SHIFT:#x}/{MAC_MARK_MASK:#x}")
        chains["wgblock"].append(f"{back} -m comment --comment {COMMENT} -j RETURN")
