"""What a POST must be before the page looks at its fields: sent by this page (IPFire's Referer check, host
and port, and a foreign Origin refused too), a url-encoded body of exactly the length it announced, and no
control characters anywhere. Anything else is refused whole: a partial form must never read as "all off"."""

from __future__ import annotations

from typing import IO
from urllib.parse import parse_qsl, urlsplit

MAX_BODY = 64 * 1024
MAX_FIELDS = 200
_PORTS = {"http": 80, "https": 443}
Origin = tuple[str, str, int]  # scheme, host, port


class Refused(Exception):
    """A request the page does not act on. `key` names a language string, `values` fill its {placeholders}."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key, self.values = key, values


def _origin(url: str) -> Origin | None:
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a broken [IPv6] literal
        return None
    if scheme not in _PORTS or not host:
        return None
    return scheme, host.lower().rstrip("."), port or _PORTS[scheme]


def server(environ: dict[str, str]) -> Origin | None:
    """Where this request went, as the browser named it (Host header; [v6 literals] included)."""
    scheme = "https" if environ.get("HTTPS", "").lower() == "on" else "http"
    host = environ.get("HTTP_HOST", "")
    if not host:
        name, port = environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", "")
        name = f"[{name}]" if ":" in name and not name.startswith("[") else name
        host = f"{name}:{port}" if port else name
    return _origin(f"{scheme}://{host}/")


def same_site(environ: dict[str, str]) -> bool:
    """The Referer (and Origin, when sent) must name this server's scheme, host and port."""
    here = server(environ)
    if here is None or _origin(environ.get("HTTP_REFERER", "")) != here:
        return False
    origin = environ.get("HTTP_ORIGIN")
    return origin is None or _origin(origin) == here


def body(environ: dict[str, str], stdin: IO[bytes]) -> bytes:
    """Exactly CONTENT_LENGTH bytes of a url-encoded form. A chunked body (no length) or one cut short is
    refused: what arrived is not known to be the whole form."""
    kind = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refused("zonevpn err not a form")
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit():
        raise Refused("zonevpn err no length")
    if int(length) > MAX_BODY:
        raise Refused("zonevpn err too big", limit=MAX_BODY // 1024)
    data = b""
    while len(data) < int(length):
        chunk = stdin.read(int(length) - len(data))
        if not chunk:
            raise Refused("zonevpn err short body")
        data += chunk
    return data


def fields(data: bytes) -> dict[str, str]:
    """The form's fields; each at most once, printable, valid UTF-8."""
    try:
        text = data.decode("ascii")  # a browser percent-encodes everything else
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=MAX_FIELDS,
                          encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise Refused("zonevpn err malformed") from None
    found: dict[str, str] = {}
    for key, value in pairs:
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in key + value):
            raise Refused("zonevpn err control")
        if key in found:
            raise Refused("zonevpn err twice")
        found[key] = value
    return found


def posted_form(environ: dict[str, str], stdin: IO[bytes]) -> dict[str, str]:
    if not same_site(environ):
        raise Refused("zonevpn err foreign")
    return fields(body(environ, stdin))
