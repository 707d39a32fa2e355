"""Where the page's state comes from: ClickHouse, the tables the worker writes, plus the saves
this server made that have not reached them yet.

- The person's choices are folded (`choices.current`) from their `consent` and `identify`
  touchpoints in `touchpoints` (every source: the preference centre, the preferences topic, an
  in-app opt-in), matched as `parcours profile` matches them: stitched to their profile, or
  carrying one of its identifiers (or the link's identifier, for someone no profile holds yet).
- The last messages come from `triggers`, for every profile id their touchpoints were stitched
  to, and say why with the rule's description from the rule pack.
- `Pending`: the touchpoints of this server's own saves, kept until ClickHouse holds their event
  ids (at most `PENDING_S`), so a page reloaded right after a save shows it (read your writes).
  Several servers behind one address each see the others' saves once the worker has written
  them, a second or two later.

ClickHouse is queried in a worker thread, one query at a time (one connection; chDB allows one
per process). A failure is logged without the identifier and shows the page from the pending
saves and the defaults, with "history cannot be shown".
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import orjson

from streams.cli.profile import PERSON_MATCH, person_profiles

__all__ = ["PENDING_S", "Pending", "Person", "PersonReader"]

log = logging.getLogger(__name__)
PENDING_S = 3600.0
RECENT = 10


@dataclass(frozen=True)
class Person:
    events: list  # (event time ms, event id, type, properties) of consent and identify events
    messages: list[dict] | None  # {at_ms, channel, rule, why}, newest first; None: unreadable


class PersonReader:
    def __init__(self, client, descriptions: dict[str, str]) -> None:
        self.client = client
        self.descriptions = descriptions
        self._lock = threading.Lock()

    async def read(self, identifier: str) -> Person:
        return await asyncio.to_thread(self._read, identifier)

    def _read(self, identifier: str) -> Person:
        kind, value = identifier.split(":", 1)
        try:
            with self._lock:
                return self._query(kind, value)
        except Exception as exc:  # noqa: BLE001 - the page still works from the pending saves
            log.warning("ClickHouse could not be read for a preference page: %s",
                        type(exc).__name__)
            return Person([], None)

    def _query(self, kind: str, value: str) -> Person:
        client = self.client
        found = client.query(
            "SELECT profile_id FROM identity_map FINAL WHERE identifier_type = {t:String} "
            "AND identifier = {v:String} AND is_deleted = 0 LIMIT 1",
            parameters={"t": kind, "v": value}).result_rows
        pid = found[0][0] if found else ""
        keys = [f"{kind}:{value}"]
        if pid:
            keys = [f"{t}:{v}" for t, v in client.query(
                "SELECT identifier_type, identifier FROM identity_map FINAL "
                "WHERE profile_id = {p:String} AND is_deleted = 0",
                parameters={"p": pid}).result_rows] or keys
        rows = client.query(
            "SELECT toUnixTimestamp64Milli(event_time), event_id, type, properties "
            f"FROM touchpoints FINAL WHERE type IN ('consent', 'identify') AND {PERSON_MATCH}",
            parameters={"p": pid, "identifiers": keys}).result_rows
        events = [(int(t), event_id, kind_, _props(text)) for t, event_id, kind_, text in rows]
        profiles = person_profiles(client, pid, keys)[0] if pid or rows else []
        profiles = [p for p in profiles if p]
        messages = []
        if profiles:
            for at, channel, rule in client.query(
                    "SELECT toUnixTimestamp64Milli(fired_at), channel, rule FROM triggers FINAL "
                    "WHERE has({profiles:Array(String)}, profile_id) "
                    "ORDER BY fired_at DESC, trigger_id LIMIT {n:UInt32}",
                    parameters={"profiles": profiles, "n": RECENT}).result_rows:
                messages.append({"at_ms": int(at), "channel": channel, "rule": rule,
                                 "why": self.descriptions.get(rule) or rule})
        return Person(events, messages)


def _props(text: str) -> dict:
    try:
        value = orjson.loads(text or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class Pending:
    """The touchpoints of this server's saves, per identifier, until ClickHouse holds them."""

    def __init__(self, keep_s: float = PENDING_S, max_people: int = 100_000) -> None:
        self.keep_s = keep_s
        self.max_people = max_people
        self._saved: dict[str, tuple[float, list]] = {}

    def add(self, identifier: str, events: list, now: float | None = None) -> None:
        """A save's touchpoints. A save states every choice, so it replaces the person's earlier
        pending saves: what is kept per person stays one save, however often they save."""
        now = time.monotonic() if now is None else now
        self._saved.pop(identifier, None)
        self._saved[identifier] = (now, list(events))  # last saved last: evicted last
        while len(self._saved) > self.max_people:
            self._saved.pop(next(iter(self._saved)))

    def merged(self, identifier: str, stored: list, now: float | None = None) -> list:
        """`stored` (from ClickHouse) with the pending saves it does not hold yet."""
        now = time.monotonic() if now is None else now
        entry = self._saved.get(identifier)
        if entry is None:
            return stored
        if now - entry[0] > self.keep_s:
            del self._saved[identifier]
            return stored
        held = {e[1] for e in stored}
        waiting = [e for e in entry[1] if e[1] not in held]
        if not waiting:
            del self._saved[identifier]
            return stored
        self._saved[identifier] = (entry[0], waiting)
        return stored + waiting
