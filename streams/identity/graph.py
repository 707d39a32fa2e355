"""Identity graph: stitch the identifiers a touchpoint carries into profiles.

Pure core (no Faust, no Kafka): the worker backs the two states with Faust tables that have
changelog topics; `parcours replay` and the tests back them with dicts. Both go through
`BatchState`, so one batch writes each key once, and nothing reaches the backing stores before
`flush()`.

The configuration (`IdentityConfig`) lives in `streams.identity.config`, the result records
(`Resolution`, `Merge`, `Refusal`, `Forgotten`, `profile_id_for`) in `streams.identity.records`;
both are re-exported here.

State (JSON plain data, so a changelog or a json round trip restores it exactly)
----------------------------------------------------------------------------------
- `ids`:      "type:value" -> profile_id, e.g. "cookie:c-9" -> "p-3f0c...",
              "email:<sha256>" -> "p-3f0c..."
- `profiles`: profile_id  -> {"type:value": first_seen_ms, ...}, the anchor always FIRST (dicts and
  JSON keep key order, so a changelog round trip keeps it): no separate anchor field to store

`first_seen_ms` of an identifier is the smallest `event_time` of the events that carried it. The
profile's own first-seen time is that of its anchor (`ids[anchor]`); it is not stored twice. The
record is one flat map keyed like the `ids` state; in memory the key strings (and the profile id
strings) are shared between the two states. Measured at 1M identifiers (`make bench`, ~2.8 per
profile): ~293 bytes of objects per identifier (~296 resident, allocator overhead included). A state
rebuilt from JSON (Faust table recovery) holds separate copies of the strings until `share_strings`
(called by the worker after recovery) makes the two states share them again.
Key order inside a record matters only for its first key (the anchor); after it, insertion order.
Every API answer is sorted.

Profile ids
-----------
The anchor of a profile is its identifier with the smallest
    (first_seen_ms, priority rank of its type, "type:value")
and profile_id = "p-" + the first 20 hex digits of sha256("type:value" of the anchor).
With no limits configured the profiles are the connected components of the link graph (identifiers
carried by one event are linked), and both the components and every identifier's first-seen time are
facts about the set of events, not their order: the profile ids are the same for any arrival order.

Merge, survivor, rename
-----------------------
An event whose identifiers belong to several profiles merges them (unless refused, below). The
survivor is the profile with the smallest anchor ("the profile first seen wins; ties broken by id",
stated over the identifiers' first-seen times so it does not depend on arrival order). When an event
changes a profile's anchor - a new identifier, or a late event lowering an identifier's first-seen
time, becomes the smallest - the profile is renamed. A rename is reported exactly like a merge with
one absorbed profile (the old id), so downstream state keyed by profile is re-keyed by one rule:
    for m in resolution.merges:
        state[m.survivor] = combine(state.pop(m.survivor, None),
                                    *(state.pop(a, None) for a in m.absorbed))
and `changed_ids` lists every identifier whose profile changed (the identity_map rows to rewrite).
A retired profile id never comes back (anchors only get smaller), except after `forget`. Ids have 80
bits: a collision between two live profiles is out of reach (~1e-6 at a billion profiles).

Limits (`IdentityConfig`)
-------------------------
- unique types (default user, loyalty): a profile holds at most one value of each.
- max_per_type (default cookie 5, device 5, email 3, phone 3; other types unlimited).
- priority (default user, loyalty, email, phone, device, cookie; other types after, alphabetically).

The event's identifiers are taken in priority order. The first one decides the event's profile R
(its profile, or a new profile when it is new). Each next identifier X:
- already in R: nothing to do;
- new: linked to R unless R would then exceed a limit for X's type; a refused new identifier is not
  linked anywhere (it stays unknown) and a `Refusal` is recorded;
- in another profile B: B is merged into R unless the union would hold two values of a unique type
  or more than max_per_type of a type; then only that link is refused: B keeps all its identifiers,
  including X, and a `Refusal` is recorded for each of the event's identifiers that stay in B.
The event always resolves, to R. Limits apply to links only: an existing profile is never split (a
profile over a limit tightened later is kept as it is, but nothing more is linked to it).
Every identifier the event carries counts as seen at `event_time`, linked or not.
With limits the outcome depends on the order of the events (the first user of a tablet keeps its
cookie); it is deterministic for a given order (the pipeline's: event time, then event id).

Family tablet, with the default config:
    resolve({"user": "u-41", "cookie": "c-9"}, "e1", t1)  -> profile A (user u-41, cookie c-9)
    resolve({"user": "u-42", "cookie": "c-9"}, "e2", t2)  -> new profile B (user u-42) and
        Refusal(B, "cookie:c-9", "unique type 'user' already holds u-42, not u-41", "e2")
    resolve({"cookie": "c-9"}, "e3", t3)                  -> A: the cookie stayed with the first
                                                             user.

Anonymous events (no identifiers) resolve to `profile_id=None`: they are unstitched, there is
nothing to key them by that a later event could ever carry; per-profile stages should skip them.

Cost
----
The common case (every identifier known, all in one profile, none seen earlier than recorded) is one
`ids` lookup per identifier, one `profiles` lookup and one first-seen comparison per identifier,
with no write and no allocation besides the keys and the result. A new link costs one copy of the
touched record per batch (copy-on-write, below); with limits, a scan of the records involved
(bounded by the limits); a merge is proportional to the identifiers of the profiles it re-points
(all of them on a rename). An event carrying a refused link takes this slower path every time and
reports the refusal again (a shared device keeps producing refusals, by design: each is a fact about
that event).

Copy-on-write: a record read from the backing store is never mutated; the first change in a batch
copies it, later changes in the same batch mutate the (pending) copy. So a batch that raises can be
discarded (`discard()`) and leaves the backing stores untouched.

Tolerance: the two states are separate tables; if they were ever left out of step (an identifier
pointing at a missing record, a record listing an identifier owned by another profile), resolve
treats the dangling identifier as new, does not steal a foreign identifier on a merge, and counts
the repair in `IdentityGraph.repairs`; `forget` erases every identifier pointing at the profile even
then.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from streams.identity.config import (
    DEFAULT_MAX_PER_TYPE,
    DEFAULT_PRIORITY,
    DEFAULT_UNIQUE_TYPES,
    IdentityConfig,
)
from streams.identity.limits import limited_keys, limits_of, link_conflict, merge_conflict
from streams.identity.records import Forgotten, Merge, Refusal, Resolution, profile_id_for
from streams.state import TOMBSTONE, BatchState

__all__ = [
    "DEFAULT_MAX_PER_TYPE",
    "DEFAULT_PRIORITY",
    "DEFAULT_UNIQUE_TYPES",
    "Forgotten",
    "IdentityConfig",
    "IdentityGraph",
    "Merge",
    "Refusal",
    "Resolution",
    "profile_id_for",
]

_EMPTY: tuple = ()
_new_resolution = tuple.__new__  # Resolution(pid, (), (), ()) without the generated __new__'s call
_ANONYMOUS = Resolution(None)
_RANK_CACHE_MAX = 4096


# ------------------------------------------------------------------------------------------------
# The graph
# ------------------------------------------------------------------------------------------------
class IdentityGraph:
    """Identity stitching over two states (see the module docstring for the exact semantics)."""

    __slots__ = ("_ids", "_profiles", "_config", "_ids_get", "_profiles_get", "_ids_lookups",
                 "_profiles_lookups", "_ranks", "_limits", "repairs")

    def __init__(self, ids: BatchState | MutableMapping[str, Any] | None = None,
                 profiles: BatchState | MutableMapping[str, Any] | None = None,
                 config: IdentityConfig | None = None) -> None:
        self._ids = ids if isinstance(ids, BatchState) else BatchState(ids)
        self._profiles = profiles if isinstance(profiles, BatchState) else BatchState(profiles)
        self._config = config if config is not None else IdentityConfig()
        self._ids_get = self._ids.get
        self._profiles_get = self._profiles.get
        self._ids_lookups = self._ids.lookups()
        self._profiles_lookups = self._profiles.lookups()
        self._ranks: dict[str, tuple[int, str]] = {}
        cfg = self._config
        self._limits = limits_of(cfg)
        self.repairs = 0  # inconsistencies between the two states found and healed (a metric)

    @property
    def config(self) -> IdentityConfig:
        return self._config

    @property
    def ids(self) -> BatchState:
        return self._ids

    @property
    def profiles(self) -> BatchState:
        return self._profiles

    # -- batch boundary ----------------------------------------------------------------------------
    def flush(self) -> int:
        """Write the batch's changes (each key once) to both backing stores; returns the writes."""
        return self._profiles.flush() + self._ids.flush()

    def discard(self) -> int:
        """Forget the batch's unflushed changes (a failed batch); returns the dropped keys."""
        return self._profiles.discard() + self._ids.discard()

    @property
    def pending(self) -> int:
        return self._profiles.pending + self._ids.pending

    # -- resolve -----------------------------------------------------------------------------------
    def resolve(self, event_ids: Mapping[str, str], event_id: str, event_time: int) -> Resolution:
        """Stitch one event: its profile, and the merges / refusals / re-pointed identifiers it
        caused.

        `event_ids`: {type: value} as in a normalised touchpoint (hashed email/phone); `event_time`:
        epoch milliseconds. Raises ValueError for malformed identifiers.
        """
        # Fast path: every identifier known, one profile, nothing seen earlier than recorded. Reads
        # go straight to the pending map, then the backing store (no Python call per read); anything
        # unusual (a tombstone, a miss, a second profile, a late event, bad input) takes the slow
        # path.
        try:
            if type(event_time) is not int or type(event_id) is not str:
                raise TypeError  # validated (or refused) on the slow path
            ids_pending, ids_backing = self._ids_lookups
            pid = None
            idmap: Any = None
            for t, v in event_ids.items():
                key = t + ":" + v
                p = ids_pending(key)
                if p is None:
                    p = ids_backing(key)
                    if p is None:
                        break
                elif p is TOMBSTONE:
                    break
                if p != pid:
                    if pid is not None:
                        break
                    pid = p
                    profiles_pending, profiles_backing = self._profiles_lookups
                    rec = profiles_pending(p)
                    if rec is None:
                        rec = profiles_backing(p)
                        if rec is None:
                            break
                    elif rec is TOMBSTONE:
                        break
                    idmap = rec
                if idmap[key] > event_time:
                    break
            else:
                if pid is not None:
                    return _new_resolution(Resolution, (pid, _EMPTY, _EMPTY, _EMPTY))
        except (KeyError, TypeError, AttributeError):
            pass  # an identifier missing from its record, or malformed input: the slow path heals
            #       or explains
        if len(event_ids) == 1 and type(event_ids) is dict:
            created = self._resolve_lone_new(event_ids, event_id, event_time)
            if created is not None:
                return created
        return self._resolve_slow(event_ids, event_id, event_time)

    def _resolve_lone_new(self, event_ids: dict, event_id: str,
                          event_time: int) -> Resolution | None:
        """The second most common case, without the slow path's bookkeeping: one valid identifier,
        held by no profile, gives a new profile anchored on it (exactly what `_resolve_slow` does
        then: no member, no limit to check, nothing lowered). None when the case does not apply."""
        if type(event_time) is not int or type(event_id) is not str:
            return None
        for t, v in event_ids.items():
            if type(t) is not str or type(v) is not str or not t or not v or ":" in t:
                return None
            key = t + ":" + v
            if self._ids_get(key) is not None:
                return None
            profile_id = self._create([(t, key)], event_time, [])
            return _new_resolution(Resolution, (profile_id, _EMPTY, _EMPTY, (key,)))
        return None

    def _rank(self, id_type: str) -> tuple[int, str]:
        r = self._ranks.get(id_type)
        if r is None:
            r = self._config.rank(id_type)
            if len(self._ranks) < _RANK_CACHE_MAX:
                self._ranks[id_type] = r
        return r

    @staticmethod
    def _bad_event(event_ids: Any, event_id: Any, event_time: Any) -> ValueError:
        """The error explaining why (event_ids, event_id, event_time) is not a valid event."""
        if not isinstance(event_id, str):
            return ValueError(f"event_id must be a string, got {event_id!r}")
        if not isinstance(event_ids, Mapping):
            return ValueError(f"event {event_id!r}: ids must be a mapping of type to value, "
                              f"got {event_ids!r}")
        if isinstance(event_time, bool) or not isinstance(event_time, int):
            return ValueError(f"event {event_id!r}: event_time must be epoch milliseconds (int), "
                              f"got {event_time!r}")
        for t, v in event_ids.items():
            if not isinstance(t, str) or not t or ":" in t:
                return ValueError(f"event {event_id!r}: identifier type {t!r} must be a non-empty "
                                  "string without ':'")
            if not isinstance(v, str) or not v:
                return ValueError(f"event {event_id!r}: identifier {t!r} must be a non-empty "
                                  f"string, got {v!r}")
        return ValueError(f"event {event_id!r}: invalid identifiers {event_ids!r}")

    def _resolve_slow(self, event_ids: Mapping[str, str], event_id: str,
                      event_time: int) -> Resolution:
        # Validate while building the work list: (rank, type, value) in priority order.
        if (not isinstance(event_id, str) or isinstance(event_time, bool)
                or not isinstance(event_time, int)):
            raise self._bad_event(event_ids, event_id, event_time)
        ranks = self._ranks
        items = []
        try:
            for t, v in event_ids.items():
                if not (isinstance(t, str) and isinstance(v, str) and t and v) or ":" in t:
                    raise ValueError
                items.append((ranks.get(t) or self._rank(t), t, v))
        except (AttributeError, TypeError, ValueError):
            raise self._bad_event(event_ids, event_id, event_time) from None
        if not items:
            return _ANONYMOUS
        if len(items) > 1:
            items.sort()

        ids_get = self._ids_get
        profiles_get = self._profiles_get
        limits = self._limits
        members: dict[str, dict] = {}                 # profiles joined into R, in priority order
        refused_profiles: dict[str, tuple[dict, str]] = {}  # profile -> (record, reason): refused
        new: list[tuple[str, str]] = []               # (type, key) linked to R, unknown before
        lowered: dict[str, list[tuple[str, str]]] = {}  # profile -> (type, key) seen earlier
        refusals: list[tuple[str, str]] = []          # (key, reason)
        held: dict[str, set[str]] = {}                # limited type -> keys R holds (with limits)

        for _, t, v in items:
            key = t + ":" + v
            pid = ids_get(key)
            if pid is not None:
                rec = members.get(pid)
                if rec is None:
                    known = refused_profiles.get(pid) if refused_profiles else None
                    if known is not None:
                        rec = known[0]
                        refusals.append((key, known[1]))
                    else:
                        rec = profiles_get(pid)
                        if rec is None:
                            self.repairs += 1  # dangling pointer (no record): relink as new
                            pid = None
                        elif not limits:
                            members[pid] = rec
                        else:
                            incoming = limited_keys(limits, rec)
                            reason = (merge_conflict(limits, self._rank, incoming, held)
                                      if (members or new) else None)
                            if reason is None:
                                members[pid] = rec
                                for lt, keys in incoming.items():
                                    held.setdefault(lt, set()).update(keys)
                            else:
                                refused_profiles[pid] = (rec, reason)
                                refusals.append((key, reason))
                if pid is not None:
                    # Seen now: lower its first-seen time if this event is earlier (or repair a
                    # record that does not list it), whether or not its profile joined R.
                    fs = rec.get(key)
                    if fs is None or fs > event_time:
                        if fs is None:
                            self.repairs += 1
                        lowered.setdefault(pid, []).append((t, key))
                    continue
            if limits:
                if members or new:
                    reason = link_conflict(limits, t, key, held)
                    if reason is not None:
                        refusals.append((key, reason))
                        continue
                if t in limits:
                    held.setdefault(t, set()).add(key)
            new.append((t, key))

        merges: list[Merge] = []
        changed: list[str] = []
        if members:
            profile_id = self._apply(members, new, lowered, event_time, event_id, merges, changed)
        else:
            profile_id = self._create(new, event_time, changed)
        if refused_profiles and lowered:
            for pid, (rec, _) in refused_profiles.items():
                if pid in lowered:
                    self._apply({pid: rec}, _EMPTY, lowered, event_time, event_id, merges, changed)

        if not (merges or refusals or changed):
            return _new_resolution(Resolution, (profile_id, _EMPTY, _EMPTY, _EMPTY))
        refused = tuple([Refusal(profile_id, key, reason, event_id) for key, reason in refusals])
        if len(changed) > 1:
            changed.sort()
        return _new_resolution(Resolution, (profile_id, tuple(merges), refused, tuple(changed)))

    # -- writes ------------------------------------------------------------------------------------
    def _own(self, pid: str, rec: dict) -> dict:
        """A record of profile `pid` that this batch may mutate (copy-on-write, once per batch)."""
        if self._profiles.is_pending(pid):
            return rec  # already this batch's own copy (or a record created in this batch)
        return dict(rec)  # keeps the order: the anchor stays first

    def _anchor_key(self, rec: dict) -> tuple[int, tuple[int, str], str]:
        for anchor in rec:  # the anchor is the record's first key
            return (rec[anchor], self._rank(anchor[:anchor.find(":")]), anchor)
        raise ValueError("empty profile record")

    def _create(self, new: list[tuple[str, str]], event_time: int, changed: list[str]) -> str:
        # All new identifiers share first_seen = event_time and `new` is in priority order: the
        # first one is the anchor.
        anchor = new[0][1]
        profile_id = profile_id_for(anchor)
        ids_set = self._ids.set
        record_ids: dict[str, int] = {}
        for _, key in new:
            record_ids[key] = event_time  # the same key object as in `ids`: one string in memory
            ids_set(key, profile_id)
            changed.append(key)
        self._profiles.set(profile_id, record_ids)
        return profile_id

    def _apply(self, members: dict[str, dict], new: Iterable[tuple[str, str]],
               lowered: dict[str, list[tuple[str, str]]], event_time: int, event_id: str,
               merges: list[Merge], changed: list[str]) -> str:
        """Fold `members` (+ new identifiers, + lowered first-seen times) into one profile; write
        it."""
        rank = self._rank
        best = None
        touched = False
        for pid, rec in members.items():
            cand = self._anchor_key(rec)
            if best is None or cand < best:
                best = cand
            for t, key in lowered.get(pid, _EMPTY):
                touched = True
                cand = (event_time, rank(t), key)
                if cand < best:
                    best = cand
        for t, key in new:
            touched = True
            cand = (event_time, rank(t), key)
            if cand < best:  # type: ignore[operator]
                best = cand
        anchor = best[2]  # type: ignore[index]
        survivor = profile_id_for(anchor)
        if len(members) == 1 and not touched and survivor in members:
            return survivor  # refusals only: nothing changes

        # The record to build on: the survivor's if it is one of the members (no re-pointing of its
        # identifiers), else the biggest (a rename re-points everything anyway; copy the least).
        if survivor in members:
            base_pid = survivor
        else:
            base_pid = max(members, key=lambda p: len(members[p]))
        base_ids = self._own(base_pid, members[base_pid])

        to_point: list[str] = []  # identifiers whose `ids` entry must name the survivor
        for pid, rec in members.items():
            for _, key in lowered.get(pid, _EMPTY):
                base_ids[key] = event_time
                to_point.append(key)  # (also repairs an identifier its record did not list)
            if pid == base_pid:
                if base_pid != survivor:
                    to_point.extend(base_ids)
                continue
            for key, fs in rec.items():
                old = base_ids.get(key)
                if old is None or fs < old:
                    base_ids[key] = fs
            to_point.extend(rec)
        ids_set = self._ids.set
        for _, key in new:
            base_ids[key] = event_time
            ids_set(key, survivor)
            changed.append(key)

        # Re-point the identifiers of absorbed profiles; never take one another live profile owns.
        ids_get = self._ids_get
        for key in to_point:
            current = ids_get(key)
            if current == survivor:
                continue
            if current is None or current in members or not self._lists(current, key):
                ids_set(key, survivor)
                changed.append(key)
            else:
                self.repairs += 1  # stale entry: `current` owns it; drop it from this record
                del base_ids[key]

        base = _anchor_first(base_ids, anchor, rank)
        profiles = self._profiles
        profiles.set(survivor, base)
        absorbed = sorted(pid for pid in members if pid != survivor)
        for pid in absorbed:
            profiles.delete(pid)
        if absorbed:
            merges.append(Merge(survivor, tuple(absorbed), tuple(sorted(base_ids)), event_id,
                                renamed=survivor not in members))
        return survivor

    def _lists(self, pid: str, key: str) -> bool:
        rec = self._profiles_get(pid)
        return rec is not None and key in rec

    # -- erasure and reads -------------------------------------------------------------------------
    def forget(self, identifier: str) -> Forgotten | None:
        """Erase the whole profile holding `identifier` ("type:value"): every identifier and the
        record.

        Returns the profile id and its identifiers (for the shell: delete its rows and state, emit
        a tombstone), or None when the identifier is unknown. A later event carrying one of them
        starts a new profile.
        """
        profile_id = self._ids_get(identifier)
        if profile_id is None:
            return None
        ids = self._ids
        rec = self._profiles_get(profile_id)
        erased: list[str] = []
        if rec is not None:
            for key in rec:
                if ids.get(key) == profile_id:
                    ids.delete(key)
                    erased.append(key)
        if rec is None or identifier not in erased:
            # The states are out of step: find every identifier still pointing at the profile (a
            # scan, only in this repair case) so that the erasure is complete.
            self.repairs += 1
            stray = [key for key, pid in ids.items() if pid == profile_id]
            for key in stray:
                ids.delete(key)
            erased.extend(k for k in stray if k not in erased)
        self._profiles.delete(profile_id)
        erased.sort()
        return Forgotten(profile_id, tuple(erased))

    def profile_of(self, identifier: str) -> str | None:
        """The profile holding `identifier` ("type:value"), or None."""
        return self._ids_get(identifier)

    def identifiers_of(self, profile_id: str) -> list[str]:
        """The identifiers ("type:value", sorted) of `profile_id`; empty when it is not a live
        profile."""
        rec = self._profiles_get(profile_id)
        if rec is None:
            return []
        return sorted(rec)

    def first_seen(self, profile_id: str) -> int | None:
        """Epoch ms of the profile's earliest identifier (its anchor); None when it is not live."""
        rec = self._profiles_get(profile_id)
        return None if rec is None else self._anchor_key(rec)[0]

    def export(self) -> Iterator[dict[str, str]]:
        """One {"type", "value", "profile_id"} per identifier, sorted by identifier
        (identity.jsonl)."""
        for key, profile_id in sorted(self._ids.items()):
            t, _, v = key.partition(":")
            yield {"type": t, "value": v, "profile_id": profile_id}


def _anchor_first(record: dict, anchor: str, rank) -> dict:
    """`record` with `anchor` as its first key (a record's first key IS its anchor). When a repair
    dropped the anchor, the smallest remaining identifier takes its place."""
    first = next(iter(record), None)
    if first == anchor:
        return record
    if anchor not in record:
        anchor = min((fs, rank(key[:key.find(":")]), key) for key, fs in record.items())[2]
        if anchor == first:
            return record
    return {anchor: record[anchor], **record}


def share_strings(ids: MutableMapping[str, Any], profiles: MutableMapping[str, Any]) -> int:
    """Make both states share one string object per identifier and per profile id again.

    A state rebuilt from JSON (Faust table recovery) holds separate copies of every key in `ids` and
    in the profile records (~480 instead of ~290 bytes per identifier). Call once after recovery;
    idempotent, values are unchanged. Returns the number of profile records rewritten.
    """
    canonical = {key: key for key in ids}
    pids = {pid: pid for pid in profiles}
    for key, pid in ids.items():
        ids[key] = pids.get(pid, pid)
    rewritten = 0
    for pid, rec in profiles.items():
        if isinstance(rec, dict):
            profiles[pid] = {canonical.get(k, k): first_seen for k, first_seen in rec.items()}
            rewritten += 1
    return rewritten
