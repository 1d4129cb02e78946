"""The package on an IPFire box (tests/ipfire_box.py): installed, upgraded and removed by the README's own
command, `zonevpn-installer`, through IPFire's real pakfire functions.sh, backup.pl, initscript functions
and the setuid addonctrl compiled from IPFire's source. Each test names the defect of issue 9 it proves."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import uuid

import pytest

from ipfire_box import IPFireBox, unavailable

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "")
# What IPFire itself keeps after an uninstall: pakfire's add-on backup of the settings (restored by a later
# install, IPFire's convention) and the installer's logs.
KEPT_BY_DESIGN = ("var/ipfire/backup/addons/backup/zonevpn.ipf", "var/log/pakfire-zonevpn-")
WATCHED = ("etc", "opt", "srv", "usr/sbin", "usr/lib/zonevpn", "var/ipfire", "var/cache/pakfire", "run")


@pytest.fixture
def box(package):
    ns = f"zvpkg-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with IPFireBox(ns) as built:
            for rel, text in (("var/ipfire/ethernet/settings", "GREEN_DEV=green0\nGREEN_ADDRESS=192.168.1.1\n"
                               "GREEN_NETADDRESS=192.168.1.0\nGREEN_NETMASK=255.255.255.0\n"),
                              ("var/ipfire/wireguard/peers", ""), ("var/ipfire/wireguard/settings", "ENABLED=off\n"),
                              ("var/ipfire/red/iface", "red0")):
                built.write(rel, text)
            built.copy(os.path.join(REPO, "addon/zonevpn-installer"), "root/zonevpn-installer", 0o755)
            built.copy(package, f"root/{os.path.basename(package)}", 0o644)
            built.package = f"/root/{os.path.basename(package)}"  # type: ignore[attr-defined]
            yield built
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def installer(box: IPFireBox, *args: str) -> subprocess.CompletedProcess[str]:
    result = box.run("/root/zonevpn-installer", *args, check=False)
    for word in ("install.sh", "init.d/zonevpn"):  # start_service --background: the start it left running
        box.wait_for_exit(word)
    return result


def snapshot(box: IPFireBox) -> dict[str, str]:
    tree = {}
    for top in WATCHED:
        for base, dirs, files in os.walk(box.path(top)):
            for name in dirs + files:
                path = os.path.join(base, name)
                rel = os.path.relpath(path, box.root)
                if rel.startswith(KEPT_BY_DESIGN) or "__pycache__" in rel:
                    continue
                st = os.lstat(path)
                if os.path.islink(path):
                    tree[rel] = "-> " + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as handle:
                        digest = hashlib.sha256(handle.read()).hexdigest()
                    tree[rel] = f"{digest} {oct(st.st_mode)} {st.st_uid}:{st.st_gid}"
                else:
                    tree[rel] = f"dir {oct(st.st_mode)}"
    return tree


def members(package: str) -> list[tarfile.TarInfo]:
    with tarfile.open(package) as outer:
        inner = tarfile.open(fileobj=outer.extractfile("files.tar.xz"), mode="r:xz")  # type: ignore[arg-type]
        return inner.getmembers()


def test_install_puts_every_file_with_the_packages_owner_and_mode_and_registers_the_service(box):
    """Defect 1: the installer installed nothing and said it worked."""
    before = snapshot(box)
    result = installer(box, "install", box.package)
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = []
    for info in members(box.path(box.package)):
        st = os.lstat(box.path(info.name))
        if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (info.mode, info.uid, info.gid):
            wrong.append((info.name, oct(st.st_mode & 0o7777), st.st_uid, oct(info.mode), info.uid))
    assert wrong == []
    assert os.path.exists(box.path("opt/pakfire/db/installed/meta-zonevpn"))
    entries = box.read("opt/pakfire/db/rootfiles/zonevpn").split()
    added = [p for p in snapshot(box) if p not in before and not p.startswith(
        ("opt/pakfire/db", "var/cache/pakfire", "var/ipfire/zonevpn", "var/lib/zonevpn", "run/"))]
    assert [p for p in added if not any(p == e or p.startswith(e + "/") or e.startswith(p + "/")
                                        for e in entries)] == []  # the installed tree is ROOTFILES
    assert box.read("opt/pakfire/db/rootfiles/zonevpn").split() == [
        line for line in box.read("opt/pakfire/db/rootfiles/zonevpn").split() if not line.startswith("#")]
    assert os.listdir(box.path("opt/pakfire/tmp")) == []
    assert box.read("var/ipfire/zonevpn/settings") == "ENABLED=off\n"
    assert os.stat(box.path("var/ipfire/zonevpn/settings")).st_uid == _nobody()
    assert "zonevpn-hook" in box.read("etc/rc.d/init.d/wireguard")
    status = box.run("/usr/local/bin/addonctrl", "zonevpn", "status", check=False)  # IPFire's real helper
    assert "zonevpn is not running (disabled)." in status.stdout, status


def test_a_broken_package_fails_loudly_and_records_nothing(box, tmp_path):
    """Defect 1: a failing step must exit non-zero with nothing recorded; a stale files* in pakfire's tmp
    is never extracted instead of the package."""
    broken = tmp_path / "zonevpn-0.1.0-1.ipfire"
    with tarfile.open(box.path(box.package)) as outer, tarfile.open(broken, "w") as out:
        for info in outer.getmembers():
            data = outer.extractfile(info).read()  # type: ignore[union-attr]
            if info.name == "files.tar.xz":
                data = data[: len(data) // 2]  # truncated in transfer
            info.size = len(data)
            out.addfile(info, __import__("io").BytesIO(data))
    box.copy(str(broken), "root/broken.ipfire", 0o644)
    box.write("opt/pakfire/tmp/files.tar.xz", b"stale")
    result = installer(box, "install", "/root/broken.ipfire")
    assert result.returncode != 0
    assert "failed" in result.stderr or "differ" in result.stderr, result.stderr
    assert not os.path.exists(box.path("opt/pakfire/db/installed/meta-zonevpn"))
    assert not os.path.exists(box.path("opt/pakfire/db/rootfiles/zonevpn"))


def test_upgrade_keeps_the_admins_current_settings_not_an_old_backup(box):
    """Defect 2: installing over an installed zonevpn restored the .ipf of an earlier uninstall."""
    assert installer(box, "install", box.package).returncode == 0
    box.run("/usr/local/bin/backupctrl", "addonbackup", "zonevpn")  # an old backup: ENABLED=off
    current = "ENABLED=off\nBLUE_TUNNEL=\nGREEN_KILLSWITCH=on\n# the admin's own words stay too\n"
    box.write("var/ipfire/zonevpn/settings", current)
    result = installer(box, "install", box.package)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "update of" in result.stdout
    assert box.read("var/ipfire/zonevpn/settings") == current


def test_uninstall_gives_the_box_back_byte_for_byte(box):
    """Defects 10 and 12: the documented removal works, `addonctrl zonevpn disable` leaves nothing."""
    before = snapshot(box)
    assert installer(box, "install", box.package).returncode == 0
    once = snapshot(box)
    assert installer(box, "install", box.package).returncode == 0  # again: an upgrade to itself
    assert {k: v for k, v in snapshot(box).items() if k != "var/ipfire/zonevpn/settings"} == {
        k: v for k, v in once.items() if k != "var/ipfire/zonevpn/settings"}
    disable = box.run("/usr/local/bin/addonctrl", "zonevpn", "disable", check=False)
    assert os.path.lexists(box.path("etc/rc.d/rc3.d/off/S19zonevpn")), disable
    result = installer(box, "uninstall")
    assert result.returncode == 0, result.stdout + result.stderr
    after = snapshot(box)
    assert not os.path.lexists(box.path("etc/rc.d/rc3.d/off/S19zonevpn"))
    after.pop("etc/rc.d/rc3.d/off", None)  # addonctrl's own directory (made by any disable), kept as IPFire does
    assert {k: v for k, v in after.items() if before.get(k) != v} == {}
    assert {k: v for k, v in before.items() if after.get(k) != v} == {}


def _nobody() -> int:
    import pwd

    return pwd.getpwnam("nobody").pw_uid
