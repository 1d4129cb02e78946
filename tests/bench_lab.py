"""`make bench`, lab part: what a bound zone feels, in the namespace lab with IPFire's real initscripts and
the hooks wired as installed. Medians of REPEAT events each; figures only, nothing asserted.

- blue's lost packets (UDP at 100/s) per `wireguard reload`, `firewall reload`, `firewall restart`; a
  policy-selected device's per `wireguard reload`;
- how long green rides a reload's /1 routes (from `ip monitor`);
- failover / fail-back time after a provider goes silent / comes back (watcher, no hook);
- the watcher's RSS and CPU, idle and probing; a resident pyroute2 for comparison.

ZONEVPN_BENCH_BEFORE=DIR runs the same events with the box's zonevpn taken from DIR (a `lib` directory
of an older tree, outside /tmp and /run, which the box mounts afresh) for the "before" column.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from conftest import wait_for_handshake
from lab import Lab, files
from lab.monitor import RouteMonitor

RED, VPN, VPN2 = "198.51.100.2", "192.0.2.10", "192.0.2.20"
FAILOVER = {"ENABLED": "on", "BLUE_TUNNEL": "3", "BLUE_FALLBACK": "4", "TUNNEL_3_DNS": "10.5.0.1",
            "TUNNEL_4_DNS": "10.6.0.1"}


def use_library(lab: Lab, lib: str | None) -> None:
    if lib:
        files.write(lab.root, "usr/sbin/zonevpn",
                    f'#!/bin/sh\nPYTHONPATH={lib} exec {sys.executable} -m zonevpn "$@"\n', 0o755)


def lost_per_event(lab: Lab, event: Callable[[], object], repeat: int, client: str = "BLUE") -> list[int]:
    """The client's unanswered datagrams around each event (a fresh 100/s stream each time)."""
    lost = []
    for _ in range(repeat):
        lab.start_stream(client, rate=100)
        time.sleep(0.2)
        event()
        time.sleep(0.3)
        counts = lab.stop_stream(client)
        lost.append(counts["sent"] - counts["answered"])
    return lost


def losses(lib: str | None, repeat: int) -> dict[str, list[float]]:
    with Lab() as lab:
        use_library(lab, lib)
        lab.wire_hooks()
        lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
        lab.wireguard("start")
        wait_for_handshake(lab)
        time.sleep(1)
        with RouteMonitor() as monitor:
            reload = lost_per_event(lab, lambda: lab.wireguard("reload"), repeat)
            time.sleep(0.2)
            windows = monitor.windows()
        fw_reload = lost_per_event(lab, lambda: lab.firewall("reload"), repeat)
        fw_restart = lost_per_event(lab, lambda: lab.firewall("restart"), repeat)
        assert lab.red_count("BLUE") == 0
        # one device by an exit policy, no zone bound (the watcher once exited in this setup: 9.7 a reload)
        files.write(lab.root, "var/ipfire/zonevpn/policies", "1,on,addr,192.168.1.50,,,,3\n")
        lab.write_zonevpn_settings(ENABLED="on")
        lab.zonevpn("apply")
        time.sleep(1)
        policy = lost_per_event(lab, lambda: lab.wireguard("reload"), repeat, client="GREEN2")
        assert lab.red_count("GREEN2") == 0
    return {"wireguard reload": [float(n) for n in reload], "firewall reload": [float(n) for n in fw_reload],
            "firewall restart": [float(n) for n in fw_restart], "hijack ms": windows,
            "policy device, wireguard reload": [float(n) for n in policy]}


def _until(lab: Lab, want: str, limit: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < limit:
        probe = lab.probe("BLUE", timeout=0.3)
        if (probe.seen or probe.error) == want:
            return time.monotonic() - start
        time.sleep(0.1)
    return float("inf")


def failovers(lib: str | None, repeat: int, limit: float = 30.0) -> dict[str, list[float]]:
    """Provider 3 silenced (its side drops everything) and back, `repeat` times; no hook runs."""
    with Lab(providers=(3, 4)) as lab:
        use_library(lab, lib)
        lab.wire_hooks()
        lab.write_zonevpn_settings(**FAILOVER)
        lab.wireguard("start")
        wait_for_handshake(lab, "wg3")
        wait_for_handshake(lab, "wg4")
        time.sleep(2)
        over, back, figures = [], [], {}
        for i in range(repeat):
            lab.provider_silence(3)
            over.append(_until(lab, VPN2, limit))
            lab.provider_silence(3, False)
            back.append(_until(lab, VPN, limit))
            if over[-1] == float("inf") and i >= 2:
                break  # no failover without a hook: three tries say so
        pid = lab.watcher_pid() if "watch" in lab.zonevpn("--help").stdout else None
        if pid:
            figures = watcher_costs(lab, pid)
    return {"failover s": over, "fail-back s": back, **figures}


def _cpu_and_rss(pid: int) -> tuple[float, float]:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    with open(f"/proc/{pid}/status") as handle:
        rss = next(int(line.split()[1]) for line in handle if line.startswith("VmRSS:"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss / 1024


def watcher_costs(lab: Lab, pid: int, seconds: float = 30.0) -> dict[str, list[float]]:
    """CPU share and RSS over `seconds` while it probes (zones with fallbacks), then with none (idle)."""
    figures: dict[str, list[float]] = {}
    for name in ("probing", "idle"):
        cpu0, _ = _cpu_and_rss(pid)
        time.sleep(seconds)
        cpu1, rss = _cpu_and_rss(pid)
        figures[f"watcher CPU % ({name})"] = [100 * (cpu1 - cpu0) / seconds]
        figures[f"watcher RSS MiB ({name})"] = [rss]
        if name == "probing":  # no fallbacks left: nothing to probe, only netlink to wait on
            lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
            lab.zonevpn("hook", "red", "up")
            time.sleep(2)
    return figures


def resident_imports() -> dict[str, float]:
    """RSS of a Python process holding what the watcher holds, with and without pyroute2's IPRoute (what a
    watcher built on pyroute2 would hold instead of netlink.py)."""
    code = ("import zonevpn.cli, zonevpn.commands, zonevpn.watch, zonevpn.config{extra}\n"
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')))")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(os.path.dirname(__file__)), "lib"))
    out = {}
    for name, extra in (("stdlib netlink", ""), ("with pyroute2 IPRoute", "; import pyroute2; pyroute2.IPRoute()")):
        run = subprocess.run([sys.executable, "-c", code.format(extra=extra)], capture_output=True, text=True,
                             env=env)
        out[name] = int(run.stdout) / 1024 if run.returncode == 0 else float("nan")
    return out


def _median(values: list[float], mean: bool = False) -> str:
    """Median (and mean, for losses: the requirement is an average) of the finite values."""
    finite = [v for v in values if v != float("inf")]
    if not values:
        return "-"
    if not finite:
        return "never"
    text = f"{statistics.median(finite):.1f}" + (f" / {statistics.mean(finite):.2f}" if mean else "")
    return text + (f" ({len(values) - len(finite)} never)" if len(finite) < len(values) else "")


def report(repeat: int) -> None:
    before = os.environ.get("ZONEVPN_BENCH_BEFORE")
    columns = [("after", None)] + ([("before", before)] if before else [])
    results = {name: {**losses(lib, repeat), **failovers(lib, repeat)} for name, lib in columns}
    rows = list(results["after"])
    print(f"\nlab (IPFire's real initscripts, hooks as installed): medians of {repeat} events")
    print(f"{'figure':<42}" + "".join(f"{name:>18}" for name, _ in columns))
    for row in rows:
        mean = row in ("wireguard reload", "firewall reload", "firewall restart", "policy device, wireguard reload")
        print(f"{row + (' (median / mean)' if mean else ''):<42}"
              + "".join(f"{_median(results[name].get(row, []), mean):>18}" for name, _ in columns))
    print("lost = blue's datagrams (100/s) unanswered around one event (target: mean <= 1 a wireguard reload);\n"
          "policy device = 192.168.1.50 through wg3 by an exit policy, no zone bound, same stream;\n"
          "hijack = ms a reload's /1 routes stay in main (green rides them); failover/fail-back = provider 3 "
          "silenced / back, no hook run (target <= 15 s)")
    for name, rss in resident_imports().items():
        print(f"resident RSS, {name}: {rss:.1f} MiB")
