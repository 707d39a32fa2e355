"""The channels that reach the simulated people: publishers (host, referrer, click-id parameter,
utm_source) and campaigns per channel, content pages, push quiet hours, how a session starts
(session entries and their weights) and when (the daily traffic curve)."""
from __future__ import annotations

# Per channel: publishers (host, referrer, click-id parameter, utm_source) and campaigns.
SEARCH = (("google.com", "https://www.google.com/", "gclid", "google", 70),
          ("bing.com", "https://www.bing.com/", "msclkid", "bing", 20),
          ("qwant.com", "https://www.qwant.com/", None, "qwant", 10))
SEARCH_CUM = (70, 90, 100)
SEARCH_CAMPAIGNS = ("brand-search", "generic-suv", "generic-electric", "accessories-search")
DISPLAY = (("autonews.example", "autonews"), ("motormag.example", "motormag"),
           ("citylife.example", "citylife"), ("weather-now.example", "weathernow"),
           ("sport-daily.example", "sportdaily"))
DISPLAY_CAMPAIGNS = ("winter-suv", "city-e-launch", "retargeting-cart", "black-friday")
DISPLAY_CREATIVES = ("300x250", "728x90", "320x50", "300x600")
SOCIAL = (("facebook.com", "https://www.facebook.com/", "fbclid", "facebook"),
          ("instagram.com", "https://l.instagram.com/", "fbclid", "instagram"),
          ("tiktok.com", "https://www.tiktok.com/", "ttclid", "tiktok"),
          ("linkedin.com", "https://www.linkedin.com/", "li_fat_id", "linkedin"))
SOCIAL_CAMPAIGNS = ("city-e-launch", "winter-suv", "black-friday")
VIDEO = (("youtube.com", "https://www.youtube.com/", "youtube"),
         ("dailymotion.com", "https://www.dailymotion.com/", "dailymotion"),
         ("replay-tv.example", "https://replay-tv.example/", "replaytv"))
VIDEO_CAMPAIGNS = ("city-e-launch", "brand-film-2026")
AFFILIATE = (("cashback-club.example", "cashbackclub"), ("coupon-hub.example", "couponhub"),
             ("autodeals.example", "autodeals"))
AFFILIATE_CAMPAIGNS = ("accessories-cashback", "black-friday")
EMAIL_CAMPAIGNS = ("winter-suv", "service-winter-check", "black-friday", "city-e-launch")
PUSH_CAMPAIGNS = ("app-weekly-deals", "service-reminder", "black-friday")
SMS_CAMPAIGNS = ("black-friday", "service-winter-check")
CONTENT_PAGES = ("galerie", "equipements", "financement", "avis", "fiche-technique",
                 "comparateur", "garantie")
QUIET_HOURS = ("22:00-07:00", "21:00-08:00", "23:00-07:30", "20:30-09:00")

# Entry of a session: (entry, weight). Eligibility is checked per person and session.
ENTRIES = (("search", 22), ("search_organic", 9), ("display", 16), ("social", 11),
           ("social_organic", 3), ("email", 14), ("affiliate", 5), ("video", 6), ("push", 12),
           ("sms", 8), ("app", 8), ("direct", 8), ("store", 4))

# Web traffic by local hour of day (relative weights): quiet nights, morning, lunch, evening peak.
_HOURLY = (0.5, 0.25, 0.15, 0.1, 0.1, 0.3, 0.9, 2.0, 3.0, 3.2, 3.0, 3.0, 3.8, 3.6, 3.0, 2.9,
           3.1, 3.6, 4.2, 4.6, 4.8, 4.4, 3.0, 1.4)
HOURLY_CUM = tuple(sum(_HOURLY[: h + 1]) for h in range(24))
