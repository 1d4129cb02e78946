"""The pakfire package: the installed tree is exactly ROOTFILES, the .ipfire holds the same files, install
twice = once, and install -> uninstall leaves the box byte for byte as before (IPFire's wireguard
initscript and firewall.local included). Runs the real install.sh/uninstall.sh through the installer,
inside a throwaway network namespace (uninstall calls `zonevpn flush`, which must not see the host)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import uuid

import pytest

from legacy_shim import make_shim

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs as root into a sandbox namespace")


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    out = tmp_path_factory.mktemp("pak")
    subprocess.run(["make", "-s", "pak"], cwd=REPO, check=True, capture_output=True)
    name = subprocess.run(["python3", "addon/package.py", "name"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.strip()
    shutil.copy(os.path.join(REPO, "build", name), out / name)
    return str(out / name)


@pytest.fixture
def box(tmp_path):
    """A sandbox root shaped like IPFire where zonevpn touches it, inside its own namespace."""
    root = tmp_path / "root"
    for rel in ("opt/pakfire/db/rootfiles", "opt/pakfire/db/installed", "opt/pakfire/tmp", "var/cache/pakfire",
                "etc/rc.d/init.d/networking/red.up", "etc/rc.d/rc3.d", "var/ipfire/zonevpn", "usr/sbin",
                "usr/lib", "run", "var/ipfire/backup/addons/includes", "opt/pakfire/lib", "srv/web/ipfire/cgi-bin",
                "var/ipfire/menu.d", "var/ipfire/addon-lang"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    shutil.copy(os.path.join(REPO, "tests/package/functions.sh"), root / "opt/pakfire/lib/functions.sh")
    shutil.copy(os.path.join(REPO, "tests/lab/ipfire/wireguard"), root / "etc/rc.d/init.d/wireguard")
    (root / "etc/sysconfig").mkdir()
    shutil.copy(os.path.join(REPO, "tests/lab/ipfire/firewall.local"), root / "etc/sysconfig/firewall.local")
    shutil.rmtree(root / "var/ipfire/zonevpn")
    for rel, text in (("var/ipfire/ethernet/settings", "GREEN_DEV=green0\n"), ("var/ipfire/wireguard/peers", "")):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    ns = f"zvpkg-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        yield str(root), ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)


def installer(box, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    root, ns = box
    shim = make_shim(os.path.join(os.path.dirname(root), "shim"))
    env = dict(os.environ, ROOT=root, PATH=f"{shim}:{os.environ['PATH']}")
    return subprocess.run(["ip", "netns", "exec", ns, os.path.join(REPO, "addon/zonevpn-installer"), *args],
                          env=env, capture_output=True, text=True)


def snapshot(root: str) -> dict[str, str]:
    tree = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            if rel == "services.log":
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    tree[rel] = hashlib.sha256(handle.read()).hexdigest() + oct(os.stat(path).st_mode)
            else:
                tree[rel] = os.readlink(path) if os.path.islink(path) else "dir"
    return tree


def covered(path: str, entries: list[str]) -> bool:
    return any(path == e or path.startswith(e + "/") or e.startswith(path + "/") for e in entries)


def test_installed_tree_is_exactly_rootfiles_and_the_package_holds_the_same(package, box):
    root, _ = box
    before = snapshot(root)
    result = installer(box, "install", package)
    assert result.returncode == 0, result.stderr
    entries = open(os.path.join(root, "opt/pakfire/db/rootfiles/zonevpn")).read().split()
    added = [p for p in snapshot(root) if p not in before and "__pycache__" not in p]
    ours = [p for p in added if not p.startswith(("opt/pakfire/db", "var/cache/pakfire", "var/ipfire/zonevpn"))]
    assert all(covered(p, entries) for p in ours), [p for p in ours if not covered(p, entries)]
    assert all(os.path.lexists(os.path.join(root, e)) for e in entries)
    with tarfile.open(package) as outer:
        assert sorted(outer.getnames()) == ["ROOTFILES", "files.tar.xz", "install.sh", "meta-zonevpn",
                                            "uninstall.sh", "update.sh"]
        inner = tarfile.open(fileobj=outer.extractfile("files.tar.xz"), mode="r:xz")
        names = [n for n in inner.getnames() if "__pycache__" not in n]
        meta = outer.extractfile("meta-zonevpn").read().decode()
    assert sorted(set(names) - set(before)) == sorted(p for p in ours if p in names)
    assert all(covered(n, entries) for n in names)
    assert "Services: zonevpn" in meta and "File: zonevpn-" in meta
    assert "zonevpn-hook" in open(os.path.join(root, "etc/rc.d/init.d/wireguard")).read()
    assert open(os.path.join(root, "var/ipfire/zonevpn/settings")).read() == "ENABLED=off\n"
    assert open(os.path.join(root, "services.log")).read() == "start --background zonevpn\n"


def test_install_twice_is_install_once_and_uninstall_gives_back_every_byte(package, box):
    root, _ = box
    before = snapshot(root)
    assert installer(box, "install", package).returncode == 0
    once = {k: v for k, v in snapshot(root).items() if "__pycache__" not in k}
    assert installer(box, "install", package).returncode == 0
    assert {k: v for k, v in snapshot(root).items() if "__pycache__" not in k} == once
    result = installer(box, "uninstall")
    assert result.returncode == 0, result.stderr
    assert snapshot(root) == before
