"""The exit policies list through IPFire's real web stack (tests/web/box.py: Apache with IPFire's vhost,
header.pl and the real setuid addonctrl running the project's initscript as root): a policy added on the page
is written by the web server user, applied by root into the box's kernel and shown where it leaves; a
foreign site's or a stale page's request changes and applies nothing; deleting it takes its rules away."""

from __future__ import annotations

import os
import pwd
import re

import pytest

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER
from policy_files import write_fwhosts
from test_web_http import LAST, PAGE, SAME, get, post
from test_web_policies import submit
from web.box import WebBox, unavailable

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=unavailable() or "-")
POLICIES = "var/ipfire/zonevpn/policies"
TV_RULES = re.compile(r"^20[0-3]:\s+from 192\.168\.1\.50 ", re.M)  # slot 0's prefs (README: 200+4i .. 203+4i)


@pytest.fixture(scope="module")
def web():
    with WebBox(peers=RW_PEER + NET_PEER + SITE_PEER) as box:
        write_fwhosts(box.root)  # IPFire's host objects, as fwhosts.cgi keeps them
        yield box


def stored(web: WebBox) -> bytes:
    with open(web.box.path(POLICIES), "rb") as handle:
        return handle.read()


def rules(web: WebBox) -> str:
    return web.box.run("ip", "rule").stdout


def test_a_policy_added_through_apache_is_applied_by_root_and_refusals_change_nothing(web):
    add = submit(get(web).text, "policy-save", SOURCE_TYPE="host", SRC_HOST="tv", EXIT="3")
    answer = post(web, add, SAME, path=PAGE + "?policies")
    assert answer.status == 200 and "Policies saved" in answer.text, answer.text[-3000:] + web.errors()[-2000:]
    shown = answer.text[answer.text.find('<a id="policies">'):]
    assert re.search(r"Applied: [1-9]\d* changes", shown), shown[:1500]
    assert stored(web) == b"1,on,host,tv,,,,3,,on,off,\n"
    assert os.stat(web.box.path(POLICIES)).st_uid == pwd.getpwnam("nobody").pw_uid  # written by the web user
    assert len(TV_RULES.findall(rules(web))) == 4, rules(web)  # root applied it into the box's kernel
    row = answer.text[answer.text.index('id="policy-1"'):]
    assert re.search(r'<td class="leaves policy is-blocked">refused \(kill switch\)</td>', row[:2500]), row[:2500]

    web.quiesce()  # the watcher this save started would apply on its own a moment later
    os.remove(web.box.path(LAST))
    before = stored(web)
    for body, headers in ((submit(answer.text, "delete-1"), {"Referer": "https://evil.example/x"}),
                          (add, SAME)):  # a foreign site; the add form sent again from the stale page
        refused = post(web, body, headers, path=PAGE + "?policies")
        assert refused.status == 200 and 'id="policy-errors"' in refused.text, refused.text[-2000:]
        assert stored(web) == before and not os.path.exists(web.box.path(LAST))
    assert "changed since the page was shown" in refused.text

    gone = post(web, submit(get(web).text, "delete-1"), SAME, path=PAGE + "?policies")
    assert "Policies saved" in gone.text and stored(web) == b"", gone.text[-3000:]
    assert not TV_RULES.findall(rules(web)), rules(web)
