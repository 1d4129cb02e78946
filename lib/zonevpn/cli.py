"""The `zonevpn` command: parse arguments, call the library, map errors to exit codes. No logic here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from zonevpn import __version__
from zonevpn.errors import ZonevpnError
from zonevpn.log import Log
from zonevpn.paths import Paths

# Modules that add sub-commands: each has `register(subparsers)` and sets `func(args, paths, log)`.
# Imported lazily per module so a hook run pays only for what it calls.
COMMAND_MODULES = ("zonevpn.commands", "zonevpn.integration")

Handler = Callable[[argparse.Namespace, Paths, Log], int]


def build_parser() -> argparse.ArgumentParser:
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
    args = build_parser().parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
