"""explain's replays (the kernel's rule walk, our firewall chains) on kernel dumps as `ip -json` and
iptables-save print them; the probe's protocols against loopback services; PROBE_URL validation."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from zonevpn import exitprobe, fib, fwmatch
from zonevpn.errors import InputError
from zonevpn.firewall import parse_save
from zonevpn.paths import Paths
from zonevpn.settings import read_settings

BLUE = {"src": "192.168.2.0", "srclen": 24, "protocol": "122"}
RULES = [{"priority": 0, "src": "all", "table": "255"},
         {"priority": 1000, "src": "all", "fwmark": "0x400000", "fwmask": "0x400000", "table": "254"},
         {"priority": 1012, **BLUE, "table": "254", "suppress_prefixlen": 1},
         {"priority": 1032, **BLUE, "table": "1002"},
         {"priority": 1042, **BLUE, "action": "8"},
         {"priority": 32766, "src": "all", "table": "254"}]
ROUTES = [{"type": "2", "dst": "192.168.2.1", "dev": "blue0", "table": "255"},
          {"dst": "default", "gateway": "198.51.100.1", "dev": "red0"},
          {"dst": "0.0.0.0/1", "dev": "wg5"},  # another tunnel's half: suppressed for a bound zone
          {"dst": "192.168.1.0/24", "dev": "green0"},
          {"dst": "default", "dev": "wg3", "prefsrc": "10.5.0.2", "table": "1002", "protocol": "122"},
          {"type": "8", "dst": "default", "metric": 4000000000, "table": "1002", "protocol": "122"}]


def decide(dst: str, src: str = "192.168.2.10", routes: list = ROUTES, **flow: object) -> fib.Decision:  # type: ignore[type-arg]
    return fib.decide(fib.Flow(src, dst, "blue0", **flow), RULES, routes)  # type: ignore[arg-type]


def test_a_bound_zone_goes_to_its_table_past_main_whose_defaults_are_suppressed():
    d = decide("203.0.113.10")
    assert (d.kind, d.rule["priority"], d.table, d.route["dev"]) == ("route", 1032, 1002, "wg3")
    assert fib.describe_rule(d.rule) == "1032: from 192.168.2.0/24 lookup 1002"


def test_local_destinations_stop_at_main_and_the_firewall_at_local():
    d = decide("192.168.1.52")
    assert (d.rule["priority"], d.route["dev"]) == (1012, "green0")
    assert decide("192.168.2.1").kind == "local"


def test_without_the_tunnels_route_the_prohibit_route_refuses_and_without_it_the_rule():
    no_tunnel = [r for r in ROUTES if r.get("dev") != "wg3"]
    d = decide("203.0.113.10", routes=no_tunnel)
    assert (d.kind, d.table, d.route["type"]) == ("refused", 1002, "8")
    d = decide("203.0.113.10", routes=[r for r in no_tunnel if r.get("table") != "1002"])
    assert (d.kind, d.rule["priority"]) == ("refused", 1042)


def test_a_marked_reply_and_another_zone_use_main():
    assert decide("203.0.113.10", mark=0x400000).rule["priority"] == 1000
    d = decide("1.1.1.1", src="192.168.1.52")
    assert (d.rule["priority"], d.route["dev"]) == (32766, "wg5")  # stock IPFire: green rides the /1


def test_rules_with_selectors_not_replayed_are_named_not_guessed():
    rules = [{"priority": 10, "src": "all", "uidrange": "0-0", "table": "9"}, *RULES]
    assert decide("203.0.113.10", routes=ROUTES).skipped == () and \
        fib.decide(fib.Flow("192.168.2.10", "1.1.1.1", "blue0"), rules, ROUTES).skipped


SAVE = """*filter
:FORWARD DROP [0:0]
:ZONEVPN - [0:0]
:ZONEVPN-KILL - [0:0]
-A FORWARD -m comment --comment zonevpn -j ZONEVPN-KILL
-A FORWARD -m comment --comment zonevpn -j ZONEVPN
-A ZONEVPN -s 192.168.2.0/24 -i blue0 -o wg3 -j ACCEPT
-A ZONEVPN-KILL -i blue0 -o red0 -j REJECT --reject-with icmp-admin-prohibited
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:REDNAT - [0:0]
:ZONEVPN-NAT - [0:0]
-A POSTROUTING -m comment --comment zonevpn -j ZONEVPN-NAT
-A POSTROUTING -j REDNAT
-A REDNAT -m policy --dir out --pol ipsec -o red0 -j RETURN
-A REDNAT -m set --match-set BLOCKED src -j RETURN
-A REDNAT -o red0 -j MASQUERADE
-A ZONEVPN-NAT -s 192.168.2.0/24 -o wg3 -j SNAT --to-source 10.5.0.2
COMMIT
"""


def test_our_chains_accept_into_the_tunnel_refuse_to_red_and_nat_to_the_tunnel_address():
    live = parse_save(SAVE)
    into = fwmatch.Packet("192.168.2.10", "1.1.1.1", "blue0", "wg3", "udp", 53)
    red = into._replace(oif="red0")
    assert fwmatch.walk(live, "filter", "ZONEVPN", into).target == "ACCEPT"
    assert fwmatch.walk(live, "filter", "ZONEVPN-KILL", red).target == "REJECT"
    assert fwmatch.walk(live, "filter", "ZONEVPN-KILL", into).target is None
    nat = fwmatch.walk(live, "nat", "POSTROUTING", into)
    assert (nat.target, nat.argument) == ("SNAT", "10.5.0.2")
    masq = fwmatch.walk(live, "nat", "POSTROUTING", red._replace(src="192.168.1.52", iif="green0"))
    assert masq.target == "MASQUERADE" and masq.unsure == ("REDNAT -m set --match-set BLOCKED src -j RETURN",)


def _serve(kind: int, answer: bytes) -> int:
    sock = socket.socket(socket.AF_INET, kind)
    sock.bind(("127.0.0.1", 0))
    if kind == socket.SOCK_STREAM:
        sock.listen(1)

    def run() -> None:
        if kind == socket.SOCK_DGRAM:
            _, peer = sock.recvfrom(100)
            sock.sendto(answer, peer)
        else:
            conn, _ = sock.accept()
            if answer.startswith(b"HTTP"):  # a web service reads the request; the tcp:// kind speaks first
                conn.recv(1000)
            conn.sendall(answer)
            conn.close()
        sock.close()

    threading.Thread(target=run, daemon=True).start()
    return int(sock.getsockname()[1])


@pytest.mark.skipif(os.geteuid() != 0, reason="binding to a device needs root")
@pytest.mark.parametrize(("scheme", "kind", "answer", "public", "error"), [
    ("udp", socket.SOCK_DGRAM, b"seen 192.0.2.10", "192.0.2.10", None),
    ("tcp", socket.SOCK_STREAM, b"seen 192.0.2.10 mss 1380", "192.0.2.10", None),
    ("http", socket.SOCK_STREAM, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n192.0.2.20\n", "192.0.2.20",
     None),
    ("http", socket.SOCK_STREAM, b"HTTP/1.1 403 Forbidden\r\n\r\n198.51.100.1", None, "the service answered"),
    ("tcp", socket.SOCK_STREAM, b"hello", None, "no IPv4 address in the answer"),
])
def test_the_probe_reads_the_address_each_kind_of_service_answers(scheme, kind, answer, public, error):
    port = _serve(kind, answer)
    result = exitprobe.probe_one("lo", "127.0.0.1", f"{scheme}://127.0.0.1:{port}/ip", timeout=2)
    assert result["public"] == public and (error or "") in (result["error"] or ""), result


@pytest.mark.parametrize(("url", "ok"), [
    ("https://ifconfig.co/ip", True), ("udp://203.0.113.10:9002", True), ("http://192.0.2.1:8080/", True),
    ("udp://203.0.113.10", False), ("ftp://x/", False), ("http://x:70000/", False), ("tcp://x:0", False)])
def test_probe_url_is_validated_with_file_line_and_field(tmp_path, url, ok):
    path = tmp_path / "var/ipfire/zonevpn/settings"
    path.parent.mkdir(parents=True)
    path.write_text(f"ENABLED=on\nPROBE_URL={url}\n")
    if ok:
        assert read_settings(Paths(str(tmp_path))).probe_url == url
    else:
        with pytest.raises(InputError, match="settings:2: field PROBE_URL: not a probe URL"):
            read_settings(Paths(str(tmp_path)))
