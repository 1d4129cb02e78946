"""`python tests/web/bench.py [N]`: the page's GET and POST against IPFire's stock wireguard.cgi, on IPFire's
real web stack in a box (tests/web/box.py), N requests each (default 25), median and spread printed. A
benchmark, not a test: timings depend on the machine; the page's budget is a GET within 1.5x a stock page's."""

from __future__ import annotations

import os
import re
import statistics
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

from ipfire_files import NET_PEER, RW_PEER, SITE_PEER  # noqa: E402
from test_web_units import browser_form  # noqa: E402
from web.box import PASSWORD, USER, WebBox  # noqa: E402
from web.client import auth, request  # noqa: E402

PAGE, STOCK = "/cgi-bin/zonevpn.cgi", "/cgi-bin/wireguard.cgi"


def timed(web: WebBox, n: int, method: str, path: str, body: bytes | None = None) -> list[float]:
    headers = {**auth(USER, PASSWORD), "Referer": f"https://127.0.0.1:444{path}",
               "Content-Type": "application/x-www-form-urlencoded"}
    times = []
    for _ in range(n + 2):  # the first two warm the caches, as on a box in use
        start = time.perf_counter()
        answer = request(web.netns, method, path, body, headers)
        times.append(time.perf_counter() - start)
        assert answer.status == 200, answer.text[-500:]
    return times[2:]


def line(name: str, times: list[float]) -> str:
    q = [t * 1000 for t in statistics.quantiles(times, n=10)]
    return f"{name:<48} median {statistics.median(times) * 1000:6.1f} ms  p10 {q[0]:6.1f}  p90 {q[-1]:6.1f}"


def main(n: int) -> None:
    with WebBox(settings="ENABLED=on\nBLUE_TUNNEL=3\n", peers=RW_PEER + NET_PEER + SITE_PEER) as web:
        web.box.run("/usr/local/bin/addonctrl", "zonevpn", "reload")  # a status to show, as after any apply
        stock = timed(web, n, "GET", STOCK)
        page = timed(web, n, "GET", PAGE)
        form = browser_form(request(web.netns, "GET", PAGE, headers=auth(USER, PASSWORD)).text)
        unchanged = timed(web, n, "POST", PAGE, form)
        print(f"{n} requests each, HTTPS over the box's loopback, Apache with IPFire's vhost")
        print(line("GET wireguard.cgi (stock)", stock))
        print(line("GET zonevpn.cgi", page))
        print(line("POST zonevpn.cgi (unchanged: addonctrl reload)", unchanged))
        print(f"GET ratio zonevpn/stock: {statistics.median(page) / statistics.median(stock):.2f}")
        assert re.search("Applied", request(web.netns, "POST", PAGE, form, {**auth(USER, PASSWORD), "Referer":
                         "https://127.0.0.1:444" + PAGE, "Content-Type": "application/x-www-form-urlencoded"}).text)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
