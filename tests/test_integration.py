"""The hooks in IPFire's scripts: inserted once, run on every path the script takes, keep its exit
status, and come out leaving the file byte for byte as it was. Scripts are run for real by /bin/sh."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from zonevpn import integration
from zonevpn.log import Log
from zonevpn.paths import Paths

# Stand-ins shaped like IPFire's own files (header, rc functions, a case with an early exit).
WIREGUARD = """#!/bin/sh
###############################################################################
# stand-in for IPFire's wireguard initscript                                  #
###############################################################################

. /etc/sysconfig/rc
. ${rc_functions}

ENABLED="${WG_ENABLED:-on}"

case "${1}" in
\tstart)
\t\tif [ "${ENABLED}" != "on" ]; then
\t\t\texit 0
\t\tfi
\t\techo started
\t\t;;
\tstop)
\t\techo stopped
\t\t;;
\treload)
\t\tfalse
\t\t;;
esac
"""
FIREWALL_LOCAL = """#!/bin/sh
# Used for private firewall rules

case "$1" in
  start)
\tiptables -t nat -A CUSTOMPREROUTING -i red0 -p tcp --dport 443 -j DNAT --to 192.168.1.52:443
\t;;
  stop)
\t;;
  reload)
\t$0 stop
\t$0 start
\t;;
esac
"""


@pytest.fixture
def box(tmp_path):
    root = tmp_path / "root"
    files = (("etc/rc.d/init.d/wireguard", WIREGUARD), ("etc/sysconfig/firewall.local", FIREWALL_LOCAL),
             ("etc/sysconfig/rc", "rc_functions=/dev/null\n"))
    for rel, text in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "zonevpn"  # records how IPFire's scripts would call the installed zonevpn
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return Paths(str(root)), bin_dir, calls


def run(path: str, action: str, bin_dir, **env: str) -> int:  # type: ignore[no-untyped-def]
    rc = os.path.join(os.path.dirname(os.path.dirname(path)), "..", "sysconfig", "rc")
    text = open(path).read().replace(". /etc/sysconfig/rc", f". {rc}")
    script = path + ".run"
    with open(script, "w") as handle:
        handle.write(text)
    os.chmod(script, 0o755)
    full = dict(os.environ, PATH=f"{bin_dir}:/usr/bin:/bin", **env)
    return subprocess.run(["/bin/sh", script, action], env=full, capture_output=True).returncode


def test_install_twice_equals_once_and_remove_restores_every_byte(box):
    paths, _, _ = box
    before = {p: open(p, "rb").read() for p in (paths.wg_initscript, paths.firewall_local)}
    assert integration.install(paths, Log(quiet=True)) == 2
    once = {p: open(p, "rb").read() for p in before}
    assert integration.install(paths, Log(quiet=True)) == 0
    assert {p: open(p, "rb").read() for p in before} == once
    assert integration.missing(paths) == []
    integration.remove(paths, Log(quiet=True))
    assert {p: open(p, "rb").read() for p in before} == before
    assert all(os.stat(p).st_mode & 0o777 == 0o755 for p in before)


def test_the_hook_runs_after_every_action_and_keeps_the_exit_status(box):
    paths, bin_dir, calls = box
    integration.install(paths, Log(quiet=True))
    assert run(paths.wg_initscript, "start", bin_dir) == 0
    assert run(paths.wg_initscript, "start", bin_dir, WG_ENABLED="off") == 0  # the early exit
    assert run(paths.wg_initscript, "reload", bin_dir) == 1  # its failure stays its failure
    assert run(paths.wg_initscript, "stop", bin_dir) == 0
    assert calls.read_text().splitlines() == ["hook wireguard start", "hook wireguard start",
                                              "hook wireguard reload", "hook wireguard stop"]


def test_firewall_local_calls_the_hook_on_start_and_reload_only(box):
    paths, bin_dir, calls = box
    integration.install(paths, Log(quiet=True))
    for action in ("start", "stop"):
        run(paths.firewall_local, action, bin_dir)
    assert calls.read_text().splitlines() == ["hook firewall start"]


def test_a_missing_firewall_local_is_created_and_removed_again(box):
    paths, _, _ = box
    os.remove(paths.firewall_local)
    integration.install(paths, Log(quiet=True))
    assert open(paths.firewall_local).read().startswith("#!/bin/sh\n# BEGIN zonevpn")
    integration.remove(paths, Log(quiet=True))
    assert not os.path.exists(paths.firewall_local)


def test_an_uninstalled_zonevpn_leaves_the_script_working(box):
    paths, bin_dir, calls = box
    integration.install(paths, Log(quiet=True))
    os.remove(bin_dir / "zonevpn")
    assert run(paths.wg_initscript, "stop", bin_dir) == 0 and not calls.exists()


def test_a_core_update_that_replaced_the_initscript_is_repaired_with_a_warning(box, capsys):
    paths, _, _ = box
    integration.install(paths, Log(quiet=True))
    with open(paths.wg_initscript, "w") as handle:
        handle.write(WIREGUARD)  # the update's fresh copy
    assert integration.repair(paths, Log()) == [paths.wg_initscript]
    assert "missing from" in capsys.readouterr().err
    assert integration.missing(paths) == []


@pytest.mark.parametrize("text", ["#!/bin/sh", "", "echo no shebang\n", "#!/bin/sh\r\nexit 0\r\n"])
def test_odd_firewall_local_files_round_trip(text):
    assert integration.remove_firewall_block(integration.add_firewall_block(text)) == text
