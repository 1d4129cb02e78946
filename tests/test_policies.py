"""Exit policies without a kernel: the policies file, IPFire's host objects, validation with file/line/field,
shadowed policies, and the planner's preference/table scheme (state.py, policy_plan.py)."""

from __future__ import annotations

import os
import stat
from ipaddress import IPv4Network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipfire_files import make_root
from policy_files import CUSTOMGROUPS, remark, write_fwhosts, write_policies
from zonevpn.config import load
from zonevpn.errors import InputError
from zonevpn.fwhosts import group, host, read_fwhosts
from zonevpn.model import PolicyExit, Selector
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan
from zonevpn.policies import format_row, parse_row, read_policies
from zonevpn.policies import write_policies as store
from zonevpn.policy_config import Coverage, covers_all
from zonevpn.policy_plan import device_ids
from zonevpn.state import Rule

UP = {"wg3": Link(True, frozenset({"10.5.0.2"})), "wg5": Link(True, frozenset({"10.9.0.2"}))}
LAPTOP = "02:00:00:00:02:14"


@pytest.fixture
def root(tmp_path):
    root = make_root(str(tmp_path), settings="ENABLED=on\nTUNNEL_3_DNS=10.5.0.1\n")
    write_fwhosts(root)
    return root


def config(root, *rows, settings=None):
    if settings is not None:
        with open(os.path.join(root, "var/ipfire/zonevpn/settings"), "w") as handle:
            handle.write(settings)
    write_policies(root, *rows)
    return load(Paths(root))


# --- the file -----------------------------------------------------------------------------------------

def test_rows_are_ordered_by_key_with_defaults_for_left_out_trailing_fields(root):
    write_policies(root, f"2,on,mac,{LAPTOP.upper()},,,,red", "1,on,addr,192.168.1.50,,,,3",
                   "# a comment", "", f"3,off,zone,BLUE,203.0.113.0/24|198.51.100.7/32,tcp,8000:8100,block,,"
                   f"off,off,{remark('bank, direct')}")
    first, second, third = read_policies(Paths(root))
    assert (first.number, first.source, first.way, first.tunnel, first.killswitch, first.dns) == (
        1, "192.168.1.50", "tunnel", 3, True, False)
    assert (second.source, second.way) == (LAPTOP, "red")
    assert (third.enabled, third.destinations, third.proto, third.ports, third.killswitch, third.remark) == (
        False, (IPv4Network("203.0.113.0/24"), IPv4Network("198.51.100.7/32")), "tcp", (8000, 8100),
        False, "bank, direct")


def test_a_row_written_reads_back_the_same(root):
    raw = f"1,on,group,kids,10.0.0.0/8,udp,53,3,4|5,off,on,{remark('ä, b')}"
    policy = parse_row("f", 1, raw)
    assert format_row(1, policy) == raw + "\n"
    assert parse_row("f", 1, format_row(1, policy).rstrip("\n")) == policy


def test_written_atomically_renumbered_keeping_owner_and_mode(root):
    paths = Paths(root)
    write_policies(root, "5,on,addr,192.168.1.50,,,,3", "9,on,zone,BLUE,,,,red")
    os.chmod(paths.policies, 0o640)
    store(paths, tuple(reversed(read_policies(paths))))
    assert open(paths.policies).read() == ("1,on,zone,BLUE,,,,red,,on,off,\n"
                                            "2,on,addr,192.168.1.50,,,,3,,on,off,\n")
    assert stat.S_IMODE(os.stat(paths.policies).st_mode) == 0o640
    assert [name for name in os.listdir(os.path.dirname(paths.policies)) if name.startswith(".")] == []


def test_no_policies_file_means_the_settings_mean_what_they_meant(root):
    settings = "ENABLED=on\nBLUE_TUNNEL=3\n"
    without = plan(config(root, settings=settings), UP)
    os.remove(Paths(root).policies)
    assert plan(load(Paths(root)), UP) == without


# --- IPFire's host objects ------------------------------------------------------------------------------

def test_host_objects_are_read_as_fwhosts_cgi_writes_them(root):
    objects = read_fwhosts(Paths(root))
    assert host(objects, "tv") == IPv4Network("192.168.1.50/32")
    assert host(objects, "laptop") == LAPTOP
    zones = {"BLUE": IPv4Network("192.168.2.0/24")}
    assert group(objects, "kids", zones) == (IPv4Network("192.168.1.50/32"), IPv4Network("192.168.3.20/32"))
    assert group(objects, "empty", zones) == ()
    assert group(objects, "mixed", zones) == (IPv4Network("192.168.2.128/25"), IPv4Network("192.168.2.0/24"))


def test_a_group_member_added_in_ipfires_file_is_followed_on_the_next_load(root):
    before = config(root, "1,on,group,kids,,,,3").policies[0].selectors
    write_fwhosts(root, groups=CUSTOMGROUPS + "8,kids,,laptop,Custom Host\n")
    after = load(Paths(root)).policies[0].selectors
    assert [s.mac for s in after if s.mac] == [LAPTOP] and len(after) == len(before) + 1


# --- bad input: file, line, field ------------------------------------------------------------------------

@pytest.mark.parametrize(("row", "where", "field", "words"), [
    ("1,on,host,nosuch,,,,3", "zonevpn/policies:1", "source", "no host 'nosuch'"),
    ("1,on,group,nosuch,,,,3", "zonevpn/policies:1", "source", "no group 'nosuch'"),
    ("1,on,mac,02:00:00:00:02,,,,3", "zonevpn/policies:1", "source", "not a MAC"),
    ("1,on,addr,10.99.0.1,,,,3", "zonevpn/policies:1", "source", "inside no zone"),
    ("1,on,host,elsewhere,,,,3", "zonevpn/policies:1", "source", "inside no zone"),
    ("1,on,addr,192.168.1.50,203.0.113.7/24,,,3", "zonevpn/policies:1", "destinations", "not an IPv4"),
    ("1,on,addr,192.168.1.50,banks,,,3", "zonevpn/policies:1", "destinations", "not an IPv4"),
    ("1,on,addr,192.168.1.50,,,443,3", "zonevpn/policies:1", "ports", "needs a protocol"),
    ("1,on,addr,192.168.1.50,,tcp,0:99999,3", "zonevpn/policies:1", "ports", "1-65535"),
    ("1,on,addr,192.168.1.50,,,,9", "zonevpn/policies:1", "exit", "no WireGuard peer"),
    ("1,on,addr,192.168.1.50,,,,5", "zonevpn/policies:1", "exit", "does not route 0.0.0.0/0"),
    ("1,on,addr,192.168.1.50,,,,1", "zonevpn/policies:1", "exit", "road warrior"),
    ("1,on,addr,192.168.1.50,,,,wg3", "zonevpn/policies:1", "exit", "not a peer id"),
    ("1,on,addr,192.168.1.50,,,,red,,,on", "zonevpn/policies:1", "dns", "needs a tunnel"),
    ("1,maybe,addr,192.168.1.50,,,,3", "zonevpn/policies:1", "enabled", "on or off"),
    ("1,on,addr,192.168.1.50,,,,3,,,,%%", "zonevpn/policies:1", "remark", "base64"),
    ("x,on,addr,192.168.1.50,,,,3", "zonevpn/policies:1", "key", "position"),
    ("1,on,group,broken,,,,3", "fwhosts/customgroups:6", "member", "'ghost' is not in customhosts"),
    ("1,on,group,roadwarriors,,,,3", "fwhosts/customgroups:7", "member", "wg_peer"),
])
def test_bad_policies_name_file_line_and_field(root, row, where, field, words):
    with pytest.raises(InputError) as caught:
        config(root, row)
    err = caught.value
    assert f"{err.path}:{err.line}".endswith(where) and err.field == field and words in err.message, str(err)


def test_a_bad_row_further_down_names_its_own_line(root):
    with pytest.raises(InputError) as caught:
        config(root, "1,on,addr,192.168.1.50,,,,3", "", "2,on,mac,nope,,,,red")
    assert str(caught.value).endswith("zonevpn/policies:3: field source: not a MAC address "
                                      "(aa:bb:cc:dd:ee:ff): 'nope'")


def test_dns_through_the_tunnel_needs_the_tunnels_resolver(root):
    with pytest.raises(InputError) as caught:
        config(root, "1,on,addr,192.168.1.50,,,,3,,on,on", settings="ENABLED=on\n")
    assert caught.value.field == "dns" and "TUNNEL_3_DNS" in caught.value.message


def test_a_policy_an_earlier_one_covers_entirely_is_a_warning(root):
    warnings = config(root, "1,on,zone,BLUE,,,,3", "2,on,addr,192.168.2.128/25,203.0.113.0/24,tcp,443,red",
                      "3,on,addr,192.168.1.50,203.0.113.0/24,,,red", "4,on,host,tv,203.0.113.0/25,udp,53,3"
                      ).warnings
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("policy 2 (addr 192.168.2.128/25) can never match: policy 1 (zone BLUE)")
    assert warnings[1].startswith("policy 4 (host tv) can never match: policy 3")


# --- the planner ------------------------------------------------------------------------------------------

def rules_of(desired, first, last):
    return [r.describe() for r in sorted(desired.rules) if first <= r.priority <= last]


def test_a_host_through_a_tunnel_gets_its_four_prefs_and_its_own_table(root):
    desired = plan(config(root, "1,on,addr,192.168.1.50,,,,3"), UP)
    assert rules_of(desired, 196, 999) == [
        "pref 196 fwmark 0x400000/0x400000 lookup main proto 122",
        "pref 200 from 192.168.1.50/32 lookup main suppress_prefixlength 1 proto 122",
        "pref 201 from 192.168.1.50/32 lookup 200 suppress_prefixlength 1 proto 122",
        "pref 202 from 192.168.1.50/32 lookup 2000 proto 122",
        "pref 203 from 192.168.1.50/32 prohibit proto 122"]
    assert {r.describe() for r in desired.routes if r.table == 2000} == {
        "default dev wg3 src 10.5.0.2 table 2000 proto 122",
        "prohibit default metric 4000000000 table 2000 proto 122"}
    assert Rule(1050, "10.5.0.2/32", 1103) in desired.rules  # the tunnel address, as for zones
    assert {(r.dst, r.dev) for r in desired.main_absent} == {("0.0.0.0/1", "wg3"), ("128.0.0.0/1", "wg3")}
    assert desired.policy_exits == ((1, "wg3"),) and desired.src_valid_mark


def test_slots_follow_the_files_order_and_disabled_policies_keep_theirs(root):
    desired = plan(config(root, "1,off,addr,192.168.1.50,,,,3", "2,on,zone,BLUE,203.0.113.0/24,,,red",
                          "3,on,addr,192.168.3.20,,tcp,443:444,block"), UP)
    assert rules_of(desired, 200, 999) == [
        "pref 205 from 192.168.2.0/24 to 203.0.113.0/24 lookup 200 proto 122",
        "pref 206 from 192.168.2.0/24 to 203.0.113.0/24 lookup main proto 122",
        "pref 207 from 192.168.2.0/24 to 203.0.113.0/24 prohibit proto 122",
        "pref 208 from 192.168.3.20/32 ipproto tcp dport 443-444 lookup main suppress_prefixlength 1 proto 122",
        "pref 209 from 192.168.3.20/32 ipproto tcp dport 443-444 lookup 200 suppress_prefixlength 1 proto 122",
        "pref 211 from 192.168.3.20/32 ipproto tcp dport 443-444 prohibit proto 122"]
    assert not desired.routes  # neither red nor block needs a table


def test_a_mac_is_marked_in_mangle_and_selected_by_fwmark_with_the_alive_guard(root):
    desired = plan(config(root, f"1,on,mac,{LAPTOP},,,,3"), UP)
    chains = {chain: specs for _, chain, specs in desired.firewall.chains}
    assert chains["ZONEVPN-POLICY"] == (
        "-j MARK --set-xmark 0x200000/0x200000",
        f"-m mac --mac-source {LAPTOP} -j MARK --set-xmark 0x1000/0x1ff000",
        "-m mark ! --mark 0x0/0x1ff000 -j CONNMARK --save-mark --nfmask 0x1ff000 --ctmask 0x1ff000",
        "-m mark --mark 0x0/0x1ff000 -j CONNMARK --restore-mark --nfmask 0x1ff000 --ctmask 0x1ff000")
    assert "pref 202 fwmark 0x1000/0x1ff000 lookup 2000 proto 122" in rules_of(desired, 202, 202)
    assert rules_of(desired, 203, 203) == [
        "pref 203 fwmark 0x1000/0x1ff000 prohibit proto 122",
        "pref 203 from 192.168.1.0/24 fwmark 0x0/0x200000 prohibit proto 122",
        "pref 203 from 192.168.2.0/24 fwmark 0x0/0x200000 prohibit proto 122",
        "pref 203 from 192.168.3.0/24 fwmark 0x0/0x200000 prohibit proto 122"]
    assert chains["ZONEVPN-NAT"] == ("-o wg3 -m mark --mark 0x1000/0x1ff000 -j SNAT --to-source 10.5.0.2",)
    assert chains["ZONEVPN-KILL"] == (
        f"-o red0 -m mac --mac-source {LAPTOP} -j REJECT --reject-with icmp-admin-prohibited",)
    assert "-i wg3 -m connmark --mark 0x1000/0x1ff000 -m comment --comment zonevpn -j RETURN" in \
        desired.firewall.wgblock
    assert desired.firewall6.chains == (("filter", "ZONEVPN", (
        f"-o red0 -m mac --mac-source {LAPTOP} -j REJECT --reject-with icmp6-adm-prohibited",)),)
    jump = next(j for j in desired.firewall.jumps if j.target == "ZONEVPN-POLICY")
    assert (jump.table, jump.chain) == ("mangle", "PREROUTING")


def test_a_direct_mac_in_a_bound_zone_needs_no_guard_and_comes_before_the_zone_everywhere(root):
    desired = plan(config(root, f"1,on,mac,{LAPTOP},,,,red", settings="ENABLED=on\nBLUE_TUNNEL=3\n"
                          "BLUE_DNS=on\nTUNNEL_3_DNS=10.5.0.1\n"), UP)
    assert not [r for r in desired.rules if r.fwmask == 0x200000]
    chains = {chain: specs for _, chain, specs in desired.firewall.chains}
    assert chains["ZONEVPN-KILL"] == (f"-o red0 -m mac --mac-source {LAPTOP} -j RETURN",
                                      "-i blue0 -o red0 -j REJECT --reject-with icmp-admin-prohibited")
    assert chains["ZONEVPN-DNS"][:2] == (f"-p udp -m mac --mac-source {LAPTOP} -m udp --dport 53 -j RETURN",
                                         f"-p tcp -m mac --mac-source {LAPTOP} -m tcp --dport 53 -j RETURN")
    assert chains["ZONEVPN-DNS"][2].startswith("-i blue0 -p udp")
    assert desired.firewall6.chains[0][2] == (
        f"-o red0 -m mac --mac-source {LAPTOP} -j RETURN",
        "-i blue0 -o red0 -j REJECT --reject-with icmp6-adm-prohibited")


def test_policy_dns_goes_to_the_resolver_of_the_chosen_tunnel(root):
    desired = plan(config(root, "1,on,addr,192.168.1.50,,,,3,,on,on"), UP)
    dns = next(specs for _, chain, specs in desired.firewall.chains if chain == "ZONEVPN-DNS")
    assert dns == ("-s 192.168.1.50/32 -p udp -m udp --dport 53 -j DNAT --to-destination 10.5.0.1",
                   "-s 192.168.1.50/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 10.5.0.1")


@pytest.mark.parametrize("links", [{}, {"wg3": Link(False, frozenset({"10.5.0.2"}))}])
def test_tunnel_gone_leaves_the_policy_refused_or_with_kill_switch_off_direct(root, links):
    held = plan(config(root, "1,on,addr,192.168.1.50,,,,3"), links)
    assert {r.describe() for r in held.routes} == {"prohibit default metric 4000000000 table 2000 proto 122"}
    assert held.policy_exits == ((1, "refused"),)
    loose = plan(config(root, "1,on,addr,192.168.1.50,,,,3,,off"), links)
    assert not loose.routes and loose.policy_exits == ((1, "red"),)
    assert "pref 203 from 192.168.1.50/32 lookup main proto 122" in rules_of(loose, 203, 203)


def test_hold_refuses_tunnel_policies_and_disabled_plans_nothing(root):
    cfg = config(root, "1,on,addr,192.168.1.50,,,,3,,off", "2,on,addr,192.168.1.51,,,,red")
    held = plan(cfg._replace(held=True), UP)
    assert held.policy_exits == ((1, "refused"), (2, "red"))
    assert "pref 203 from 192.168.1.50/32 prohibit proto 122" in rules_of(held, 203, 203)
    off = plan(config(root, "1,on,addr,192.168.1.50,,,,3", settings="ENABLED=off\n"), UP)
    assert not off.rules and not off.routes and not off.firewall.chains


def test_two_hundred_policies_fit_the_range_and_grow_the_kernel_linearly(root):
    def objects(count):
        rows = [f"{i + 1},on,addr,192.168.{1 + i % 3}.{10 + i // 3},,,,{3 if i % 2 else 'red'}"
                for i in range(count)]
        desired = plan(config(root, *rows), UP)
        prefs = {r.priority for r in desired.rules if r.priority < 1000}
        return len(desired.rules) + len(desired.routes), min(prefs), max(prefs)

    small, large = objects(20), objects(200)
    assert large[1:] == (196, 999)
    shared = 3  # the inbound rule, the tunnel address's rule and its table's route
    assert large[0] - shared == 10 * (small[0] - shared)  # per policy the same handful of objects
    with pytest.raises(InputError, match="at most 200"):
        config(root, *[f"{i + 1},on,addr,192.168.1.{i + 1},,,,red" for i in range(201)])


def test_device_ids_follow_first_appearance():
    from zonevpn.model import Policy, PolicyExit

    def pol(*macs):
        return PolicyExit(0, Policy(1, True, "mac", "", (), None, None, "red", None),
                          tuple(Selector(None, mac) for mac in macs))

    assert device_ids((pol("B"), pol("A", "B"))) == {"B": 1, "A": 2}


def test_a_connection_changed_its_way_only_if_its_first_matching_row_says_so(root):
    from zonevpn.policy_ways import table, way_of

    cfg = config(root, "1,on,addr,192.168.2.20,,,,3", "2,on,zone,BLUE,203.0.113.0/24,udp,,red",
                 f"3,on,mac,{LAPTOP},,,,block", settings="ENABLED=on\nBLUE_TUNNEL=3\n")
    ways = table(cfg, plan(cfg, UP), {})
    assert way_of(ways, "192.168.2.20", "203.0.113.10", "udp", 9002, 0) == "wg3"
    assert way_of(ways, "192.168.2.10", "203.0.113.10", "udp", 9002, 0) == "red"
    assert way_of(ways, "192.168.2.10", "203.0.113.10", "tcp", 443, 0) == "wg3"  # the zone's
    assert way_of(ways, "192.168.2.30", "198.18.0.1", "tcp", 443, 0x1000) == "blocked"
    assert way_of(ways, "192.168.1.52", "198.18.0.1", "tcp", 443, 0) == "red"
    down = table(cfg, plan(cfg, {}), ways)  # wg3 gone: refused keeps the last real way
    assert way_of(down, "192.168.2.20", "198.18.0.1", "udp", 1, 0) == "wg3"


# --- the index that finds a policy covered entirely ------------------------------------------------------

def _selector(draw_src: str | None, mac: str | None, dst: str | None, proto: str | None,
              ports: tuple[int, int] | None) -> Selector:
    return Selector(IPv4Network(draw_src) if draw_src else None, mac, IPv4Network(dst) if dst else None, proto,
                    ports if proto else None)


SOURCES = ["192.168.2.0/24", "192.168.2.0/25", "192.168.2.128/25", "192.168.2.7/32", "192.168.2.0/30",
           "192.168.0.0/16", "0.0.0.0/0", "10.1.0.0/16"]


@given(st.lists(st.lists(st.tuples(st.sampled_from([*SOURCES, None]), st.sampled_from(["02:00:00:00:00:01", None]),
                                   st.sampled_from([None, "203.0.113.0/24", "203.0.113.0/25"]),
                                   st.sampled_from([None, "tcp", "udp"]),
                                   st.sampled_from([(443, 443), (1, 1024), (400, 500)])),
                         min_size=0, max_size=3), max_size=12))
@settings(max_examples=300, deadline=None)
def test_the_index_finds_the_same_first_covering_policy_as_comparing_with_every_earlier_one(policies):
    exits = []
    for slot, parts in enumerate(policies):
        selectors = tuple(_selector(src or (None if mac else "192.168.2.7/32"), None if src else mac, dst, proto,
                                    ports) for src, mac, dst, proto, ports in parts)  # a source or a MAC
        exits.append(PolicyExit(slot, None, selectors))  # type: ignore[arg-type]
    coverage = Coverage()
    for at, exit_ in enumerate(exits):
        expected = next((e for e in exits[:at] if covers_all(e.selectors, exit_.selectors)), None)
        assert coverage.first_covering(exit_.selectors) is expected
        coverage.add(exit_)
