"""How zonevpn gets run by IPFire: one marked line in the wireguard initscript and a marked block in
firewall.local. IPFire offers no hook directory for either, so both are EXIT traps: they run whatever
path the script takes (its `start` exits early when WireGuard is disabled) and keep its exit status.

Inserting twice changes nothing; removing leaves the file byte for byte as it was before.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from zonevpn.errors import EXIT_DRIFT, EXIT_OK
from zonevpn.log import Log
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic

if TYPE_CHECKING:
    import argparse

WG_MARK = "# zonevpn-hook"
# Armed by the outermost run only: `restart` runs `$0 stop` and `$0 start` as children, and firewall.local's
# `reload` runs `$0 stop` and `$0 start`: with the mark exported they skip, so one event is one zonevpn run.
WG_LINE = ("[ -n \"${ZONEVPN_WG_HOOK}\" ] || { export ZONEVPN_WG_HOOK=\"${1}\"; trap 'zv=$?; "
           "command -v zonevpn >/dev/null 2>&1 && zonevpn hook wireguard \"${ZONEVPN_WG_HOOK}\" >/dev/null 2>&1; "
           f"exit ${{zv}}' EXIT; }}  {WG_MARK}: added by the zonevpn add-on, removed on uninstall\n")
BEGIN, END = "# BEGIN zonevpn", "# END zonevpn\n"
CREATED = " (file created by zonevpn)"
NEWLINE = " (newline added)"
FW_BLOCK = (f"{BEGIN}: re-applies zone exits after IPFire's own rules; removed on uninstall\n"
            "[ -n \"${ZONEVPN_FW_HOOK}\" ] || { export ZONEVPN_FW_HOOK=\"${1}\"; trap 'zv=$?; "
            "case \"${ZONEVPN_FW_HOOK}\" in start|reload) command -v zonevpn >/dev/null 2>&1 && "
            "zonevpn hook firewall \"${ZONEVPN_FW_HOOK}\" >/dev/null 2>&1;; esac; exit ${zv}' EXIT; }\n" + END)
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


SHELLS = ("#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env sh", "#!/usr/bin/env bash")
_OWN_TRAP = re.compile(r"^\s*trap\s.*(\bEXIT\b|\s0\s*$)")
_EXEC = re.compile(r"^\s*exec\s+(?![0-9]*[<>&])\S")  # exec with a program, not only redirections


def firewall_local_problems(text: str | None, path: str) -> list[str]:
    """Ways an admin's firewall.local keeps our EXIT trap from running, each naming file and line: it is no
    shell script, it sets its own EXIT trap (the later trap replaces the earlier), or it execs a program."""
    if text is None:
        return []
    lines, problems, inside = text.splitlines(), [], False
    if not lines or lines[0].strip() not in SHELLS:
        problems.append(f"{path}:1: not a shell script (its first line is not #!/bin/sh or #!/bin/bash), "
                        "so the zonevpn block in it never runs")
    for number, line in enumerate(lines, start=1):
        if line.startswith(BEGIN) or line == END.strip():
            inside = line.startswith(BEGIN)
            continue
        if inside:
            continue
        if _OWN_TRAP.search(line):
            problems.append(f"{path}:{number}: sets its own EXIT trap, which replaces zonevpn's: "
                            "zone exits are not re-applied after a firewall reload")
        elif _EXEC.search(line):
            problems.append(f"{path}:{number}: `exec` replaces the script, and zonevpn's EXIT trap with it")
    return problems


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


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
    """A Core Update replaces IPFire's initscript and drops our line: put it back, and say so. Run by every
    hook and boot start, so whichever event comes first after the update repairs it."""
    gone = missing(paths)
    for path in gone:
        log.warning(f"the zonevpn hook was missing from {path} (a Core Update?): putting it back")
    if gone:
        install(paths, log)
    return gone


def problems(paths: Paths) -> list[str]:
    """Hooks that are missing or present but unable to run."""
    found = [f"{path}: the zonevpn hook is missing" for path in missing(paths)]
    return found + firewall_local_problems(_read(paths.firewall_local), paths.firewall_local)


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
        found = problems(paths)
        for problem in found:
            log.warning(problem)
        return EXIT_DRIFT if found else EXIT_OK
    for problem in firewall_local_problems(_read(paths.firewall_local), paths.firewall_local):
        log.warning(problem)
    return EXIT_OK
