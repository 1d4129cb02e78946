"""The exit policies list's forms, both ways. Each action of the list is its own small form carrying the
ACTION, the policy's KEY and the FINGERPRINT of the policies file the page was made from; the editor (add or
edit one policy) carries every field of the policy besides. `changed` takes a posted form back: only the
complete form of one action is accepted, every value is checked, and a value that cannot be stored is
refused naming its field. It returns the whole new list; nothing is written here."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import NamedTuple

from zonevpn.errors import InputError
from zonevpn.model import Peer, Policy
from zonevpn.policies import MAX_POLICIES, SOURCE_TYPES, format_ports, parse_row
from zonevpn.web.form import Option, describe, exit_tunnels
from zonevpn.web.request import Refused

SOURCE_FIELDS = {"addr": "SRC_ADDR", "mac": "SRC_MAC", "zone": "SRC_ZONE", "host": "SRC_HOST",
                 "network": "SRC_NETWORK", "group": "SRC_GROUP"}
PICKED = ("zone", "host", "network", "group")  # chosen from a list, never typed
ROW_ACTIONS = ("up", "down", "delete", "enable", "disable")
ACTION_FIELDS = frozenset({"ACTION", "KEY", "FINGERPRINT"})
EDITOR_FIELDS = ACTION_FIELDS | set(SOURCE_FIELDS.values()) | {
    "SOURCE_TYPE", "DESTINATIONS", "PROTOCOL", "PORTS", "EXIT", "FALLBACK", "REMARK"}
CHECKBOXES = frozenset({"ENABLED", "KILLSWITCH", "DNS"})
MAX_REMARK = 200
# the policies file's column an error names -> the editor's label for it (a language key)
LABELS = {"source_type": "zonevpn source", "source": "zonevpn source", "destinations": "zonevpn destinations",
          "protocol": "zonevpn protocol", "ports": "zonevpn ports", "exit": "zonevpn exit",
          "fallbacks": "zonevpn fallback", "killswitch": "zonevpn killswitch", "dns": "zonevpn dns",
          "remark": "zonevpn remark", "enabled": "zonevpn enabled"}


def fingerprint(text: str) -> str:
    """Of the policies file's bytes as read ("" for a missing file): a form made from another state of the
    file is refused, so a stale page (or a reloaded POST) cannot move, delete or overwrite the wrong policy."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Choices(NamedTuple):
    """What the editor offers on this box now."""

    zones: tuple[str, ...]  # GREEN, BLUE, ORANGE as the box has them
    objects: dict[str, list[str]]  # IPFire's host objects: host/network/group -> names
    peers: tuple[Peer, ...]

    def exits(self, policy: Policy | None) -> tuple[Option, ...]:
        """The tunnels that can be an exit, and the edited policy's own tunnel, marked, if it no longer can."""
        by_id = {p.id: p for p in self.peers}
        options = tuple(describe(p.id, by_id) for p in exit_tunnels(self.peers))
        if policy and policy.tunnel is not None and str(policy.tunnel) not in {o.value for o in options}:
            options += (describe(policy.tunnel, by_id),)
        return options

    def fallbacks(self, policy: Policy | None) -> tuple[Option, ...]:
        """One tunnel each, and the edited policy's fallbacks as stored (several, or no longer usable)."""
        by_id = {p.id: p for p in self.peers}
        options = tuple(describe(p.id, by_id) for p in exit_tunnels(self.peers))
        stored = "|".join(map(str, policy.fallbacks)) if policy else ""
        if stored and stored not in {o.value for o in options}:
            parts = [describe(i, by_id) for i in policy.fallbacks]  # type: ignore[union-attr]
            options += (Option(stored, ", ".join(p.label for p in parts), next((p.note for p in parts if p.note),
                                                                                "")),)
        return options

    def names(self, kind: str) -> list[str]:
        return list(self.zones) if kind == "zone" else self.objects.get(kind, [])


def editor_values(policy: Policy | None, choices: Choices) -> dict[str, str]:
    """The editor's fields as a browser would post them back: empty for a new policy, else the policy's."""
    values = dict.fromkeys(EDITOR_FIELDS - ACTION_FIELDS, "")
    if policy is None:
        exits = choices.exits(None)
        return {**values, "SOURCE_TYPE": "addr", "EXIT": exits[0].value if exits else "red",
                "ENABLED": "on", "KILLSWITCH": "on"}
    values.update({
        "SOURCE_TYPE": policy.source_type, SOURCE_FIELDS[policy.source_type]: policy.source,
        "DESTINATIONS": " ".join(map(str, policy.destinations)), "PROTOCOL": policy.proto or "",
        "PORTS": format_ports(policy.ports) if policy.ports else "",
        "EXIT": str(policy.tunnel) if policy.way == "tunnel" else policy.way,
        "FALLBACK": "|".join(map(str, policy.fallbacks)), "REMARK": policy.remark})
    values.update({name: "on" for name, on in (("ENABLED", policy.enabled), ("KILLSWITCH", policy.killswitch),
                                               ("DNS", policy.dns)) if on})
    return values


def check_whole(fields: dict[str, str]) -> str:
    """The action of a complete form of the list, else Refused."""
    action = fields.get("ACTION", "")
    required = EDITOR_FIELDS if action == "save" else ACTION_FIELDS if action in ROW_ACTIONS else None
    if required is None or required - set(fields):
        raise Refused("zonevpn err incomplete")
    allowed = required | (CHECKBOXES if action == "save" else set())
    if set(fields) - allowed:
        raise Refused("zonevpn err unknown field")
    if any(fields[k] != "on" for k in CHECKBOXES & set(fields)):
        raise Refused("zonevpn err checkbox")  # a browser sends "on" for a ticked box, nothing otherwise
    return action


def changed(fields: dict[str, str], current: tuple[Policy, ...], text: str, choices: Choices,
            path: str) -> tuple[tuple[Policy, ...], Policy | None]:
    """The list the form asks for, made from `current` (parsed from `text`), and the policy it adds, edits
    or enables (for the cross-checks that need the box)."""
    action = check_whole(fields)
    if fields["FINGERPRINT"] != fingerprint(text):
        raise Refused("zonevpn err policies changed")
    keys = [p.number for p in current]
    key = fields["KEY"]
    if action == "save" and key == "":
        if len(current) >= MAX_POLICIES:
            raise Refused("zonevpn err too many", limit=MAX_POLICIES)
        new = policy_from(fields, choices, None, path)
        return (*current, new), new
    if not key.isdigit() or int(key) not in keys:
        raise Refused("zonevpn err no policy", number=key[:10])
    at = keys.index(int(key))
    rows = list(current)
    if action == "save":
        rows[at] = policy_from(fields, choices, current[at], path)
    elif action == "delete":
        return tuple(rows[:at] + rows[at + 1:]), None
    elif action in ("enable", "disable"):
        rows[at] = rows[at]._replace(enabled=action == "enable")
    else:
        to = at - 1 if action == "up" else at + 1
        if not 0 <= to < len(rows):
            raise Refused("zonevpn err cannot move", number=key)
        rows[at], rows[to] = rows[to], rows[at]
        return tuple(rows), None
    return tuple(rows), rows[at]


def policy_from(fields: dict[str, str], choices: Choices, old: Policy | None, path: str) -> Policy:
    """One policy from the editor's fields, checked as the policies file's reader checks a row."""
    kind = fields["SOURCE_TYPE"]
    if kind not in SOURCE_TYPES:
        raise Refused("zonevpn err policy value", field="zonevpn source", reason="zonevpn choose source")
    source = fields[SOURCE_FIELDS[kind]].strip()
    if kind in PICKED and source not in choices.names(kind):
        raise Refused("zonevpn err policy value", field="zonevpn source", reason="zonevpn choose source")
    exits = {o.value for o in choices.exits(old)} | {"red", "block"}
    if fields["EXIT"] not in exits:
        raise Refused("zonevpn err policy value", field="zonevpn exit", reason="zonevpn not an exit")
    if fields["FALLBACK"] not in {o.value for o in choices.fallbacks(old)} | {""}:
        raise Refused("zonevpn err policy value", field="zonevpn fallback",
                      reason="zonevpn not an exit")
    if len(fields["REMARK"]) > MAX_REMARK:
        raise Refused("zonevpn err policy value", field="zonevpn remark", reason="zonevpn too long")
    cells = {"source": source, "destinations": "|".join(t for t in re.split(r"[\s,|]+", fields["DESTINATIONS"]) if t),
             "protocol": fields["PROTOCOL"], "ports": fields["PORTS"].strip()}
    for column, value in cells.items():
        if "," in value:  # a comma would split the stored row into other columns
            raise Refused("zonevpn err policy value", field=LABELS[column], reason="zonevpn no commas")
    flags = ["on" if name in fields else "off" for name in ("ENABLED", "KILLSWITCH", "DNS")]
    row = ",".join(["1", flags[0], kind, cells["source"], cells["destinations"], cells["protocol"], cells["ports"],
                    fields["EXIT"], fields["FALLBACK"], flags[1], flags[2],
                    base64.b64encode(fields["REMARK"].encode()).decode()])
    try:
        return parse_row(path, 0, row)
    except InputError as err:
        raise refusal(err) from None


def refusal(err: InputError) -> Refused:
    """A policy the reader or the cross-checks would reject, as a refusal naming the editor's field."""
    return Refused("zonevpn err policy value", field=LABELS.get(err.field or "", "zonevpn source"),
                   reason=err.message)
