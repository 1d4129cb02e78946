"""Builds a sandbox root holding IPFire's files in IPFire's formats, for the pure (no-kernel) tests."""

from __future__ import annotations

import os

ETHERNET = """CONFIG_TYPE=4
GREEN_DEV=green0
GREEN_ADDRESS=192.168.1.1
GREEN_NETADDRESS=192.168.1.0
GREEN_NETMASK=255.255.255.0
BLUE_DEV=blue0
BLUE_ADDRESS=192.168.2.1
BLUE_NETADDRESS=192.168.2.0
BLUE_NETMASK=255.255.255.0
ORANGE_DEV=orange0
ORANGE_ADDRESS=192.168.3.1
ORANGE_NETADDRESS=192.168.3.0
ORANGE_NETMASK=255.255.255.0
RED_DEV=red0
RED_TYPE=STATIC
"""
WG_SETTINGS = "ENABLED=on\nPORT=51820\nCLIENT_POOL=10.0.0.0/24\nCLIENT_DNS=10.0.0.1\n"
RW_PEER = "1,on,host,phone,PUBKEY1=,,,,,10.0.0.2/32,cGhvbmU=\n"  # trailing fields dropped, as Perl writes
NET_PEER = ("3,on,net,nordvpn,PUBKEY3=,PRIVKEY3=,51823,192.0.2.10,51820,0.0.0.0/0,bm9yZA==,"
            "192.168.2.0/24,,25,10.5.0.2\n")
SITE_PEER = ("5,on,net,office,PUBKEY5=,PRIVKEY5=,51825,192.0.2.50,51820,10.20.0.0/16,,"
             "192.168.1.0/24,,25,10.9.0.2\n")


def write(root: str, rel: str, text: str) -> str:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def make_root(root: str, settings: str = "ENABLED=on\nBLUE_TUNNEL=3\n",
              peers: str = RW_PEER + NET_PEER + SITE_PEER, ethernet: str = ETHERNET) -> str:
    write(root, "var/ipfire/ethernet/settings", ethernet)
    write(root, "var/ipfire/wireguard/settings", WG_SETTINGS)
    write(root, "var/ipfire/wireguard/peers", peers)
    write(root, "var/ipfire/red/iface", "red0")
    write(root, "var/ipfire/red/remote-ipaddress", "198.51.100.1")
    write(root, "var/ipfire/zonevpn/settings", settings)
    return root
