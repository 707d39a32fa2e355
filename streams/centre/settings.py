"""The preference centre's settings from the environment, each mistake one readable line.

| variable | meaning |
|---|---|
| PARCOURS_PREFERENCES_SECRET | the links' signing secret, at least 32 characters (required) |
| PARCOURS_PREFERENCES_URL | the public address, base of the links (http://127.0.0.1:8080) |
| PARCOURS_PREFERENCES_TOPICS | topics of interest offered, comma-separated (`choices.TOPICS`) |

Rotating the secret invalidates every link sent: they then get 403, like any bad link.
"""
from __future__ import annotations

import re
from typing import Mapping
from urllib.parse import urlsplit

from streams.centre.choices import TOPICS
from streams.centre.tokens import MIN_SECRET
from streams.errors import ConfigError

__all__ = ["DEFAULT_URL", "public_url", "secret", "topics_offered"]

DEFAULT_URL = "http://127.0.0.1:8080"
_TOPIC = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def secret(env: Mapping[str, str]) -> bytes:
    value = env.get("PARCOURS_PREFERENCES_SECRET", "")
    if not value:
        raise ConfigError("PARCOURS_PREFERENCES_SECRET is not set: the preference links are "
                          f"signed with it (at least {MIN_SECRET} random characters, e.g. "
                          "`openssl rand -hex 32`)")
    if len(value) < MIN_SECRET:
        raise ConfigError(f"PARCOURS_PREFERENCES_SECRET has {len(value)} characters: at least "
                          f"{MIN_SECRET} are needed")
    return value.encode("utf-8")


def public_url(env: Mapping[str, str]) -> str:
    value = (env.get("PARCOURS_PREFERENCES_URL") or DEFAULT_URL).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"PARCOURS_PREFERENCES_URL={value!r}: expected http(s)://host[:port]"
                          "[/path]")
    return value


def topics_offered(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("PARCOURS_PREFERENCES_TOPICS")
    if raw is None:
        return TOPICS
    topics = tuple(t.strip() for t in raw.split(",") if t.strip())
    bad = [t for t in topics if not _TOPIC.match(t)]
    if bad or len(set(topics)) != len(topics) or len(topics) > 30:
        raise ConfigError(f"PARCOURS_PREFERENCES_TOPICS={raw!r}: up to 30 distinct names of "
                          "lowercase letters, digits and _, comma-separated")
    return topics
