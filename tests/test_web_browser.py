"""An admin in a real browser (Debian's Chromium driven by Playwright, inside the box's network namespace) on
IPFire's real web stack (tests/web/box.py): binds blue, sees the real apply's outcome and the kernel follow,
and every state of the page, beside IPFire's own WireGuard page from the same box. Screenshots for review go
to artifacts/screens/ (zonevpn-*.png, and stock-wireguard.png to compare the look with)."""

from __future__ import annotations

import json
import os
import stat
import tempfile

import pytest

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER
from web.box import PASSWORD, REPO, URL, USER, WebBox, unavailable

SCREENS = os.path.join(REPO, "artifacts", "screens")
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WG4 = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,mullvad").replace("10.5.0.2", "10.6.0.2")
WG7 = NET_PEER.replace("3,on,net,nordvpn", "7,off,net,ivpn").replace("10.5.0.2", "10.8.0.2")


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


@pytest.fixture(scope="module")
def box():
    with WebBox(settings="ENABLED=off\n", peers=RW_PEER + NET_PEER + SITE_PEER + WG4 + WG7) as web:
        yield web


@pytest.fixture(scope="module")
def browser(box):
    """Chromium started inside the box's network namespace: it reaches the page on the box's loopback."""
    from playwright.sync_api import sync_playwright

    os.makedirs(SCREENS, exist_ok=True)
    wrapper = tempfile.NamedTemporaryFile("w", suffix="-chromium", delete=False)
    wrapper.write(f'#!/bin/sh\nexec ip netns exec {box.netns} {CHROMIUM} "$@"\n')
    wrapper.close()
    os.chmod(wrapper.name, stat.S_IRWXU)
    try:
        with sync_playwright() as driver:
            chromium = driver.chromium.launch(executable_path=wrapper.name, args=ARGS)
            context = chromium.new_context(http_credentials={"username": USER, "password": PASSWORD},
                                           ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            yield context.new_page()
            chromium.close()
    finally:
        os.remove(wrapper.name)


def shot(page, name: str) -> str:  # type: ignore[no-untyped-def]
    path = os.path.join(SCREENS, f"{name}.png")
    page.screenshot(path=path, full_page=True)
    return path


def settings(box: WebBox, text: str) -> None:
    box.box.write("var/ipfire/zonevpn/settings", text)
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.chown(box.box.path("var/ipfire/zonevpn/settings"), nobody.pw_uid, nobody.pw_gid)


def test_stock_wireguard_page_from_the_same_box_for_comparison(box, browser):
    browser.goto(URL.replace("zonevpn.cgi", "wireguard.cgi"))
    assert "WireGuard" in browser.title()
    shot(browser, "stock-wireguard")


def test_admin_binds_blue_sees_the_real_apply_and_the_kernel_follow(box, browser):
    settings(box, "ENABLED=off\n")
    browser.goto(URL)
    assert browser.title().endswith("Zone VPN exits")
    shot(browser, "zonevpn-01-first-visit")
    browser.check("#enabled")
    browser.select_option("#blue-exit", "3")
    browser.click("#save")
    browser.wait_for_selector("#notice")
    shot(browser, "zonevpn-02-blue-bound")
    assert "Applied:" in browser.inner_text("#notice"), box.errors()[-2000:]
    assert "refused (kill switch)" in browser.inner_text("#status-blue .exit")  # wg3 is not up in the box
    rules = box.box.run("ip", "rule").stdout
    assert "from 192.168.2.0/24 prohibit" in rules, rules
    browser.select_option("#blue-exit", "")
    browser.click("#save")
    browser.wait_for_selector("#notice")
    assert browser.inner_text("#status-blue .exit").strip() == "Internet"
    assert "192.168.2.0/24" not in box.box.run("ip", "rule").stdout


def test_bindings_the_page_cannot_choose_are_shown_marked_and_kept(box, browser):
    settings(box, "ENABLED=on\nBLUE_TUNNEL=7\nGREEN_TUNNEL=9\nGREEN_FALLBACK=3,4\nTUNNEL_9_DNS=10.9.0.1\n")
    before = box.settings_bytes()
    browser.goto(URL)
    shot(browser, "zonevpn-03-disabled-and-deleted-tunnels")
    assert "disabled in WireGuard" in browser.inner_text("#row-blue")
    assert "no longer in WireGuard" in browser.inner_text("#row-green")
    browser.click("#save")
    browser.wait_for_selector("#notice")
    shot(browser, "zonevpn-04-save-without-change")
    assert "Settings unchanged" in browser.inner_text("#notice") and box.settings_bytes() == before


def test_a_refused_save_is_shown_in_ipfires_error_box(box, browser):
    settings(box, "ENABLED=on\n")
    browser.goto(URL)
    browser.select_option("#blue-exit", "3")
    browser.check("#blue-dns")  # DNS through the tunnel without a resolver for it
    browser.click("#save")
    browser.wait_for_selector("section.is-error")
    shot(browser, "zonevpn-05-error")
    color = browser.eval_on_selector("section.is-error", "e => getComputedStyle(e).color")
    assert color != browser.eval_on_selector("#main_inner", "e => getComputedStyle(e).color")  # IPFire's red
    assert "BLUE: DNS through the tunnel needs a resolver for wg3" in browser.inner_text("section.is-error")


def test_failover_status_names_the_tunnel_in_use_in_german(box, browser):
    settings(box, "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_FALLBACK=4\n")
    status = {"generated": "2026-01-10T12:00:00+0000", "enabled": True, "in_sync": True,
              "last_apply": {"time": "2026-01-10T12:00:00+0000", "ok": True, "changes": 4, "error": None},
              "zones": [{"zone": "BLUE", "exit": "wg4", "tunnel_name": "mullvad", "interface": "wg4", "bound": "wg3",
                         "present": True, "up": True, "handshake_age": 9, "stale": False, "rx_bytes": 123456,
                         "tx_bytes": 6543, "killswitch_engaged": False, "in_sync": True, "fallbacks": ["wg4"]}]}
    box.box.run("mkdir", "-p", "/var/lib/zonevpn")
    box.box.write("var/lib/zonevpn/status.json", json.dumps(status))
    main = box.box.read("var/ipfire/main/settings")
    box.box.write("var/ipfire/main/settings", main.replace("LANGUAGE=en", "LANGUAGE=de"))
    try:
        browser.goto(URL)
        shot(browser, "zonevpn-06-failover-german")
        text = browser.inner_text("#status-blue")
    finally:
        box.box.write("var/ipfire/main/settings", main)
    assert "BLAU" in text and "mullvad (wg4)" in text and "Ausweichtunnel, solange wg3" in text
    assert "empfangen 120.6 KiB / gesendet 6.4 KiB" in text
    assert "direkt (Internet)" in browser.inner_text("#row-green")
