"""On-site browsing after a web session's landing page (`browse`): content pages, product and
price views, login, lead form with its opt-in boxes, cart, checkout and online order."""
from __future__ import annotations

from streams.simulate.catalogue import ACCESSORIES, CURRENCY, SITE, Product
from streams.simulate.channels import CONTENT_PAGES
from streams.simulate.clock import MINUTE, SECOND
from streams.simulate.person import Device
from streams.simulate.touchpoints import Touchpoints


def browse(tp: Touchpoints, t: int, dev: Device, product: Product, converting: bool, lead: bool,
           force_login: bool, url: str) -> int:
    """On-site behaviour after the landing page: product, price, cart, checkout, lead, order."""
    rng, p = tp.rng, tp.p
    buy_online = converting and product.kind != "car"
    if converting and not buy_online:
        product = p.product if p.product.kind != "car" else tp.pick(ACCESSORIES)
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
    ids = tp.web_ids
    ctx = tp.web_ctx
    if depth:
        # Content pages read before the product sheet (gallery, equipment, financing...).
        for _ in range(int(rng.random() * 3.2)):
            page = f"{SITE}/{product.path}/{tp.pick(CONTENT_PAGES)}"
            t += tp.span(8 * SECOND, 120 * SECOND)
            tp.emit(t, "local", "page_view", "web" if rng.random() < 0.4 else None,
                    ids(dev), ctx(dev, page, url), {"product_id": product.id,
                                                    "page": page[len(SITE) + 1:]})
            url = page
    if force_login or (p.user is not None and not dev.logged_in and rng.random() < 0.15):
        t += tp.span(10 * SECOND, 60 * SECOND)
        _login(tp, t, dev)
    if depth >= 1:
        t += tp.span(5 * SECOND, 90 * SECOND)
        tp.emit(t, "local", "product_view", "web", ids(dev), ctx(dev, url),
                {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                 "in_stock": in_stock})
    if depth >= 2:
        t += tp.span(10 * SECOND, 150 * SECOND)
        page = "configurateur" if product.kind == "car" else "prix"
        price_url = f"{SITE}/{product.path}/{page}"
        tp.emit(t, "local", "price_view", "web", ids(dev), ctx(dev, price_url, url),
                {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                 "in_stock": in_stock})
        url = price_url
    if lead:
        t = _lead(tp, t, dev, product, url)
    if depth >= 3 and product.kind != "car":
        quantity = 1 if product.id != "winter-tyres" else tp.pick((1, 2))
        t += tp.span(15 * SECOND, 200 * SECOND)
        tp.emit(t, "local", "cart_add", "web", ids(dev), ctx(dev, f"{SITE}/panier", url),
                {"product_id": product.id, "price": product.price, "quantity": quantity,
                 "currency": CURRENCY, "in_stock": True})
        if depth >= 4:
            if p.user is not None and not dev.logged_in and rng.random() < 0.7:
                t += tp.span(10 * SECOND, 90 * SECOND)
                _login(tp, t, dev)
            t += tp.span(30 * SECOND, 300 * SECOND)
            value = product.price * quantity
            tp.emit(t, "local", "checkout", "web", ids(dev),
                    ctx(dev, f"{SITE}/commande", f"{SITE}/panier"),
                    {"product_id": product.id, "price": product.price,
                     "quantity": quantity, "value": value, "currency": CURRENCY})
            if depth >= 5:
                t += tp.span(60 * SECOND, 400 * SECOND)
                purchase_ids = ids(dev)
                purchase_ids["email"] = p.email_typed   # order confirmation address
                tp.emit(t, "local", "purchase", "web", purchase_ids,
                        ctx(dev, f"{SITE}/commande/confirmation", f"{SITE}/commande"),
                        {"order_id": f"o-web-{tp.tag}{p.index:07d}{tp.k:02d}",
                         "product_id": product.id, "price": product.price,
                         "quantity": quantity, "revenue": value, "currency": CURRENCY,
                         "payment": tp.pick(("card", "card", "paypal", "apple_pay"))})
    return t


def _login(tp: Touchpoints, t: int, dev: Device) -> None:
    p = tp.p
    dev.logged_in = True
    ids = {"cookie": dev.cookie, "user": p.user}
    if tp.rng.random() < 0.5:
        ids["email"] = p.email_typed
    tp.emit(t, "local", "identify", "web", ids,
            tp.web_ctx(dev, f"{SITE}/mon-compte/connexion"), {"method": "password"})


def _lead(tp: Touchpoints, t: int, dev: Device, product: Product, url: str) -> int:
    rng, p = tp.rng, tp.p
    if product.kind == "car":
        form, value = tp.pick((("test_drive", 120.0), ("quote", 80.0), ("brochure", 15.0)))
    else:
        form, value = "callback", 25.0
    t += tp.span(40 * SECOND, 6 * MINUTE)
    ids = tp.web_ids(dev)
    ids["email"] = p.email_typed
    give_phone = rng.random() < 0.6
    if give_phone:
        ids["phone"] = p.phone_typed
    tp.emit(t, "local", "lead", "web", ids,
            tp.web_ctx(dev, f"{SITE}/{product.path}/{form.replace('_', '-')}", url),
            {"lead_id": f"l-{tp.tag}{p.index:07d}{tp.k:02d}", "form": form,
             "product_id": product.id, "store_id": p.store.id, "revenue": value,
             "currency": CURRENCY})
    # Opt-in boxes on the form.
    if not p.subscriber and rng.random() < 0.5:
        p.subscriber = True
        t += tp.span(1 * SECOND, 5 * SECOND)
        tp.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                tp.web_ctx(dev, url), {"channel": "email", "opt_in": True,
                                       "source": f"form-{form}"})
    if give_phone and not p.sms_opt_in and rng.random() < 0.3:
        p.sms_opt_in = True
        t += tp.span(1 * SECOND, 5 * SECOND)
        tp.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "phone": p.phone_typed},
                tp.web_ctx(dev, url), {"channel": "sms", "opt_in": True,
                                       "source": f"form-{form}",
                                       "max_per_day": 1})
    return t
