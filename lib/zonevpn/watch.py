"""The watcher: zonevpn's one resident process (`zonevpn watch run`, started as a service by service.py).

Routing is the kill switch and needs no process; the watcher only repairs and switches, sooner than the
next hook would:
- a `wireguard reload` flushes the tunnel's address, and the kernel silently drops every route through it,
  ours included (no netlink message says so). The moment the address is back, the watcher puts our routes
  back exactly as they were (one netlink message each), long before the reload's own hook runs;
- the reload's /1 routes, which drag every zone into the tunnel, leave main as they appear;
- a tunnel deleted, added, or losing its address: a full apply once the burst of events has settled;
- zones with fallback tunnels: each of their tunnels is probed once a second (health.py); a tunnel going
  silent or coming back is a verdict, written down for every plan to see, then a full apply.
Idle it sleeps in select() on one netlink socket (with fallbacks: one tick a second, no process spawned).
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable

from zonevpn import health, netlink, runstate
from zonevpn.errors import ZonevpnError
from zonevpn.log import Log
from zonevpn.model import Config, Peer
from zonevpn.paths import Paths
from zonevpn.probe import Echo
from zonevpn.state import MAIN, POLICY_TABLE_BASE, PROTO, TUNNEL_TABLE_BASE, Route

GROUPS = netlink.RTMGRP_LINK | netlink.RTMGRP_IPV4_IFADDR | netlink.RTMGRP_IPV4_ROUTE
TICK = 1.0  # seconds between health probes
SETTLE = 0.3  # quiet time after a burst of events (a reload is ~30 commands) before a full apply
SETTLE_MAX = 2.0  # ... but never later than this after the burst began
WAIT_MAX = 30.0  # ... unless IPFire's initscript is still at work: then up to this (a hung one must not stall us)
# IPFire's initscripts at work setting things up (command line "…wireguard\0reload", also through an rc
# link like S60wireguard); their own hook applies when they end. Not `restart` alone: in its `sleep 1`
# between stop and start the zones are refused, and the watcher's apply is what records that engagement.
SETTING_UP = tuple(f"{script}\0{action}\0".encode() for script in ("wireguard", "firewall")
                   for action in ("start", "reload"))
Key = tuple[int, str, int, int]


def initscript_running() -> bool:
    """IPFire's wireguard or firewall initscript is setting up, in this box (same network namespace). An apply
    now races its remaining commands: a `wireguard reload` sets its tunnels up one after another, re-inserts
    WGBLOCK's rules at the top and flushes each address, so the apply's re-check finds the kernel moved and
    fails; the script's own hook applies when it ends."""
    try:
        mine = os.stat("/proc/self/ns/net").st_ino
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                words = handle.read()
            if any(name in words for name in SETTING_UP) and os.stat(f"/proc/{pid}/ns/net").st_ino == mine:
                return True
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return False


def has_work(config: Config) -> bool:
    """A zone bound or a policy set: their tables are repaired here (a policy alone once let it exit)."""
    return config.enabled and bool(config.exits or config.policies)


def probed_tunnels(config: Config) -> list[Peer]:
    """The tunnels whose health decides something: those of zones and policies with fallbacks."""
    chosen = [e.candidates for e in config.exits if e.fallbacks]
    chosen += [pol.candidates for pol in config.policies if pol.fallbacks]
    return list({p.interface: p for candidates in chosen for p in candidates}.values())


class Watcher:
    def __init__(self, paths: Paths, log: Log) -> None:
        self.paths, self.log = paths, log
        self.nl = netlink.Netlink(GROUPS)
        self.config: Config | None = None
        self.probes: dict[int, str] = {}
        self.names = {index: name for index, name in socket.if_nameindex()}
        # our routes as last seen, to put back what the kernel drops without a word
        self.ours: dict[Key, netlink.RouteFact] = {r.key: r for r in self.nl.routes() if r.proto == PROTO}
        self.trackers: dict[str, health.Tracker] = {}
        self.counters: dict[str, tuple[int, int]] = {}
        self.echoes: dict[str, Echo | None] = {}
        self.seq = 0
        self.due: float | None = None  # when the next full apply is due
        self.burst: float | None = None
        os.makedirs(os.path.dirname(paths.lock), exist_ok=True)
        self.lock_fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)

    # --- the loop ------------------------------------------------------------------------------------
    def run(self) -> int:
        health.write_down(self.paths, set())
        self.apply("watcher started")
        selector = selectors.DefaultSelector()
        selector.register(self.nl.events, selectors.EVENT_READ)
        next_tick = time.monotonic() + TICK
        while self.config is not None:
            now = time.monotonic()
            if self.probing() and now >= next_tick:
                next_tick = now + TICK
                if self.tick():
                    self.apply("tunnel health changed")
            if self.due is not None and now >= self.due:
                if self.burst is not None and now < self.burst + WAIT_MAX and initscript_running():
                    self.due = now + SETTLE  # mid-reload: the tunnels after this one are still being set up
                else:
                    self.apply("interfaces changed")
            deadlines = [t for t in (next_tick if self.probing() else None, self.due) if t is not None]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            if selector.select(timeout):
                self.on_events(self.nl.read_events())
        return 0

    def apply(self, why: str) -> None:
        """A full apply, in a child process as a hook runs it: the engine, the firewall back-end and
        (after a switch) pyroute2's conntrack stay out of this resident process. Its log lines (each
        switch, each change) go to syslog and to our stderr, run/zonevpn/watch.log."""
        from zonevpn.config import load
        from zonevpn.settings import read_settings

        self.due = self.burst = None
        self.log.info(f"watcher: {why}: apply")
        try:
            run = subprocess.run([sys.executable, "-m", "zonevpn", "--root", self.paths.root, "apply"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
            if run.returncode:
                self.log.error(f"watcher: {why}: apply failed ({run.returncode})")
            config = load(self.paths)
            self.probes = dict(read_settings(self.paths).probes)
        except (ZonevpnError, OSError, subprocess.SubprocessError) as err:
            self.log.error(f"watcher: {why}: {err}")
            return  # keep the last good config: the kernel still holds what it held
        if not has_work(config) or runstate.is_held(self.paths):
            self.log.info("watcher: no zone bound and no policy (or held): exiting")
            self.config = None
            return
        self.config = config

    # --- netlink events ------------------------------------------------------------------------------
    def on_events(self, events: Iterable[netlink.Event]) -> None:
        relevant = False
        for event in events:
            if event.kind == netlink.NEWLINK and event.name:
                self.names[event.ifindex] = event.name
            elif event.kind == netlink.DELLINK:
                self.names.pop(event.ifindex, None)
                self.ours = {k: r for k, r in self.ours.items() if r.oif != event.ifindex}
            route = event.route
            if route and route.proto == PROTO:
                if event.kind == netlink.NEWROUTE:
                    self.ours[route.key] = route
                    continue  # our own change: nothing to react to
                self.ours.pop(route.key, None)
            elif route and route.table == MAIN and route.dst_len == 1 and event.kind == netlink.NEWROUTE:
                self.take_half(route)
            elif route:
                continue  # the kernel's local and broadcast routes, IPFire's other routes
            if event.kind == netlink.NEWADDR:
                self.repair(event.ifindex, event.address)
            relevant = relevant or self.concerns(event)
        if relevant:
            now = time.monotonic()
            self.burst = self.burst or now
            self.due = min(now + SETTLE, self.burst + SETTLE_MAX)

    def concerns(self, event: netlink.Event) -> bool:
        name = self.names.get(event.ifindex, event.name)
        zones = {z.device for z in self.config.zones} if self.config else set()
        return event.ifindex == 0 or name.startswith("wg") or name in zones or event.kind == netlink.DELROUTE

    def _try_lock(self) -> bool:
        """Fast repairs only while no apply runs (a hook's apply may be moving the zone elsewhere)."""
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def repair(self, index: int, address: str) -> None:
        """The tunnel has its address again: the zones' and policies' routes through it, exactly as they
        were. Not the tunnel-address tables (1100+id): until the reload has put back its endpoint route,
        wireguard-go's own packets could take them into the tunnel itself (the hook restores them a moment
        later)."""
        routes = [r for r in self.ours.values() if r.oif == index and r.prefsrc in (address, None)
                  and not TUNNEL_TABLE_BASE <= r.table < POLICY_TABLE_BASE]
        if not routes or runstate.is_held(self.paths) or not self._try_lock():
            return
        try:
            for route in routes:
                self.nl.replace_route(route)
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    def take_half(self, route: netlink.RouteFact) -> None:
        """A reload's /1 route on an exit tunnel: every zone rides it (and the tunnel's own endpoint is
        routed into the tunnel) until the hook runs. Taken out at once, recorded first, as the engine does,
        so that `flush` gives it back exactly."""
        name = self.names.get(route.oif, "")
        exits: set[str] = set()
        if self.config:  # zones' and policies' tunnels (a policy has the candidates a zone's exit has)
            exits = {p.interface for e in self.config.exits for p in e.candidates if p.enabled}
            exits |= {p.interface for pol in self.config.policies for p in pol.candidates if p.enabled}
        if name not in exits or runstate.is_held(self.paths) or not self._try_lock():
            return
        try:
            half = Route(MAIN, f"{route.dst}/1", dev=name, src=route.prefsrc, proto=0)
            runstate.write_taken(self.paths, runstate.read_taken(self.paths) | {half})
            self.nl.delete_route(route)
        finally:
            fcntl.flock(self.lock_fd, fcntl.LOCK_UN)

    # --- health --------------------------------------------------------------------------------------
    def probed(self) -> list[Peer]:
        return probed_tunnels(self.config) if self.config else []

    def probing(self) -> bool:
        return bool(self.probed())

    def tick(self) -> bool:
        """One probe round; True when a verdict changed (then written down for every plan to read)."""
        assert self.config
        answered = {name: echo.answered() if echo else None for name, echo in self.echoes.items()}
        self.echoes, self.seq, changed = {}, self.seq + 1, False
        for peer in self.probed():
            tracker = self.trackers.setdefault(peer.interface, health.Tracker())
            target = self.probes.get(peer.id) or self.config.resolver(peer.id)
            evidence = self.evidence(peer.interface, target, answered.get(peer.interface))
            if tracker.tick(evidence):
                changed = True
                self.log.warning(f"tunnel {peer.name} ({peer.interface}) is " + (
                    "answering again" if tracker.up else f"silent: {health.DOWN_AFTER} probes "
                    f"{'to ' + target + ' ' if target else ''}without an answer, nothing received"))
            if target:
                try:
                    self.echoes[peer.interface] = Echo(peer.interface, peer.address, target, self.seq)
                except OSError:
                    self.echoes[peer.interface] = None  # no tunnel or no address: no evidence
        if changed:
            health.write_down(self.paths, {n for n, t in self.trackers.items() if not t.up})
        return changed

    def evidence(self, interface: str, target: str | None, answered: bool | None) -> bool | None:
        """Did the tunnel carry anything back this tick? None: no way to tell."""
        counters = _counters(interface)
        before = self.counters.pop(interface, None)
        if counters is None:
            return None
        self.counters[interface] = counters
        if before is None or counters[0] < before[0]:
            return None  # first look, or a re-created interface
        received, sent = counters[0] > before[0], counters[1] > before[1]
        if target:
            return None if answered is None else answered or received
        return received or not sent  # nothing sent, nothing to expect back


def _counters(interface: str) -> tuple[int, int] | None:
    base = f"/sys/class/net/{interface}/statistics/"
    try:
        with open(base + "rx_bytes", "rb") as rx, open(base + "tx_bytes", "rb") as tx:
            return int(rx.read()), int(tx.read())
    except (OSError, ValueError):
        return None


def run(paths: Paths, log: Log) -> int:
    """The service's main: one watcher per box (flock on its pid file), SIGTERM ends it cleanly."""
    from zonevpn.service import pid_path

    os.makedirs(os.path.dirname(pid_path(paths)), exist_ok=True)
    while True:
        fd = os.open(pid_path(paths), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("watcher: another one runs")
            return 0
        try:
            if os.stat(pid_path(paths)).st_ino == os.fstat(fd).st_ino:
                break  # not the file of a watcher that just ended and removed it
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    log.info("watcher running")
    try:
        return Watcher(paths, log).run()
    finally:
        os.remove(pid_path(paths))  # still ours: we hold its lock
        log.info("watcher stopped")
