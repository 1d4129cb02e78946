"""IPFire's life cycle with the hooks wired as the add-on installs them: wireguard start, reload x20,
restart, stop, start, firewall reload and restart, with blue and green sending all along. Blue never
appears on red; green is back on red after every hook run. Prints the window in which each reload's
/1 routes hijack green (from `ip monitor`, not a timed assert)."""

from __future__ import annotations

import statistics
import time

import pytest

from conftest import wait_for_handshake
from lab.monitor import RouteMonitor

pytestmark = pytest.mark.lab
RED, VPN = "198.51.100.2", "192.0.2.10"


def test_blue_never_leaves_through_red_across_the_wireguard_and_firewall_life_cycle(lab):
    lab.wire_hooks()
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
    monitor = RouteMonitor().__enter__()
    lab.wireguard("start")
    wait_for_handshake(lab)
    assert lab.probe("BLUE").seen == VPN and lab.probe("GREEN").seen == RED, lab.dump()
    lab.reset_counters()
    lab.start_stream("BLUE", rate=100)
    lab.start_stream("GREEN", rate=100)
    steps = [("wireguard", "reload")] * 20 + [("wireguard", "restart"), ("wireguard", "stop"),
                                               ("wireguard", "start"), ("firewall", "reload"),
                                               ("firewall", "restart")]
    green_after = []
    for script, action in steps:
        (lab.wireguard if script == "wireguard" else lab.firewall)(action)
        green_after.append((f"{script} {action}", lab.probe("GREEN").seen))
        assert lab.red_count("BLUE") == 0, (script, action, lab.dump())
    blue, green = lab.stop_stream("BLUE"), lab.stop_stream("GREEN")
    windows = monitor.windows()
    assert lab.red_count("BLUE") == 0
    assert [step for step, seen in green_after if seen != RED] == []
    wait_for_handshake(lab)
    assert lab.probe("BLUE").seen == VPN, lab.dump()
    print(f"\nlife cycle: {len(steps)} steps; blue sent {blue['sent']}, answered {blue['answered']}, "
          f"0 on red; green sent {green['sent']}, answered {green['answered']}")
    print(f"hijack window after each reload/start (/1 routes in main, green dragged into wg3): "
          f"n={len(windows)} median {statistics.median(windows):.1f} ms, max {max(windows):.1f} ms")
    assert len(windows) >= 20  # every reload put them back, and every hook run took them away


def test_at_boot_blue_is_refused_until_the_tunnel_is_up(lab):
    """The initscript's start (S19, before red and wireguard): integrate, check, apply."""
    lab.wire_hooks()
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
    for args in (("check",), ("apply",)):
        assert lab.zonevpn(*args).returncode == 0
    lab.reset_counters()
    refused = lab.probe("BLUE")
    assert refused.error in ("EHOSTUNREACH", "EACCES") and lab.red_count("BLUE") == 0, refused
    assert lab.probe("GREEN").seen == RED
    lab.wireguard("start")  # S50wireguard; its hook brings blue up
    wait_for_handshake(lab)
    time.sleep(0.2)
    assert lab.probe("BLUE").seen == VPN and lab.red_count("BLUE") == 0, lab.dump()
