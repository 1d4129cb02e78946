"""The core sub-commands: apply, flush, check, status, hook."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from zonevpn.errors import EXIT_DRIFT, EXIT_OK, ZonevpnError
from zonevpn.log import Log
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic

if TYPE_CHECKING:
    import argparse

HOOK_EVENTS = ("wireguard", "firewall", "boot", "red")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("apply", help="make the kernel match the settings (prints every change)")
    p.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    p.set_defaults(func=cmd_apply)
    sub.add_parser("flush", help="remove everything zonevpn made; give back the /1 routes").set_defaults(
        func=cmd_flush)
    sub.add_parser("check", help="validate every input file").set_defaults(func=cmd_check)
    p = sub.add_parser("status", help="per zone: exit, tunnel state, kill switch, drift")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("hook", help="run by IPFire's initscripts: apply quietly, never fail the caller")
    p.add_argument("event", choices=HOOK_EVENTS)
    p.add_argument("action")
    p.set_defaults(func=cmd_hook)


def _run(paths: Paths, log: Log, dry_run: bool = False, flush: bool = False) -> int:
    from zonevpn.engine import reconcile, record

    try:
        result = reconcile(paths, log, dry_run=dry_run, flush=flush)
    except ZonevpnError as err:
        if not dry_run:
            record(paths, None, err)
        raise
    if dry_run:
        for line in result.changes:
            print(f"[dry-run] {line}")
    elif not flush:
        record(paths, result, None)
    log.info(f"{len(result.changes)} changes" + (" (dry run)" if dry_run else "")
             + (f", {result.forgotten} conntrack entries forgotten" if result.forgotten else ""))
    return EXIT_OK


def cmd_apply(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    return _run(paths, log, dry_run=args.dry_run)


def cmd_flush(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    return _run(paths, log, flush=True)


def cmd_hook(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    return hook(args.event, args.action, paths, log)


def hook(event: str, action: str, paths: Paths, log: Log) -> int:
    """Called while IPFire's wireguard/firewall scripts run: quiet, and never their failure. On an error
    nothing more is changed, so the kill-switch blocks already in the kernel stay where they are."""
    log.quiet = True
    try:
        _run(paths, log)
    except ZonevpnError as err:
        log.error(f"{event} {action}: {err}")
    except Exception as err:  # noqa: BLE001 - a bug must not break the caller's initscript either
        log.error(f"{event} {action}: unexpected {type(err).__name__}: {err}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn.config import load

    config = load(paths)
    for warning in config.warnings:
        log.warning(warning)
    if os.path.exists(paths.wg_initscript):  # on IPFire (or a lab): the hooks must be there
        from zonevpn.integration import repair

        repair(paths, log)
    exits = ", ".join(f"{e.zone.name}->{e.peer.interface}" for e in config.exits) or "none"
    print(f"ok: {len(config.zones)} zones, {sum(p.kind == 'net' for p in config.peers)} net-to-net "
          f"tunnels, zonevpn {'enabled' if config.enabled else 'disabled'}, exits: {exits}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn.status import format_text, report

    status = report(paths)
    text = json.dumps(status, indent=1)
    try:
        write_atomic(paths.status, text + "\n")
    except OSError:
        pass
    print(text if args.json else format_text(status))
    return EXIT_OK if status["in_sync"] else EXIT_DRIFT
