"""zonevpn installed as an admin installs it (`zonevpn-installer install`, the package `make pak` builds)
on the lab's IPFire box, through IPFire's real boot order, its real static-routes, wireguard and firewall
initscripts and its real setuid addonctrl. Real packets, and the blue zone's route polled every 20 ms.
The one stand-in: wireguard-go for the kernel's wireguard module (tests/ipfire_box.py, STANDINS)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import wait_for_handshake
from ipfire_box import REPO, SHARED

pytestmark = pytest.mark.lab
RED, VPN = "198.51.100.2", "192.0.2.10"
STATIC_NET, STATIC_HOST, STATIC_GW = "10.99.0.0/24", "10.99.0.1", "192.168.1.52"
# The documented order (README): ours between IPsec (128) and IPFire's wg/static/main rules.
RULE_ORDER = ["0: from all lookup local",
              "1000: from all fwmark 0x400000/0x400000 lookup main proto 122",
              "1012: from 192.168.2.0/24 lookup main suppress_prefixlength 1 proto 122",
              "1022: from 192.168.2.0/24 lookup static suppress_prefixlength 1 proto 122",
              "1032: from 192.168.2.0/24 lookup 1002 proto 122",
              "1042: from 192.168.2.0/24 prohibit proto 122",
              "1050: from 10.5.0.2 lookup 1103 proto 122",
              "32764: from all lookup wg", "32765: from all lookup static",
              "32766: from all lookup main", "32767: from all lookup default"]
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")  # the web server's user


class RoutePoller:
    """`ip route get` for a blue client's packet to the internet, every 20 ms, inside the box."""

    LOOP = ("while :; do ip -4 -o route get 203.0.113.10 from 192.168.2.10 iif blue0 2>&1 | head -c 160; "
            "echo; sleep 0.02; done")

    def __init__(self, lab) -> None:  # type: ignore[no-untyped-def]
        self.proc = subprocess.Popen(lab.fw_command("sh", "-c", self.LOOP), stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, int]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        lines = [line for line in out.splitlines() if line.strip()]
        return {"polls": len(lines), "red": sum(" dev red0 " in line for line in lines),
                "tunnel": sum(" dev wg" in line for line in lines),
                "refused": sum("RTNETLINK" in line or "prohibit" in line for line in lines)}


def services_page(lab, query: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    """A GET of IPFire's services.cgi as Apache runs it (the web server's user, the request's query string):
    it runs `addonctrl <addon> start|stop|restart` straight from the link, without a Referer check."""
    return lab.fw(*NOBODY, "env", f"QUERY_STRING={query}", "REQUEST_METHOD=GET", "SERVER_NAME=ipfire",
                  "perl", "/srv/web/ipfire/cgi-bin/services.cgi", check=False)


def install(lab, package: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    assert lab.box
    lab.box.copy(os.path.join(REPO, "addon", "zonevpn-installer"), "root/zonevpn-installer", 0o755)
    lab.box.copy(package, f"root/{os.path.basename(package)}", 0o644)
    result = lab.fw("/root/zonevpn-installer", "install", f"/root/{os.path.basename(package)}", check=False)
    for word in ("install.sh", "update.sh", "init.d/zonevpn"):  # start_service --background
        lab.box.wait_for_exit(word)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def bind_blue(lab) -> None:  # type: ignore[no-untyped-def]
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3")
    os.chown(os.path.join(lab.root, "var/ipfire/zonevpn/settings"), 65534, 65534)


def power_off(lab) -> None:  # type: ignore[no-untyped-def]
    """What a reboot leaves of the kernel state: interfaces of the network script, nothing else."""
    for link in ("wg0", "wg3", "wg4"):
        lab.fw("ip", "link", "del", link, check=False)
    for table in ("filter", "nat", "mangle", "raw"):
        lab.fw("iptables", "-t", table, "-F", check=False)
        lab.fw("iptables", "-t", table, "-X", check=False)
    for chain in ("INPUT", "FORWARD", "OUTPUT"):
        lab.fw("iptables", "-P", chain, "ACCEPT")
    lab.fw("ip", "rule", "flush")  # takes the kernel's own main and default rules too: as booted
    lab.fw("ip", "rule", "add", "pref", "32766", "table", "main")
    lab.fw("ip", "rule", "add", "pref", "32767", "table", "default")
    for table in ("200", "201", "1002", "1103"):
        lab.fw("ip", "route", "flush", "table", table, check=False)
    lab.fw("sh", "-c", "find /run -mindepth 1 -delete; mkdir /run/lock; sysctl -qw net.ipv4.conf.all.src_valid_mark=0")
    lab.fw("ip", "link", "set", "red0", "down")  # red comes up with S20network, not before


def network_red_up(lab) -> None:  # type: ignore[no-untyped-def]
    """Stand-in for the part of IPFire's network initscript (not in ../shared/ipfire) that brings red up
    with its default route; its red.up scripts, the real ones, run next."""
    lab.fw("ip", "link", "set", "red0", "up")
    lab.fw("ip", "route", "replace", "default", "via", "198.51.100.1", "dev", "red0")


def boot(lab) -> list[str]:  # type: ignore[no-untyped-def]
    """IPFire's order: rcsysinit S85firewall, rc3.d S19zonevpn, S20network (red.up: its real scripts that
    touch routing and the firewall, and ours), S50wireguard. Returns what each step printed on error."""
    steps = [("/etc/rc.d/rcsysinit.d/S85firewall", "start"), ("/etc/rc.d/rc3.d/S19zonevpn", "start"),
             ("S20network", "")]
    steps += [(f"/etc/rc.d/init.d/networking/red.up/{name}", "") for name in
              ("01-conntrack-cleanup", "10-static-routes", "20-firewall", "50-zonevpn")]
    steps += [("/etc/rc.d/rc3.d/S50wireguard", "start")]
    failed = []
    for script, action in steps:
        if script == "S20network":
            network_red_up(lab)
            continue
        result = lab.fw(script, *([action] if action else []), check=False)
        if result.returncode != 0:
            failed.append(f"{script} {action}: {result.returncode} {result.stderr[-300:]}")
    return failed


def test_a_reboot_keeps_static_routes_rule_order_and_the_kill_switch(lab, package):
    """Issue 9 defects 3 and 4: static routes lost after every reboot; IPFire's rules ahead of ours."""
    install(lab, package)
    bind_blue(lab)
    lab.write_ipfire("var/ipfire/main/routing", f"on,{STATIC_NET},{STATIC_GW},a server behind green\n")
    lab.ns("green", "ip", "addr", "add", f"{STATIC_HOST}/32", "dev", "lo")  # a server behind green's .52
    lab._spawn("green", sys.executable, "-m", "lab.echo_server", STATIC_HOST, "9020")
    power_off(lab)
    lab.reset_counters()
    poller = RoutePoller(lab)
    lab.start_stream("BLUE", rate=50)
    failed = boot(lab)
    wait_for_handshake(lab)
    assert lab.probe("BLUE").seen == VPN and lab.probe("GREEN").seen == RED, lab.dump()
    rules = [" ".join(line.split()) for line in lab.fw("ip", "-4", "rule").stdout.splitlines()]
    assert rules == RULE_ORDER, "\n".join(rules)
    for source, dev in (("192.168.1.10", "green0"), ("192.168.2.10", "blue0"), ("192.168.3.10", "orange0")):
        route = lab.fw("ip", "-4", "-o", "route", "get", STATIC_HOST, "from", source, "iif", dev).stdout
        assert f"via {STATIC_GW} dev green0" in route, (dev, route)
    assert f"via {STATIC_GW} dev green0" in lab.fw("ip", "-4", "-o", "route", "get", STATIC_HOST).stdout
    own = lab.fw(sys.executable, "-m", "lab.probe", "udp", STATIC_HOST, "9020").stdout  # the firewall's own
    assert '"seen": "192.168.1.1"' in own, own
    lab.fw("/etc/rc.d/rc0.d/K70wireguard", "stop", check=False)  # shutdown: the tunnel goes first
    refused = lab.probe("BLUE")
    blue, polls = lab.stop_stream("BLUE"), poller.stop()
    print(f"\nreboot: {polls['polls']} route polls of blue (every 20 ms): {polls['red']} via red, "
          f"{polls['refused']} refused, {polls['tunnel']} via the tunnel; blue sent {blue['sent']}, "
          f"{lab.red_count('BLUE')} on red; boot steps that failed: {failed}")
    assert refused.seen is None and refused.error
    assert polls["red"] == 0 and polls["refused"] > 0 and polls["tunnel"] > 0
    assert lab.red_count("BLUE") == 0


def test_stop_restart_a_services_page_stop_and_an_upgrade_never_send_blue_to_red(lab, package):
    """Issue 9 defect 5: stop flushed, so `restart` sent blue out through red for 1.2 s."""
    install(lab, package)
    bind_blue(lab)
    lab.wireguard("start")
    wait_for_handshake(lab)
    assert lab.probe("BLUE").seen == VPN, lab.dump()
    settings = open(os.path.join(lab.root, "var/ipfire/zonevpn/settings"), "rb").read()
    lab.reset_counters()
    poller = RoutePoller(lab)
    lab.start_stream("BLUE", rate=100)
    seen = {}
    for step in ("stop", "start", "restart"):  # IPFire's real Services page, as a plain GET from any site
        result = services_page(lab, f"zonevpn!{step}!zonevpn")
        assert result.returncode == 0 and "</html>" in result.stdout, result.stderr
        seen[step] = lab.probe("BLUE").seen
        if step == "stop":
            status = lab.fw(*NOBODY, "/usr/local/bin/addonctrl", "zonevpn", "status", check=False).stdout
            assert "zonevpn is not running (held" in status, status
    install(lab, package)  # the same package again: pakfire's update path (update.sh)
    wait_for_handshake(lab)
    seen["upgrade"] = lab.probe("BLUE").seen
    blue, polls = lab.stop_stream("BLUE"), poller.stop()
    print(f"\nstop/start/restart/upgrade: {polls['polls']} route polls of blue: {polls['red']} via red, "
          f"{polls['refused']} refused, {polls['tunnel']} via wg3; blue sent {blue['sent']}, answered "
          f"{blue['answered']}, {lab.red_count('BLUE')} on red")
    assert seen == {"stop": None, "start": VPN, "restart": VPN, "upgrade": VPN}, seen
    assert polls["red"] == 0 and polls["refused"] > 0
    assert lab.red_count("BLUE") == 0
    assert open(os.path.join(lab.root, "var/ipfire/zonevpn/settings"), "rb").read() == settings
    running = lab.fw(*NOBODY, "/usr/local/bin/addonctrl", "zonevpn", "status", check=False).stdout
    assert running.startswith("zonevpn is running"), running


def test_the_first_hook_after_a_core_update_puts_the_wireguard_line_back(lab, package):
    """Issue 9 defect 8: only `check` and the boot start repaired it; a firewall reload or red.up now does."""
    install(lab, package)
    bind_blue(lab)
    pristine = open(os.path.join(SHARED, "src/initscripts/system/wireguard")).read()
    for event in (("/etc/rc.d/init.d/firewall", "reload"), ("/etc/rc.d/init.d/networking/red.up/50-zonevpn",)):
        lab.write_ipfire("etc/rc.d/init.d/wireguard", pristine, 0o754)  # the Core Update's copy
        lab.fw(*event, check=False)
        assert "zonevpn-hook" in open(os.path.join(lab.root, "etc/rc.d/init.d/wireguard")).read(), event
    lab.wireguard("start")  # its hook now runs zonevpn again
    wait_for_handshake(lab)
    assert lab.probe("BLUE").seen == VPN, lab.dump()
