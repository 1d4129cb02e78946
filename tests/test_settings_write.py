"""Writing zonevpn's settings is atomic: a full disk or a crash mid-write leaves the old file whole."""

from __future__ import annotations

import os
import subprocess

import pytest

from zonevpn.model import Binding, Settings
from zonevpn.paths import Paths
from zonevpn.readhash import write_atomic
from zonevpn.settings import read_settings, write_settings

OLD = "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_KILLSWITCH=on\n"


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB tmpfs: the disk-full case with the kernel's own ENOSPC, no mock."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_round_trip_keeps_every_binding(tmp_path):
    paths = Paths(str(tmp_path))
    want = Settings(True, (Binding("GREEN", None, True), Binding("BLUE", 3, False),
                           Binding("ORANGE", 5, True)))
    write_settings(paths, want)
    assert read_settings(paths) == want


def test_disk_full_leaves_the_old_settings_intact(tiny_disk):
    paths = Paths(str(tiny_disk))
    os.makedirs(os.path.dirname(paths.settings))
    with open(paths.settings, "w") as handle:
        handle.write(OLD)
    with open(tiny_disk / "filler", "wb", buffering=0) as filler:  # fill the disk to the last block
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OSError):
        write_atomic(paths.settings, "ENABLED=off\n" * 5000)
    assert _text(paths.settings) == OLD
    assert sorted(os.listdir(os.path.dirname(paths.settings))) == ["settings"]  # no temp file left


def test_a_crash_before_rename_leaves_the_old_settings_intact(tmp_path):
    """A writer killed between write and rename: run one in a child and SIGKILL it there."""
    paths = Paths(str(tmp_path))
    os.makedirs(os.path.dirname(paths.settings))
    with open(paths.settings, "w") as handle:
        handle.write(OLD)
    code = ("import os, sys, signal; sys.path.insert(0, 'lib'); import zonevpn.readhash as r;"
            "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL);"
            f"r.write_atomic({paths.settings!r}, 'ENABLED=off\\n')")
    child = subprocess.run(["python3", "-c", code], cwd=os.path.dirname(os.path.dirname(__file__)))
    assert child.returncode == -9
    assert _text(paths.settings) == OLD


def _text(path: str) -> str:
    with open(path) as handle:
        return handle.read()
