"""Renders the page's boxes with jinja2 (autoescaped: a tunnel named <script> shows as text)."""

from __future__ import annotations

import os
from typing import Any

from zonevpn.model import Peer, Settings, Zone

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def _filesize(value: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024  # type: ignore[assignment]
    return str(value)


def boxes(strings: dict[str, str], zones: tuple[Zone, ...], tunnels: list[Peer], settings: Settings,
          status: dict[str, Any] | None, messages: list[str], errors: list[str]) -> list[tuple[str, str]]:
    """(box title, box html) in page order."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["filesize"] = _filesize
    context = {"t": lambda key: strings.get(key, key), "zones": zones, "tunnels": tunnels,
               "settings": settings, "status": status, "messages": messages, "errors": errors,
               "resolvers": dict(settings.resolvers)}
    out = []
    if messages or errors:
        out.append((strings.get("zonevpn error", "") if errors else strings.get("zonevpn saved", ""),
                    env.get_template("messages.html").render(context)))
    out.append((strings.get("zonevpn exits", ""), env.get_template("exits.html").render(context)))
    out.append((strings.get("zonevpn status", ""), env.get_template("status.html").render(context)))
    return out
