"""`zonevpn explain` against real packets: for every case (bound, refused, direct, local, port-forward
reply, fallback) the verdict read from the kernel must be where the lab's packets really go, and the
source address it names must be the one the far end sees (or the one conntrack NATs to)."""

from __future__ import annotations

import json

import pytest

from conftest import bind

pytestmark = pytest.mark.lab
RED, VPN, VPN2, INTERNET = "198.51.100.2", "192.0.2.10", "192.0.2.20", "203.0.113.10"


def explain(lab, *args: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    result = lab.zonevpn("explain", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_bound_zone_leaves_via_its_tunnel_as_the_tunnel_address_as_explained(lab):
    bind(lab, BLUE_TUNNEL="3")
    said = explain(lab, "192.168.2.10", INTERNET, "--proto", "udp", "--port", "9002")
    assert (said["verdict"], said["interface"], said["leaves_as"], said["binding"]) == \
        ("tunnel", "wg3", "10.5.0.2", "BLUE"), said
    assert said["summary"] == \
        "192.168.2.10 → 203.0.113.10 udp/9002: leaves via wg3 (nordvpn) as 10.5.0.2 (binding BLUE)"
    assert said["rule"].startswith("1032: from 192.168.2.0/24 lookup 1002") and said["kernel"]["agrees_with_replay"]
    lab.reset_counters()
    assert lab.probe("BLUE").seen == VPN
    assert lab.tunnel_count("BLUE") >= 1 and lab.red_count("BLUE") == 0, lab.dump()
    flows = lab.fw("conntrack", "-L", "-s", "192.168.2.10", "-p", "udp").stdout
    assert f"dst={said['leaves_as']}" in flows, flows  # the reply tuple: NATed to what explain said


def test_unbound_zone_goes_direct_via_red_as_reds_address_as_explained(lab):
    bind(lab, BLUE_TUNNEL="3")
    said = explain(lab, "192.168.1.52", INTERNET)
    assert (said["verdict"], said["interface"], said["leaves_as"]) == ("direct", "red0", RED), said
    assert said["summary"].endswith("direct via red0 as 198.51.100.2")
    lab.reset_counters()
    assert lab.probe("GREEN").seen == said["leaves_as"]  # what the internet host saw
    assert lab.red_count("GREEN") >= 1 and lab.tunnel_count("GREEN") == 0


@pytest.mark.parametrize("how", ["deleted", "stopped"])
def test_refused_is_explained_as_the_kill_switch_with_since_and_why_and_no_packet_reaches_red(lab, how):
    bind(lab, BLUE_TUNNEL="3")
    if how == "deleted":
        lab.fw("ip", "link", "del", "wg3")
        lab.zonevpn("apply")
        why = "wg3 missing"
    else:
        lab.wireguard("stop")
        lab.zonevpn("hold")
        why = "held"
    said = explain(lab, "192.168.2.10", INTERNET)
    assert said["verdict"] == "refused" and said["killswitch"]["since"], said
    assert said["says"].startswith(f"refused: kill switch — {why}") and "(since " in said["says"], said
    lab.reset_counters()
    refused = lab.probe("BLUE", timeout=2)
    assert refused.error in ("EHOSTUNREACH", "EACCES", "ECONNREFUSED"), refused
    assert lab.red_count("BLUE") == 0 and lab.tunnel_count("BLUE") == 0, lab.dump()


def test_local_destinations_are_explained_local_and_stay_local(lab):
    bind(lab, GREEN_TUNNEL="3")
    lab.serve("BLUE", 7000)
    said = explain(lab, "192.168.1.52", "192.168.2.10", "--proto", "udp", "--port", "7000")
    assert (said["verdict"], said["interface"], said["leaves_as"]) == ("local", "blue0", "192.168.1.52"), said
    assert said["rule"].startswith("1011: from 192.168.1.0/24 lookup main suppress_prefixlength 1")
    lab.reset_counters()
    seen = lab.probe("GREEN", host="192.168.2.10", port=7000)
    assert seen.seen == said["leaves_as"], seen  # straight across: neither NATed nor tunnelled
    box = explain(lab, "192.168.1.52", "192.168.1.1")
    assert box["verdict"] == "local" and box["says"] == "local: delivered to the firewall itself", box


def test_port_forward_reply_is_explained_via_red_while_new_flows_use_the_tunnel(lab):
    lab.serve("GREEN", 443)
    bind(lab, GREEN_TUNNEL="3")
    new = explain(lab, "192.168.1.52", INTERNET, "--proto", "tcp", "--port", "9001")
    reply = explain(lab, "192.168.1.52", INTERNET, "--proto", "tcp", "--port", "40000", "--reply")
    assert (new["verdict"], new["interface"]) == ("tunnel", "wg3"), new
    assert (reply["verdict"], reply["interface"], reply["leaves_as"]) == ("direct", "red0", RED), reply
    assert reply["rule"].startswith("1000: from all fwmark 0x400000/0x400000 lookup main"), reply
    assert any("--to-destination 192.168.1.52:443" in f for f in reply["firewall"]["port_forward"]), reply
    inbound = lab.probe_inbound()  # from the internet to red:443, answered by the green server
    assert inbound.seen == INTERNET, (inbound, lab.dump())
    assert lab.probe("GREEN", "tcp").seen == VPN


def test_fallback_is_explained_with_the_reason_and_packets_use_it(blue_with_fallback):
    two = blue_with_fallback  # two providers; blue bound to wg3, wg4 its fallback
    two.fw("ip", "link", "del", "wg3")
    assert two.zonevpn("apply").returncode == 0
    said = explain(two, "192.168.2.10", INTERNET)
    assert (said["verdict"], said["interface"], said["leaves_as"]) == ("tunnel", "wg4", "10.6.0.2"), said
    assert said["says"] == "leaves via wg4 (mullvad) as 10.6.0.2 (binding BLUE, fallback for wg3: wg3 missing)"
    assert two.probe("BLUE").seen == VPN2, two.dump()


@pytest.mark.parametrize(("args", "words"), [
    (["10.99.0.1", INTERNET], "10.99.0.1 is in no zone"),
    (["192.168.2.10", INTERNET, "--proto", "tcp", "--port", "70000"], "'70000' is not a port"),
    (["192.168.2.10", INTERNET, "--port", "443"], "needs --proto"),
    (["blue-laptop"], "'blue-laptop' is not an IPv4 address"),
])
def test_bad_input_is_a_clear_error_and_changes_nothing(lab, args, words):
    bind(lab, BLUE_TUNNEL="3")
    before = lab.state()
    result = lab.zonevpn("explain", *args)
    assert result.returncode == 2 and words in result.stderr, result.stderr
    assert result.stdout == "" and lab.state() == before
