"""How zonevpn gets run by IPFire: one marked line in the wireguard initscript and a marked block in
firewall.local. IPFire offers no hook directory for either, so both are EXIT traps: they run whatever
path the script takes (its `start` exits early when WireGuard is disabled) and keep its exit status.

Inserting twice changes nothing; removing leaves the file byte for byte as it was before.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from zonevpn.errors import EXIT_DRIFT, EXIT_OK
from zonevpn.log import Log
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic

if TYPE_CHECKING:
    import argparse

WG_MARK = "# zonevpn-hook"
WG_LINE = ("ZONEVPN_ACTION=\"${1}\"; trap 'zv=$?; command -v zonevpn >/dev/null 2>&1 && "
           "zonevpn hook wireguard \"${ZONEVPN_ACTION}\" >/dev/null 2>&1; exit ${zv}' EXIT  "
           f"{WG_MARK}: added by the zonevpn add-on, removed on uninstall\n")
BEGIN, END = "# BEGIN zonevpn", "# END zonevpn\n"
CREATED = " (file created by zonevpn)"
NEWLINE = " (newline added)"
FW_BLOCK = (f"{BEGIN}: re-applies zone exits after IPFire's own rules; removed on uninstall\n"
            "ZONEVPN_ACTION=\"${1}\"; trap 'zv=$?; case \"${ZONEVPN_ACTION}\" in start|reload) "
            "command -v zonevpn >/dev/null 2>&1 && zonevpn hook firewall \"${ZONEVPN_ACTION}\" "
            ">/dev/null 2>&1;; esac; exit ${zv}' EXIT\n" + END)
STUB = "#!/bin/sh\n"


def _after_header(lines: list[str]) -> int:
    """Where to insert: after IPFire's sourcing of its rc functions (a trap set before could be reset by
    them), else after the shebang."""
    if not lines or not lines[0].startswith("#!"):
        return 0
    sources = (". ${rc_functions}", ". /etc/sysconfig/rc")
    sourcing = [i for i, line in enumerate(lines) if line.startswith(sources)]
    return (sourcing[-1] if sourcing else 0) + 1


def add_wireguard_hook(text: str) -> str:
    if WG_MARK in text:
        return text
    lines = text.splitlines(keepends=True)
    lines.insert(_after_header(lines), WG_LINE)
    return "".join(lines)


def remove_wireguard_hook(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if WG_MARK not in line)


def add_firewall_block(text: str | None) -> str:
    if text is None:
        return STUB + FW_BLOCK.replace(BEGIN + ":", BEGIN + CREATED + ":", 1)
    if BEGIN in text:
        return text
    lines = text.splitlines(keepends=True)
    block = FW_BLOCK
    if lines and not lines[-1].endswith("\n") and _after_header(lines) >= len(lines):
        lines[-1] += "\n"  # a one-line file without newline: keep the block on lines of its own
        block = FW_BLOCK.replace(BEGIN + ":", BEGIN + NEWLINE + ":", 1)
    lines.insert(_after_header(lines), block)
    return "".join(lines)


def remove_firewall_block(text: str) -> str | None:
    """The file without our block; None when zonevpn created the file and nothing else is in it."""
    lines, inside, created = text.splitlines(keepends=True), False, False
    kept: list[str] = []
    for line in lines:
        if line.startswith(BEGIN):
            inside, created = True, CREATED in line
            if NEWLINE in line and kept:
                kept[-1] = kept[-1][:-1]
        elif inside and line == END:
            inside = False
        elif not inside:
            kept.append(line)
    rest = "".join(kept)
    return None if created and rest == STUB else rest


def _edit(path: str, change, log: Log, what: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            before: str | None = handle.read()
    except FileNotFoundError:
        before = None
    after = change(before)
    if after == before:
        return False
    if after is None:
        os.remove(path)
    else:
        mode = os.stat(path).st_mode & 0o777 if before is not None else 0o755
        write_atomic(path, after, mode=mode)
    log.change(what)
    return True


def install(paths: Paths, log: Log) -> int:
    """Put both hooks in place (what the add-on's install step and every boot start do)."""
    changed = 0
    if os.path.exists(paths.wg_initscript):
        changed += _edit(paths.wg_initscript, lambda t: add_wireguard_hook(t or ""), log,
                         f"hook added to {paths.wg_initscript}")
    changed += _edit(paths.firewall_local, add_firewall_block, log, f"hook added to {paths.firewall_local}")
    return changed


def remove(paths: Paths, log: Log) -> int:
    changed = 0
    if os.path.exists(paths.wg_initscript):
        changed += _edit(paths.wg_initscript, lambda t: remove_wireguard_hook(t or ""), log,
                         f"hook removed from {paths.wg_initscript}")
    if os.path.exists(paths.firewall_local):
        changed += _edit(paths.firewall_local, lambda t: remove_firewall_block(t or ""), log,
                         f"hook removed from {paths.firewall_local}")
    return changed


def missing(paths: Paths) -> list[str]:
    gone = []
    for path, mark in ((paths.wg_initscript, WG_MARK), (paths.firewall_local, BEGIN)):
        try:
            with open(path, encoding="utf-8") as handle:
                if mark not in handle.read():
                    gone.append(path)
        except FileNotFoundError:
            gone.append(path)
    return gone


def repair(paths: Paths, log: Log) -> list[str]:
    """A Core Update replaces IPFire's initscript and drops our line: put it back, and say so."""
    gone = missing(paths)
    for path in gone:
        log.warning(f"the zonevpn hook was missing from {path} (a Core Update?): putting it back")
    if gone:
        install(paths, log)
    return gone


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("integrate", help="add, remove or check zonevpn's hooks in IPFire's scripts")
    p.add_argument("action", choices=("install", "remove", "check"))
    p.set_defaults(func=cmd_integrate)


def cmd_integrate(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    if args.action == "install":
        install(paths, log)
    elif args.action == "remove":
        remove(paths, log)
    else:
        gone = missing(paths)
        for path in gone:
            log.warning(f"the zonevpn hook is missing from {path}")
        return EXIT_DRIFT if gone else EXIT_OK
    return EXIT_OK
