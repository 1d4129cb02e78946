"""Leak protection beyond routing, by real packets: DNS through the tunnel, IPv6, fallback tunnels, MSS."""

from __future__ import annotations

import json
import time

import pytest

from conftest import bind, wait_for_handshake
from lab import files

pytestmark = pytest.mark.lab
RED, VPN, VPN2 = "198.51.100.2", "192.0.2.10", "192.0.2.20"
DNS = {"BLUE_DNS": "on", "TUNNEL_3_DNS": "10.5.0.1"}


def test_blues_dns_goes_through_the_tunnel_and_none_of_it_crosses_red(lab):
    bind(lab, BLUE_TUNNEL="3", **DNS)
    lab.reset_counters()
    for server, proto in (("192.168.2.1", "udp"), ("203.0.113.10", "udp"), ("192.168.2.1", "tcp")):
        answer = lab.dns("BLUE", server, proto)  # to the firewall, or to any resolver it likes
        assert answer.seen == "203.0.113.53", (server, proto, answer, lab.dump())
    assert lab._count("isp", "DNS") == 0
    asked = [line for line in lab.dns_log() if line.endswith("zonevpn.test")]
    assert len(asked) == 3 and all(" 10.5.0.2 " in line for line in asked), asked
    lab.dns("GREEN", "203.0.113.10")  # green's DNS is not redirected: it goes out through red as before
    assert lab._count("isp", "DNS") == 1 and len(lab.dns_log()) == 3


def test_blues_dns_fails_closed_when_the_tunnel_is_gone(lab):
    bind(lab, BLUE_TUNNEL="3", **DNS)
    lab.reset_counters()
    lab.fw("ip", "link", "del", "wg3")
    assert lab.zonevpn("apply").returncode == 0
    answer = lab.dns("BLUE", "192.168.2.1")
    assert answer.seen is None and lab._count("isp", "DNS") == 0, (answer, lab.dump())


def _ipv6(lab) -> None:  # type: ignore[no-untyped-def]
    """IPv6 on blue, green and red (2001:db8::/32, the documentation prefix), forwarded by the box."""
    lab.ns("fw", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
    for host, dev, address in (("fw", "blue0", "2001:db8:2::1/64"), ("blue", "eth0", "2001:db8:2::10/64"),
                               ("fw", "green0", "2001:db8:1::1/64"), ("green", "eth0", "2001:db8:1::52/64"),
                               ("fw", "red0", "2001:db8:ff::2/64"), ("isp", "isp-red", "2001:db8:ff::1/64")):
        lab.ns(host, "ip", "-6", "addr", "add", address, "dev", dev, "nodad")
    lab.ns("blue", "ip", "-6", "route", "add", "default", "via", "2001:db8:2::1")
    lab.ns("green", "ip", "-6", "route", "add", "default", "via", "2001:db8:1::1")
    lab.ns("fw", "ip", "-6", "route", "add", "default", "via", "2001:db8:ff::1")
    lab.ns("isp", "ip6tables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", "isp-red", "-p", "udp",
           "--dport", "9006", "-m", "comment", "--comment", "V6")
    deadline = time.monotonic() + 10  # neighbour discovery needs link-local addresses past DAD
    while time.monotonic() < deadline and any(
            lab.ns(host, "ip", "-6", "addr", "show", "tentative").stdout for host in ("fw", "isp", "blue", "green")):
        time.sleep(0.1)
    for zone in ("blue", "green"):  # resolve the neighbours along the way before counting
        lab.ns(zone, "python3", "-c", "import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)"
               ".sendto(b'warm', ('2001:db8:ff::1', 9999))")
    time.sleep(0.3)


def _v6_on_red(lab) -> int:  # type: ignore[no-untyped-def]
    table = lab.ns("isp", "ip6tables-legacy", "-t", "raw", "-L", "PREROUTING", "-vnx").stdout
    return int(table.splitlines()[2].split()[0])


def _send_v6(lab, zone: str) -> None:  # type: ignore[no-untyped-def]
    code = ("import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); "
            "[s.sendto(b'v6', ('2001:db8:ff::1', 9006)) for _ in range(5)]")
    lab.ns(zone.lower(), "python3", "-c", code, check=False)


def test_a_bound_zones_ipv6_never_leaves_through_red(lab):
    _ipv6(lab)
    _send_v6(lab, "BLUE")
    time.sleep(0.2)
    assert _v6_on_red(lab) == 5  # without zonevpn the box forwards blue's IPv6 to red
    lab.ns("isp", "ip6tables-legacy", "-t", "raw", "-Z")
    bind(lab, BLUE_TUNNEL="3")
    _send_v6(lab, "BLUE")
    _send_v6(lab, "GREEN")
    time.sleep(0.2)
    assert _v6_on_red(lab) == 5, lab.fw("ip6tables-save").stdout  # green's five, none of blue's
    status = lab.zonevpn("status", "--json")
    assert '"ipv6": "refused"' in status.stdout


def test_a_policy_for_a_whole_zone_refuses_its_ipv6_one_by_address_says_it_cannot(lab):
    """Exit policies (issue 12): a zone-wide policy through wg3 refuses the zone's IPv6 by its interface
    (as a bound zone's); a device selected by its IPv4 address has no IPv6 identity, and status says so."""
    _ipv6(lab)
    files.write(lab.root, "var/ipfire/zonevpn/policies", "1,on,zone,BLUE,,,,3\n2,on,addr,192.168.1.50,,,,3\n")
    bind(lab)  # no zone bound: only the policies
    _send_v6(lab, "BLUE")
    _send_v6(lab, "GREEN")
    time.sleep(0.2)
    on_red = _v6_on_red(lab)
    print(f"\n  IPv6 datagrams on red: {on_red} of 10 (green's 5 pass, blue's 5 refused)")
    assert on_red == 5, lab.fw("ip6tables-save").stdout
    policies = json.loads(lab.zonevpn("status", "--json").stdout)["policies"]
    assert [p["ipv6"] for p in policies] == [
        "refused", "follows the zone (an IPv4 address does not select IPv6: select the device by MAC)"]
    assert lab.zonevpn("apply", "--dry-run").stdout == ""  # idempotent, the ip6tables rule included


def _watch_log(lab) -> str:  # type: ignore[no-untyped-def]
    """What the watcher's applies said (its log holds their stderr)."""
    return lab.fw("cat", "/run/zonevpn/watch.log", check=False).stdout


def test_blue_fails_over_to_the_fallback_tunnel_and_comes_back(blue_with_fallback):
    two = blue_with_fallback  # two providers; blue bound to wg3, wg4 its fallback
    assert two.probe("BLUE").seen == VPN
    two.reset_counters()
    two.fw("ip", "link", "del", "wg3")
    switched = two.zonevpn("hook", "wireguard", "reload")
    assert switched.returncode == 0
    two.zonevpn("integrate", "remove")  # the hook wired itself in (Core Update repair): this test applies by hand
    assert two.probe("BLUE").seen == VPN2, two.dump()
    log = two.zonevpn("apply").stderr
    seen_before = len(_watch_log(two))
    two.wireguard("reload")  # wg3 is back
    wait_for_handshake(two, "wg3")
    time.sleep(1)  # the watcher's own apply (0.3 s after the reload's burst of events) may switch first
    back = two.zonevpn("apply")
    # the reload flushed wg4's address too, so the kernel held blue refused for a moment; the switch
    # back from wg4 still forgets blue's connections NATed to wg4 (whichever apply made it)
    said = _watch_log(two)[seen_before:] + back.stderr
    print(f"\n  failover apply:\n{log}\n  switch back (watcher's log, then the test's apply):\n{said}")
    assert "BLUE (192.168.2.0/24) now leaves via wg3" in said and "now leaves via wg4" not in said, said
    assert "conntrack entries forgotten" in said
    assert two.probe("BLUE").seen == VPN
    two.fw("ip", "link", "del", "wg3")
    two.fw("ip", "link", "del", "wg4")
    two.zonevpn("apply")
    assert two.probe("BLUE").error in ("EHOSTUNREACH", "EACCES") and two.red_count("BLUE") == 0


def test_tcp_into_the_tunnel_is_clamped_to_its_mtu(lab):
    bind(lab, BLUE_TUNNEL="3")
    blue = lab.probe("BLUE", "tcp").reply or ""
    green = lab.probe("GREEN", "tcp").reply or ""
    blue_mss, green_mss = int(blue.split()[-1]), int(green.split()[-1])
    assert blue_mss <= 1420 - 40 < green_mss, (blue, green)
