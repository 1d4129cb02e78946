"""The firewall diff: only our rules move, IPFire's and the admin's are never touched."""

from __future__ import annotations

from zonevpn.firewall import changes, parse_save, script
from zonevpn.plan import JUMPS, OWN_CHAINS
from zonevpn.state import Firewall

STOCK = """*filter
:FORWARD DROP [0:0]
:WGBLOCK - [0:0]
:POLICYFWD - [0:0]
:CUSTOMFORWARD - [0:0]
-A FORWARD -j CUSTOMFORWARD
-A FORWARD -i wg+ -j WGBLOCK
-A FORWARD -j POLICYFWD
-A WGBLOCK -s 10.0.0.0/24 -i wg0 -j RETURN
-A WGBLOCK -j REJECT --reject-with icmp-admin-prohibited
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:WGNAT - [0:0]
:CUSTOMPOSTROUTING - [0:0]
-A POSTROUTING -j CUSTOMPOSTROUTING
-A POSTROUTING -j WGNAT
COMMIT
"""
RET = "-d 192.168.2.0/24 -i wg3 -m comment --comment zonevpn -j RETURN"
WANT = Firewall((("filter", "ZONEVPN", ("-i blue0 -o wg3 -j ACCEPT",)),
                 ("nat", "ZONEVPN-NAT", ("-s 192.168.2.0/24 -o wg3 -j SNAT --to-source 10.5.0.2",)),
                 ("mangle", "ZONEVPN-MARK", ("-j CONNMARK --restore-mark",))), (RET,),
               tuple(j for j in JUMPS if j.target in ("ZONEVPN", "ZONEVPN-NAT", "ZONEVPN-MARK")))


def test_two_jumps_sharing_an_anchor_settle_after_one_pass():
    from zonevpn.state import Firewall as Fw

    want = Fw((("filter", "ZONEVPN", ("-j ACCEPT",)), ("filter", "ZONEVPN-KILL", ("-j REJECT",))), (),
              tuple(j for j in JUMPS if j.chain == "FORWARD"))
    first = changes(want, parse_save(STOCK), OWN_CHAINS, JUMPS)
    text = script(first)
    assert "-I FORWARD 3 -m comment --comment zonevpn -j ZONEVPN-KILL" in text
    assert "-I FORWARD 4 -m comment --comment zonevpn -j ZONEVPN" in text


def test_jumps_land_just_before_policyfwd_and_wgnat():
    steps = changes(WANT, parse_save(STOCK), OWN_CHAINS, JUMPS)
    inserts = {(r.table, r.chain): verb for verb, r in steps if verb.startswith("-I")}
    assert inserts[("filter", "FORWARD")] == "-I3"
    assert inserts[("nat", "POSTROUTING")] == "-I2"
    assert inserts[("filter", "WGBLOCK")] == "-I1"


def test_removal_deletes_only_our_rules_and_chains():
    live = parse_save(STOCK.replace("-A WGBLOCK -s 10", f"-A WGBLOCK {RET}\n-A WGBLOCK -s 10")
                      .replace(":CUSTOMFORWARD - [0:0]", ":CUSTOMFORWARD - [0:0]\n:ZONEVPN - [0:0]")
                      .replace("-A FORWARD -j POLICYFWD",
                               "-A FORWARD -m comment --comment zonevpn -j ZONEVPN\n"
                               "-A FORWARD -j POLICYFWD"))
    text = script(changes(Firewall((), (), ()), live, OWN_CHAINS, JUMPS))
    assert text.splitlines() == ["*filter", f"-D WGBLOCK {RET}",
                                 "-D FORWARD -m comment --comment zonevpn -j ZONEVPN",
                                 "-F ZONEVPN", "-X ZONEVPN", "COMMIT"]


def test_a_wgblock_rebuilt_by_a_reload_gets_our_returns_back_on_top():
    steps = changes(WANT, parse_save(STOCK), OWN_CHAINS, JUMPS)
    assert ("-I1", RET) in [(v, r.spec) for v, r in steps if r.chain == "WGBLOCK"]
