"""Results of the identity graph: `Resolution` (one event's outcome), `Merge`, `Refusal`,
`Forgotten`; and `profile_id_for`, the profile id of an anchor (semantics in
`streams.identity.graph`)."""
from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

__all__ = [
    "Forgotten",
    "Merge",
    "Refusal",
    "Resolution",
    "profile_id_for",
]


def profile_id_for(anchor: str) -> str:
    """The profile id of a profile anchored on identifier `anchor` ("type:value")."""
    return "p-" + hashlib.sha256(anchor.encode()).hexdigest()[:20]


class Merge(NamedTuple):
    """Profiles `absorbed` now live on as `survivor` (a rename has one absorbed profile: the old
    id).

    `identifiers`: every identifier of the survivor after the merge ("type:value", sorted).
    `renamed`: the survivor is a new profile id (the anchor changed), not one of the merged
    profiles.
    """

    survivor: str
    absorbed: tuple[str, ...]
    identifiers: tuple[str, ...]
    event_id: str
    kind: str = "merge"
    renamed: bool = False

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "survivor": self.survivor, "absorbed": list(self.absorbed),
                "identifiers": list(self.identifiers), "event_id": self.event_id}


class Refusal(NamedTuple):
    """The event (resolved to `profile_id`) carried `identifier`, which was not linked to it."""

    profile_id: str
    identifier: str
    reason: str
    event_id: str
    kind: str = "refusal"

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "profile_id": self.profile_id, "identifier": self.identifier,
                "reason": self.reason, "event_id": self.event_id}


class Forgotten(NamedTuple):
    """A profile erased by `forget`: its id and every identifier it held (sorted)."""

    profile_id: str
    identifiers: tuple[str, ...]
    kind: str = "forget"

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "profile_id": self.profile_id,
                "identifiers": list(self.identifiers)}


class Resolution(NamedTuple):
    """Outcome of one event. Collections are tuples (immutable; the common case shares one empty
    tuple).

    `profile_id`: the event's profile, None for an anonymous event (no identifiers).
    `merges`: merges and renames caused by the event, to apply in order to per-profile state.
    `refused`: identifiers of the event that were not linked to its profile.
    `changed_ids`: identifiers whose profile changed (new, re-pointed by a merge or rename), sorted.
    """

    profile_id: str | None
    merges: tuple[Merge, ...] = ()
    refused: tuple[Refusal, ...] = ()
    changed_ids: tuple[str, ...] = ()
