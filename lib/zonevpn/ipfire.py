"""Readers for the files IPFire owns. zonevpn never writes them."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from zonevpn.errors import InputError
from zonevpn.model import ZONES, Peer, Red, Zone
from zonevpn.paths import Paths
from zonevpn.readhash import keyed_rows, parse_lenient, read_text

# CONFIG_TYPE -> zones beside green (and red): 0/1 green+red, 2 +orange, 3 +blue, 4 all.
_CONFIG_TYPE_ZONES = {"0": {"GREEN"}, "1": {"GREEN"}, "2": {"GREEN", "ORANGE"},
                      "3": {"GREEN", "BLUE"}, "4": {"GREEN", "BLUE", "ORANGE"}}

PEER_COLUMNS = ("id", "enabled", "type", "name", "pubkey", "privkey", "port", "endpoint_addr",
                "endpoint_port", "remote_subnets", "remarks", "local_subnets", "psk", "keepalive",
                "local_address")


def read_zones(paths: Paths) -> tuple[Zone, ...]:
    """The zones that exist on this box, from ethernet/settings, in GREEN, BLUE, ORANGE order."""
    path = paths.ethernet_settings
    values = parse_lenient(read_text(path))
    config_type = values.get("CONFIG_TYPE", ("", 0))[0]
    allowed = _CONFIG_TYPE_ZONES.get(config_type, set(ZONES))
    zones = []
    for name in ZONES:
        device = values.get(f"{name}_DEV", ("", 0))[0]
        if name not in allowed or not device:
            continue
        zones.append(_zone(path, values, name, device))
    return tuple(zones)


def _zone(path: str, values: dict[str, tuple[str, int]], name: str, device: str) -> Zone:
    def field(key: str) -> tuple[str, int | None]:
        if key not in values or not values[key][0]:
            raise InputError(path, f"zone {name} has {name}_DEV but no value", field=key)
        return values[key][0], values[key][1]

    address, line = field(f"{name}_ADDRESS")
    try:
        ip = IPv4Address(address)
    except ValueError:
        raise InputError(path, f"not an IPv4 address: {address!r}", line, f"{name}_ADDRESS") from None
    netaddress, line = field(f"{name}_NETADDRESS")
    netmask, mask_line = field(f"{name}_NETMASK")
    try:
        network = IPv4Network(f"{netaddress}/{netmask}")
    except ValueError:
        raise InputError(path, f"not a network: {netaddress}/{netmask}", line,
                         f"{name}_NETADDRESS/{name}_NETMASK") from None
    return Zone(name, device, ip, network)


def read_red(paths: Paths) -> Red:
    try:
        device = read_text(paths.red_iface).strip()
    except InputError:
        device = ""
    if not device:  # red is down or not configured yet (at boot): IPFire's default device
        device = "red0"
    gateway = None
    try:
        gateway = IPv4Address(read_text(paths.red_gateway).strip())
    except (InputError, ValueError):
        pass  # only used for status output; a box without a red gateway yet is normal at boot
    return Red(device, gateway)


def read_wg_settings(paths: Paths) -> dict[str, str]:
    return {key: value for key, (value, _) in parse_lenient(read_text(paths.wg_settings)).items()}


def read_client_pool(path: str, settings: dict[str, str]) -> IPv4Network | None:
    pool = settings.get("CLIENT_POOL", "")
    if not pool:
        return None
    try:
        return IPv4Network(pool, strict=False)
    except ValueError:
        raise InputError(path, f"not a network: {pool!r}", field="CLIENT_POOL") from None


def read_peers(paths: Paths) -> tuple[Peer, ...]:
    path = paths.wg_peers
    peers = keyed_rows(path, read_text(path), parse_peer_row, lambda p: p.id, "id")
    return tuple(peers[key] for key in sorted(peers))


def parse_peer_row(path: str, number: int, raw: str) -> Peer:
    """One CSV row. Trailing empty fields may be missing (Perl's split drops them): pad, never count."""
    cells = raw.split(",")
    if len(cells) > len(PEER_COLUMNS):
        raise InputError(path, f"{len(cells)} fields, at most {len(PEER_COLUMNS)} expected", number)
    row = dict(zip(PEER_COLUMNS, cells + [""] * (len(PEER_COLUMNS) - len(cells)), strict=True))

    def bad(column: str, why: str) -> InputError:
        return InputError(path, f"{why}: {row[column][:60]!r}", number, column)

    if not row["id"].isdigit():
        raise bad("id", "not a peer number")
    if row["enabled"] not in ("on", "off"):
        raise bad("enabled", "must be on or off")
    if row["type"] not in ("net", "host"):
        raise bad("type", "must be net or host")
    remote = _subnets(row, "remote_subnets", bad) if row["type"] == "net" else ()
    local = _subnets(row, "local_subnets", bad) if row["type"] == "net" else ()
    local_address = None
    if row["type"] == "net" and row["local_address"]:
        try:
            local_address = IPv4Interface(row["local_address"])
        except ValueError:
            raise bad("local_address", "not an IPv4 address") from None
    return Peer(int(row["id"]), row["enabled"] == "on", row["type"], row["name"], remote, local,
                local_address, number)


def _subnets(row: dict[str, str], column: str, bad) -> tuple[IPv4Network, ...]:  # type: ignore[no-untyped-def]
    nets = []
    for text in filter(None, row[column].split("|")):
        try:
            nets.append(IPv4Network(text, strict=False))
        except ValueError:
            raise bad(column, f"not an IPv4 network ({text!r})") from None
    return tuple(nets)
