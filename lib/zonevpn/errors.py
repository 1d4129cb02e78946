"""Errors that name the file, line and field, and the exit code each maps to (in one place)."""

from __future__ import annotations

# Exit codes of the `zonevpn` command; documented in README.md.
EXIT_OK = 0
EXIT_INPUT = 2  # bad or missing input: nothing was changed
EXIT_APPLY = 3  # the kernel refused a change: see the log; kill-switch blocks are kept
EXIT_DRIFT = 4  # `status`/`check`: the kernel is not what the settings ask for
EXIT_LOCKED = 5  # another zonevpn run held the lock for too long


class ZonevpnError(Exception):
    exit_code = EXIT_APPLY


class InputError(ZonevpnError):
    """Bad input. Carries where it is, so an admin can go straight to it."""

    exit_code = EXIT_INPUT

    def __init__(self, path: str, message: str, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field, self.message = path, line, field, message
        where = path + (f":{line}" if line is not None else "")
        what = f" field {field}:" if field else ""
        super().__init__(f"{where}:{what} {message}")


class ApplyError(ZonevpnError):
    exit_code = EXIT_APPLY


class LockTimeout(ZonevpnError):
    exit_code = EXIT_LOCKED
