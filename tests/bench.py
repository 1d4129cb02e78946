"""`make bench`: zonevpn's hook beside the hand-run baseline script (when ../shared/baseline is there), in
a namespace shaped like IPFire; then what a bound zone feels in the lab (bench_lab.py): lost packets per
reload and restart, green's /1 window, failover and fail-back times, the watcher's RSS and CPU.

Prints medians of REPEAT fresh processes or events each (cold: a new Python process every time, as the
wireguard initscript starts it). Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from netns_box import REPO, Box

REPEAT = int(os.environ.get("ZONEVPN_BENCH_REPEAT", "20"))
BASELINE = os.path.join(os.path.dirname(REPO), "shared", "baseline", "blue-vpn-setup.sh")


def timed(box: Box, command: list[str], before: Callable[[], None] | None = None) -> tuple[float, int]:
    """Median wall time (ms) over REPEAT runs, and the largest peak RSS (KiB) of one run."""
    times, rss = [], 0
    for _ in range(REPEAT):
        if before:
            before()
        start = time.perf_counter()
        run = subprocess.run(["ip", "netns", "exec", box.ns, *command], env=box.env(),
                             capture_output=True, text=True)
        times.append((time.perf_counter() - start) * 1000)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{run.stderr}")
        rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return statistics.median(times), rss


def hook() -> list[str]:
    return [sys.executable, "-m", "zonevpn", "hook", "wireguard", "reload"]


def bind(box: Box, zones: int) -> None:
    tunnels = [peer_id for peer_id, _ in box.tunnels]
    lines = ["ENABLED=on"] + [f"{zone}_TUNNEL={tunnels[i % len(tunnels)]}"
                              for i, zone in enumerate(("BLUE", "GREEN", "ORANGE")[:zones])]
    box.settings("\n".join(lines) + "\n")


def case(zones: int, tunnels: int, peers: int) -> dict[str, float]:
    with Box(tunnels=tunnels, peers=peers) as box:
        bind(box, zones)
        box.zonevpn("apply")
        cold, rss = timed(box, hook(), before=box.wireguard_reload)
        noop, _ = timed(box, hook())
        dry = box.zonevpn("apply", "--dry-run")
        assert dry.returncode == 0 and "0 changes" in dry.stderr, dry.stderr  # the no-op really was one
    return {"cold": cold, "noop": noop, "rss": rss / 1024}


def policy_rows(count: int, tunnels: list[int]) -> list[str]:
    """`count` policies of every kind: hosts, subnets, MACs, destinations with ports; each exit in turn."""
    rows = []
    for i in range(count):
        exit_ = ("red", "block", *map(str, tunnels))[i % (len(tunnels) + 2)]
        kind = i % 4
        source = (f"addr,192.168.{1 + i % 3}.{10 + i // 3}" if kind in (0, 1) else
                  f"mac,02:00:00:00:{i // 256:02x}:{i % 256:02x}" if kind == 2 else f"addr,192.168.2.{i % 64 * 4}/30")
        where = ",203.0.113.0/24,tcp,443" if kind == 1 else ",,,"
        rows.append(f"{i + 1},on,{source}{where},{exit_}")
    return rows


def policies_case(count: int, tunnels: int) -> dict[str, float]:
    with Box(tunnels=tunnels) as box:
        box.settings("ENABLED=on\nBLUE_TUNNEL=3\n")
        with open(os.path.join(box.root, "var/ipfire/zonevpn/policies"), "w") as handle:
            handle.write("".join(row + "\n" for row in policy_rows(count, [t for t, _ in box.tunnels])))
        box.zonevpn("apply")
        cold, rss = timed(box, hook(), before=box.wireguard_reload)
        noop, _ = timed(box, hook())
        dry = box.zonevpn("apply", "--dry-run")
        assert dry.returncode == 0 and "0 changes" in dry.stderr, dry.stderr
        rules = len(box.ip("rule").splitlines())
        routes = len(box.ip("route", "show", "table", "all").splitlines())
        fw = len([line for line in box.run("iptables-save").stdout.splitlines() if line.startswith("-A")])
    return {"cold": cold, "noop": noop, "rss": rss / 1024, "rules": rules, "routes": routes, "iptables": fw}


def baseline() -> dict[str, float]:
    with Box() as box:
        box.with_rt_tables()
        first = box.run("sh", BASELINE, check=False)
        box.run("ip", "route", "add", "unreachable", "default", "table", "100")  # past its first-run abort
        cold, _ = timed(box, ["sh", BASELINE], before=box.wireguard_reload)
        noop, _ = timed(box, ["sh", BASELINE])
    return {"cold": cold, "noop": noop, "first_run_rc": first.returncode}


def import_time(modules: str) -> float:
    code = f"import time; t = time.perf_counter(); import {modules}; print((time.perf_counter() - t) * 1000)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                 env=dict(os.environ, PYTHONPATH=os.path.join(REPO, "lib"))).stdout)
            for _ in range(REPEAT)]
    return statistics.median(runs)


def main() -> int:
    if os.geteuid() != 0:
        print("make bench needs root (network namespaces)")
        return 1
    # IPFire's package ships compiled modules; this machine's PYTHONDONTWRITEBYTECODE would hide that
    subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(REPO, "lib")], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"zonevpn bench: medians of {REPEAT} fresh processes each; hook = `zonevpn hook wireguard "
          "reload` right after an emulated reload (cold) and again with nothing to do (no-op)\n")
    base = baseline() if os.path.exists(BASELINE) else None
    rows = [("1 zone x 1 tunnel", case(1, 1, 0)), ("3 zones x 4 tunnels", case(3, 4, 0)),
            ("3 zones x 16 tunnels, 200 peers", case(3, 16, 184))]
    print(f"{'case':<34}{'cold ms':>10}{'no-op ms':>10}{'peak RSS MiB':>14}")
    for name, row in rows:
        print(f"{name:<34}{row['cold']:>10.1f}{row['noop']:>10.1f}{row['rss']:>14.1f}")
    small, large = rows[0][1], rows[-1][1]
    policy_rows_ = [(f"{n} policies x 16 tunnels", policies_case(n, 16)) for n in (20, 200)]
    for name, row in policy_rows_:
        print(f"{name:<34}{row['cold']:>10.1f}{row['noop']:>10.1f}{row['rss']:>14.1f}   kernel: "
              f"{row['rules']:.0f} rules, {row['routes']:.0f} routes, {row['iptables']:.0f} iptables rules")
    if base:
        print(f"{'baseline blue-vpn-setup.sh':<34}{base['cold']:>10.1f}{base['noop']:>10.1f}{'-':>14}")
        print(f"\ncold ratio zonevpn/baseline: {small['cold'] / base['cold']:.2f}x (target <= 5x)")
        print(f"baseline first run on a clean box: exit {base['first_run_rc']:.0f} (its known abort)")
    else:
        print(f"\n(no baseline row: {BASELINE} is not here)")
    print(f"largest/smallest zone case: {large['cold'] / small['cold']:.2f}x (target <= 2x); "
          f"200 policies x 16 tunnels / 1 zone x 1 tunnel: cold {policy_rows_[-1][1]['cold'] / small['cold']:.2f}x, "
          f"no-op {policy_rows_[-1][1]['noop'] / small['noop']:.2f}x (target <= 2x)")
    hot = "zonevpn.cli, zonevpn.commands, zonevpn.engine, zonevpn.routing_iproute2, zonevpn.status"
    print(f"import time of the hook's path: {import_time(hot):.1f} ms; pyroute2 (paid only when a zone "
          f"really switched, for conntrack): {import_time('pyroute2.conntrack'):.1f} ms")
    from bench_lab import report

    report(REPEAT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
