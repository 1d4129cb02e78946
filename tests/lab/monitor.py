"""The window in which a `wireguard reload` hijacks every zone: from `ip -timestamp monitor route`, the
time between a /1 route on wg3 appearing in main and zonevpn's hook taking it away again."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime

from lab.topology import PREFIX


class RouteMonitor:
    def __enter__(self) -> RouteMonitor:
        self.proc = subprocess.Popen(["ip", "netns", "exec", PREFIX + "fw", "ip", "-timestamp", "monitor", "route"],
                                     stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()

    def windows(self) -> list[float]:
        self.proc.terminate()
        return hijack_windows(self.proc.communicate(timeout=5)[0])


def hijack_windows(monitor_output: str) -> list[float]:
    """ms from each 0.0.0.0/1-on-wg3 appearing to its deletion."""
    windows: list[float] = []
    added, stamp = None, 0.0
    for line in monitor_output.splitlines():
        clock = re.match(r"Timestamp: (.+) (\d+) usec", line)
        if clock:  # `ip -timestamp monitor` prints the time on a line of its own before each event
            stamp = datetime.strptime(clock.group(1), "%a %b %d %H:%M:%S %Y").timestamp() + int(clock.group(2)) / 1e6
            continue
        match = re.match(r"(Deleted )?0\.0\.0\.0/1 dev wg3", line)
        if match and match.group(1) and added is not None:
            windows.append((stamp - added) * 1000)
            added = None
        elif match and not match.group(1):
            added = stamp
    return windows
