"""The planner: pure, deterministic; the desired rules, routes and firewall for each kind of binding."""

from __future__ import annotations

import pytest

from ipfire_files import make_root
from zonevpn.config import load
from zonevpn.diff import Live, diff
from zonevpn.firewall import parse_save
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan, stock_halves
from zonevpn.state import Route, Rule

UP = {"wg3": Link(True, frozenset({"10.5.0.2"})), "wg5": Link(True, frozenset({"10.9.0.2"}))}


def config_for(tmp_path, settings):
    return load(Paths(make_root(str(tmp_path), settings=settings)))


def test_blue_bound_gets_local_main_static_table_and_refuse_rules_in_that_order(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP)
    blue = sorted(r for r in desired.rules if r.src == "192.168.2.0/24")
    assert [r.describe() for r in blue] == [
        "pref 1012 from 192.168.2.0/24 lookup main suppress_prefixlength 0 proto 122",
        "pref 1022 from 192.168.2.0/24 lookup static suppress_prefixlength 0 proto 122",
        "pref 1032 from 192.168.2.0/24 lookup 1002 proto 122",
        "pref 1042 from 192.168.2.0/24 prohibit proto 122"]
    assert Rule(1050, "10.5.0.2/32", 1103) in desired.rules
    assert {r.describe() for r in desired.routes if r.table == 1002} == {
        "default dev wg3 src 10.5.0.2 table 1002", "prohibit default metric 4000000000 table 1002"}
    assert desired.exits == (("BLUE", "wg3"),)


def test_only_the_exit_tunnels_halves_leave_main(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), UP)
    assert {(r.dst, r.dev) for r in desired.main_absent} == {("0.0.0.0/1", "wg3"), ("128.0.0.0/1", "wg3")}


@pytest.mark.parametrize("links", [{}, {"wg3": Link(False, frozenset({"10.5.0.2"}))},
                                   {"wg3": Link(True, frozenset())}])
def test_missing_down_or_addressless_tunnel_leaves_only_the_refusal(tmp_path, links):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), links)
    assert {r.describe() for r in desired.routes} == {"prohibit default metric 4000000000 table 1002"}
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
    assert chains["ZONEVPN"] == ("-s 192.168.2.0/24 -i blue0 -o wg3 -j ACCEPT",
                                 "-i blue0 -o red0 -j REJECT --reject-with icmp-admin-prohibited")
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


def test_flush_gives_back_the_halves_with_the_initscripts_src(tmp_path):
    config = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n")
    halves = stock_halves(config, UP)
    assert Route(254, "0.0.0.0/1", dev="wg3", src="192.168.2.1", proto=0) in halves
    assert not any(r.dev == "wg5" for r in halves)  # office routes 10.20.0.0/16 only


def test_diff_against_its_own_result_is_empty(tmp_path):
    config = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n")
    desired = plan(config, UP)
    fw = desired.firewall
    save = ["*filter", ":FORWARD DROP [0:0]", ":POLICYFWD - [0:0]", ":WGBLOCK - [0:0]"]
    save += [":ZONEVPN - [0:0]", "-A FORWARD -m comment --comment zonevpn -j ZONEVPN",
             "-A FORWARD -j POLICYFWD"]
    save += [f"-A WGBLOCK {s}" for s in fw.wgblock] + ["-A WGBLOCK -j REJECT"]
    for table, chain, specs in fw.chains:
        if table == "filter":
            save += [f"-A {chain} {s}" for s in specs]
    save += ["COMMIT", "*nat", ":POSTROUTING ACCEPT [0:0]", ":ZONEVPN-NAT - [0:0]", ":WGNAT - [0:0]",
             "-A POSTROUTING -m comment --comment zonevpn -j ZONEVPN-NAT", "-A POSTROUTING -j WGNAT"]
    save += [f"-A ZONEVPN-NAT {s}" for t, _, specs in fw.chains if t == "nat" for s in specs]
    save += ["COMMIT", "*mangle", ":PREROUTING ACCEPT [0:0]", ":ZONEVPN-MARK - [0:0]",
             "-A PREROUTING -m comment --comment zonevpn -j ZONEVPN-MARK"]
    save += [f"-A ZONEVPN-MARK {s}" for t, _, specs in fw.chains if t == "mangle" for s in specs]
    live = Live(desired.rules, desired.routes, frozenset(), parse_save("\n".join(save + ["COMMIT"])))
    assert diff(desired, live, stock_halves(config, UP)).describe() == []
