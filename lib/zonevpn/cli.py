"""The `zonevpn` command: parse arguments, call the library, map errors to exit codes. No logic here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from zonevpn import __version__
from zonevpn.errors import ZonevpnError
from zonevpn.log import Log
from zonevpn.paths import Paths

if TYPE_CHECKING:
    import argparse

# Modules that add sub-commands: each has `register(subparsers)` and sets `func(args, paths, log)`.
# Imported lazily per module so a hook run pays only for what it calls.
COMMAND_MODULES = ("zonevpn.commands", "zonevpn.integration")

Handler = Callable[["argparse.Namespace", Paths, Log], int]


def build_parser() -> argparse.ArgumentParser:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="zonevpn", description="Send IPFire zones out through "
                                     "WireGuard tunnels, with a kill switch.")
    parser.add_argument("--root", help="resolve every file under DIR (default $ZONEVPN_ROOT or /)")
    parser.add_argument("--quiet", action="store_true", help="log changes to syslog only")
    parser.add_argument("--version", action="version", version=f"zonevpn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if "hook" in words:
        fast = _hook(words)
        if fast is not None:
            return fast
    args = build_parser().parse_args(words)
    paths = Paths.from_env(args.root)
    log = Log(quiet=args.quiet)
    handler: Handler = args.func
    try:
        return handler(args, paths, log)
    except ZonevpnError as err:
        log.error(str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def _hook(words: list[str]) -> int | None:
    """`[--root DIR] [--quiet] hook EVENT ACTION` without argparse: the hook runs while a reload holds
    traffic, and argparse with its gettext/locale imports is 5 ms of it. Anything else: None."""
    root, rest = None, list(words)
    while rest and rest[0] in ("--root", "--quiet"):
        if rest[0] == "--root" and len(rest) > 1:
            root, rest = rest[1], rest[2:]
        else:
            rest = rest[1:]
    from zonevpn.commands import HOOK_EVENTS, hook

    if len(rest) != 3 or rest[0] != "hook" or rest[1] not in HOOK_EVENTS:
        return None
    return hook(rest[1], rest[2], Paths.from_env(root), Log(quiet=True))


if __name__ == "__main__":
    sys.exit(main())
