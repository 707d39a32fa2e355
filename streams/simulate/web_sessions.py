"""Web sessions of a journey: the entry (search, display, video, social, affiliate, e-mail, SMS,
direct) and the landing page, then on-site browsing, login, lead form and online order."""
from __future__ import annotations

from streams.simulate.catalogue import (_ACCESSORIES, _AFFILIATE, _AFFILIATE_CAMPAIGNS,
                                        _CONTENT_PAGES, _DISPLAY, _DISPLAY_CAMPAIGNS,
                                        _DISPLAY_CREATIVES, _EMAIL_CAMPAIGNS, _SEARCH,
                                        _SEARCH_CAMPAIGNS, _SEARCH_CUM, _SMS_CAMPAIGNS, _SOCIAL,
                                        _SOCIAL_CAMPAIGNS, _VIDEO, _VIDEO_CAMPAIGNS, CURRENCY, SITE,
                                        _bisect, _Product)
from streams.simulate.clock import _MINUTE, _SECOND
from streams.simulate.touchpoints import _Device, _Touchpoints


class _WebSessions(_Touchpoints):
    """The web sessions of `journey._Journey`."""

    __slots__ = ()

    def web_session(self, t: int, entry: str, dev: _Device, converting: bool, lead: bool,
                    force_login: bool, force_click: bool) -> None:
        rng, p = self.rng, self.p
        product = p.product if rng.random() < 0.85 else self.pick(_ACCESSORIES)
        landing_path = f"{SITE}/{product.path}"
        channel = campaign = publisher = None
        referrer: str | None = None
        query = ""
        explicit = rng.random() < 0.4   # the tag manager sends its own channel guess

        if entry == "search":
            host, ref, click_param, source, _ = _SEARCH[_bisect(_SEARCH_CUM, rng.random() * 100)]
            campaign = self.pick(_SEARCH_CAMPAIGNS)
            referrer = ref
            if click_param and rng.random() < 0.35:
                query = f"?{click_param}={self.token(96)}"       # auto-tagging only
            else:
                query = f"?utm_source={source}&utm_medium=cpc&utm_campaign={campaign}"
                if click_param:
                    query += f"&{click_param}={self.token(96)}"
            channel = "search" if explicit else None
            publisher = host
        elif entry == "search_organic":
            referrer = _SEARCH[_bisect(_SEARCH_CUM, rng.random() * 100)][1]
            channel = "search" if explicit else None
        elif entry == "social_organic":
            referrer = self.pick(_SOCIAL)[1]
            channel = "social" if explicit else None
        elif entry == "direct":
            channel = "direct" if explicit else None
        elif entry in ("display", "video", "social"):
            clicked, t, landing = self.ad_exposure(t, entry, dev, product, force_click)
            if not clicked:
                return
            query, referrer, channel, campaign, publisher = landing
        elif entry == "affiliate":
            host, source = self.pick(_AFFILIATE)
            campaign = self.pick(_AFFILIATE_CAMPAIGNS)
            publisher = host
            query = (f"?utm_source={source}&utm_medium=affiliate&utm_campaign={campaign}"
                     f"&clickref={self.token(48)}")
            referrer = f"https://{host}/"
            self.emit(t, "ms", "click", "affiliate", self.web_ids(dev),
                      self.web_ctx(dev, landing_path + query, referrer),
                      {"offer": campaign}, campaign, publisher)
            t += self.span(1 * _SECOND, 4 * _SECOND)
            channel = "affiliate" if explicit else None
        elif entry == "email":
            # A newsletter read on the phone and clicked later on the desktop links the two.
            reader = p.mobile if dev.kind == "desktop" and force_click else dev
            clicked, t, email_landing = self.email_exposure(t, reader, dev, product, force_click)
            if not clicked:
                return
            query, campaign = email_landing
            channel = "email" if explicit else None
        elif entry == "sms":
            campaign = self.pick(_SMS_CAMPAIGNS)
            query = f"?utm_source=sms&utm_medium=sms&utm_campaign={campaign}"
            self.emit(t, "utc", "sms_click", "sms",
                      {"phone": p.phone, "cookie": dev.cookie},
                      self.web_ctx(dev, landing_path + query),
                      {"message_id": f"sms-{self.token(40)}"}, campaign)
            t += self.span(1 * _SECOND, 3 * _SECOND)
            channel = "sms" if explicit else None
        # The landing page view.
        self.emit(t, "local", "page_view", channel, self.web_ids(dev),
                  self.web_ctx(dev, landing_path + query, referrer),
                  {"product_id": product.id, "page": product.path},
                  campaign if channel is not None else None,
                  publisher if channel is not None else None)
        t = self.browse(t, dev, product, converting, lead, force_login, landing_path)

    def ad_exposure(self, t: int, entry: str, dev: _Device, product: _Product, force_click: bool):
        """Impressions on a publisher; maybe a click. Returns (clicked, t, landing details)."""
        rng = self.rng
        if entry == "display":
            host, source = self.pick(_DISPLAY)
            campaign = self.pick(_DISPLAY_CAMPAIGNS)
            medium, click_param, click_rate = "display", None, 0.35
            section = self.pick(("actu", "essais", "sport", "meteo", "loisirs"))
            page = f"https://{host}/{section}/{self.token(24)}"
            props = {"creative": f"{campaign}-{self.pick(_DISPLAY_CREATIVES)}",
                     "placement": self.pick(("article-inline", "sidebar", "header"))}
        elif entry == "video":
            host, ref, source = self.pick(_VIDEO)
            campaign = self.pick(_VIDEO_CAMPAIGNS)
            medium, click_param, click_rate = "video", None, 0.15
            page = f"{ref}watch/{self.token(44)}"
            props = {"creative": f"{campaign}-preroll-15s",
                     "completion": self.pick((0.25, 0.5, 0.75, 1.0))}
        else:
            host, ref, click_param, source = self.pick(_SOCIAL)
            campaign = self.pick(_SOCIAL_CAMPAIGNS)
            medium, click_rate = "paid_social", 0.3
            page = ref
            props = {"creative": f"{campaign}-{self.pick(('carousel', 'story', 'reel'))}"}
        channel = "social" if entry == "social" else entry
        for _ in range(1 + min(int(rng.expovariate(1.2)), 3)):
            self.emit(t, "ms", "impression", channel, {"cookie": dev.cookie},
                      {"url": page, "tz": self.tz_name, "user_agent": dev.ua},
                      dict(props), campaign, host)
            t += self.span(20 * _SECOND, 8 * _MINUTE)
        if not force_click and rng.random() >= click_rate:
            return False, t, None
        query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
        if click_param:
            query += f"&{click_param}={self.token(96)}"
        landing = f"{SITE}/{product.path}{query}"
        self.emit(t, "ms", "click", channel, {"cookie": dev.cookie},
                  self.web_ctx(dev, landing, page), dict(props), campaign, host)
        t += self.span(1 * _SECOND, 5 * _SECOND)
        explicit = rng.random() < 0.4
        return True, t, (query, f"https://{host}/", "web" if explicit else None, campaign, host)

    def email_exposure(self, t: int, reader: _Device, dev: _Device, product: _Product,
                       force_click: bool):
        """The newsletter opened on `reader`, maybe clicked on `dev` (another device: later)."""
        rng, p = self.rng, self.p
        campaign = self.pick(_EMAIL_CAMPAIGNS)
        message_id = f"esp-{self.token(48)}"
        # Mail privacy proxies (Apple MPP) load the pixel without the reader's cookie.
        if reader is dev and rng.random() < 0.3:
            ids = {"email": p.email}
        else:
            ids = {"email": p.email, "cookie": reader.cookie}
        self.emit(t, "utc", "email_open", "email", ids,
                  {"tz": self.tz_name, "user_agent": reader.ua},
                  {"message_id": message_id}, campaign)
        if reader is not dev:
            t += self.span(20 * _MINUTE, 90 * _MINUTE)     # back home, at the computer
        if not force_click and rng.random() < 0.02:
            t += self.span(20 * _SECOND, 3 * _MINUTE)
            p.unsubscribed = True
            self.emit(t, "local", "consent", "email", {"email": p.email},
                      {"tz": self.tz_name, "user_agent": dev.ua},
                      {"channel": "email", "opt_in": False, "source": "unsubscribe-link"})
            return False, t, None
        if not force_click and rng.random() >= 0.4:
            return False, t, None
        t += self.span(5 * _SECOND, 5 * _MINUTE)
        query = f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}"
        self.emit(t, "utc", "email_click", "email", {"email": p.email, "cookie": dev.cookie},
                  self.web_ctx(dev, f"{SITE}/{product.path}{query}"),
                  {"message_id": message_id, "link": product.path}, campaign)
        t += self.span(1 * _SECOND, 4 * _SECOND)
        return True, t, (query, campaign)

    def browse(self, t: int, dev: _Device, product: _Product, converting: bool, lead: bool,
               force_login: bool, url: str) -> int:
        """On-site behaviour after the landing page: product, price, cart, checkout, lead, order."""
        rng, p = self.rng, self.p
        buy_online = converting and product.kind != "car"
        if converting and not buy_online:
            product = p.product if p.product.kind != "car" else self.pick(_ACCESSORIES)
            url = f"{SITE}/{product.path}"
            buy_online = True
        in_stock = buy_online or rng.random() >= 0.08
        if buy_online:
            depth = 5
        else:
            r = rng.random()
            depth = 0 if r < 0.32 else 1 if r < 0.6 else 2 if r < 0.84 else 3 if r < 0.95 else 4
            if lead:
                depth = max(depth, 1)
            if product.kind == "car" or not in_stock:
                # Cars are not sold online (configure, see the price, leave); an item out of
                # stock online cannot go in the cart.
                depth = min(depth, 2)
        ids = self.web_ids
        ctx = self.web_ctx
        if depth:
            # Content pages read before the product sheet (gallery, equipment, financing...).
            for _ in range(int(rng.random() * 3.2)):
                page = f"{SITE}/{product.path}/{self.pick(_CONTENT_PAGES)}"
                t += self.span(8 * _SECOND, 120 * _SECOND)
                self.emit(t, "local", "page_view", "web" if rng.random() < 0.4 else None,
                          ids(dev), ctx(dev, page, url), {"product_id": product.id,
                                                          "page": page[len(SITE) + 1:]})
                url = page
        if force_login or (p.user is not None and not dev.logged_in and rng.random() < 0.15):
            t += self.span(10 * _SECOND, 60 * _SECOND)
            self.login(t, dev)
        if depth >= 1:
            t += self.span(5 * _SECOND, 90 * _SECOND)
            self.emit(t, "local", "product_view", "web", ids(dev), ctx(dev, url),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
        if depth >= 2:
            t += self.span(10 * _SECOND, 150 * _SECOND)
            page = "configurateur" if product.kind == "car" else "prix"
            price_url = f"{SITE}/{product.path}/{page}"
            self.emit(t, "local", "price_view", "web", ids(dev), ctx(dev, price_url, url),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
            url = price_url
        if lead:
            t = self.lead(t, dev, product, url)
        if depth >= 3 and product.kind != "car":
            quantity = 1 if product.id != "winter-tyres" else self.pick((1, 2))
            t += self.span(15 * _SECOND, 200 * _SECOND)
            self.emit(t, "local", "cart_add", "web", ids(dev), ctx(dev, f"{SITE}/panier", url),
                      {"product_id": product.id, "price": product.price, "quantity": quantity,
                       "currency": CURRENCY, "in_stock": True})
            if depth >= 4:
                if p.user is not None and not dev.logged_in and rng.random() < 0.7:
                    t += self.span(10 * _SECOND, 90 * _SECOND)
                    self.login(t, dev)
                t += self.span(30 * _SECOND, 300 * _SECOND)
                value = product.price * quantity
                self.emit(t, "local", "checkout", "web", ids(dev),
                          ctx(dev, f"{SITE}/commande", f"{SITE}/panier"),
                          {"product_id": product.id, "price": product.price,
                           "quantity": quantity, "value": value, "currency": CURRENCY})
                if depth >= 5:
                    t += self.span(60 * _SECOND, 400 * _SECOND)
                    purchase_ids = ids(dev)
                    purchase_ids["email"] = p.email_typed   # order confirmation address
                    self.emit(t, "local", "purchase", "web", purchase_ids,
                              ctx(dev, f"{SITE}/commande/confirmation", f"{SITE}/commande"),
                              {"order_id": f"o-web-{self.tag}{p.index:07d}{self.k:02d}",
                               "product_id": product.id, "price": product.price,
                               "quantity": quantity, "revenue": value, "currency": CURRENCY,
                               "payment": self.pick(("card", "card", "paypal", "apple_pay"))})
        return t

    def login(self, t: int, dev: _Device) -> None:
        p = self.p
        dev.logged_in = True
        ids = {"cookie": dev.cookie, "user": p.user}
        if self.rng.random() < 0.5:
            ids["email"] = p.email_typed
        self.emit(t, "local", "identify", "web", ids,
                  self.web_ctx(dev, f"{SITE}/mon-compte/connexion"), {"method": "password"})

    def lead(self, t: int, dev: _Device, product: _Product, url: str) -> int:
        rng, p = self.rng, self.p
        if product.kind == "car":
            form, value = self.pick((("test_drive", 120.0), ("quote", 80.0), ("brochure", 15.0)))
        else:
            form, value = "callback", 25.0
        t += self.span(40 * _SECOND, 6 * _MINUTE)
        ids = self.web_ids(dev)
        ids["email"] = p.email_typed
        give_phone = rng.random() < 0.6
        if give_phone:
            ids["phone"] = p.phone_typed
        self.emit(t, "local", "lead", "web", ids,
                  self.web_ctx(dev, f"{SITE}/{product.path}/{form.replace('_', '-')}", url),
                  {"lead_id": f"l-{self.tag}{p.index:07d}{self.k:02d}", "form": form,
                   "product_id": product.id, "store_id": p.store.id, "revenue": value,
                   "currency": CURRENCY})
        # Opt-in boxes on the form.
        if not p.subscriber and rng.random() < 0.5:
            p.subscriber = True
            t += self.span(1 * _SECOND, 5 * _SECOND)
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                      self.web_ctx(dev, url), {"channel": "email", "opt_in": True,
                                               "source": f"form-{form}"})
        if give_phone and not p.sms_opt_in and rng.random() < 0.3:
            p.sms_opt_in = True
            t += self.span(1 * _SECOND, 5 * _SECOND)
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "phone": p.phone_typed},
                      self.web_ctx(dev, url), {"channel": "sms", "opt_in": True,
                                               "source": f"form-{form}",
                                               "max_per_day": 1})
        return t
