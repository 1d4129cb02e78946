"""The page behind a real Apache (mod_cgi, basic auth) on 127.0.0.1: what it shows, what a save does, and
hostile requests refused with the settings file left byte for byte as it was."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import urllib.error
import urllib.request

import pytest

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER, make_root
from web.apache import PASSWORD, USER, Apache, Broker, lay_out, unavailable

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "-")
EVIL = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,<script>alert(1)</script>").replace("10.5.0.2", "10.6.0.2")


@pytest.fixture
def site():
    root = tempfile.mkdtemp(prefix="zvweb-root-")  # the web server user must be able to walk to it
    make_root(root, settings="ENABLED=on\n", peers=RW_PEER + NET_PEER + SITE_PEER + EVIL)
    lay_out(root)
    broker = Broker(root, lambda action: 0)
    try:
        with Apache(root) as apache:
            yield apache, broker
    finally:
        broker.close()
        shutil.rmtree(root, ignore_errors=True)


def request(apache: Apache, method: str = "GET", body: bytes | None = None, query: str = "",
            headers: dict[str, str] | None = None) -> tuple[int, str]:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    req = urllib.request.Request(apache.url + query, data=body, method=method,
                                 headers={"Authorization": f"Basic {auth}", **(headers or {})})
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def settings_bytes(apache: Apache) -> bytes:
    with open(os.path.join(apache.root, "var/ipfire/zonevpn/settings"), "rb") as handle:
        return handle.read()


def test_the_page_needs_a_login(site):
    apache, _ = site
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(apache.url, timeout=10)
    assert denied.value.code == 401, apache.errors()


def test_the_page_shows_each_zone_and_only_tunnels_that_can_be_exits_in_ipfires_frame(site):
    apache, broker = site
    status, html = request(apache)
    assert status == 200, apache.errors()
    assert html.count('<section class="section is-box">') >= 2 and "<nav>" in html
    for zone in ("GREEN", "BLUE", "ORANGE"):
        assert f'name="{zone}_TUNNEL"' in html
    assert "nordvpn (wg3)" in html and "office" not in html and "phone" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (wg4)" in html and "<script>alert(1)" not in html
    assert broker.calls == ["status"]


def test_saving_binds_blue_and_asks_addonctrl_to_reload(site):
    apache, broker = site
    referer = {"Referer": apache.url}
    body = b"ACTION=save&ENABLED=on&GREEN_TUNNEL=&BLUE_TUNNEL=3&BLUE_KILLSWITCH=on&ORANGE_TUNNEL=&ORANGE_KILLSWITCH=on"
    status, html = request(apache, "POST", body, headers=referer)
    assert status == 200 and "Settings saved" in html, html[-2000:]
    saved = settings_bytes(apache).decode()
    assert "BLUE_TUNNEL=3\n" in saved and "BLUE_KILLSWITCH=on\n" in saved and "GREEN_KILLSWITCH=off\n" in saved
    assert broker.calls == ["reload", "status"]


@pytest.mark.parametrize(("name", "method", "body", "query", "headers"), [
    ("unknown zone", "POST", b"ENABLED=on&PURPLE_TUNNEL=3", "", "same"),
    ("shell in the tunnel id", "POST", b"ENABLED=on&BLUE_TUNNEL=3%3Breboot", "", "same"),
    ("a road warrior as exit", "POST", b"ENABLED=on&BLUE_TUNNEL=1", "", "same"),
    ("a tunnel that does not route everything", "POST", b"ENABLED=on&BLUE_TUNNEL=5", "", "same"),
    ("1 MB body", "POST", b"ENABLED=on&BLUE_TUNNEL=3&PAD=" + b"x" * 1_000_000, "", "same"),
    ("GET that tries to change", "GET", None, "?ENABLED=on&BLUE_TUNNEL=3", "same"),
    ("foreign Referer", "POST", b"ENABLED=on&BLUE_TUNNEL=3", "", {"Referer": "http://evil.example/x"}),
    ("foreign Origin", "POST", b"ENABLED=on&BLUE_TUNNEL=3", "", "origin"),
    ("no Referer", "POST", b"ENABLED=on&BLUE_TUNNEL=3", "", {}),
])
def test_hostile_requests_change_nothing(site, name, method, body, query, headers):
    apache, broker = site
    before = settings_bytes(apache)
    if headers == "same":
        headers = {"Referer": apache.url}
    elif headers == "origin":
        headers = {"Referer": apache.url, "Origin": "http://evil.example"}
    status, html = request(apache, method, body, query, headers)
    assert status in (200, 413), (name, status)
    assert settings_bytes(apache) == before, name
    assert "reload" not in broker.calls, name
    if method == "POST" and status == 200:
        assert 'class="error"' in html, name


def test_saving_dns_through_the_tunnel_with_its_resolver_and_a_fallback(site):
    apache, broker = site
    body = (b"ENABLED=on&BLUE_TUNNEL=3&BLUE_KILLSWITCH=on&BLUE_DNS=on&BLUE_FALLBACK=4&TUNNEL_3_DNS=10.5.0.1"
            b"&TUNNEL_4_DNS=10.6.0.1&GREEN_TUNNEL=&ORANGE_TUNNEL=")
    status, html = request(apache, "POST", body, headers={"Referer": apache.url})
    saved = settings_bytes(apache).decode()
    assert "Settings saved" in html, html[-1500:]
    for line in ("BLUE_DNS=on", "BLUE_FALLBACK=4", "TUNNEL_3_DNS=10.5.0.1", "TUNNEL_4_DNS=10.6.0.1"):
        assert line + "\n" in saved, saved
    assert 'value="10.5.0.1"' in html  # shown again as set


@pytest.mark.parametrize(("body", "words"), [
    (b"ENABLED=on&BLUE_TUNNEL=3&BLUE_DNS=on", "needs a resolver"),
    (b"ENABLED=on&BLUE_TUNNEL=3&TUNNEL_3_DNS=dns.example", "not an IPv4 address"),
    (b"ENABLED=on&BLUE_TUNNEL=3&BLUE_FALLBACK=3", "different tunnel"),
    (b"ENABLED=on&BLUE_TUNNEL=3&TUNNEL_1_DNS=10.0.0.1", "unknown field"),
])
def test_dns_and_fallback_mistakes_are_refused(site, body, words):
    apache, broker = site
    before = settings_bytes(apache)
    _, html = request(apache, "POST", body, headers={"Referer": apache.url})
    assert words in html and settings_bytes(apache) == before and "reload" not in broker.calls
