"""The planner: pure, deterministic; the desired rules, routes and firewall for each kind of binding."""

from __future__ import annotations

import pytest

from ipfire_files import make_root
from zonevpn.config import load
from zonevpn.firewall import parse_save
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan
from zonevpn.state import Route, Rule

UP = {"wg3": Link(True, frozenset({"10.5.0.2"})), "wg5": Link(True, frozenset({"10.9.0.2"}))}


def config_for(tmp_path, settings):
    return load(Paths(make_root(str(tmp_path), settings=settings)))


def test_blue_bound_gets_local_main_static_table_and_refuse_rules_in_that_order(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP)
    blue = sorted(r for r in desired.rules if r.src == "192.168.2.0/24")
    assert [r.describe() for r in blue] == [
        "pref 1012 from 192.168.2.0/24 lookup main suppress_prefixlength 1 proto 122",
        "pref 1022 from 192.168.2.0/24 lookup 200 suppress_prefixlength 1 proto 122",
        "pref 1032 from 192.168.2.0/24 lookup 1002 proto 122",
        "pref 1042 from 192.168.2.0/24 prohibit proto 122"]
    assert Rule(1050, "10.5.0.2/32", 1103) in desired.rules
    assert {r.describe() for r in desired.routes if r.table == 1002} == {
        "default dev wg3 src 10.5.0.2 table 1002 proto 122",
        "prohibit default metric 4000000000 table 1002 proto 122"}
    assert desired.exits == (("BLUE", "wg3"),)


def test_only_the_exit_tunnels_halves_leave_main(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP)
    assert {(r.dst, r.dev) for r in desired.main_absent} == {("0.0.0.0/1", "wg3"), ("128.0.0.0/1", "wg3")}


@pytest.mark.parametrize("links", [{}, {"wg3": Link(False, frozenset({"10.5.0.2"}))},
                                   {"wg3": Link(True, frozenset())}])
def test_missing_down_or_addressless_tunnel_leaves_only_the_refusal(tmp_path, links):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), links)
    refusal = "prohibit default metric 4000000000 table 1002 proto 122"
    assert {r.describe() for r in desired.routes} == {refusal}
    assert Rule(1042, "192.168.2.0/24", action="prohibit") in desired.rules
    assert desired.exits == (("BLUE", "refused"),) and not desired.main_absent


def test_kill_switch_off_and_tunnel_gone_falls_back_to_main(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_KILLSWITCH=off\n"), {})
    assert not desired.routes and desired.exits == (("BLUE", "red"),)
    assert not any(r.action == "prohibit" for r in desired.rules)
    assert not any("REJECT" in spec for _, _, specs in desired.firewall.chains for spec in specs)


def test_firewall_lets_blue_into_wg3_refuses_red_and_snats_to_the_tunnel_address(tmp_path):
    fw = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP).firewall
    chains = {chain: specs for _, chain, specs in fw.chains}
    assert chains["ZONEVPN"] == ("-s 192.168.2.0/24 -i blue0 -o wg3 -j ACCEPT",)
    assert chains["ZONEVPN-KILL"] == ("-i blue0 -o red0 -j REJECT --reject-with icmp-admin-prohibited",)
    assert chains["ZONEVPN-NAT"] == ("-s 192.168.2.0/24 -o wg3 -j SNAT --to-source 10.5.0.2",)
    assert fw.wgblock == ("-d 192.168.2.0/24 -i wg3 -m comment --comment zonevpn -j RETURN",
                          "-d 10.5.0.2/32 -i wg3 -m comment --comment zonevpn -j RETURN")


def test_two_zones_on_one_tunnel_share_the_tunnel_address_rule(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\nORANGE_TUNNEL=3\n"), UP)
    assert sum(1 for r in desired.rules if r.priority == 1050) == 1
    assert desired.firewall.wgblock.count("-d 10.5.0.2/32 -i wg3 -m comment --comment zonevpn "
                                          "-j RETURN") == 1


def test_disabled_or_nothing_bound_plans_nothing(tmp_path):
    for settings in ("ENABLED=off\nBLUE_TUNNEL=3\n", "ENABLED=on\n"):
        desired = plan(config_for(tmp_path, settings), UP)
        assert not desired.rules and not desired.routes and not desired.firewall.jumps


def test_plan_is_deterministic(tmp_path):
    config = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\nGREEN_TUNNEL=3\n")
    assert plan(config, UP) == plan(config, UP)


def test_flush_gives_back_only_what_was_taken_and_only_where_main_has_room(tmp_path):
    from zonevpn.diff import Live, diff
    from zonevpn.firewall import Live as FwLive

    off = plan(config_for(tmp_path, "ENABLED=off\n"), UP)
    took = frozenset({Route(254, "0.0.0.0/1", dev="wg3", src="192.168.2.1", proto=0),
                      Route(254, "128.0.0.0/1", dev="wg3", src="192.168.2.1", proto=0)})
    empty = Live(frozenset(), frozenset(), frozenset(), FwLive(), FwLive())
    assert set(diff(off, empty, took, frozenset({"wg3"})).halves_restore) == took
    assert diff(off, empty, took, frozenset()).halves_restore == ()  # the tunnel is gone: nothing to give
    other = Live(frozenset(), frozenset(), frozenset({Route(254, "0.0.0.0/1", dev="wg4", proto=0)}),
                 FwLive(), FwLive())
    assert [r.dst for r in diff(off, other, took, frozenset({"wg3"})).halves_restore] == ["128.0.0.0/1"]


def _simulate(live, steps):
    """What iptables-restore does with the steps, on the parsed model (enough to check the diff)."""
    for verb, rule in steps:
        key = (rule.table, rule.chain)
        if verb in ("-N", "-F"):
            live.chains[key] = []
        elif verb == "-X":
            del live.chains[key]
        elif verb == "-A":
            live.chains[key].append(rule.spec)
        elif verb == "-D":
            live.chains[key].remove(rule.spec)
        else:
            live.chains[key].insert(int(verb[2:]) - 1, rule.spec)
    return live


STOCK = """*filter
:FORWARD DROP [0:0]
:WGBLOCK - [0:0]
:FORWARDFW - [0:0]
:POLICYFWD - [0:0]
-A FORWARD -i wg+ -j WGBLOCK
-A FORWARD -j FORWARDFW
-A FORWARD -j POLICYFWD
-A WGBLOCK -j REJECT --reject-with icmp-admin-prohibited
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:WGNAT - [0:0]
-A POSTROUTING -j WGNAT
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
COMMIT
"""


@pytest.mark.parametrize("settings", ["ENABLED=on\nBLUE_TUNNEL=3\n", "ENABLED=on\nBLUE_TUNNEL=3\n"
                                      "GREEN_TUNNEL=3\nGREEN_KILLSWITCH=off\n", "ENABLED=off\n"])
def test_the_firewall_diff_applied_once_leaves_nothing_to_do(tmp_path, settings):
    from zonevpn.firewall import changes
    from zonevpn.plan import JUMPS, OWN_CHAINS

    fw = plan(config_for(tmp_path, settings), UP).firewall
    live = _simulate(parse_save(STOCK), changes(fw, parse_save(STOCK), OWN_CHAINS, JUMPS))
    assert changes(fw, live, OWN_CHAINS, JUMPS) == []
    forward = live.rules("filter", "FORWARD")
    assert forward[-1] == "-j POLICYFWD"
    if "KILLSWITCH" not in settings and "ENABLED=on" in settings:  # kill switch on: before admin rules
        assert forward.index("-m comment --comment zonevpn -j ZONEVPN-KILL") < forward.index("-j FORWARDFW")
        assert forward.index("-m comment --comment zonevpn -j ZONEVPN") == len(forward) - 2
    assert live.rules("filter", "WGBLOCK")[-1].startswith("-j REJECT")
    back = _simulate(live, changes(plan(config_for(tmp_path, "ENABLED=off\n"), UP).firewall, live,
                                   OWN_CHAINS, JUMPS))
    assert back.chains == parse_save(STOCK).chains


def test_dns_through_the_tunnel_redirects_the_zones_port_53_to_the_tunnels_resolver(tmp_path):
    config = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_DNS=on\nTUNNEL_3_DNS=10.5.0.1\n")
    chains = {chain: specs for _, chain, specs in plan(config, UP).firewall.chains}
    assert chains["ZONEVPN-DNS"] == (
        "-i blue0 -p udp -m udp --dport 53 -j DNAT --to-destination 10.5.0.1",
        "-i blue0 -p tcp -m tcp --dport 53 -j DNAT --to-destination 10.5.0.1")
    gone = {chain for _, chain, _ in plan(config, {}).firewall.chains}
    assert "ZONEVPN-DNS" in gone  # kill switch on and tunnel gone: DNS still goes there, and is refused


def test_bound_zones_ipv6_is_refused_towards_red(tmp_path):
    fw6 = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP).firewall6
    assert fw6.chains == (("filter", "ZONEVPN",
                           ("-i blue0 -o red0 -j REJECT --reject-with icmp6-adm-prohibited",)),)


def test_fallback_takes_over_while_the_first_tunnel_is_missing_or_stale(tmp_path):
    from ipfire_files import NET_PEER, RW_PEER, make_root

    second = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,mullvad").replace("10.5.0.2", "10.6.0.2")
    root = make_root(str(tmp_path), settings="ENABLED=on\nBLUE_TUNNEL=3\nBLUE_FALLBACK=4\n",
                     peers=RW_PEER + NET_PEER + second)
    config = load(Paths(root))
    both = dict(UP, wg4=Link(True, frozenset({"10.6.0.2"})))
    assert plan(config, both, {"wg3": 10, "wg4": 10}).exits == (("BLUE", "wg3"),)
    assert plan(config, both, {"wg3": 500, "wg4": 10}).exits == (("BLUE", "wg4"),)
    assert plan(config, {"wg4": both["wg4"]}, {"wg4": 10}).exits == (("BLUE", "wg4"),)
    assert plan(config, both, {"wg3": 500, "wg4": 900}).exits == (("BLUE", "refused"),)
    assert plan(config, both, {"wg3": 20, "wg4": 10}).exits == (("BLUE", "wg3"),)  # back when it recovers
    halves = {r.dev for r in plan(config, both, {"wg3": 10}).main_absent}
    assert halves == {"wg3", "wg4"}  # a standby exit may not hijack the main table either


def test_ipfires_own_static_and_wg_rules_are_kept_in_their_stock_place_while_zonevpn_is_active(tmp_path):
    """Issue 9, defects 3 and 4: our `lookup 200` rules make static-routes skip its own rule, and IPFire's
    rules added without a pref while ours exist land at 999/998, ahead of ours."""
    from zonevpn.diff import Live, diff
    from zonevpn.firewall import Live as FwLive

    bound = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP)
    boot = Live(frozenset(), frozenset(), frozenset(), FwLive(), FwLive(), frozenset({Rule(999, None, 201, proto=0)}))
    steps = diff(bound, boot, frozenset(), frozenset(UP))
    assert [r.describe() for r in steps.base_add] == ["pref 32764 lookup 201", "pref 32765 lookup 200"]
    assert [r.describe() for r in steps.base_del] == ["pref 999 lookup 201"]
    stock = frozenset({Rule(32764, None, 201, proto=0), Rule(32765, None, 200, proto=0)})
    settled = Live(bound.rules, frozenset(), frozenset(), FwLive(), FwLive(), stock)
    assert diff(bound, settled, frozenset(), frozenset(UP)).base_add == ()
    off = plan(config_for(tmp_path, "ENABLED=off\n"), UP)  # not active: IPFire's rules are its own business
    assert diff(off, boot, frozenset(), frozenset(UP)).base_del == ()
