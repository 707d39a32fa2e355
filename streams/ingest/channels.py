"""Channel derivation for touchpoints that arrive without one, and campaign parameters of URLs.

`derive_channel(url, referrer, type_)` takes the first rule that answers:

1. a click id in the landing URL: gclid, gbraid, wbraid, msclkid -> search; dclid -> display;
   fbclid, ttclid, twclid, li_fat_id, ScCid -> social (gbraid/wbraid are Google Ads' iOS click
   ids and are counted with gclid);
2. utm_medium (case, "-" and spaces ignored): cpc, ppc, paid_search, sem -> search (social when
   utm_source names a social network, as GA4 does for "facebook / cpc"); display, banner, cpm,
   programmatic -> display; social, paid_social -> social; email, e_mail, newsletter -> email;
   affiliate -> affiliate; video -> video; sms -> sms; push -> push;
3. the event type, for types that only happen on one channel: store_visit, geofence_enter -> store;
   push_open -> push; sms_click -> sms; email_open, email_click -> email; app_open -> app;
   impression -> display;
4. the referrer host, when the referrer is another site than the landing URL: webmail (mail.*,
   webmail.*, outlook.*) -> email; google, bing, duckduckgo, yahoo, qwant, ecosia -> search;
   facebook, instagram, twitter, linkedin, tiktok, pinterest, reddit, t.co, x.com, lnkd.in ->
   social; youtube -> video; any other external site -> "web" (the channel set of DESIGN.md has no
   "referral": a visit referred by another site is web traffic);
5. otherwise "direct".

The type rule (3) comes before the referrer (4) on purpose: an impression reports the publisher page
as its referrer and an email open may report a webmail host; the type is the stronger signal there,
while explicit tagging (1, 2) still wins over both.

Names of search engines and social networks match a label of the host ("google" matches
www.google.fr and news.google.co.uk). Same-site detection compares hosts without "www." and
treats subdomains of each other as the same site (no public-suffix list).

Garbage URLs are tolerated: anything urllib cannot split gives no parameters and no host.
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "CLICK_ID_CHANNELS",
    "DEFAULT_CHANNEL",
    "MEDIUM_CHANNELS",
    "REFERRAL_CHANNEL",
    "TYPE_CHANNELS",
    "campaign_params",
    "derive_channel",
    "has_campaign_params",
    "referrer_host",
    "utm_params",
]

DEFAULT_CHANNEL = "direct"
REFERRAL_CHANNEL = "web"

# Query keys are compared lower-cased (Snapchat's is "ScCid").
CLICK_ID_CHANNELS = {
    "gclid": "search", "gbraid": "search", "wbraid": "search", "msclkid": "search",
    "dclid": "display",
    "fbclid": "social", "ttclid": "social", "twclid": "social", "li_fat_id": "social",
    "sccid": "social",
}
MEDIUM_CHANNELS = {
    "cpc": "search", "ppc": "search", "paid_search": "search", "sem": "search",
    "display": "display", "banner": "display", "cpm": "display", "programmatic": "display",
    "social": "social", "paid_social": "social",
    "email": "email", "e_mail": "email", "newsletter": "email",
    "affiliate": "affiliate",
    "video": "video",
    "sms": "sms",
    "push": "push",
}
TYPE_CHANNELS = {
    "store_visit": "store", "geofence_enter": "store",
    "push_open": "push",
    "sms_click": "sms",
    "email_open": "email", "email_click": "email",
    "app_open": "app",
    "impression": "display",
}
_PAID_MEDIUMS = frozenset({"cpc", "ppc", "paid_search", "sem"})
_SEARCH_LABELS = frozenset({"google", "bing", "duckduckgo", "yahoo", "qwant", "ecosia"})
_SOCIAL_LABELS = frozenset({"facebook", "instagram", "twitter", "linkedin", "tiktok", "pinterest",
                            "reddit"})
_SOCIAL_SOURCES = _SOCIAL_LABELS | {"fb", "ig", "meta", "x", "snapchat"}
_SOCIAL_DOMAINS = ("t.co", "x.com", "lnkd.in")
_VIDEO_LABELS = frozenset({"youtube"})
_WEBMAIL_FIRST_LABELS = frozenset({"mail", "webmail", "outlook"})


def _split(url: object):
    if not isinstance(url, str) or not url:
        return None
    try:
        return urlsplit(url.strip())
    except ValueError:  # e.g. "http://[::1" (bad IPv6 literal)
        return None


def _params(url: object) -> dict[str, str]:
    """Query parameters of `url`: keys lower-cased, first non-empty value kept, values stripped.
    The result is shared (cached): read it, never change it."""
    if not isinstance(url, str) or "?" not in url:
        return _NO_PARAMS
    return _parsed_params(url)


_NO_PARAMS: dict[str, str] = {}


# a touchpoint's URL is read twice (channel, campaign), and landing URLs repeat
@lru_cache(maxsize=4096)
def _parsed_params(url: str) -> dict[str, str]:
    parts = _split(url)
    if parts is None or not parts.query:
        return {}
    out: dict[str, str] = {}
    try:
        pairs = parse_qsl(parts.query)
    except ValueError:
        return {}
    for key, value in pairs:
        key = key.strip().lower()
        value = value.strip()
        if key and value and key not in out:
            out[key] = value
    return out


def utm_params(url: object) -> dict[str, str]:
    """The utm_* parameters of `url` (keys lower-case, empty values dropped); {} for garbage."""
    return {k: v for k, v in _params(url).items() if k.startswith("utm_")}


def campaign_params(url: object) -> tuple[str | None, str | None]:
    """(utm_campaign, utm_source) of `url`, each None when absent."""
    params = _params(url)
    return params.get("utm_campaign"), params.get("utm_source")


def has_campaign_params(url: object) -> bool:
    """True when `url` carries any utm_* parameter or an ad click id: the landing page of a
    touch (cached per URL: attribution and traits both ask for every page view)."""
    if not isinstance(url, str) or "?" not in url:
        return False
    return _has_campaign_params(url)


@lru_cache(maxsize=4096)
def _has_campaign_params(url: str) -> bool:
    return any(k.startswith("utm_") or k in CLICK_ID_CHANNELS for k in _parsed_params(url))


def _host(url: object) -> str | None:
    if not isinstance(url, str):
        return None
    return _parsed_host(url)


@lru_cache(maxsize=4096)
def _parsed_host(url: str) -> str | None:
    text = url.strip()
    if not text:
        return None
    parts = _split(text if "//" in text else "//" + text)  # tolerate "autonews.example/page"
    if parts is None:
        return None
    try:
        host = parts.hostname
    except ValueError:
        return None
    host = host.rstrip(".") if host else ""
    if "." not in host or not host.replace(".", "").replace("-", "").isalnum():
        return None
    return host[4:] if host.startswith("www.") else host


def _same_site(a: str, b: str) -> bool:
    return a == b or a.endswith("." + b) or b.endswith("." + a)


def referrer_host(referrer: object, url: object = None) -> str | None:
    """Host of `referrer` without "www.", or None when missing, unparsable, or the same site as
    `url`."""
    ref = _host(referrer)
    if ref is None:
        return None
    own = _host(url)
    if own is not None and _same_site(ref, own):
        return None
    return ref


def _channel_of_host(host: str) -> str:
    labels = host.split(".")
    if labels[0] in _WEBMAIL_FIRST_LABELS:
        return "email"
    named = labels[:-1]  # the TLD is never the name: "google" must not match "foo.google"
    if any(label in _SEARCH_LABELS for label in named):
        return "search"
    if any(label in _SOCIAL_LABELS for label in named):
        return "social"
    if any(host == d or host.endswith("." + d) for d in _SOCIAL_DOMAINS):
        return "social"
    if any(label in _VIDEO_LABELS for label in named):
        return "video"
    return REFERRAL_CHANNEL


def _normal_medium(medium: str) -> str:
    return medium.strip().lower().replace("-", "_").replace(" ", "_")


def derive_channel(url: object, referrer: object, type_: object) -> str:
    """The channel of a touchpoint that came without one (rules in the module docstring)."""
    params = _params(url)
    if params:
        for key in params:
            channel = CLICK_ID_CHANNELS.get(key)
            if channel is not None:
                return channel
        medium = params.get("utm_medium")
        if medium is not None:
            medium = _normal_medium(medium)
            channel = MEDIUM_CHANNELS.get(medium)
            if channel is not None:
                if medium in _PAID_MEDIUMS and _is_social_source(params.get("utm_source")):
                    return "social"
                return channel
    if isinstance(type_, str):
        channel = TYPE_CHANNELS.get(type_.strip().lower())
        if channel is not None:
            return channel
    host = referrer_host(referrer, url)
    if host is not None:
        return _channel_of_host(host)
    return DEFAULT_CHANNEL


def _is_social_source(source: str | None) -> bool:
    if not source:
        return False
    s = source.strip().lower()
    if s.startswith("www."):
        s = s[4:]
    return s in _SOCIAL_SOURCES or s.split(".")[0] in _SOCIAL_LABELS
