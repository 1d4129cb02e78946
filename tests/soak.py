"""`make soak`: churn. Blue and green send 100 UDP probes/s each while the lab cycles through every event
that can undo zonevpn's state. Counts: blue packets on red (must be 0), green packets in the tunnel after
the hook returned (must be 0), and blue's outage. `python -m soak [CYCLES]` (default 200)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from conftest import wait_for_handshake
from lab import Lab

RATE = 100


def events(lab: Lab) -> list[tuple[str, Callable[[], object]]]:
    def red_bounce() -> None:
        lab.fw("ip", "link", "set", "red0", "down")
        lab.fw("ip", "link", "set", "red0", "up")
        lab.fw("ip", "route", "replace", "default", "via", "198.51.100.1")  # what IPFire's red.up does
        lab.zonevpn("hook", "red", "up")

    def kill_wireguard_go() -> None:
        lab.fw("pkill", "-f", "wireguard-go wg3", check=False)
        time.sleep(0.1)
        lab.wireguard("reload")

    def rebind() -> None:
        """Blue and orange swap tunnels. Both stay exits: a tunnel that is no zone's exit any more is
        given back to stock IPFire, /1 routes and all, and those would rightly carry green."""
        with open(f"{lab.root}/var/ipfire/zonevpn/settings") as handle:
            blue_on_3 = "BLUE_TUNNEL=3" in handle.read()
        lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="4" if blue_on_3 else "3",
                                   ORANGE_TUNNEL="3" if blue_on_3 else "4")
        lab.zonevpn("hook", "boot", "start")

    return [("wireguard reload", lambda: lab.wireguard("reload")),
            ("wireguard restart", lambda: lab.wireguard("restart")),
            ("wireguard stop/start", lambda: (lab.wireguard("stop"), lab.wireguard("start"))),
            ("wg3 deleted, reload", lambda: (lab.fw("ip", "link", "del", "wg3"), lab.wireguard("reload"))),
            ("wireguard-go killed, reload", kill_wireguard_go),
            ("firewall reload", lambda: lab.firewall("reload")),
            ("red down/up", red_bounce),
            ("blue rebound wg3 <-> wg4", rebind)]


def run(cycles: int) -> dict:  # type: ignore[type-arg]
    with Lab(providers=(3, 4)) as lab:
        lab.wire_hooks()
        lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3", ORANGE_TUNNEL="4")
        lab.wireguard("start")
        wait_for_handshake(lab, "wg3")
        wait_for_handshake(lab, "wg4")
        lab.reset_counters()
        lab.start_stream("BLUE", RATE)
        lab.start_stream("GREEN", RATE)
        blue_on_red = green_in_tunnel = 0
        by_event: dict[str, int] = {}
        plan = events(lab)
        started = time.monotonic()
        for cycle in range(cycles):
            name, event = plan[cycle % len(plan)]
            event()  # the hook has returned when the initscript has
            blue_on_red += lab.red_count("BLUE")
            lab.reset_counters()
            time.sleep(0.05)
            late = lab.tunnel_count("GREEN")
            green_in_tunnel += late
            by_event[name] = by_event.get(name, 0) + late + lab.red_count("BLUE")
            blue_on_red += lab.red_count("BLUE")
            lab.reset_counters()
        seconds = time.monotonic() - started
        blue, green = lab.stop_stream("BLUE"), lab.stop_stream("GREEN")
    lost = blue["sent"] - blue["answered"]
    return {"cycles": cycles, "seconds": seconds, "blue_on_red": blue_on_red, "green_in_tunnel": green_in_tunnel,
            "blue_sent": blue["sent"], "blue_answered": blue["answered"], "green_sent": green["sent"],
            "green_answered": green["answered"], "blue_outage_ms_per_cycle": lost * 1000 / RATE / cycles,
            "failing_events": {name: count for name, count in by_event.items() if count}}


def report(result: dict) -> str:  # type: ignore[type-arg]
    return (f"{result['cycles']:.0f} cycles in {result['seconds']:.0f} s: blue packets on red "
            f"{result['blue_on_red']:.0f}, green packets in the tunnel after the hook returned "
            f"{result['green_in_tunnel']:.0f}; blue answered {result['blue_answered']:.0f}/{result['blue_sent']:.0f}"
            f" (outage {result['blue_outage_ms_per_cycle']:.0f} ms per cycle), green answered "
            f"{result['green_answered']:.0f}/{result['green_sent']:.0f}")


if __name__ == "__main__":
    outcome = run(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
    print(report(outcome))
    sys.exit(0 if outcome["blue_on_red"] == 0 and outcome["green_in_tunnel"] == 0 else 1)
