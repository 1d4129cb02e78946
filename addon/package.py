"""Build the add-on: `install DESTDIR [PYTHON]` lays out IPFire's file tree; `pak DESTDIR OUT` writes the
pakfire package (a tar of ROOTFILES, files.tar.xz, install.sh, uninstall.sh, update.sh and the meta file)
and, as IPFire's lfs/Config does, the meta file beside it.

Python packages IPFire does not ship (pyroute2, jinja2, markupsafe) are vendored under /usr/lib/zonevpn/vendor,
and everything is byte-compiled, by IPFire's Python 3.10 only: a .pyc or C extension built by another Python
is dead weight (or an ImportError) on the box. usr/lib/zonevpn/BUILD records the interpreter and machine.

pakfire extracts files.tar.xz with --preserve-permissions --numeric-owner, so the archive's owners and modes
are the box's: every member is normalised (root, 0755/0644, fixed mtime) whoever builds it, under any umask.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RELEASE = "1"
NEEDED = "3.10"  # IPFire 2.x runs CPython 3.10 (3.10.8); any 3.10.x has the same bytecode and ABI
NEEDED_TAG = "cpython-310"  # its .pyc tag, which also tells CPython from, say, PyPy
WEB = {"cgi-bin/zonevpn.cgi": "srv/web/ipfire/cgi-bin/zonevpn.cgi",
       "addon/menu/EX-zonevpn.menu": "var/ipfire/menu.d/EX-zonevpn.menu",
       "addon/lang/zonevpn.en.pl": "var/ipfire/addon-lang/zonevpn.en.pl",
       "addon/lang/zonevpn.de.pl": "var/ipfire/addon-lang/zonevpn.de.pl"}
# The only executables on the box; everything else is 0644 (a shared library needs no x bit to be loaded).
# The initscript is 0754 as IPFire's INSTALL_INITSCRIPT installs its own.
MODES = {"etc/rc.d/init.d/zonevpn": 0o754,
              "etc/rc.d/init.d/networking/red.up/50-zonevpn": 0o755,
              "usr/sbin/zonevpn": 0o755,
              "srv/web/ipfire/cgi-bin/zonevpn.cgi": 0o755,
              # IPFire's lang.pl (BuildCacheLang, run by update-lang-cache) sets add-on strings to 0004;
              # shipping them so keeps the installed tree equal to the package
              "var/ipfire/addon-lang/zonevpn.en.pl": 0o004,
              "var/ipfire/addon-lang/zonevpn.de.pl": 0o004}
SCRIPTS = ("install.sh", "uninstall.sh", "update.sh")


class BuildError(Exception):
    """A refusal to build, with the reason for whoever ran make."""


class Interpreter(NamedTuple):
    path: str
    version: str  # 3.10.13
    tag: str  # cpython-310: the .pyc tag
    soabi: str  # cpython-310-x86_64-linux-gnu: the C extension tag
    machine: str  # x86_64


def version() -> str:
    sys.path.insert(0, os.path.join(REPO, "lib"))
    import zonevpn

    return zonevpn.__version__


def rootfiles(path: str = os.path.join(HERE, "ROOTFILES")) -> list[str]:
    """ROOTFILES: our files, plus the web page's when it is part of the tree. Blank lines and `#` lines are
    not entries: IPFire's rootfiles comment out files that way and pakfire drops them (grep -v "^#")."""
    with open(path) as handle:
        entries = [line.strip() for line in handle]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    return entries + [target for source, target in WEB.items() if os.path.exists(os.path.join(REPO, source))]


def interpreter(python: str) -> Interpreter:
    """Ask the build interpreter itself (it need not be the one running this script) and refuse anything but
    3.10, before anything is written."""
    path = shutil.which(python) or python
    code = ("import json, platform, sys, sysconfig; print(json.dumps([platform.python_version(), "
            "sys.implementation.cache_tag, sysconfig.get_config_var('SOABI'), platform.machine()]))")
    try:
        found = Interpreter(path, *json.loads(subprocess.run([path, "-c", code], capture_output=True, text=True,
                                                                 check=True).stdout))
    except (OSError, subprocess.CalledProcessError, ValueError) as error:
        raise BuildError(f"cannot run the build interpreter {path}: {error}") from error
    if found.tag != NEEDED_TAG:
        raise BuildError(f"IPFire runs CPython {NEEDED}, but the build interpreter {path} is "
                         f"Python {found.version}; its .pyc and C extensions would not load there. Build with "
                         f"a 3.10 interpreter: make pak PY_BASE=/path/to/python3.10")
    return found


def vendor_dir(python: Interpreter) -> str:
    """build/vendor-<key>, keyed on what decides its bytes: the requirements, the interpreter's ABI and the
    machine (markupsafe's speedups are a C extension)."""
    with open(os.path.join(REPO, "requirements.txt"), "rb") as handle:
        key = hashlib.sha256(handle.read() + f"\0{python.soabi}\0{python.machine}".encode()).hexdigest()[:12]
    return os.path.join(REPO, "build", f"vendor-{key}")


def vendor(python: Interpreter) -> str:
    """pip-installed once per vendor_dir."""
    target = vendor_dir(python)
    if os.path.isdir(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # A private temporary directory: another build may fill the same cache at the same time.
    scratch = tempfile.mkdtemp(prefix=os.path.basename(target) + ".", dir=os.path.dirname(target))
    try:
        subprocess.run([python.path, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                        "--target", scratch, "-r", os.path.join(REPO, "requirements.txt")], check=True)
        for junk in os.listdir(scratch):
            if junk.endswith(".dist-info") or junk == "bin":
                shutil.rmtree(os.path.join(scratch, junk))
        os.rename(scratch, target)
    except subprocess.CalledProcessError as error:
        raise BuildError(f"pip could not vendor requirements.txt with {python.path}") from error
    except OSError:
        if not os.path.isdir(target):  # else the other build won the race, and its copy is as good
            raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def mode(rel: str, kind: bytes) -> int:
    """The mode the box gets for a path, whatever the checkout's modes and the builder's umask were."""
    if kind == tarfile.DIRTYPE:
        return 0o755
    if kind == tarfile.SYMTYPE:
        return 0o777
    return MODES.get(rel, 0o644)


def _kind(path: str) -> bytes:
    if os.path.islink(path):
        return tarfile.SYMTYPE
    return tarfile.DIRTYPE if os.path.isdir(path) else tarfile.REGTYPE


def normalise_tree(destdir: str, entries: list[str]) -> None:
    """Give the installed tree the box's modes too (only our entries: DESTDIR may be a real root)."""
    for entry in entries:
        top = os.path.join(destdir, entry)
        paths = [top] + [os.path.join(base, name) for base, dirs, files in os.walk(top) for name in dirs + files]
        for path in paths:
            if not os.path.islink(path):
                os.chmod(path, mode(os.path.relpath(path, destdir), _kind(path)))


def _copy(source: str, dest: str) -> None:
    if os.path.lexists(dest):
        shutil.rmtree(dest) if os.path.isdir(dest) and not os.path.islink(dest) else os.remove(dest)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(source, dest)


def build_info(destdir: str, python: Interpreter) -> str:
    """usr/lib/zonevpn/BUILD: which Python and machine the compiled parts are for (IPFire has one package
    repository per architecture; this package belongs only in the one named here)."""
    lib = os.path.join(destdir, "usr/lib/zonevpn")
    extensions = sorted(os.path.relpath(os.path.join(base, name), lib) for base, _, names in os.walk(lib)
                        for name in names if name.endswith(".so"))
    return (f"python: {python.version} ({python.tag})\nmachine: {python.machine}\nabi: {python.soabi}\n"
            + "".join(f"extension: {name}\n" for name in extensions))


def compile_tree(destdir: str, python: Interpreter) -> None:
    """Hash-checked .pyc: the archive's mtimes are normalised, so timestamp .pyc would be stale on the box and
    recompiled at every import by the CGI user, who cannot write them back. Reproducible bytes: a fixed hash
    seed (set constants are marshalled in hash order), /usr/lib/... as the recorded path, and one process (3.10's
    marshal flags objects by refcount, which differs with what a -j worker compiled before; serial is faster)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run([python.path, "-m", "compileall", "-q", "--invalidation-mode", "checked-hash",
                    "-s", destdir, "-p", "/", os.path.join(destdir, "usr/lib/zonevpn")],
                   check=True, stdout=subprocess.DEVNULL, env=env)


def _lay_out(destdir: str, python: Interpreter) -> None:
    put = [(os.path.join(REPO, "initscripts", "zonevpn"), "etc/rc.d/init.d/zonevpn"),
           (os.path.join(REPO, "initscripts", "red.up-50-zonevpn"), "etc/rc.d/init.d/networking/red.up/50-zonevpn"),
           (os.path.join(HERE, "zonevpn.launcher"), "usr/sbin/zonevpn"),
           (os.path.join(REPO, "lib", "zonevpn"), "usr/lib/zonevpn/zonevpn"),
           (vendor(python), "usr/lib/zonevpn/vendor")]
    put += [(os.path.join(REPO, src), dst) for src, dst in WEB.items() if os.path.exists(os.path.join(REPO, src))]
    for source, rel in put:
        _copy(source, os.path.join(destdir, rel))
    link = os.path.join(destdir, "etc/rc.d/rc3.d/S19zonevpn")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        os.symlink("../init.d/zonevpn", link)
    backup = os.path.join(destdir, "var/ipfire/backup/addons/includes/zonevpn")
    os.makedirs(os.path.dirname(backup), exist_ok=True)
    with open(backup, "w") as handle:
        handle.write("/var/ipfire/zonevpn/settings\n")
    with open(os.path.join(destdir, "usr/lib/zonevpn/BUILD"), "w") as handle:
        handle.write(build_info(destdir, python))


def install(destdir: str, python: str) -> None:
    destdir = os.path.abspath(destdir)
    found = interpreter(python)  # first: a refused build writes nothing
    fresh = not os.path.exists(destdir)
    try:
        _lay_out(destdir, found)
        compile_tree(destdir, found)
        normalise_tree(destdir, rootfiles())
    except BaseException:
        if fresh:  # no half-built tree for `make pak` to package later
            shutil.rmtree(destdir, ignore_errors=True)
        raise


def epoch() -> int:
    """The one mtime of every member (reproducible builds): SOURCE_DATE_EPOCH, else the last commit's time."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        out = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%ct"], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)
    except (OSError, ValueError):
        return 0


def _owned(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = mtime
    return info


def files_xz(destdir: str, entries: list[str], mtime: int) -> bytes:
    """files.tar.xz, pax like IPFire's TAR_OPTIONS; tarfile walks directories in sorted order."""
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        if not (info.isreg() or info.isdir() or info.issym()):
            raise BuildError(f"{info.name}: only files, directories and symlinks belong in the package")
        info.mode = mode(info.name, info.type)
        return _owned(info, mtime)

    missing = [entry for entry in entries if not os.path.lexists(os.path.join(destdir, entry))]
    if missing:
        raise BuildError(f"ROOTFILES entries missing from {destdir}: {', '.join(missing)}")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz", format=tarfile.PAX_FORMAT) as inner:
        for entry in entries:
            inner.add(os.path.join(destdir, entry), arcname=entry, filter=normalise)
    return data.getvalue()


def outer_tar(members: list[tuple[str, bytes, int]], mtime: int) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, perm in members:
            info = _owned(tarfile.TarInfo(name), mtime)
            info.size, info.mode = len(content), perm
            tar.addfile(info, io.BytesIO(content))
    return data.getvalue()


def meta(size: int) -> str:
    with open(os.path.join(HERE, "meta.in")) as handle:
        text = handle.read()
    return text.replace("@VERSION@", version()).replace("@RELEASE@", RELEASE).replace("@SIZE@", str(size))


def package(members: list[tuple[str, bytes, int]], mtime: int) -> tuple[bytes, str]:
    """IPFire's CREATE_META writes `Size: $(stat --format=%s PACKAGE)`: the .ipfire file's size in bytes
    (pakfire shows it as the download size), and the meta file lives beside the package on the mirror, not in
    it. zonevpn-installer installs a local file without a mirror, so the package carries a copy of the meta
    too; its Size must then count itself. tar pads to 10 KiB records, so the size settles in two rounds."""
    size = 0
    for _ in range(8):
        text = meta(size)
        data = outer_tar(members + [("meta-zonevpn", text.encode(), 0o644)], mtime)
        if len(data) == size:
            return data, text
        size = len(data)
    raise BuildError("the package size does not settle")


def pak(destdir: str, out: str, rootfiles_path: str = os.path.join(HERE, "ROOTFILES")) -> None:
    entries, mtime = rootfiles(rootfiles_path), epoch()
    members = [("ROOTFILES", ("\n".join(entries) + "\n").encode(), 0o644),
               ("files.tar.xz", files_xz(destdir, entries, mtime), 0o644)]
    for script in SCRIPTS:
        with open(os.path.join(HERE, script), "rb") as handle:
            members.append((script, handle.read(), 0o755))
    data, text = package(members, mtime)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "wb") as handle:
        handle.write(data)
    with open(os.path.join(os.path.dirname(os.path.abspath(out)), "meta-zonevpn"), "w") as handle:
        handle.write(text)
    print(f"{out}: {len(data)} bytes, {len(entries)} ROOTFILES entries; meta-zonevpn beside it")


def main(argv: list[str]) -> None:
    try:
        if argv[1] == "install":
            install(argv[2], argv[3] if len(argv) > 3 else sys.executable)
        elif argv[1] == "pak":
            pak(argv[2], argv[3])
        elif argv[1] == "name":
            print(f"zonevpn-{version()}-{RELEASE}.ipfire")
    except BuildError as error:
        sys.exit(f"package.py: {error}")


if __name__ == "__main__":
    main(sys.argv)
