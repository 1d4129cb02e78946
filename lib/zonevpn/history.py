"""What happened, for the admin: switches, kill-switch engagements and releases, failovers, repairs, errors
and exit probes, one JSON line each in var/lib/zonevpn/history.jsonl (root writes it, the web page reads it).

  history.record(paths, "engaged", zone="BLUE", detail="wg3 missing")

Called from the hook's hot path: it appends one line and returns, imports nothing heavy, and never raises
(a full disk must not turn an apply into a failure). Bounded: once the file passes MAX_BYTES it is cut to
its last KEEP lines in a temp file renamed over it; appends and the cut take turns on an flock, so a line
written while the file is being cut is never lost in the old copy.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import time
from typing import Any

from zonevpn.paths import Paths

KEEP = 500  # events kept after a cut (and shown at most)
MAX_BYTES = 256 * 1024  # ~1000 events: cut back to KEEP past this
KINDS = ("switch", "engaged", "released", "failover", "repair", "error", "probe")


def record(paths: Paths, kind: str, zone: str | None = None, detail: str = "", now: float | None = None,
           **extra: Any) -> None:
    """Append one event. `extra` must be JSON values (e.g. exit="wg3", was="refused")."""
    stamp = time.time() if now is None else now
    event = {"ts": round(stamp, 3), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(stamp)),
             "kind": kind, "zone": zone, "detail": detail, **extra}
    line = json.dumps(event, separators=(",", ":")) + "\n"
    try:
        _prepare(os.path.dirname(paths.history))
        lock = os.open(paths.history_lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fd = os.open(paths.history, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            try:
                end = os.fstat(fd).st_size
                torn = end > 0 and os.pread(fd, 1, end - 1) != b"\n"  # a writer killed mid-line
                os.write(fd, (("\n" if torn else "") + line).encode())
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            if size > MAX_BYTES:
                _cut(paths.history)
        finally:
            os.close(lock)
    except OSError:
        pass  # history is for the admin's eyes; syslog has the same lines


def _prepare(directory: str) -> None:
    """The directory is root's own (the web server user must not plant a symlink for root to follow)."""
    os.makedirs(directory, mode=0o755, exist_ok=True)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise OSError(f"{directory} is not a directory of this user's own")


def _cut(path: str) -> None:
    with open(path, "rb") as handle:
        kept = handle.read().splitlines(keepends=True)[-KEEP:]
    temp = f"{path}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, b"".join(kept))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)


def read(paths: Paths, limit: int = KEEP, zone: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """The newest `limit` events (oldest first); a torn or foreign line is skipped, never fatal."""
    try:
        with open(paths.history, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or "kind" not in event or "ts" not in event:
            continue
        if (zone is None or event.get("zone") == zone) and (kind is None or event["kind"] == kind):
            events.append(event)
    return events[-limit:] if limit > 0 else []


def format_event(event: dict[str, Any]) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(event["ts"])))
    zone = event.get("zone") or "-"
    return f"{when}  {event['kind']:<8} {zone:<6} {event.get('detail', '')}".rstrip()
