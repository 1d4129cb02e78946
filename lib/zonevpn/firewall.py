"""Firewall back-end: the only module that speaks iptables. Reads with `iptables-save`, writes every change
as one `iptables-restore --noflush` transaction (each table is committed whole by the kernel, so no reader
ever sees half of a change, and `-w` takes the xtables lock IPFire's own scripts take).

python-iptables was measured and not used on this path: importing it costs 75-185 ms, its Rule equality is
False for two identical SNAT rules, and reading some targets' parameters raises (pyroute2 0.9.7 / iptc 1.2.0).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable

from zonevpn.errors import ApplyError
from zonevpn.state import COMMENT, Firewall, FwRule, Jump

TABLES = ("filter", "nat", "mangle")
COMMANDS = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}
_OURS = f"--comment {COMMENT} "


class Live:
    """What iptables-save shows: for each (table, chain) the rule specs in order."""

    def __init__(self) -> None:
        self.chains: dict[tuple[str, str], list[str]] = {}

    def rules(self, table: str, chain: str) -> list[str]:
        return self.chains.get((table, chain), [])

    def has(self, table: str, chain: str) -> bool:
        return (table, chain) in self.chains


def read(family: int = 4) -> Live:
    command = COMMANDS[family][0]
    try:
        out = subprocess.run([command], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise ApplyError(f"cannot read the firewall with {command}: {err}") from None
    return parse_save(out)


def parse_save(text: str) -> Live:
    live, table = Live(), ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            live.chains.setdefault((table, line[1:].split()[0]), [])
        elif line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            live.chains.setdefault((table, chain), []).append(spec)
    return live


def changes(want: Firewall, live: Live, own_chains: Iterable[tuple[str, str]],
            jumps: Iterable[Jump]) -> list[tuple[str, FwRule]]:
    """The difference as (verb, rule) pairs in the order they must run; verbs: -N -F -X -A -D -I<n>.
    `jumps` are all the jumps we may own, wanted or not (a stale one must go before its chain)."""
    out: list[tuple[str, FwRule]] = []
    wanted = {(t, c): list(specs) for t, c, specs in want.chains}
    for table, chain in own_chains:
        if (table, chain) not in wanted:
            continue
        if not live.has(table, chain) or live.rules(table, chain) != wanted[(table, chain)]:
            out.append(("-F" if live.has(table, chain) else "-N", FwRule(table, chain, "")))
            out += [("-A", FwRule(table, chain, spec)) for spec in wanted[(table, chain)]]
    out += _wgblock(want.wgblock, live)
    working: dict[tuple[str, str], list[str]] = {}  # chains as they will be after the steps so far
    for jump in jumps:
        if jump in want.jumps or _ours_in(live, jump):
            rules = working.setdefault((jump.table, jump.chain), list(live.rules(jump.table, jump.chain)))
            out += _jump(jump, rules, present=jump in want.jumps)
    for table, chain in own_chains:  # chains last: a jump into them must be gone first
        if (table, chain) not in wanted and live.has(table, chain):
            out += [("-F", FwRule(table, chain, "")), ("-X", FwRule(table, chain, ""))]
    return out


def _wgblock(want: tuple[str, ...], live: Live) -> list[tuple[str, FwRule]]:
    if not live.has("filter", "WGBLOCK"):
        return []  # IPFire's firewall is not up (yet): the engine warns; routing must still be held
    current = live.rules("filter", "WGBLOCK")
    ours = [spec for spec in current if _OURS in spec + " "]
    if ours == list(want) and current[: len(want)] == list(want):
        return []
    out = [("-D", FwRule("filter", "WGBLOCK", spec)) for spec in ours]
    out += [(f"-I{i}", FwRule("filter", "WGBLOCK", spec)) for i, spec in enumerate(want, start=1)]
    return out


def _ours_in(live: Live, jump: Jump) -> bool:
    return jump.spec in live.rules(jump.table, jump.chain)


def _jump(jump: Jump, rules: list[str], present: bool) -> list[tuple[str, FwRule]]:
    """Steps that put our one jump where it belongs in `rules` (updated in place to match)."""
    if present and rules.count(jump.spec) == 1 and _in_place(jump, rules):
        return []
    others = [spec for spec in rules if spec != jump.spec]
    out = [("-D", FwRule(jump.table, jump.chain, jump.spec))] * (len(rules) - len(others))
    rules[:] = others
    if present:
        position = _anchor(jump, others)
        rules.insert(position, jump.spec)
        out.append((f"-I{position + 1}", FwRule(jump.table, jump.chain, jump.spec)))
    return out


def _anchor(jump: Jump, rules: list[str]) -> int:
    """0-based index of the first IPFire rule jumping to one of `jump.before` (tried in order);
    without one: the end of the chain, or its start when `before` is empty."""
    for target in jump.before:
        for index, spec in enumerate(rules):
            if spec.endswith(f"-j {target}") and _OURS not in spec + " ":
                return index
    return len(rules) if jump.before else 0


def _in_place(jump: Jump, rules: list[str]) -> bool:
    """Only our own jumps may stand between ours and its anchor (they share anchors in small setups)."""
    here = rules.index(jump.spec)
    others = rules[:here] + rules[here + 1:]
    anchor = _anchor(jump, others)
    between = others[here:anchor] if here <= anchor else others[anchor:here]
    return all(_OURS in spec + " " for spec in between)


def script(steps: list[tuple[str, FwRule]]) -> str:
    """The iptables-restore input for `steps`, grouped by table, in the order the steps came."""
    lines: list[str] = []
    for table in TABLES:
        body = [_line(verb, rule) for verb, rule in steps if rule.table == table]
        if body:
            lines += [f"*{table}", *body, "COMMIT"]
    return "\n".join(lines) + "\n"


def _line(verb: str, rule: FwRule) -> str:
    if verb == "-N":
        return f":{rule.chain} - [0:0]"
    if verb in ("-F", "-X"):
        return f"{verb} {rule.chain}"
    if verb.startswith("-I"):
        return f"-I {rule.chain} {verb[2:]} {rule.spec}"
    return f"{verb} {rule.chain} {rule.spec}"


def describe(verb: str, rule: FwRule) -> str:
    if verb.startswith("-I"):
        return rule.describe(f"-I {verb[2:]}").replace(f"-I {verb[2:]} {rule.chain}",
                                                      f"-I {rule.chain} {verb[2:]}")
    return rule.describe(verb).rstrip()


def apply(steps: list[tuple[str, FwRule]], family: int = 4) -> None:
    if not steps:
        return
    text, command = script(steps), COMMANDS[family][1]
    try:
        subprocess.run([command, "-w", "5", "--noflush"], input=text, capture_output=True,
                       text=True, check=True)
    except subprocess.CalledProcessError as err:
        raise ApplyError(f"{command} refused the change (nothing was applied): "
                         f"{err.stderr.strip()}\n{text}") from None
    except OSError as err:
        raise ApplyError(f"cannot run {command}: {err}") from None
