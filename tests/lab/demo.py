"""`make demo`: zonevpn on the built-in lab, start to finish, in words an IPFire admin knows.

Builds the lab, starts WireGuard the way IPFire does (wg3 = a NordVPN-like profile, remote 0.0.0.0/0),
shows the problem, binds blue to wg3, shows where every zone leaves, then pulls the tunnel away and shows
the kill switch. Everything is removed at the end, on Ctrl-C and on failure.
"""

from __future__ import annotations

import sys
import time

from lab import Lab
from lab.topology import RED_ADDRESS

NAMES = {RED_ADDRESS: "red (the ISP sees it)", "192.0.2.10": "the VPN provider (wg3)"}


def where(probe) -> str:  # type: ignore[no-untyped-def]
    if probe.seen:
        return f"{probe.seen:<15} {NAMES.get(probe.seen, '')}"
    return f"{'-':<15} {probe.error} after {probe.ms:.0f} ms"


def table(lab: Lab, title: str) -> None:
    print(f"\n{title}\n  {'zone':<10}{'the internet saw':<16} which is")
    for zone in ("GREEN", "BLUE", "ORANGE"):
        print(f"  {zone:<10}{where(lab.probe(zone))}")
    print(f"  {'firewall':<10}{where(lab.probe_from_fw())}   (its own traffic from 10.5.0.2)")


def main() -> int:
    started = time.monotonic()
    with Lab() as lab:
        print(f"lab up in {time.monotonic() - started:.1f} s: green, blue and orange clients, an IPFire "
              "box, an ISP, an internet host, a VPN provider")
        lab.wireguard("start")
        time.sleep(1)
        table(lab, "1. Stock IPFire after `wireguard start`: wg3's /1 routes drag every zone into the tunnel")
        lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3", BLUE_KILLSWITCH="on")
        print("\n2. /var/ipfire/zonevpn/settings: BLUE_TUNNEL=3, BLUE_KILLSWITCH=on; `zonevpn apply`:")
        applied = lab.zonevpn("apply")
        print("\n".join(f"   {line}" for line in applied.stderr.strip().splitlines()))
        if applied.returncode != 0:
            return applied.returncode
        table(lab, "3. With zonevpn: blue exits through the tunnel, the others through red")
        lab.reset_counters()
        lab.fw("ip", "link", "del", "wg3")
        refused = lab.probe("BLUE")
        print("\n4. Kill switch: wg3 deleted (as `wireguard stop` or a crashed tunnel does)")
        print(f"   blue's next packet: {refused.error or 'ANSWERED: ' + str(refused.seen)} after "
              f"{refused.ms:.1f} ms; blue packets seen on red: {lab.red_count('BLUE')}")
        print(f"   green meanwhile: {where(lab.probe('GREEN'))}")
        lab.wireguard("start")
        lab.zonevpn("hook", "wireguard", "start")
        time.sleep(0.5)
        print(f"\n5. `wireguard start` + the hook: blue is back: {where(lab.probe('BLUE'))}")
        print("\n6. `zonevpn status`:")
        status = lab.zonevpn("status")
        print("\n".join(f"   {line}" for line in status.stdout.strip().splitlines()))
    print(f"\nlab removed; demo took {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted: lab removed")
        sys.exit(130)
