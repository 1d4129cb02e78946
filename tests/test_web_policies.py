"""The exit policies list on the page, without Apache: each action's form as the page renders it, submitted as
a browser would, does exactly its one thing to the policies file and is applied; every refusal (foreign site,
incomplete form, a page made from another state of the file, a bad value, control characters) leaves the
file byte for byte and applies nothing. (Through Apache and IPFire's addonctrl: test_web_http.py.)"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest

from policy_files import remark, write_fwhosts, write_policies
from test_web_units import APPLY_OK, IPFIRE_LANGS, REPO, addonctrl, german, page, root  # noqa: F401 - root: fixture
from zonevpn.web.policy_form import fingerprint

POLICIES = "var/ipfire/zonevpn/policies"
LAST = "var/lib/zonevpn/last-apply.json"
# a file as an admin may keep it by hand: a comment, keys with gaps, trailing fields left out
HAND = ("# exits by device\n1,on,addr,192.168.1.50,,,,3\n4,on,host,tv,203.0.113.0/24,tcp,443,red\n"
        f"9,off,mac,02:00:00:00:02:14,,,,block,,on,off,{remark('work laptop')}\n")


class Forms(HTMLParser):
    """Every form of the policies box as a browser submits it, named by its submit button's id."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, list[tuple[str, str]]] = {}
        self.fields: list[tuple[str, str]] | None = None
        self.select: tuple[str, list[str], list[str]] | None = None  # name, options, selected

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.fields = []
        elif self.fields is None:
            return
        elif tag == "input" and a.get("type") in ("hidden", "text"):
            self.fields.append((a["name"], a.get("value", "")))
        elif tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" in a:
            self.fields.append((a["name"], a.get("value", "on")))
        elif tag == "input" and a.get("type") == "submit":
            self.forms[a["id"]] = self.fields
        elif tag == "select":
            self.select = (a["name"], [], [])
        elif tag == "option" and self.select:
            self.select[1].append(a["value"])
            if "selected" in a:
                self.select[2].append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select and self.fields is not None:
            name, options, chosen = self.select
            self.fields.append((name, (chosen or options)[0]))
            self.select = None
        elif tag == "form":
            self.fields = None


def forms(html: str) -> dict[str, list[tuple[str, str]]]:
    reader = Forms()
    reader.feed(html[html.index('<a id="policies">'):])
    return reader.forms


def submit(html: str, button: str, **change: str | None) -> bytes:
    fields = dict(forms(html)[button])
    fields.update(change)
    return urlencode([(k, v) for k, v in fields.items() if v is not None]).encode()


def post(base: str, body: bytes, env: dict[str, str | None] | None = None) -> str:
    return page(base, "POST", body, {"QUERY_STRING": "policies", **(env or {})})  # type: ignore[dict-item]


def stored(base: str) -> bytes | None:
    try:
        with open(os.path.join(base, POLICIES), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def box(html: str) -> str:
    return html[html.index('<a id="policies">'):]


@pytest.fixture
def web(root):  # noqa: F811 - test_web_units' fixture
    write_fwhosts(root)
    write_policies(root)
    with open(os.path.join(root, POLICIES), "w") as handle:
        handle.write(HAND)
    return root


def applied(base: str) -> bool:
    return os.path.exists(os.path.join(base, LAST))


@pytest.mark.parametrize(("button", "rows"), [
    ("up-4", ["1,on,host,tv,203.0.113.0/24,tcp,443,red,,on,off,", "2,on,addr,192.168.1.50,,,,3,,on,off,"]),
    ("down-1", ["1,on,host,tv,203.0.113.0/24,tcp,443,red,,on,off,", "2,on,addr,192.168.1.50,,,,3,,on,off,"]),
    ("delete-4", ["1,on,addr,192.168.1.50,,,,3,,on,off,", "2,off,mac,02:00:00:00:02:14,,,,block"]),
    ("disable-1", ["1,off,addr,192.168.1.50,,,,3,,on,off,", "2,on,host,tv"]),
    ("enable-9", ["3,on,mac,02:00:00:00:02:14,,,,block,,on,off," + remark("work laptop")]),
])
def test_each_action_of_the_list_does_its_one_thing_and_is_applied(web, button, rows):
    after = post(web, submit(page(web), button))
    assert 'id="policy-errors"' not in after, box(after)[:800]
    assert "Policies saved" in after and "Applied: 2 changes" in after and applied(web)
    text = stored(web).decode()
    assert all(row in text for row in rows), text
    assert len(text.splitlines()) == (2 if button.startswith("delete") else 3)


@pytest.mark.parametrize(("change", "row"), [
    ({"SRC_ADDR": "192.168.3.0/25", "EXIT": "red", "REMARK": "orange, lower half"},
     "4,on,addr,192.168.3.0/25,,,,red,,on,off," + remark("orange, lower half")),
    ({"SOURCE_TYPE": "host", "SRC_HOST": "tablet", "DESTINATIONS": "203.0.113.0/24, 198.51.100.7",
      "PROTOCOL": "udp", "PORTS": "8000:8100", "FALLBACK": "4", "DNS": None},
     "4,on,host,tablet,203.0.113.0/24|198.51.100.7/32,udp,8000:8100,3,4,on,off,"),
    ({"SOURCE_TYPE": "group", "SRC_GROUP": "kids", "EXIT": "6", "KILLSWITCH": None, "ENABLED": None},
     "4,off,group,kids,,,,6,,off,off,"),
    ({"SOURCE_TYPE": "mac", "SRC_MAC": "02:AA:00:00:00:01", "EXIT": "block"}, "4,on,mac,02:aa:00:00:00:01,,,,block"),
    ({"SOURCE_TYPE": "zone", "SRC_ZONE": "ORANGE", "EXIT": "3", "DNS": "on"}, "4,on,zone,ORANGE,,,,3,,on,on,"),
])
def test_a_policy_added_from_a_host_object_or_typed_is_stored_at_the_end(web, change, row):
    with open(os.path.join(web, "var/ipfire/zonevpn/settings"), "a") as handle:
        handle.write("TUNNEL_3_DNS=10.5.0.1\n")
    after = post(web, submit(page(web), "policy-save", **change))
    assert 'id="policy-errors"' not in after, box(after)[:800]
    lines = stored(web).decode().splitlines()
    assert len(lines) == 4 and lines[3].startswith(row), lines
    assert lines[0] == "1,on,addr,192.168.1.50,,,,3,,on,off,"  # the rest renumbered, not changed


def test_the_editor_shows_a_policy_and_saving_it_unchanged_leaves_the_file_byte_for_byte(web):
    shown = page(web, env={"QUERY_STRING": "edit=4"})
    assert "Edit policy 4" in shown and re.search(r'<option value="tv" selected>tv</option>', shown)
    assert 'value="203.0.113.0/24"' in shown and re.search(r'<option value="tcp" selected>', shown)
    after = post(web, submit(shown, "policy-save"))
    assert "Policies unchanged" in after and "Applied: 2 changes" in after, box(after)[:800]
    assert stored(web) == HAND.encode()


def test_an_edit_changes_only_that_policy(web):
    after = post(web, submit(page(web, env={"QUERY_STRING": "edit=4"}), "policy-save", PORTS="8443", EXIT="4"))
    assert "Policies saved" in after, box(after)[:800]
    assert stored(web).decode().splitlines()[1] == "2,on,host,tv,203.0.113.0/24,tcp,8443,4,,on,off,"


def refused(base: str, body: bytes, env: dict[str, str | None] | None = None) -> str:
    before = stored(base)
    html = post(base, body, env)
    assert stored(base) == before
    assert 'id="policy-errors"' in html and "Policies saved" not in html and "Policies unchanged" not in html
    assert not applied(base)  # nothing was applied
    return box(html)


@pytest.mark.parametrize(("button", "change", "env", "words"), [
    ("up-4", {}, {"HTTP_REFERER": "https://evil.example:444/cgi-bin/zonevpn.cgi"}, "did not come from this page"),
    ("up-4", {}, {"HTTP_ORIGIN": "https://evil.example"}, "did not come from this page"),
    ("up-4", {}, {"HTTP_REFERER": None}, "did not come from this page"),
    ("up-4", {"FINGERPRINT": None}, None, "not the complete form"),
    ("up-4", {"KEY": None}, None, "not the complete form"),
    ("up-4", {"ACTION": "rename"}, None, "not the complete form"),
    ("up-4", {"ACTION": "save"}, None, "not the complete form"),
    ("up-4", {"EXIT": "red"}, None, "a field this page does not have"),
    ("delete-4", {"KEY": "7"}, None, "there is no policy 7"),
    ("delete-4", {"KEY": "4;reboot"}, None, "there is no policy 4;reboot"),
    ("down-1", {"KEY": "9"}, None, "policy 9 cannot move further"),
    ("up-4", {"FINGERPRINT": fingerprint("")}, None, "the policies changed since the page was shown"),
    ("up-4", {"KEY": "4\n"}, None, "control characters"),
    ("policy-save", {"SRC_ADDR": None}, None, "not the complete form"),
    ("policy-save", {"ENABLED": "yes"}, None, "something other than on"),
    ("policy-save", {"REMARK": "a\x00b"}, None, "control characters"),
    ("policy-save", {"REMARK": "two\nlines"}, None, "control characters"),
    ("policy-save", {"SRC_ADDR": "192.168.1.300"}, None, "Source: not an IPv4 address or network"),
    ("policy-save", {"SRC_ADDR": "192.168.1.7/24"}, None, "Source: not an IPv4 address or network"),
    ("policy-save", {"SRC_ADDR": "10.99.0.1"}, None, "Source: 10.99.0.1/32 is inside no zone"),
    ("policy-save", {"SRC_ADDR": "192.168.1.5,7"}, None, "Source: may not hold a comma"),
    ("policy-save", {"SOURCE_TYPE": "host", "SRC_HOST": "ghost"}, None, "Source: choose one of the list"),
    ("policy-save", {"SOURCE_TYPE": "group", "SRC_GROUP": "broken"}, None, "Source: group"),
    ("policy-save", {"SOURCE_TYPE": "mac", "SRC_MAC": "02:00:00:00:02"}, None, "Source: not a MAC address"),
    ("policy-save", {"SOURCE_TYPE": "any"}, None, "Source: choose one of the list"),
    ("policy-save", {"DESTINATIONS": "bank.example"}, None, "Destinations (networks): not an IPv4"),
    ("policy-save", {"PROTOCOL": "icmp"}, None, "Protocol: must be tcp, udp or empty"),
    ("policy-save", {"PORTS": "443"}, None, "Destination ports: a port needs a protocol"),
    ("policy-save", {"PROTOCOL": "tcp", "PORTS": "70000"}, None, "Destination ports: ports are 1-65535"),
    ("policy-save", {"EXIT": "5"}, None, "Exit: not a tunnel that can be an exit"),
    ("policy-save", {"EXIT": "3;reboot"}, None, "Exit: not a tunnel that can be an exit"),
    ("policy-save", {"FALLBACK": "1"}, None, "Fallback: not a tunnel that can be an exit"),
    ("policy-save", {"EXIT": "red", "FALLBACK": "4"}, None, "Fallback: fallback tunnels need a tunnel"),
    ("policy-save", {"DNS": "on"}, None, "DNS through the tunnel: DNS through the tunnel needs TUNNEL_3_DNS"),
    ("policy-save", {"REMARK": "x" * 201}, None, "Remark: at most 200 characters"),
])
def test_every_refusal_leaves_the_policies_file_byte_for_byte_and_applies_nothing(web, button, change, env, words):
    typed = {"SRC_ADDR": "192.168.1.9", **change} if button == "policy-save" else change  # else only it is wrong
    words_found = refused(web, submit(page(web), button, **typed), env)
    assert words in words_found, words_found[:1200]


def test_a_page_made_before_the_file_changed_cannot_act_on_it(web):
    shown = page(web)
    post(web, submit(shown, "down-1"))  # another tab moved policy 1 down
    os.remove(os.path.join(web, LAST))
    for button in ("up-4", "delete-4", "policy-save"):  # the old page's forms: 4 is now policy 1
        typed = {"SRC_ADDR": "192.168.1.9"} if button == "policy-save" else {}
        assert "changed since the page was shown" in refused(web, submit(shown, button, **typed))


def test_a_reload_that_sends_the_same_post_again_does_not_move_twice(web):
    body = submit(page(web), "up-4")
    assert "Policies saved" in post(web, body)
    os.remove(os.path.join(web, LAST))
    assert "changed since the page was shown" in refused(web, body)


def test_a_refused_value_keeps_what_was_typed_escaped_but_a_foreign_post_does_not(web):
    body = submit(page(web), "policy-save", SRC_ADDR="192.168.1.300", REMARK='<script>alert(1)</script>')
    shown = refused(web, body)
    assert 'value="192.168.1.300"' in shown and "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "<script>alert" not in shown
    foreign = refused(web, body, {"HTTP_REFERER": "https://evil.example/"})
    assert "192.168.1.300" not in foreign and "alert(1)" not in foreign


def test_names_and_remarks_are_text_on_the_page(web):
    hosts = "1,<b>tv</b>,ip,192.168.1.50/255.255.255.255,,\n"
    write_fwhosts(web, hosts=hosts)
    with open(os.path.join(web, POLICIES), "w") as handle:
        handle.write(f"1,on,host,<b>tv</b>,,,,3,,on,off,{remark('<img src=x onerror=alert(1)>')}\n")
    shown = box(page(web))
    assert "&lt;b&gt;tv&lt;/b&gt;" in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert "<b>tv" not in shown and "<img" not in shown


def test_a_policy_an_earlier_one_covers_entirely_is_a_warning_on_the_page(web):
    with open(os.path.join(web, POLICIES), "w") as handle:
        handle.write("1,on,zone,BLUE,,,,3\n2,on,addr,192.168.2.128/25,203.0.113.0/24,tcp,443,red\n"
                     "3,on,addr,192.168.1.50,,,,3\n")
    shown = box(page(web))
    row = shown[shown.index('id="policy-2"'):shown.index('id="policy-3"')]
    assert 'class="is-warning"' in row and "Never matches: policy 1 covers it entirely." in row
    assert 'class="is-warning"' not in shown[shown.index('id="policy-3"'):]
    warnings = shown[shown.index('id="policy-warnings"'):shown.index('id="policy-box"')]
    assert "policy 2 (addr 192.168.2.128/25) can never match: policy 1 (zone BLUE)" in warnings


def test_the_list_shows_where_each_policys_traffic_leaves_now(web):
    status = {"generated": "2026-01-10T12:00:00+0000", "enabled": True, "in_sync": True, "zones": [],
              "policies": [{"number": 1, "source": "addr 192.168.1.50", "exit": "wg4", "bound": "wg3"},
                           {"number": 4, "source": "host tv", "exit": "red", "bound": "red"},
                           {"number": 12, "source": "addr 192.168.9.9", "exit": "refused", "bound": "wg3"}]}
    os.makedirs(os.path.join(web, "var/lib/zonevpn"))
    with open(os.path.join(web, "var/lib/zonevpn/status.json"), "w") as handle:
        json.dump(status, handle)
    with open(os.path.join(web, POLICIES), "a") as handle:
        handle.write("12,on,addr,192.168.1.60,,,,3\n")  # the status's policy 12 had another source
    shown = box(page(web))
    leaves = re.findall(r'<td class="leaves ([^"]*)">([^<]*)</td>', shown)
    red = "Internet" if os.path.isdir(IPFIRE_LANGS) else "red"  # IPFire's name for red, as on its pages
    assert leaves == [("", "mullvad (wg4) — fallback while wg3 is down or stale"), ("intf red", red),
                      ("", "disabled"), ("", "not applied yet")], leaves
    assert '<td class="intf green">192.168.1.50</td>' in shown


def test_the_forms_of_one_box_are_not_taken_for_the_others(web):
    """A policy form posted without ?policies is the settings form's business, and the reverse."""
    settings = os.path.join(web, "var/ipfire/zonevpn/settings")
    before = open(settings, "rb").read()
    shown = page(web)
    assert "not the complete form" in page(web, "POST", submit(shown, "up-4"))
    assert "not the complete form" in refused(web, b"ACTION=save&ENABLED=on&ROWS=x")
    assert stored(web) == HAND.encode() and open(settings, "rb").read() == before


def test_a_policies_file_that_cannot_be_read_offers_no_forms_and_is_never_written(web):
    path = os.path.join(web, POLICIES)
    os.remove(path)
    os.symlink("/etc/passwd", path)
    shown = box(page(web))
    assert "The policies file cannot be read" in shown and "<form" not in shown and "root:" not in shown
    assert "cannot be changed" in refused(web, b"ACTION=delete&KEY=1&FINGERPRINT=" + fingerprint("").encode())
    assert os.readlink(path) == "/etc/passwd"


def test_no_more_than_two_hundred_policies(web):
    with open(os.path.join(web, POLICIES), "w") as handle:
        handle.writelines(f"{i},on,addr,192.168.1.{i},,,,red\n" for i in range(1, 201))
    assert "already 200 policies" in refused(web, submit(page(web), "policy-save", SRC_ADDR="192.168.2.9"))


def test_the_apply_outcome_is_reported_as_it_was(web):
    failed = APPLY_OK.replace('"ok": true', '"ok": false').replace('"error": null', '"error": "the kernel said no"')
    addonctrl(web, f"ROOT={web}\n" + failed)
    after = box(post(web, submit(page(web), "delete-9")))
    assert "Policies saved" in after and "applying them failed: the kernel said no" in after
    assert "Applied:" not in after and b"02:00:00:00:02:14" not in stored(web)


def test_every_policy_string_exists_in_both_languages():
    keys = {f"zonevpn {kind}" for kind in ("addr", "mac", "zone", "host", "network", "group")}
    for lang in ("en", "de"):
        with open(os.path.join(REPO, "addon/lang", f"zonevpn.{lang}.pl"), encoding="utf-8") as handle:
            found = set(re.findall(r"^'([^']+)' =>", handle.read(), re.M))
        assert keys <= found, (lang, keys - found)


def test_german_page_names_the_refused_field_in_german(web):
    german(web)
    shown = refused(web, submit(page(web), "policy-save", SRC_ADDR="192.168.1.9", PORTS="443"))
    assert "Abgelehnt: Zielports: a port needs a protocol" in shown and "Ausgangsregeln" in shown


def _racer(base: str, body: bytes, pause: float, out) -> None:  # type: ignore[no-untyped-def]
    """One admin's POST in its own process; its write waits `pause` s, as a slow disk or CPU would make it."""
    from zonevpn.web import policy_page

    real = policy_page.write_policies

    def slow(*args):  # type: ignore[no-untyped-def]
        time.sleep(pause)
        real(*args)

    policy_page.write_policies = slow
    answer = post(base, body)
    out.put("saved" if "Policies saved" in answer else
            "stale" if "changed since the page was shown" in answer else answer[-500:])


def test_two_admins_adding_at_the_same_instant_lose_nothing_silently(web):
    """Both forms come from the same page; the first write is slowed so both reads would precede it. The
    edit lock makes the second read the first one's file: refused as stale, not a silent overwrite."""
    shown = page(web)
    bodies = [submit(shown, "policy-save", SRC_ADDR=f"192.168.3.{n}", EXIT="red") for n in (61, 62)]
    out = multiprocessing.get_context("fork").Queue()
    racers = [multiprocessing.get_context("fork").Process(target=_racer, args=(web, body, pause, out))
              for body, pause in zip(bodies, (0.5, 0.0), strict=True)]
    racers[0].start()
    time.sleep(0.2)  # the first holds the lock, sleeping before its write
    racers[1].start()
    for racer in racers:
        racer.join(10)
    answers = sorted(out.get(timeout=1) for _ in racers)
    rows = stored(web).decode()
    print(f"\n  two adds at once: {answers}; 192.168.3.61 stored {'192.168.3.61' in rows}, "
          f"192.168.3.62 stored {'192.168.3.62' in rows}")
    assert answers == ["saved", "stale"], answers
    assert "192.168.3.61" in rows and "192.168.3.62" not in rows, rows
