"""One person's journey (`build_journey`): how many sessions, when, how each one starts (the
entry), on which device; the sessions themselves are `web_sessions` and `app_and_store`."""
from __future__ import annotations

from datetime import datetime

from streams.simulate.app_and_store import app_session, passing_by, store_session
from streams.simulate.catalogue import SITE, bucket, cumulative
from streams.simulate.channels import ENTRIES, HOURLY_CUM
from streams.simulate.clock import DAY, HOUR, MINUTE, SESSION_BUDGET
from streams.simulate.person import Device
from streams.simulate.touchpoints import Touchpoints
from streams.simulate.web_sessions import web_session

# Share of sessions on the phone, per entry, for people who also have a desktop browser.
_MOBILE_SHARE = {"search": 0.55, "search_organic": 0.5, "display": 0.5, "social": 0.85,
                 "social_organic": 0.85, "email": 0.6, "affiliate": 0.4, "video": 0.6,
                 "direct": 0.45}
# (Defined here, not imported: `_MOBILE_SHARE.get(...)` on an imported name compiles to a
# plain attribute load instead of the method-call fast path.)


def build_journey(tp: Touchpoints, first_ms: int) -> list[tuple[int, dict]]:
    """The person's touchpoints from a first session at `first_ms`, as (epoch ms, raw event)
    pairs (`tp.out`), in the order they were built, not in time order."""
    rng, p = tp.rng, tp.p
    if p.converts:
        planned = 2 + min(int(rng.expovariate(0.45)), 7)
    else:
        planned = 1 + min(int(rng.expovariate(0.8)), 6)
    times = [first_ms]
    while len(times) < planned:
        nxt = _next_session(tp, times[-1])
        if nxt is None:
            break
        times.append(nxt)
    if p.leads and p.converts and len(times) == 1:
        # The lead (a test drive request) comes before the purchase: squeeze a session in.
        later = first_ms + tp.span(2 * HOUR, 5 * HOUR)
        if later <= tp.end_limit:
            times.append(later)
    n = len(times)
    lead_at = -1
    if p.leads:
        lead_at = tp.span(0, n - 1) if (p.converts and n > 1) else n - 1
    desktop_first = 1 + tp.span(0, n - 1) if (p.desktop is not None and n > 1) else -1

    # Cross-device people who get linked: identified on the phone in the first session (a
    # login, or the newsletter opened there), then on the desktop (a login, or the click).
    linking = p.link is not None and desktop_first > 0
    for s, t in enumerate(times):
        if s and p.app_onboarded and rng.random() < 0.15:
            passing_by(tp, t - tp.span(10 * MINUTE, 90 * MINUTE))
        converting = p.converts and s == n - 1
        forced_desktop = s == desktop_first
        phone_link = linking and s == 0
        email_link = (linking and forced_desktop and p.link == "email"
                      and not p.unsubscribed)
        login_link = linking and p.link == "login" and (forced_desktop or phone_link)
        if converting and p.purchase_kind == "store":
            entry = "store"
        elif converting and p.purchase_kind == "app":
            entry = "push" if p.push_opt_in and rng.random() < 0.4 else "app"
        elif email_link:
            entry = "email"         # opened on the phone, clicked on the desktop: linked
        elif converting or s == lead_at or forced_desktop or phone_link:
            entry = _pick_entry(tp, web_only=True, desktop=forced_desktop, converting=converting)
        elif s == 0 and p.app_device is not None and rng.random() < 0.7:
            entry = "app"           # the app is where many app users start
        else:
            entry = _pick_entry(tp, web_only=False, desktop=False, converting=False)
        if entry in ("app", "push"):
            app_session(tp, t, entry, converting)
        elif entry == "store":
            store_session(tp, t, converting)
        else:
            dev = _pick_device(tp, entry, forced_desktop, s == 0)
            web_session(tp, t, entry, dev, converting, s == lead_at, force_login=login_link,
                        force_click=(converting or s == lead_at or forced_desktop or phone_link))
    if p.forgets:
        last = max(t for t, _ in tp.out) if tp.out else first_ms
        t = min(last + tp.span(MINUTE, 20 * MINUTE), tp.end_limit + SESSION_BUDGET - 1)
        dev = p.mobile
        tp.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                tp.web_ctx(dev, f"{SITE}/mon-compte/preferences"),
                {"channel": "all", "opt_in": False, "source": "preference-centre"})
    return tp.out


def _next_session(tp: Touchpoints, prev: int) -> int | None:
    """The start of the next session: the same day a few hours later, or a later day at an hour
    drawn from the daily traffic curve of the person's time zone."""
    rng = tp.rng
    if rng.random() < 0.3:
        t = prev + tp.span(2 * HOUR, 6 * HOUR)
    else:
        offset = datetime.fromtimestamp(prev // 1000, tp.p.tz).utcoffset()
        offset_ms = int(offset.total_seconds()) * 1000 if offset else 0
        local_midnight = (prev + offset_ms) // DAY * DAY - offset_ms
        days_later = 1 + min(int(rng.expovariate(0.6)), 6)
        hour = bucket(HOURLY_CUM, rng.random() * HOURLY_CUM[-1])
        t = local_midnight + days_later * DAY + hour * HOUR + tp.span(0, HOUR)
    return t if t <= tp.end_limit else None


def _pick_entry(tp: Touchpoints, web_only: bool, desktop: bool, converting: bool) -> str:
    """How a session starts, among the channels this person can be reached on."""
    p = tp.p
    key = (p.subscriber and not p.unsubscribed, p.push_opt_in, p.sms_opt_in and not desktop,
           p.app_device is not None, web_only, converting)
    table = _ENTRY_TABLES.get(key)
    if table is None:
        table = _ENTRY_TABLES[key] = _entry_table(*key)
    entries, cum = table
    return entries[bucket(cum, tp.rng.random() * cum[-1])]


def _pick_device(tp: Touchpoints, entry: str, forced_desktop: bool, first: bool) -> Device:
    p = tp.p
    if p.desktop is None or first or entry == "sms":
        return p.mobile
    if forced_desktop:
        return p.desktop
    return p.mobile if tp.rng.random() < _MOBILE_SHARE.get(entry, 0.5) else p.desktop


def _entry_table(email: bool, push: bool, sms: bool, app: bool, web_only: bool,
                 converting: bool) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Entries open to a person with these reachability flags, with cumulative weights."""
    entries, weights = [], []
    for entry, weight in ENTRIES:
        if ((entry == "email" and not email) or (entry == "push" and not push)
                or (entry == "sms" and not sms) or (entry == "app" and not app)
                or (web_only and entry in ("store", "app", "push"))):
            continue
        entries.append(entry)
        weights.append(weight * 0.5 if converting and entry in ("display", "video") else weight)
    return tuple(entries), cumulative(weights)


_ENTRY_TABLES: dict[tuple, tuple[tuple[str, ...], tuple[float, ...]]] = {}
