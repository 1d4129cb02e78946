"""Exit policies in a real kernel (no traffic): every kind of selector is accepted, read back equal (a
second apply changes nothing), and flush gives back exactly the stock state; both routing back-ends."""

from __future__ import annotations

import os

import pytest

from netns_box import Box
from policy_files import write_fwhosts, write_policies

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")
POLICIES = ("1,on,addr,192.168.1.50,,,,3",
            "2,on,mac,02:00:00:00:02:14,,,,red",
            "3,on,zone,BLUE,203.0.113.0/24|198.51.100.7/32,,,red",
            "4,on,host,tablet,,tcp,8000:8100,4,3,on",
            "5,on,group,kids,,,,3,,off,on",
            "6,off,addr,192.168.3.9,,,,block",
            "7,on,mac,02:00:00:00:02:1a,10.0.0.0/8,udp,53,block")


def _changes(result) -> int:  # type: ignore[no-untyped-def]
    last = [line for line in result.stderr.splitlines() if line.endswith("changes")]
    assert result.returncode == 0 and last, result.stderr
    return int(last[-1].split()[0])


@pytest.mark.parametrize("routing", ["iproute2", "pyroute2"])
def test_policies_apply_once_then_nothing_and_flush_restores_exactly(routing):
    with Box(tunnels=2, routing=routing) as box:
        box.settings("ENABLED=on\nBLUE_TUNNEL=3\nBLUE_DNS=on\nTUNNEL_3_DNS=10.5.0.1\n")
        write_fwhosts(box.root)
        write_policies(box.root, *POLICIES)
        before = box.dump()
        assert _changes(box.zonevpn("apply")) > 0
        rules = box.ip("rule")
        assert "203:\tfrom 192.168.1.50 prohibit proto 122" in rules, rules
        assert "fwmark 0x1000/0x1ff000 lookup main" in rules and "ipproto tcp dport 8000-8100" in rules
        assert "from 192.168.2.0 /24" not in rules
        again = box.zonevpn("apply")
        assert _changes(again) == 0, again.stderr
        assert _changes(box.zonevpn("flush")) > 0
        assert box.dump() == before


def test_bad_policy_leaves_the_kernel_as_it_was():
    with Box() as box:
        box.settings("ENABLED=on\nBLUE_TUNNEL=3\n")
        write_fwhosts(box.root)
        write_policies(box.root, "1,on,addr,192.168.1.50,,,,3")
        assert _changes(box.zonevpn("apply")) > 0
        before = box.dump()
        write_policies(box.root, "1,on,addr,192.168.1.50,,,,3", "2,on,host,nosuch,,,,3")
        result = box.zonevpn("apply")
        assert result.returncode == 2 and "zonevpn/policies:2: field source: no host 'nosuch'" in result.stderr
        assert box.dump() == before


@pytest.mark.parametrize("state", ["changed", "no-op", "held"])
def test_the_status_an_apply_writes_from_its_own_reads_is_the_one_status_reads_afresh(state):
    """A hook run reports from what its apply read last (one read and plan, not two): the same report."""
    import json

    with Box(tunnels=2) as box:
        box.settings("ENABLED=on\nBLUE_TUNNEL=3\nGREEN_TUNNEL=4\nGREEN_KILLSWITCH=off\nTUNNEL_3_DNS=10.5.0.1\n")
        write_fwhosts(box.root)
        write_policies(box.root, *POLICIES)
        box.zonevpn("apply")
        if state == "held":
            box.zonevpn("hold")
        if state != "no-op":
            box.wireguard_reload()  # the /1 routes back in main, the tunnels' addresses anew: changes to make
        result = box.zonevpn("apply")
        assert result.returncode == 0 and (_changes(result) == 0) == (state == "no-op"), result.stderr
        with open(os.path.join(box.root, "var/lib/zonevpn/status.json")) as handle:
            written = json.load(handle)
        fresh = json.loads(box.zonevpn("status", "--json").stdout)
        for report in (written, fresh):
            del report["generated"]
        assert written == fresh
        exits = ["refused", "red", "red", "refused", "refused", "blocked"] if state == "held" else \
            ["wg3", "red", "red", "wg4", "wg3", "blocked"]
        assert [p["exit"] for p in fresh["policies"]] == exits, fresh["policies"]
        assert fresh["in_sync"] == (state != "held")  # status compares with the plan of a box not held
