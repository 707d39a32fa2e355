"""What the traits stage writes: `profile_traits` rows and `audiences` records.

- `TraitsRow`: a profile's traits as of `as_of` (table `profile_traits`, a ReplacingMergeTree on
  (profile_id, created_by) by `version`; `FINAL` gives one row per live profile). `created_by`,
  the event that started the record, keeps a profile id absorbed by a merge and later used again
  apart from its old, deleted row.
- `AudienceRecord`: one `audience_entered` or `audience_exited` (topic `audiences`, keyed by
  profile; table `audience_membership`). Its `record_id` is deterministic (profile, record,
  transition number): a batch run again after a crash sends the same ids, so a consumer that
  keeps the ids it has seen, and the table, hold each transition once.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any, TypedDict

import orjson

from streams.traits.model import TIME_TRAITS, TRAIT_NAMES

__all__ = ["AudienceRecord", "ENTERED", "EXITED", "TraitsRow", "deleted_row", "iso",
           "payload_traits", "placeholder_text", "traits_object", "traits_row", "transition"]

ENTERED, EXITED = "audience_entered", "audience_exited"


class TraitsRow(TypedDict):
    profile_id: str
    created_by: str
    first_seen: int
    last_seen: int
    purchases: int
    revenue: float
    last_purchase_at: int | None
    lifecycle: str
    lifecycle_history: list  # [[epoch ms, stage], ...]
    top_channel: str  # "" when no touch in the window
    rfm: str  # "RFM" digits, "" before the first purchase
    rfm_r: int  # 0 before the first purchase
    rfm_f: int
    rfm_m: int
    declared: dict  # name -> the value as JSON text
    audiences: list
    consent: dict  # channel -> 0/1 (explicit choices and the pack's defaults), sorted
    as_of: int
    version: int
    is_deleted: int


class AudienceRecord(TypedDict):
    record_id: str
    kind: str  # ENTERED or EXITED
    audience: str
    profile_id: str
    at: int  # event time of the change (epoch ms)
    event_id: str | None  # the event that caused it (None for time, merge, forget)
    cause: str  # "event", "time" (a window or a lapse passed), "merge", "forget"
    seq: int  # the profile's transition number: orders a profile's records


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def traits_row(profile_id: str, st: dict, values: dict, consent: dict) -> TraitsRow:
    return {
        "profile_id": profile_id, "created_by": st["b"], "first_seen": st["fs"],
        "last_seen": st["ls"], "purchases": values["purchases"], "revenue": values["revenue"],
        "last_purchase_at": values["last_purchase_at"], "lifecycle": values["lifecycle"],
        "lifecycle_history": [list(x) for x in st.get("lc") or ()],
        "top_channel": values["top_channel"] or "", "rfm": values["rfm"] or "",
        "rfm_r": values["rfm.r"] or 0, "rfm_f": values["rfm.f"] or 0, "rfm_m": values["rfm.m"] or 0,
        "declared": {name: orjson.dumps(value).decode()
                     for name, (value, _t, _e) in sorted((st.get("d") or {}).items())
                     if value is not None},
        "audiences": list(st.get("a") or ()),
        "consent": {ch: int(ok) for ch, ok in consent.items()},  # sorted by consent_of
        "as_of": st["at"], "version": st["v"], "is_deleted": 0,
    }


def deleted_row(profile_id: str, st: dict) -> TraitsRow:
    """The row that deletes a profile's record (merged into another): its key and version, and
    nothing of the person."""
    empty = {"purchases": 0, "revenue": 0.0, "last_purchase_at": None, "lifecycle": "",
             "top_channel": None, "rfm": None, "rfm.r": None, "rfm.f": None, "rfm.m": None}
    row = traits_row(profile_id, {"b": st["b"], "fs": 0, "ls": 0, "at": 0,
                                  "v": st.get("v", 0) + 1}, empty, {})
    row["is_deleted"] = 1
    return row


def transition(profile_id: str, st: dict, audience: str, entered: bool, at: int,
               event_id: str | None, cause: str) -> AudienceRecord:
    """The record of one membership change (`st["s"]` counted up in place)."""
    seq = st["s"] = st.get("s", 0) + 1
    record_id = hashlib.sha256(f"{profile_id}|{st['b']}|{seq}".encode()).hexdigest()[:32]
    return {"record_id": record_id, "kind": ENTERED if entered else EXITED,
            "audience": audience, "profile_id": profile_id, "at": at, "event_id": event_id,
            "cause": cause, "seq": seq}


def traits_object(values: dict) -> dict[str, Any]:
    """The `traits` of the profile view: the computed names (times as ISO 8601 UTC; `rfm` as
    {r, f, m, score}) then the declared traits."""
    out: dict[str, Any] = {}
    for name in TRAIT_NAMES:
        value = values.get(name)
        if name in TIME_TRAITS:
            value = iso(value)
        elif name == "rfm":
            value = None if value is None else {"r": values["rfm.r"], "f": values["rfm.f"],
                                                "m": values["rfm.m"], "score": value}
        out[name] = value
    for name, value in values.items():
        if name not in out and not name.startswith("rfm."):
            out[name] = value
    return out


def placeholder_text(values: dict, name: str) -> str:
    """How a payload's {trait.NAME} shows the trait: ISO 8601 for a time, "" for none, a list's
    items joined by commas, an RFM as its three digits."""
    value = values.get(name)
    if value is None:
        return ""
    if name in TIME_TRAITS:
        return iso(value) or ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def payload_traits(rule) -> tuple[str, ...]:
    """The traits a rule's payloads name ({trait.NAME}), the arms' too, sorted."""
    from streams.moments.rules.syntax import PLACEHOLDER_RE, TRAIT_PLACEHOLDER

    texts = [*rule.action.payload.values()]
    for message in rule.action.messages:
        texts.extend(message.payload.values())
    for arm in (rule.experiment.arms if rule.experiment is not None else ()):
        texts.extend((arm.action or {}).get("payload", {}).values())
    return tuple(sorted({name[len(TRAIT_PLACEHOLDER):] for text in texts
                         for name in PLACEHOLDER_RE.findall(str(text))
                         if name.startswith(TRAIT_PLACEHOLDER)}))
