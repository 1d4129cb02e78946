"""zonevpn's own settings file (/var/ipfire/zonevpn/settings), in IPFire's readhash format.

  ENABLED=on|off
  <ZONE>_TUNNEL=<peer id>          empty = the zone leaves directly through red
  <ZONE>_KILLSWITCH=on|off         default on
  <ZONE>_DNS=on|off                default off: the zone's DNS goes to the tunnel's resolver
  <ZONE>_FALLBACK=<id>[,<id>...]   tunnels to use, in order, while the first is missing or stale
  TUNNEL_<id>_DNS=<address>        the resolver reached through tunnel <id> (the provider's)
  STALE_AFTER=<seconds>            default 180: latest handshake older than this = stale
  TUNNEL_<id>_PROBE=<address>      what the watcher pings through tunnel <id> (default: its resolver)
  PROBE_URL=<url>                  the "what is my address" service `zonevpn probe` asks through each exit
                                   tunnel, only when asked: http://, https://, tcp://host:port, udp://host:port
"""

from __future__ import annotations

import errno
import os
import re
import stat
from ipaddress import IPv4Address

from zonevpn.errors import InputError
from zonevpn.model import ZONES, Binding, Settings
from zonevpn.paths import Paths
from zonevpn.readhash import format_hash, parse_strict, read_text, write_keeping_owner

ZONE_KEYS = ("TUNNEL", "KILLSWITCH", "DNS", "FALLBACK")
KNOWN_KEYS = ("ENABLED", "STALE_AFTER", "PROBE_URL") + tuple(f"{z}_{k}" for z in ZONES for k in ZONE_KEYS)
_RESOLVER_KEY = re.compile(r"TUNNEL_([0-9]+)_DNS\Z")
_PROBE_KEY = re.compile(r"TUNNEL_([0-9]+)_PROBE\Z")
# scheme://host[:port][/path]; readhash's characters keep `?` and `&` out anyway
_PROBE_URL = re.compile(r"(https?|tcp|udp)://([A-Za-z0-9.-]+)(?::([0-9]{1,5}))?(/[A-Za-z0-9/._%:,=@+-]*)?\Z")
Values = dict[str, tuple[str, int]]


def read_settings(paths: Paths) -> Settings:
    path = paths.settings
    values = parse_strict(_read_no_link(path), path)
    for key, (_, line) in values.items():
        if key not in KNOWN_KEYS and not _RESOLVER_KEY.match(key) and not _PROBE_KEY.match(key):
            zone = key.split("_", 1)[0]
            why = f"unknown zone {zone!r}" if key.endswith(ZONE_KEYS) and zone not in ZONES \
                else "unknown key"
            raise InputError(path, f"{why} (known: {', '.join(KNOWN_KEYS)}, TUNNEL_<id>_DNS, "
                             f"TUNNEL_<id>_PROBE)", line, key)
    bindings = tuple(_binding(path, values, zone) for zone in ZONES)
    return Settings(_on_off(path, values, "ENABLED", default=False), bindings,
                    _resolvers(path, values), _seconds(path, values, "STALE_AFTER", 180),
                    _resolvers(path, values, _PROBE_KEY), _probe_url(path, values))


def _probe_url(path: str, values: Values) -> str:
    url, line = values.get("PROBE_URL", ("", 0))
    if not url:
        return ""
    match = _PROBE_URL.match(url)
    port = int(match.group(3) or 80) if match else 0
    if not match or not 0 < port <= 65535 or (match.group(1) in ("tcp", "udp") and not match.group(3)):
        raise InputError(path, f"not a probe URL: {url!r} (http://host[:port]/path, https://..., "
                         "tcp://host:port or udp://host:port)", line, "PROBE_URL")
    return url


def _read_no_link(path: str) -> str:
    """The web server user owns this file's directory: root must not follow a symlink it planted there (to
    read /etc/shadow into an error message on the web page), nor block on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise InputError(path, "is a symbolic link, not a file") from None
        return read_text(path)  # missing or unreadable: read_text says which, in its words
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(path, "is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(path, f"not UTF-8 text (byte {err.start})") from None


def _binding(path: str, values: Values, zone: str) -> Binding:
    tunnel = _peer_ids(path, values, f"{zone}_TUNNEL")
    if len(tunnel) > 1:
        raise InputError(path, "one peer id (use _FALLBACK for more)", values[f"{zone}_TUNNEL"][1],
                         f"{zone}_TUNNEL")
    return Binding(zone, tunnel[0] if tunnel else None, _on_off(path, values, f"{zone}_KILLSWITCH", True),
                   _on_off(path, values, f"{zone}_DNS", False), _peer_ids(path, values, f"{zone}_FALLBACK"))


def _peer_ids(path: str, values: Values, key: str) -> tuple[int, ...]:
    text, line = values.get(key, ("", 0))
    ids = []
    for item in filter(None, text.split(",")):
        if not item.isdigit():
            raise InputError(path, f"not a peer id: {item!r}", line, key)
        ids.append(int(item))
    return tuple(ids)


def _resolvers(path: str, values: Values, pattern: re.Pattern[str] = _RESOLVER_KEY) -> tuple[tuple[int, str], ...]:
    found = []
    for key, (value, line) in values.items():
        match = pattern.match(key)
        if match and value:
            try:
                found.append((int(match.group(1)), str(IPv4Address(value))))
            except ValueError:
                raise InputError(path, f"not an IPv4 address: {value!r}", line, key) from None
    return tuple(sorted(found))


def _seconds(path: str, values: Values, key: str, default: int) -> int:
    value, line = values.get(key, ("", 0))
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise InputError(path, f"must be a number of seconds, not {value!r}", line, key)
    return int(value)


def _on_off(path: str, values: Values, key: str, default: bool) -> bool:
    if key not in values or values[key][0] == "":
        return default
    value, line = values[key]
    if value not in ("on", "off"):
        raise InputError(path, f"must be on or off, not {value!r}", line, key)
    return value == "on"


def settings_values(settings: Settings) -> dict[str, str]:
    values = {"ENABLED": "on" if settings.enabled else "off"}
    for binding in settings.bindings:
        values[f"{binding.zone}_TUNNEL"] = "" if binding.tunnel is None else str(binding.tunnel)
        values[f"{binding.zone}_KILLSWITCH"] = "on" if binding.killswitch else "off"
        values[f"{binding.zone}_DNS"] = "on" if binding.dns else "off"
        values[f"{binding.zone}_FALLBACK"] = ",".join(map(str, binding.fallbacks))
    for peer_id, resolver in settings.resolvers:
        values[f"TUNNEL_{peer_id}_DNS"] = resolver
    for peer_id, target in settings.probes:
        values[f"TUNNEL_{peer_id}_PROBE"] = target
    if settings.probe_url:
        values["PROBE_URL"] = settings.probe_url
    if settings.stale_after != 180:
        values["STALE_AFTER"] = str(settings.stale_after)
    return values


def write_settings(paths: Paths, settings: Settings) -> None:
    """Atomic replace; keeps the file's owner (the web server user `nobody` on IPFire) and mode."""
    write_keeping_owner(paths.settings, format_hash(settings_values(settings)))
