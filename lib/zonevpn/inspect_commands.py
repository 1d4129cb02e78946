"""Sub-commands that look and prove, changing nothing in the kernel: explain, probe, history."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from zonevpn.errors import EXIT_OK
from zonevpn.log import Log
from zonevpn.paths import Paths

if TYPE_CHECKING:
    import argparse

EXIT_PROBE_FAILED = 1  # `probe`: at least one exit did not answer


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from zonevpn.explain import DEFAULT_DST

    p = sub.add_parser("explain", help="where the kernel sends a flow now, and why (changes nothing)")
    p.add_argument("src", metavar="SRC", help="a client's address in a zone, or one of the firewall's own")
    p.add_argument("dst", metavar="DST", nargs="?", default=DEFAULT_DST,
                   help=f"where to (default {DEFAULT_DST}; nothing is sent there)")
    p.add_argument("--proto", choices=("tcp", "udp"))
    p.add_argument("--port", type=_port, help="destination port, 1-65535 (needs --proto)")
    p.add_argument("--reply", action="store_true",
                   help="SRC answers a connection DST opened to it through red (a port forward)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explain)
    p = sub.add_parser("probe", help="ask PROBE_URL through each exit tunnel: the public address the world "
                       "sees, and its country")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_probe)
    p = sub.add_parser("history", help="switches, kill-switch engagements, failovers, repairs, errors")
    p.add_argument("-n", "--last", type=int, default=50, help="how many events (default 50, at most 500)")
    p.add_argument("--zone")
    p.add_argument("--kind")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)


def _port(text: str) -> int:
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def cmd_explain(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn.explain import explain, format_text

    out = explain(paths, args.src, args.dst, args.proto, args.port, args.reply)
    print(json.dumps(out, indent=1) if args.json else format_text(out))
    return EXIT_OK


def cmd_probe(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    import time

    from zonevpn import history
    from zonevpn.commands import publish
    from zonevpn.config import load
    from zonevpn.exitprobe import format_text, probe_exits
    from zonevpn.settings import read_settings

    url = read_settings(paths).probe_url
    results = probe_exits(paths, load(paths), url, args.timeout)
    for r in results:
        said = f"the world sees {r['public']} ({r.get('country') or 'country unknown'})" if r["public"] \
            else f"no answer: {r['error']}"
        history.record(paths, "probe", detail=f"{r['interface']} ({r['name']}) via {url}: {said}",
                       exit=r["interface"], public=r["public"], country=r.get("country_code"))
    report = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "url": url, "exits": results}
    try:
        publish(paths.probe_result, json.dumps(report, indent=1) + "\n")
    except OSError as err:
        log.warning(f"probe result not saved for the web page: {err}")
    print(json.dumps(report, indent=1) if args.json else format_text(results))
    return EXIT_OK if all(r["public"] for r in results) else EXIT_PROBE_FAILED


def cmd_history(args: argparse.Namespace, paths: Paths, log: Log) -> int:
    from zonevpn import history

    events = history.read(paths, limit=min(max(args.last, 0), history.KEEP), zone=args.zone, kind=args.kind)
    if args.json:
        print(json.dumps(events, indent=1))
    else:
        print("\n".join(history.format_event(e) for e in events) if events else "no events")
    return EXIT_OK
