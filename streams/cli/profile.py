"""`parcours profile --identifier TYPE:VALUE`: one person as parcours knows them, from ClickHouse.

The identifier is hashed as ingest hashes it (email and phone; a SHA-256 hex value is kept), its
profile found in `identity_map`, then the view (`profile_view`, one dict: what `--format json`
prints) is read from the tables:

- `identifiers`: every identifier of the profile (`identity_map FINAL`, email and phone as the
  SHA-256 they are stored as);
- `traits`, `lifecycle_history`, `audiences`, `consent`: the profile's live `profile_traits`
  row (`FINAL`, `is_deleted = 0`), times in ISO 8601 UTC;
- `triggers`, `suppressions`: the newest `RECENT` of each, newest first;
- `journey`: the touchpoints since the last conversion (purchase or lead), oldest first, the
  newest `JOURNEY` of them.

A person's older rows may carry a profile id from before a merge: touchpoints are matched by the
profile id or by any of its identifiers (as `sinks.erasure` does), and triggers and suppressions
by every profile id those touchpoints were stitched to. `renderables` is the table form (rich),
which `parcours demo` prints for Martin. An identifier no profile holds: one line, exit 1.
"""
from __future__ import annotations

import io
import re
import sys
from typing import Any

import orjson

from streams import config
from streams.cli.common import CliError, open_clickhouse

RECENT = 10  # triggers and suppressions shown
JOURNEY = 20  # touchpoints of the open journey shown
_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# a touchpoint of the person: stitched to the profile, or carrying one of its identifiers
PERSON_MATCH = ("(profile_id = {p:String} OR arrayExists("
          "(k, v) -> has({identifiers:Array(String)}, concat(k, ':', v)), "
          "mapKeys(ids), mapValues(ids)))")


def add_parser(sub) -> None:
    p = sub.add_parser("profile", help="one person's identifiers, traits, audiences, consent, "
                                       "triggers and open journey")
    p.add_argument("--identifier", required=True,
                   help="TYPE:VALUE, e.g. email:martin@example.com or loyalty:L-77")
    p.add_argument("--format", default="table", choices=("table", "json"))
    p.add_argument("--clickhouse", default=None)
    p.set_defaults(func=run)


def parse_identifier(text: str) -> tuple[str, str]:
    """`email:Martin@Example.com` -> ("email", "<sha256>"): the key `identity_map` holds."""
    from streams.cli.forget import parse_identifier as keyed

    kind, value = keyed(text).split(":", 1)
    if not _TYPE.match(kind):
        raise CliError(f"--identifier {text!r}: {kind!r} is not an identifier type (lowercase "
                       "letters, digits and _: email, phone, user, loyalty, device, cookie, ...)")
    return kind, value


def run(args) -> int:
    kind, value = parse_identifier(args.identifier)
    settings = config.load(clickhouse_url=args.clickhouse)
    view = profile_view(open_clickhouse(settings.clickhouse_url), kind, value)
    if view is None:
        print(f"parcours: no profile holds {describe(kind, value)}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(render_json(view))
    else:
        print(render_table(view).rstrip("\n"))
    return 0


def describe(kind: str, value: str) -> str:
    from streams.ingest.pii import HASHED_TYPES

    return f"{kind} {value[:16]}… (hashed)" if kind in HASHED_TYPES else f"{kind} {value}"


# -- the view ------------------------------------------------------------------------------------
def profile_view(client, kind: str, value: str, *, recent: int = RECENT,
                 journey: int = JOURNEY) -> dict | None:
    """The profile holding identifier (kind, value) (value as stored: hashed for email and
    phone), as one JSON-ready dict; None when no profile holds it."""
    found = client.query(
        "SELECT profile_id FROM identity_map FINAL WHERE identifier_type = {t:String} "
        "AND identifier = {v:String} AND is_deleted = 0 LIMIT 1",
        parameters={"t": kind, "v": value}).result_rows
    if not found:
        return None
    pid = found[0][0]
    identifiers = [{"type": t, "value": v} for t, v in client.query(
        "SELECT identifier_type, identifier FROM identity_map FINAL "
        "WHERE profile_id = {p:String} AND is_deleted = 0 ORDER BY identifier_type, identifier",
        parameters={"p": pid}).result_rows]
    keys = [f"{i['type']}:{i['value']}" for i in identifiers]
    view: dict[str, Any] = {"profile_id": pid, "identifiers": identifiers}
    view.update(_traits(client, pid))
    profiles, last_conversion = person_profiles(client, pid, keys)
    view["triggers"] = recent_messages(client, "triggers", profiles, recent)
    view["suppressions"] = recent_messages(client, "suppressions", profiles, recent)
    since = last_conversion.pop("at_ms") if last_conversion else None
    view["last_conversion"] = last_conversion
    view["journey"] = _journey(client, pid, keys, since, journey)
    return view


def _traits(client, pid: str) -> dict:
    from streams.traits.records import iso, traits_object

    rows = client.query(
        "SELECT toUnixTimestamp64Milli(first_seen), toUnixTimestamp64Milli(last_seen), "
        "purchases, revenue, toUnixTimestamp64Milli(last_purchase_at), lifecycle, "
        "lifecycle_history, top_channel, rfm, rfm_r, rfm_f, rfm_m, declared, audiences, "
        "consent, toUnixTimestamp64Milli(as_of) FROM profile_traits FINAL "
        "WHERE profile_id = {p:String} AND is_deleted = 0 ORDER BY version DESC LIMIT 1",
        parameters={"p": pid}).result_rows
    if not rows:
        return {"traits": None, "lifecycle_history": [], "audiences": [], "consent": {},
                "as_of": None}
    (first, last, purchases, revenue, last_purchase, lifecycle, history, top, rfm, r, f, m,
     declared, audiences, consent, as_of), = rows
    values: dict[str, Any] = {name: orjson.loads(text) for name, text in sorted(declared.items())}
    values.update({
        "first_seen": first, "last_seen": last, "purchases": int(purchases),
        "revenue": float(revenue), "last_purchase_at": last_purchase, "lifecycle": lifecycle,
        "top_channel": top or None, "rfm": rfm or None,
        "rfm.r": int(r) or None, "rfm.f": int(f) or None, "rfm.m": int(m) or None,
    })
    return {"traits": traits_object(values),
            "lifecycle_history": [{"stage": stage, "since": iso(t)}
                                  for t, stage in orjson.loads(history or "[]")],
            "audiences": sorted(audiences),
            "consent": {channel: bool(ok) for channel, ok in sorted(consent.items())},
            "as_of": iso(as_of)}


def person_profiles(client, pid: str, keys: list[str]) -> tuple[list[str], dict | None]:
    """Every profile id the person's touchpoints were stitched to (the current one first), and
    their last conversion ({event_id, type, at}) or None."""
    from streams.attribution.config import DEFAULT_CONVERSION_TYPES
    from streams.traits.records import iso

    (profiles, conversions, at, event_id, kind), = client.query(
        "SELECT groupUniqArray(profile_id), countIf(is_conv), "
        "maxIf(toUnixTimestamp64Milli(event_time), is_conv), "
        "argMaxIf(event_id, (event_time, event_id), is_conv), "
        "argMaxIf(type, (event_time, event_id), is_conv) FROM ("
        "SELECT profile_id, event_time, event_id, type, "
        "has({conv:Array(String)}, type) AS is_conv "
        f"FROM touchpoints FINAL WHERE {PERSON_MATCH})",
        parameters={"p": pid, "identifiers": keys,
                    "conv": sorted(DEFAULT_CONVERSION_TYPES)}).result_rows
    ids = [pid, *sorted(p for p in profiles if p and p != pid)]
    last = {"event_id": event_id, "type": kind, "at": iso(int(at)), "at_ms": int(at)} \
        if conversions else None
    return ids, last


# what the view shows of each trigger and suppression: its table's time column, its id column,
# the other columns, and those whose "" shows as null
_MESSAGES = {
    "triggers": ("fired_at", "trigger_id",
                 ("rule", "channel", "code", "message", "reason", "experiment", "arm",
                  "trigger_id", "event_id", "payload"),
                 frozenset({"code", "message", "experiment", "arm"})),
    "suppressions": ("at", "suppression_id",
                     ("rule", "channel", "reason", "detail", "experiment", "arm",
                      "suppression_id", "trigger_id", "event_id"),
                     frozenset({"channel", "detail", "experiment", "arm", "trigger_id"})),
}


def recent_messages(client, table: str, profiles: list[str], limit: int) -> list[dict]:
    """The profiles' newest `limit` triggers or suppressions (`table`), newest first."""
    from streams.traits.records import iso

    at, key, columns, blank_is_none = _MESSAGES[table]
    rows = client.query(
        f"SELECT toUnixTimestamp64Milli({at}), {', '.join(columns)} FROM {table} FINAL "
        "WHERE has({profiles:Array(String)}, profile_id) "
        f"ORDER BY {at} DESC, {key} LIMIT {{n:UInt32}}",
        parameters={"profiles": profiles, "n": limit}).result_rows
    out = []
    for at_ms, *values in rows:
        item: dict[str, Any] = {"at": iso(at_ms)}
        for name, value in zip(columns, values):
            item[name] = (value or None if name in blank_is_none
                          else dict(value) if name == "payload" else value)
        out.append(item)
    return out


def _journey(client, pid: str, keys: list[str], since: int | None, limit: int) -> list[dict]:
    """The touchpoints after `since` (the last conversion, epoch ms; None: all): the newest
    `limit`, oldest first."""
    from streams.traits.records import iso

    after = "" if since is None else " AND toUnixTimestamp64Milli(event_time) > {since:Int64}"
    rows = client.query(
        "SELECT event_id, toUnixTimestamp64Milli(event_time), type, channel, campaign, "
        f"publisher, revenue FROM touchpoints FINAL WHERE {PERSON_MATCH}{after} "
        "ORDER BY event_time DESC, event_id DESC LIMIT {n:UInt32}",
        parameters={"p": pid, "identifiers": keys, "since": since or 0,
                    "n": limit}).result_rows
    return [{"event_id": event_id, "at": iso(at), "type": kind, "channel": channel or None,
             "campaign": campaign, "publisher": publisher, "revenue": float(revenue)}
            for event_id, at, kind, channel, campaign, publisher, revenue in reversed(rows)]


# -- output -------------------------------------------------------------------------------------
def render_json(view: dict) -> str:
    return orjson.dumps(view, option=orjson.OPT_INDENT_2).decode()


def render_table(view: dict, width: int = 140) -> str:
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=False)
    for part in renderables(view):
        console.print(part)
    return buf.getvalue()


def _when(text: str | None) -> str:
    """ISO 8601 UTC -> "2026-11-06 10:30 UTC"."""
    return "-" if not text else text[:16].replace("T", " ") + " UTC"


def lifecycle_line(history: list[dict]) -> str:
    """"known since 2026-11-02 07:00 UTC, customer since 2026-11-06 10:30 UTC"."""
    return ", ".join(f"{h['stage']} since {_when(h['since'])}" for h in history) or "-"


def renderables(view: dict) -> list:
    """The table form: rich objects, printed in order."""
    from rich.markup import escape
    from rich.table import Table

    parts: list = []
    ids = Table(title=f"profile {escape(view['profile_id'])}: identifiers", title_justify="left",
                caption="email and phone as stored: SHA-256 of the normalised value",
                caption_justify="left")
    ids.add_column("type")
    ids.add_column("value")
    for item in view["identifiers"]:
        ids.add_row(escape(item["type"]), escape(item["value"]))
    parts.append(ids)

    traits = Table(title=f"traits (as of {_when(view.get('as_of'))})", title_justify="left",
                   show_header=False)
    traits.add_column("trait", style="bold")
    traits.add_column("value")
    values = view.get("traits") or {}
    for name, value in values.items():
        traits.add_row(escape(name), escape(_show_trait(name, value)))
    traits.add_row("lifecycle history", lifecycle_line(view.get("lifecycle_history") or []))
    traits.add_row("audiences", escape(", ".join(view.get("audiences") or ()) or "-"))
    consent = view.get("consent") or {}
    traits.add_row("consent", escape("  ".join(f"{ch} {'yes' if ok else 'no'}"
                                               for ch, ok in consent.items()) or "-"))
    parts.append(traits if values else "[bold]traits[/] none recorded for this profile yet")

    parts.append(_rows_table(
        f"last triggers (newest first, up to {RECENT})", view.get("triggers") or [],
        ("time", "rule", "channel", "code", "reason"),
        lambda t: (_when(t["at"]), t["rule"], t["channel"], t["code"] or "",
                   _arm(t, t["reason"]))))
    parts.append(_rows_table(
        f"last suppressions (newest first, up to {RECENT})", view.get("suppressions") or [],
        ("time", "rule", "channel", "reason", "detail"),
        lambda s: (_when(s["at"]), s["rule"], s["channel"] or "-", s["reason"],
                   _arm(s, s["detail"] or ""))))
    last = view.get("last_conversion")
    since = (f"since the last conversion ({escape(last['type'])} {escape(last['event_id'])}, "
             f"{_when(last['at'])})" if last else "no conversion yet")
    parts.append(_rows_table(
        f"open journey: touchpoints {since}, oldest first (the newest {JOURNEY} at most)",
        view.get("journey") or [], ("time", "event", "type", "channel", "campaign",
                                    "publisher"),
        lambda j: (_when(j["at"]), j["event_id"], j["type"], j["channel"] or "-",
                   j["campaign"] or "", j["publisher"] or "")))
    return parts


def _rows_table(title: str, items: list[dict], columns: tuple, row):
    from rich.markup import escape
    from rich.table import Table

    if not items:
        return f"[bold]{title}[/]: none"
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col)
    for item in items:
        table.add_row(*(escape(str(v)) for v in row(item)))
    return table


def _arm(item: dict, text: str) -> str:
    if item.get("experiment"):
        return f"{text} ({item['experiment']}: arm {item['arm']})".strip()
    return text


def _show_trait(name: str, value) -> str:
    if value is None:
        return "-"
    if name in ("first_seen", "last_seen", "last_purchase_at"):
        return _when(value)
    if name == "revenue":
        return f"{value:,.2f}"
    if name == "rfm":
        return f"{value['score']} (R {value['r']}, F {value['f']}, M {value['m']})"
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
