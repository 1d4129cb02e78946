"""Which iptables rule one packet meets, replayed from `iptables-save` text (firewall.Live). No I/O.

Only what zonevpn's own chains and IPFire's NAT chains use is understood: -s -d -i -o -p, --dport/--sport
(also multiport), --ctstate, --tcp-flags, --mark, -m policy --pol none|ipsec, comments. A rule with any other
match is not replayed: it is reported as `unsure` and passed over, so a verdict never rests on a guess.
"""

from __future__ import annotations

import shlex
from ipaddress import IPv4Address, IPv4Network
from typing import NamedTuple

from zonevpn.firewall import Live

TERMINAL = {"ACCEPT", "DROP", "REJECT", "SNAT", "DNAT", "MASQUERADE", "REDIRECT"}
_SKIP_WITH_VALUE = {"-m", "--comment", "--dir", "--reject-with", "--to-source", "--to-destination",
                    "--to-ports", "--set-xmark", "--nfmask", "--ctmask", "--log-prefix", "--mode"}
_FLAGS = {"--clamp-mss-to-pmtu", "--restore-mark", "--random", "--persistent", "--fully-random"}


class Packet(NamedTuple):
    src: str
    dst: str
    iif: str | None  # None: sent by the firewall itself
    oif: str | None
    proto: str | None = None
    dport: int | None = None
    state: str = "NEW"
    mark: int = 0


class Verdict(NamedTuple):
    target: str | None  # ACCEPT, REJECT, SNAT, ... or None: no rule decided (the chain's end or policy)
    chain: str
    spec: str
    argument: str  # --to-source / --to-destination value, if any
    unsure: tuple[str, ...] = ()


def walk(live: Live, table: str, chain: str, packet: Packet, _depth: int = 0) -> Verdict:
    """The first terminal target the packet meets from `chain` on (jumps followed, RETURN honoured)."""
    unsure: list[str] = []
    for spec in live.rules(table, chain):
        matched = matches(spec, packet)
        if matched is None:
            unsure.append(f"{chain} {spec}")
            continue
        if not matched:
            continue
        target = _target(spec)
        if target in TERMINAL:
            return Verdict(target, chain, spec, _argument(spec), tuple(unsure))
        if target == "RETURN":
            break
        if live.has(table, target) and _depth < 8:
            inner = walk(live, table, target, packet, _depth + 1)
            unsure += inner.unsure
            if inner.target:
                return inner._replace(unsure=tuple(unsure))
    return Verdict(None, chain, "", "", tuple(unsure))


def matches(spec: str, packet: Packet) -> bool | None:
    """True/False, or None when the rule uses a match not replayed here."""
    tokens = shlex.split(spec)
    negate, i, result = False, 0, True
    while i < len(tokens):
        word = tokens[i]
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        if word == "!":
            negate, i = True, i + 1
            continue
        if word == "-j":
            break
        if word in _SKIP_WITH_VALUE:
            i += 2
            continue
        if word in _FLAGS:
            i += 1
            continue
        verdict = _one(word, value, tokens[i + 2] if i + 2 < len(tokens) else "", packet)
        if verdict is None:
            return None
        result = result and (verdict != negate)
        negate = False
        i += 3 if word == "--tcp-flags" else 2
    return result


def _one(word: str, value: str, extra: str, packet: Packet) -> bool | None:
    if word in ("-s", "-d"):
        address = packet.src if word == "-s" else packet.dst
        return IPv4Address(address) in IPv4Network(value, strict=False)
    if word in ("-i", "-o"):
        device = packet.iif if word == "-i" else packet.oif
        if not device:
            return False
        return device == value or (value.endswith("+") and device.startswith(value[:-1]))
    if word == "-p":
        return packet.proto == value
    if word in ("--dport", "--dports"):
        return packet.dport is not None and any(_in_range(packet.dport, part) for part in value.split(","))
    if word == "--ctstate":
        return packet.state in value.split(",")
    if word == "--mark":
        value_text, _, mask_text = value.partition("/")
        mask = int(mask_text or "0xffffffff", 16)
        return packet.mark & mask == int(value_text, 16) & mask
    if word == "--pol":
        return value == "none"  # zonevpn's flows are not IPsec
    if word == "--tcp-flags":
        return packet.proto == "tcp" and packet.state == "NEW"  # the SYN opening a connection
    return None


def _in_range(port: int, text: str) -> bool:
    low, _, high = text.partition(":")
    return int(low) <= port <= int(high or low)


def _target(spec: str) -> str:
    tokens = shlex.split(spec)
    return tokens[tokens.index("-j") + 1] if "-j" in tokens else ""


def _argument(spec: str) -> str:
    tokens = shlex.split(spec)
    for key in ("--to-source", "--to-destination", "--to-ports"):
        if key in tokens:
            return tokens[tokens.index(key) + 1]
    return ""


def jumps_to(live: Live, table: str, chain: str, target: str) -> bool:
    return any(_target(spec) == target for spec in live.rules(table, chain))


def forwards_to(live: Live, address: str) -> list[str]:
    """IPFire's (or the admin's) port forwards to `address`: nat DNAT rules pointing at it."""
    found = []
    for (table, chain), specs in live.chains.items():
        for spec in specs:
            if table == "nat" and _target(spec) == "DNAT" and _argument(spec).split(":")[0] == address:
                found.append(f"{chain} {spec}")
    return found
