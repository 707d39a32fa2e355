"""App and store sessions of a journey: app opens and push opens (onboarding, push consent, in-app
order), the dealership's geofence, store visits (beacon, guest Wi-Fi, showroom QR code) and the
purchase at the till."""
from __future__ import annotations

from typing import Any

from streams.simulate.catalogue import _ACCESSORIES, _PUSH_CAMPAIGNS, _QUIET_HOURS, CURRENCY, SITE
from streams.simulate.clock import _MINUTE, _SECOND
from streams.simulate.touchpoints import _Touchpoints


class _AppAndStoreSessions(_Touchpoints):
    """The app and store sessions of `journey._Journey`."""

    __slots__ = ()

    def app_session(self, t: int, entry: str, converting: bool) -> None:
        rng, p = self.rng, self.p
        ids, ctx = self.app_ids, self.app_ctx
        if not p.app_onboarded:
            p.app_onboarded = True
            self.emit(t, "ms", "app_open", "app", ids(), ctx(),
                      {"first_open": True, "app_version": p.app_ua.split(" ")[0].split("/")[1]})
            t += self.span(10 * _SECOND, 60 * _SECOND)
            opt_in = rng.random() < 0.72
            props: dict[str, Any] = {"channel": "push", "opt_in": opt_in,
                                     "source": "app-onboarding"}
            if opt_in and rng.random() < 0.4:
                props["quiet_hours"] = self.pick(_QUIET_HOURS)
            if opt_in and rng.random() < 0.25:
                props["max_per_day"] = self.pick((1, 2, 3))
            consent_ids = ids()
            consent_ids["email"] = p.email_typed
            self.emit(t, "local", "consent", "app", consent_ids, ctx(), props)
            p.push_opt_in = opt_in
        elif entry == "push":
            campaign = self.pick(_PUSH_CAMPAIGNS)
            self.emit(t, "ms", "push_open", "push", ids(), ctx(),
                      {"message_id": f"push-{self.token(48)}",
                       "deeplink": f"brandapp://{p.product.path}"},
                      campaign)
        else:
            self.emit(t, "ms", "app_open", "app", ids(), ctx(), {"first_open": False})
        product = p.product
        if converting and product.kind == "car":
            product = self.pick(_ACCESSORIES)   # cars are bought at the dealership
        if rng.random() < 0.25 and not converting:
            return
        t += self.span(5 * _SECOND, 60 * _SECOND)
        in_stock = rng.random() >= 0.08
        self.emit(t, "ms", "product_view", "app", ids(), ctx(),
                  {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                   "in_stock": in_stock})
        if converting or rng.random() < 0.4:
            t += self.span(10 * _SECOND, 120 * _SECOND)
            self.emit(t, "ms", "price_view", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
        if converting:
            t += self.span(20 * _SECOND, 180 * _SECOND)
            self.emit(t, "ms", "cart_add", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "quantity": 1,
                       "currency": CURRENCY, "in_stock": True})
            t += self.span(30 * _SECOND, 240 * _SECOND)
            self.emit(t, "ms", "checkout", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "quantity": 1,
                       "value": product.price, "currency": CURRENCY})
            t += self.span(30 * _SECOND, 300 * _SECOND)
            order_ids = ids()
            order_ids["email"] = p.email_typed
            self.emit(t, "ms", "purchase", "app", order_ids, ctx(),
                      {"order_id": f"o-app-{self.tag}{p.index:07d}{self.k:02d}",
                       "product_id": product.id, "price": product.price, "quantity": 1,
                       "revenue": product.price, "currency": CURRENCY, "payment": "apple_pay"})

    def passing_by(self, t: int) -> None:
        """The phone crosses the dealership's geofence (the "near the store today" moment)."""
        p, store = self.p, self.p.store
        self.emit(t, "ms", "geofence_enter", "store", self.app_ids(),
                  self.store_ctx(lat=round(store.lat + (self.rng.random() - 0.5) * 0.006, 5),
                                 lon=round(store.lon + (self.rng.random() - 0.5) * 0.006, 5),
                                 user_agent=p.app_ua),
                  {"geofence_id": f"gf-{store.id}", "radius_m": 300})

    def store_session(self, t: int, converting: bool) -> None:
        """A visit to the person's dealership: detected by the app (geofence + beacon) or by the
        guest Wi-Fi portal; when converting, the purchase at the till."""
        rng, p = self.rng, self.p
        store = p.store
        if p.app_onboarded and rng.random() < 0.85:
            if rng.random() < 0.7:
                self.passing_by(t)
                t += self.span(1 * _MINUTE, 8 * _MINUTE)
            self.emit(t, "ms", "store_visit", "store", self.app_ids(),
                      self.store_ctx(beacon_id=self.pick(store.beacons), user_agent=p.app_ua),
                      {"detection": "beacon", "rssi": -self.span(55, 90),
                       "dwell_s": self.span(30, 1800)})
        elif rng.random() < 0.55:
            # The guest Wi-Fi portal asks for an e-mail address.
            self.emit(t, "local", "store_visit", "store", {"email": p.email_typed},
                      self.store_ctx(), {"detection": "wifi", "dwell_s": self.span(300, 3600)})
        else:
            # A QR code on a car in the showroom opens the product page.
            dev = p.mobile
            product = p.product
            self.emit(t, "local", "page_view", None, self.web_ids(dev),
                      self.web_ctx(dev, f"{SITE}/{product.path}?utm_source={store.id}"
                                        f"&utm_medium=qr&utm_campaign=showroom"),
                      {"product_id": product.id, "page": product.path, "store_id": store.id})
        if not converting:
            return
        t += self.span(20 * _MINUTE, 100 * _MINUTE)
        product = p.product
        revenue = product.price
        props: dict[str, Any] = {"order_id": f"o-{store.id}-{self.tag}{p.index:07d}{self.k:02d}",
                                 "product_id": product.id, "quantity": 1,
                                 "price": product.price}
        if product.kind == "car" and rng.random() < 0.3:
            discount = self.pick((500.0, 1000.0, 1500.0))
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
        self.emit(t, "local", "purchase", "store", ids, self.store_ctx(), props)
