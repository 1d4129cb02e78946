"""Kernel state under faults and concurrency: killed runs converge, parallel runs serialise, bad input
changes nothing, flush gives back exactly what was there. (Packets are the lab tests' business.)"""

from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from netns_box import Box

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")


@pytest.fixture(params=["iproute2", "pyroute2"])
def box(request):
    """Both routing back-ends must leave the kernel in the same state."""
    with Box(routing=request.param) as b:
        b.settings("ENABLED=on\nBLUE_TUNNEL=3\n")
        yield b


def _changes(result: subprocess.CompletedProcess) -> int:  # type: ignore[type-arg]
    last = [line for line in result.stderr.splitlines() if line.endswith("changes")]
    assert result.returncode == 0 and last, result.stderr
    return int(last[-1].split()[0])


def test_second_apply_changes_nothing_and_flush_restores_the_stock_kernel_exactly(box):
    before = box.dump()
    assert _changes(box.zonevpn("apply")) > 0
    assert box.dump() != before
    assert _changes(box.zonevpn("apply")) == 0
    assert _changes(box.zonevpn("flush")) > 0
    assert box.dump() == before


def test_apply_killed_at_random_points_converges_on_the_next_run(box):
    """SIGKILL an apply at 100 random moments; every next apply must reach the same kernel state."""
    if box.routing != "iproute2":
        pytest.skip("run once, with the default back-end (the hook's)")
    assert _changes(box.zonevpn("apply")) > 0
    converged = box.dump()
    rng = random.Random(20261125)
    partial = 0
    for _ in range(100):
        box.zonevpn("flush")
        box.stock_wireguard_routes()
        child = subprocess.Popen(box.zonevpn_cmd("apply"), env=box.env(),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.0, 0.25))
        child.kill()
        child.wait()
        partial += box.dump() not in (converged,)
        box.zonevpn("apply")
        assert box.dump() == converged
        assert _changes(box.zonevpn("apply")) == 0
    print(f"100 killed applies: {partial} left a partial state, all converged on the next run")


def test_two_applies_at_once_serialise_and_both_succeed(box):
    runs = [subprocess.Popen(box.zonevpn_cmd("apply"), env=box.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [run.communicate() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outs
    counts = sorted(int(err.strip().splitlines()[-1].split()[0]) for _, err in outs)
    assert counts[0] == 0 and counts[1] > 0  # one did the work, the other found nothing left
    assert _changes(box.zonevpn("apply")) == 0


@pytest.mark.parametrize(("name", "rel", "body"), [
    ("truncated peers", "var/ipfire/wireguard/peers", "1,on,host,phone,KEY=\n3,on,net,nordvpn,P"),
    ("garbled settings", "var/ipfire/zonevpn/settings", "ENABLED=on\nBLUE_TUNNEL=3\n\x00\x01garbage"),
    ("empty peers", "var/ipfire/wireguard/peers", ""),
    ("unreadable ethernet", "var/ipfire/ethernet/settings", None),
])
def test_bad_input_after_a_good_apply_keeps_the_kill_switch_and_writes_nothing(box, name, rel, body):
    assert _changes(box.zonevpn("apply")) > 0
    box.ip("link", "del", "wg3")  # the tunnel is gone: only the kill switch stands between blue and red
    box.zonevpn("apply")
    held = box.dump()
    assert box.blue_is_refused()
    path = os.path.join(box.root, rel)
    if body is None:
        os.remove(path)
        os.mkdir(path)  # a directory where a file should be: unreadable even for root
    else:
        with open(path, "w") as handle:
            handle.write(body)
    settings_before = _read(os.path.join(box.root, "var/ipfire/zonevpn/settings"))
    result = box.zonevpn("apply")
    assert result.returncode == 2, result.stderr
    assert rel.split("/")[-1] in result.stderr and "error:" in result.stderr
    assert box.dump() == held
    assert box.blue_is_refused()
    assert _read(os.path.join(box.root, "var/ipfire/zonevpn/settings")) == settings_before


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def test_unbinding_a_tunnel_that_is_down_succeeds_and_its_routes_come_back_when_it_is_up(box):
    """The /1 routes zonevpn took are given back only to an interface that is up: the kernel refuses a
    route on a down device, which failed the whole apply (exit 3)."""
    assert _changes(box.zonevpn("apply")) > 0
    box.ip("link", "set", "wg3", "down")
    box.settings("ENABLED=off\n")
    result = box.zonevpn("apply")
    assert result.returncode == 0, result.stderr
    box.ip("link", "set", "wg3", "up")
    box.ip("addr", "replace", "10.5.0.2/32", "dev", "wg3")  # a down/up leaves the address; be sure
    assert box.zonevpn("apply").returncode == 0
    assert "0.0.0.0/1 dev wg3" in box.ip("route", "show", "table", "main")
