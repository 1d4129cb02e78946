"""One admin's read-check-write of zonevpn's settings at a time. Two tabs (or two admins) posting at the
same instant would both pass the policies' fingerprint check on the same file, and the second write would
silently drop the first one's change while both pages said "saved". The lock is the settings directory
itself (flock on a directory descriptor): no lock file is added to what IPFire backs up."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from zonevpn.paths import Paths


@contextmanager
def editing(paths: Paths) -> Iterator[None]:
    directory = os.path.dirname(paths.settings)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        yield  # no directory yet (first visit): the write that creates it has nobody to race with
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when closed, also if this process dies
        yield
    finally:
        os.close(fd)
