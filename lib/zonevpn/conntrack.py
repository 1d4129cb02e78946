"""Forget the zone's NATed connections after its exit changed, so no open flow keeps the old path.

A conntrack entry keeps its NAT binding for life: a flow masqueraded to red's address would go on into the
tunnel with red's address as source (or the reverse) until it times out. Only NATed entries are deleted —
the zone's flows to other zones and to the firewall are not NATed and keep running.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network


def forget_nated(networks: list[IPv4Network]) -> int:
    if not networks:
        return 0
    from pyroute2 import Conntrack  # only paid when an exit really changed

    with Conntrack() as ct:
        return _delete(ct, [entry for entry in ct.dump_entries() if _nated_from(entry, networks)])


def _delete(ct, entries: list) -> int:  # type: ignore[no-untyped-def,type-arg]
    deleted = 0
    for entry in entries:
        try:
            ct.delete(entry)
            deleted += 1
        except Exception:  # noqa: BLE001 - the entry may have expired meanwhile: fine
            pass
    return deleted


def _nated_from(entry, networks: list[IPv4Network]) -> bool:  # type: ignore[no-untyped-def]
    try:
        source = IPv4Network(entry.tuple_orig.saddr)
    except (ValueError, TypeError):
        return False  # IPv6 or incomplete entries
    nated = entry.tuple_reply.daddr != entry.tuple_orig.saddr
    return nated and any(source.subnet_of(net) for net in networks)


Changed = Callable[[str, str, str, "int | None", int], bool]  # (src, dst, proto, dport, mark) -> way changed


def forget_nated_where(changed: Changed) -> int:
    """Exit policies: delete the NATed entries for which `changed` says their way out is not the old one."""
    from pyroute2 import Conntrack

    names = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp"}
    with Conntrack() as ct:
        stale = []
        for entry in list(ct.dump_entries()):  # deleting while the dump runs closes its loop
            orig = entry.tuple_orig
            try:
                IPv4Address(orig.saddr)
            except (ValueError, TypeError):
                continue  # IPv6 or incomplete entries
            if entry.tuple_reply.daddr == orig.saddr:
                continue  # not NATed: flows to other zones and to the firewall keep running
            if changed(orig.saddr, orig.daddr, names.get(orig.proto, str(orig.proto)),
                       getattr(orig, "dport", None), entry.mark or 0):
                stale.append(entry)
        return _delete(ct, stale)
