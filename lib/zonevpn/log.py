"""Log lines to syslog (tag `zonevpn`) and stderr, and the `[#] ip ...` change lines an admin reads."""

from __future__ import annotations

import sys
import syslog


class Log:
    def __init__(self, quiet: bool = False, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.quiet, self.stream = quiet, stream
        syslog.openlog("zonevpn", syslog.LOG_PID, syslog.LOG_DAEMON)

    def _emit(self, priority: int, text: str, always: bool = False) -> None:
        syslog.syslog(priority, text)
        if always or not self.quiet:
            print(text, file=self.stream or sys.stderr, flush=True)

    def change(self, text: str) -> None:
        self._emit(syslog.LOG_NOTICE, f"[#] {text}")

    def info(self, text: str) -> None:
        self._emit(syslog.LOG_INFO, text)

    def warning(self, text: str) -> None:
        self._emit(syslog.LOG_WARNING, f"warning: {text}", always=True)

    def error(self, text: str) -> None:
        self._emit(syslog.LOG_ERR, f"error: {text}", always=True)
