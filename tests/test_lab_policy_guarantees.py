"""The guarantees a bound zone has, proven for one device selected by an exit policy (not a whole zone):
DNS through the tunnel, port-forward replies through red, `wireguard reload`s and the boot never putting the
device on red. Real packets, counted where they arrive (the ISP behind red, the provider behind wg3); every
test prints its counts."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from conftest import wait_for_handshake
from lab import files
from lab.topology import ELSEWHERE, INTERNET
from test_lab_ipfire import boot, install, power_off
from test_lab_policies import RED, VPN3, policies

pytestmark = pytest.mark.lab
ANSWER = "203.0.113.53"  # what the provider's resolver (tests/dns_stub.py) answers
TV = "1,on,addr,192.168.1.50,,,,3"  # GREEN2 through wg3, kill switch on (the default)
RELOADS = 10


def _counter(lab, host: str, comment: str, *match: str) -> None:  # type: ignore[no-untyped-def]
    lab.ns(host, "iptables-legacy", "-t", "raw", "-A", "PREROUTING", *match, "-m", "comment", "--comment", comment)


def test_a_policy_devices_dns_is_answered_by_the_providers_resolver_and_none_crosses_red(lab):
    _counter(lab, "isp", "DNSTCP", "-i", "isp-red", "-p", "tcp", "--dport", "53")  # lab counts udp only
    policies(lab, TV + ",,on,on", tunnels=(3,), TUNNEL_3_DNS="10.5.0.1")
    lab.reset_counters()
    answers = {(server, proto): lab.dns("GREEN2", server, proto)
               for server in ("192.168.1.1", INTERNET, ELSEWHERE) for proto in ("udp", "tcp")}
    asked = [line for line in lab.dns_log(3) if line.endswith("zonevpn.test")]
    on_red = lab._count("isp", "DNS") + lab._count("isp", "DNSTCP")
    print(f"\n  GREEN2 DNS: answers {[(k, a.seen) for k, a in answers.items()]}; provider's resolver log "
          f"{asked}; DNS packets on red {on_red}")
    assert all(a.seen == ANSWER for a in answers.values()), (answers, lab.dump())
    assert len(asked) == len(answers) and all(" 10.5.0.2 " in line for line in asked), asked
    assert on_red == 0, lab.dump()
    lab.dns("GREEN", INTERNET)  # the rest of green is not redirected: its query goes out through red
    green_on_red = lab._count("isp", "DNS")
    print(f"  GREEN (no policy) DNS to {INTERNET}: on red {green_on_red}, provider's log {len(lab.dns_log(3))}")
    assert green_on_red >= 1 and len(lab.dns_log(3)) == len(answers)


def test_port_forward_replies_to_a_policy_device_go_back_through_red_its_own_flows_through_wg3(lab):
    """firewall.local (seeded): red:443 -> 192.168.1.52:443, the GREEN client, here selected by a policy."""
    for host, dev, comment in (("isp", "isp-red", "FWD-REPLY"), ("vpn", "wgvpn", "FWD-REPLY-WG3")):
        _counter(lab, host, comment, "-i", dev, "-p", "tcp", "--sport", "443")
    lab.serve("GREEN", 443)
    policies(lab, "1,on,addr,192.168.1.52,,,,3", tunnels=(3,))
    lab.reset_counters()
    inbound = [lab.probe_inbound() for _ in range(3)]
    replies_red, replies_wg3 = lab._count("isp", "FWD-REPLY"), lab._count("vpn", "FWD-REPLY-WG3")
    own = [lab.probe("GREEN", proto) for proto in ("udp", "tcp", "udp", "tcp")]
    counts = {"inbound seen": [p.seen for p in inbound], "replies on red": replies_red,
              "replies via wg3": replies_wg3, "own seen": [p.seen for p in own],
              "own on red": lab.red_count("GREEN"), "own via wg3": lab.tunnel_count("GREEN", 3)}
    print(f"\n  port forward to 192.168.1.52 (policy -> wg3): {counts}")
    assert all(p.seen == INTERNET for p in inbound), (inbound, lab.dump())
    assert replies_red >= 3 and replies_wg3 == 0, counts
    assert all(p.seen == VPN3 for p in own) and counts["own on red"] == 0 and counts["own via wg3"] >= 4, counts
    assert lab.probe("GREEN2").seen == RED  # the rest of green direct


def test_wireguard_reloads_never_put_a_policy_device_on_red(lab):
    lab.ns("fw", "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")  # every refusal answered, none rate-limited
    lab.wire_hooks()
    lab.write_zonevpn_settings(ENABLED="on")  # before wireguard starts: its hook starts the watcher
    files.write(lab.root, "var/ipfire/zonevpn/policies", TV + "\n")
    policies(lab, TV, tunnels=(3,))
    time.sleep(0.5)  # the watcher's own first apply: a policy alone must keep it running (it once exited)
    watcher = lab.watcher_pid()
    assert lab.probe("GREEN2").seen == VPN3, lab.dump()
    per_reload = []
    for _ in range(RELOADS):
        lab.reset_counters()
        lab.start_stream("GREEN2", rate=100)
        time.sleep(0.3)
        lab.wireguard("reload")
        time.sleep(0.3)
        stream = lab.stop_stream("GREEN2")
        per_reload.append({**stream, "lost": stream["sent"] - stream["answered"],
                           "red": lab.red_count("GREEN2"), "wg3": lab.tunnel_count("GREEN2", 3)})
    lost = [r["lost"] for r in per_reload]
    print(f"\n  watcher pid {watcher}; {RELOADS} wireguard reloads, GREEN2 at 100/s: lost per reload {lost} "
          f"(mean {sum(lost) / RELOADS:.2f}); sent {sum(r['sent'] for r in per_reload)}, refused "
          f"{sum(r['errors'] for r in per_reload)}, on red {[r['red'] for r in per_reload]}, "
          f"via wg3 {[r['wg3'] for r in per_reload]}")
    assert all(r["red"] == 0 for r in per_reload), (per_reload, lab.dump())
    assert all(r["wg3"] > 0 for r in per_reload), per_reload  # the stream was counted: it went through wg3
    assert watcher and lab.watcher_pid() == watcher  # it repaired table 2000 at each NEWADDR (not the hook)
    assert sum(lost) <= RELOADS, per_reload  # the zones' bound (test_lab_reload): before the fix, 8.4 a reload
    wait_for_handshake(lab, "wg3")
    assert lab.probe("GREEN2").seen == VPN3 and lab.probe("GREEN").seen == RED, lab.dump()


class PolicyRoutePoller:
    """`ip route get` to the internet for GREEN2's packet (the policy's device) and for GREEN's (the rest of
    green, direct: shows when red is up), one line of both every 20 ms, inside the box."""

    ROUTE = "ip -4 -o route get 203.0.113.10 from {} iif green0 2>&1 | head -c 160 | tr '|' ' '"
    LOOP = (f"while :; do a=$({ROUTE.format('192.168.1.50')}); b=$({ROUTE.format('192.168.1.52')}); "
            'echo "$a|$b"; sleep 0.02; done')

    def __init__(self, lab) -> None:  # type: ignore[no-untyped-def]
        self.proc = subprocess.Popen(lab.fw_command("sh", "-c", self.LOOP), stdout=subprocess.PIPE, text=True)

    def stop(self) -> list[tuple[str, str]]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return [(line.split("|")[0], line.split("|")[1]) for line in out.splitlines() if line.count("|") == 1]


def _kind(line: str) -> str:
    if " dev red0 " in line:
        return "red"
    if " dev wg" in line:
        return "tunnel"
    return "refused" if "RTNETLINK" in line or "prohibit" in line else "other"


def test_at_boot_a_policy_device_is_refused_until_its_tunnel_is_up_and_never_on_red(lab, package):
    install(lab, package)
    peers = os.path.join(lab.root, "var/ipfire/wireguard/peers")
    with open(peers) as handle:  # wg4 has no provider in this lab: switched off, as an admin would
        rows = [row.replace(",on,", ",off,", 1) if row.startswith("4,") else row
                for row in handle.read().splitlines()]
    files.write(lab.root, "var/ipfire/wireguard/peers", "\n".join(rows) + "\n")
    files.write(lab.root, "var/ipfire/zonevpn/policies", TV + "\n")
    lab.write_zonevpn_settings(ENABLED="on")
    for name in ("settings", "policies"):  # as the web page leaves them
        os.chown(os.path.join(lab.root, "var/ipfire/zonevpn", name), 65534, 65534)
    power_off(lab)
    lab.reset_counters()
    poller = PolicyRoutePoller(lab)
    lab.start_stream("GREEN2", rate=50)
    failed = boot(lab)
    wait_for_handshake(lab, "wg3")
    up = [lab.probe("GREEN2").seen, lab.probe("GREEN").seen]
    stream, lines = lab.stop_stream("GREEN2"), poller.stop()
    kinds = [(_kind(device), _kind(green)) for device, green in lines]
    device = [d for d, _ in kinds]
    first_tunnel = device.index("tunnel") if "tunnel" in device else len(device)
    before = {k: device[:first_tunnel].count(k) for k in ("refused", "red", "other")}
    refused_red_up = sum(d == "refused" and g == "red" for d, g in kinds[:first_tunnel])
    counts = {"polls": len(kinds), "before the tunnel": before, "refused while green had red": refused_red_up,
              "tunnel": device.count("tunnel"), "red": device.count("red"),
              "after the tunnel": sorted(set(device[first_tunnel:])), "stream": stream,
              "on red": lab.red_count("GREEN2"), "via wg3": lab.tunnel_count("GREEN2", 3),
              "failed boot steps": failed}
    print(f"\n  boot, GREEN2 (policy -> wg3) polled every 20 ms and streaming at 50/s: {counts}; after: {up}")
    others = sorted({d for (d, _), (kind, _) in zip(lines, kinds, strict=True) if kind == "other"})[:5]
    assert up == [VPN3, RED], (up, lab.dump())
    assert counts["red"] == 0 and counts["on red"] == 0, (counts, lab.dump())
    assert before["other"] == 0 and refused_red_up > 0, (counts, others)  # refused until its tunnel
    assert counts["tunnel"] > 0 and counts["via wg3"] > 0, counts
    lab.fw("/etc/rc.d/rc0.d/K70wireguard", "stop", check=False)  # shutdown: the tunnel goes first
    refused = lab.probe("GREEN2", timeout=2)  # refused, or unanswered: the kernel's ~1/s ICMP per sender
    route = lab.fw("ip", "-4", "-o", "route", "get", INTERNET, "from", "192.168.1.50", "iif", "green0",
                   check=False)
    print(f"  after K70wireguard stop: GREEN2 {refused}, route {_kind(route.stdout + route.stderr)}, "
          f"on red {lab.red_count('GREEN2')}")
    assert refused.seen is None and _kind(route.stdout + route.stderr) == "refused", (refused, route)
    assert lab.red_count("GREEN2") == 0, lab.dump()
