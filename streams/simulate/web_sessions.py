"""Web sessions of a journey (`web_session`): the entry (search, display, video, social,
affiliate, e-mail, SMS, direct) with its ad exposure or e-mail, and the landing page; what follows
on the site is `browsing`."""
from __future__ import annotations

from streams.simulate.browsing import browse
from streams.simulate.catalogue import ACCESSORIES, SITE, Product, bucket
from streams.simulate.channels import (
    AFFILIATE,
    AFFILIATE_CAMPAIGNS,
    DISPLAY,
    DISPLAY_CAMPAIGNS,
    DISPLAY_CREATIVES,
    EMAIL_CAMPAIGNS,
    SEARCH,
    SEARCH_CAMPAIGNS,
    SEARCH_CUM,
    SMS_CAMPAIGNS,
    SOCIAL,
    SOCIAL_CAMPAIGNS,
    VIDEO,
    VIDEO_CAMPAIGNS,
)
from streams.simulate.clock import MINUTE, SECOND
from streams.simulate.person import Device
from streams.simulate.touchpoints import Touchpoints


def web_session(tp: Touchpoints, t: int, entry: str, dev: Device, converting: bool, lead: bool,
                force_login: bool, force_click: bool) -> None:
    """A web session on `dev` starting at `t` by `entry`; `lead`: it sends the lead form;
    `force_login` / `force_click`: the login, and the click on the ad or e-mail, surely happen."""
    rng, p = tp.rng, tp.p
    product = p.product if rng.random() < 0.85 else tp.pick(ACCESSORIES)
    landing_path = f"{SITE}/{product.path}"
    channel = campaign = publisher = None
    referrer: str | None = None
    query = ""
    explicit = rng.random() < 0.4   # the tag manager sends its own channel guess

    if entry == "search":
        host, ref, click_param, source, _ = SEARCH[bucket(SEARCH_CUM, rng.random() * 100)]
        campaign = tp.pick(SEARCH_CAMPAIGNS)
        referrer = ref
        if click_param and rng.random() < 0.35:
            query = f"?{click_param}={tp.token(96)}"       # auto-tagging only
        else:
            query = f"?utm_source={source}&utm_medium=cpc&utm_campaign={campaign}"
            if click_param:
                query += f"&{click_param}={tp.token(96)}"
        channel = "search" if explicit else None
        publisher = host
    elif entry == "search_organic":
        referrer = SEARCH[bucket(SEARCH_CUM, rng.random() * 100)][1]
        channel = "search" if explicit else None
    elif entry == "social_organic":
        referrer = tp.pick(SOCIAL)[1]
        channel = "social" if explicit else None
    elif entry == "direct":
        channel = "direct" if explicit else None
    elif entry in ("display", "video", "social"):
        clicked, t, landing = _ad_exposure(tp, t, entry, dev, product, force_click)
        if not clicked:
            return
        query, referrer, channel, campaign, publisher = landing
    elif entry == "affiliate":
        host, source = tp.pick(AFFILIATE)
        campaign = tp.pick(AFFILIATE_CAMPAIGNS)
        publisher = host
        query = (f"?utm_source={source}&utm_medium=affiliate&utm_campaign={campaign}"
                 f"&clickref={tp.token(48)}")
        referrer = f"https://{host}/"
        tp.emit(t, "ms", "click", "affiliate", tp.web_ids(dev),
                tp.web_ctx(dev, landing_path + query, referrer),
                {"offer": campaign}, campaign, publisher)
        t += tp.span(1 * SECOND, 4 * SECOND)
        channel = "affiliate" if explicit else None
    elif entry == "email":
        # A newsletter read on the phone and clicked later on the desktop links the two.
        reader = p.mobile if dev.kind == "desktop" and force_click else dev
        clicked, t, email_landing = _email_exposure(tp, t, reader, dev, product, force_click)
        if not clicked:
            return
        query, campaign = email_landing
        channel = "email" if explicit else None
    elif entry == "sms":
        campaign = tp.pick(SMS_CAMPAIGNS)
        query = f"?utm_source=sms&utm_medium=sms&utm_campaign={campaign}"
        tp.emit(t, "utc", "sms_click", "sms",
                {"phone": p.phone, "cookie": dev.cookie},
                tp.web_ctx(dev, landing_path + query),
                {"message_id": f"sms-{tp.token(40)}"}, campaign)
        t += tp.span(1 * SECOND, 3 * SECOND)
        channel = "sms" if explicit else None
    # The landing page view.
    tp.emit(t, "local", "page_view", channel, tp.web_ids(dev),
            tp.web_ctx(dev, landing_path + query, referrer),
            {"product_id": product.id, "page": product.path},
            campaign if channel is not None else None,
            publisher if channel is not None else None)
    t = browse(tp, t, dev, product, converting, lead, force_login, landing_path)


def _ad_exposure(tp: Touchpoints, t: int, entry: str, dev: Device, product: Product,
                 force_click: bool):
    """Impressions on a publisher; maybe a click. Returns (clicked, t, landing details)."""
    rng = tp.rng
    if entry == "display":
        host, source = tp.pick(DISPLAY)
        campaign = tp.pick(DISPLAY_CAMPAIGNS)
        medium, click_param, click_rate = "display", None, 0.35
        section = tp.pick(("actu", "essais", "sport", "meteo", "loisirs"))
        page = f"https://{host}/{section}/{tp.token(24)}"
        props = {"creative": f"{campaign}-{tp.pick(DISPLAY_CREATIVES)}",
                 "placement": tp.pick(("article-inline", "sidebar", "header"))}
    elif entry == "video":
        host, ref, source = tp.pick(VIDEO)
        campaign = tp.pick(VIDEO_CAMPAIGNS)
        medium, click_param, click_rate = "video", None, 0.15
        page = f"{ref}watch/{tp.token(44)}"
        props = {"creative": f"{campaign}-preroll-15s",
                 "completion": tp.pick((0.25, 0.5, 0.75, 1.0))}
    else:
        host, ref, click_param, source = tp.pick(SOCIAL)
        campaign = tp.pick(SOCIAL_CAMPAIGNS)
        medium, click_rate = "paid_social", 0.3
        page = ref
        props = {"creative": f"{campaign}-{tp.pick(('carousel', 'story', 'reel'))}"}
    channel = "social" if entry == "social" else entry
    for _ in range(1 + min(int(rng.expovariate(1.2)), 3)):
        tp.emit(t, "ms", "impression", channel, {"cookie": dev.cookie},
                {"url": page, "tz": tp.tz_name, "user_agent": dev.ua},
                dict(props), campaign, host)
        t += tp.span(20 * SECOND, 8 * MINUTE)
    if not force_click and rng.random() >= click_rate:
        return False, t, None
    query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
    if click_param:
        query += f"&{click_param}={tp.token(96)}"
    landing = f"{SITE}/{product.path}{query}"
    tp.emit(t, "ms", "click", channel, {"cookie": dev.cookie},
            tp.web_ctx(dev, landing, page), dict(props), campaign, host)
    t += tp.span(1 * SECOND, 5 * SECOND)
    explicit = rng.random() < 0.4
    return True, t, (query, f"https://{host}/", "web" if explicit else None, campaign, host)


def _email_exposure(tp: Touchpoints, t: int, reader: Device, dev: Device, product: Product,
                    force_click: bool):
    """The newsletter opened on `reader`, maybe clicked on `dev` (another device: later)."""
    rng, p = tp.rng, tp.p
    campaign = tp.pick(EMAIL_CAMPAIGNS)
    message_id = f"esp-{tp.token(48)}"
    # Mail privacy proxies (Apple MPP) load the pixel without the reader's cookie.
    if reader is dev and rng.random() < 0.3:
        ids = {"email": p.email}
    else:
        ids = {"email": p.email, "cookie": reader.cookie}
    tp.emit(t, "utc", "email_open", "email", ids,
            {"tz": tp.tz_name, "user_agent": reader.ua},
            {"message_id": message_id}, campaign)
    if reader is not dev:
        t += tp.span(20 * MINUTE, 90 * MINUTE)     # back home, at the computer
    if not force_click and rng.random() < 0.02:
        t += tp.span(20 * SECOND, 3 * MINUTE)
        p.unsubscribed = True
        tp.emit(t, "local", "consent", "email", {"email": p.email},
                {"tz": tp.tz_name, "user_agent": dev.ua},
                {"channel": "email", "opt_in": False, "source": "unsubscribe-link"})
        return False, t, None
    if not force_click and rng.random() >= 0.4:
        return False, t, None
    t += tp.span(5 * SECOND, 5 * MINUTE)
    query = f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}"
    tp.emit(t, "utc", "email_click", "email", {"email": p.email, "cookie": dev.cookie},
            tp.web_ctx(dev, f"{SITE}/{product.path}{query}"),
            {"message_id": message_id, "link": product.path}, campaign)
    t += tp.span(1 * SECOND, 4 * SECOND)
    return True, t, (query, campaign)
