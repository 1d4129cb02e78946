"""`zonevpn probe` in the lab: each exit tunnel asked for the address the world sees, through the tunnel
from its own address, looked up in a small location database built with libloc's own writer.

Stand-ins, both for what differs between this machine and IPFire:
- the "what is my address" service is the lab's internet host: an HTTP echo started here in its namespace
  (answers GET with the client's address, logs every request) and its UDP echo on 9002;
- `location` in the box: IPFire's python3 (3.10) has libloc's module; Debian builds it for its own python3,
  so the box's `location` runs Debian's tool with Debian's python3 (DEBIAN_LOCATION below).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import bind

pytestmark = pytest.mark.lab
VPN, VPN2, INTERNET = "192.0.2.10", "192.0.2.20", "203.0.113.10"
DEBIAN_PYTHON = os.path.realpath("/usr/bin/python3")  # by its own name: the box's python3 is IPFire's 3.10
DEBIAN_LOCATION = '#!/bin/sh\n# stand-in: Debian\'s libloc tool with the python3 Debian built it for\n' \
    f'exec {DEBIAN_PYTHON} /usr/bin/location "$@"\n'
HTTP_ECHO = """
import http.server, sys
class Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as log:
            log.write(f"{self.client_address[0]} {self.path}\\n")
        body = f"{self.client_address[0]}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer((sys.argv[1], 8080), Echo).serve_forever()
"""
# Networks of the lab's VPN provider: its two exits in two countries, an AS for the first
DATABASE = """
import location, sys
w = location.Writer()
w.vendor, w.description, w.license = "zonevpn lab", "test database", "CC0"
w.add_as(64500).name = "Lab VPN Provider"
n = w.add_network("192.0.2.0/28"); n.country_code, n.asn = "NL", 64500
w.add_network("192.0.2.16/28").country_code = "SE"
for code, name in (("NL", "Netherlands"), ("SE", "Sweden")):
    c = w.add_country(code); c.name, c.continent_code = name, "EU"
w.write(sys.argv[1])
"""


def _libloc_missing() -> str:
    if not shutil.which("location") or subprocess.run([DEBIAN_PYTHON, "-c", "import location"],
                                                      capture_output=True).returncode != 0:
        return "libloc is missing (make test installs Debian's location and python3-location)"
    return ""


def prepare(lab, url: str) -> str:  # type: ignore[no-untyped-def]
    """The location database and tool on the box, the HTTP echo on the internet host; its request log."""
    if _libloc_missing():
        pytest.skip(_libloc_missing())
    built = os.path.join(lab.scratch, "database.db")
    subprocess.run([DEBIAN_PYTHON, "-c", DATABASE, built], check=True)
    with open(built, "rb") as handle:  # in place of Debian's link to a data package not installed
        lab.box.write("var/lib/location/database.db", handle.read())
    lab.write_ipfire("usr/local/bin/location", DEBIAN_LOCATION, 0o755)
    script, log = os.path.join(lab.scratch, "http_echo.py"), os.path.join(lab.scratch, "http.log")
    with open(script, "w") as handle:
        handle.write(HTTP_ECHO)
    open(log, "w").close()
    lab._spawn("inet", sys.executable, script, INTERNET, log)
    with open(f"{lab.root}/var/ipfire/zonevpn/settings", "a") as settings:
        settings.write(f"PROBE_URL={url}\n")
    return log


def probe(lab) -> tuple[int, dict]:  # type: ignore[no-untyped-def, type-arg]
    result = lab.zonevpn("probe", "--json", "--timeout", "2")
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def test_each_exit_reports_the_providers_address_and_its_country(blue_with_fallback):
    two = blue_with_fallback  # two providers; blue bound to wg3, wg4 its fallback
    requests = prepare(two, f"http://{INTERNET}:8080/ip")
    two.zonevpn("status")
    with open(requests) as handle:
        assert handle.read() == "", "nothing may be contacted unless asked"
    code, report = probe(two)
    exits = {e["interface"]: e for e in report["exits"]}
    assert code == 0 and set(exits) == {"wg3", "wg4"}, report
    assert (exits["wg3"]["public"], exits["wg3"]["country"], exits["wg3"]["country_code"]) == \
        (VPN, "Netherlands", "NL"), exits["wg3"]
    assert exits["wg3"]["as"] == "AS64500 - Lab VPN Provider" and exits["wg3"]["source"] == "10.5.0.2"
    assert (exits["wg4"]["public"], exits["wg4"]["country_code"]) == (VPN2, "SE"), exits["wg4"]
    with open(requests) as handle:  # the service saw each provider, never red
        assert sorted(handle.read().split()) == sorted([VPN, "/ip", VPN2, "/ip"])
    text = two.zonevpn("probe").stdout
    assert "wg3 (nordvpn, zones BLUE) from 10.5.0.2: the world sees 192.0.2.10 — Netherlands [NL]" in text
    shown = json.loads(two.zonevpn("status", "--json").stdout)["last_probe"]
    assert shown["exits"][0]["public"] == VPN
    logged = two.zonevpn("history", "--kind", "probe").stdout
    assert "wg3 (nordvpn) via http://203.0.113.10:8080/ip: the world sees 192.0.2.10 (Netherlands)" in logged


def test_a_udp_service_works_and_a_missing_tunnel_fails_the_probe_without_touching_red(lab):
    bind(lab, BLUE_TUNNEL="3")
    prepare(lab, f"udp://{INTERNET}:9002")
    code, report = probe(lab)
    assert code == 0 and report["exits"][0]["public"] == VPN, report
    lab.fw("ip", "link", "del", "wg3")
    lab.reset_counters()
    code, report = probe(lab)
    assert code == 1 and report["exits"][0]["public"] is None and report["exits"][0]["error"], report
    assert lab.red_count("BLUE") == 0 and lab.tunnel_count("BLUE") == 0, lab.dump()


def test_no_probe_url_is_a_clear_error_and_contacts_nothing(lab):
    bind(lab, BLUE_TUNNEL="3")
    lab.reset_counters()
    result = lab.zonevpn("probe")
    assert result.returncode == 2 and "no PROBE_URL set" in result.stderr, result.stderr
    lab.write_zonevpn_settings(ENABLED="on", BLUE_TUNNEL="3", PROBE_URL="ftp://203.0.113.10/")
    result = lab.zonevpn("probe")
    assert result.returncode == 2 and "not a probe URL" in result.stderr and "PROBE_URL" in result.stderr
