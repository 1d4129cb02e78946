"""The reconciler: lock, load, read the kernel, plan, diff, apply in a safe order, verify, report."""

from __future__ import annotations

import fcntl
import json
import os
import time
from ipaddress import IPv4Network

from zonevpn import firewall, history, killswitch, policy_ways, resolver, runstate
from zonevpn.config import load
from zonevpn.diff import Live, Plan
from zonevpn.errors import ApplyError, LockTimeout, ZonevpnError
from zonevpn.kernel_view import View, compute, live_exit, recheck
from zonevpn.log import Log
from zonevpn.model import Config
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic
from zonevpn.routing import Routing, open_routing
from zonevpn.state import Desired

SRC_VALID_MARK = "/proc/sys/net/ipv4/conf/all/src_valid_mark"


class Result:
    def __init__(self, warnings: list[str]) -> None:
        self.changes: list[str] = []
        self.warnings = warnings
        self.forgotten = 0  # conntrack entries deleted
        self.active = False  # a zone is bound and not held: the watcher has work
        self.view: View | None = None  # the kernel as last read, for the status report (kernel_view.View)


class Lock:
    """flock on run/zonevpn.lock: concurrent runs (hook + page + boot) take turns, none is lost."""

    def __init__(self, paths: Paths, timeout: float = 30.0) -> None:
        self.path, self.timeout, self.fd = paths.lock, timeout, -1

    def __enter__(self) -> Lock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise LockTimeout(f"{self.path}: another zonevpn run held the lock "
                                      f"for {self.timeout:.0f} s") from None
                time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def reconcile(paths: Paths, log: Log, dry_run: bool = False, flush: bool = False) -> Result:
    with Lock(paths):
        config = load(paths, with_settings=not flush)  # InputError here: nothing was touched
        config = config._replace(held=runstate.is_held(paths))
        result = Result(list(config.warnings))
        for warning in config.warnings:
            log.warning(warning)
        routing = open_routing()
        try:
            desired, live, steps = compute(config, routing, paths)
            result.changes = steps.describe()
            if dry_run:
                return result
            if steps.halves_del:  # remember what we take before taking it
                present, owed = routing.links(), runstate.read_taken(paths) | set(steps.halves_del)
                runstate.write_taken(paths, frozenset(r for r in owed if r.dev in present))
            execute(steps, routing, log)
            if steps.halves_restore:
                runstate.write_taken(paths, runstate.read_taken(paths) - set(steps.halves_restore))
            _set_src_valid_mark(desired.src_valid_mark, result, log)
            result.changes += resolver.sync(paths.unbound_dropin, config, log)
            result.active = bool(desired.exits or config.policies) and not config.held
            _log_switches(config, desired, live, log)
            killswitch.observe(paths, config, dict(desired.exits), killswitch.exits_of(config, live),
                               routing.links)
            last_zones = runstate.read_exits(paths)
            switched = _switched(paths, config, desired)
            result.forgotten = policy_ways.forget(paths, config, desired, last_zones, switched)
            if desired.firewall.wgblock and not live.firewall.has("filter", "WGBLOCK"):
                result.warnings.append("IPFire's WGBLOCK chain is missing: replies from the tunnel "
                                       "wait for the firewall to start")
            if not len(steps):  # nothing changed: the reads above were the verification
                result.view = None if flush else View(config, routing.links(), live, steps)
                return result
            # pyroute2 drops keywords it does not know without a word: trust only what the kernel says
            after, left = recheck(desired, routing, paths)
            if len(left):
                raise ApplyError("the kernel does not hold the plan after apply; still to do: "
                                 + "; ".join(left.describe()))
            result.view = None if flush else View(config, routing.links(), after, left)
        finally:
            routing.close()
    return result


def execute(steps: Plan, routing: Routing, log: Log) -> None:
    """Run the plan's parts in the order diff.py documents; print each change as an admin would type it."""
    for verb, fw_rule in steps.firewall:
        log.change(firewall.describe(verb, fw_rule))
    firewall.apply(list(steps.firewall), 4)
    for verb, fw_rule in steps.firewall6:
        log.change(firewall.describe(verb, fw_rule).replace("iptables", "ip6tables", 1))
    firewall.apply(list(steps.firewall6), 6)
    for route in steps.route_replace:
        log.change(f"ip route replace {route.describe()}")
        routing.replace_route(route)
    for rule in steps.rule_add:
        log.change(f"ip rule add {rule.describe()}")
        routing.add_rule(rule)
    for route in steps.halves_restore:
        log.change(f"ip route add {route.describe()}")
        routing.add_main_half(route)
    for rule in steps.rule_del:
        log.change(f"ip rule del {rule.describe()}")
        routing.del_rule(rule)
    for route in steps.route_del + steps.halves_del:
        log.change(f"ip route del {route.describe()}")
        routing.del_route(route)
    for rule in steps.base_add:  # IPFire's own rules: make before break too
        log.change(f"ip rule add {rule.describe()}")
        routing.add_rule(rule)
    for rule in steps.base_del:
        log.change(f"ip rule del {rule.describe()}")
        routing.del_rule(rule)
    routing.commit()


def _log_switches(config: Config, desired: Desired, live: Live, log: Log) -> None:
    wanted = dict(desired.exits)
    for zone in config.zones:
        before, after = live_exit(zone, live), wanted.get(zone.name, "red")
        if before != after:
            say = log.warning if after == "refused" else log.info
            say(f"{zone.name} ({zone.network}) now leaves via {after} (was {before})")


def _switched(paths: Paths, config: Config, desired: Desired) -> list[IPv4Network]:
    """Zones whose real way out changed since the last run (bound, unbound, other tunnel): their NATed
    conntrack entries belong to the old path. Refused is no way out: it changes nothing here."""
    last, now = runstate.read_exits(paths), {}
    wanted = dict(desired.exits)
    switched = []
    for zone in config.zones:
        after = wanted.get(zone.name, "red")
        now[zone.name] = last.get(zone.name, "red") if after == "refused" else after
        if now[zone.name] != last.get(zone.name, "red"):
            switched.append(zone.network)
    runstate.write_exits(paths, now)
    return switched


def _set_src_valid_mark(on: bool, result: Result, log: Log) -> None:
    # Strict rp_filter ignores packet marks unless src_valid_mark=1; the inbound mark (replies of port
    # forwards into a bound zone) needs it. Given back (0, IPFire's default) when no zone is bound.
    try:
        with open(SRC_VALID_MARK) as handle:
            current = handle.read().strip() == "1"
        if current != on:
            log.change(f"sysctl -w net.ipv4.conf.all.src_valid_mark={int(on)}")
            with open(SRC_VALID_MARK, "w") as handle:
                handle.write("1" if on else "0")
            result.changes.append(f"sysctl net.ipv4.conf.all.src_valid_mark={int(on)}")
    except OSError as err:
        result.warnings.append(f"cannot set {SRC_VALID_MARK}: {err.strerror}")


def record(paths: Paths, result: Result | None, error: ZonevpnError | None) -> None:
    """The last apply's outcome, for `status` and the web page (world-readable JSON)."""
    summary = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "ok": error is None,
               "changes": len(result.changes) if result else 0,
               "error": str(error) if error else None,
               "warnings": result.warnings if result else []}
    if error:
        history.record(paths, "error", detail=str(error))
    try:
        os.makedirs(os.path.dirname(paths.last_result), exist_ok=True)
        write_atomic(paths.last_result, json.dumps(summary, indent=1) + "\n")
    except OSError:
        pass  # a read-only or full disk must not turn a good apply into a failure
