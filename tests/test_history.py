"""The history file (bounded, atomic, never fatal) and the kill switch's since/why bookkeeping; in the lab,
a churn run whose every engagement, seen by real packets, is in the history and the status counts."""

from __future__ import annotations

import json
import multiprocessing
import os
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from zonevpn import history, killswitch
from zonevpn.model import Config, Exit, Peer, Red, Zone
from zonevpn.paths import Paths
from zonevpn.plan import Link

BLUE = Zone("BLUE", "blue0", IPv4Address("192.168.2.1"), IPv4Network("192.168.2.0/24"))
GREEN = Zone("GREEN", "green0", IPv4Address("192.168.1.1"), IPv4Network("192.168.1.0/24"))


def peer(peer_id: int, name: str) -> Peer:
    return Peer(peer_id, True, "net", name, (IPv4Network("0.0.0.0/0"),), (),
                IPv4Interface(f"10.{peer_id + 2}.0.2/24"), peer_id)


WG3, WG4 = peer(3, "nordvpn"), peer(4, "mullvad")
CONFIG = Config(True, (GREEN, BLUE), (WG3, WG4), Red("red0", None), (Exit(BLUE, WG3, True, False, (WG4,)),), None)
UP = {"wg3": Link(True, frozenset({"10.5.0.2"})), "wg4": Link(True, frozenset({"10.6.0.2"}))}


def test_events_are_appended_read_back_and_a_torn_line_is_skipped(tmp_path):
    paths = Paths(str(tmp_path))
    history.record(paths, "engaged", zone="BLUE", detail="wg3 missing", now=1000.0)
    with open(paths.history, "a") as handle:
        handle.write('{"kind": "torn"')  # a writer killed mid-line
    history.record(paths, "released", zone="BLUE", detail="via wg3", now=1010.0, exit="wg3")
    events = history.read(paths)
    assert [(e["kind"], e["zone"], e["ts"]) for e in events] == [("engaged", "BLUE", 1000.0),
                                                                 ("released", "BLUE", 1010.0)]
    assert events[1]["exit"] == "wg3" and history.read(paths, kind="engaged")[0]["detail"] == "wg3 missing"
    assert history.format_event(events[0]).endswith("engaged  BLUE   wg3 missing")
    assert os.stat(paths.history).st_mode & 0o777 == 0o644  # the web page (nobody) reads it


def test_the_file_is_cut_to_the_last_events_and_keeps_the_newest(tmp_path, monkeypatch):
    paths = Paths(str(tmp_path))
    monkeypatch.setattr(history, "MAX_BYTES", 4000)
    monkeypatch.setattr(history, "KEEP", 20)
    for n in range(200):
        history.record(paths, "repair", zone="BLUE", detail=f"event {n}")
    assert os.path.getsize(paths.history) <= 4000 + 200
    events = history.read(paths, limit=1000)
    assert 20 <= len(events) < 60 and events[-1]["detail"] == "event 199"
    numbers = [int(e["detail"].split()[1]) for e in events]
    assert numbers == list(range(numbers[0], 200))  # nothing lost between cuts


def _append_many(root: str) -> None:
    for n in range(100):
        history.record(Paths(root), "repair", detail=f"{os.getpid()} {n}")


def test_concurrent_writers_lose_no_event_even_across_cuts(tmp_path, monkeypatch):
    monkeypatch.setattr(history, "MAX_BYTES", 10**9)
    workers = [multiprocessing.Process(target=_append_many, args=(str(tmp_path),)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(history.read(Paths(str(tmp_path)), limit=1000)) == 400


def test_recording_never_raises_where_it_cannot_write(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "lib").write_text("a file where the directory should be")
    history.record(Paths(str(tmp_path)), "error", detail="disk full")
    assert history.read(Paths(str(tmp_path))) == []


def observe(paths: Paths, exits: dict[str, str], before: dict[str, str] | None = None,
            links: dict[str, Link] | None = None, now: float = 0.0) -> None:
    killswitch.observe(paths, CONFIG, exits, before or exits, lambda: links or {}, now=now)


def test_engagement_release_failover_repair_and_switch_become_events_with_since_and_why(tmp_path, monkeypatch):
    paths = Paths(str(tmp_path))
    monkeypatch.setattr(killswitch, "reasons", lambda p, c, links, e: {
        "BLUE": killswitch.why(CONFIG.exits[0], links, {}, 180, until=e.get("BLUE"))})
    observe(paths, {"BLUE": "wg3"}, now=100)
    observe(paths, {"BLUE": "wg3"}, before={"BLUE": "refused"}, now=110)  # a reload, put back by its hook
    observe(paths, {"BLUE": "wg4"}, links={"wg4": UP["wg4"]}, now=120)
    observe(paths, {"BLUE": "refused"}, links={"wg4": Link(False, frozenset())}, now=130)
    assert killswitch.view(paths, now=131)["BLUE"] == {"since": 130, "why": "wg3 missing, wg4 down",
                                                       "engaged_since_boot": 1, "engaged_last_24h": 1}
    observe(paths, {"BLUE": "refused"}, now=140)  # still engaged: no second engagement
    observe(paths, {"BLUE": "wg3"}, now=150)
    observe(paths, {"BLUE": "red", "GREEN": "wg3"}, now=160)
    kinds = [(e["kind"], e["zone"], e["detail"]) for e in history.read(paths)]
    assert kinds == [
        ("repair", "BLUE", "route via wg3 put back (the kernel had dropped it with the tunnel's address: "
                           "the zone was refused, never sent to red)"),
        ("failover", "BLUE", "now leaves via wg4 (was wg3): wg3 missing"),
        ("engaged", "BLUE", "kill switch engaged: wg3 missing, wg4 down"),
        ("released", "BLUE", "the kill switch let go: the zone leaves via wg3 (engaged for 20 s: "
                             "wg3 missing, wg4 down)"),
        ("switch", "GREEN", "now leaves via wg3 (was red)"),
        ("switch", "BLUE", "now leaves via red (was wg3)")], kinds
    assert killswitch.view(paths, now=150 + killswitch.DAY)["BLUE"]["engaged_last_24h"] == 0
    assert killswitch.view(paths, now=150 + killswitch.DAY)["BLUE"]["engaged_since_boot"] == 1


def test_a_new_boot_starts_the_counts_afresh(tmp_path, monkeypatch):
    paths = Paths(str(tmp_path))
    monkeypatch.setattr(killswitch, "reasons", lambda *a: {"BLUE": "wg3 missing"})
    observe(paths, {"BLUE": "refused"}, now=1)
    assert killswitch.view(paths)["BLUE"]["engaged_since_boot"] == 1
    monkeypatch.setattr(killswitch, "_boot_id", lambda: "another boot")
    assert killswitch.view(paths) == {}


@pytest.mark.parametrize(("links", "ages", "held", "why"), [
    ({}, {}, False, "wg3 missing, wg4 missing"),
    ({"wg3": Link(True, frozenset()), "wg4": UP["wg4"]}, {"wg4": 500}, False,
     "wg3 has no address (needs 10.5.0.2), wg4 stale for 500 s (no handshake; STALE_AFTER=180)"),
    (UP, {}, True, "held: zonevpn is stopped (`zonevpn hold`, the initscript's stop) until its next start"),
])
def test_why_names_each_tunnels_fault(links, ages, held, why):
    assert killswitch.why(CONFIG.exits[0], links, ages, 180, held=held) == why


@pytest.mark.lab
def test_churn_history_lists_every_engagement_the_packets_saw(lab):
    """Events that engage the kill switch and events that must not; packets decide which did."""
    from conftest import bind

    bind(lab, BLUE_TUNNEL="3")
    lab.wire_hooks()
    expected, refused_now = 0, False

    def after(event: str) -> None:
        nonlocal expected, refused_now
        if event == "restart":  # stop, then start: only a stream sees the refusal in between
            lab.start_stream("BLUE", rate=100)
        {"stop": lambda: lab.wireguard("stop"), "start": lambda: lab.wireguard("start"),
         "reload": lambda: lab.wireguard("reload"), "restart": lambda: lab.wireguard("restart"),
         "delete": lambda: (lab.fw("ip", "link", "del", "wg3"), lab.zonevpn("status"))}[event]()
        refusals = lab.stop_stream("BLUE")["errors"] if event == "restart" else 0
        lab.reset_counters()
        probe = lab.probe("BLUE", timeout=2)  # refused: an ICMP error, or silence once the kernel rate-limits them
        refused = probe.seen is None
        assert probe.seen in (None, "192.0.2.10") and lab.red_count("BLUE") == 0, (event, probe)
        expected += (refused and not refused_now) + (refusals > 0)
        refused_now = refused

    for event in ("stop", "start", "reload", "restart", "delete", "reload", "reload", "stop", "start"):
        after(event)
    engaged = json.loads(lab.zonevpn("history", "--kind", "engaged", "--json").stdout)
    assert len(engaged) == expected >= 4, (expected, engaged, lab.zonevpn("history").stdout)
    assert all(e["zone"] == "BLUE" and "wg3" in e["detail"] for e in engaged), engaged
    released = json.loads(lab.zonevpn("history", "--kind", "released", "--json").stdout)
    assert len(released) == expected
    blue = next(z for z in json.loads(lab.zonevpn("status", "--json").stdout)["zones"] if z["zone"] == "BLUE")
    assert blue["killswitch_state"]["engaged_since_boot"] == expected == blue["killswitch_state"]["engaged_last_24h"]


def test_an_unexpected_failure_is_recorded_as_a_failed_apply_not_left_as_ok(tmp_path, mocker):
    """A defect cannot be produced for real on purpose: reconcile is replaced by one that raises
    (pytest-mock). The page and `status` read last-apply.json: an earlier "ok" must not stand."""
    from ipfire_files import make_root
    from zonevpn import commands
    from zonevpn.log import Log

    paths = Paths(make_root(str(tmp_path)))
    os.makedirs(os.path.dirname(paths.last_result))
    with open(paths.last_result, "w") as handle:
        json.dump({"ok": True, "changes": 3, "error": None}, handle)
    mocker.patch("zonevpn.engine.reconcile", side_effect=RuntimeError("netlink said 42"))
    with pytest.raises(RuntimeError):
        commands._run(paths, Log(quiet=True))
    with open(paths.last_result) as handle:
        last = json.load(handle)
    assert last["ok"] is False and last["error"] == "unexpected RuntimeError: netlink said 42", last
    assert [e["kind"] for e in history.read(paths)][-1:] == ["error"]
