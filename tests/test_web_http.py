"""The page on IPFire's real web stack (tests/web/box.py: Debian's apache2 with IPFire's own vhost file,
IPFire's real header.pl, lang.pl, menus, CSS and language files, the real setuid addonctrl running the
project's initscript as root), requested over HTTPS from inside the box's network namespace. Hostile requests
are refused with the settings file left byte for byte as it was and nothing applied."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER
from test_web_units import STATES, browser_form
from web.box import PASSWORD, REPO, USER, WebBox, unavailable
from web.client import auth, chunked, request

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "-")
EVIL = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,<script>alert(1)</script>").replace("10.5.0.2", "10.6.0.2")
WG6 = NET_PEER.replace("3,on,net,nordvpn", "6,on,net,proton").replace("10.5.0.2", "10.7.0.2")
WG7 = NET_PEER.replace("3,on,net,nordvpn", "7,off,net,ivpn").replace("10.5.0.2", "10.8.0.2")
PAGE = "/cgi-bin/zonevpn.cgi"
ORIGIN = "https://127.0.0.1:444"
SAME = {"Referer": ORIGIN + PAGE}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
LAST = "var/lib/zonevpn/last-apply.json"


@pytest.fixture(scope="module")
def box():
    with WebBox(peers=RW_PEER + NET_PEER + SITE_PEER + EVIL + WG6 + WG7) as web:
        yield web


@pytest.fixture
def web(box):
    """Each test starts from ENABLED=on, nothing applied yet, the helper and launcher as installed, no
    watcher left by an earlier save (its own apply would land in this test)."""
    box.quiesce()
    box.box.write("var/ipfire/zonevpn/settings", "ENABLED=on\n")
    os.chown(box.box.path("var/ipfire/zonevpn/settings"), *_nobody())
    box.box.run("rm", "-rf", "/var/lib/zonevpn")
    return box


def _nobody() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def get(web: WebBox, path: str = PAGE, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return request(web.netns, "GET", path, headers={**auth(USER, PASSWORD), **(headers or {})})


def post(web: WebBox, body: bytes, headers: dict[str, str] | None = None, length: bool = True,
         path: str = PAGE):  # type: ignore[no-untyped-def]
    return request(web.netns, "POST", path, body, {**auth(USER, PASSWORD), **FORM, **(headers or {})}, length=length)


def form(web: WebBox, **change: str | None) -> bytes:
    fields = dict(re.findall(r"([^&=]+)=([^&]*)", browser_form(get(web).text).decode()))
    fields.update(change)
    return "&".join(f"{k}={v}" for k, v in fields.items() if v is not None).encode()


def test_the_page_needs_a_login(web):
    assert request(web.netns, "GET", PAGE).status == 401


def test_the_page_is_in_ipfires_real_frame_right_after_wireguard_and_escapes_tunnel_names(web):
    page = get(web)
    assert page.status == 200, web.errors()
    html = page.text
    assert '<div id="cssmenu"' in html and "IPFire_" in html and 'href="/themes/ipfire/include/css/style.css' in html
    assert re.search(r'wireguard\.cgi">WireGuard</a></li><li><a href="/cgi-bin/zonevpn\.cgi">Zone VPN exits', html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (wg4)" in html and "<script>alert(1)" not in html
    assert html.index('id="enabled"') < html.index('id="zones"')  # "Enabled" first, as on stock pages


def test_nothing_under_cgi_bin_but_the_page_is_callable(web):
    ours = [os.path.relpath(os.path.join(base, name), os.path.join(REPO, "cgi-bin"))
            for base, _dirs, files in os.walk(os.path.join(REPO, "cgi-bin")) for name in files]
    assert ours == ["zonevpn.cgi"]
    for rel in ours:
        assert get(web, f"/cgi-bin/{rel}").status == 200
    # the old frame helper, and where its new home would be if it were web-reachable: not there
    for path in ("/cgi-bin/zonevpn/frame.pl", "/cgi-bin/frame.pl", "/zonevpn/frame.pl"):
        answer = post(web, b"<script>alert(1)</script>\0title", SAME, path=path)
        assert answer.status == 404 and "alert(1)" not in answer.text, path
    assert not os.path.exists(web.box.path("srv/web/ipfire/cgi-bin/zonevpn"))
    assert os.path.exists(web.box.path("usr/lib/zonevpn/zonevpn/web/frame.pl"))


def test_saving_applies_through_ipfires_addonctrl_and_reports_the_real_outcome(web):
    before = get(web).text
    assert "No status yet" in before
    answer = post(web, form(web, BLUE_TUNNEL="3"), SAME)
    assert "Settings saved" in answer.text and re.search(r"Applied: \d+ changes", answer.text), answer.text[-3000:]
    assert "BLUE_TUNNEL=3\n" in web.settings_bytes().decode()
    assert re.search(r"As of \d{4}-\d\d-\d\dT", answer.text)  # the status root wrote after the apply, dated
    assert "refused (kill switch)" in answer.text  # wg3 does not exist here: blue is refused, not sent to red
    st = os.stat(web.box.path("var/lib/zonevpn"))
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o755)


@pytest.mark.parametrize("state", [s for s in STATES if s not in ("a zone the box lost", "missing file")])
def test_get_then_post_as_a_browser_does_leaves_the_file_byte_for_byte(web, state):
    web.box.write("var/ipfire/zonevpn/settings", STATES[state])
    os.chown(web.box.path("var/ipfire/zonevpn/settings"), *_nobody())
    before = web.settings_bytes()
    answer = post(web, browser_form(get(web).text), SAME)
    assert "Settings unchanged" in answer.text and "Refused" not in answer.text, answer.text[-3000:]
    assert web.settings_bytes() == before  # (the apply itself may fail: a deleted tunnel is an input error)


HOSTILE = {
    "chunked body": (chunked(b"ACTION=save"), {**SAME, "Transfer-Encoding": "chunked"}, False),
    "body without Content-Length": (b"ACTION=save", {**SAME}, False),
    "empty body": (b"", SAME, True),
    "only the action": (b"ACTION=save", SAME, True),
    "foreign Referer": ("form", {"Referer": "https://evil.example/x"}, True),
    "foreign port": ("form", {"Referer": "https://127.0.0.1:4444/"}, True),
    "foreign Origin": ("form", {**SAME, "Origin": "https://evil.example"}, True),
    "no Referer": ("form", {}, True),
    "NUL in a field name": ("form&X%00Y=1", SAME, True),
    "ENABLED=yes": ("form:ENABLED=yes", SAME, True),
    "1 MB body": (b"ACTION=save&X=" + b"x" * 1_000_000, SAME, True),
    "script in a field": ("form:BLUE_TUNNEL=%3Cscript%3Ealert(1)%3C/script%3E", SAME, True),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_requests_change_nothing_and_apply_nothing(web, name):
    body, headers, length = HOSTILE[name]
    if isinstance(body, str):
        whole = form(web)
        body = whole + body[4:].encode() if not body.startswith("form:") else \
            form(web, **dict([body[5:].split("=", 1)]))
    before = web.settings_bytes()
    answer = post(web, body, headers, length=length)
    assert answer.status in (200, 413), (name, answer.status, web.errors()[-2000:])
    assert web.settings_bytes() == before, name
    assert not os.path.exists(web.box.path(LAST)), name  # addonctrl was not called
    assert "<script>alert(1)" not in answer.text
    if answer.status == 200:
        assert 'class="section is-box is-error"' in answer.text and "Oops" in answer.text, name


def test_a_get_that_tries_to_change_changes_nothing(web):
    before = web.settings_bytes()
    assert get(web, PAGE + "?ACTION=save&ENABLED=on&BLUE_TUNNEL=3").status == 200
    assert web.settings_bytes() == before and not os.path.exists(web.box.path(LAST))


def test_an_ipv6_literal_host_passes_the_same_site_check(web):
    body = form(web, BLUE_TUNNEL="3")
    answer = post(web, body, {"Host": "[::1]:444", "Referer": "https://[::1]:444/cgi-bin/zonevpn.cgi"})
    assert "Settings saved" in answer.text, answer.text[-2000:]


def _swap(web: WebBox, rel: str, script: str) -> str:
    path = web.box.path(rel)
    saved = path + ".real"
    os.rename(path, saved)
    web.box.write(rel, script, 0o755)
    return saved


@pytest.mark.parametrize(("rel", "script", "words"), [
    ("usr/sbin/iptables-restore", "#!/bin/sh\necho 'iptables-restore: line 1 failed' >&2\nexit 1\n",
     "applying them failed"),
    ("usr/sbin/zonevpn", "#!/bin/sh\nexit 0\n", "were not applied: zonevpn did not run"),
    ("etc/rc.d/init.d/zonevpn", "#!/bin/sh\nsleep 20\n", "took longer than 8 s"),
])
def test_a_failed_or_missing_apply_is_reported_as_such(web, rel, script, words):
    web.box.run("/usr/local/bin/addonctrl", "zonevpn", "reload")  # nothing bound: binding blue is a change
    web.box.run("rm", "-f", "/" + LAST)
    saved = _swap(web, rel, script)
    try:
        answer = post(web, form(web, BLUE_TUNNEL="3"), SAME)
    finally:
        os.remove(web.box.path(rel))
        os.rename(saved, web.box.path(rel))
    assert answer.status == 200 and words in answer.text and "Applied:" not in answer.text, answer.text[-2500:]


def test_addonctrl_missing_is_a_page_with_the_error(web):
    path = web.box.path("usr/local/bin/addonctrl")
    os.chmod(path, 0o700)  # the web server user can no longer run it
    try:
        answer = post(web, form(web, BLUE_TUNNEL="3"), SAME)
    finally:
        os.chmod(path, 0o4750)
    assert answer.status == 200 and "cannot be run" in answer.text, answer.text[-2000:]


@pytest.mark.parametrize("how", ["unwritable directory", "settings is a directory", "unreadable settings"])
def test_a_broken_settings_file_or_directory_is_a_page_with_the_error_never_a_500(web, how):
    directory = web.box.path("var/ipfire/zonevpn")
    body = form(web, BLUE_TUNNEL="3")
    if how == "unwritable directory":
        os.chown(directory, 0, 0)
    elif how == "settings is a directory":
        os.remove(os.path.join(directory, "settings"))
        os.mkdir(os.path.join(directory, "settings"))
    else:
        web.box.write("var/ipfire/zonevpn/settings", "ENABLED=on\nBLUE_TUNNEL=3;x\n")
    try:
        shown, answer = get(web), post(web, body, SAME)
    finally:
        os.chown(directory, *_nobody())
        if os.path.isdir(os.path.join(directory, "settings")):
            os.rmdir(os.path.join(directory, "settings"))
    assert shown.status == answer.status == 200, web.errors()[-2000:]
    assert 'class="section is-box is-error"' in answer.text
    words = "could not be saved" if how == "unwritable directory" else "cannot be read"
    assert words in answer.text, answer.text[-2500:]
    if how != "unwritable directory":
        assert 'id="save"' not in shown.text and 'id="save"' not in answer.text


def test_root_never_follows_a_symlink_the_web_user_plants(web):
    """The web server user races symlinks into every place root's apply and status write to; a root-only
    file must keep its mode."""
    web.box.write("root/secret", "only root\n", 0o600)
    racer = web.box.popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "bash", "-c",
                           "cd /var/ipfire/zonevpn; while :; do for f in .zonevpn-* status.json last-apply.json; do "
                           "ln -sf /root/secret \"$f\" 2>/dev/null; done; "
                           "ln -sf /root/secret /var/lib/zonevpn/.zonevpn-x 2>/dev/null; done"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        for _ in range(10):
            web.box.run("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                        "/usr/local/bin/addonctrl", "zonevpn", "reload", check=False)
            web.box.run("/usr/local/bin/addonctrl", "zonevpn", "status", check=False)
    finally:
        racer.kill()
        racer.wait()
    st = os.stat(web.box.path("root/secret"))
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    assert os.path.exists(web.box.path(LAST))  # the applies did run
    assert not os.path.islink(web.box.path("var/lib/zonevpn/status.json"))


def test_root_does_not_read_a_settings_symlink_into_the_page(web):
    web.box.run("ln", "-sf", "/etc/shadow", "/var/ipfire/zonevpn/settings")
    web.box.run("/usr/local/bin/addonctrl", "zonevpn", "reload", check=False)
    page = get(web).text
    assert "symbolic link" in page and "root:" not in page
    with open(web.box.path(LAST)) as handle:
        assert "root:" not in handle.read()
