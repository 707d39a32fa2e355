"""Paths: which touchpoints count, and the path of touches per profile until a conversion closes it.

Plain data. A path is a list of touches ``[event_id, time_ms, channel, campaign, publisher]``
sorted by time; a conversion credits the touches at or before it within the lookback window, once
the watermark has passed it (the position models of models.py, per conversion), then starts a new
path. The data-driven models (markov, shapley) need counts over all paths: every closed path is
returned as a `path_record` (transitions, channel set), and `streams/attribution/datadriven.py`
computes their credit from the sums ClickHouse keeps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Sequence, TypedDict

from streams.attribution.config import AttributionConfig
from streams.attribution.datadriven import path_transitions
from streams.attribution.models import DAY_MS, CreditRow, Touch, credit_rows, revenue_of
from streams.eventtime.timers import timer_key
from streams.ingest.channels import has_campaign_params

NO_CONVERSION = -(2 ** 62)  # "last" of a profile that has had no conversion credited


def is_touch(tp: dict, config: AttributionConfig) -> bool:
    """A touch is a marketing contact: the configured types, plus a page_view with campaign
    params."""
    kind = tp["type"]
    if kind in config.touch_types:
        return True
    if kind == "page_view":
        return has_campaign_params((tp.get("context") or {}).get("url"))
    return False


def as_touch(tp: dict) -> Touch:
    return [tp["event_id"], tp["event_time"], tp["channel"], tp.get("campaign"),
            tp.get("publisher")]


def add_touch(touches: list, touch: Touch, max_touches: int) -> list:
    """Return the path with `touch` inserted in time order (idempotent on event_id)."""
    event_id, at = touch[0], touch[1]
    if any(t[0] == event_id for t in touches):
        return touches
    path = touches + [touch]
    if len(path) > 1 and path[-2][1] > at:  # late event: keep the path sorted by time, then id
        path.sort(key=lambda t: (t[1], t[0]))
    if len(path) > max_touches:
        path = path[-max_touches:]
    return path


def merge_paths(a: list, b: list, max_touches: int) -> list:
    seen = {t[0] for t in a}
    path = sorted(a + [t for t in b if t[0] not in seen], key=lambda t: (t[1], t[0]))
    return path[-max_touches:]

class PathRecord(TypedDict):
    """A closed path (`path_record`), converting or not: what the data-driven models count
    (the ClickHouse table attribution_paths adds computed_at)."""

    path_id: str  # the conversion's event_id; "open:<profile>:<first touch>" when not converted
    closed_at: int  # epoch ms: the conversion's time, or the last touch + lookback
    profile_id: str
    converted: int  # 1 or 0
    conversion_type: str  # "" when it did not convert
    revenue: float
    touches: int
    channels: list[str]  # of its touches, in time order
    channel_set: list[str]  # sorted, distinct
    transitions: list[list[int | str]]  # [order, from, to, count] (Markov, at each order)


def path_record(path_id: str, profile_id: str, closed_at: int, touches: Sequence[Touch],
                converted: bool, conversion_type: str, revenue: float,
                orders: Sequence[int]) -> PathRecord:
    """A closed path as the data-driven models count it: its channels in order, its channel set,
    and its Markov transitions at each order (start -> ... -> conversion | null)."""
    channels = [t[2] for t in touches]
    transitions = []
    for order in orders:
        for (a, b), n in path_transitions(channels, converted, order).items():
            transitions.append([order, a, b, n])
    return {"path_id": path_id, "closed_at": closed_at, "profile_id": profile_id,
            "converted": 1 if converted else 0, "conversion_type": conversion_type,
            "revenue": revenue, "touches": len(channels), "channels": channels,
            "channel_set": sorted(set(channels)), "transitions": transitions}


@dataclass
class PathBook:
    """Per-profile path state over a key-value state (BatchState): profile_id -> record.

    record = {"touches": [Touch...], "conversions": [recent conversion ids], "close": timer key,
              "pend": [credit timer keys], "last": time of the last conversion credited}

    A conversion is credited once the watermark has passed its event time (a "credit" timer), so
    every touch and identity link before it, on any input partition and within the allowed
    lateness, is applied first: the credit does not depend on arrival order. It credits the touches
    within its lookback and closes that path. Touches with no conversion for `lookback_days` close
    as a non-converting path when the watermark passes the last touch + lookback (a "path" timer).
    Every closed path is also returned as a `path_record` for the data-driven models.

    A touch arriving behind the watermark at or before the last conversion credited belongs to a
    path already closed: it is not added (the caller records why); a credited conversion is never
    re-issued. A merge keeps every touch of both profiles (none is dropped).
    """

    state: object  # BatchState
    config: AttributionConfig = field(default_factory=AttributionConfig)
    # streams.eventtime.timers.Timers; without it conversions are credited at once
    timers: object = None

    def on_event(self, tp: dict, credits: list[CreditRow], paths: list[PathRecord]) -> str | None:
        """Account for one stitched event; returns why a touch was not added, if it was not."""
        profile_id = tp.get("profile_id")
        if not profile_id:
            return None  # anonymous: nothing to join it with
        kind = tp["type"]
        cfg = self.config
        if kind in cfg.conversion_types:
            self._pend(profile_id, tp, credits, paths)
        elif is_touch(tp, cfg):
            record = self.state.get(profile_id)
            if record is None:
                self._save(profile_id, [as_touch(tp)], None, None)
                return None
            if tp["event_time"] <= record.get("last", NO_CONVERSION):
                closed = datetime.fromtimestamp(record["last"] / 1000, timezone.utc)
                return (f"touch not credited: its path closed with the conversion at "
                        f"{closed.isoformat(timespec='milliseconds')}, already credited")
            touches = record["touches"]
            path = add_touch(touches, as_touch(tp), cfg.max_touches)
            if path is not touches:
                self._save(profile_id, path, record, record.get("close"))
        return None

    def _save(self, profile_id: str, touches: list, record: dict | None, close: str | None,
              **changes) -> None:
        """Store the record with `touches` (and `changes`), moving its closing timer to the last
        touch + lookback."""
        key = None
        if self.timers is not None:
            deadline = touches[-1][1] + int(self.config.lookback_days * DAY_MS) if touches else None
            key = timer_key(deadline, profile_id, "path") if deadline is not None else None
            if close and close != key:
                self.timers.delete(close)
            if key and key != close:
                self.timers.add(key, {"k": "path", "at": deadline, "p": profile_id})
        new = {"conversions": [], **(record or {}), **changes, "touches": touches, "close": key}
        if not new.get("pend"):
            new.pop("pend", None)
        if touches or new["conversions"]:
            self.state.set(profile_id, new)
        else:
            self.state.delete(profile_id)

    def _pend(self, profile_id: str, tp: dict, credits: list[CreditRow],
              paths: list[PathRecord]) -> None:
        """A conversion: credited when the watermark passes its time (at once without timers)."""
        record = self.state.get(profile_id)
        seen = record["conversions"] if record else []
        if tp["event_id"] in seen:
            return  # the same conversion again: already credited or waiting
        conversion = {"event_id": tp["event_id"], "event_time": tp["event_time"],
                      "type": tp["type"], "properties": {"revenue": revenue_of(tp)}}
        seen = (seen + [tp["event_id"]])[-self.config.seen_conversions:]
        if self.timers is None:
            self._save(profile_id, record["touches"] if record else [], record, None,
                       conversions=seen)
            self._convert(profile_id, conversion, credits, paths)
            return
        key = self._credit_timer(profile_id, conversion)
        pend = (record.get("pend") or []) if record else []
        self._save(profile_id, record["touches"] if record else [], record,
                   record.get("close") if record else None, conversions=seen, pend=pend + [key])

    def _credit_timer(self, profile_id: str, conversion: dict) -> str:
        at = conversion["event_time"]
        key = timer_key(at, profile_id, "credit", conversion["event_id"])
        self.timers.add(key, {"k": "credit", "at": at, "p": profile_id, "c": conversion})
        return key

    def _convert(self, profile_id: str, conversion: dict, credits: list[CreditRow],
                 paths: list[PathRecord], **changes) -> None:
        cfg = self.config
        record = self.state.get(profile_id) or {"touches": [], "conversions": []}
        at = conversion["event_time"]
        since = at - cfg.lookback_ms(conversion["type"])
        credited = [t for t in record["touches"] if since <= t[1] <= at]
        credits.extend(credit_rows({**conversion, "profile_id": profile_id}, credited, cfg))
        paths.append(path_record(conversion["event_id"], profile_id, at, credited, True,
                                 conversion["type"], revenue_of(conversion), cfg.markov_orders))
        later = [t for t in record["touches"] if t[1] > at]
        self._save(profile_id, later, record, record.get("close"),
                   last=max(at, record.get("last", NO_CONVERSION)), **changes)

    def on_timer(self, value: dict, credits: list[CreditRow], paths: list[PathRecord]) -> None:
        if value["k"] == "credit":
            self._credited(value, credits, paths)
        else:
            self._closed(value, paths)

    def _credited(self, value: dict, credits: list[CreditRow], paths: list[PathRecord]) -> None:
        """The watermark passed a conversion: every earlier touch and link is in; credit it."""
        profile_id = value["p"]
        record = self.state.get(profile_id)
        if record is None:
            return
        key = timer_key(value["at"], profile_id, "credit", value["c"]["event_id"])
        self._convert(profile_id, value["c"], credits, paths,
                      pend=[k for k in record.get("pend") or () if k != key])

    def _closed(self, value: dict, paths: list[PathRecord]) -> None:
        """The watermark passed last touch + lookback: the journey closes without a conversion."""
        profile_id = value["p"]
        record = self.state.get(profile_id)
        if not record or not record["touches"]:
            return
        touches = record["touches"]
        first = touches[0]
        paths.append(path_record(f"open:{profile_id}:{first[0]}", profile_id, value["at"], touches,
                                 False, "", 0.0, self.config.markov_orders))
        self._save(profile_id, [], record, None)

    def on_merge(self, survivor: str, absorbed: Iterable[str]) -> None:
        """Move the paths and waiting conversions of absorbed profiles onto the survivor."""
        record = self.state.get(survivor)
        touches = record["touches"] if record else []
        conversions = record["conversions"] if record else []
        pend = list(record.get("pend") or ()) if record else []
        last = record.get("last", NO_CONVERSION) if record else NO_CONVERSION
        close = record.get("close") if record else None
        moved = False
        for old in absorbed:
            other = self.state.get(old)
            if other is None:
                continue
            touches = merge_paths(touches, other["touches"], self.config.max_touches)
            conversions = (conversions + other["conversions"])[-self.config.seen_conversions:]
            last = max(last, other.get("last", NO_CONVERSION))
            if self.timers is not None:
                if other.get("close"):
                    self.timers.delete(other["close"])
                for key in other.get("pend") or ():
                    value = self.timers.get(key)
                    self.timers.delete(key)
                    if value is not None:
                        pend.append(self._credit_timer(survivor, value["c"]))
            self.state.delete(old)
            moved = True
        if moved:
            changes = {"conversions": conversions, "pend": pend}
            if last != NO_CONVERSION:
                changes["last"] = last
            self._save(survivor, touches, record, close, **changes)

    def on_forget(self, profile_id: str) -> None:
        record = self.state.get(profile_id)
        if record and self.timers is not None:
            for key in [record.get("close"), *(record.get("pend") or ())]:
                if key:
                    self.timers.delete(key)
        self.state.delete(profile_id)

    def export(self, profile_id: str) -> dict | None:
        """The profile's record and its timers (closing, credits waiting), removed from here."""
        record = self.state.get(profile_id)
        if record is None:
            return None
        timers = {}
        if self.timers is not None:
            for key in [record.get("close"), *(record.get("pend") or ())]:
                value = self.timers.get(key) if key else None
                if value is not None:
                    timers[key] = value
                    self.timers.delete(key)
        self.state.delete(profile_id)
        return {"record": record, "timers": timers}

    def adopt(self, profile_id: str, exported: dict) -> None:
        """Put a record `export` gave (from another shard) back under `profile_id`."""
        self.state.set(profile_id, exported["record"])
        for key, value in exported["timers"].items():
            self.timers.add(key, value)

    def path(self, profile_id: str) -> list:
        record = self.state.get(profile_id)
        return record["touches"] if record else []
