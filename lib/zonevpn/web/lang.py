"""The page's strings, read from the same files IPFire's Perl pages use: the add-on's own
(/var/ipfire/addon-lang/zonevpn.<lang>.pl, `%tr = (%tr, 'key' => 'value', ...);`) and, for the words every
IPFire page shares (the zone names, "Internet" for red, the error box's title), IPFire's language files
(/var/ipfire/langs/<lang>.pl), so that blue reads BLAU here as on every German page."""

from __future__ import annotations

import os
import re

_PAIR = re.compile(r"'((?:[^'\\]|\\.)*)'\s*=>\s*'((?:[^'\\]|\\.)*)'")
# The only keys taken from IPFire's own (300 KB) files: read with one anchored search, not parsed whole.
IPFIRE_KEYS = ("green", "blue", "orange", "red", "oops something went wrong", "warning")
_IPFIRE = re.compile(r"^'(" + "|".join(map(re.escape, IPFIRE_KEYS)) + r")'\s*=>\s*'((?:[^'\\]|\\.)*)'", re.M)


def _unquote(text: str) -> str:
    return text.replace("\\'", "'").replace("\\\\", "\\")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def load(root: str, language: str) -> dict[str, str]:
    strings: dict[str, str] = {}
    for lang in dict.fromkeys(("en", language)):  # English first: a missing German string shows in English
        text = _read(os.path.join(root, "var/ipfire/langs", f"{lang}.pl"))
        strings.update({k: _unquote(v) for k, v in _IPFIRE.findall(text)})
        text = _read(os.path.join(root, "var/ipfire/addon-lang", f"zonevpn.{lang}.pl"))
        strings.update({_unquote(k): _unquote(v) for k, v in _PAIR.findall(text)})
    return strings


def language(root: str) -> str:
    """IPFire's LANGUAGE from /var/ipfire/main/settings (readhash), default English."""
    try:
        with open(os.path.join(root, "var/ipfire/main/settings"), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("LANGUAGE="):
                    value = line.strip().split("=", 1)[1].split(".")[0].split("_")[0]  # de_DE.utf8 -> de
                    return value if re.fullmatch(r"[a-z]{2,3}", value) else "en"
    except OSError:
        pass
    return "en"


class Text:
    """`t(key, **values)`: a translated string with its {placeholders} filled; an unknown key shows as itself
    (a missing translation must not break the page)."""

    def __init__(self, strings: dict[str, str]) -> None:
        self.strings = strings

    def __call__(self, key: str, **values: object) -> str:
        text = self.strings.get(key, key)
        try:
            return text.format(**values) if values else text
        except (KeyError, IndexError, ValueError):
            return text

    def zone(self, name: str) -> str:
        """GREEN/BLUE/ORANGE/RED as IPFire names them in this language (GRÜN, BLAU, ..., red = Internet)."""
        return self.strings.get(name.lower(), name)
