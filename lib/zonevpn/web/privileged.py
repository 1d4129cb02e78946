"""The page's only way to root: IPFire's setuid `addonctrl zonevpn reload` (a fixed action, no argument from
the request), and what root left for the page to read. addonctrl ignores the initscript's exit status, so
whether the apply worked is read from the record the apply itself writes (last-apply.json), never assumed."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, NamedTuple

from zonevpn.paths import Paths
from zonevpn.web.request import Refused

# Below Apache's own CGI timeout (60 s unless configured): past it the admin would get a bare 500.
TIMEOUT = float(os.environ.get("ZONEVPN_WEB_TIMEOUT", "40"))


class Outcome(NamedTuple):
    changes: int
    warnings: list[str]


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def addonctrl(paths: Paths, action: str) -> None:
    command = [os.path.join(paths.root, "usr/local/bin/addonctrl"), "zonevpn", action]
    try:
        # No pipes to this process: a helper still running when we give up must not hold the page open.
        helper = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as err:
        raise Refused("zonevpn err helper missing", helper=command[0], reason=err.strerror or str(err)) from None
    try:
        code = helper.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise Refused("zonevpn err helper slow", seconds=int(TIMEOUT)) from None  # root's: we cannot stop it
    if code != 0:
        raise Refused("zonevpn err helper failed", code=code)


def apply(paths: Paths) -> Outcome:
    """Runs the apply as root; its own record says whether it worked."""
    before = _stamp(paths.last_result)
    addonctrl(paths, "reload")
    record = read_json(paths.last_result)
    if _stamp(paths.last_result) == before or record is None:
        raise Refused("zonevpn err not applied")
    if not record.get("ok"):
        raise Refused("zonevpn err apply failed", reason=str(record.get("error") or "?"))
    return Outcome(int(record.get("changes") or 0), [str(w) for w in record.get("warnings") or []])
