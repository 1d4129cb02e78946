"""One request of cgi-bin/zonevpn.cgi: check, maybe save and apply, then print the page inside IPFire's
own frame (Perl's header.pl, through cgi-bin/zonevpn/frame.pl)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO, Any
from urllib.parse import urlparse

from zonevpn.errors import InputError
from zonevpn.ipfire import read_peers, read_zones
from zonevpn.model import Settings
from zonevpn.paths import Paths
from zonevpn.settings import read_settings, write_settings
from zonevpn.web import lang, page
from zonevpn.web.form import MAX_BODY, FormError, exit_tunnels, parse, settings_from

FRAME = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "zonevpn", "frame.pl")


def same_site(environ: dict[str, str]) -> bool:
    """IPFire ignores a POST unless its Referer names this server; a foreign Origin is refused too."""
    server = environ.get("SERVER_NAME", "")
    referer = urlparse(environ.get("HTTP_REFERER", "")).hostname
    origin = environ.get("HTTP_ORIGIN")
    return bool(server) and referer == server and (origin is None or urlparse(origin).hostname == server)


def addonctrl(paths: Paths, action: str) -> None:
    """IPFire's setuid helper runs /etc/rc.d/init.d/zonevpn <action> as root: a fixed action, no shell."""
    command = [os.path.join(paths.root, "usr/local/bin/addonctrl"), "zonevpn", action]
    subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)


def save(environ: dict[str, str], stdin: IO[bytes], paths: Paths) -> None:
    length = environ.get("CONTENT_LENGTH", "0") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        raise FormError(f"request refused: body over {MAX_BODY // 1024} KiB")
    if not same_site(environ):
        raise FormError("request refused: it did not come from this page (Referer/Origin)")
    fields = parse(stdin.read(int(length)).decode("utf-8", "replace"))
    try:
        current = read_settings(paths)
    except InputError:
        current = Settings(False, ())
    if not current.bindings:
        from zonevpn.model import ZONES, Binding

        current = Settings(current.enabled, tuple(Binding(z, None, True) for z in ZONES))
    write_settings(paths, settings_from(fields, current, read_zones(paths), read_peers(paths)))
    addonctrl(paths, "reload")


def status(paths: Paths) -> dict[str, Any] | None:
    addonctrl(paths, "status")  # as root, refreshes status.json (wg's handshake ages need root)
    try:
        with open(paths.status, encoding="utf-8") as handle:
            data: dict[str, Any] = json.load(handle)
            return data
    except (OSError, ValueError):
        return None


def main(environ: dict[str, str] | None = None, stdin: IO[bytes] | None = None,
         stdout: IO[bytes] | None = None) -> int:
    environ = dict(os.environ if environ is None else environ)
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    paths = Paths.from_env()
    strings = lang.load(paths.root, lang.language(paths.root))
    messages: list[str] = []
    errors: list[str] = []
    if environ.get("REQUEST_METHOD") == "POST":
        try:
            save(environ, stdin, paths)
            messages.append(strings.get("zonevpn saved", "saved"))
        except (FormError, InputError) as err:
            errors.append(str(err))
    try:
        zones, peers = read_zones(paths), read_peers(paths)
        settings = read_settings(paths)
    except InputError as err:
        zones, peers, settings = (), (), Settings(False, ())
        errors.append(str(err))
    boxes = page.boxes(strings, zones, exit_tunnels(peers), settings, status(paths), messages, errors)
    frame(paths, strings.get("zonevpn title", "zonevpn"), boxes, stdout)
    return 0


def frame(paths: Paths, title: str, boxes: list[tuple[str, str]], stdout: IO[bytes]) -> None:
    payload = "\0".join([title, *(part for box in boxes for part in box)])
    env = dict(os.environ, ZONEVPN_ROOT="" if paths.root == "/" else paths.root.rstrip("/"))
    result = subprocess.run(["perl", FRAME], input=payload.encode(), capture_output=True, env=env, timeout=30)
    if result.returncode != 0:  # no frame: still a page, never a blank one
        stdout.write(b"Content-type: text/html; charset=utf-8\r\n\r\n<h1>zonevpn</h1>")
        stdout.write(b"".join(f"<h2>{t}</h2>{html}".encode() for t, html in boxes))
        return
    stdout.write(result.stdout)
    stdout.flush()
