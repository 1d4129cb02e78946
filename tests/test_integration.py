"""The hooks in IPFire's real scripts (../shared/ipfire): inserted once, run once per event on every path the
script takes, keep its exit status, and come out leaving the file byte for byte as it was. The scripts run
for real in an IPFire box (tests/ipfire_box.py); `zonevpn` there is a recorder that logs how it is called."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from ipfire_box import REPO, SHARED, IPFireBox, unavailable
from zonevpn import integration
from zonevpn.log import Log
from zonevpn.paths import Paths

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "")
CALLS = "run/zonevpn-calls"


def real(rel: str) -> str:
    with open(os.path.join(SHARED, rel), encoding="utf-8") as handle:
        return handle.read()


WIREGUARD = real("src/initscripts/system/wireguard")
FIREWALL_LOCAL = real("src/initscripts/sysconfig/firewall.local")


@pytest.fixture(scope="module")
def shared_box():
    ns = f"zvint-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with IPFireBox(ns) as built:
            built.write("var/ipfire/wireguard/settings", "ENABLED=off\n")
            built.write("var/ipfire/wireguard/peers", "")
            built.write("var/ipfire/ethernet/settings", "GREEN_DEV=green0\nRED_TYPE=STATIC\n")
            built.write("var/ipfire/red/iface", "red0")
            for rel in ("var/ipfire/optionsfw/settings", "var/ipfire/ppp/settings", "var/ipfire/dns/settings"):
                built.write(rel, "")
            yield built
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


@pytest.fixture
def box(shared_box):
    """IPFire's pristine files again, and the recorder in place of zonevpn."""
    shared_box.write("etc/rc.d/init.d/wireguard", WIREGUARD, 0o754)
    shared_box.write("etc/sysconfig/firewall.local", FIREWALL_LOCAL, 0o755)
    shared_box.write("usr/sbin/zonevpn", f'#!/bin/sh\necho "$*" >> /{CALLS}\n', 0o755)
    shared_box.write(CALLS, "")
    return shared_box


def calls(box: IPFireBox) -> list[str]:
    return box.read(CALLS).splitlines()


def test_install_twice_equals_once_and_remove_restores_every_byte(box):
    paths = Paths(box.root)
    before = {p: open(p, "rb").read() for p in (paths.wg_initscript, paths.firewall_local)}
    assert integration.install(paths, Log(quiet=True)) == 2
    once = {p: open(p, "rb").read() for p in before}
    assert integration.install(paths, Log(quiet=True)) == 0
    assert {p: open(p, "rb").read() for p in before} == once
    assert integration.problems(paths) == []
    integration.remove(paths, Log(quiet=True))
    assert {p: open(p, "rb").read() for p in before} == before
    assert os.stat(paths.wg_initscript).st_mode & 0o777 == 0o754


def test_one_wireguard_event_is_one_run_on_every_path_and_keeps_the_exit_status(box):
    """Issue 9 defect 14: `restart` (stop; sleep 1; start as children) ran zonevpn three times."""
    integration.install(Paths(box.root), Log(quiet=True))
    script = "/etc/rc.d/init.d/wireguard"
    assert box.run(script, "start", check=False).returncode == 0  # ENABLED=off: its early exit
    assert box.run(script, "stop", check=False).returncode == 0
    assert box.run(script, "restart", check=False).returncode == 0
    assert box.run(script, "bogus", check=False).returncode == 1  # its failure stays its failure
    assert calls(box) == ["hook wireguard start", "hook wireguard stop", "hook wireguard restart",
                          "hook wireguard bogus"]


@pytest.mark.parametrize(("command", "runs"), [
    (("/etc/sysconfig/firewall.local", "start"), ["hook firewall start"]),
    (("/etc/sysconfig/firewall.local", "stop"), []),
    (("/etc/sysconfig/firewall.local", "reload"), ["hook firewall reload"]),  # it runs $0 stop and $0 start
    (("/etc/rc.d/init.d/firewall", "start"), ["hook firewall reload"]),  # IPFire's: firewallctrl -> rules.pl
    (("/etc/rc.d/init.d/firewall", "restart"), ["hook firewall reload"]),
    (("/etc/rc.d/init.d/firewall", "reload"), ["hook firewall reload"]),
])
def test_one_firewall_event_is_one_run(box, command, runs):
    """Issue 9 defect 14: a firewall reload ran zonevpn twice, a `firewall start` four times."""
    integration.install(Paths(box.root), Log(quiet=True))
    box.write("var/ipfire/red/active", "")
    box.run(*command, check=False)
    assert calls(box) == runs


def test_a_missing_firewall_local_is_created_and_removed_again(box):
    paths = Paths(box.root)
    os.remove(paths.firewall_local)
    integration.install(paths, Log(quiet=True))
    assert open(paths.firewall_local).read().startswith("#!/bin/sh\n# BEGIN zonevpn")
    integration.remove(paths, Log(quiet=True))
    assert not os.path.exists(paths.firewall_local)


def test_an_uninstalled_zonevpn_leaves_the_script_working(box):
    integration.install(Paths(box.root), Log(quiet=True))
    os.remove(box.path("usr/sbin/zonevpn"))
    assert box.run("/etc/rc.d/init.d/wireguard", "stop", check=False).returncode == 0
    assert box.run("/etc/sysconfig/firewall.local", "reload", check=False).returncode == 0
    assert calls(box) == []


def test_a_core_update_that_replaced_the_initscript_is_repaired_with_a_warning(box, capsys):
    paths = Paths(box.root)
    integration.install(paths, Log(quiet=True))
    box.write("etc/rc.d/init.d/wireguard", WIREGUARD, 0o754)  # the update's fresh copy
    assert integration.repair(paths, Log()) == [paths.wg_initscript]
    assert "missing from" in capsys.readouterr().err
    assert integration.problems(paths) == []


@pytest.mark.parametrize(("admin", "culprit", "words"), [
    ("#!/usr/bin/perl\nprint 1;\n", "#!/usr/bin/perl", "not a shell script"),
    (FIREWALL_LOCAL.replace("  start)\n", "  start)\n        trap 'logger done' EXIT\n"), "logger", "own EXIT trap"),
    (FIREWALL_LOCAL.replace("  start)\n", "  start)\n        trap cleanup 0\n"), "cleanup", "own EXIT trap"),
    (FIREWALL_LOCAL.replace("  start)\n", "  start)\n        exec /usr/local/bin/my-rules\n"), "my-rules", "`exec`"),
])
def test_a_firewall_local_that_cannot_run_our_block_is_reported_with_its_line(box, admin, culprit, words):
    """Issue 9 defect 9: such a file silently disabled the block while `integrate check` said it was there."""
    paths = Paths(box.root)
    box.write("etc/sysconfig/firewall.local", admin, 0o755)
    integration.install(paths, Log(quiet=True))
    line = next(n for n, text in enumerate(box.read("etc/sysconfig/firewall.local").splitlines(), 1)
                if culprit in text)  # as the admin sees the file now, our block included
    found = integration.problems(paths)
    assert len(found) == 1 and f"firewall.local:{line}:" in found[0], found
    assert words in found[0]
    check = subprocess.run(["python3", "-m", "zonevpn", "--root", box.root, "integrate", "check"],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH="lib"))
    assert check.returncode == 4 and words in check.stderr


def test_redirecting_exec_and_our_own_block_are_no_problem(box):
    admin = FIREWALL_LOCAL.replace("  start)\n", "  start)\n        exec 2>/dev/null\n")
    box.write("etc/sysconfig/firewall.local", admin, 0o755)
    integration.install(Paths(box.root), Log(quiet=True))
    assert integration.problems(Paths(box.root)) == []


@pytest.mark.parametrize("text", ["#!/bin/sh", "", "echo no shebang\n", "#!/bin/sh\r\nexit 0\r\n", FIREWALL_LOCAL])
def test_odd_firewall_local_files_round_trip(text):
    assert integration.remove_firewall_block(integration.add_firewall_block(text)) == text


def test_the_pages_probe_request_runs_one_probe_in_roots_reload_and_follows_no_link(box):
    """The page cannot pass addonctrl an argument: it leaves a flag that the initscript's reload removes (a
    symlink planted there is removed as a link, its target untouched) before `zonevpn probe` runs."""
    box.copy(os.path.join(REPO, "initscripts", "zonevpn"), "etc/rc.d/init.d/zonevpn", 0o754)
    box.write("root/secret", "root's own\n", 0o600)
    for flag in ("file", "link"):
        os.makedirs(box.path("var/ipfire/zonevpn"), exist_ok=True)
        if flag == "file":
            box.write("var/ipfire/zonevpn/probe-requested", "requested by the web page\n")
        else:
            os.symlink("/root/secret", box.path("var/ipfire/zonevpn/probe-requested"))
        box.write(CALLS, "")
        box.run("/etc/rc.d/init.d/zonevpn", "reload", check=False)
        assert calls(box) == ["--quiet apply", "--quiet probe"], flag
        assert not os.path.lexists(box.path("var/ipfire/zonevpn/probe-requested"))
    assert box.read("root/secret") == "root's own\n"
    box.write(CALLS, "")
    box.run("/etc/rc.d/init.d/zonevpn", "reload", check=False)
    assert calls(box) == ["--quiet apply"]  # no request: no probe
