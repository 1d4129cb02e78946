"""Exit policies by real packets on the IPFire box: the six examples of issue 12, each client counted where
its packets arrive (at the ISP behind red, at the provider behind each tunnel), and the guarantees a zone
has, per policy. The internet host answers with the source it saw: 198.51.100.2 = red, 192.0.2.10 = the
provider behind wg3, 192.0.2.20 = the one behind wg4. Every test prints its packet counts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import wait_for_handshake
from lab import files
from lab.topology import CLIENTS, ELSEWHERE
from policy_files import CUSTOMGROUPS, CUSTOMHOSTS, CUSTOMNETWORKS

pytestmark = pytest.mark.lab
RED, VPN3, VPN4 = "198.51.100.2", "192.0.2.10", "192.0.2.20"
REFUSED = ("EHOSTUNREACH", "EACCES", "ECONNREFUSED", "ENETUNREACH")
TRIES = 5  # probes per client and protocol


@pytest.fixture
def lab():
    from lab import Lab

    with Lab(providers=(3, 4)) as built:
        yield built


def policies(lab, *rows: str, tunnels: tuple[int, ...] = (3, 4), **settings: str) -> None:  # type: ignore[no-untyped-def]
    """The policies and settings, wireguard started as IPFire boots it, then `zonevpn apply`. A tunnel
    that routes 0.0.0.0/0 and is no exit drags every zone into itself on stock IPFire (zonevpn leaves it
    alone): `tunnels` are the ones enabled in IPFire, the others are switched off as an admin would."""
    files.write(lab.root, "var/ipfire/zonevpn/policies", "".join(row + "\n" for row in rows))
    if lab.fw("ip", "link", "show", "wg3", check=False).returncode != 0:
        peers = f"{lab.root}/var/ipfire/wireguard/peers"
        with open(peers) as handle:
            rows_ = [row if row[:2] not in ("3,", "4,") or int(row[0]) in tunnels else
                     row.replace(",on,", ",off,", 1) for row in handle.read().splitlines()]
        files.write(lab.root, "var/ipfire/wireguard/peers", "\n".join(rows_) + "\n")
        lab.wireguard("start")
        for peer_id in tunnels:
            wait_for_handshake(lab, f"wg{peer_id}")
    lab.write_zonevpn_settings(ENABLED="on", **settings)
    result = lab.zonevpn("apply")
    assert result.returncode == 0, result.stderr + lab.dump()


def fwhosts(lab, groups: str = CUSTOMGROUPS) -> None:  # type: ignore[no-untyped-def]
    for name, text in (("customhosts", CUSTOMHOSTS), ("customnetworks", CUSTOMNETWORKS),
                       ("customgroups", groups)):
        files.write(lab.root, f"var/ipfire/fwhosts/{name}", text)


def traffic(lab, *clients: str, host: str | None = None) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    """TRIES udp and TRIES tcp probes from each client; what the far end saw, and where they arrived."""
    lab.reset_counters()
    seen = {}
    for client in clients:
        answers = {lab.probe(client, proto, **({"host": host} if host else {})).seen
                   for proto in ("udp", "tcp") for _ in range(TRIES)}
        seen[client] = answers
    counts = {client: {"seen": sorted(map(str, seen[client])), "red": lab.red_count(client),
                       "wg3": lab.tunnel_count(client, 3), "wg4": lab.tunnel_count(client, 4)}
              for client in clients}
    print(f"\n  packets{' to ' + host if host else ''}: {counts}")
    return counts


def only(counts: dict[str, object], seen: str, where: str) -> bool:
    others = {"red", "wg3", "wg4"} - {where}
    return counts["seen"] == [seen] and counts[where] >= 2 * TRIES and all(counts[o] == 0 for o in others)


def test_1_only_one_green_host_leaves_through_wg3_the_rest_of_green_direct(lab):
    policies(lab, "1,on,addr,192.168.1.50,,,,3", tunnels=(3,))
    counts = traffic(lab, "GREEN2", "GREEN")
    assert only(counts["GREEN2"], VPN3, "wg3") and only(counts["GREEN"], RED, "red"), (counts, lab.dump())
    status = json.loads(lab.zonevpn("status", "--json").stdout)
    assert [(p["number"], p["exit"]) for p in status["policies"]] == [(1, "wg3")], status


def test_2_blue_through_wg3_except_one_laptop_selected_by_its_mac(lab):
    policies(lab, f"1,on,mac,{CLIENTS['BLUE2'][3]},,,,red", BLUE_TUNNEL="3", tunnels=(3,))
    counts = traffic(lab, "BLUE2", "BLUE")
    assert only(counts["BLUE2"], RED, "red") and only(counts["BLUE"], VPN3, "wg3"), (counts, lab.dump())


def test_3_blue_through_wg3_but_203_0_113_0_24_direct(lab):
    policies(lab, "1,on,zone,BLUE,203.0.113.0/24,,,red", BLUE_TUNNEL="3", tunnels=(3,))
    direct = traffic(lab, "BLUE", "BLUE2")
    tunnelled = traffic(lab, "BLUE", "BLUE2", host=ELSEWHERE)
    for client in ("BLUE", "BLUE2"):
        assert only(direct[client], RED, "red"), (direct, lab.dump())
        assert only(tunnelled[client], VPN3, "wg3"), (tunnelled, lab.dump())


def test_4_one_orange_server_through_wg4_with_kill_switch_the_rest_of_orange_direct(lab):
    policies(lab, "1,on,addr,192.168.3.20,,,,4,,on", tunnels=(4,))
    counts = traffic(lab, "ORANGE2", "ORANGE")
    assert only(counts["ORANGE2"], VPN4, "wg4") and only(counts["ORANGE"], RED, "red"), (counts, lab.dump())
    lab.fw("ip", "link", "del", "wg4")  # the tunnel is gone: the kill switch holds, at once
    lab.reset_counters()
    refused = lab.probe("ORANGE2", timeout=2)
    for _ in range(TRIES):
        lab.probe("ORANGE2", timeout=0.3)
        lab.probe("ORANGE2", "tcp", timeout=0.3)
    print(f"\n  wg4 deleted: ORANGE2 {refused}, on red {lab.red_count('ORANGE2')}")
    assert refused.error in REFUSED and refused.ms < 500, refused
    assert lab.red_count("ORANGE2") == 0 and lab.probe("ORANGE").seen == RED, lab.dump()
    lab.zonevpn("hook", "wireguard", "reload")
    status = json.loads(lab.zonevpn("status", "--json").stdout)
    assert [(p["number"], p["exit"]) for p in status["policies"]] == [(1, "refused")], status


def test_5_an_ipfire_host_group_through_wg3_follows_the_group_when_the_hook_runs(lab):
    fwhosts(lab)  # kids: tv 192.168.1.50 (green) and tablet 192.168.3.20 (orange)
    policies(lab, "1,on,group,kids,,,,3", tunnels=(3,))
    before = traffic(lab, "GREEN2", "ORANGE2", "BLUE2", "GREEN")
    assert only(before["GREEN2"], VPN3, "wg3") and only(before["ORANGE2"], VPN3, "wg3"), before
    assert only(before["BLUE2"], RED, "red") and only(before["GREEN"], RED, "red"), before
    hosts = CUSTOMHOSTS.replace("02:00:00:00:02:14", CLIENTS["BLUE2"][3])
    files.write(lab.root, "var/ipfire/fwhosts/customhosts", hosts)
    files.write(lab.root, "var/ipfire/fwhosts/customgroups", CUSTOMGROUPS + "8,kids,,laptop,Custom Host\n")
    lab.zonevpn("hook", "firewall", "reload")  # what IPFire's firewall reload after the change runs
    after = traffic(lab, "BLUE2", "BLUE")
    assert only(after["BLUE2"], VPN3, "wg3") and only(after["BLUE"], RED, "red"), (after, lab.dump())


def test_6_a_blocked_device_is_refused_at_once_not_timed_out(lab):
    policies(lab, f"1,on,mac,{CLIENTS['BLUE2'][3]},,,,block", "2,on,addr,192.168.1.50,,,,block", tunnels=())
    lab.reset_counters()
    answers = [lab.probe(client, proto, timeout=2) for client in ("BLUE2", "GREEN2") for proto in ("udp", "tcp")]
    print(f"\n  blocked: {answers}; on red {lab.red_count('BLUE2')} + {lab.red_count('GREEN2')}")
    assert all(a.error in REFUSED and a.ms < 500 for a in answers), answers
    assert lab.red_count("BLUE2") == lab.red_count("GREEN2") == 0
    assert lab.probe("BLUE").seen == RED and lab.probe("GREEN").seen == RED


def test_applying_twice_changes_nothing_and_flush_gives_the_box_back(lab):
    lab.wireguard("start")
    wait_for_handshake(lab, "wg3")
    stock = lab.state()
    fwhosts(lab)
    policies(lab, "1,on,group,kids,,,,3", f"2,on,mac,{CLIENTS['BLUE2'][3]},,,,red",
             "3,on,zone,BLUE,203.0.113.0/24,tcp,9002,red", "4,on,addr,192.168.3.20,,,,4,3",
             BLUE_TUNNEL="3")
    again = lab.zonevpn("apply")
    assert again.returncode == 0 and again.stderr.strip().endswith("0 changes"), again.stderr
    assert lab.zonevpn("flush").returncode == 0
    assert lab.state() == stock


def test_a_mac_selected_device_never_reaches_red_while_the_firewall_restarts(lab):
    """IPFire's `firewall restart` flushes every chain, our device marks with them (established flows keep
    theirs: IPFire's own CONNMARK restore gives them back). New connections in that window carry no mark:
    the guard rule refuses them until firewall.local's hook puts the marks back."""
    lab.wire_hooks()
    policies(lab, f"1,on,mac,{CLIENTS['BLUE2'][3]},,,,3", tunnels=(3,))
    lab.reset_counters()
    flows = subprocess.Popen(["ip", "netns", "exec", "zvlab-blue2", sys.executable, "-c", NEW_FLOWS,
                              ELSEWHERE, str(CLIENTS["BLUE2"][2])], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        for _ in range(3):
            lab.firewall("restart")
        time.sleep(0.3)
    finally:
        flows.terminate()
    sent = flows.communicate(timeout=10)[0].strip()
    print(f"\n  3 firewall restarts under {sent} new udp flows: on red {lab.red_count('BLUE2')}, "
          f"through wg3 {lab.tunnel_count('BLUE2', 3)}")
    assert lab.red_count("BLUE2") == 0 and lab.tunnel_count("BLUE2", 3) > 50, lab.dump()
    assert lab.probe("BLUE2").seen == VPN3 and lab.probe("BLUE").seen == RED


NEW_FLOWS = """
import signal, socket, sys, time
sent, stop = 0, []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
while not stop:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a new source port: a new connection
    try:
        sock.sendto(b"new", (sys.argv[1], int(sys.argv[2])))
        sent += 1
    except OSError:
        pass
    sock.close()
    time.sleep(0.005)
print(sent)
"""


def _flow_ids(lab, source: str) -> set[str]:  # type: ignore[no-untyped-def]
    out = lab.fw("conntrack", "-L", "-s", source, "-p", "udp", "-o", "id", check=False).stdout
    return {part for line in out.splitlines() for part in line.split() if part.startswith("id=")}


def test_only_the_flows_whose_way_changed_are_forgotten(lab):
    policies(lab, "1,on,addr,192.168.1.50,,,,3", tunnels=(3,))  # wg3 is an exit: blue leaves through red
    lab.start_stream("BLUE2", rate=50)
    lab.start_stream("BLUE", rate=50)
    time.sleep(0.5)
    blue_before = _flow_ids(lab, "192.168.2.10")
    policies(lab, "1,on,addr,192.168.1.50,,,,3", "2,on,addr,192.168.2.20,,,,3", tunnels=(3,))
    lab.reset_counters()
    time.sleep(0.5)
    moved, stayed = lab.stop_stream("BLUE2"), lab.stop_stream("BLUE")
    print(f"\n  BLUE2 moved to wg3: {moved}, red {lab.red_count('BLUE2')}, wg3 {lab.tunnel_count('BLUE2', 3)}; "
          f"BLUE stayed: {stayed}, flow ids {blue_before} -> {_flow_ids(lab, '192.168.2.10')}")
    assert lab.red_count("BLUE2") == 0 and lab.tunnel_count("BLUE2", 3) > 5, lab.dump()
    assert blue_before and _flow_ids(lab, "192.168.2.10") == blue_before  # blue's flow was kept
    assert lab.red_count("BLUE") > 5
