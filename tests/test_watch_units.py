"""The watcher's pure parts, in milliseconds: health verdicts with hysteresis, the planner's use of them,
the probe-target setting, the resolver drop-in, rtnetlink messages. Packets: test_lab_watch.py."""

from __future__ import annotations

import socket

import pytest

from ipfire_files import NET_PEER, RW_PEER, make_root
from zonevpn import netlink
from zonevpn.config import load
from zonevpn.errors import InputError
from zonevpn.health import Tracker
from zonevpn.paths import Paths
from zonevpn.plan import Link, plan
from zonevpn.resolver import conf
from zonevpn.settings import read_settings

BOTH = {"wg3": Link(True, frozenset({"10.5.0.2"})), "wg4": Link(True, frozenset({"10.6.0.2"}))}
FAILOVER = "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_FALLBACK=4\n"
PEERS = RW_PEER + NET_PEER + NET_PEER.replace("3,on,net,nordvpn", "4,on,net,mullvad").replace("10.5.0.2", "10.6.0.2")


def config_for(tmp_path, settings):  # type: ignore[no-untyped-def]
    return load(Paths(make_root(str(tmp_path), settings=settings, peers=PEERS)))


def test_a_tunnel_goes_down_after_five_silent_ticks_and_up_after_three_answered_ones():
    tracker = Tracker()
    assert [tracker.tick(False) for _ in range(4)] == [False] * 4 and tracker.up
    assert tracker.tick(False) and not tracker.up
    assert not tracker.tick(True) and not tracker.tick(True) and not tracker.up
    assert tracker.tick(True) and tracker.up


def test_no_evidence_and_a_single_contrary_tick_restart_the_count():
    tracker = Tracker()
    for evidence in (False, False, False, False, None, False, False, False, False, True, False):
        assert not tracker.tick(evidence)
    assert tracker.up  # never five silent ticks in a row: no flapping on a half-working tunnel


def test_the_zone_leaves_a_tunnel_the_watcher_found_silent_and_is_refused_with_none_left(tmp_path):
    config = config_for(tmp_path, FAILOVER)
    ages = {"wg3": 10, "wg4": 10}
    assert plan(config, BOTH, ages).exits == (("BLUE", "wg3"),)
    assert plan(config, BOTH, ages, frozenset({"wg3"})).exits == (("BLUE", "wg4"),)
    assert plan(config, BOTH, ages, frozenset({"wg3", "wg4"})).exits == (("BLUE", "refused"),)


def test_without_fallbacks_verdicts_change_nothing(tmp_path):
    config = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n")
    assert plan(config, BOTH, {}, frozenset({"wg3"})).exits == (("BLUE", "wg3"),)


def test_replies_of_the_zones_connections_pass_before_wgblock(tmp_path):
    desired = plan(config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\n"), BOTH)
    chains = {chain: specs for _, chain, specs in desired.firewall.chains}
    assert chains["ZONEVPN-REPLY"] == ("-d 192.168.2.0/24 -i wg3 -m conntrack --ctstate ESTABLISHED -j ACCEPT",)
    jump = next(j for j in desired.firewall.jumps if j.target == "ZONEVPN-REPLY")
    assert (jump.chain, jump.before) == ("FORWARD", ("WGBLOCK",))


def test_the_probe_target_is_the_admins_else_the_tunnels_resolver(tmp_path):
    root = make_root(str(tmp_path), settings=FAILOVER + "TUNNEL_3_DNS=10.5.0.1\nTUNNEL_4_PROBE=10.6.0.9\n",
                     peers=PEERS)
    settings = read_settings(Paths(root))
    assert settings.probe_target(3) == "10.5.0.1" and settings.probe_target(4) == "10.6.0.9"
    assert settings.probe_target(5) is None


def test_a_probe_target_that_is_no_address_is_refused_with_its_line(tmp_path):
    root = make_root(str(tmp_path), settings=FAILOVER + "TUNNEL_4_PROBE=vpn.example\n", peers=PEERS)
    with pytest.raises(InputError) as err:
        read_settings(Paths(root))
    assert "TUNNEL_4_PROBE" in str(err.value) and ":4" in str(err.value)


def test_unbound_refuses_exactly_the_zones_whose_dns_goes_through_their_tunnel(tmp_path):
    dns = config_for(tmp_path, "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_DNS=on\nTUNNEL_3_DNS=10.5.0.1\n")
    assert conf(dns) is not None and "server:\n\taccess-control: 192.168.2.0/24 refuse\n" in (conf(dns) or "")
    assert conf(dns._replace(enabled=False)) is None
    assert conf(config_for(tmp_path / "plain", "ENABLED=on\nBLUE_TUNNEL=3\n")) is None


def test_a_route_message_reads_back_as_the_route_it_describes():
    route = netlink.RouteFact(1002, "0.0.0.0", 0, 1, netlink.SCOPE_LINK, 122, 7, "10.5.0.2", 0)
    header = netlink._HDR.pack(0, netlink.NEWROUTE, 0, 1, 0)
    assert netlink.route_fact(netlink._route_body(route)) == route
    message = header + netlink._route_body(route)
    event = netlink.event(netlink.NEWROUTE, message)
    assert event and event.route == route and event.ifindex == 7
    half = route._replace(table=254, dst="128.0.0.0", dst_len=1, prefsrc=None, proto=3)
    assert netlink.route_fact(netlink._route_body(half)) == half
    assert socket.inet_aton(half.dst) in netlink._route_body(half)


def _with_policy(tmp_path, settings: str, row: str):  # type: ignore[no-untyped-def]
    root = make_root(str(tmp_path), settings=settings, peers=PEERS)
    with open(f"{root}/var/ipfire/zonevpn/policies", "w") as handle:
        handle.write(row + "\n")
    return load(Paths(root))


def test_a_policy_alone_keeps_the_watcher_and_its_fallbacks_are_probed(tmp_path):
    """A policy-only setup once made the watcher exit at its first apply: every `wireguard reload` then
    cost the policy's device ~9 packets (its table waited ~100 ms for the hook instead of the NEWADDR)."""
    from zonevpn.watch import has_work, probed_tunnels

    config = _with_policy(tmp_path, "ENABLED=on\n", "1,on,addr,192.168.1.50,,,,3,4,on,off,")
    assert not config.exits and has_work(config)
    assert [p.interface for p in probed_tunnels(config)] == ["wg3", "wg4"]
    alone = _with_policy(tmp_path / "b", "ENABLED=on\n", "1,on,addr,192.168.1.50,,,,3,,on,off,")
    assert has_work(alone) and probed_tunnels(alone) == []  # no fallback: no verdict changes anything
    assert not has_work(_with_policy(tmp_path / "c", "ENABLED=off\n", "1,on,addr,192.168.1.50,,,,3,,on,off,"))
    assert not has_work(config_for(tmp_path / "d", "ENABLED=on\n"))


def _exec_done(proc) -> None:  # type: ignore[no-untyped-def]
    """Until the child is the script's shell (before, /proc shows the forked Python or `unshare` itself, still
    in this network namespace with the script's name in its arguments)."""
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as handle:
            if handle.read().startswith(b"sh\0-c\0"):
                return
        time.sleep(0.01)
    raise AssertionError("the stand-in script did not start")


def test_an_initscript_at_work_in_this_network_namespace_postpones_the_watchers_apply():
    """A `wireguard reload` sets tunnels up one by one: the watcher's settle-apply once ran between two of
    them, found the kernel moved under it at its re-check and failed (exit 3). Real processes, no mocks."""
    import subprocess

    from zonevpn.watch import initscript_running

    script = ["sh", "-c", "sleep 5", "/etc/rc.d/init.d/wireguard", "reload"]  # as its command line reads
    assert not initscript_running()
    restart = subprocess.Popen(["sh", "-c", "sleep 5", "/etc/rc.d/rc3.d/S60wireguard", "restart"])
    try:
        _exec_done(restart)
        assert not initscript_running()  # restart's `sleep 1`: the zones are refused, the watcher must observe
    finally:
        restart.kill()
        restart.wait()
    elsewhere = subprocess.Popen(["unshare", "--net", *script])  # another box's network namespace
    try:
        _exec_done(elsewhere)
        assert not initscript_running()
        here = subprocess.Popen(script)
        try:
            _exec_done(here)
            assert initscript_running()
        finally:
            here.kill()
            here.wait()
        assert not initscript_running()
    finally:
        elsewhere.kill()
        elsewhere.wait()
