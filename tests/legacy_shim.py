"""A PATH directory where `iptables`, `iptables-save`, ... are the legacy ones (IPFire's backend); on this
Debian the plain names are nft. Scripts written for IPFire (the baseline, the emulated initscripts, pakfire
scripts) call the plain names."""

from __future__ import annotations

import os

NAMES = ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore")


def make_shim(directory: str) -> str:
    os.makedirs(directory, exist_ok=True)
    for name in NAMES:
        link = os.path.join(directory, name)
        if not os.path.lexists(link):
            os.symlink(f"/usr/sbin/{name.replace('tables', 'tables-legacy', 1)}", link)
    return directory
