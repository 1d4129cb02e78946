"""The watcher, by real packets: a provider goes silent with no hook and no admin, and blue moves to its
fallback by itself, comes back after recovery, is refused with no healthy tunnel left; never on red, also
with the watcher killed. And its life cycle as IPFire runs it: the initscript starts and stops it (stop
holds the kernel state), any hook starts it again.

Times are printed, not asserted (make bench measures them): the test waits up to WAIT seconds."""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import wait_for_handshake

pytestmark = pytest.mark.lab
RED, VPN, VPN2 = "198.51.100.2", "192.0.2.10", "192.0.2.20"
REFUSED = ("EHOSTUNREACH", "EACCES")
WAIT = 30.0
FAILOVER = {"ENABLED": "on", "BLUE_TUNNEL": "3", "BLUE_FALLBACK": "4", "TUNNEL_3_DNS": "10.5.0.1",
            "TUNNEL_4_DNS": "10.6.0.1"}


def blue_leaves_via(lab, want: tuple[str, ...] | str, seconds: float = WAIT) -> float:  # type: ignore[no-untyped-def]
    """Seconds until blue's probe comes out where wanted (an address seen, or one of the refusals)."""
    wanted = (want,) if isinstance(want, str) else want
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        probe = lab.probe("BLUE", timeout=0.5)
        if (probe.seen or probe.error) in wanted:
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"blue never left via {wanted} in {seconds} s (last: {probe})\n{lab.dump()}"
                         + lab.box.read("run/zonevpn/watch.log")[-3000:])


def wait_for_watcher(lab, other_than: int | None = None) -> int:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = lab.watcher_pid()
        if pid and pid != other_than:
            return pid
        time.sleep(0.1)
    raise AssertionError("no watcher running in the box")


def running(pid: int) -> bool:
    """Alive and not a zombie (here an orphan's reaper may be slow; IPFire's init reaps at once)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def two_providers():  # type: ignore[no-untyped-def]
    from lab import Lab

    lab = Lab(providers=(3, 4)).__enter__()
    lab.ns("fw", "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")  # every refusal answered, none rate-limited
    lab.wire_hooks()
    lab.write_zonevpn_settings(**FAILOVER)
    lab.wireguard("start")  # its hook applies and starts the watcher
    wait_for_handshake(lab, "wg3")
    wait_for_handshake(lab, "wg4")
    return lab


def test_blue_fails_over_by_itself_when_its_provider_goes_silent_and_back_after_recovery(lab):
    lab.close()
    two = two_providers()
    try:
        wait_for_watcher(two)
        assert blue_leaves_via(two, VPN) < 1
        two.reset_counters()
        two.start_stream("BLUE", rate=100)
        two.provider_silence(3)  # its side drops everything: both ends up, no hook, no admin
        failover = blue_leaves_via(two, VPN2)
        two.provider_silence(3, False)
        failback = blue_leaves_via(two, VPN)
        two.provider_down(3)  # its wireguard-go stopped
        failover2 = blue_leaves_via(two, VPN2)
        pid = wait_for_watcher(two)
        os.kill(pid, signal.SIGKILL)  # the watcher dies: nothing opens
        time.sleep(1)
        assert two.probe("BLUE").seen == VPN2 and two.red_count("BLUE") == 0, two.dump()
        # the kernel answers refusals of one sender at ~1/s (ip_error's own rate limit): the stream
        # would take them all, so the refusal below is seen by probes alone
        blue = two.stop_stream("BLUE")
        two.provider_silence(4)  # now no healthy tunnel is left
        assert two.zonevpn("hook", "red", "up").returncode == 0  # the next hook restarts the watcher
        wait_for_watcher(two, other_than=pid)
        refused = blue_leaves_via(two, REFUSED)
        assert two.red_count("BLUE") == 0, two.dump()
        log = two.box.read("run/zonevpn/watch.log")
        assert "BLUE (192.168.2.0/24) now leaves via refused" in log, log  # each switch is logged
        print(f"\nfailover {failover:.1f} s (provider dropping everything), fail-back {failback:.1f} s, "
              f"failover {failover2:.1f} s (provider's wireguard-go stopped), refused {refused:.1f} s after "
              f"the last healthy tunnel went silent; blue sent {blue['sent']}, 0 on red")
    finally:
        two.close()


def test_the_initscript_starts_and_stops_the_watcher_and_any_hook_restarts_it(lab):
    lab.wire_hooks()
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
    lab.wireguard("start")
    wait_for_handshake(lab)
    lab.fw("/etc/rc.d/init.d/zonevpn", "start")
    pid = wait_for_watcher(lab)
    assert lab.probe("BLUE").seen == VPN
    lab.fw("/etc/rc.d/init.d/zonevpn", "stop")
    assert lab.watcher_pid() is None and not running(pid)
    held = lab.probe("BLUE")  # stop holds: the kill switch stays in the kernel, no process needed
    assert held.error in REFUSED and lab.red_count("BLUE") == 0, (held, lab.dump())
    assert "1042:" in lab.fw("ip", "rule").stdout
    lab.fw("/etc/rc.d/init.d/zonevpn", "start")
    pid = wait_for_watcher(lab)
    assert lab.probe("BLUE").seen == VPN
    status = lab.fw("/etc/rc.d/init.d/zonevpn", "status", check=False).stdout
    assert f"watcher is running (pid {pid})" in status, status
    os.kill(pid, signal.SIGKILL)
    lab.wireguard("reload")  # its hook finds the watcher gone and starts it
    wait_for_watcher(lab, other_than=pid)
    assert lab.zonevpn("flush").returncode == 0  # flush gives stock IPFire back: no watcher either
    assert lab.watcher_pid() is None
