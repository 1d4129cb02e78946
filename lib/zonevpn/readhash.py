"""IPFire's KEY=VALUE settings format (readhash / General::readhash / writehash)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from typing import TypeVar

from zonevpn.errors import InputError

R = TypeVar("R")

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PLAIN = re.compile(r"[A-Za-z0-9=/,.:%_@#+-]*\Z")
_QUOTED = re.compile(r"'[A-Za-z0-9=/,.:%_@#+ -]*'\Z")


def lines(text: str) -> list[str]:
    """Split as IPFire's Perl and sed do: on \n only (str.splitlines also splits on \r, \x0b, \x1c...)."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def keyed_rows(path: str, text: str, parse: Callable[[str, int, str], R], key: Callable[[R], int],
               field: str, comments: bool = False) -> dict[int, R]:
    """CSV rows keyed by a number, as IPFire's CGIs write them (peers, writehasharray files): blank lines
    (and `#` lines where the format has them) are skipped; a key given twice names both lines."""
    rows: dict[int, R] = {}
    for number, raw in enumerate(lines(text), start=1):
        if not raw.strip() or (comments and raw.lstrip().startswith("#")):
            continue
        row = parse(path, number, raw)
        if key(row) in rows:
            raise InputError(path, f"{field} {key(row)} already on line {getattr(rows[key(row)], 'line', '?')}",
                             number, field)
        rows[key(row)] = row
    return rows


def parse_lenient(text: str) -> dict[str, tuple[str, int]]:
    """What IPFire's own readhash keeps: valid lines only, the rest silently dropped (last key wins).

    Returns key -> (value, line), the line kept so that errors about a value can point at it."""
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(lines(text), start=1):
        key, sep, value = raw.partition("=")
        if sep and _KEY.match(key) and (_PLAIN.match(value) or _QUOTED.match(value)):
            values[key] = (value[1:-1] if value.startswith("'") else value, number)
    return values


def parse_strict(text: str, path: str) -> dict[str, tuple[str, int]]:
    """zonevpn's own files: every line must be valid, no key twice. Returns key -> (value, line)."""
    values: dict[str, tuple[str, int]] = {}
    for number, raw in enumerate(lines(text), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        key, sep, value = raw.partition("=")
        if not sep or not _KEY.match(key):
            raise InputError(path, f"not a KEY=VALUE line: {raw[:60]!r}", line=number)
        if not (_PLAIN.match(value) or _QUOTED.match(value)):
            raise InputError(path, f"value has characters IPFire's readhash drops: {value[:60]!r}",
                             line=number, field=key)
        if key in values:
            raise InputError(path, f"duplicate key (first on line {values[key][1]})",
                             line=number, field=key)
        values[key] = (value[1:-1] if value.startswith("'") else value, number)
    return values


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # no \r translation: as Perl reads
            return handle.read()
    except FileNotFoundError:
        raise InputError(path, "file is missing") from None
    except UnicodeDecodeError as err:
        raise InputError(path, f"not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise InputError(path, f"cannot read: {err.strerror}") from None


def format_hash(values: dict[str, str]) -> str:
    lines = []
    for key, value in values.items():
        if not _KEY.match(key) or not _PLAIN.match(value):
            raise ValueError(f"cannot store {key}={value!r} in readhash format")
        lines.append(f"{key}={value}\n")
    return "".join(lines)


def write_keeping_owner(path: str, text: str, like: str | None = None) -> None:
    """write_atomic, keeping the file's owner and mode: files the web page (the user `nobody`) and root both
    write must stay the page's. A new file takes them from `like` (a file beside it), else 0644 root."""
    owner, mode = None, 0o644
    for source in (path, like):
        if not source:
            continue
        try:
            st = os.stat(source)
        except FileNotFoundError:
            continue
        owner, mode = (st.st_uid, st.st_gid), st.st_mode & 0o777
        break
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, text, mode=mode, owner=owner if owner and os.geteuid() == 0 else None)


def write_atomic(path: str, text: str, mode: int = 0o644, owner: tuple[int, int] | None = None) -> None:
    """Temp file in the same directory, fsync, rename: a crash or full disk leaves the old file whole."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".zonevpn-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
