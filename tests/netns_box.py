"""A light kernel fixture: one namespace shaped like an IPFire box's routing and firewall, no traffic.

For tests about kernel *state* (fault convergence, concurrency, exact restore), where the full lab's
hosts and tunnels add nothing but seconds. Interfaces are veths named as on IPFire (wg3 is a veth here:
routing does not care what carries the packets). Packet-level behaviour is proven in the lab tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid

from ipfire_files import make_root
from legacy_shim import make_shim
from scoped import Scoped

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINKS = {"green0": "192.168.1.1/24", "blue0": "192.168.2.1/24", "orange0": "192.168.3.1/24",
         "red0": "198.51.100.2/24"}
FIREWALL = """*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:CTINPUT - [0:0]
:WGBLOCK - [0:0]
:POLICYFWD - [0:0]
:CUSTOMFORWARD - [0:0]
-A FORWARD -j CUSTOMFORWARD
-A FORWARD -i wg+ -j WGBLOCK
-A FORWARD -j CTINPUT
-A FORWARD -j POLICYFWD
-A CTINPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A WGBLOCK -s 10.0.0.0/24 -i wg0 -j RETURN
-A WGBLOCK -j REJECT --reject-with icmp-admin-prohibited
-A POLICYFWD -i green0 -j ACCEPT
-A POLICYFWD -i blue0 -o red0 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:CUSTOMPOSTROUTING - [0:0]
:WGNAT - [0:0]
-A POSTROUTING -j CUSTOMPOSTROUTING
-A POSTROUTING -j WGNAT
-A WGNAT -o wg3 -j MASQUERADE
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
COMMIT
"""


class Box(Scoped):
    def __init__(self, tunnels: int = 1, peers: int = 0, routing: str = "iproute2") -> None:
        """`tunnels` net-to-net exits wg3, wg4, ... (10.5.0.2, 10.6.0.2, ...); `peers` road warriors more."""
        self.ns = f"zvbox-{uuid.uuid4().hex[:6]}"
        self.root = tempfile.mkdtemp(prefix="zvbox-")
        self.shim = os.path.join(self.root, "shim")
        self.tunnels = [(3 + i, f"10.{5 + i}.0.2") for i in range(tunnels)]
        self.peers = peers
        self.netns_etc = f"/etc/netns/{self.ns}"
        self.routing = routing  # zonevpn's routing back-end under test

    def open(self) -> None:
        make_root(self.root, peers=self._peers_csv())
        make_shim(self.shim)
        subprocess.run(["ip", "netns", "add", self.ns], check=True)
        links = dict(LINKS)
        links.update({f"wg{peer_id}": f"{address}/32" for peer_id, address in self.tunnels})
        for name, address in links.items():
            self.ip("link", "add", name, "type", "veth", "peer", "name", f"p{name}")
            self.ip("link", "set", name, "up")
            self.ip("link", "set", f"p{name}", "up")
            self.ip("addr", "add", address, "dev", name)
        self.ip("route", "add", "default", "via", "198.51.100.1")
        self.ip("rule", "add", "table", "200")
        self.stock_wireguard_routes()
        self.run("iptables-restore", input=FIREWALL)

    def _peers_csv(self) -> str:
        rows = [f"{100 + i},on,host,phone{i},KEY{i}=,,,,,10.0.{i // 250}.{i % 250 + 2}/32,\n"
                for i in range(self.peers)]
        rows += [f"{peer_id},on,net,vpn{peer_id},PUB{peer_id}=,PRIV{peer_id}=,518{peer_id:02d},192.0.2.10,"
                 f"51820,0.0.0.0/0,,192.168.2.0/24,,25,{address}\n" for peer_id, address in self.tunnels]
        return "".join(rows)

    def stock_wireguard_routes(self) -> None:
        """What IPFire's wireguard initscript leaves in main for each tunnel (remote 0.0.0.0/0)."""
        for peer_id, _ in self.tunnels:
            for half in ("0.0.0.0/1", "128.0.0.0/1"):
                self.ip("route", "replace", half, "dev", f"wg{peer_id}", "src", "192.168.2.1")

    def wireguard_reload(self) -> None:
        """What `wireguard reload` does to the state zonevpn keeps (see ipfire.md): WGBLOCK rebuilt, the
        /1 routes back in main, each tunnel's address flushed and re-added (the kernel drops every route
        that used it as src)."""
        self.run("iptables", "-F", "WGBLOCK")
        self.run("iptables", "-A", "WGBLOCK", "-s", "10.0.0.0/24", "-i", "wg0", "-j", "RETURN")
        self.run("iptables", "-A", "WGBLOCK", "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
        for peer_id, address in self.tunnels:
            self.ip("addr", "flush", "dev", f"wg{peer_id}")
            self.ip("addr", "add", f"{address}/32", "dev", f"wg{peer_id}")
        self.stock_wireguard_routes()

    def with_rt_tables(self) -> None:
        """A lab-owned rt_tables that `ip netns exec` mounts over the host's (the baseline script appends)."""
        os.makedirs(f"{self.netns_etc}/iproute2", exist_ok=True)
        with open(f"{self.netns_etc}/iproute2/rt_tables", "w") as handle:
            handle.write("255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n")

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.netns_etc, ignore_errors=True)

    def run(self, *cmd: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return subprocess.run(["ip", "netns", "exec", self.ns, *cmd], input=input, text=True,
                              capture_output=True, check=check, env=self.env())

    def ip(self, *args: str) -> str:
        return self.run("ip", *args).stdout

    def zonevpn_cmd(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, sys.executable, "-m", "zonevpn", *args]

    def env(self) -> dict[str, str]:
        return dict(os.environ, PATH=f"{self.shim}:{os.environ.get('PATH', '')}",
                    PYTHONPATH=os.path.join(REPO, "lib"), ZONEVPN_ROOT=self.root,
                    SETUPTOOLS_USE_DISTUTILS="stdlib", ZONEVPN_ROUTING=self.routing)

    def blue_is_refused(self) -> bool:
        """The kernel's own answer for a blue client's packet to the internet: an error, not a route."""
        lookup = self.run("ip", "route", "get", "203.0.113.10", "from", "192.168.2.10", "iif", "blue0",
                          check=False)
        return lookup.returncode != 0 and "red0" not in lookup.stdout

    def zonevpn(self, *args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
        return self.run(sys.executable, "-m", "zonevpn", *args, check=False)

    def settings(self, text: str) -> None:
        with open(os.path.join(self.root, "var/ipfire/zonevpn/settings"), "w") as handle:
            handle.write(text)

    def dump(self) -> str:
        """Everything zonevpn may touch, counters stripped, empty built-in tables left out."""
        save = self.run("iptables-save").stdout + self.run("ip6tables-save").stdout
        tables, current = [], []
        for line in save.splitlines():
            if line.startswith("#"):
                continue
            current.append(line.split(" [")[0] if line.startswith(":") else line)
            if line == "COMMIT":
                if any(row.startswith("-A") or " - " in row for row in current):
                    tables.append("\n".join(current))
                current = []
        mark = self.run("cat", "/proc/sys/net/ipv4/conf/all/src_valid_mark").stdout
        routes = self.ip("-4", "route", "show", "table", "all")
        return "\n".join([self.ip("-4", "rule"), routes, *sorted(tables), f"src_valid_mark={mark.strip()}"])
