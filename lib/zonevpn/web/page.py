"""Renders the page's body (IPFire's boxes) with jinja2, autoescaped: a tunnel named <script> shows as text."""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any, NamedTuple

from zonevpn.model import Peer, Settings
from zonevpn.paths import Paths
from zonevpn.web import privileged
from zonevpn.web.form import Form
from zonevpn.web.lang import Text
from zonevpn.web.request import Refused

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


class Notice(NamedTuple):
    title: str
    lines: list[str]


def applied(paths: Paths, t: Text, title: str, errors: list[str]) -> Notice:
    """After a save (settings or policies): root applies through addonctrl; its real outcome, at the box."""
    try:
        outcome = privileged.apply(paths)
    except Refused as err:
        errors.append(t(err.key, **err.values))
        return Notice(title, [t("zonevpn saved not applied")])
    return Notice(title, [t("zonevpn applied", changes=outcome.changes), *outcome.warnings])


class Trust(NamedTuple):
    """What the page shows beside the status: the last probe of each exit and the newest events."""

    probe: dict[str, Any] | None
    events: list[dict[str, Any]]
    probe_url_set: bool


def filesize(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(value)


def age(stamp: str, now: float | None = None) -> str:
    """'42 s', '5 min', '3 h' since a status time (%Y-%m-%dT%H:%M:%S%z); '?' when it cannot be read."""
    try:
        taken = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (TypeError, ValueError):
        return "?"
    seconds = max(int((time.time() if now is None else now) - taken), 0)
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"


def render(t: Text, form: Form | None, settings: Settings, tunnels: list[Peer], status: dict[str, Any] | None,
           errors: list[str], notice: Notice | None, trust: Trust | None = None) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["filesize"] = filesize
    context = {"t": t, "form": form, "settings": settings, "tunnels": tunnels, "status": status,
               "errors": errors, "notice": notice, "age": age, "trust": trust or Trust(None, [], False),
               "clock": clock}
    return "".join(env.get_template(name).render(context) for name in ("notices.html", "settings.html",
                                                                        "status.html", "trust.html"))


def clock(stamp: float | None) -> str:
    """A Unix time as the box's local date and time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"
