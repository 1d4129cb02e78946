"""Kernel objects as plain, comparable values: what the planner wants and what the back-ends read back.

Ownership markers (documented in README.md): rules and routes carry protocol PROTO; zone tables are
ZONE_TABLE_BASE+1..3 and tunnel-address tables TUNNEL_TABLE_BASE+<peer id>; rule preferences 1000-1099
(above IPsec's 128 so IPsec wins, below IPFire's `wg`/`static`/`main` rules at 32764+); iptables rules carry
the comment `zonevpn` or live in our own chains.

Exit policies (policy_plan.py) come before every zone binding, so their preferences lie below 1000 and
above IPsec's 128. The policy in slot i (its 0-based position in the policies file, disabled ones
included, so that enabling one renumbers nothing) owns

  pref 200+4i     its selectors: lookup main suppress_prefixlength 1   local destinations stay local
  pref 201+4i                    lookup static (200) ...               IPFire's static routes
  pref 202+4i                    lookup 2000+i | lookup main           its exit: tunnel table | red
  pref 203+4i                    prohibit | lookup main                kill switch | kill switch off
  table 2000+i   default dev wgN src <tunnel address>, behind it prohibit default (as the zone tables)

for i = 0..199 (prefs 200-999, tables 2000-2199), and pref 196 holds its copy of the inbound rule (1000).
A MAC cannot be an `ip rule` selector: mangle PREROUTING marks each MAC-selected device's packets with its
device id in MAC_MARK_MASK (and saves it in the connection's mark, so that replies carry it too), and the
rules select `fwmark`. Every packet that passes that chain also gets ALIVE_MARK: while IPFire's firewall
restart has flushed it, nothing carries the bit, and a `fwmark 0/ALIVE_MARK` rule refuses what a MAC
policy with a kill switch could otherwise let out through red.
"""

from __future__ import annotations

from typing import NamedTuple

PROTO = 122  # rtnetlink protocol id on every rule and route zonevpn creates
MAIN = 254
STATIC = 200  # IPFire's `static` table
WG = 201  # IPFire's `wg` table (endpoint host routes via red)
# IPFire's own `from all lookup static|wg` rules, where a stock box has them: static-routes (red.up) adds
# its rule first, the wireguard initscript (S50) second, each without a pref, so the kernel gives each the
# pref just below main's. Both scripts add theirs only if `ip rule | grep` finds none (see plan.base_rules).
IPFIRE_PREFS = {STATIC: 32765, WG: 32764}
ZONE_TABLE_BASE = 1000  # GREEN 1001, BLUE 1002, ORANGE 1003
TUNNEL_TABLE_BASE = 1100  # table 1100+<peer id>: the tunnel's own address
PREF_INBOUND = 1000  # replies of connections that came in through red use main
PREF_LOCAL_MAIN = 1010  # +zone index: local destinations (main, without its default routes)
PREF_LOCAL_STATIC = 1020  # +zone index: IPFire's static routes
PREF_ZONE = 1030  # +zone index: the zone's exit table
PREF_REFUSE = 1040  # +zone index: kill switch: nothing falls through to main
PREF_TUNNEL_SOURCE = 1050  # traffic sourced from a tunnel's own address
PREF_RANGE = range(1000, 1100)  # the zone bindings'
PREF_POLICY_INBOUND = 196  # exit policies (see above): replies of connections that came in through red
POLICY_PREF_BASE = 200  # + POLICY_PREF_STEP * slot + 0..3
POLICY_PREF_STEP = 4
POLICY_TABLE_BASE = 2000  # + slot
POLICY_SLOTS = 200
OWNED_PREFS = range(PREF_POLICY_INBOUND, PREF_RANGE.stop)  # every rule zonevpn may own
MAC_MARK_MASK = 0x001FF000  # device id (1..511) of a MAC-selected source; IPFire uses 0x0f000000 (NAT)
MAC_MARK_SHIFT = 12
ALIVE_MARK = 0x00200000  # set on every packet while zonevpn's mangle chain is in the firewall
REFUSE_METRIC = 4_000_000_000  # the kill-switch route sits behind the tunnel's default route (metric 0)
INBOUND_MARK = 0x00400000  # conntrack/packet mark bit for connections that came in through red
COMMENT = "zonevpn"


class Rule(NamedTuple):
    priority: int
    src: str | None = None  # "192.168.2.0/24"
    table: int = 0  # for action lookup
    action: str = "lookup"  # lookup | prohibit
    fwmark: int | None = None
    fwmask: int | None = None
    suppress_prefixlen: int | None = None
    proto: int = PROTO  # 0: one of IPFire's own rules (see IPFIRE_PREFS), which carry no protocol
    dst: str | None = None  # exit policies' selectors: "203.0.113.0/24"
    ipproto: str | None = None  # "tcp" | "udp"
    dport: tuple[int, int] | None = None  # first, last

    def __lt__(self, other: tuple) -> bool:  # type: ignore[type-arg, override]
        """Sortable although fields may be None in one rule and set in another."""
        return _sort_key(self) < _sort_key(other)

    def describe(self) -> str:
        parts = [f"pref {self.priority}"]
        if self.src:
            parts.append(f"from {self.src}")
        if self.dst:
            parts.append(f"to {self.dst}")
        if self.fwmark is not None:
            parts.append(f"fwmark {self.fwmark:#x}/{self.fwmask or 0xFFFFFFFF:#x}")
        if self.ipproto:
            parts.append(f"ipproto {self.ipproto}")
        if self.dport:
            first, last = self.dport
            parts.append(f"dport {first}" if first == last else f"dport {first}-{last}")
        parts.append(f"lookup {_table_name(self.table)}" if self.action == "lookup" else self.action)
        if self.suppress_prefixlen is not None:
            parts.append(f"suppress_prefixlength {self.suppress_prefixlen}")
        if self.proto == PROTO:
            parts.append(f"proto {PROTO}")
        return " ".join(parts)


class Route(NamedTuple):
    table: int
    dst: str  # "0.0.0.0/0", "0.0.0.0/1"
    kind: str = "unicast"  # unicast | prohibit
    dev: str | None = None
    src: str | None = None
    metric: int = 0
    proto: int = PROTO

    def describe(self) -> str:
        dst = "default" if self.dst == "0.0.0.0/0" else self.dst
        parts = [dst] if self.kind == "unicast" else [self.kind, dst]
        if self.dev:
            parts.append(f"dev {self.dev}")
        if self.src:
            parts.append(f"src {self.src}")
        if self.metric:
            parts.append(f"metric {self.metric}")
        parts.append(f"table {_table_name(self.table)}")
        parts.append(f"proto {PROTO}" if self.proto == PROTO else "proto boot")
        return " ".join(parts)


class FwRule(NamedTuple):
    """One iptables rule in iptables-save's canonical text, e.g. `-d 10.5.0.2/32 -i wg3 ... -j RETURN`."""

    table: str  # filter | nat | mangle
    chain: str
    spec: str

    def describe(self, verb: str = "-A") -> str:
        table = "" if self.table == "filter" else f"-t {self.table} "
        return f"iptables {table}{verb} {self.chain} {self.spec}"


class Jump(NamedTuple):
    """A jump from a chain IPFire owns into one of ours: just before the first IPFire rule jumping to
    one of `before` (tried in order; none found: last), or first in the chain when `before` is empty."""

    table: str
    chain: str
    target: str
    before: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"-m comment --comment {COMMENT} -j {self.target}"


class Firewall(NamedTuple):
    """Our own chains (whole contents, in order), our rules in shared chains, and the jumps into ours."""

    chains: tuple[tuple[str, str, tuple[str, ...]], ...]  # (table, chain, specs)
    wgblock: tuple[str, ...]  # specs of our RETURN rules at the top of WGBLOCK, in order
    jumps: tuple[Jump, ...]


class Desired(NamedTuple):
    rules: frozenset[Rule]
    routes: frozenset[Route]
    main_absent: frozenset[Route]  # routes of others to take out of main (the exit tunnels' /1 routes)
    firewall: Firewall
    firewall6: Firewall  # ip6tables
    src_valid_mark: bool  # strict rp_filter must see the inbound mark (see plan.inbound)
    exits: tuple[tuple[str, str], ...]  # (zone, "wg3" | "refused" | "red") for status and conntrack
    base_rules: frozenset[Rule] = frozenset()  # IPFire's own rules that must exist while zonevpn is active
    policy_exits: tuple[tuple[int, str], ...] = ()  # (policy number, wgN | refused | red | blocked)


def _sort_key(row: tuple) -> tuple:  # type: ignore[type-arg]
    return tuple((value is not None, value if value is not None else 0) for value in row)


def _table_name(table: int) -> str:
    # numbers, not names: rt_tables differs between boxes and zonevpn never writes it
    return "main" if table == MAIN else str(table)
