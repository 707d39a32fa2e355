"""One profile's trait state, as plain data, and the traits it gives as of a time.

The state of a profile (one value per profile id, short keys; lists are replaced, never changed
in place, so a stored value can be shared):

    "b":  event id              the event that started this record (part of the row's key)
    "v":  int                   changes so far: the row's version
    "at": ms                    as of when the traits were last evaluated (never goes back)
    "fs", "ls": ms              event time of the first and last accepted touchpoint
    "n", "r", "lp":             distinct purchases, their revenue, the last one's time
    "po": [[t, order, revenue], ...]   the newest purchases (order id, else event id), to count
                                       each once
    "tc": [[t, channel, event_id], ...]  attribution touches inside the top-channel window
    "d":  {name: [value, t, event_id]}   declared traits (identify); the newest wins
    "cn": {count key: [[t, event_id], ...]}   events an audience counts, inside its window
    "a":  [audience id, ...]    the audiences the profile is in (in the pack's order)
    "s":  int                   audience transitions so far (their record ids)
    "lc": [[t, lifecycle], ...] when each lifecycle stage began (the newest few)
    "tk", "td": key, deadline   the profile's "traits" timer: the next time a trait or an
                                audience can change without an event
    "k":  bool                  the profile held a known identifier when last settled

Everything here is order-free where the stream needs it to be: first/last seen are a min and a
max, a purchase or touch delivered twice counts once, and the newest declared value wins by
(event time, event id).
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

from streams.traits.model import Rfm, TraitsConfig

__all__ = ["IDENTIFIED_TYPES", "MAX_PURCHASES", "MAX_TOUCHES", "apply_event", "derive",
           "lifecycle_of", "merge_states", "next_change", "rfm_of", "top_channel_of"]

IDENTIFIED_TYPES = frozenset({"email", "phone", "user", "loyalty"})
MAX_PURCHASES = 100  # purchase ids kept to count each once (a repeat of an older one counts again)
MAX_TOUCHES = 200  # touches kept for top_channel (the newest, inside its window)
MAX_COUNTED = 256  # events kept per audience count
MAX_HISTORY = 10


def _revenue(tp: dict) -> float:
    value = (tp.get("properties") or {}).get("revenue")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def order_of(tp: dict) -> str:
    """A purchase's identity: its order id (one order reported twice counts once), else its
    event id."""
    order = (tp.get("properties") or {}).get("order_id")
    return order if isinstance(order, str) and order else tp["event_id"]


# what an event changed, as `apply_event` reports it: the inputs the traits are derived from
NEW, FIRST_SEEN, LAST_SEEN, PURCHASE, TOUCH, OLDEST_TOUCH, DECLARED = (
    "new", "first_seen", "last_seen", "purchase", "touch", "oldest_touch", "declared")


def apply_event(st: dict, tp: dict, config: TraitsConfig, touch: bool) -> set[str]:
    """Fold one accepted touchpoint into `st` (a writable state, changed in place); returns what
    it changed (NEW, FIRST_SEEN, ...)."""
    t, eid = tp["event_time"], tp["event_id"]
    changed = set()
    if "b" not in st:
        st["b"], st["fs"], st["ls"] = eid, t, t
        changed.add(NEW)
    else:
        if t < st["fs"]:
            st["fs"] = t
            changed.add(FIRST_SEEN)
        if t > st["ls"]:
            st["ls"] = t
            changed.add(LAST_SEEN)
    kind = tp["type"]
    if kind in config.purchase_types:
        before = st.get("po")
        _purchase(st, t, order_of(tp), _revenue(tp))
        if st.get("po") is not before:
            changed.add(PURCHASE)
    if touch and tp.get("channel"):
        touches = st.get("tc") or []
        st["tc"] = _insert(touches, [t, tp["channel"], eid], MAX_TOUCHES)
        if st["tc"] is not touches:
            changed.add(TOUCH)
            if st["tc"][0][-1] == eid:  # the window's next expiry moved
                changed.add(OLDEST_TOUCH)
    if kind == "identify":
        declared = (tp.get("properties") or {}).get("traits")
        if isinstance(declared, dict) and declared:
            mine = dict(st.get("d") or {})
            for name, value in declared.items():
                cur = mine.get(name)
                if cur is None or (t, eid) > (cur[1], cur[2]):
                    mine[name] = [value, t, eid]
                    changed.add(DECLARED)
            st["d"] = mine
    return changed


def _purchase(st: dict, t: int, order: str, revenue: float) -> None:
    """Count an order once, as its earliest report (an order reported again by another
    channel, or the same event delivered twice, is not a purchase of its own)."""
    kept = st.get("po") or []
    report = [t, order, revenue]
    seen = next((p for p in kept if p[1] == order), None)
    if seen is not None:
        if report >= seen:
            return
        st["r"] = st["r"] - seen[2] + revenue  # an earlier report of it came late
        st["po"] = sorted([report if p is seen else p for p in kept])
        if st["n"] == len(kept):
            st["lp"] = st["po"][-1][0]
        return
    st["n"] = st.get("n", 0) + 1
    st["r"] = st.get("r", 0.0) + revenue
    st["lp"] = max(st.get("lp", t), t)
    st["po"] = sorted([*kept, report])[-MAX_PURCHASES:]


def _insert(items: list, entry: list, limit: int) -> list:
    """`items` (sorted by time) with `entry` [t, ..., event_id] in its place; the same event id
    at the same time is kept once."""
    t, eid = entry[0], entry[-1]
    if not items or t > items[-1][0]:  # the common case: the newest
        return [*items[1 - limit:], entry] if len(items) >= limit else [*items, entry]
    at = bisect_right(items, t, key=_time)
    for x in items[:at][::-1]:
        if x[0] != t:
            break
        if x[-1] == eid:
            return items
    return [*items[:at], entry, *items[at:]][-limit:]


def _time(entry: list) -> int:
    return entry[0]


def add_counted(st: dict, key: str, t: int, eid: str) -> None:
    counted = dict(st.get("cn") or {})
    counted[key] = _insert(counted.get(key) or [], [t, eid], MAX_COUNTED)
    st["cn"] = counted


def prune(st: dict, as_of: int, config: TraitsConfig, windows: dict[str, int]) -> None:
    """Drop the touches and counted events that have left their windows as of `as_of`."""
    tc = st.get("tc")
    if tc and tc[0][0] + config.top_channel_window_ms <= as_of:
        st["tc"] = [x for x in tc if x[0] + config.top_channel_window_ms > as_of]
    counted = st.get("cn")
    if counted:
        kept = {}
        for key, items in counted.items():
            within = windows.get(key)
            if within is None:
                continue  # an audience no longer in the pack
            if items and items[0][0] + within <= as_of:
                items = [x for x in items if x[0] + within > as_of]
            if items:
                kept[key] = items
        if kept != counted:
            st["cn"] = kept


# -- what the state gives, as of a time ----------------------------------------
def lifecycle_of(st: dict, known: bool, as_of: int, config: TraitsConfig) -> str:
    purchases = st.get("n", 0)
    if not purchases:
        return "known" if known else "anonymous"
    if as_of - st["lp"] >= config.lapse_after_ms:
        return "lapsed"
    return "customer" if purchases == 1 else "repeat"


def top_channel_of(st: dict, as_of: int, config: TraitsConfig) -> str | None:
    """The channel with the most touches in the window before `as_of`; ties alphabetically."""
    since = as_of - config.top_channel_window_ms
    counts: dict[str, int] = {}
    for t, channel, _eid in st.get("tc") or ():
        if since < t <= as_of:
            counts[channel] = counts.get(channel, 0) + 1
    if not counts:
        return None
    best = max(counts.values())
    return min(ch for ch, n in counts.items() if n == best)


def rfm_of(st: dict, as_of: int, rfm: Rfm) -> tuple[int, int, int] | None:
    """(R, F, M), each 1 to 5, or None before the first purchase."""
    purchases = st.get("n", 0)
    if not purchases:
        return None
    age = as_of - st["lp"]
    return (5 - sum(age >= cut for cut in rfm.recency_ms),
            1 + sum(purchases >= cut for cut in rfm.frequency),
            1 + sum(st["r"] >= cut for cut in rfm.monetary))


def derive(st: dict, known: bool, as_of: int, config: TraitsConfig,
           only: frozenset | None = None) -> dict[str, Any]:
    """The traits, by name (times in epoch ms), with the declared ones: what audiences and rules
    test, and what rows and the profile view show. `only`: the names needed (the lifecycle is
    always there; "declared" for the declared ones), to skip the rest."""
    values: dict[str, Any] = ({} if only is not None and "declared" not in only else
                              {name: value for name, (value, _t, _e) in (st.get("d") or {}).items()
                               if value is not None})
    values.update({
        "first_seen": st["fs"], "last_seen": st["ls"], "purchases": st.get("n", 0),
        "revenue": st.get("r", 0.0), "last_purchase_at": st.get("lp"),
        "lifecycle": lifecycle_of(st, known, as_of, config)})
    if only is None or "top_channel" in only:
        values["top_channel"] = top_channel_of(st, as_of, config)
    if only is None or "rfm" in only:
        rfm = rfm_of(st, as_of, config.rfm)
        values.update({"rfm": None if rfm is None else "".join(map(str, rfm)),
                       "rfm.r": None if rfm is None else rfm[0],
                       "rfm.f": None if rfm is None else rfm[1],
                       "rfm.m": None if rfm is None else rfm[2]})
    return values


def next_change(st: dict, as_of: int, config: TraitsConfig, windows: dict[str, int],
                touches: bool = True) -> int | None:
    """The next time after `as_of` a computed trait or a counted window changes with no event:
    a lapse, an RFM recency cut, a counted event leaving its window, and with `touches` a touch
    leaving the top-channel window."""
    times = []
    lp = st.get("lp")
    if lp is not None:
        times.append(lp + config.lapse_after_ms)
        times.extend(lp + cut for cut in config.rfm.recency_ms)
    tc = st.get("tc")
    if tc and touches:
        times.append(tc[0][0] + config.top_channel_window_ms)
    for key, items in (st.get("cn") or {}).items():
        if items and key in windows:
            times.append(items[0][0] + windows[key])
    later = [t for t in times if t > as_of]
    return min(later) if later else None


# -- merges ----------------------------------------
def merge_states(kept: dict, other: dict) -> dict:
    """The survivor's state with an absorbed profile's folded in (a new dict)."""
    if not kept:  # the survivor had no record: it takes the absorbed one's, as its own
        st = {**other, "v": other.get("v", 0) + 1, "a": [], "s": 0}
        st.pop("tk", None)
        st.pop("td", None)
        return st
    st = dict(kept)
    st["fs"], st["ls"] = min(kept["fs"], other["fs"]), max(kept["ls"], other["ls"])
    st["at"] = max(kept.get("at", 0), other.get("at", 0))
    st["v"] = max(kept.get("v", 0), other.get("v", 0)) + 1
    if other.get("n"):
        _merge_purchases(st, kept, other)
    for name, limit in (("tc", MAX_TOUCHES),):
        if other.get(name):
            st[name] = _union(kept.get(name) or [], other[name], limit)
    if other.get("cn"):
        counted = dict(kept.get("cn") or {})
        for key, items in other["cn"].items():
            counted[key] = _union(counted.get(key) or [], items, MAX_COUNTED)
        st["cn"] = counted
    if other.get("d"):
        declared = dict(kept.get("d") or {})
        for name, entry in other["d"].items():
            cur = declared.get(name)
            if cur is None or (entry[1], entry[2]) > (cur[1], cur[2]):
                declared[name] = entry
        st["d"] = declared
    if other.get("lc"):
        st["lc"] = _history([*(kept.get("lc") or ()), *other["lc"]])
    return st


def _merge_purchases(st: dict, kept: dict, other: dict) -> None:
    """Each order once, as its earliest report (what one profile that saw both would keep)."""
    reports = {p[1]: p for p in kept.get("po") or ()}
    dropped = []  # the other report of each order both profiles saw
    for p in other["po"]:
        cur = reports.get(p[1])
        if cur is None:
            reports[p[1]] = p
        else:
            dropped.append(max(cur, p))
            reports[p[1]] = min(cur, p)
    st["n"] = kept.get("n", 0) + other["n"] - len(dropped)
    st["r"] = kept.get("r", 0.0) + other["r"] - sum(p[2] for p in dropped)
    kept_list = sorted(reports.values())
    last = kept_list[-1][0]
    for side in (kept, other):  # a side with more purchases than ids kept: its last counts too
        if side.get("n", 0) > len(side.get("po") or ()):
            last = max(last, side["lp"])
    st["lp"] = last
    st["po"] = kept_list[-MAX_PURCHASES:]


def _union(a: list, b: list, limit: int) -> list:
    seen = {(x[0], x[-1]) for x in a}
    return sorted([*a, *(x for x in b if (x[0], x[-1]) not in seen)],
                  key=lambda x: (x[0], x[-1]))[-limit:]


def _history(entries: list) -> list:
    """Lifecycle stages in time order, a repeat of the stage before dropped, the newest few."""
    out: list = []
    for t, stage in sorted(entries, key=lambda e: (e[0], e[1])):
        if not out or out[-1][1] != stage:
            out.append([t, stage])
    return out[-MAX_HISTORY:]


def note_lifecycle(st: dict, stage: str, at: int) -> None:
    history = st.get("lc") or []
    if not history or history[-1][1] != stage:
        st["lc"] = [*history, [at, stage]][-MAX_HISTORY:]
