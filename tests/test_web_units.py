"""The page's logic without Apache: GET then POST of the form as a browser sends it leaves the settings file
byte for byte, in every state; incomplete, foreign or odd requests are refused; the apply's real outcome is
reported; every failure is a page. (Apache, IPFire's real frame and addonctrl: test_web_http.py.)"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER, make_root
from zonevpn.web import cgi, privileged, request
from zonevpn.web.lang import Text, load

HOST = {"HTTPS": "on", "HTTP_HOST": "ipfire.localdomain:444", "SERVER_NAME": "ipfire.localdomain",
        "SERVER_PORT": "444"}
REFERER = "https://ipfire.localdomain:444/cgi-bin/zonevpn.cgi"
WG4 = NET_PEER.replace("3,on,net,nordvpn", "4,on,net,mullvad").replace("10.5.0.2", "10.6.0.2")
WG6 = NET_PEER.replace("3,on,net,nordvpn", "6,on,net,proton").replace("10.5.0.2", "10.7.0.2")
DISABLED7 = NET_PEER.replace("3,on,net,nordvpn", "7,off,net,ivpn").replace("10.5.0.2", "10.8.0.2")
PEERS = RW_PEER + NET_PEER + SITE_PEER + WG4 + WG6 + DISABLED7
# Each a state the page cannot set by itself; a Save without a change must keep every one of them.
STATES = {
    "disabled tunnel": "ENABLED=on\nBLUE_TUNNEL=7\nBLUE_KILLSWITCH=on\n",
    "deleted tunnel": "ENABLED=on\nBLUE_TUNNEL=9\nGREEN_TUNNEL=3\n",
    "several fallbacks": "ENABLED=on\nBLUE_TUNNEL=3\nBLUE_FALLBACK=4,6\nBLUE_DNS=on\nTUNNEL_3_DNS=10.5.0.1\n"
                         "TUNNEL_4_DNS=10.6.0.1\nTUNNEL_6_DNS=10.7.0.1\n",
    "resolvers of tunnels gone": "ENABLED=off\nTUNNEL_9_DNS=10.9.0.1\nTUNNEL_7_DNS=10.8.0.1\nSTALE_AFTER=60\n",
    "a zone the box lost": "ENABLED=on\nORANGE_TUNNEL=3\nORANGE_FALLBACK=4\nBLUE_TUNNEL=4\n",
    "a site tunnel bound by hand": "ENABLED=on\nBLUE_TUNNEL=5\nBLUE_FALLBACK=7\n",
    "hand-written file": "# by hand\nENABLED=on\n\nBLUE_TUNNEL=3\nBLUE_KILLSWITCH=\nGREEN_DNS=off\n",
    "settings the page does not show": "ENABLED=on\nBLUE_TUNNEL=3\nPROBE_URL=http://203.0.113.10:8080/ip\n"
                                       "TUNNEL_3_PROBE=10.5.0.1\n",
    "missing file": None,
}
NO_ORANGE = "CONFIG_TYPE=3\n"  # green + red + blue: orange is gone


class FormReader(HTMLParser):
    """What a browser submits for the page's form: selected options, ticked boxes, text and hidden values."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.select: str | None = None
        self.first: str | None = None
        self.chosen = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("type") in ("hidden", "text") and "name" in a:
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") == "checkbox" and "checked" in a:
            self.fields.append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self.select, self.first, self.chosen = a["name"], None, False
        elif tag == "option" and self.select:
            self.first = a["value"] if self.first is None else self.first
            if "selected" in a:
                self.fields.append((self.select, a["value"]))
                self.chosen = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select:
            if not self.chosen:
                self.fields.append((self.select, self.first or ""))
            self.select = None


def browser_form(html: str) -> bytes:
    reader = FormReader()
    reader.feed(html[html.index("<form"):html.index("</form>")])
    return urlencode(reader.fields).encode()


def page(root: str, method: str = "GET", body: bytes = b"", env: dict[str, str] | None = None) -> str:
    environ = {**HOST, "REQUEST_METHOD": method, "ZONEVPN_ROOT": root, "HTTP_REFERER": REFERER,
               "CONTENT_TYPE": "application/x-www-form-urlencoded", "CONTENT_LENGTH": str(len(body)), **(env or {})}
    environ = {k: v for k, v in environ.items() if v is not None}
    out = io.BytesIO()
    os.environ["ZONEVPN_ROOT"] = root
    try:
        cgi.main(environ, io.BytesIO(body), out)
    finally:
        del os.environ["ZONEVPN_ROOT"]
    return out.getvalue().decode()


def addonctrl(root: str, script: str) -> None:
    """A stand-in for root's apply: tests/test_web_http.py runs IPFire's real addonctrl."""
    path = os.path.join(root, "usr/local/bin/addonctrl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write("#!/bin/sh\n" + script)
    os.chmod(path, 0o755)


APPLY_OK = ('mkdir -p "$ROOT/var/lib/zonevpn"; echo \'{"time": "t", "ok": true, "changes": 2, "error": null, '
            '"warnings": []}\' > "$ROOT/var/lib/zonevpn/last-apply.json.new"; '
            'mv "$ROOT/var/lib/zonevpn/last-apply.json.new" "$ROOT/var/lib/zonevpn/last-apply.json"\n')


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IPFIRE_LANGS = os.path.join(REPO, "..", "shared", "ipfire", "langs")


@pytest.fixture
def root(tmp_path):
    base = str(tmp_path)
    make_root(base, settings="ENABLED=on\n", peers=PEERS)
    os.makedirs(os.path.join(base, "var/ipfire/addon-lang"))
    os.makedirs(os.path.join(base, "var/ipfire/langs"))
    for lang in ("en", "de"):
        shutil.copy(os.path.join(REPO, "addon/lang", f"zonevpn.{lang}.pl"), os.path.join(base, "var/ipfire/addon-lang"))
        ipfire = os.path.join(IPFIRE_LANGS, lang, "cgi-bin", f"{lang}.pl")
        if os.path.exists(ipfire):  # IPFire's own, as lang.pl reads them
            shutil.copy(ipfire, os.path.join(base, "var/ipfire/langs"))
    addonctrl(base, f"ROOT={base}\n" + APPLY_OK)
    return base


def settings_bytes(root: str) -> bytes | None:
    try:
        with open(os.path.join(root, "var/ipfire/zonevpn/settings"), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def put_settings(root: str, text: str | None) -> None:
    path = os.path.join(root, "var/ipfire/zonevpn/settings")
    if text is None:
        os.remove(path)
    else:
        with open(path, "w") as handle:
            handle.write(text)


@pytest.mark.parametrize("state", list(STATES))
def test_save_without_a_change_leaves_the_settings_file_byte_for_byte(root, state):
    put_settings(root, STATES[state])
    if state == "a zone the box lost":
        with open(os.path.join(root, "var/ipfire/ethernet/settings")) as handle:
            ethernet = handle.read().replace("CONFIG_TYPE=4\n", NO_ORANGE)
        with open(os.path.join(root, "var/ipfire/ethernet/settings"), "w") as handle:
            handle.write(ethernet)
    before = settings_bytes(root)
    shown = page(root)
    assert 'id="errors"' not in shown, shown
    after = page(root, "POST", browser_form(shown))
    assert 'id="errors"' not in after, after[after.find('id="errors"'):][:600]
    assert "Settings unchanged" in after and "Applied: 2 changes" in after
    assert settings_bytes(root) == before


def test_bindings_the_page_cannot_choose_are_shown_marked(root):
    put_settings(root, STATES["disabled tunnel"] + "GREEN_TUNNEL=9\nGREEN_FALLBACK=4,6\n")
    shown = page(root)
    assert re.search(r'<option value="7" selected>ivpn \(wg7\) \(disabled in WireGuard', shown), shown
    assert re.search(r'<option value="9" selected>wg9 \(no longer in WireGuard', shown)
    assert '<option value="4,6" selected>mullvad (wg4), proton (wg6)</option>' in shown


def test_a_real_change_is_saved_and_the_rest_kept(root):
    put_settings(root, STATES["several fallbacks"])
    after = page(root, "POST", complete(root, BLUE_TUNNEL="6", BLUE_FALLBACK="4"))
    assert "Settings saved" in after, after
    saved = settings_bytes(root).decode()
    assert "BLUE_TUNNEL=6\n" in saved and "BLUE_FALLBACK=4\n" in saved
    assert "TUNNEL_3_DNS=10.5.0.1\n" in saved and "TUNNEL_6_DNS=10.7.0.1\n" in saved and "BLUE_DNS=on\n" in saved


def refused(root: str, body: bytes, env: dict[str, str] | None = None) -> str:
    before = settings_bytes(root)
    html = page(root, "POST", body, env)
    assert settings_bytes(root) == before
    assert 'class="section is-box is-error"' in html
    assert not os.path.exists(os.path.join(root, "var/lib/zonevpn/last-apply.json"))  # nothing was applied
    return html


@pytest.mark.parametrize(("name", "body", "env", "words"), [
    ("empty body", b"", None, "not the complete form"),
    ("no CONTENT_LENGTH (chunked)", b"ACTION=save", {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked"},
     "did not say how long"),
    ("body shorter than announced", b"ACTION=save", {"CONTENT_LENGTH": "400"}, "ended before"),
    ("not a form", b"{}", {"CONTENT_TYPE": "application/json"}, "is not a form"),
    ("only the action", b"ACTION=save", None, "not the complete form"),
    ("a NUL in a field name", b"ACTION=save&BL%00UE_TUNNEL=3", None, "control characters"),
    ("a newline in a value", b"ACTION=save&BLUE_TUNNEL=3%0a", None, "control characters"),
    ("raw bytes", b"ACTION=save&X=\xff", None, "could not be read"),
    ("foreign port", b"ACTION=save", {"HTTP_REFERER": "https://ipfire.localdomain:8443/x"}, "did not come from"),
    ("foreign host", b"ACTION=save", {"HTTP_REFERER": "https://evil.example:444/x"}, "did not come from"),
    ("http on the https host", b"ACTION=save", {"HTTP_REFERER": "http://ipfire.localdomain:444/"}, "did not come"),
    ("foreign Origin", b"ACTION=save", {"HTTP_ORIGIN": "https://evil.example"}, "did not come from"),
    ("Origin null", b"ACTION=save", {"HTTP_ORIGIN": "null"}, "did not come from"),
    ("no Referer", b"ACTION=save", {"HTTP_REFERER": None}, "did not come from"),
])
def test_requests_that_are_not_the_whole_form_from_this_page_are_refused(root, name, body, env, words):
    assert words in refused(root, body, env), name


def complete(root: str, **change: str) -> bytes:
    fields = dict(re.findall(r"([^&=]+)=([^&]*)", browser_form(page(root)).decode()))
    fields.update(change)
    return "&".join(f"{k}={v}" for k, v in fields.items() if v is not None).encode()


@pytest.mark.parametrize(("change", "words"), [
    ({"ENABLED": "yes"}, "something other than on"),
    ({"BLUE_KILLSWITCH": "off"}, "something other than on"),
    ({"ACTION": "delete"}, "not the complete form"),
    ({"ORANGE_FALLBACK": None}, "not the complete form"),
    ({"TUNNEL_3_DNS": None}, "not the complete form"),
    ({"ROWS": "GREEN%2CBLUE%3B3"}, "changed since the page was shown"),
    ({"PURPLE_TUNNEL": "3"}, "a field this page does not have"),
    ({"BLUE_TUNNEL": "5"}, "BLUE: the chosen exit is not"),
    ({"BLUE_TUNNEL": "1"}, "BLUE: the chosen exit is not"),
    ({"BLUE_TUNNEL": "3%3Breboot"}, "BLUE: the chosen exit is not"),
    ({"BLUE_TUNNEL": "3", "BLUE_FALLBACK": "3"}, "a fallback needs a different tunnel"),
    ({"BLUE_TUNNEL": "3", "BLUE_DNS": "on"}, "needs a resolver for wg3"),
    ({"TUNNEL_3_DNS": "dns.example"}, "nordvpn (wg3): the resolver must be an IPv4 address"),
])
def test_every_value_is_checked_and_a_bad_one_changes_nothing(root, change, words):
    assert words in refused(root, complete(root, **change))


def test_a_form_for_another_state_of_the_box_is_refused(root):
    body = complete(root)
    with open(os.path.join(root, "var/ipfire/wireguard/peers"), "a") as handle:
        handle.write(NET_PEER.replace("3,on,net,nordvpn", "8,on,net,new").replace("10.5.0.2", "10.9.0.2"))
    assert "changed since the page was shown" in refused(root, body)


def test_unreadable_settings_show_the_error_and_no_save_button(root):
    put_settings(root, "ENABLED=on\nBLUE_TUNNEL=3;reboot\n")
    shown = page(root)
    assert "The settings file cannot be read" in shown and 'id="save"' not in shown and "<form" not in shown
    assert "cannot be saved" in refused(root, b"ACTION=save&ENABLED=on")


@pytest.mark.parametrize("state", ["directory", "symlink"])
def test_a_settings_path_that_is_no_file_is_an_error_page(root, state):
    path = os.path.join(root, "var/ipfire/zonevpn/settings")
    os.remove(path)
    os.mkdir(path) if state == "directory" else os.symlink("/etc/passwd", path)
    shown = page(root)
    assert "The settings file cannot be read" in shown and "root:" not in shown


def test_an_unwritable_settings_directory_is_an_error_page(root):
    if os.geteuid() == 0:
        pytest.skip("root writes anyway; test_web_http.py runs it as nobody")
    os.chmod(os.path.join(root, "var/ipfire/zonevpn"), 0o555)
    shown = page(root, "POST", complete(root, BLUE_TUNNEL="3"))
    assert "The settings could not be saved" in shown


@pytest.mark.parametrize(("script", "words"), [
    (None, "cannot be run"),
    ("exit 0\n", "were not applied: zonevpn did not run"),
    ("exit 3\n", "addonctrl failed (exit code 3)"),
    ("sleep 5\n", "took longer than 1 s"),
    (APPLY_OK.replace('"ok": true', '"ok": false').replace('"error": null', '"error": "the kernel said no"'),
     "applying them failed: the kernel said no"),
])
def test_the_apply_outcome_is_reported_as_it_was(root, monkeypatch, script, words):
    monkeypatch.setattr(privileged, "TIMEOUT", 1.0)
    if script is None:
        os.remove(os.path.join(root, "usr/local/bin/addonctrl"))
    else:
        addonctrl(root, f"ROOT={root}\n" + script)
    shown = page(root, "POST", complete(root, BLUE_TUNNEL="3"))
    assert words in shown and "Settings saved" in shown
    assert "BLUE_TUNNEL=3\n" in settings_bytes(root).decode()
    assert "Applied:" not in shown


def test_same_site_compares_host_and_port_and_takes_ipv6_literals():
    v6 = {"HTTPS": "on", "HTTP_HOST": "[fd00::1]:444"}
    assert request.same_site({**v6, "HTTP_REFERER": "https://[fd00::1]:444/cgi-bin/zonevpn.cgi"})
    assert not request.same_site({**v6, "HTTP_REFERER": "https://[fd00::1]:4444/"})
    assert not request.same_site({**v6, "HTTP_REFERER": "https://[fd00::2]:444/"})
    assert request.same_site({"HTTPS": "on", "SERVER_NAME": "::1", "SERVER_PORT": "444",
                              "HTTP_REFERER": "https://[::1]:444/"})
    assert request.same_site({"HTTPS": "on", "HTTP_HOST": "ipfire", "HTTP_REFERER": "https://IPFIRE:443/"})
    assert not request.same_site({"HTTPS": "on", "HTTP_HOST": "ipfire:444", "HTTP_REFERER": "https://ipfire:x/"})


def test_status_names_the_tunnel_really_in_use_with_its_time_rx_and_tx(root):
    status = {"generated": "2026-01-10T12:00:00+0000", "enabled": True, "in_sync": True, "last_apply": None,
              "zones": [{"zone": "BLUE", "exit": "wg4", "tunnel_name": "mullvad", "interface": "wg4", "bound": "wg3",
                         "present": True, "up": True, "handshake_age": 7, "stale": False, "rx_bytes": 2048,
                         "tx_bytes": 10, "killswitch_engaged": False, "in_sync": True, "fallbacks": ["wg4"]}]}
    os.makedirs(os.path.join(root, "var/lib/zonevpn"))
    with open(os.path.join(root, "var/lib/zonevpn/status.json"), "w") as handle:
        json.dump(status, handle)
    shown = page(root)
    assert "mullvad (wg4) — fallback while wg3 is down or stale" in shown
    assert "7 s ago" in shown and "rx 2.0 KiB / tx 10 B" in shown and "As of 2026-01-10T12:00:00+0000" in shown


def german(root: str) -> None:
    """The box's language German, as IPFire's main settings hold it (skipped without IPFire's files)."""
    if not os.path.isdir(IPFIRE_LANGS):
        pytest.skip("IPFire's language files are not in ../shared/ipfire")
    os.makedirs(os.path.join(root, "var/ipfire/main"))
    with open(os.path.join(root, "var/ipfire/main/settings"), "w") as handle:
        handle.write("LANGUAGE=de\n")


def test_german_names_zones_and_red_as_ipfire_does(root):
    german(root)
    strings = load(root, "de")
    assert not [k for k in load(root, "en") if k.startswith("zonevpn") and k not in strings]
    shown = page(root, "POST", complete(root, BLUE_TUNNEL="5"))
    assert "BLAU: Der gewählte Ausgang" in shown and "direkt (Internet)" in shown and ">GRÜN<" in shown
    assert not re.search(r"[A-Z]+_(TUNNEL|FALLBACK|DNS|KILLSWITCH)\b", shown.split("<form")[0])


def test_every_message_key_exists_in_both_languages():
    used = set()
    for base, _dirs, files in os.walk(os.path.join(REPO, "lib/zonevpn/web")):
        for name in (f for f in files if f.endswith((".py", ".html", ".pl"))):  # not __pycache__'s
            with open(os.path.join(base, name), encoding="utf-8") as handle:
                used |= set(re.findall(r"['\"](zonevpn [a-z ]+)['\"]", handle.read()))
    for lang in ("en", "de"):
        with open(os.path.join(REPO, "addon/lang", f"zonevpn.{lang}.pl"), encoding="utf-8") as handle:
            keys = set(re.findall(r"^'([^']+)' =>", handle.read(), re.M))
        assert used <= keys, (lang, sorted(used - keys))
    assert Text({"k": "{zone}!"})("k", zone="X") == "X!" and Text({})("missing") == "missing"


def _write(root: str, rel: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
    with open(os.path.join(root, rel), "w") as handle:
        handle.write(text)


def test_kill_switch_since_and_why_the_history_and_the_last_probe_are_shown_escaped(root):
    """Issue 13: the page shows the kill switch's state with since and why, the history and each exit proven."""
    state = {"engaged": True, "since": 1795613612.5, "why": "wg3 missing", "engaged_since_boot": 2,
             "engaged_last_24h": 1}
    status = {"generated": "2026-01-10T12:00:00+0000", "enabled": True, "in_sync": True, "last_apply": None,
              "zones": [{"zone": "BLUE", "exit": "refused", "tunnel_name": "nordvpn", "interface": "wg3",
                         "bound": "wg3", "present": False, "up": False, "handshake_age": None, "stale": False,
                         "rx_bytes": None, "tx_bytes": None, "killswitch_engaged": True, "in_sync": True,
                         "fallbacks": [], "killswitch_state": state}]}
    _write(root, "var/lib/zonevpn/status.json", json.dumps(status))
    _write(root, "var/lib/zonevpn/history.jsonl", json.dumps(
        {"ts": 1795613612.5, "kind": "engaged", "zone": "BLUE", "detail": "wg3 <script>x</script> missing"}) + "\n")
    _write(root, "var/lib/zonevpn/probe.json", json.dumps(
        {"time": "2026-01-10T12:01:00+0000", "url": "http://203.0.113.10:8080/ip",
         "exits": [{"interface": "wg3", "name": "nordvpn", "source": "10.5.0.2", "public": "192.0.2.10",
                    "country": "Netherlands", "country_code": "NL"}]}))
    shown = page(root)
    killswitch = shown[shown.index('id="status-blue"'):]
    assert "since 20" in killswitch and "wg3 missing" in killswitch and "2x since boot, 1x in 24 h" in killswitch
    assert "wg3 &lt;script&gt;x&lt;/script&gt; missing" in shown and "<script>x" not in shown
    assert "192.0.2.10" in shown and "Netherlands [NL]" in shown
    assert 'value="probe"' not in shown  # no PROBE_URL: no button, nothing is contacted


PROBE_BY_ROOT = ('if [ -e "$ROOT/var/ipfire/zonevpn/probe-requested" ]; then rm -f "$ROOT/var/ipfire/zonevpn/'
                 'probe-requested"; echo \'{"time": "now", "url": "u", "exits": []}\' > '
                 '"$ROOT/var/lib/zonevpn/probe.json"; fi\n')


def test_the_probe_button_asks_root_through_addonctrl_and_nothing_more(root):
    put_settings(root, "ENABLED=on\nBLUE_TUNNEL=3\nPROBE_URL=http://203.0.113.10:8080/ip\n")
    addonctrl(root, f"ROOT={root}\n" + APPLY_OK + PROBE_BY_ROOT)
    assert 'value="probe"' in page(root)
    before = settings_bytes(root)
    for body, env in ((b"ACTION=probe&BLUE_TUNNEL=", None), (b"ACTION=probe", {"HTTP_REFERER": "https://evil/"})):
        refused(root, body, env)
        assert not os.path.exists(os.path.join(root, "var/ipfire/zonevpn/probe-requested"))
        assert not os.path.exists(os.path.join(root, "var/lib/zonevpn/probe.json"))
    shown = page(root, "POST", b"ACTION=probe")
    assert "Each exit tunnel was asked what the world sees" in shown
    assert not os.path.exists(os.path.join(root, "var/ipfire/zonevpn/probe-requested"))
    assert settings_bytes(root) == before
