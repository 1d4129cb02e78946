"""One request of cgi-bin/zonevpn.cgi: maybe save and apply, then the page inside IPFire's own frame. A GET
only reads files (status comes from what root last wrote, with its time); nothing a request carries reaches
a shell, Perl or root. Every failure is still a page saying what went wrong, never Apache's bare 500."""

from __future__ import annotations

import html
import os
import sys
from typing import IO

from zonevpn import history
from zonevpn.errors import InputError
from zonevpn.ipfire import read_peers, read_zones
from zonevpn.model import ZONES, Binding, Peer, Settings, Zone
from zonevpn.paths import Paths
from zonevpn.settings import read_settings, write_settings
from zonevpn.web import lang, page, policy_page, privileged, request
from zonevpn.web.form import build, exit_tunnels, settings_from
from zonevpn.web.frame import Frame
from zonevpn.web.lang import Text
from zonevpn.web.page import Notice
from zonevpn.web.request import Refused

HISTORY = 20  # events shown on the page, newest first (`zonevpn history` shows up to 500)
DEFAULTS = Settings(False, tuple(Binding(zone, None, True) for zone in ZONES))


def main(environ: dict[str, str] | None = None, stdin: IO[bytes] | None = None,
         stdout: IO[bytes] | None = None) -> int:
    frame = Frame()  # Perl loads header.pl while Python does the rest
    environ = dict(os.environ if environ is None else environ)
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    title = "zonevpn"
    try:
        paths = Paths.from_env()
        t = Text(lang.load(paths.root, lang.language(paths.root)))
        title = t("zonevpn title")
        # the policies box first: its POST acts before the page above it reads the status root wrote
        policies = policy_page.respond(environ, stdin, paths, t)
        body = respond(environ, stdin, paths, t) + policies
    except Exception as err:  # noqa: BLE001 - a bug still answers with a page that names it
        body = ('<section class="section is-box is-error"><h2 class="title">zonevpn</h2><ul><li>'
                f"{html.escape(type(err).__name__)}: {html.escape(str(err))}</li></ul></section>")
    stdout.write(frame.around(body, title))
    stdout.flush()
    return 0


def respond(environ: dict[str, str], stdin: IO[bytes], paths: Paths, t: Text) -> str:
    errors: list[str] = []
    zones, peers, box_known = _box(paths, t, errors)
    settings, readable = _settings(paths, t, errors)
    notice = None
    if environ.get("REQUEST_METHOD") == "POST" and not policy_page.posted_to(environ):
        notice = _post(environ, stdin, paths, t, (zones, peers), settings if readable and box_known else None,
                       errors)
        settings, readable = _settings(paths, t, [])
    form = build(zones, peers, settings) if readable and box_known else None
    status = privileged.read_json(paths.status)
    trust = page.Trust(privileged.read_json(paths.probe_result), history.read(paths, limit=HISTORY)[::-1],
                       bool(settings.probe_url))
    return page.render(t, form, settings, exit_tunnels(peers), status, errors, notice, trust)


def _box(paths: Paths, t: Text, errors: list[str]) -> tuple[tuple[Zone, ...], tuple[Peer, ...], bool]:
    try:
        return read_zones(paths), read_peers(paths), True
    except InputError as err:
        errors.append(t("zonevpn err ipfire", reason=str(err)))
        return (), (), False


def _settings(paths: Paths, t: Text, errors: list[str]) -> tuple[Settings, bool]:
    """The settings and whether they can be edited: a file that cannot be read gets no form and no Save
    (saving over it would blank every choice in it); a missing one is the first visit."""
    try:
        return read_settings(paths), True
    except InputError as err:
        if not os.path.lexists(paths.settings):
            return DEFAULTS, True
        errors.append(t("zonevpn err settings", reason=str(err)))
        return DEFAULTS, False


def _post(environ: dict[str, str], stdin: IO[bytes], paths: Paths, t: Text,
          box: tuple[tuple[Zone, ...], tuple[Peer, ...]], current: Settings | None,
          errors: list[str]) -> Notice | None:
    try:
        fields = request.posted_form(environ, stdin)
        if fields.get("ACTION") == "probe":
            return _probe(fields, paths, t)
        if current is None:
            raise Refused("zonevpn err not editable")
        new = settings_from(build(*box, current), fields, current)
        if new != current:  # equal: the file is left byte for byte as it is
            write_settings(paths, new)
    except Refused as err:
        errors.append(say(t, err))
        return None
    except OSError as err:
        errors.append(t("zonevpn err write", reason=err.strerror or str(err)))
        return None
    return page.applied(paths, t, t("zonevpn saved") if new != current else t("zonevpn unchanged"), errors)


def _probe(fields: dict[str, str], paths: Paths, t: Text) -> Notice:
    """The "Probe the exits" button: root runs `zonevpn probe` in the reload addonctrl starts; the page
    leaves only a flag (see Paths.probe_request). The results come from the file the probe writes."""
    if set(fields) != {"ACTION"}:
        raise Refused("zonevpn err incomplete")
    before = privileged.read_json(paths.probe_result)
    with open(paths.probe_request, "w", encoding="ascii") as handle:
        handle.write("requested by the web page\n")
    privileged.apply(paths)
    after = privileged.read_json(paths.probe_result)
    done = after is not None and after != before
    return Notice(t("zonevpn probe"), [t("zonevpn probe done") if done else t("zonevpn probe not done")])


def say(t: Text, err: Refused) -> str:
    """A refusal in the admin's language, zones named as IPFire names them."""
    return t(err.key, **{k: t.zone(str(v)) if k == "zone" else v for k, v in err.values.items()})
