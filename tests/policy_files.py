"""IPFire's host objects and zonevpn's policies file for the pure tests, in the formats IPFire writes."""

from __future__ import annotations

import base64

from ipfire_files import write

# General::writehasharray: random key order; hosts store `ip/255.255.255.255` or a MAC
CUSTOMHOSTS = """3,tv,ip,192.168.1.50/255.255.255.255,living room,
1,laptop,mac,02:00:00:00:02:14,work laptop
2,tablet,ip,192.168.3.20/255.255.255.255,,
4,elsewhere,ip,10.99.0.1/255.255.255.255,,
"""
CUSTOMNETWORKS = "1,lab,192.168.2.128,255.255.255.128,lower half\n"
CUSTOMGROUPS = """2,kids,,tablet,Custom Host
1,kids,,tv,Custom Host
3,empty,,none,
4,mixed,,lab,Custom Network
5,mixed,,BLUE,Standard Network
6,broken,,ghost,Custom Host
7,roadwarriors,,phone,wg_peer
"""


def remark(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_fwhosts(root: str, hosts: str = CUSTOMHOSTS, networks: str = CUSTOMNETWORKS,
                  groups: str = CUSTOMGROUPS) -> None:
    write(root, "var/ipfire/fwhosts/customhosts", hosts)
    write(root, "var/ipfire/fwhosts/customnetworks", networks)
    write(root, "var/ipfire/fwhosts/customgroups", groups)


def write_policies(root: str, *rows: str) -> None:
    write(root, "var/ipfire/zonevpn/policies", "".join(row + "\n" for row in rows))
