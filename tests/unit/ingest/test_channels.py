"""streams.ingest.channels: channel derivation rules, UTM/campaign parameters, referrer host."""
from __future__ import annotations

import pytest

from streams.ingest.channels import (
    campaign_params,
    derive_channel,
    has_campaign_params,
    referrer_host,
    utm_params,
)

LANDING = "https://brand.example/suv"


@pytest.mark.parametrize("url,referrer,type_,expected", [
    # click ids first
    (LANDING + "?gclid=abc", None, "page_view", "search"),
    (LANDING + "?gbraid=abc", None, "page_view", "search"),
    (LANDING + "?wbraid=abc", None, "page_view", "search"),
    (LANDING + "?msclkid=abc", None, "page_view", "search"),
    (LANDING + "?dclid=abc", None, "page_view", "display"),
    (LANDING + "?fbclid=abc&utm_medium=email", None, "page_view", "social"),
    (LANDING + "?ttclid=1", None, "page_view", "social"),
    (LANDING + "?twclid=1", None, "page_view", "social"),
    (LANDING + "?li_fat_id=1", None, "page_view", "social"),
    (LANDING + "?ScCid=1", None, "page_view", "social"),
    # then utm_medium
    (LANDING + "?utm_medium=cpc", None, "page_view", "search"),
    (LANDING + "?utm_medium=PPC", None, "page_view", "search"),
    (LANDING + "?utm_medium=paid-search", None, "page_view", "search"),
    (LANDING + "?utm_medium=sem", None, "page_view", "search"),
    (LANDING + "?utm_medium=cpc&utm_source=facebook", None, "page_view", "social"),
    (LANDING + "?utm_medium=display", None, "page_view", "display"),
    (LANDING + "?utm_medium=banner", None, "page_view", "display"),
    (LANDING + "?utm_medium=cpm", None, "page_view", "display"),
    (LANDING + "?utm_medium=programmatic", None, "page_view", "display"),
    (LANDING + "?utm_medium=social", None, "page_view", "social"),
    (LANDING + "?utm_medium=Paid%20Social", None, "page_view", "social"),
    (LANDING + "?utm_medium=email", "https://www.google.com/", "page_view", "email"),
    (LANDING + "?utm_medium=newsletter", None, "page_view", "email"),
    (LANDING + "?utm_medium=affiliate", None, "page_view", "affiliate"),
    (LANDING + "?utm_medium=video", None, "page_view", "video"),
    (LANDING + "?utm_medium=sms", None, "page_view", "sms"),
    (LANDING + "?utm_medium=push", None, "page_view", "push"),
    (LANDING + "?utm_medium=qr-poster", None, "page_view", "direct"),  # unknown medium: next rules
    # then the event type
    (None, None, "store_visit", "store"),
    (None, None, "geofence_enter", "store"),
    (None, None, "push_open", "push"),
    (None, None, "sms_click", "sms"),
    (None, "https://mail.google.com/", "email_open", "email"),
    (None, None, "email_click", "email"),
    (None, None, "app_open", "app"),
    ("https://autonews.example/article", "https://autonews.example/", "impression", "display"),
    # then the referrer
    (LANDING, "https://www.google.fr/search?q=suv", "page_view", "search"),
    (LANDING, "https://www.bing.com/", "page_view", "search"),
    (LANDING, "https://duckduckgo.com/", "page_view", "search"),
    (LANDING, "https://search.yahoo.com/", "page_view", "search"),
    (LANDING, "https://www.qwant.com/", "page_view", "search"),
    (LANDING, "https://www.ecosia.org/", "page_view", "search"),
    (LANDING, "https://l.facebook.com/", "page_view", "social"),
    (LANDING, "https://www.instagram.com/", "page_view", "social"),
    (LANDING, "https://t.co/xyz", "page_view", "social"),
    (LANDING, "https://twitter.com/", "page_view", "social"),
    (LANDING, "https://x.com/brand", "page_view", "social"),
    (LANDING, "https://www.linkedin.com/feed", "page_view", "social"),
    (LANDING, "https://www.tiktok.com/", "page_view", "social"),
    (LANDING, "https://www.pinterest.fr/", "page_view", "social"),
    (LANDING, "https://old.reddit.com/r/cars", "page_view", "social"),
    (LANDING, "https://www.youtube.com/watch?v=1", "page_view", "video"),
    (LANDING, "https://mail.yahoo.com/", "page_view", "email"),
    (LANDING, "https://autonews.example/review", "page_view", "web"),
    (LANDING, "https://shop.brand.example/cart", "page_view", "direct"),  # same site
    (LANDING, "https://box.example/", "x.com", "web"),  # "x.com" as a type means nothing
    (LANDING, "https://google.example.net/", "page_view", "search"),
    (LANDING, "https://foo.google/", "page_view", "web"),  # a TLD is not a name
    # else direct
    (LANDING, None, "page_view", "direct"),
    (None, None, "purchase", "direct"),
    ("http://[::1", "not a url", None, "direct"),
    (12, ["garbage"], 3.5, "direct"),
])
def test_derive_channel(url, referrer, type_, expected):
    assert derive_channel(url, referrer, type_) == expected


def test_utm_params_and_campaign_params():
    url = ("https://brand.example/suv?UTM_Source=autonews&utm_medium=display&utm_campaign=winter-suv"
           "&utm_content=&utm_source=second&q=1")
    assert utm_params(url) == {"utm_source": "autonews", "utm_medium": "display",
                               "utm_campaign": "winter-suv"}
    assert campaign_params(url) == ("winter-suv", "autonews")
    assert campaign_params("https://brand.example/") == (None, None)


@pytest.mark.parametrize("url,expected", [
    ("https://brand.example/?utm_source=x", True),
    ("https://brand.example/?gclid=1", True),
    ("https://brand.example/?utm_term=suv", True),
    ("https://brand.example/?utm_source=", False),
    ("https://brand.example/?q=utm_source", False),
    ("https://brand.example/", False),
    ("http://[::1?utm_source=x", False),
    (None, False),
    (42, False),
])
def test_has_campaign_params(url, expected):
    assert has_campaign_params(url) is expected


@pytest.mark.parametrize("referrer,url,expected", [
    ("https://www.autonews.example/a", "https://brand.example/", "autonews.example"),
    ("autonews.example/a", None, "autonews.example"),
    ("https://AUTONEWS.example:8443/", None, "autonews.example"),
    ("https://brand.example/x", "https://www.brand.example/", None),
    ("https://localhost/", None, None),
    ("not a url", None, None),
    ("", None, None),
    (None, None, None),
])
def test_referrer_host(referrer, url, expected):
    assert referrer_host(referrer, url) == expected
