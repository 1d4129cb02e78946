"""The core sub-commands: apply, flush, check, status, hook, watch."""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING

from zonevpn.errors import EXIT_DRIFT, EXIT_OK, ApplyError, ZonevpnError
from zonevpn.log import Log
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic

if TYPE_CHECKING:
    import argparse

    from zonevpn.kernel_view import View

HOOK_EVENTS = ("wireguard", "firewall", "boot", "red")
EXIT_NOT_RUNNING = 3  # LSB: program is not running


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("apply", help="make the kernel match the settings (prints every change)")
    p.add_argument("--dry-run", action="store_true", help="print the changes, make none")
    p.add_argument("--resume", action="store_true", help="end a hold first (the initscript's start)")
    p.set_defaults(func=cmd_apply)
    sub.add_parser("hold", help="refuse every bound zone until `apply --resume` (the initscript's stop)"
                   ).set_defaults(func=cmd_hold)
    sub.add_parser("flush", help="remove everything zonevpn made; give back the /1 routes").set_defaults(
        func=cmd_flush)
    sub.add_parser("check", help="validate every input file").set_defaults(func=cmd_check)
    sub.add_parser("running", help="print whether zonevpn is running, in IPFire's words").set_defaults(
        func=cmd_running)
    p = sub.add_parser("status", help="per zone: exit, tunnel state, kill switch, drift")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("watch", help="the resident watcher: failover by probes, repairs within milliseconds")
    p.add_argument("action", choices=("start", "stop", "restart", "status", "run"))
    p.set_defaults(func=cmd_watch)
    p = sub.add_parser("hook", help="run by IPFire's initscripts: apply quietly, never fail the caller")
    p.add_argument("event", choices=HOOK_EVENTS)
    p.add_argument("action")
    p.set_defaults(func=cmd_hook)
    from zonevpn.inspect_commands import register as register_inspection

    register_inspection(sub)  # explain, probe, history: read the box, change nothing in the kernel


def _run(paths: Paths, log: Log, dry_run: bool = False, flush: bool = False) -> int:
    from zonevpn.engine import reconcile, record

    try:
        result = reconcile(paths, log, dry_run=dry_run, flush=flush)
    except ZonevpnError as err:
        if not dry_run:
            record(paths, None, err)
            _refresh_status(paths, log)
        raise
    except Exception as err:  # a defect, or a kernel error no back-end names: never leave "ok" standing
        if not dry_run:
            record(paths, None, ApplyError(f"unexpected {type(err).__name__}: {err}"))
        raise
    if dry_run:
        for line in result.changes:
            print(f"[dry-run] {line}")
    elif not flush:
        record(paths, result, None)
        _watcher_follows(paths, log, result.active)
    if not dry_run:  # from what the apply read last: no second load or kernel read (kernel_view.View)
        _refresh_status(paths, log, result.view)
    log.info(f"{len(result.changes)} changes" + (" (dry run)" if dry_run else "")
             + (f", {result.forgotten} conntrack entries forgotten" if result.forgotten else ""))
    return EXIT_OK


def _watcher_follows(paths: Paths, log: Log, active: bool) -> None:
    """A zone bound: the watcher must run (a hook run restarts one that died). None bound, or held: it
    has nothing to do and ends (as a process only; the kernel keeps what it holds)."""
    from zonevpn import service

    if active:
        service.ensure_running(paths, log)
    elif service.watcher_pid(paths) and service.stop(paths):
        log.info("watcher stopped: no zone or policy to watch")


def cmd_apply(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    if args.resume and not args.dry_run:
        from zonevpn import runstate

        runstate.set_held(paths, False)
    return _run(paths, log, dry_run=args.dry_run)


def cmd_hold(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    """Stop without opening anything: the zones' rules, tables and firewall stay, their tunnels' routes go,
    so a bound zone is refused (never sent to red) until start. Only flush or ENABLED=off hand them back."""
    from zonevpn import runstate

    runstate.set_held(paths, True)
    return _run(paths, log)


def cmd_flush(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn import runstate, service

    if service.stop(paths):  # first: it would put back what flush takes away
        log.info("watcher stopped")

    code = _run(paths, log, flush=True)
    runstate.set_held(paths, False)  # handed back: nothing left to hold
    return code


def cmd_running(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    """The initscript's status in IPFire's words (`addonctrl zonevpn status`, the Services page look for
    "is running" on the first line): running = enabled, not held, and zonevpn's rules in the kernel."""
    from zonevpn import runstate
    from zonevpn.routing import open_routing
    from zonevpn.settings import read_settings

    try:
        enabled = read_settings(paths).enabled
    except ZonevpnError:
        enabled = False
    routing = open_routing()
    try:
        installed = bool(routing.rules())
    finally:
        routing.close()
    held = runstate.is_held(paths)
    if enabled and installed and not held:
        print("zonevpn is running.")
        return EXIT_OK
    why = ("held: bound zones are refused until start" if held else "disabled" if not enabled
           else "no zone bound, no policy")
    print(f"zonevpn is not running ({why}).")
    return EXIT_NOT_RUNNING


def cmd_hook(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    return hook(args.event, args.action, paths, log)


def hook(event: str, action: str, paths: Paths, log: Log) -> int:
    """Called while IPFire's wireguard/firewall scripts run: quiet, and never their failure. On an error
    nothing more is changed, so the kill-switch blocks already in the kernel stay where they are."""
    log.quiet = True
    try:
        if os.path.exists(paths.wg_initscript):  # a Core Update dropped our line: the first hook puts it back
            from zonevpn.integration import repair

            repair(paths, log)
        _run(paths, log)
    except ZonevpnError as err:
        log.error(f"{event} {action}: {err}")
    except Exception as err:  # noqa: BLE001 - a bug must not break the caller's initscript either
        log.error(f"{event} {action}: unexpected {type(err).__name__}: {err}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    """The initscript's start/stop/status of the watcher; `run` is the process itself (foreground)."""
    from zonevpn import service

    if args.action == "run":
        from zonevpn.watch import run

        return run(paths, log)
    if args.action in ("stop", "restart") and service.stop(paths):
        log.info("watcher stopped")
    if args.action in ("start", "restart"):
        running = service.start(paths)
        log.info(f"watcher already running (pid {running})" if running else "watcher started")
    if args.action == "status":
        pid = service.watcher_pid(paths)
        print(f"zonevpn watcher is running (pid {pid})." if pid else "zonevpn watcher is not running.")
        return EXIT_OK if pid else EXIT_NOT_RUNNING
    return EXIT_OK


def cmd_check(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn.config import load

    config = load(paths)
    for warning in config.warnings:
        log.warning(warning)
    if os.path.exists(paths.wg_initscript):  # on IPFire (or a lab): the hooks must be there and able to run
        from zonevpn.integration import firewall_local_problems, repair

        repair(paths, log)
        with open(paths.firewall_local, encoding="utf-8", errors="replace") as handle:
            for problem in firewall_local_problems(handle.read(), paths.firewall_local):
                log.warning(problem)
    exits = ", ".join(f"{e.zone.name}->{e.peer.interface}" for e in config.exits) or "none"
    print(f"ok: {len(config.zones)} zones, {sum(p.kind == 'net' for p in config.peers)} net-to-net "
          f"tunnels, zonevpn {'enabled' if config.enabled else 'disabled'}, exits: {exits}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn.status import format_text, report

    status = report(paths)
    text = json.dumps(status, indent=1)
    try:
        publish(paths.status, text + "\n")
    except OSError as err:
        log.warning(f"status not saved for the web page: {err}")
    print(text if args.json else format_text(status))
    return EXIT_OK if status["in_sync"] else EXIT_DRIFT


def _refresh_status(paths: Paths, log: Log, view: View | None = None) -> None:
    """After every apply (hooks included), so that the web page shows the truth without starting a root
    process on each visit; from what the apply read last when it can. Never turns an apply into a failure."""
    from zonevpn.status import report

    try:
        publish(paths.status, json.dumps(report(paths, view), indent=1) + "\n")
    except (ZonevpnError, OSError) as err:
        log.warning(f"status not saved for the web page: {err}")


def publish(path: str, text: str) -> None:
    """Root's files for the web page go into a directory root made and alone can write (world-readable):
    in one the web server user can write, it could swap the temp file for a symlink between write and chmod."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise OSError(f"{directory} is not a directory of this user's own")
    if st.st_mode & 0o777 != 0o755:
        os.chmod(directory, 0o755)
    write_atomic(path, text)
