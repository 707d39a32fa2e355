"""App and store sessions of a journey: app opens and push opens (onboarding, push consent, in-app
order: `app_session`), the dealership's geofence (`passing_by`), store visits (beacon, guest Wi-Fi,
showroom QR code) and the purchase at the till (`store_session`)."""
from __future__ import annotations

from typing import Any

from streams.simulate.catalogue import ACCESSORIES, CURRENCY, SITE
from streams.simulate.channels import PUSH_CAMPAIGNS, QUIET_HOURS
from streams.simulate.clock import MINUTE, SECOND
from streams.simulate.touchpoints import Touchpoints


def app_session(tp: Touchpoints, t: int, entry: str, converting: bool) -> None:
    """An app session opened at `t` by `entry` ("app" or "push"); the first one is the onboarding
    (push consent); when converting, the order in the app."""
    rng, p = tp.rng, tp.p
    ids, ctx = tp.app_ids, tp.app_ctx
    if not p.app_onboarded:
        p.app_onboarded = True
        tp.emit(t, "ms", "app_open", "app", ids(), ctx(),
                {"first_open": True, "app_version": p.app_ua.split(" ")[0].split("/")[1]})
        t += tp.span(10 * SECOND, 60 * SECOND)
        opt_in = rng.random() < 0.72
        props: dict[str, Any] = {"channel": "push", "opt_in": opt_in,
                                 "source": "app-onboarding"}
        if opt_in and rng.random() < 0.4:
            props["quiet_hours"] = tp.pick(QUIET_HOURS)
        if opt_in and rng.random() < 0.25:
            props["max_per_day"] = tp.pick((1, 2, 3))
        consent_ids = ids()
        consent_ids["email"] = p.email_typed
        tp.emit(t, "local", "consent", "app", consent_ids, ctx(), props)
        p.push_opt_in = opt_in
    elif entry == "push":
        campaign = tp.pick(PUSH_CAMPAIGNS)
        tp.emit(t, "ms", "push_open", "push", ids(), ctx(),
                {"message_id": f"push-{tp.token(48)}",
                 "deeplink": f"brandapp://{p.product.path}"},
                campaign)
    else:
        tp.emit(t, "ms", "app_open", "app", ids(), ctx(), {"first_open": False})
    product = p.product
    if converting and product.kind == "car":
        product = tp.pick(ACCESSORIES)   # cars are bought at the dealership
    if rng.random() < 0.25 and not converting:
        return
    t += tp.span(5 * SECOND, 60 * SECOND)
    in_stock = rng.random() >= 0.08
    tp.emit(t, "ms", "product_view", "app", ids(), ctx(),
            {"product_id": product.id, "price": product.price, "currency": CURRENCY,
             "in_stock": in_stock})
    if converting or rng.random() < 0.4:
        t += tp.span(10 * SECOND, 120 * SECOND)
        tp.emit(t, "ms", "price_view", "app", ids(), ctx(),
                {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                 "in_stock": in_stock})
    if converting:
        t += tp.span(20 * SECOND, 180 * SECOND)
        tp.emit(t, "ms", "cart_add", "app", ids(), ctx(),
                {"product_id": product.id, "price": product.price, "quantity": 1,
                 "currency": CURRENCY, "in_stock": True})
        t += tp.span(30 * SECOND, 240 * SECOND)
        tp.emit(t, "ms", "checkout", "app", ids(), ctx(),
                {"product_id": product.id, "price": product.price, "quantity": 1,
                 "value": product.price, "currency": CURRENCY})
        t += tp.span(30 * SECOND, 300 * SECOND)
        order_ids = ids()
        order_ids["email"] = p.email_typed
        tp.emit(t, "ms", "purchase", "app", order_ids, ctx(),
                {"order_id": f"o-app-{tp.tag}{p.index:07d}{tp.k:02d}",
                 "product_id": product.id, "price": product.price, "quantity": 1,
                 "revenue": product.price, "currency": CURRENCY, "payment": "apple_pay"})


def passing_by(tp: Touchpoints, t: int) -> None:
    """The phone crosses the dealership's geofence (the "near the store today" moment)."""
    p, store = tp.p, tp.p.store
    tp.emit(t, "ms", "geofence_enter", "store", tp.app_ids(),
            tp.store_ctx(lat=round(store.lat + (tp.rng.random() - 0.5) * 0.006, 5),
                         lon=round(store.lon + (tp.rng.random() - 0.5) * 0.006, 5),
                         user_agent=p.app_ua),
            {"geofence_id": f"gf-{store.id}", "radius_m": 300})


def store_session(tp: Touchpoints, t: int, converting: bool) -> None:
    """A visit to the person's dealership: detected by the app (geofence + beacon) or by the
    guest Wi-Fi portal; when converting, the purchase at the till."""
    rng, p = tp.rng, tp.p
    store = p.store
    if p.app_onboarded and rng.random() < 0.85:
        if rng.random() < 0.7:
            passing_by(tp, t)
            t += tp.span(1 * MINUTE, 8 * MINUTE)
        tp.emit(t, "ms", "store_visit", "store", tp.app_ids(),
                tp.store_ctx(beacon_id=tp.pick(store.beacons), user_agent=p.app_ua),
                {"detection": "beacon", "rssi": -tp.span(55, 90),
                 "dwell_s": tp.span(30, 1800)})
    elif rng.random() < 0.55:
        # The guest Wi-Fi portal asks for an e-mail address.
        tp.emit(t, "local", "store_visit", "store", {"email": p.email_typed},
                tp.store_ctx(), {"detection": "wifi", "dwell_s": tp.span(300, 3600)})
    else:
        # A QR code on a car in the showroom opens the product page.
        dev = p.mobile
        product = p.product
        tp.emit(t, "local", "page_view", None, tp.web_ids(dev),
                tp.web_ctx(dev, f"{SITE}/{product.path}?utm_source={store.id}"
                                f"&utm_medium=qr&utm_campaign=showroom"),
                {"product_id": product.id, "page": product.path, "store_id": store.id})
    if not converting:
        return
    t += tp.span(20 * MINUTE, 100 * MINUTE)
    product = p.product
    revenue = product.price
    props: dict[str, Any] = {"order_id": f"o-{store.id}-{tp.tag}{p.index:07d}{tp.k:02d}",
                             "product_id": product.id, "quantity": 1,
                             "price": product.price}
    if product.kind == "car" and rng.random() < 0.3:
        discount = tp.pick((500.0, 1000.0, 1500.0))
        props["discount"] = discount
        revenue = product.price - discount
    props["revenue"] = revenue
    props["currency"] = CURRENCY
    ids: dict[str, str] = {}
    if not p.has_loyalty:
        p.has_loyalty = True          # the card is created at the till
        props["loyalty_new"] = True
    ids["loyalty"] = p.loyalty
    ids["email"] = p.email_typed
    if rng.random() < 0.3:
        ids["phone"] = p.phone_typed
    tp.emit(t, "local", "purchase", "store", ids, tp.store_ctx(), props)
