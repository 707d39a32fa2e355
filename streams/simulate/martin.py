"""The Martin journey: the worked example of DESIGN.md, as the raw touchpoints producers send."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from streams.simulate.catalogue import CURRENCY, SITE, STORES
from streams.simulate.clock import PARIS, UTC, as_aware, epoch_ms

MARTIN_EMAIL = "martin@example.com"
# Martin's identifiers, as in the contract example of DESIGN.md. The cookie is his phone browser's:
# he reads his mail in the browser's webmail, so the e-mail open pixel and, later, the banner click
# both carry it. The app (device d-1, account u-42) knows his e-mail from the account sign-in.
MARTIN_IDS = {"cookie": "c-9", "device": "d-1", "user": "u-42", "loyalty": "L-77",
              "email": MARTIN_EMAIL}
MARTIN_STORE = "paris-15"
OFFER_CODE = "XPGJRL"
MARTIN_QUIET_HOURS = "21:00-08:00"

_MARTIN_PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
_MARTIN_APP_UA = "BrandApp/5.3.0 (iPhone; iOS 18.1; Scale/3.00)"
_MARTIN_ARTICLE = "https://autonews.example/essais/suv-compacts-hiver-2026"
_MARTIN_LANDING = ("https://brand.example/suv-x/night-assist?utm_source=autonews&utm_medium=display"
                   "&utm_campaign=winter-suv&utm_content=night-assist-300x250")


def _next_local(after: datetime, hour: int, minute: int, tz: ZoneInfo = PARIS) -> datetime:
    """The first wall-clock `hour:minute` in `tz` strictly after the instant `after`."""
    local = after.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(tzinfo=tz)
    return candidate


def martin_journey(start: datetime) -> list[dict]:
    """The worked example of DESIGN.md, as the 11 raw touchpoints producers would send.

    `start` is when Martin opens the brand's e-mail on the metro (a naive datetime is UTC). The
    other steps follow on Paris wall-clock time, so the story holds for any start: the banner at the
    next lunch break (12:45), the app install a few minutes after he left the price page, the
    dealership on his way home (18:40, outside his quiet hours 21:00-08:00), the purchase three days
    later at 11:30. Event ids are "martin-01" ... "martin-11" in time order.

    1 email_open (e-mail service, ISO UTC)      2 impression, 3 click (ad server, epoch ms)
    4 page_view, 5 price_view (web tag, ISO Paris)  -- then he leaves: no lead
    6 app_open (app SDK, epoch ms)              7 consent push opt-in + quiet hours (ISO Paris)
    8 geofence_enter, 9 store_visit by beacon, 10 push_open with the offer code (app SDK, epoch ms)
    11 store purchase, 32,900 EUR, loyalty card + e-mail, offer code given (till, ISO Paris)
    """
    t_open = as_aware(start)
    t_impression = _next_local(t_open + timedelta(minutes=30), 12, 45)
    t_click = t_impression + timedelta(seconds=42)
    t_page = t_click + timedelta(seconds=3)
    t_price = t_page + timedelta(minutes=2, seconds=27)
    t_app = t_price + timedelta(minutes=6, seconds=10)
    t_consent = t_app + timedelta(seconds=35)
    t_geofence = _next_local(t_consent + timedelta(hours=1), 18, 40)
    t_visit = t_geofence + timedelta(minutes=2, seconds=10)
    t_push = t_visit + timedelta(minutes=1, seconds=55)
    purchase_day = t_push.astimezone(PARIS).date() + timedelta(days=3)
    t_purchase = datetime.combine(purchase_day, time(11, 30), PARIS)

    store = STORES[MARTIN_STORE]
    phone_web = {"tz": "Europe/Paris", "user_agent": _MARTIN_PHONE_UA}
    app = {"tz": "Europe/Paris", "user_agent": _MARTIN_APP_UA}
    at_store = {"store_id": MARTIN_STORE, "lat": store.lat, "lon": store.lon, "tz": "Europe/Paris"}

    def iso_utc(dt: datetime) -> str:
        return dt.astimezone(UTC).isoformat(timespec="seconds")

    def iso_paris(dt: datetime) -> str:
        return dt.astimezone(PARIS).isoformat(timespec="seconds")

    events = [
        {"event_id": "martin-01", "event_time": iso_utc(t_open), "type": "email_open",
         "channel": "email", "campaign": "winter-suv",
         # As stored in the e-mail service's list: typed at sign-up, mixed case.
         "ids": {"email": "Martin@Example.com", "cookie": "c-9"},
         "context": dict(phone_web),
         "properties": {"message_id": "esp-2026w47-000042",
                        "subject": "Hiver : le SUV X vous emmène plus loin"}},
        {"event_id": "martin-02", "event_time": epoch_ms(t_impression), "type": "impression",
         "channel": "display", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_ARTICLE, **phone_web},
         "properties": {"creative": "suv-x-night-assist-300x250", "placement": "article-inline",
                        "feature": "night-assist"}},
        {"event_id": "martin-03", "event_time": epoch_ms(t_click), "type": "click",
         "channel": "display", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_LANDING, "referrer": _MARTIN_ARTICLE, **phone_web},
         "properties": {"creative": "suv-x-night-assist-300x250", "placement": "article-inline"}},
        {"event_id": "martin-04", "event_time": iso_paris(t_page), "type": "page_view",
         "channel": "web", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_LANDING, "referrer": "https://autonews.example/", **phone_web},
         "properties": {"product_id": "suv-x", "page": "feature/night-assist"}},
        {"event_id": "martin-05", "event_time": iso_paris(t_price), "type": "price_view",
         "channel": "web", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": f"{SITE}/suv-x/prix", "referrer": _MARTIN_LANDING, **phone_web},
         "properties": {"product_id": "suv-x", "price": 32900.0, "currency": CURRENCY,
                        "in_stock": True}},
        {"event_id": "martin-06", "event_time": epoch_ms(t_app), "type": "app_open",
         "channel": "app",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": dict(app),
         "properties": {"first_open": True, "app_version": "5.3.0", "os": "iOS 18.1"}},
        {"event_id": "martin-07", "event_time": iso_paris(t_consent), "type": "consent",
         "channel": "app",
         "ids": {"device": "d-1", "user": "u-42", "email": MARTIN_EMAIL},
         "context": dict(app),
         "properties": {"channel": "push", "opt_in": True, "quiet_hours": MARTIN_QUIET_HOURS,
                        "source": "app-onboarding"}},
        {"event_id": "martin-08", "event_time": epoch_ms(t_geofence), "type": "geofence_enter",
         "channel": "store",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": {**at_store, "lat": 48.8437, "lon": 2.2958, "user_agent": _MARTIN_APP_UA},
         "properties": {"geofence_id": f"gf-{MARTIN_STORE}", "radius_m": 300}},
        {"event_id": "martin-09", "event_time": epoch_ms(t_visit), "type": "store_visit",
         "channel": "store",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": {**at_store, "beacon_id": "b-3", "user_agent": _MARTIN_APP_UA},
         "properties": {"detection": "beacon", "rssi": -71, "dwell_s": 40}},
        {"event_id": "martin-10", "event_time": epoch_ms(t_push), "type": "push_open",
         "channel": "push", "campaign": "near-store-offer",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": dict(app),
         "properties": {"offer_code": OFFER_CODE, "offer_store_id": MARTIN_STORE,
                        "message": f"Aujourd'hui seulement, à deux pas : le SUV X vous attend "
                                   f"chez Brand Paris 15. Code {OFFER_CODE}"}},
        {"event_id": "martin-11", "event_time": iso_paris(t_purchase), "type": "purchase",
         "channel": "store",
         "ids": {"loyalty": "L-77", "email": MARTIN_EMAIL},
         "context": dict(at_store),
         "properties": {"order_id": "o-paris-15-000871", "product_id": "suv-x", "quantity": 1,
                        "price": 32900.0, "revenue": 32900.0, "currency": CURRENCY,
                        "offer_code": OFFER_CODE, "order_id_source": "dms"}},
    ]
    return events
