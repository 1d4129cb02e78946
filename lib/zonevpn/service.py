"""The watcher as a service: its pid file, start, stop, status, and the check every apply makes.

Started by the initscript's start (boot included) and, when it is not running, by any apply or hook run;
stopped by the initscript's stop and by `flush`, as a process only: the kernel state it repairs stays. If
it dies nothing opens (routing is the kill switch); the next hook or boot starts it again.
This module is on the hook's path: it imports nothing heavy and costs ~0.1 ms when the watcher runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from zonevpn.log import Log
from zonevpn.paths import Paths


def pid_path(paths: Paths) -> str:
    return os.path.join(os.path.dirname(paths.lock), "zonevpn", "watch.pid")


def log_path(paths: Paths) -> str:
    """The running watcher's own log lines (tmpfs, begun afresh at each start; syslog has them too)."""
    return os.path.join(os.path.dirname(paths.lock), "zonevpn", "watch.log")


def watcher_pid(paths: Paths) -> int | None:
    """The running watcher's pid, checked against /proc (a stale file or a reused pid is no watcher)."""
    try:
        with open(pid_path(paths), encoding="ascii") as handle:
            pid = int(handle.read().strip() or 0)
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"watch" in words and b"run" in words else None


def _library() -> str:
    # the package's parent directory: the repo's lib/ or /usr/lib/zonevpn, whose vendor/ holds pyroute2
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(paths: Paths) -> int | None:
    """Start the watcher unless it runs; returns the pid of one already running, else None. The child
    gets no stdin/stdout/stderr of ours: a caller reading our output (an initscript, a test) must not
    wait for a resident process. Its log lines go to syslog and run/zonevpn/watch.log."""
    running = watcher_pid(paths)
    if running:
        return running
    lib = _library()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (lib, os.path.join(lib, "vendor"),
                                                                    os.environ.get("PYTHONPATH")))))
    os.makedirs(os.path.dirname(pid_path(paths)), exist_ok=True)
    with open(log_path(paths), "w", encoding="utf-8") as log:  # also in syslog; this one is for `status`
        subprocess.Popen([sys.executable, "-m", "zonevpn", "--root", paths.root, "watch", "run"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                         start_new_session=True, env=env, cwd="/")
    return None


def stop(paths: Paths, wait: float = 3.0) -> int | None:
    """SIGTERM, then SIGKILL after `wait` seconds; the pid that was stopped, or None."""
    pid = watcher_pid(paths)
    if not pid:
        return None
    for signum in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            if _zombie(pid):
                return pid
            time.sleep(0.02)
        if not os.path.exists(f"/proc/{pid}"):
            return pid
    return pid


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def ensure_running(paths: Paths, log: Log) -> None:
    """After an apply: the watcher must run on an IPFire box (a hook restarts one that died). Sandboxed
    runs (`--root`, tests, a developer's machine) never leave a resident process behind."""
    if paths.root != "/" or not os.path.exists(paths.wg_initscript) or watcher_pid(paths):
        return
    try:
        start(paths)
        log.info("watcher started")
    except OSError as err:
        log.warning(f"cannot start the watcher: {err}")
