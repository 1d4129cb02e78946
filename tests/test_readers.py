"""Readers: IPFire's files and zonevpn's settings into validated values, or one error naming the place."""

from __future__ import annotations

import pytest

from ipfire_files import ETHERNET, NET_PEER, RW_PEER, make_root
from zonevpn.config import load
from zonevpn.errors import InputError
from zonevpn.ipfire import read_peers, read_zones
from zonevpn.paths import Paths


@pytest.fixture
def root(tmp_path):
    return str(make_root(str(tmp_path)))


def test_zones_come_from_ethernet_settings_with_dotted_netmasks(root):
    zones = read_zones(Paths(root))
    assert [(z.name, z.device, str(z.network)) for z in zones] == [
        ("GREEN", "green0", "192.168.1.0/24"), ("BLUE", "blue0", "192.168.2.0/24"),
        ("ORANGE", "orange0", "192.168.3.0/24")]


def test_config_type_3_has_no_orange_even_if_orange_dev_is_left_over(tmp_path):
    root = make_root(str(tmp_path), ethernet=ETHERNET.replace("CONFIG_TYPE=4", "CONFIG_TYPE=3"))
    assert [z.name for z in read_zones(Paths(root))] == ["GREEN", "BLUE"]


def test_peer_rows_with_missing_trailing_fields_parse(root):
    peers = read_peers(Paths(root))
    phone = peers[0]
    assert (phone.id, phone.kind, phone.name, phone.local_address) == (1, "host", "phone", None)
    nord = next(p for p in peers if p.id == 3)
    assert nord.interface == "wg3" and nord.routes_everything and str(nord.local_address) == "10.5.0.2/32"


def test_load_binds_blue_to_wg3_with_kill_switch_on_by_default(root):
    config = load(Paths(root))
    assert [(e.zone.name, e.peer.interface, e.killswitch) for e in config.exits] == [("BLUE", "wg3", True)]


@pytest.mark.parametrize(("settings", "peers", "where", "field", "words"), [
    ("ENABLED=on\nPURPLE_TUNNEL=3\n", None, "zonevpn/settings:2", "PURPLE_TUNNEL", "unknown zone"),
    ("ENABLED=on\nBLUE_TUNNEL=1\n", None, "zonevpn/settings:2", "BLUE_TUNNEL", "road warrior"),
    ("ENABLED=on\nBLUE_TUNNEL=9\n", None, "zonevpn/settings:2", "BLUE_TUNNEL", "no WireGuard peer"),
    ("ENABLED=on\nBLUE_TUNNEL=3;reboot\n", None, "zonevpn/settings:2", "BLUE_TUNNEL", "readhash"),
    ("ENABLED=on\nBLUE_TUNNEL=3\nBLUE_TUNNEL=3\n", None, "zonevpn/settings:3", "BLUE_TUNNEL",
     "duplicate"),
    ("ENABLED=maybe\n", None, "zonevpn/settings:1", "ENABLED", "on or off"),
    ("ENABLED=on\nBLUE_TUNNEL=3\n", RW_PEER + NET_PEER.replace("0.0.0.0/0", "0.0.0.0/33"),
     "wireguard/peers:2", "remote_subnets", "not an IPv4 network"),
    ("ENABLED=on\nBLUE_TUNNEL=3\n", RW_PEER + "x,on,net,bad\n", "wireguard/peers:2", "id", "peer number"),
    ("ENABLED=on\nBLUE_TUNNEL=3\n", RW_PEER + NET_PEER.replace(",10.5.0.2", ",10.5.0.2,extra"),
     "wireguard/peers:2", None, "at most 15"),
    ("ENABLED=on\nBLUE_TUNNEL=3\n", RW_PEER + NET_PEER.replace(",10.5.0.2", ","),
     "zonevpn/settings:2", "BLUE_TUNNEL", "no local address"),
])
def test_bad_input_names_file_line_and_field(tmp_path, settings, peers, where, field, words):
    kwargs = {"peers": peers} if peers else {}
    root = make_root(str(tmp_path), settings=settings, **kwargs)
    with pytest.raises(InputError) as caught:
        load(Paths(root))
    err = caught.value
    assert f"{err.path}:{err.line}".endswith(where), str(err)
    assert err.field == field and words in str(err)


def test_missing_peers_file_is_named(tmp_path):
    root = make_root(str(tmp_path))
    (tmp_path / "var/ipfire/wireguard/peers").unlink()
    with pytest.raises(InputError, match=r"wireguard/peers: file is missing"):
        load(Paths(root))


def test_a_disabled_tunnel_keeps_the_zone_bound_and_warns(tmp_path):
    root = make_root(str(tmp_path), peers=RW_PEER + NET_PEER.replace("3,on,net", "3,off,net"))
    config = load(Paths(root))
    assert config.exits[0].peer.enabled is False
    assert "is disabled" in config.warnings[0]
