"""Any bytes in any input file give either a parsed model or one InputError naming the file — never a
traceback; and the planner is deterministic on whatever parses."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipfire_files import ETHERNET, NET_PEER, RW_PEER, make_root
from zonevpn.config import load
from zonevpn.errors import InputError
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan

FILES = ("var/ipfire/zonevpn/settings", "var/ipfire/wireguard/peers", "var/ipfire/ethernet/settings",
         "var/ipfire/wireguard/settings", "var/ipfire/red/iface")
UP = {"wg3": Link(True, frozenset({"10.5.0.2"}))}

# Bytes that look like the real thing (fields, separators, addresses) find more paths than noise alone.
pieces = st.sampled_from(["=", ",", "|", "\n", "/", ".", "on", "off", "net", "host", "3", "0.0.0.0/0",
                          "192.168.2.0", "255.255.255.0", "BLUE_TUNNEL", "ENABLED", "'", " ", "\x00",
                          "\xff", "10.5.0.2", "-1", "999999999999", "GREEN_DEV", "CONFIG_TYPE"])
text = st.lists(st.one_of(pieces, st.text(max_size=8)), max_size=40).map("".join)


def _mutate(root: str, rel: str, data: bytes) -> None:
    with open(os.path.join(root, rel), "wb") as handle:
        handle.write(data)


def _load_or_error(root: str, rel: str):  # type: ignore[no-untyped-def]
    try:
        return load(Paths(root))
    except InputError as err:
        assert err.path.startswith(root), err  # names a file of ours, never a traceback
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(FILES), body=st.one_of(text.map(lambda s: s.encode("utf-8", "replace")),
                                                    st.binary(max_size=200)))
def test_any_bytes_in_any_file_parse_or_fail_cleanly(tmp_path, which, body):
    root = make_root(str(tmp_path))
    _mutate(root, which, body)
    config = _load_or_error(root, which)
    if config is not None:
        assert plan(config, UP) == plan(config, UP)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=text)
def test_a_garbled_peer_row_among_good_ones_parses_or_names_its_line(tmp_path, extra):
    root = make_root(str(tmp_path), peers=RW_PEER + NET_PEER + extra.replace("\n", "") + "\n")
    try:
        load(Paths(root))
    except InputError as err:
        assert err.path.endswith("wireguard/peers") or err.path.endswith("zonevpn/settings")
        assert err.line in (None, 1, 2, 3)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zone_lines=text)
def test_garbled_ethernet_settings_never_crash(tmp_path, zone_lines):
    root = make_root(str(tmp_path), ethernet=ETHERNET + zone_lines)
    _load_or_error(root, "var/ipfire/ethernet/settings")


binding = st.tuples(st.sampled_from(["", "3", "4"]), st.booleans(), st.booleans())


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(zones=st.tuples(binding, binding, binding), enabled=st.booleans(),
       links=st.sets(st.sampled_from(["wg3", "wg4"])))
def test_apply_after_apply_changes_nothing_for_any_settings(tmp_path, zones, enabled, links):
    """The plan applied once (firewall steps simulated on iptables-save's model, routing as sets) leaves
    a second diff empty, from the stock box and from any earlier plan."""
    from test_plan import STOCK, _simulate
    from zonevpn.diff import Live, diff
    from zonevpn.firewall import parse_save

    second = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,mullvad").replace("10.5.0.2", "10.6.0.2")
    lines = [f"ENABLED={'on' if enabled else 'off'}"]
    for zone, (tunnel, killswitch, dns) in zip(("GREEN", "BLUE", "ORANGE"), zones, strict=True):
        lines += [f"{zone}_TUNNEL={tunnel}", f"{zone}_KILLSWITCH={'on' if killswitch else 'off'}",
                  f"{zone}_DNS={'on' if dns else 'off'}"]
    lines += ["TUNNEL_3_DNS=10.5.0.1", "TUNNEL_4_DNS=10.6.0.1"]
    root = make_root(str(tmp_path), settings="\n".join(lines) + "\n", peers=RW_PEER + NET_PEER + second)
    config = load(Paths(root))
    v6 = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n"
    up = {name: Link(True, frozenset({"10.5.0.2" if name == "wg3" else "10.6.0.2"})) for name in links}
    desired = plan(config, up)
    fw = _simulate(parse_save(STOCK), diff(desired, Live(frozenset(), frozenset(), frozenset(), parse_save(STOCK),
                                                         parse_save(v6)), frozenset(), frozenset(up)).firewall)
    after = Live(desired.rules, desired.routes, frozenset(), fw, _simulate(parse_save(v6), diff(
        desired, Live(frozenset(), frozenset(), frozenset(), parse_save(STOCK), parse_save(v6)),
        frozenset(), frozenset(up)).firewall6), desired.base_rules)
    assert diff(desired, after, frozenset(), frozenset(up)).describe() == []
