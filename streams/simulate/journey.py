"""One person's journey: how many sessions, when, how each one starts, on which device."""
from __future__ import annotations

from datetime import datetime

from streams.simulate.app_and_store import _AppAndStoreSessions
from streams.simulate.catalogue import _ENTRIES, _HOURLY_CUM, SITE, _bisect, _cum
from streams.simulate.clock import _DAY, _HOUR, _MINUTE, _SESSION_BUDGET
from streams.simulate.touchpoints import _Device
from streams.simulate.web_sessions import _WebSessions

# Share of sessions on the phone, per entry, for people who also have a desktop browser.
_MOBILE_SHARE = {"search": 0.55, "search_organic": 0.5, "display": 0.5, "social": 0.85,
                 "social_organic": 0.85, "email": 0.6, "affiliate": 0.4, "video": 0.6,
                 "direct": 0.45}
# (Defined here, not imported: `_MOBILE_SHARE.get(...)` on an imported name compiles to a
# plain attribute load instead of the method-call fast path.)


class _Journey(_WebSessions, _AppAndStoreSessions):
    """Builds one person's touchpoints as (epoch ms, raw event) pairs (`build`)."""

    __slots__ = ()

    def build(self, first_ms: int) -> list[tuple[int, dict]]:
        rng, p = self.rng, self.p
        if p.converts:
            planned = 2 + min(int(rng.expovariate(0.45)), 7)
        else:
            planned = 1 + min(int(rng.expovariate(0.8)), 6)
        times = [first_ms]
        while len(times) < planned:
            nxt = self.next_session(times[-1])
            if nxt is None:
                break
            times.append(nxt)
        if p.leads and p.converts and len(times) == 1:
            # The lead (a test drive request) comes before the purchase: squeeze a session in.
            later = first_ms + self.span(2 * _HOUR, 5 * _HOUR)
            if later <= self.end_limit:
                times.append(later)
        n = len(times)
        lead_at = -1
        if p.leads:
            lead_at = self.span(0, n - 1) if (p.converts and n > 1) else n - 1
        desktop_first = 1 + self.span(0, n - 1) if (p.desktop is not None and n > 1) else -1

        # Cross-device people who get linked: identified on the phone in the first session (a
        # login, or the newsletter opened there), then on the desktop (a login, or the click).
        linking = p.link is not None and desktop_first > 0
        for s, t in enumerate(times):
            if s and p.app_onboarded and rng.random() < 0.15:
                self.passing_by(t - self.span(10 * _MINUTE, 90 * _MINUTE))
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
                entry = self.pick_entry(web_only=True, desktop=forced_desktop,
                                        converting=converting)
            elif s == 0 and p.app_device is not None and rng.random() < 0.7:
                entry = "app"           # the app is where many app users start
            else:
                entry = self.pick_entry(web_only=False, desktop=False, converting=False)
            if entry in ("app", "push"):
                self.app_session(t, entry, converting)
            elif entry == "store":
                self.store_session(t, converting)
            else:
                dev = self.pick_device(entry, forced_desktop, s == 0)
                self.web_session(t, entry, dev, converting, s == lead_at, force_login=login_link,
                                 force_click=(converting or s == lead_at or forced_desktop
                                              or phone_link))
        if p.forgets:
            last = max(t for t, _ in self.out) if self.out else first_ms
            t = min(last + self.span(_MINUTE, 20 * _MINUTE), self.end_limit + _SESSION_BUDGET - 1)
            dev = p.mobile
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                      self.web_ctx(dev, f"{SITE}/mon-compte/preferences"),
                      {"channel": "all", "opt_in": False, "source": "preference-centre"})
        return self.out

    def next_session(self, prev: int) -> int | None:
        """The start of the next session: the same day a few hours later, or a later day at an
        hour drawn from the daily traffic curve of the person's time zone."""
        rng = self.rng
        if rng.random() < 0.3:
            t = prev + self.span(2 * _HOUR, 6 * _HOUR)
        else:
            offset = datetime.fromtimestamp(prev // 1000, self.p.tz).utcoffset()
            offset_ms = int(offset.total_seconds()) * 1000 if offset else 0
            local_midnight = (prev + offset_ms) // _DAY * _DAY - offset_ms
            days_later = 1 + min(int(rng.expovariate(0.6)), 6)
            hour = _bisect(_HOURLY_CUM, rng.random() * _HOURLY_CUM[-1])
            t = local_midnight + days_later * _DAY + hour * _HOUR + self.span(0, _HOUR)
        return t if t <= self.end_limit else None

    def pick_entry(self, web_only: bool, desktop: bool, converting: bool) -> str:
        """How a session starts, among the channels this person can be reached on."""
        p = self.p
        key = (p.subscriber and not p.unsubscribed, p.push_opt_in, p.sms_opt_in and not desktop,
               p.app_device is not None, web_only, converting)
        table = _ENTRY_TABLES.get(key)
        if table is None:
            table = _ENTRY_TABLES[key] = _entry_table(*key)
        entries, cum = table
        return entries[_bisect(cum, self.rng.random() * cum[-1])]

    def pick_device(self, entry: str, forced_desktop: bool, first: bool) -> _Device:
        p = self.p
        if p.desktop is None or first or entry == "sms":
            return p.mobile
        if forced_desktop:
            return p.desktop
        return p.mobile if self.rng.random() < _MOBILE_SHARE.get(entry, 0.5) else p.desktop


def _entry_table(email: bool, push: bool, sms: bool, app: bool, web_only: bool,
                 converting: bool) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Entries open to a person with these reachability flags, with cumulative weights."""
    entries, weights = [], []
    for entry, weight in _ENTRIES:
        if ((entry == "email" and not email) or (entry == "push" and not push)
                or (entry == "sms" and not sms) or (entry == "app" and not app)
                or (web_only and entry in ("store", "app", "push"))):
            continue
        entries.append(entry)
        weights.append(weight * 0.5 if converting and entry in ("display", "video") else weight)
    return tuple(entries), _cum(weights)


_ENTRY_TABLES: dict[tuple, tuple[tuple[str, ...], tuple[float, ...]]] = {}
