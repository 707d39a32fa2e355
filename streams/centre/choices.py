"""A person's choices, as plain data: what the page shows, what a form or an API body may say, and
the preference records a change becomes.

- `Choices`: per channel (`CHANNELS`) whether the person wants it, quiet hours ("" = none,
  else "HH:MM-HH:MM" in their time zone), a daily maximum of messages, and topics of interest.
- `from_form` / `from_json`: the only ways in. Known fields and values only; anything else raises
  `ChoicesRefused` with a reason the API returns (it never echoes a value back).
- `records`: a change -> preference records for the `preferences` topic (streams/preferences/
  records.py): one per channel, carrying the quiet hours and the daily maximum, and one for the
  topics (a declared trait `topics`, since profiles have traits). All share `updated_at`, so the
  worker applies them as one decision.
- `current`: the person's choices folded from their consent and identify touchpoints, with the
  gate's rules (streams/preferences/gate.py): per channel the latest consent by event time (a
  tie goes to an opt-out; "all" counts for every channel, streams/preferences/consent.py), the
  latest quiet hours and daily maximum, the latest declared `topics`; else the rule pack's
  defaults.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from streams.preferences.config import GateConfig, hhmm, quiet_window
from streams.preferences.consent import newer_consent, opted_in

__all__ = ["CHANNELS", "MAX_PER_DAY", "TOPICS", "Choices", "ChoicesRefused", "current",
           "from_form", "from_json", "records"]

CHANNELS = ("email", "push", "sms", "display", "web", "app")
MAX_PER_DAY = 20  # the form offers 0 (none at all) to this
TOPICS = ("offers", "new_models", "electric", "events", "service")  # default topics of interest
TOPICS_TRAIT = "topics"  # the declared trait the topics are stored as
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
FORM_FIELDS = frozenset({"csrf", "channel", "quiet_start", "quiet_end", "max_per_day", "topic",
                         "lang"})
_JSON_FIELDS = frozenset({"channels", "quiet_hours", "max_per_day", "topics"})


class ChoicesRefused(ValueError):
    """A form or body that says something the preference centre does not know."""


@dataclass(frozen=True)
class Choices:
    channels: dict[str, bool]
    quiet_hours: str = ""
    max_per_day: int = 3
    topics: tuple[str, ...] = ()
    # when each choice was last made (epoch ms; absent: the brand's default), for the page
    since: dict[str, int] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict:
        return {"channels": dict(self.channels), "quiet_hours": self.quiet_hours,
                "max_per_day": self.max_per_day, "topics": list(self.topics)}


def defaults(gate: GateConfig) -> Choices:
    """The choices of a person who made none: the rule pack's."""
    quiet = "-".join(gate.quiet_hours) if gate.quiet_hours else ""
    return Choices({ch: gate.default_opt_in.get(ch, False) for ch in CHANNELS}, quiet,
                   min(gate.max_per_day, MAX_PER_DAY), ())


# --- in ------------------------------------------------------------------------------------------

def _max_per_day(value: Any) -> int:
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit() or len(value) > 3:
            raise ChoicesRefused("max_per_day: expected a whole number")
        value = int(value)
    if type(value) is not int or not 0 <= value <= MAX_PER_DAY:
        raise ChoicesRefused(f"max_per_day: expected a whole number from 0 to {MAX_PER_DAY}")
    return value


def _quiet(start: Any, end: Any) -> str:
    if start in ("", None) and end in ("", None):
        return ""
    if not (isinstance(start, str) and isinstance(end, str) and _TIME.match(start)
            and _TIME.match(end)):
        raise ChoicesRefused("quiet hours: give a start and an end as HH:MM, or neither")
    if start == end:
        raise ChoicesRefused("quiet hours: the start and the end are the same")
    return f"{start}-{end}"


def _topics(values: Iterable[Any], offered: tuple[str, ...]) -> tuple[str, ...]:
    chosen = []
    for value in values:
        if value not in offered:
            raise ChoicesRefused("topics: unknown topic")
        if value in chosen:
            raise ChoicesRefused("topics: a topic is given twice")
        chosen.append(value)
    return tuple(t for t in offered if t in chosen)


def from_form(fields: list[tuple[str, str]], offered: tuple[str, ...] = TOPICS) -> Choices:
    """The page's form (name, value pairs, as posted) -> `Choices`. A channel not ticked is not
    wanted; every other field must be there once."""
    seen: dict[str, list[str]] = {}
    for name, value in fields:
        if name not in FORM_FIELDS:
            raise ChoicesRefused("unknown field")
        if not isinstance(value, str) or len(value) > 64:
            raise ChoicesRefused(f"{name}: value too long")
        seen.setdefault(name, []).append(value)
    for name in ("csrf", "quiet_start", "quiet_end", "max_per_day", "lang"):
        if len(seen.get(name, ())) > 1:
            raise ChoicesRefused(f"{name}: given twice")
    for name in ("quiet_start", "quiet_end", "max_per_day"):
        if name not in seen:
            raise ChoicesRefused(f"{name}: missing")
    wanted = seen.get("channel", [])
    if any(ch not in CHANNELS for ch in wanted) or len(set(wanted)) != len(wanted):
        raise ChoicesRefused("channel: unknown or repeated channel")
    return Choices({ch: ch in wanted for ch in CHANNELS},
                   _quiet(seen["quiet_start"][0], seen["quiet_end"][0]),
                   _max_per_day(seen["max_per_day"][0]), _topics(seen.get("topic", []), offered))


def from_json(body: Any, base: Choices, offered: tuple[str, ...] = TOPICS) -> Choices:
    """An API body (`{"channels": {"push": false}, "quiet_hours": "22:00-07:00",
    "max_per_day": 2, "topics": ["electric"]}`, every key optional) applied to `base`."""
    if not isinstance(body, dict) or not body:
        raise ChoicesRefused("expected a JSON object with channels, quiet_hours, max_per_day "
                             "or topics")
    if set(body) - _JSON_FIELDS:
        raise ChoicesRefused("unknown field (known: channels, quiet_hours, max_per_day, topics)")
    out = base
    if "channels" in body:
        channels = body["channels"]
        if (not isinstance(channels, dict) or not channels
                or any(ch not in CHANNELS or type(v) is not bool for ch, v in channels.items())):
            raise ChoicesRefused(f"channels: a mapping of {', '.join(CHANNELS)} to true or false")
        out = replace(out, channels={**out.channels, **channels})
    if "quiet_hours" in body:
        q = body["quiet_hours"]
        if q == "" or q is None:
            out = replace(out, quiet_hours="")
        elif isinstance(q, str) and q.count("-") == 1:
            out = replace(out, quiet_hours=_quiet(*q.split("-")))
        else:
            raise ChoicesRefused("quiet_hours: \"HH:MM-HH:MM\", or \"\" for none")
    if "max_per_day" in body:
        if isinstance(body["max_per_day"], str):
            raise ChoicesRefused("max_per_day: expected a whole number")
        out = replace(out, max_per_day=_max_per_day(body["max_per_day"]))
    if "topics" in body:
        if not isinstance(body["topics"], list):
            raise ChoicesRefused("topics: a list of topics")
        out = replace(out, topics=_topics(body["topics"], offered))
    return out


# --- out -----------------------------------------------------------------------------------------

def records(identifier: str, choices: Choices, now_ms: int) -> list[dict]:
    """The preference records of `choices` for the person holding `identifier` (TYPE:VALUE as
    stored), decided at `now_ms`."""
    kind, value = identifier.split(":", 1)
    ids = {kind: value}
    out = [{"ids": ids, "channel": ch, "opt_in": choices.channels[ch],
            "quiet_hours": choices.quiet_hours, "max_per_day": choices.max_per_day,
            "updated_at": now_ms} for ch in CHANNELS]
    out.append({"ids": ids, "traits": {TOPICS_TRAIT: list(choices.topics)},
                "updated_at": now_ms})
    return out


# --- current state -------------------------------------------------------------------------------

def current(events: Iterable[tuple[int, str, str, dict]], base: Choices) -> Choices:
    """The choices folded from touchpoints (event time ms, event id, type, properties), in any
    order, over `base` (the defaults)."""
    consent: dict[str, list] = {}
    latest: dict[str, tuple] = {}  # quiet / max / topics -> (t, event_id, value)
    for t, event_id, kind, props in events:
        if kind == "consent":
            channel, opt_in = props.get("channel"), props.get("opt_in")
            if isinstance(channel, str) and type(opt_in) is bool \
                    and newer_consent([t, opt_in], consent.get(channel)):
                consent[channel] = [t, opt_in]
            if "quiet_hours" in props:
                q = props["quiet_hours"]
                window = quiet_window(q)
                if window or not q:
                    _keep(latest, "quiet", t, event_id, hhmm(window) if window else "")
            m = props.get("max_per_day")
            if type(m) is int and m >= 0:
                _keep(latest, "max", t, event_id, min(m, MAX_PER_DAY))
        elif kind == "identify":
            traits = props.get("traits")
            if isinstance(traits, dict) and TOPICS_TRAIT in traits:
                topics = traits[TOPICS_TRAIT]
                kept = tuple(x for x in topics if isinstance(x, str)) \
                    if isinstance(topics, list) else ()
                _keep(latest, "topics", t, event_id, kept)
    defaults_ = {ch: base.channels[ch] for ch in CHANNELS}
    channels = {ch: opted_in(consent, ch, defaults_)[0] if consent else defaults_[ch]
                for ch in CHANNELS}
    since = {ch: max(v[0] for c, v in consent.items() if c in (ch, "all"))
             for ch in CHANNELS if ch in consent or "all" in consent}
    since.update({name: latest[name][0] for name in latest})
    return Choices(channels,
                   latest["quiet"][2] if "quiet" in latest else base.quiet_hours,
                   latest["max"][2] if "max" in latest else base.max_per_day,
                   latest["topics"][2] if "topics" in latest else base.topics, since)


def _keep(latest: dict, name: str, t: int, event_id: str, value: Any) -> None:
    """The newest by (event time, event id), as the gate and the traits keep them."""
    cur = latest.get(name)
    if cur is None or (t, event_id) >= cur[:2]:
        latest[name] = (t, event_id, value)
