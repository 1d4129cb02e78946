"""The page's strings, read from the add-on's IPFire language files (/var/ipfire/addon-lang/zonevpn.<lang>.pl,
`%tr = (%tr, 'key' => 'value', ...);`): one source for the Perl menu and the Python page."""

from __future__ import annotations

import os
import re

_PAIR = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=>\s*'((?:[^'\\]|\\.)*)'")


def load(root: str, language: str) -> dict[str, str]:
    strings: dict[str, str] = {}
    for lang in ("en", language):  # English first: a missing German string shows in English
        path = os.path.join(root, "var/ipfire/addon-lang", f"zonevpn.{lang}.pl")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        strings.update({k.replace("\\'", "'"): v.replace("\\'", "'") for k, v in _PAIR.findall(text)})
    return strings


def language(root: str) -> str:
    """IPFire's LANGUAGE from /var/ipfire/main/settings (readhash), default English."""
    try:
        with open(os.path.join(root, "var/ipfire/main/settings"), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("LANGUAGE="):
                    return line.strip().split("=", 1)[1] or "en"
    except OSError:
        pass
    return "en"
