"""Build the add-on: `install DESTDIR` lays out IPFire's file tree; `pak DESTDIR OUT` writes the pakfire
package (a tar of ROOTFILES, files.tar.xz, install.sh, uninstall.sh, update.sh and the meta file).

Python packages IPFire does not ship (pyroute2, jinja2, markupsafe) are vendored under
/usr/lib/zonevpn/vendor, and everything is byte-compiled for IPFire's Python 3.10.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RELEASE = "1"
WEB = {"cgi-bin/zonevpn.cgi": "srv/web/ipfire/cgi-bin/zonevpn.cgi",
       "cgi-bin/zonevpn": "srv/web/ipfire/cgi-bin/zonevpn",
       "addon/menu/EX-zonevpn.menu": "var/ipfire/menu.d/EX-zonevpn.menu",
       "addon/lang/zonevpn.en.pl": "var/ipfire/addon-lang/zonevpn.en.pl",
       "addon/lang/zonevpn.de.pl": "var/ipfire/addon-lang/zonevpn.de.pl"}


def version() -> str:
    sys.path.insert(0, os.path.join(REPO, "lib"))
    import zonevpn

    return zonevpn.__version__


def rootfiles() -> list[str]:
    """ROOTFILES: our files, plus the web page's when it is part of the tree."""
    with open(os.path.join(HERE, "ROOTFILES")) as handle:
        entries = [line.strip() for line in handle if line.strip()]
    return entries + [target for source, target in WEB.items() if os.path.exists(os.path.join(REPO, source))]


def vendor(python: str) -> str:
    """pip-installed once per requirements.txt content, into build/vendor-<hash>."""
    with open(os.path.join(REPO, "requirements.txt"), "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    target = os.path.join(REPO, "build", f"vendor-{digest}")
    if not os.path.isdir(target):
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
                        "--target", target + ".tmp", "-r", os.path.join(REPO, "requirements.txt")], check=True)
        for junk in os.listdir(target + ".tmp"):
            if junk.endswith(".dist-info") or junk == "bin":
                shutil.rmtree(os.path.join(target + ".tmp", junk))
        os.rename(target + ".tmp", target)
    return target


def _copy(source: str, dest: str, mode: int | None = None) -> None:
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.isdir(source):
        shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    else:
        shutil.copy2(source, dest)
        if mode is not None:
            os.chmod(dest, mode)


def install(destdir: str, python: str) -> None:
    destdir = os.path.abspath(destdir)
    put = [(os.path.join(REPO, "initscripts", "zonevpn"), "etc/rc.d/init.d/zonevpn", 0o754),
           (os.path.join(REPO, "initscripts", "red.up-50-zonevpn"), "etc/rc.d/init.d/networking/red.up/50-zonevpn",
            0o755),
           (os.path.join(HERE, "zonevpn.launcher"), "usr/sbin/zonevpn", 0o755),
           (os.path.join(REPO, "lib", "zonevpn"), "usr/lib/zonevpn/zonevpn", None),
           (vendor(python), "usr/lib/zonevpn/vendor", None)]
    put += [(os.path.join(REPO, src), dst, None) for src, dst in WEB.items() if os.path.exists(os.path.join(REPO, src))]
    for source, rel, mode in put:
        target = os.path.join(destdir, rel)
        if os.path.lexists(target):
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
        _copy(source, target, mode)
    link = os.path.join(destdir, "etc/rc.d/rc3.d/S19zonevpn")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.lexists(link):
        os.symlink("../init.d/zonevpn", link)
    backup = os.path.join(destdir, "var/ipfire/backup/addons/includes/zonevpn")
    os.makedirs(os.path.dirname(backup), exist_ok=True)
    with open(backup, "w") as handle:
        handle.write("/var/ipfire/zonevpn/settings\n")
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", os.path.join(destdir, "usr/lib/zonevpn")],
                   check=True, stdout=subprocess.DEVNULL)


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def pak(destdir: str, out: str) -> None:
    entries = rootfiles()
    files = io.BytesIO()
    with tarfile.open(fileobj=files, mode="w:xz") as inner:
        for entry in entries:
            inner.add(os.path.join(destdir, entry), arcname=entry)
    size = sum(os.path.getsize(os.path.join(root, f)) for entry in entries
               for root, _, names in os.walk(os.path.join(destdir, entry)) for f in names)
    size += sum(os.path.getsize(os.path.join(destdir, e)) for e in entries if os.path.isfile(os.path.join(destdir, e)))
    with open(os.path.join(HERE, "meta.in")) as handle:
        meta = handle.read().replace("@VERSION@", version()).replace("@RELEASE@", RELEASE)
    meta = meta.replace("@SIZE@", str(size // 1024))
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with tarfile.open(out, "w") as tar:
        _add(tar, "ROOTFILES", ("\n".join(entries) + "\n").encode())
        _add(tar, "files.tar.xz", files.getvalue())
        _add(tar, "meta-zonevpn", meta.encode())
        for script in ("install.sh", "uninstall.sh", "update.sh"):
            with open(os.path.join(HERE, script), "rb") as handle:
                _add(tar, script, handle.read(), 0o755)
    print(f"{out}: {os.path.getsize(out)} bytes, {len(entries)} ROOTFILES entries, {size // 1024} KiB installed")


if __name__ == "__main__":
    if sys.argv[1] == "install":
        install(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else sys.executable)
    elif sys.argv[1] == "pak":
        pak(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "name":
        print(f"zonevpn-{version()}-{RELEASE}.ipfire")
