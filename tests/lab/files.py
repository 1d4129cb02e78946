"""IPFire's files for the lab's sandbox root, in IPFire's exact formats (see shared/docs/ipfire.md)."""

from __future__ import annotations

import base64
import os
import shutil
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.topology import Lab

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.path.join(os.path.dirname(REPO), "shared", "ipfire")


def write(root: str, rel: str, text: str, mode: int = 0o644) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def ethernet() -> str:
    lines = ["CONFIG_TYPE=4"]
    for zone, (dev, address, _, _) in _zones().items():
        net = address.rsplit(".", 1)[0] + ".0"
        lines += [f"{zone}_DEV={dev}", f"{zone}_ADDRESS={address}", f"{zone}_NETADDRESS={net}",
                  f"{zone}_NETMASK=255.255.255.0", f"{zone}_MTU=1500"]
    lines += ["RED_DEV=red0", "RED_TYPE=STATIC", "RED_ADDRESS=198.51.100.2", "DEFAULT_GATEWAY=198.51.100.1"]
    return "\n".join(lines) + "\n"


def net_peer(lab: Lab, peer_id: int, name: str = "", local_address: str | None = None) -> str:
    from lab.topology import PROVIDERS

    _, public, prefix, port = PROVIDERS[peer_id]
    address = f"{prefix}.0.2" if local_address is None else local_address
    remark = base64.b64encode(f"{name or 'vpn'} exit".encode()).decode()
    return (f"{peer_id},on,net,{name or f'vpn{peer_id}'},{lab.keys[f'vpn{peer_id}'][1]},"
            f"{lab.keys[f'fw{peer_id}'][0]},518{peer_id:02d},{public},{port},0.0.0.0/0,{remark},"
            f"192.168.2.0/24,,25,{address}")


ADMIN_START = """\
        # the admin's port forward from red to a green server (issue: coexist with firewall.local)
        iptables -t nat -A CUSTOMPREROUTING -i red0 -p tcp --dport 443 -j DNAT --to 192.168.1.52:443
        iptables -A CUSTOMFORWARD -i red0 -d 192.168.1.52 -p tcp --dport 443 -j ACCEPT
"""
ADMIN_STOP = """\
        iptables -t nat -F CUSTOMPREROUTING
        iptables -F CUSTOMFORWARD
"""


def firewall_local() -> str:
    """IPFire's own firewall.local template with the seed admin's rules in its start and stop cases."""
    with open(os.path.join(SHARED, "src/initscripts/sysconfig/firewall.local"), encoding="utf-8") as handle:
        text = handle.read()
    for case, rules in (("start", ADMIN_START), ("stop", ADMIN_STOP)):
        marker = f"        ## add your '{case}' rules here\n"
        text = text.replace(marker, marker + rules)
    return text


def seed(lab: Lab) -> None:
    """IPFire's settings files as the web UI writes them; IPFire's scripts are already on the box."""
    root = lab.root
    write(root, "var/ipfire/ethernet/settings", ethernet())
    write(root, "var/ipfire/wireguard/settings",
          f"ENABLED=on\nPORT=51820\nENDPOINT=198.51.100.2\nCLIENT_POOL=10.0.0.0/24\nCLIENT_DNS=10.0.0.1\n"
          f"PRIVATE_KEY={lab.keys['rw'][0]}\nPUBLIC_KEY={lab.keys['rw'][1]}\n")
    # a road warrior (trailing fields dropped, as Perl writes them) and the provider tunnels
    rows = [f"1,on,host,phone,{lab.keys['phone'][1]},,,,,10.0.0.2/32,cGhvbmU="]
    rows += [net_peer(lab, peer_id, "nordvpn" if peer_id == 3 else "mullvad") for peer_id in lab.providers]
    write(root, "var/ipfire/wireguard/peers", "\n".join(rows) + "\n")
    write(root, "var/ipfire/red/iface", "red0")  # IPFire writes these without a trailing newline
    write(root, "var/ipfire/red/remote-ipaddress", "198.51.100.1")
    write(root, "var/ipfire/red/local-ipaddress", "198.51.100.2")
    write(root, "var/ipfire/red/active", "")
    for rel in ("var/ipfire/optionsfw/settings", "var/ipfire/ppp/settings", "var/ipfire/dns/settings",
                "var/ipfire/main/routing"):
        write(root, rel, "")
    write(root, "var/ipfire/zonevpn/settings", "ENABLED=on\n")
    write(root, "etc/sysconfig/firewall.local", firewall_local(), 0o755)


def install_zonevpn(lab: Lab) -> None:
    """zonevpn's own files where the package puts them, running the repo's library (the package itself
    is installed by IPFire's real pakfire functions in test_package.py)."""
    root = lab.root
    write(root, "usr/sbin/zonevpn", f'#!/bin/sh\nPYTHONPATH={REPO}/lib exec {sys.executable} -m zonevpn "$@"\n',
          0o755)
    shutil.copy(os.path.join(REPO, "initscripts/zonevpn"), os.path.join(root, "etc/rc.d/init.d/zonevpn"))
    os.chmod(os.path.join(root, "etc/rc.d/init.d/zonevpn"), 0o754)
    red_up = os.path.join(root, "etc/rc.d/init.d/networking/red.up/50-zonevpn")
    shutil.copy(os.path.join(REPO, "initscripts/red.up-50-zonevpn"), red_up)
    os.chmod(red_up, 0o755)


def _zones() -> dict[str, tuple[str, str, str, int]]:
    from lab.topology import ZONES

    return ZONES
