"""Forget the zone's NATed connections after its exit changed, so no open flow keeps the old path.

A conntrack entry keeps its NAT binding for life: a flow masqueraded to red's address would go on into the
tunnel with red's address as source (or the reverse) until it times out. Only NATed entries are deleted —
the zone's flows to other zones and to the firewall are not NATed and keep running.
"""

from __future__ import annotations

from ipaddress import IPv4Network


def forget_nated(networks: list[IPv4Network]) -> int:
    if not networks:
        return 0
    from pyroute2 import Conntrack  # only paid when an exit really changed

    deleted = 0
    with Conntrack() as ct:
        stale = [entry for entry in ct.dump_entries() if _nated_from(entry, networks)]
        for entry in stale:
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
