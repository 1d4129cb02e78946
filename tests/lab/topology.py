"""The namespace lab: an IPFire box, its zones' clients, an ISP, an internet host and VPN providers.

    zvlab-green 192.168.1.52 ─┐                           ┌─ zvlab-inet 203.0.113.10 (echo: "seen <src>")
    zvlab-blue  192.168.2.10 ─┼─ zvlab-fw ── red0 ── zvlab-isp ─┤
    zvlab-orange 192.168.3.10 ┘  198.51.100.2   198.51.100.1    └─ zvlab-vpn 192.0.2.10 (+ .20): wireguard-go
                    wg3 10.5.0.2 ═══ wgvpn 10.5.0.1      wg4 10.6.0.2 ═══ wgvpn2 10.6.0.1 (tunnels)

The firewall is an IPFire box (tests/ipfire_box.py): IPFire's real initscripts (wireguard, firewall,
static-routes, red.up), firewall.local template and setuid helpers run at their real paths in it; the one
stand-in that matters here is wireguard-go for the kernel's wireguard module (`ip link add wgN type
wireguard` starts it), named in ipfire_box.STANDINS with the others.

Documentation address ranges only; the namespaces have no link to the host. Everything is removed on
exit, on Ctrl-C, on SIGTERM and at interpreter exit; a crashed run's leftovers go at the next start.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

from ipfire_box import IPFireBox
from lab import files
from scoped import Scoped

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOCK = "/run/zonevpn-lab.lock"
PREFIX = "zvlab-"
ZONES = {"GREEN": ("green0", "192.168.1.1", "192.168.1.52", 9001),
         "BLUE": ("blue0", "192.168.2.1", "192.168.2.10", 9002),
         "ORANGE": ("orange0", "192.168.3.1", "192.168.3.10", 9003)}
# A second client in each zone (a macvlan on the zone's link, its own MAC and namespace): the devices that
# exit policies select. name -> (zone, address, probe port, MAC)
CLIENTS = {"GREEN2": ("GREEN", "192.168.1.50", 9011, "02:00:00:00:01:32"),
           "BLUE2": ("BLUE", "192.168.2.20", 9012, "02:00:00:00:02:14"),
           "ORANGE2": ("ORANGE", "192.168.3.20", 9013, "02:00:00:00:03:14")}
INTERNET, RED_ADDRESS, ISP_ADDRESS = "203.0.113.10", "198.51.100.2", "198.51.100.1"
ELSEWHERE = "198.18.0.10"  # a second internet site (benchmarking range), outside 203.0.113.0/24
FW_PORT = 9010  # the firewall's own probes
PROVIDERS = {3: ("wgvpn", "192.0.2.10", "10.5", 51820), 4: ("wgvpn2", "192.0.2.20", "10.6", 51821)}
WG_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}


class Probe(NamedTuple):
    seen: str | None
    error: str | None
    ms: float
    reply: str | None = None


def sh(*cmd: str, check: bool = True, input: str | None = None,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(cmd, capture_output=True, text=True, input=input, env=env)
    if check and run.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({run.returncode}): {run.stderr.strip()}")
    return run


def cleanup_stale() -> None:
    """Remove what a crashed lab left: its namespaces, wireguard-go processes and sockets, /etc/netns."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", name, check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
    # wireguard-go's sockets live in one directory for every namespace: the lab's interface names
    if os.path.isdir("/var/run/wireguard"):
        for name in os.listdir("/var/run/wireguard"):
            if re.fullmatch(r"wg(vpn)?[0-9]*\.sock", name):
                os.remove(os.path.join("/var/run/wireguard", name))


class Lab(Scoped):
    def __init__(self, providers: tuple[int, ...] = (3,)) -> None:
        self.providers = providers
        self.root = ""  # the IPFire box's / as seen from here
        self.scratch = ""  # the lab's own files (provider configs, DNS logs), outside the box
        self.box: IPFireBox | None = None
        self._lock_fd = -1
        self._procs: list[subprocess.Popen[str]] = []
        self._streams: dict[str, subprocess.Popen[str]] = {}
        self.keys: dict[str, tuple[str, str]] = {}

    # --- life cycle ----------------------------------------------------------------------------------
    def open(self) -> None:
        self._lock_fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        cleanup_stale()
        atexit.register(self.close)
        self._old_handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._build()

    def _on_signal(self, signum: int, frame: object) -> None:
        self.close()
        raise KeyboardInterrupt

    def close(self) -> None:
        for proc in [*self._procs, *self._streams.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._procs, self._streams = [], {}
        if self.box:
            self.box.close()
            self.box = None
        cleanup_stale()
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self.root = self.scratch = ""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
            for signum, handler in getattr(self, "_old_handlers", {}).items():
                signal.signal(signum, handler)
            atexit.unregister(self.close)

    # --- building ------------------------------------------------------------------------------------
    def _build(self) -> None:
        self.scratch = tempfile.mkdtemp(prefix="zvlab-")
        for host in ("fw", "green", "blue", "orange", "isp", "inet", "vpn"):
            sh("ip", "netns", "add", PREFIX + host)
            self.ns(host, "ip", "link", "set", "lo", "up")
        self.box = IPFireBox(PREFIX + "fw")
        self.box.start()
        self.root = self.box.root
        self._wireguard_loop_guard()
        self._sysctls()
        for zone, (dev, gw, client, _) in ZONES.items():
            self._wire("fw", dev, f"{gw}/24", zone.lower(), "eth0", f"{client}/24")
            self.ns(zone.lower(), "ip", "route", "add", "default", "via", gw)
        for name, (zone, address, _, mac) in CLIENTS.items():
            sh("ip", "netns", "add", PREFIX + name.lower())
            self.ns(name.lower(), "ip", "link", "set", "lo", "up")
            self.ns(zone.lower(), "ip", "link", "add", "link", "eth0", "name", "mv0", "address", mac,
                    "type", "macvlan", "mode", "bridge")
            self.ns(zone.lower(), "ip", "link", "set", "mv0", "netns", PREFIX + name.lower())
            self.ns(name.lower(), "ip", "addr", "add", f"{address}/24", "dev", "mv0")
            self.ns(name.lower(), "ip", "link", "set", "mv0", "up")
            self.ns(name.lower(), "ip", "route", "add", "default", "via", ZONES[zone][1])
        self._wire("fw", "red0", f"{RED_ADDRESS}/24", "isp", "isp-red", f"{ISP_ADDRESS}/24")
        self._wire("isp", "isp-inet", "203.0.113.1/24", "inet", "eth0", f"{INTERNET}/24")
        self._wire("isp", "isp-vpn", "192.0.2.1/24", "vpn", "eth0", "192.0.2.10/24")
        self.ns("vpn", "ip", "addr", "add", "192.0.2.20/24", "dev", "eth0")
        self.ns("fw", "ip", "route", "add", "default", "via", ISP_ADDRESS)
        self.ns("inet", "ip", "route", "add", "default", "via", "203.0.113.1")
        self.ns("inet", "ip", "addr", "add", f"{ELSEWHERE}/24", "dev", "eth0")
        self.ns("isp", "ip", "route", "add", "198.18.0.0/24", "via", INTERNET)
        self.ns("vpn", "ip", "route", "add", "default", "via", "192.0.2.1")
        self.keys = {name: _keypair() for name in ("fw3", "fw4", "vpn3", "vpn4", "rw", "phone")}
        files.seed(self)
        files.install_zonevpn(self)
        self._counters()
        self._spawn("inet", sys.executable, "-m", "lab.echo_server", INTERNET,
                    *[str(z[3]) for z in ZONES.values()], *[str(c[2]) for c in CLIENTS.values()],
                    str(FW_PORT))
        self._spawn("inet", sys.executable, "-m", "lab.echo_server", ELSEWHERE,
                    *[str(port) for _, port in _probe_ports()])
        for peer_id in self.providers:
            self._provider(peer_id)
        self.firewall("start")
        self.fw("/etc/rc.d/init.d/static-routes", "start")  # as red.up left it on a booted box

    def _wireguard_loop_guard(self) -> None:
        """Stand-in for what the kernel's wireguard module does and wireguard-go does not: a tunnel's own
        UDP packets routed into a wg interface are dropped ("Avoiding routing loop", -ELOOP), never sent
        into it to be encrypted again. A `wireguard reload` routes the endpoint through the tunnel for a
        moment (/1 routes back before its endpoint route): without this, wireguard-go loops there (and can
        roam its peer onto the tunnel's inner address) where a real IPFire drops the packet. In nftables,
        which IPFire's iptables-legacy flushes (firewall restart) leave alone."""
        self.ns("fw", "iptables-nft", "-t", "raw", "-A", "OUTPUT", "-o", "wg+", "-p", "udp", "-m", "udp",
                "--sport", "51800:51899", "-j", "DROP")

    def _sysctls(self) -> None:
        for host in ("fw", "isp", "vpn"):
            self.ns(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for key in ("all", "default"):  # IPFire: strict reverse-path filtering everywhere
            self.ns("fw", "sysctl", "-qw", f"net.ipv4.conf.{key}.rp_filter=1")

    def _wire(self, a: str, a_dev: str, a_addr: str, b: str, b_dev: str, b_addr: str) -> None:
        sh("ip", "link", "add", a_dev, "netns", PREFIX + a, "type", "veth", "peer", "name", b_dev,
           "netns", PREFIX + b)
        for host, dev, addr in ((a, a_dev, a_addr), (b, b_dev, b_addr)):
            self.ns(host, "ip", "addr", "add", addr, "dev", dev)
            self.ns(host, "ip", "link", "set", dev, "up")

    def _provider(self, peer_id: int) -> None:
        dev, public, prefix, port = PROVIDERS[peer_id]
        conf = (f"[Interface]\nPrivateKey = {self.keys[f'vpn{peer_id}'][0]}\nListenPort = {port}\n"
                f"[Peer]\nPublicKey = {self.keys[f'fw{peer_id}'][1]}\nAllowedIPs = {prefix}.0.2/32\n")
        path = os.path.join(self.scratch, f"{dev}.conf")
        with open(path, "w") as handle:
            handle.write(conf)
        if os.path.exists(f"/var/run/wireguard/{dev}.sock"):
            os.remove(f"/var/run/wireguard/{dev}.sock")
        self.ns("vpn", "wireguard-go", dev, env=WG_ENV)
        self.ns("vpn", "wg", "setconf", dev, path)
        self.ns("vpn", "ip", "addr", "add", f"{prefix}.0.1/24", "dev", dev)
        self.ns("vpn", "ip", "link", "set", dev, "up")
        self.ns("vpn", "iptables-legacy", "-t", "nat", "-A", "POSTROUTING", "-s", f"{prefix}.0.0/24",
                "-o", "eth0", "-j", "SNAT", "--to-source", public)
        for zone, probe_port in _probe_ports():
            for proto in ("udp", "tcp"):
                self.ns("vpn", "iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", dev, "-p", proto,
                        "--dport", str(probe_port), "-m", "comment", "--comment", zone)
                self.ns("vpn", "iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", dev, "-p", proto,
                        "--dport", str(probe_port), "-m", "comment", "--comment", f"{zone}-wg{peer_id}")
        self.ns("vpn", "iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", dev, "-p", "udp",
                "--dport", "53", "-m", "comment", "--comment", "DNS")
        self._spawn("vpn", sys.executable, os.path.join(REPO, "tests", "dns_stub.py"), f"{prefix}.0.1",
                    os.path.join(self.scratch, f"dns-{dev}.log"))

    def provider_down(self, peer_id: int) -> None:
        """The provider's wireguard-go dies (its end of the tunnel is gone; ours stays up, silent)."""
        self.ns("vpn", "ip", "link", "del", PROVIDERS[peer_id][0], check=False)

    def provider_up(self, peer_id: int) -> None:
        self.ns("vpn", "iptables-legacy", "-t", "nat", "-F", "POSTROUTING")
        self._provider(peer_id)

    def provider_silence(self, peer_id: int, silent: bool = True) -> None:
        """The provider's side drops everything our tunnel sends it: both ends stay up, handshakes stop."""
        port = PROVIDERS[peer_id][3]  # any of its addresses: our end roams to the one it last heard from
        self.ns("vpn", "iptables-legacy", "-D" if not silent else "-I", "INPUT", "-p", "udp",
                "--dport", str(port), "-j", "DROP", check=silent)

    def watcher_pid(self) -> int | None:
        """The running zonevpn watcher's pid inside the box, if any."""
        out = self.zonevpn("watch", "status").stdout
        return int(out.split("pid ")[1].split(")")[0]) if "pid " in out else None

    def start_unbound(self) -> None:
        """IPFire's own unbound.conf (already on the box) run by Debian's unbound, with the files IPFire's
        unbound initscript generates; it forwards everything to a resolver on the ISP's side of red
        (its queries are logged in dns-isp.log), like a box whose DNS servers are its ISP's."""
        assert self.box
        self._spawn("isp", sys.executable, os.path.join(REPO, "tests", "dns_stub.py"), ISP_ADDRESS,
                    os.path.join(self.scratch, "dns-isp.log"))
        self._spawn("inet", sys.executable, os.path.join(REPO, "tests", "dns_stub.py"), INTERNET,
                    os.path.join(self.scratch, "dns-inet.log"))
        for rel in ("etc/unbound/tuning.conf", "etc/unbound/dhcp-leases.conf", "etc/unbound/hosts.conf",
                    "etc/unbound/root.hints"):
            self.box.write(rel, "")
        # IPFire's write_forward_conf: the ISP's servers for "."; the lab's names (under .example) are unsigned
        self.box.write("etc/unbound/forward.conf", 'domain-insecure: "example"\nforward-zone:\n\tname: "."\n'
                       f"\tforward-addr: {ISP_ADDRESS}\n")
        self.box.write("var/lib/unbound/root.key", ". IN DS 20326 8 2 "
                       "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
        if not os.path.exists(self.box.path("etc/ssl/certs/ca-bundle.crt")):  # IPFire's name for the bundle
            os.symlink("ca-certificates.crt", self.box.path("etc/ssl/certs/ca-bundle.crt"))
        os.makedirs(self.box.path("etc/unbound/local.d"), exist_ok=True)
        os.chown(self.box.path("var/lib/unbound"), 65534, 65534)
        self.fw("unbound", "-c", "/etc/unbound/unbound.conf")
        deadline = time.monotonic() + 10
        while self.fw("unbound-control", "status", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("unbound did not start in the box")
            time.sleep(0.1)

    def resolver_log(self, host: str) -> list[str]:
        """Queries the resolver of `host` ("isp" or "inet") answered: `udp|tcp <source> <name>`."""
        try:
            with open(os.path.join(self.scratch, f"dns-{host}.log")) as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []

    def _counters(self) -> None:
        for zone, port in _probe_ports():
            for proto in ("udp", "tcp"):
                self.ns("isp", "iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", "isp-red",
                        "-p", proto, "--dport", str(port), "-m", "comment", "--comment", zone)
        self.ns("isp", "iptables-legacy", "-t", "raw", "-A", "PREROUTING", "-i", "isp-red", "-p", "udp",
                "--dport", "53", "-m", "comment", "--comment", "DNS")

    def _spawn(self, host: str, *cmd: str) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "tests"))
        proc = subprocess.Popen(["ip", "netns", "exec", PREFIX + host, *cmd], env=env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(proc)
        return proc

    # --- running things ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """What commands in the box get besides IPFire's PATH: the repo's library."""
        return {"PYTHONPATH": f"{REPO}/lib:{REPO}/tests", "SETUPTOOLS_USE_DISTUTILS": "stdlib"}

    def ns(self, host: str, *cmd: str, check: bool = True, env: dict[str, str] | None = None,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, **env) if env else None
        return sh("ip", "netns", "exec", PREFIX + host, *cmd, check=check, env=full_env, input=input)

    def fw(self, *cmd: str, check: bool = True,
           input: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command on the IPFire box, as root with IPFire's PATH."""
        assert self.box
        result = subprocess.run(self.box.command(*cmd, env=self.env()), capture_output=True, text=True,
                                input=input)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def fw_command(self, *cmd: str) -> list[str]:
        assert self.box
        return self.box.command(*cmd, env=self.env())

    def zonevpn(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.fw("/usr/sbin/zonevpn", *args, check=check)

    def wire_hooks(self) -> None:
        """What the add-on's install step does with the hooks: `zonevpn integrate install` (marked hooks in
        IPFire's real wireguard initscript and firewall.local)."""
        result = self.zonevpn("integrate", "install")
        assert result.returncode == 0, result.stderr

    def wireguard(self, action: str) -> subprocess.CompletedProcess[str]:
        return self.fw("/etc/rc.d/init.d/wireguard", action, check=False)

    def firewall(self, action: str) -> subprocess.CompletedProcess[str]:
        return self.fw("/etc/rc.d/init.d/firewall", action)

    def write_ipfire(self, rel: str, text: str, mode: int = 0o644) -> None:
        """A file on the box (IPFire's settings, or a script a Core Update replaced)."""
        files.write(self.root, rel, text, mode)

    def write_zonevpn_settings(self, **values: str) -> None:
        files.write(self.root, "var/ipfire/zonevpn/settings",
                    "".join(f"{key}={value}\n" for key, value in values.items()))

    # --- observing -----------------------------------------------------------------------------------
    def probe(self, zone: str, proto: str = "udp", timeout: float = 1.0, port: int | None = None,
              host: str = INTERNET) -> Probe:
        """From the zone's client, or from one of CLIENTS (zone = its name, e.g. BLUE2)."""
        client_ns = zone.lower()
        port = port or dict(_probe_ports())[zone]
        out = self.ns(client_ns, sys.executable, "-m", "lab.probe", proto, host, str(port), "--timeout",
                      str(timeout), env={"PYTHONPATH": os.path.join(REPO, "tests")}).stdout
        return Probe(**json.loads(out))

    def dns(self, zone: str, server: str, proto: str = "udp") -> Probe:
        out = self.ns(zone.lower(), sys.executable, "-m", "lab.probe", "dns", server, proto,
                      env={"PYTHONPATH": os.path.join(REPO, "tests")}).stdout
        return Probe(**json.loads(out))

    def dns_log(self, peer_id: int = 3) -> list[str]:
        """Queries the provider's resolver answered: `udp|tcp <source> <name>`."""
        try:
            with open(os.path.join(self.scratch, f"dns-{PROVIDERS[peer_id][0]}.log")) as handle:
                return handle.read().splitlines()
        except FileNotFoundError:
            return []

    def probe_from_fw(self, source: str = "10.5.0.2", timeout: float = 1.0) -> Probe:
        """The firewall's own traffic from the tunnel address (`curl --interface wg3`)."""
        out = self.fw(sys.executable, "-m", "lab.probe", "udp", INTERNET, str(FW_PORT), "--bind", source,
                      "--timeout", str(timeout)).stdout
        return Probe(**json.loads(out))

    def probe_inbound(self, timeout: float = 1.0) -> Probe:
        """From the internet to red:443, forwarded by the admin's firewall.local to 192.168.1.52:443."""
        out = self.ns("inet", sys.executable, "-m", "lab.probe", "tcp", RED_ADDRESS, "443", "--timeout",
                      str(timeout), env={"PYTHONPATH": os.path.join(REPO, "tests")}).stdout
        return Probe(**json.loads(out))

    def serve(self, zone: str, port: int) -> None:
        """A server in the zone's client (a port-forward target)."""
        self._spawn(zone.lower(), sys.executable, "-m", "lab.echo_server", ZONES[zone][2], str(port))
        time.sleep(0.2)

    def _count(self, host: str, comment: str) -> int:
        save = self.ns(host, "iptables-legacy-save", "-c", "-t", "raw").stdout
        return sum(int(line.split("]")[0].split(":")[0].lstrip("[")) for line in save.splitlines()
                   if line.endswith((f"--comment {comment}", f'--comment "{comment}"')))

    def red_count(self, zone: str) -> int:
        """Packets to the zone's probe port (udp+tcp) that crossed the red link."""
        return self._count("isp", zone)

    def tunnel_count(self, zone: str, peer_id: int | None = None) -> int:
        """Packets to the zone's probe port that arrived at a provider through a tunnel (that tunnel)."""
        return self._count("vpn", zone if peer_id is None else f"{zone}-wg{peer_id}")

    def reset_counters(self) -> None:
        for host in ("isp", "vpn"):
            self.ns(host, "iptables-legacy", "-t", "raw", "-Z")

    def start_stream(self, zone: str, rate: int = 100) -> None:
        self._streams[zone] = subprocess.Popen(
            ["ip", "netns", "exec", PREFIX + zone.lower(), sys.executable, "-m", "lab.probe", "stream",
             INTERNET, str(dict(_probe_ports())[zone]), str(rate)],
            env=dict(os.environ, PYTHONPATH=f"{REPO}/tests"),
            stdout=subprocess.PIPE, text=True)

    def stop_stream(self, zone: str) -> dict[str, int]:
        proc = self._streams.pop(zone)
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        return json.loads(out)

    def dump(self) -> str:
        """The firewall's routing and filtering, for assertion messages."""
        parts = [self.fw("ip", "rule").stdout, self.fw("ip", "route", "show", "table", "all").stdout,
                 self.fw("iptables-save", check=False).stdout, self.fw("wg", "show", check=False).stdout]
        return "\n".join(parts)

    def state(self) -> str:
        """What a flush must give back exactly: IPv4 rules and routes, iptables without counters."""
        save = self.fw("iptables-save").stdout + self.fw("ip6tables-save").stdout
        tables, current = [], []
        for line in save.splitlines():
            if line.startswith("#"):
                continue
            current.append(line.split(" [")[0] if line.startswith(":") else line)
            if line == "COMMIT":  # a table nothing was ever put in only shows that it was loaded
                if any(row.startswith("-A") or " - " in row or " DROP" in row for row in current):
                    tables.append("\n".join(current))
                current = []
        return "\n".join([self.fw("ip", "-4", "rule").stdout,
                          self.fw("ip", "-4", "route", "show", "table", "all").stdout, *sorted(tables)])

    def run_baseline(self) -> subprocess.CompletedProcess[str]:
        """The hand-run script, on the box (it appends to the box's own /etc/iproute2/rt_tables)."""
        script = os.path.join(os.path.dirname(REPO), "shared", "baseline", "blue-vpn-setup.sh")
        return self.fw("sh", script, check=False)


def _probe_ports() -> list[tuple[str, int]]:
    """Each client's own probe port, by its name (GREEN, ..., GREEN2, ...): counted at the ISP and providers."""
    return [(zone, z[3]) for zone, z in ZONES.items()] + [(name, c[2]) for name, c in CLIENTS.items()]


def _keypair() -> tuple[str, str]:
    private = sh("wg", "genkey").stdout.strip()
    return private, sh("wg", "pubkey", input=private).stdout.strip()
