"""Building the pakfire package (addon/package.py) without root or a network namespace: the archive gives
the box root-owned files with fixed modes whoever built it and under any umask, the bytes are reproducible,
only CPython 3.10 builds it, the meta Size is the package file's size as IPFire's lfs/Config writes it, and
ROOTFILES comments stay out of the package."""

from __future__ import annotations

import glob
import importlib.util
import io
import os
import platform
import subprocess
import sys
import tarfile
from types import ModuleType

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCH = 1700000000
EXECUTABLE = {"etc/rc.d/init.d/zonevpn": 0o754, "etc/rc.d/init.d/networking/red.up/50-zonevpn": 0o755,
              "usr/sbin/zonevpn": 0o755, "srv/web/ipfire/cgi-bin/zonevpn.cgi": 0o755}
MODES = {**EXECUTABLE, "var/ipfire/addon-lang/zonevpn.en.pl": 0o004, "var/ipfire/addon-lang/zonevpn.de.pl": 0o004}
META_KEYS = ["Name", "Summary", "ProgVersion", "Release", "Size", "Dependencies", "File", "Services"]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("zonevpn_package", os.path.join(REPO, "addon/package.py"))
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


package = _load()


def _python(wanted: str) -> str | None:
    """An interpreter of the wanted major.minor: pyenv's (as the Makefile picks), or the system's."""
    for path in sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{wanted}*/bin/python3"))) + [
            "/usr/bin/python3", sys.executable]:
        probe = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.stdout.strip() == wanted:
            return path
    return None


PY310 = _python("3.10")
OTHER = _python("3.11") or _python("3.12")
needs_310 = pytest.mark.skipif(PY310 is None, reason="no Python 3.10 here (the Makefile uses pyenv's)")


def _install(destdir: str, umask: int) -> None:
    old = os.umask(umask)
    try:
        package.install(destdir, PY310)
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One tree built under umask 077 and owned by uid 1000 (as a user's build would be), and its package."""
    if PY310 is None:
        pytest.skip("no Python 3.10 here")
    base = tmp_path_factory.mktemp("pak")
    root, out = str(base / "root"), str(base / "out" / "zonevpn.ipfire")
    _install(root, 0o077)
    if os.geteuid() == 0:
        for top, dirs, files in os.walk(root):
            for name in dirs + files:
                os.lchown(os.path.join(top, name), 1000, 1000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
        package.pak(root, out)
    return root, out


def _members(out: str) -> tuple[list[tarfile.TarInfo], list[tarfile.TarInfo]]:
    with tarfile.open(out) as outer:
        inner_bytes = outer.extractfile("files.tar.xz").read()  # type: ignore[union-attr]
        outer_members = outer.getmembers()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes), mode="r:xz") as inner:
        return outer_members, inner.getmembers()


@needs_310
def test_every_member_is_root_owned_with_the_box_modes_whoever_built_it(built: tuple[str, str]) -> None:
    outer, inner = _members(built[1])
    for info in outer + inner:
        assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, "root", "root", EPOCH), info.name
    for info in inner:
        if info.isdir():
            assert info.mode == 0o755, info.name
        elif info.issym():
            assert info.name == "etc/rc.d/rc3.d/S19zonevpn" and info.linkname == "../init.d/zonevpn"
        else:
            assert info.isreg() and info.mode == MODES.get(info.name, 0o644), (info.name, oct(info.mode))
    assert {i.name: i.mode for i in inner if i.mode & 0o111 and i.isreg()} == EXECUTABLE
    assert {i.name: i.mode for i in outer} == {"ROOTFILES": 0o644, "files.tar.xz": 0o644, "meta-zonevpn": 0o644,
                                               "install.sh": 0o755, "uninstall.sh": 0o755, "update.sh": 0o755}


@needs_310
def test_the_package_is_reproducible(built: tuple[str, str], tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(EPOCH))
    again = str(tmp_path / "again.ipfire")
    package.pak(built[0], again)
    assert open(again, "rb").read() == open(built[1], "rb").read()
    # Another destdir and umask give the same compiled bytes (the .pyc record /usr/lib/..., not the build path).
    # Only the vendored part: lib/zonevpn may be edited by someone else between the two builds.
    other = str(tmp_path / "elsewhere" / "root")
    _install(other, 0o022)
    vendor = "usr/lib/zonevpn/vendor"
    for top, _, files in os.walk(os.path.join(built[0], vendor)):
        for name in files:
            rel = os.path.relpath(os.path.join(top, name), built[0])
            assert open(os.path.join(built[0], rel), "rb").read() == open(os.path.join(other, rel), "rb").read(), rel


@needs_310
def test_a_310_build_holds_only_cpython_310_code_and_says_for_which_machine(built: tuple[str, str]) -> None:
    _, inner = _members(built[1])
    pycs = [i.name for i in inner if i.name.endswith(".pyc")]
    sos = [i.name for i in inner if i.name.endswith(".so")]
    assert pycs and all(name.endswith(".cpython-310.pyc") for name in pycs)
    assert sos and all(".cpython-310-" in name for name in sos)
    # Hash-checked .pyc: the archive's fixed mtimes would make timestamp .pyc stale on the box.
    with open(os.path.join(built[0], pycs[0]), "rb") as handle:
        assert int.from_bytes(handle.read(8)[4:8], "little") == 0b11
    build = open(os.path.join(built[0], "usr/lib/zonevpn/BUILD")).read()
    assert "(cpython-310)" in build and f"machine: {platform.machine()}\n" in build
    assert all(f"extension: {os.path.relpath(so, 'usr/lib/zonevpn')}\n" in build for so in sos)
    assert "usr/lib/zonevpn/BUILD" in [i.name for i in inner]


@pytest.mark.skipif(OTHER is None, reason="no Python but 3.10 here")
def test_another_python_is_refused_clearly_and_writes_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, other = tmp_path / "root", str(OTHER)
    result = subprocess.run([sys.executable, os.path.join(REPO, "addon/package.py"), "install", str(root), other],
                            capture_output=True, text=True, cwd=REPO)
    found = subprocess.run([other, "-c", "import platform; print(platform.python_version())"],
                           capture_output=True, text=True).stdout.strip()
    assert result.returncode != 0
    assert "Python 3.10" in result.stderr.replace("CPython", "Python") and found in result.stderr
    assert other in result.stderr and "Traceback" not in result.stderr
    assert not root.exists()


def test_the_vendor_cache_is_per_requirements_interpreter_and_machine() -> None:
    def interp(soabi: str, machine: str) -> object:
        return package.Interpreter("/p", "3.10.8", "cpython-310", soabi, machine)

    keys = {package.vendor_dir(interp("cpython-310-x86_64-linux-gnu", "x86_64")),
            package.vendor_dir(interp("cpython-311-x86_64-linux-gnu", "x86_64")),
            package.vendor_dir(interp("cpython-310-aarch64-linux-gnu", "aarch64"))}
    assert len(keys) == 3 and all(os.path.basename(k).startswith("vendor-") for k in keys)


@needs_310
def test_meta_size_is_the_package_files_size_as_ipfire_writes_it(built: tuple[str, str]) -> None:
    beside = open(os.path.join(os.path.dirname(built[1]), "meta-zonevpn")).read()
    with tarfile.open(built[1]) as outer:
        inside = outer.extractfile("meta-zonevpn").read().decode()  # type: ignore[union-attr]
    assert inside == beside
    lines = beside.splitlines()
    assert [line.split(":", 1)[0] for line in lines] == META_KEYS
    assert f"Size: {os.path.getsize(built[1])}" in lines  # bytes of the .ipfire, as `stat --format=%s` gives


@needs_310
def test_rootfiles_comments_and_blank_lines_are_not_entries(built: tuple[str, str], tmp_path) -> None:  # type: ignore[no-untyped-def]
    listing = tmp_path / "ROOTFILES"
    listing.write_text("# zonevpn's files\n\netc/rc.d/init.d/zonevpn\n   \n#usr/lib/zonevpn\n  # indented\n"
                       "usr/sbin/zonevpn\n")
    entries = package.rootfiles(str(listing))
    assert entries[:2] == ["etc/rc.d/init.d/zonevpn", "usr/sbin/zonevpn"]
    assert all(entry and not entry.lstrip().startswith("#") for entry in entries)
    out = str(tmp_path / "out.ipfire")
    package.pak(built[0], out, str(listing))
    with tarfile.open(out) as outer:
        shipped = outer.extractfile("ROOTFILES").read().decode().splitlines()  # type: ignore[union-attr]
    assert shipped == entries
    assert sorted({m.name.split("/")[0] for m in _members(out)[1]}) == sorted({e.split("/")[0] for e in entries})
