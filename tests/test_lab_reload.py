"""`wireguard reload` (the web page after any peer change, cron's wg-dynamic) must not cost a bound zone
its traffic: the reload's `ip addr flush` makes the kernel drop our routes through the tunnel and its
`-F WGBLOCK` our RETURNs. The watcher puts the routes back the moment the address is back, and replies of
the zone's connections pass before WGBLOCK. Deleting the tunnel still refuses the zone at once."""

from __future__ import annotations

import time

import pytest

from conftest import wait_for_handshake
from test_lab_watch import REFUSED, VPN, wait_for_watcher

pytestmark = pytest.mark.lab
RELOADS = 50


def test_fifty_reloads_cost_blue_at_most_one_packet_each_and_deleting_the_tunnel_refuses_at_once(lab):
    lab.ns("fw", "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")  # every refusal answered, none rate-limited
    lab.wire_hooks()
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
    lab.wireguard("start")
    wait_for_handshake(lab)
    wait_for_watcher(lab)
    assert lab.probe("BLUE").seen == VPN
    lab.reset_counters()
    lab.start_stream("BLUE", rate=100)
    time.sleep(0.5)
    for _ in range(RELOADS):
        lab.wireguard("reload")
    time.sleep(0.5)
    blue = lab.stop_stream("BLUE")
    lost = blue["sent"] - blue["answered"]
    print(f"\n{RELOADS} wireguard reloads, blue at 100/s: sent {blue['sent']}, lost {lost} "
          f"({lost / RELOADS:.2f} a reload), refused {blue['errors']}, 0 on red")
    assert lost <= RELOADS, blue
    assert lab.red_count("BLUE") == 0, lab.dump()
    time.sleep(1.1)  # the kernel sends one sender ~1 refusal a second (ip_error): let one through
    lab.fw("ip", "link", "del", "wg3")
    refused = lab.probe("BLUE")
    assert refused.error in REFUSED and refused.ms < 100, (refused, lab.dump())
    assert lab.red_count("BLUE") == 0
    lab.wireguard("stop")  # stop deletes every wg interface too
    lab.wireguard("start")
    wait_for_handshake(lab)
    lab.wireguard("stop")
    time.sleep(1.1)  # the kernel sends one sender ~1 refusal a second (ip_error): let one through
    assert lab.probe("BLUE").error in REFUSED and lab.red_count("BLUE") == 0, lab.dump()
