"""Traits equal an independent computation over the same events.

Random event logs for a few people over years (several channels, attribution touches, purchases
with a revenue and sometimes an order reported twice, identify events declaring a persona and a
favourite store, identifiers that make profiles merge, gaps past the top-channel window, the lapse
and the RFM recency cuts, events a little out of order within the allowed lateness) go through
`Pipeline`. Each live profile's final `profile_traits` row is compared with a computation written
from the definitions (`reference.py`), over the raw events grouped by the profile they end up in
(their stitched profile re-mapped through the merges): first and last seen, distinct purchases and
their revenue, the last purchase, the lifecycle, the top channel, RFM, the declared traits, the
audiences and the row's `as_of` itself (the last event, or the last time-driven change the final
watermark has passed). The audience records alternate entered / exited per profile and audience
and end in the final membership; a merged-away profile ends deleted, out of every audience
(cause "merge").

Nothing of `streams.traits` is called to compute what is expected. An order reported again may
carry other identifiers than its first report: two profiles that saw one order and merge later
count it once, as its earliest report. Hand-made examples are in `test_examples.py`.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.traits.reference import (
    DAY,
    HOUR,
    MINUTE,
    PACKS,
    SECOND,
    T0,
    check,
    run,
)

# -- random logs ----------------------------------------------------------------------------------
CHANNELS = ("display", "email", "push", "search", "social", "store")
TYPES = ("impression", "click", "email_open", "email_click", "push_open", "sms_click",
         "store_visit", "page_view", "page_view", "product_view", "app_open", "purchase",
         "purchase", "purchase", "identify", "identify")
SHAPES = (("cookie",), ("cookie",), ("cookie", "email"), ("email",), ("phone",),
          ("cookie", "phone"), ("user", "email"), ("device",), ("device", "user"), ())
POOL = {"cookie": 4, "email": 3, "phone": 2, "user": 2, "device": 2}
GAPS = (SECOND, 45 * SECOND, HOUR, HOUR, DAY, DAY, 3 * DAY, 10 * DAY, 29 * DAY, 31 * DAY,
        91 * DAY, 181 * DAY, 366 * DAY)
URLS = ("https://shop.example/suv?utm_source=news&utm_medium=email", "https://shop.example/?gclid=k1",
        "https://shop.example/city", "https://shop.example/?ref=a")
REVENUES = (None, 0, 49.5, 100, 250, 499.99, 500, 1200, 6000)


def _value(kind: str, n: int) -> str:
    """Valid for ingest (an email or a phone it cannot normalise would be dropped)."""
    if kind == "email":
        return f"e{n}@example.com"
    if kind == "phone":
        return f"+3361000000{n}"
    return f"{kind[:1]}{n}"


def _event(draw, n: int, t: int, kind: str, ids: dict, orders: list,
           orders_anywhere: bool) -> dict:
    # a little out of order: within the allowed lateness (5 minutes)
    jitter = draw(st.sampled_from((0, 0, 0, 30 * SECOND, 200 * SECOND)))
    event = {"event_id": f"e{n:03d}", "event_time": t - jitter, "type": kind,
             "channel": draw(st.sampled_from(CHANNELS)), "ids": ids}
    props: dict = {}
    if kind == "purchase":
        how = draw(st.sampled_from(("none", "empty", "new", "new", "again")))
        revenue = draw(st.sampled_from(REVENUES))
        if how == "again" and orders:  # the same order reported again (the web, the store)
            order, first_ids, first_revenue = draw(st.sampled_from(orders))
            props["order_id"] = order
            if not orders_anywhere:
                event["ids"] = dict(first_ids)
            if draw(st.booleans()):
                revenue = first_revenue
        elif how in ("new", "again"):
            props["order_id"] = f"o{n}"
            orders.append((f"o{n}", ids, revenue))
        elif how == "empty":
            props["order_id"] = ""
        if revenue is not None:
            props["revenue"] = revenue
    elif kind == "identify":
        props["traits"] = draw(st.dictionaries(
            st.sampled_from(("persona", "favourite_store")),
            st.sampled_from(("a", "b", "s1", "s2", None, ["s1", "s3"])), min_size=1))
    elif kind in ("page_view", "product_view"):
        event["context"] = {"url": draw(st.sampled_from(URLS))}
        product = draw(st.sampled_from((None, "suv-1", "suv-2", "suv-2", "city-1")))
        if product is not None:
            props["product_id"] = product
    if props:
        event["properties"] = props
    return event


def event_log(draw, *, orders_anywhere: bool) -> list[dict]:
    """A log in file order: events of a few people, some in short bursts of one kind. An order
    reported again carries the identifiers of its first report (the same profile then) unless
    `orders_anywhere`."""
    t = T0
    orders: list[tuple[str, dict, float | None]] = []
    events: list[dict] = []
    for _ in range(draw(st.integers(2, 40))):
        t += draw(st.sampled_from(GAPS))
        kind = draw(st.sampled_from(TYPES))
        if events and draw(st.booleans()):  # the same person goes on
            ids = dict(events[-1]["ids"])
        else:
            shape = draw(st.sampled_from(SHAPES))
            ids = {k: _value(k, draw(st.integers(0, POOL[k] - 1))) for k in shape}
        events.append(_event(draw, len(events), t, kind, ids, orders, orders_anywhere))
        for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2)))):  # more of the same, soon
            t += draw(st.sampled_from((MINUTE, HOUR, DAY, 5 * DAY)))
            events.append(_event(draw, len(events), t, kind, dict(ids), orders,
                                 orders_anywhere))
    return events


def _cuts(draw, events: list[dict]) -> list[int]:
    return draw(st.lists(st.integers(0, len(events)), max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=st.sampled_from(sorted(PACKS)), data=st.data())
def test_traits_equal_the_reference_computation(pack, data):
    events = event_log(data.draw, orders_anywhere=True)
    rules, spec = PACKS[pack]
    pipeline, out = run(events, rules, _cuts(data.draw, events))
    check(events, pipeline, out, spec)
