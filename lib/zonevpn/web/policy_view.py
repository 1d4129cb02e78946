"""What the exit policies box shows, as IPFire's firewall rules page shows rules: each policy in order with its
source in its zone's colour, its exit and where its traffic leaves now (root's status.json), a policy that an
earlier one covers entirely marked as a warning, the actions, and the editor below."""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any, NamedTuple

from zonevpn.errors import InputError
from zonevpn.ipfire import read_wg_settings
from zonevpn.model import Peer, Policy
from zonevpn.paths import Paths
from zonevpn.policies import format_ports
from zonevpn.policy_config import Coverage, load_policies
from zonevpn.web import privileged
from zonevpn.web.form import describe
from zonevpn.web.lang import Text
from zonevpn.web.page import TEMPLATES, Notice
from zonevpn.web.policy_form import fingerprint

if TYPE_CHECKING:
    from zonevpn.web.policy_page import Box


class Editor(NamedTuple):
    key: str  # "" adds a policy at the end of the list
    policy: Policy | None  # the policy edited: its exit and fallbacks are offered even if no longer usable
    values: dict[str, str]  # each field as the browser will post it back


class Row(NamedTuple):
    policy: Policy
    source: str
    zone: str  # the source's zone, lower case, for IPFire's colours; "" when it is not one zone
    exit: str
    leaves: str  # where its traffic leaves now
    leaves_class: str
    covered_by: int | None  # the earlier policy that covers this one entirely
    first: bool
    last: bool


def render(t: Text, paths: Paths, box: Box, errors: list[str], notice: Notice | None,
           editor: Editor | None) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    warnings, covered = _analysis(t, paths, box, errors)
    status = privileged.read_json(paths.status) or {}
    last = len(box.policies) - 1
    rows = [Row(p, _source(t, p), _zone(box, p), _exit(t, p, box.peers), *_leaves(t, p, status, box.peers),
                covered.get(p.number), i == 0, i == last) for i, p in enumerate(box.policies)]
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.filters["ports"] = format_ports
    context = {"t": t, "rows": rows, "warnings": warnings, "errors": errors, "notice": notice, "editor": editor,
               "choices": box.choices, "editable": box.text is not None and box.choices is not None,
               "fingerprint": fingerprint(box.text or ""), "enabled": box.settings.enabled}
    return env.get_template("policies.html").render(context)


def _analysis(t: Text, paths: Paths, box: Box, errors: list[str]) -> tuple[list[str], dict[int, int]]:
    """The warnings an apply would give (a policy covered entirely, a disabled tunnel), and for each policy
    covered entirely the earlier one covering it; an error an apply would stop at, as an error."""
    if box.text is None or box.choices is None or not box.policies:
        return [], {}
    try:
        exits, warnings = load_policies(paths, box.settings, box.zones, box.peers,
                                        read_wg_settings(paths).get("ENABLED") == "on")
    except InputError as err:
        errors.append(t("zonevpn err policies apply", reason=str(err)))
        return [], {}
    covered, coverage = {}, Coverage()
    for exit_ in exits:
        earlier = coverage.first_covering(exit_.selectors)
        if earlier is not None:
            covered[exit_.policy.number] = earlier.policy.number
        coverage.add(exit_)
    return warnings, covered


def _source(t: Text, policy: Policy) -> str:
    if policy.source_type == "zone":
        return t.zone(policy.source)
    if policy.source_type in ("host", "network", "group"):
        return f"{policy.source} ({t('zonevpn ' + policy.source_type)})"
    return policy.source


def _zone(box: Box, policy: Policy) -> str:
    if policy.source_type == "zone":
        return policy.source.lower()
    if policy.source_type == "addr":
        net = IPv4Network(policy.source)
        return next((z.name.lower() for z in box.zones if net.subnet_of(z.network)), "")
    return ""


def _exit(t: Text, policy: Policy, peers: tuple[Peer, ...]) -> str:
    if policy.way == "red":
        return t("zonevpn direct", red=t.zone("red"))
    if policy.way == "block":
        return t("zonevpn blocked")
    by_id = {p.id: p for p in peers}
    options = [describe(i, by_id) for i in (policy.tunnel, *policy.fallbacks) if i is not None]
    labels = [o.label + (f" ({t(o.note)})" if o.note else "") for o in options]
    return labels[0] + (f"; {t('zonevpn fallback')}: {', '.join(labels[1:])}" if labels[1:] else "")


def _leaves(t: Text, policy: Policy, status: dict[str, Any], peers: tuple[Peer, ...]) -> tuple[str, str]:
    """From root's last status, if it is about this policy (same position and source): the text and the
    IPFire class that colours it."""
    if not policy.enabled:
        return t("zonevpn policy off"), ""
    entry = next((p for p in status.get("policies") or [] if isinstance(p, dict) and p.get("number") ==
                  policy.number and p.get("source") == f"{policy.source_type} {policy.source}"), None)
    where = str(entry.get("exit")) if entry else "not applied"
    if where == "red":
        return t.zone("red"), "intf red"
    if where in ("refused", "blocked"):
        return t("zonevpn refused") if where == "refused" else t("zonevpn blocked"), "policy is-blocked"
    if not where.startswith("wg"):
        return t("zonevpn not applied"), ""
    peer = next((p for p in peers if p.interface == where), None)
    text = f"{peer.name} ({where})" if peer else where
    bound = str(entry.get("bound") or "") if entry else ""
    return text + (f" — {t('zonevpn failover', bound=bound)}" if bound.startswith("wg") and bound != where
                   else ""), ""
