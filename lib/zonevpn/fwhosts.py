"""IPFire's host objects (Firewall -> Firewall Groups, fwhosts.cgi), read only, resolved on every run.

Three files in General::writehasharray's format, one object per line, `key,field0,field1,...`, in random
key order; IPFire's reader keeps only lines whose key is a number and splits the rest on commas:

  customhosts     key,name,type,address,remark[,...]   type ip: `192.168.1.50/255.255.255.255` (or a
                                                         bare address); type mac: `aa:bb:cc:dd:ee:ff`
  customnetworks  key,name,netaddress,netmask,remark   netmask dotted (`255.255.255.0`) or a prefix length
  customgroups    key,group,remark,member,type          one line per member; type `Custom Host`,
                                                         `Custom Network`, `Standard Network` (GREEN,
                                                         BLUE, ORANGE, ...) or another kind of IPFire's;
                                                         member `none` marks a group saved empty

A missing file is a box without such objects. A bad value is an error only where a policy uses it, naming
IPFire's file, line and field, so that an admin's unrelated mistake never stops zonevpn.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import NamedTuple

from zonevpn.errors import InputError
from zonevpn.paths import Paths
from zonevpn.readhash import lines, read_text

MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}\Z")  # General::validmac
Member = IPv4Network | str  # a network, or a MAC address in iptables-save's spelling


class Row(NamedTuple):
    cells: tuple[str, ...]  # the fields after the key
    path: str
    line: int

    def get(self, index: int) -> str:
        return self.cells[index] if index < len(self.cells) else ""


class HostObjects(NamedTuple):
    hosts: dict[str, Row]  # name -> row
    networks: dict[str, Row]
    groups: dict[str, tuple[Row, ...]]  # group name -> member rows, in key order

    def names(self) -> dict[str, list[str]]:
        """For the page's pickers: every object by kind, sorted."""
        return {"host": sorted(self.hosts), "network": sorted(self.networks), "group": sorted(self.groups)}


def read_fwhosts(paths: Paths) -> HostObjects:
    hosts = {row.get(0): row for row in _rows(paths.fwhosts_hosts)}
    networks = {row.get(0): row for row in _rows(paths.fwhosts_networks)}
    groups: dict[str, list[Row]] = {}
    for row in _rows(paths.fwhosts_groups):
        groups.setdefault(row.get(0), []).append(row)
    return HostObjects(hosts, networks, {name: tuple(rows) for name, rows in groups.items()})


def _rows(path: str) -> list[Row]:
    try:
        text = read_text(path)
    except InputError as err:
        if err.message == "file is missing":
            return []
        raise
    keyed = []
    for number, raw in enumerate(lines(text), start=1):
        key, _, rest = raw.partition(",")
        if key.isdigit():  # as General::readhasharray: other lines are not objects
            keyed.append((int(key), Row(tuple(rest.split(",")), path, number)))
    return [row for _, row in sorted(keyed, key=lambda item: item[0])]


def host(objects: HostObjects, name: str) -> Member:
    row = objects.hosts[name]
    kind, address = row.get(1), row.get(2)
    if kind == "mac" or MAC.match(address):
        if not MAC.match(address):
            raise InputError(row.path, f"host {name!r}: not a MAC address: {address[:40]!r}", row.line,
                             "address")
        return address.lower()
    try:
        return IPv4Network(address, strict=False)  # `ip/255.255.255.255`, `ip/32` or a bare address
    except ValueError:
        raise InputError(row.path, f"host {name!r}: not an IPv4 address: {address[:40]!r}", row.line,
                         "address") from None


def network(objects: HostObjects, name: str) -> IPv4Network:
    row = objects.networks[name]
    text = f"{row.get(1)}/{row.get(2)}"
    try:
        return IPv4Network(text, strict=False)
    except ValueError:
        raise InputError(row.path, f"network {name!r}: not a network: {text[:40]!r}", row.line,
                         "netaddress/netmask") from None


def group(objects: HostObjects, name: str, zones: dict[str, IPv4Network]) -> tuple[Member, ...]:
    """A group's members, resolved: hosts, networks and the zones (`Standard Network`) it names."""
    members: list[Member] = []
    for row in objects.groups[name]:
        member, kind = row.get(2), row.get(3)
        if member == "none":
            continue
        if kind == "Custom Host" and member in objects.hosts:
            members.append(host(objects, member))
        elif kind == "Custom Network" and member in objects.networks:
            members.append(network(objects, member))
        elif kind == "Standard Network" and member in zones:
            members.append(zones[member])
        elif kind in ("Custom Host", "Custom Network"):
            raise InputError(row.path, f"group {name!r}: member {member!r} is not in "
                             f"{'customhosts' if kind == 'Custom Host' else 'customnetworks'}",
                             row.line, "member")
        else:
            raise InputError(row.path, f"group {name!r}: member {member!r} ({kind}) is not a host, a "
                             "network or a zone (GREEN, BLUE, ORANGE) zonevpn can send through a tunnel",
                             row.line, "member")
    return tuple(members)
