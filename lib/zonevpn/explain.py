"""`zonevpn explain SRC [DST]`: what the kernel does with that flow now, read from the live kernel.

The kernel's own answer (`ip route get DST from SRC iif DEV [mark] [ipproto dport]`) says where the flow
goes; a replay of the live rules and routes (fib.py) names the rule and table that sent it there, and a
replay of the firewall as iptables-save shows it (fwmatch.py) gives zonevpn's chains' verdict and the
source address it leaves with. The settings only put names on what the kernel does: "wg3 (nordvpn),
binding BLUE". Nothing is changed and no packet is sent.
"""

from __future__ import annotations

import json
import subprocess
import time
from ipaddress import IPv4Address
from typing import Any

from zonevpn import fib, firewall, fwmatch
from zonevpn.errors import ApplyError, InputError
from zonevpn.model import Config, Zone
from zonevpn.paths import Paths
from zonevpn.plan import DNS_CHAIN, FILTER_CHAIN, KILL_CHAIN, Link
from zonevpn.state import INBOUND_MARK, PROTO

DEFAULT_DST = "1.1.1.1"  # any internet address: nothing is sent to it, only the route to it is asked
WHERE = "zonevpn explain"
_ERRORS = {"Permission denied": "prohibit", "Network is unreachable": "unreachable",
           "No route to host": "unreachable", "Invalid argument": "blackhole",
           "Invalid cross-device link": "reverse-path filter"}


def explain(paths: Paths, src: str, dst: str = DEFAULT_DST, proto: str | None = None, port: int | None = None,
            reply: bool = False) -> dict[str, Any]:
    from zonevpn.config import load

    src, dst = _address(src, "SRC"), _address(dst, "DST")
    if port is not None and not (proto and 1 <= port <= 65535):
        raise InputError(WHERE, f"{port}: a port is 1-65535 and needs --proto tcp|udp", field="--port")
    config = load(paths)
    rules, routes, links = _kernel()
    zone = _source(config, src, links)
    live = firewall.read(4)
    notes: list[str] = []
    dst = _dns_redirect(live, zone, src, dst, proto, port, notes)
    flow = fib.Flow(src, dst, zone.device if zone else None, INBOUND_MARK if reply else 0, proto, port)
    decision = fib.decide(flow, rules, routes)
    kernel = route_get(flow)
    out = {"flow": {"src": src, "dst": dst, "proto": proto, "port": port, "reply": reply,
                    "zone": zone.name if zone else None, "iif": flow.iif},
           "rule": fib.describe_rule(decision.rule) if decision.rule else None,
           "table": fib.table_name(decision.table) if decision.table else None,
           "route": fib.describe_route(decision.route) if decision.route else None,
           "kernel": kernel, "firewall": {}, "notes": notes}
    _check_replay(decision, kernel, notes)
    _verdict(paths, config, zone, flow, decision, kernel, live, links, out)
    out["summary"] = f"{src} → {dst}{_port_text(proto, port)}: {out['says']}"
    return out


def _address(text: str, what: str) -> str:
    try:
        return str(IPv4Address(text))
    except ValueError:
        raise InputError(WHERE, f"{text!r} is not an IPv4 address", field=what) from None


def _kernel() -> tuple[list[Any], list[Any], dict[str, Link]]:
    try:
        out = subprocess.run(["ip", "-4", "-json", "-N", "-batch", "-"], capture_output=True, text=True,
                             check=True, input="rule show\nroute show table all\naddr show\n").stdout
        rules, routes, addrs = (json.loads(line) for line in out.splitlines())
    except (OSError, subprocess.CalledProcessError, ValueError) as err:
        raise ApplyError(f"cannot read the kernel with `ip -4 -json -batch`: {err}") from None
    links = {m["ifname"]: Link("UP" in m.get("flags", []), frozenset(
        a["local"] for a in m.get("addr_info", []) if a.get("family") == "inet")) for m in addrs}
    return rules, routes, links


def _source(config: Config, src: str, links: dict[str, Link]) -> Zone | None:
    """The zone whose client sends it, or None for the firewall's own address; else bad input."""
    if any(src in link.addresses for link in links.values()):
        return None
    zone = next((z for z in config.zones if IPv4Address(src) in z.network), None)
    if zone is None:
        known = ", ".join(f"{z.name} {z.network}" for z in config.zones)
        raise InputError(WHERE, f"{src} is in no zone ({known}) and is none of the firewall's own "
                         "addresses; nothing was changed", field="SRC")
    return zone


def _dns_redirect(live: firewall.Live, zone: Zone | None, src: str, dst: str, proto: str | None,
                  port: int | None, notes: list[str]) -> str:
    if zone is None or port != 53:
        return dst
    packet = fwmatch.Packet(src, dst, zone.device, None, proto, port)
    verdict = fwmatch.walk(live, "nat", DNS_CHAIN, packet)
    if verdict.target == "DNAT":
        notes.append(f"DNS redirected to the tunnel's resolver {verdict.argument} ({DNS_CHAIN}: {verdict.spec})")
        return verdict.argument.split(":")[0]
    return dst


def route_get(flow: fib.Flow) -> dict[str, Any]:
    """The kernel's answer: {command, dev, ...} or {command, error}."""
    cmd = ["ip", "-4", "-json", "route", "get", flow.dst, "from", flow.src]
    cmd += ["iif", flow.iif] if flow.iif else []
    cmd += ["mark", hex(flow.mark)] if flow.mark else []
    cmd += ["ipproto", flow.proto] if flow.proto else []
    cmd += ["dport", str(flow.dport)] if flow.dport else []
    run = subprocess.run(cmd, capture_output=True, text=True)
    answer: dict[str, Any] = {"command": " ".join(cmd[:2] + cmd[3:])}
    if run.returncode != 0:
        text = run.stderr.strip().removeprefix("RTNETLINK answers: ")
        answer["error"], answer["means"] = text, _ERRORS.get(text, "refused")
        return answer
    route = json.loads(run.stdout)[0]
    answer.update({k: route[k] for k in ("type", "dev", "gateway", "prefsrc") if k in route})
    return answer


def _check_replay(decision: fib.Decision, kernel: dict[str, Any], notes: list[str]) -> None:
    refused = "error" in kernel
    replay_dev = (decision.route or {}).get("dev")
    agrees = refused == (decision.kind in ("refused", "none")) and (refused or decision.kind == "local"
                                                                    or replay_dev == kernel.get("dev"))
    kernel["agrees_with_replay"] = agrees
    if not agrees:
        notes.append("the replay of the rules disagrees with the kernel: the kernel's answer stands; "
                     "the rule shown may not be the one that decided")
    if decision.skipped:
        notes.append("rules not replayed (selectors zonevpn does not read): " + "; ".join(decision.skipped))


def _port_text(proto: str | None, port: int | None) -> str:
    return f" {proto}/{port}" if proto and port else f" {proto}" if proto else ""


def _verdict(paths: Paths, config: Config, zone: Zone | None, flow: fib.Flow, decision: fib.Decision,
             kernel: dict[str, Any], live: firewall.Live, links: dict[str, Link], out: dict[str, Any]) -> None:
    """Fills out verdict (tunnel | direct | local | refused | dropped), says, interface, leaves_as."""
    out.update(verdict="refused", says="", interface=None, leaves_as=None, binding=None, killswitch=None)
    if kernel.get("means") == "reverse-path filter":
        out.update(verdict="dropped", says=f"dropped: strict reverse-path filtering does not route {flow.src} "
                   f"back through {flow.iif}")
        return
    if "error" in kernel:
        _refused(paths, config, zone, decision, kernel, links, out)
        return
    dev = kernel.get("dev", "")
    if kernel.get("type") == "local":
        out.update(verdict="local", says="local: delivered to the firewall itself", interface="lo")
        return
    packet = fwmatch.Packet(flow.src, flow.dst, flow.iif, dev, flow.proto, flow.dport,
                            "ESTABLISHED" if flow.mark else "NEW")
    if zone and not flow.mark and _firewall_refuses(live, packet, out):
        _refused(paths, config, zone, decision, kernel, links, out, by_firewall=True)
        return
    out["interface"] = dev
    out["leaves_as"] = _leaves_as(live, packet, kernel, links, out)
    exit_ = next((e for e in config.exits if zone and e.zone.name == zone.name), None)
    peer = config.peer(int(dev[2:])) if dev.startswith("wg") and dev[2:].isdigit() else None
    if peer and peer.kind == "net":
        binding = ""
        if exit_ and peer in exit_.candidates:
            out["binding"] = exit_.zone.name
            binding = f" (binding {exit_.zone.name}" + (
                f", fallback for {exit_.peer.interface}: {_why(paths, config, zone, links, dev)}"
                if peer != exit_.peer else "") + ")"
        out.update(verdict="tunnel", says=f"leaves via {dev} ({peer.name}) as {out['leaves_as']}{binding}")
    elif dev == config.red.device:
        extra = ""
        if flow.mark:
            extra = f" (a reply of a connection that came in through red: mark {INBOUND_MARK:#x}, rule 1000)"
        elif exit_:
            extra = f" (binding {exit_.zone.name} with the kill switch off)"
        out.update(verdict="direct", says=f"direct via {dev} as {out['leaves_as']}{extra}")
    else:
        via = f" via {kernel['gateway']}" if "gateway" in kernel else ""
        out.update(verdict="local", says=f"stays local: via {dev}{via}")


def _firewall_refuses(live: firewall.Live, packet: fwmatch.Packet, out: dict[str, Any]) -> bool:
    """zonevpn's FORWARD chains: the kill switch (before the admin's rules), the zone's way into its tunnel."""
    fw = out["firewall"]
    if fwmatch.jumps_to(live, "filter", "FORWARD", KILL_CHAIN):
        kill = fwmatch.walk(live, "filter", KILL_CHAIN, packet)
        if kill.target in ("REJECT", "DROP"):
            fw["filter"] = f"{kill.chain}: {kill.spec}"
            return True
    accept = fwmatch.walk(live, "filter", FILTER_CHAIN, packet) \
        if fwmatch.jumps_to(live, "filter", "FORWARD", FILTER_CHAIN) else None
    fw["filter"] = f"{accept.chain}: {accept.spec}" if accept and accept.target else \
        "no rule of zonevpn's: IPFire's own rules decide (POLICYFWD)"
    return False


def _leaves_as(live: firewall.Live, packet: fwmatch.Packet, kernel: dict[str, Any], links: dict[str, Link],
               out: dict[str, Any]) -> str:
    if packet.state != "NEW":  # a reply: conntrack undoes the port forward's DNAT
        forwards = fwmatch.forwards_to(live, packet.src)
        out["firewall"]["port_forward"] = forwards
        return _primary(links, packet.oif or "") if forwards else packet.src
    nat = fwmatch.walk(live, "nat", "POSTROUTING", packet)
    out["firewall"]["nat"] = f"{nat.chain}: {nat.spec}" if nat.target else "no source NAT"
    if nat.unsure:
        out["notes"].append("NAT rules not replayed: " + "; ".join(nat.unsure))
    if nat.target == "SNAT":
        return nat.argument.split(":")[0]
    if nat.target == "MASQUERADE":
        return kernel.get("prefsrc") or _primary(links, packet.oif or "")
    return packet.src


def _primary(links: dict[str, Link], dev: str) -> str:
    link = links.get(dev)
    return min(link.addresses, key=lambda a: IPv4Address(a)) if link and link.addresses else "?"


def _refused(paths: Paths, config: Config, zone: Zone | None, decision: fib.Decision, kernel: dict[str, Any],
             links: dict[str, Link], out: dict[str, Any], by_firewall: bool = False) -> None:
    ours = by_firewall or str((decision.rule or {}).get("protocol")) == str(PROTO) or \
        str((decision.route or {}).get("protocol")) == str(PROTO)
    exit_ = next((e for e in config.exits if zone and e.zone.name == zone.name), None)
    if not (ours and exit_ and zone):
        what = "by the firewall" if by_firewall else kernel.get("means", "refused")
        out["says"] = f"refused: {what} ({kernel.get('error') or out['firewall'].get('filter')})"
        return
    from zonevpn import killswitch

    why = _why(paths, config, zone, links, "refused")
    since = killswitch.view(paths).get(zone.name, {}).get("since")
    when = f"since {time.strftime('%H:%M:%S', time.localtime(since))}, " if since else ""
    where = " in the firewall" if by_firewall else ""
    out["killswitch"] = {"why": why, "since": since, "binding": zone.name}
    out["binding"] = zone.name
    out["says"] = f"refused: kill switch{where} — {why} ({when}binding {zone.name})"


def _why(paths: Paths, config: Config, zone: Zone | None, links: dict[str, Link], exit_now: str) -> str:
    from zonevpn import killswitch

    name = zone.name if zone else ""
    return killswitch.reasons(paths, config, links, {name: exit_now}).get(name, "")


def format_text(out: dict[str, Any]) -> str:
    lines = [out["summary"]]
    for label, key in (("rule", "rule"), ("table", "table"), ("route", "route")):
        if out.get(key):
            lines.append(f"  {label:<7} {out[key]}")
    kernel = out["kernel"]
    answer = kernel.get("error") or " ".join(f"{k} {kernel[k]}" for k in ("type", "dev", "gateway") if k in kernel)
    lines.append(f"  {'kernel':<7} {kernel['command']}: {answer}")
    for label, value in out["firewall"].items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"  {label.replace('_', ' '):<7} {item}")
    lines += [f"  note    {note}" for note in out["notes"]]
    return "\n".join(lines)
