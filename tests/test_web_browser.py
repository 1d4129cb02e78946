"""An admin in a real browser (Debian's Chromium, driven by Playwright): logs in, binds blue to wg3, saves,
sees the status change, unbinds. Apache serves the page from the lab's root; the addonctrl broker runs
the real `zonevpn apply` in the lab's firewall. Screenshots go to artifacts/screens/."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from conftest import wait_for_handshake
from web.apache import PASSWORD, REPO, USER, Apache, Broker, lay_out, unavailable

SCREENS = os.path.join(REPO, "artifacts", "screens")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser_unavailable() -> str:
    if unavailable():
        return unavailable()
    if not os.path.exists(CHROMIUM):
        return "chromium missing (make test installs it)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright missing (make test installs it)"
    return ""


pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(browser_unavailable()), reason=browser_unavailable() or "-")]


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    os.makedirs(SCREENS, exist_ok=True)
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD},
                                      viewport={"width": 1200, "height": 900})
        yield context.new_page()
        browser.close()


def shot(page, name: str) -> str:  # type: ignore[no-untyped-def]
    path = os.path.join(SCREENS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def test_admin_binds_blue_to_wg3_sees_it_leave_there_and_unbinds(lab, browser_page):
    lab.wireguard("start")
    wait_for_handshake(lab)
    lab.write_zonevpn_settings(ENABLED="on")
    os.chmod(lab.root, 0o755)
    lay_out(lab.root)
    actions = {"reload": ("apply",), "status": ("status", "--json")}
    broker = Broker(lab.root, lambda action: lab.zonevpn(*actions[action]).returncode if action in actions else 1)
    try:
        with Apache(lab.root) as apache:
            page = browser_page
            page.goto(apache.url)
            assert page.title().endswith("Zone VPN exits")
            shot(page, "01-before")
            page.select_option("#blue-exit", "3")
            page.check("#enabled")
            page.click("#save")
            page.wait_for_selector("#status-blue")
            shot(page, "02-blue-bound")
            assert "nordvpn (wg3)" in page.inner_text("#status-blue .exit"), apache.errors()
            assert lab.probe("BLUE").seen == "192.0.2.10"  # the real thing, not just the page
            lab.fw("ip", "link", "del", "wg3")
            page.goto(apache.url)
            shot(page, "03-tunnel-gone-kill-switch")
            assert "refused" in page.inner_text("#status-blue .exit")
            page.select_option("#blue-exit", "")
            page.click("#save")
            page.wait_for_selector("#status-blue")
            shot(page, "04-blue-unbound")
            assert page.inner_text("#status-blue .exit").strip() == "red"
            assert lab.probe("BLUE").seen == "198.51.100.2"
    finally:
        broker.close()


STATES = {
    "no-tunnels": ("", None),
    "tunnel-down": ("BLUE_TUNNEL=3\n", {"exit": "refused", "present": False, "up": False, "killswitch_engaged": True}),
    "drift": ("BLUE_TUNNEL=3\n", {"exit": "red", "in_sync": False, "drift": ["ip rule add pref 1032 ..."]}),
    "apply-error": ("BLUE_TUNNEL=3\n", {"exit": "wg3", "error": "the kernel refused: `ip route replace ...`"}),
}


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_of_the_page_renders_in_the_browser(browser_page, tmp_path, state):
    """Screenshots of each state (status.json as root would write it); the page must say it in words."""
    import tempfile

    from ipfire_files import NET_PEER, RW_PEER, make_root

    root = tempfile.mkdtemp(prefix="zvweb-root-")
    settings, zone = STATES[state]
    make_root(root, settings="ENABLED=on\n" + settings, peers=RW_PEER + ("" if state == "no-tunnels" else NET_PEER))
    if zone is not None:
        blue = {"zone": "BLUE", "device": "blue0", "network": "192.168.2.0/24", "tunnel": 3, "tunnel_name": "nordvpn",
                "interface": "wg3", "present": True, "up": True, "handshake_age": 12, "rx_bytes": 123456,
                "tx_bytes": 65432, "killswitch": True, "killswitch_engaged": False, "in_sync": True, "drift": []}
        error = zone.pop("error", None)
        blue.update(zone)
        status = {"generated": "now", "enabled": True, "in_sync": blue["in_sync"], "zones": [blue],
                  "last_apply": {"time": "2026-11-25T03:00:00+0000", "ok": error is None, "changes": 3,
                                 "error": error, "warnings": []}}
        with open(os.path.join(root, "var/ipfire/zonevpn/status.json"), "w") as handle:
            json.dump(status, handle)
    lay_out(root)
    broker = Broker(root, lambda action: 0)
    try:
        with Apache(root) as apache:
            browser_page.goto(apache.url)
            shot(browser_page, f"state-{state}")
            text = browser_page.inner_text("main")
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)
    expected = {"no-tunnels": "no enabled net-to-net WireGuard tunnel", "tunnel-down": "refused (kill switch)",
                "drift": "does not match these settings", "apply-error": "failed: the kernel refused"}[state]
    assert expected in text, text
