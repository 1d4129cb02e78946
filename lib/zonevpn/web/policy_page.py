"""The exit policies box of cgi-bin/zonevpn.cgi. Its forms post to `?policies`, so the request flow picks
this handler from the URL before the body is read; the same checks as the settings form apply (same site,
the complete form, no control characters), and the policies file is written — atomically, only when the
list really changes — after the form's fingerprint proved it was made from the file as it is. Then root
applies it (addonctrl reload) and its real outcome is reported at the box, where the admin clicked."""

from __future__ import annotations

import os
from typing import IO, NamedTuple
from urllib.parse import parse_qs

from zonevpn import fwhosts
from zonevpn.errors import InputError
from zonevpn.ipfire import read_peers, read_zones
from zonevpn.model import Peer, Policy, Settings, Zone
from zonevpn.paths import Paths
from zonevpn.policies import format_row, parse_policies, read_policies_text, write_policies
from zonevpn.policy_config import check_policy
from zonevpn.settings import read_settings
from zonevpn.web import editlock, page, policy_form, policy_view, request
from zonevpn.web.lang import Text
from zonevpn.web.policy_form import Choices
from zonevpn.web.request import Refused


class Box(NamedTuple):
    """What the box is made from. `text` None: the policies file cannot be read (no forms: saving over it
    would lose every policy in it); `choices` None: IPFire's own files or zonevpn's settings cannot be read
    (no forms either: nothing could be checked or applied)."""

    text: str | None
    policies: tuple[Policy, ...]
    zones: tuple[Zone, ...]
    peers: tuple[Peer, ...]
    choices: Choices | None
    settings: Settings


def posted_to(environ: dict[str, str]) -> bool:
    return environ.get("REQUEST_METHOD") == "POST" and environ.get("QUERY_STRING") == "policies"


def respond(environ: dict[str, str], stdin: IO[bytes], paths: Paths, t: Text) -> str:
    errors: list[str] = []
    notice, kept = None, None
    if posted_to(environ):
        with editlock.editing(paths):  # the file the form was made from is the one it is checked against
            saved, kept = _save(environ, stdin, paths, t, read_box(paths, t, []), errors)
        # root applies outside the edit lock: another admin need not wait for the kernel
        notice = None if saved is None else page.applied(
            paths, t, t("zonevpn policies saved") if saved else t("zonevpn policies unchanged"), errors)
    box = read_box(paths, t, errors)
    return policy_view.render(t, paths, box, errors, notice, _editing(environ, box, kept, errors, t))


def read_box(paths: Paths, t: Text, errors: list[str]) -> Box:
    text: str | None = None
    policies: tuple[Policy, ...] = ()
    try:
        text = read_policies_text(paths)
        policies = parse_policies(paths.policies, text)
    except InputError as err:
        text = None
        errors.append(t("zonevpn err policies read", reason=str(err)))
    try:
        zones, peers = read_zones(paths), read_peers(paths)
        names = fwhosts.read_fwhosts(paths).names()
        choices: Choices | None = Choices(tuple(z.name for z in zones), names, peers)
    except InputError as err:
        zones, peers, choices = (), (), None
        errors.append(t("zonevpn err ipfire", reason=str(err)))
    try:
        settings = read_settings(paths)
    except InputError:  # the settings box above says why
        settings = Settings(False, ())
        if os.path.lexists(paths.settings):  # no apply can succeed, nor a policy's DNS be checked, until fixed
            choices = None
    return Box(text, policies, zones, peers, choices, settings)


def _save(environ: dict[str, str], stdin: IO[bytes], paths: Paths, t: Text, box: Box,
          errors: list[str]) -> tuple[bool | None, dict[str, str] | None]:
    """Whether the action changed the file (None: refused), and the editor's fields to show again when
    only a value was refused."""
    fields: dict[str, str] = {}
    try:
        fields = request.posted_form(environ, stdin)
        if box.text is None or box.choices is None:
            raise Refused("zonevpn err policies not editable")
        new, touched = policy_form.changed(fields, box.policies, box.text, box.choices, paths.policies)
        if touched is not None and touched.enabled:
            try:
                check_policy(paths, box.settings, box.zones, box.peers, touched)
            except InputError as err:
                raise policy_form.refusal(err) from None
        differs = _rows(new) != _rows(box.policies)
        if differs:  # else the file is left byte for byte as it is
            write_policies(paths, new)
    except Refused as err:
        errors.append(say(t, err))
        return None, fields if err.key == "zonevpn err policy value" else None
    except OSError as err:
        errors.append(t("zonevpn err policies write", reason=err.strerror or str(err)))
        return None, None
    return differs, None


def _rows(policies: tuple[Policy, ...]) -> list[str]:
    return [format_row(number, policy) for number, policy in enumerate(policies, start=1)]


def say(t: Text, err: Refused) -> str:
    """A refusal in the admin's language; an editor's field and reason named as the editor names them."""
    return t(err.key, **{k: t(str(v)) if k in ("field", "reason") else v for k, v in err.values.items()})


def _editing(environ: dict[str, str], box: Box, kept: dict[str, str] | None, errors: list[str],
             t: Text) -> policy_view.Editor | None:
    """The editor: the refused fields again, else the policy named by ?edit=KEY, else a new policy."""
    if box.text is None or box.choices is None:
        return None
    by_key = {p.number: p for p in box.policies}
    if kept is not None and kept.get("KEY", "").isdigit() and int(kept["KEY"]) in by_key:
        return policy_view.Editor(kept["KEY"], by_key[int(kept["KEY"])], kept)
    if kept is not None and kept.get("KEY") == "":
        return policy_view.Editor("", None, kept)
    wanted = parse_qs(environ.get("QUERY_STRING", "")).get("edit", [""])[0] \
        if environ.get("REQUEST_METHOD") != "POST" else ""
    if wanted.isdigit() and int(wanted) in by_key:
        policy = by_key[int(wanted)]
        return policy_view.Editor(wanted, policy, policy_form.editor_values(policy, box.choices))
    if wanted:
        errors.append(t("zonevpn err no policy", number=wanted[:10]))
    return policy_view.Editor("", None, policy_form.editor_values(None, box.choices))
