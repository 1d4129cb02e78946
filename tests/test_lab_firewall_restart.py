"""DNS through the tunnel while IPFire rebuilds its firewall. IPFire's real `firewall restart` flushes and
deletes every chain of filter, nat, mangle and raw, re-creates its policy (blue accepted into INPUT, so
blue reaches unbound) and runs our hook (firewall.local reload) last. The box runs unbound with IPFire's
own unbound.conf, forwarding to a resolver beyond red. Blue asks the firewall and an outside resolver all
along: no query of blue's is resolved through red, none of its DNS packets crosses red."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import wait_for_handshake
from lab.topology import INTERNET, PREFIX, REPO
from test_lab_watch import REFUSED

pytestmark = pytest.mark.lab
DNS = {"ENABLED": "on", "BLUE_TUNNEL": "3", "BLUE_DNS": "on", "TUNNEL_3_DNS": "10.5.0.1"}
FIREWALL = "192.168.2.1"


def ask_during(lab, action) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    """Blue asks the firewall and the outside resolver, 200 fresh names a second each, while `action` runs."""
    asker = subprocess.Popen(["ip", "netns", "exec", PREFIX + "blue", sys.executable, "-m", "lab.dns_asker",
                              "blue", "200", FIREWALL, INTERNET], env=dict(os.environ, PYTHONPATH=f"{REPO}/tests"),
                             stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        action()
        time.sleep(0.5)
    finally:
        asker.terminate()
    return json.loads(asker.communicate(timeout=10)[0])


def via_red(lab, since: tuple[int, int] = (0, 0)) -> list[str]:  # type: ignore[no-untyped-def]
    """Blue's names that crossed red: asked of the ISP's resolver (only unbound, through red, asks it), or
    of the outside resolver from red's address (through the tunnel they come from 10.5.0.2)."""
    isp, inet = lab.resolver_log("isp")[since[0]:], lab.resolver_log("inet")[since[1]:]
    return [line for line in isp + inet if " blue-" in line and (line in isp or " 198.51.100.2 " in line)]


def logged(lab) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    return len(lab.resolver_log("isp")), len(lab.resolver_log("inet"))


def test_blue_never_gets_an_answer_resolved_through_red_while_the_firewall_restarts(lab):
    lab.wire_hooks()
    lab.start_unbound()
    lab.write_zonevpn_settings(**DNS)
    lab.wireguard("start")
    wait_for_handshake(lab)
    assert "192.168.2.0/24 refuse" in lab.box.read("etc/unbound/local.d/zonevpn.conf")
    # without zonevpn's drop-in (as before): unbound answers blue through red while the chains are gone
    lab.fw("rm", "/etc/unbound/local.d/zonevpn.conf")
    lab.fw("unbound-control", "reload")
    before = ask_during(lab, lambda: lab.firewall("restart"))
    leaked_before = via_red(lab)
    assert os.path.exists(lab.box.path("etc/unbound/local.d/zonevpn.conf"))  # the restart's hook put it back
    since = logged(lab)
    results = [ask_during(lab, lambda: lab.firewall("restart")) for _ in range(3)]
    print(f"\nfirewall restart without the drop-in: {len(leaked_before)} of blue's names resolved through "
          f"red ({before}); with it, 3 restarts: {len(via_red(lab, since))} ({results})")
    assert via_red(lab, since) == [], via_red(lab, since)
    assert all(outcome in ("203.0.113.53", "refused", "timeout") for result in results
               for answers in result.values() for outcome in answers), results
    assert lab.red_count("BLUE") == 0


def test_with_the_tunnel_down_and_the_kill_switch_on_blue_gets_no_answer_at_all(lab):
    lab.wire_hooks()
    lab.start_unbound()
    lab.write_zonevpn_settings(**DNS)
    lab.wireguard("start")
    wait_for_handshake(lab)
    lab.fw("ip", "link", "del", "wg3")
    outcome = ask_during(lab, lambda: lab.firewall("restart"))
    assert not via_red(lab), via_red(lab)
    assert all(answer in ("refused", "timeout") or answer.startswith("error:") for result in outcome.values()
               for answer in result), outcome
    assert lab.dns("BLUE", FIREWALL).seen is None and lab.probe("BLUE").error in REFUSED + ("timeout",)
