"""An admin in a real browser (tests/test_web_browser.py's Chromium inside the box's network namespace) builds
a list of exit policies on IPFire's real web stack: picks a host object, types an address, sees a policy that
an earlier one covers entirely marked, moves it up, and a refused value in IPFire's error box. Screenshots for
review: artifacts/screens/policies-*.png."""

from __future__ import annotations

import pytest

from policy_files import write_fwhosts
from test_web_browser import box, browser, browser_unavailable, settings, shot  # noqa: F401 - fixtures
from web.box import URL

pytestmark = [pytest.mark.lab, pytest.mark.skipif(bool(browser_unavailable()), reason=browser_unavailable() or "-")]


def add(page, **fields: str) -> None:  # type: ignore[no-untyped-def]
    """Fill the editor as an admin does: the source's radio button, then each field by its id."""
    page.check(f"#type-{fields.pop('type')}")
    for field, value in fields.items():
        selector = f"#{field.replace('_', '-')}"
        if page.eval_on_selector(selector, "e => e.tagName") == "SELECT":
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click("#policy-save")
    page.wait_for_selector("#policy-box")


def test_admin_builds_the_policy_list_and_sees_where_each_leaves(box, browser):  # noqa: F811 - fixtures
    settings(box, "ENABLED=on\n")
    write_fwhosts(box.root)
    box.box.run("rm", "-f", "/var/ipfire/zonevpn/policies")
    browser.goto(URL + "#policy-box")
    add(browser, type="host", src_host="tv", exit="3", remark="living room")
    assert "Applied:" in browser.inner_text("#policy-notice"), box.errors()[-2000:]
    add(browser, type="addr", src_addr="192.168.1.50", destinations="203.0.113.0/24", protocol="tcp",
        ports="443", exit="red", remark="the bank, direct")
    add(browser, type="group", src_group="kids", exit="4", fallback="3")
    browser.goto(URL + "#policy-box")
    shot(browser, "policies-01-list-with-a-covered-policy")
    assert "Never matches: policy 1 covers it entirely." in browser.inner_text("#policy-2")
    assert "refused (kill switch)" in browser.inner_text("#policy-1 .leaves")  # wg3 is not up in the box
    assert browser.inner_text("#policy-2 .leaves").strip() == "Internet"

    browser.click("#up-2")
    browser.wait_for_selector("#policy-notice")
    shot(browser, "policies-02-moved-up")
    assert "203.0.113.0/24" in browser.inner_text("#policy-1") and "Never" not in browser.inner_text("#policy-box")
    assert "from 192.168.1.50 to 203.0.113.0/24" in box.box.run("ip", "rule").stdout

    before = box.box.read("var/ipfire/zonevpn/policies")
    add(browser, type="addr", src_addr="192.168.1.300", exit="red")
    shot(browser, "policies-03-refused")
    assert "Source: not an IPv4 address or network" in browser.inner_text("#policy-errors")
    assert browser.input_value("#src-addr") == "192.168.1.300"  # what was typed, to correct it
    assert box.box.read("var/ipfire/zonevpn/policies") == before
