"""The box's own resolver (unbound) refuses zones whose DNS goes through their tunnel.

Normally such a zone never reaches unbound: our DNAT sends every query it makes (to any address) to the
tunnel's resolver. But `firewall start|restart` deletes every chain, re-creates IPFire's policy (which
accepts the zone into INPUT) and runs our hook only at its very end; meanwhile unbound would answer the
zone by resolving through red. unbound includes /etc/unbound/local.d/*.conf, and an `access-control` for
the zone's network outranks IPFire's `0.0.0.0/0 allow` (the longest prefix wins): the zone gets REFUSED
from the box at every moment, and its tunnel's resolver whenever the firewall is up.
"""

from __future__ import annotations

import os
import subprocess

from zonevpn.log import Log
from zonevpn.model import Config
from zonevpn.readhash import write_atomic

HEADER = "# written by zonevpn: zones whose DNS goes through their tunnel never get an answer via red\n"


def conf(config: Config) -> str | None:
    """The drop-in's text, or None when no zone has DNS through its tunnel."""
    exits = config.exits if config.enabled else ()
    nets = sorted({str(e.zone.network) for e in exits if e.dns})
    if not nets:
        return None
    return HEADER + "server:\n" + "".join(f"\taccess-control: {net} refuse\n" for net in nets)


def sync(path: str, config: Config, log: Log) -> list[str]:
    """Make the drop-in match; reload unbound only when it changed. The changes made, in words."""
    if not os.path.isdir(os.path.dirname(os.path.dirname(path))):
        return []  # no unbound on this box (a sandbox): nothing can answer through red
    want = conf(config)
    try:
        with open(path, encoding="utf-8") as handle:
            have: str | None = handle.read()
    except FileNotFoundError:
        have = None
    if want == have:
        return []
    if want is None:
        os.remove(path)
        change = f"rm {path}"
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, want)
        change = f"wrote {path} (unbound refuses: {', '.join(_nets(want))})"
    log.change(change)
    _reload(log)
    return [change]


def _nets(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if "access-control:" in line]


def _reload(log: Log) -> None:
    """IPFire runs unbound with remote-control on 127.0.0.1; if it is not running, it reads the drop-in
    when it starts (S11unbound comes before S19zonevpn at boot, so at boot this reload is the one)."""
    try:
        run = subprocess.run(["unbound-control", "-q", "reload"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return
    if run.returncode != 0 and "connect" not in run.stderr:
        log.warning(f"unbound-control reload: {run.stderr.strip()}")
