"""Lab fixtures: a fresh namespace lab per test. Lab tests skip, with the reason printed, only where the
real kernel parts cannot exist (not root, no namespaces, no wireguard-go); on CI they run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

_REASON: list[str] = []


def lab_unavailable() -> str:
    if _REASON:
        return _REASON[0]
    reason = ""
    if os.geteuid() != 0:
        reason = "the lab needs root (network namespaces)"
    else:
        tools = ("ip", "wg", "wireguard-go", "iptables-legacy", "conntrack")
        missing = [t for t in tools if not shutil.which(t)]
        if missing:
            reason = f"the lab needs {', '.join(missing)} (make test installs them)"
        elif subprocess.run(["ip", "netns", "add", "zvlab-probe"], capture_output=True).returncode != 0:
            reason = "network namespaces are not available here"
        else:
            subprocess.run(["ip", "netns", "del", "zvlab-probe"], capture_output=True)
    _REASON.append(reason)
    return reason


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    for item in items:
        if "lab" in item.keywords and lab_unavailable():
            item.add_marker(pytest.mark.skip(reason=lab_unavailable()))


def pytest_terminal_summary(terminalreporter):  # type: ignore[no-untyped-def]
    if _REASON and _REASON[0]:
        terminalreporter.write_line(f"lab tests skipped: {_REASON[0]}")


@pytest.fixture(scope="session")
def package(tmp_path_factory) -> str:
    """The add-on as `make pak` builds it (a copy: the build directory is rewritten by later builds)."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["make", "-s", "pak"], cwd=repo, check=True, capture_output=True)
    name = subprocess.run(["python3", "addon/package.py", "name"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()
    out = tmp_path_factory.mktemp("pak") / name
    shutil.copy(os.path.join(repo, "build", name), out)
    return str(out)


@pytest.fixture
def lab():
    from lab import Lab

    with Lab() as built:
        yield built


@pytest.fixture
def blue_with_fallback():
    """A lab with two providers, both tunnels up with a handshake, blue bound to wg3 with wg4 as fallback."""
    from lab import Lab

    with Lab(providers=(3, 4)) as two:
        two.wireguard("start")
        for interface in ("wg3", "wg4"):
            wait_for_handshake(two, interface)
        bind(two, BLUE_TUNNEL="3", BLUE_FALLBACK="4")
        yield two


def bind(lab, **settings: str) -> None:  # type: ignore[no-untyped-def]
    """wireguard start (as IPFire boots it), the settings, then `zonevpn apply`, which must succeed."""
    if lab.fw("ip", "link", "show", "wg3", check=False).returncode != 0:
        lab.wireguard("start")
        wait_for_handshake(lab)
    lab.write_zonevpn_settings(ENABLED="on", **settings)
    result = lab.zonevpn("apply")
    assert result.returncode == 0, result.stderr + lab.dump()


def wait_for_handshake(lab, interface: str = "wg3", seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = lab.fw("wg", "show", interface, "latest-handshakes", check=False).stdout.split()
        if len(out) == 2 and out[1] != "0":
            return
        time.sleep(0.05)
    raise AssertionError(f"{interface}: no handshake in {seconds} s\n{lab.dump()}")
