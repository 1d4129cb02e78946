"""Every file zonevpn reads or writes, under one root (`--root` / ZONEVPN_ROOT) so tests use a sandbox."""

from __future__ import annotations

import os
from typing import NamedTuple


class Paths(NamedTuple):
    root: str = "/"

    @classmethod
    def from_env(cls, root: str | None = None) -> Paths:
        return cls(root or os.environ.get("ZONEVPN_ROOT") or "/")

    def _at(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    # IPFire's own files (read only)
    @property
    def wg_settings(self) -> str:
        return self._at("var/ipfire/wireguard/settings")

    @property
    def wg_peers(self) -> str:
        return self._at("var/ipfire/wireguard/peers")

    @property
    def ethernet_settings(self) -> str:
        return self._at("var/ipfire/ethernet/settings")

    @property
    def red_iface(self) -> str:
        return self._at("var/ipfire/red/iface")

    @property
    def red_gateway(self) -> str:
        return self._at("var/ipfire/red/remote-ipaddress")

    @property
    def wg_initscript(self) -> str:
        return self._at("etc/rc.d/init.d/wireguard")

    @property
    def firewall_local(self) -> str:
        return self._at("etc/sysconfig/firewall.local")

    @property
    def fwhosts_hosts(self) -> str:
        """Firewall -> Firewall Groups: hosts (fwhosts.cgi)."""
        return self._at("var/ipfire/fwhosts/customhosts")

    @property
    def fwhosts_networks(self) -> str:
        return self._at("var/ipfire/fwhosts/customnetworks")

    @property
    def fwhosts_groups(self) -> str:
        return self._at("var/ipfire/fwhosts/customgroups")

    # zonevpn's own
    @property
    def unbound_dropin(self) -> str:
        """unbound's include directory for add-ons (IPFire's unbound.conf reads local.d/*.conf)."""
        return self._at("etc/unbound/local.d/zonevpn.conf")

    @property
    def settings(self) -> str:
        return self._at("var/ipfire/zonevpn/settings")

    @property
    def policies(self) -> str:
        """The ordered exit policies (policies.py), beside the settings and owned by the same user."""
        return self._at("var/ipfire/zonevpn/policies")

    @property
    def lock(self) -> str:
        return self._at("run/zonevpn.lock")

    # Root's own output for the web page, in a directory only root can write: var/ipfire/zonevpn belongs to
    # the web server user, who could plant a symlink there for root to follow.
    @property
    def status(self) -> str:
        """`zonevpn status --json` as last computed by root, for the web page (which runs as nobody)."""
        return self._at("var/lib/zonevpn/status.json")

    @property
    def last_result(self) -> str:
        """JSON summary of the last apply (time, changes, error) for `status` and the web page."""
        return self._at("var/lib/zonevpn/last-apply.json")

    @property
    def history(self) -> str:
        """Events (switches, engagements, failovers, repairs, errors), one JSON line each; history.py."""
        return self._at("var/lib/zonevpn/history.jsonl")

    @property
    def history_lock(self) -> str:
        return self._at("var/lib/zonevpn/history.lock")

    @property
    def probe_result(self) -> str:
        """The last `zonevpn probe`: each exit's public address and country, for the web page."""
        return self._at("var/lib/zonevpn/probe.json")

    @property
    def probe_request(self) -> str:
        """Left by the page's "Probe the exits" button; the initscript's reload (as root, through addonctrl)
        removes it and runs `zonevpn probe`. Only its presence counts: root never reads or follows it."""
        return self._at("var/ipfire/zonevpn/probe-requested")

    @property
    def killswitch_state(self) -> str:
        """Each zone's last seen way out, since when the kill switch holds and why, engagement counts.
        In run/ (tmpfs): a reboot starts the counts afresh, as "since boot" wants."""
        return self._at("run/zonevpn/killswitch.json")

    @property
    def location_db(self) -> str:
        """IPFire's location database (libloc), kept current by IPFire's own `location update`."""
        return self._at("var/lib/location/database.db")
