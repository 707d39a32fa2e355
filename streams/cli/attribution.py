"""Attribution read-outs from ClickHouse: credit per channel / campaign / publisher, as a table,
JSON, CSV or a chart. Analysts can run the same SQL; this is what `parcours attribution` prints
(`add_parser` and `run`, at the end)."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import orjson

from streams import config
from streams.attribution import ALL_MODELS, PATH_MODELS
from streams.cli.common import CliError, figure, open_clickhouse, save_figure
from streams.errors import ConfigError

GROUPINGS = ("channel", "campaign", "publisher")


class ReportError(ConfigError):
    """A request the report cannot answer; the message is one line."""


def _parse_day(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{flag} {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def date_range(column: str, start: str | None, end: str | None) -> tuple[list[str], dict]:
    where: list[str] = []
    params: dict = {}
    since, until = _parse_day(start, "--from"), _parse_day(end, "--to")
    if since:
        where.append(f"{column} >= {{since:DateTime64(3, 'UTC')}}")
        params["since"] = since
    if until:
        where.append(f"{column} < {{until:DateTime64(3, 'UTC')}}")
        params["until"] = until
    return where, params


def credit_by(client, model: str, by: str = "channel", start: str | None = None,
              end: str | None = None, order: int = 1) -> list[dict]:
    """[{by: ..., "conversions": float, "revenue": float}] for one model, largest revenue first.
    markov and shapley are computed from the path counts (`attribution_paths`) of the range."""
    if model not in ALL_MODELS:
        raise ReportError(f"unknown model {model!r}; choose one of {', '.join(ALL_MODELS)}")
    if by not in GROUPINGS:
        raise ReportError(f"--by {by!r}: choose one of {', '.join(GROUPINGS)}")
    if model not in PATH_MODELS:
        if by != "channel":
            raise ReportError(f"model {model!r} credits channels (its states are channels): "
                              "use --by channel")
        return datadriven_credit(client, model, start, end, order=order)
    where, params = date_range("conversion_time", start, end)
    where.append("model = {model:String}")
    params["model"] = model
    sql = (f"SELECT {by} AS key, sum(credit) AS conversions, sum(revenue_credit) AS revenue "
           f"FROM attribution_credit FINAL WHERE {' AND '.join(where)} "
           "GROUP BY key ORDER BY revenue DESC, conversions DESC, key")
    result = client.query(sql, parameters=params)
    return [{by: key, "conversions": float(conv), "revenue": float(rev)}
            for key, conv, rev in result.result_rows]


def datadriven_credit(client, model: str, start: str | None = None, end: str | None = None,
                      order: int = 1) -> list[dict]:
    """Markov or Shapley credit per channel for the paths closed in [start, end), from the additive
    counts in `attribution_paths`. Conversions with no touch are credited to "direct", as the
    heuristic models do."""
    from streams.attribution.datadriven import markov_shares, shapley_credit

    where, params = date_range("closed_at", start, end)
    cond = " AND ".join(where) or "1"
    (touched, touched_revenue, untouched, untouched_revenue), = client.query(
        "SELECT sumIf(converted, touches > 0), sumIf(revenue, converted AND touches > 0), "
        "sumIf(converted, touches = 0), sumIf(revenue, converted AND touches = 0) "
        f"FROM attribution_paths FINAL WHERE {cond}", parameters=params).result_rows
    credit: dict[str, tuple[float, float]] = {}
    if model == "markov":
        rows = client.query(
            "SELECT tupleElement(t, 2), tupleElement(t, 3), sum(tupleElement(t, 4)) "
            f"FROM attribution_paths FINAL ARRAY JOIN transitions AS t "
            f"WHERE tupleElement(t, 1) = {{order:UInt8}} AND touches > 0 AND {cond} "
            "GROUP BY tupleElement(t, 2), tupleElement(t, 3)",
            parameters={**params, "order": order}).result_rows
        if not rows and touched:
            raise ReportError(f"no order-{order} transitions are stored (orders written: "
                              "AttributionConfig.markov_orders)")
        shares = markov_shares({(a, b): float(n) for a, b, n in rows})
        credit = {c: (share * float(touched), share * float(touched_revenue))
                  for c, share in shares.items()}
    else:
        rows = client.query(
            "SELECT channel_set, count(), sum(converted), sum(revenue * converted) "
            f"FROM attribution_paths FINAL WHERE touches > 0 AND {cond} GROUP BY channel_set",
            parameters=params).result_rows
        try:
            credit = shapley_credit((tuple(s), n, c, r) for s, n, c, r in rows)
        except ValueError as exc:
            raise ReportError(str(exc)) from None
    if untouched:
        conv, rev = credit.get("direct", (0.0, 0.0))
        credit["direct"] = (conv + float(untouched), rev + float(untouched_revenue))
    out = [{"channel": c, "conversions": conv, "revenue": rev} for c, (conv, rev) in credit.items()]
    out.sort(key=lambda r: (-r["revenue"], -r["conversions"], r["channel"]))
    return out


def with_payouts(rows: list[dict], by: str, pool: float) -> list[dict]:
    """Each row's share of the credited revenue, and its payout from a commission pool."""
    total = sum(r["revenue"] for r in rows)
    return [{**r, "share": (r["revenue"] / total if total else 0.0),
             "payout": (pool * r["revenue"] / total if total else 0.0)} for r in rows]


def compare(client, models: list[str], start: str | None = None,
            end: str | None = None, lifts: list | None = None) -> list[dict]:
    """[{"channel", "<model>": revenue credited, ..., "incremental_conversions",
    "incremental_revenue"}] for every channel, side by side: the credit of each model, and
    beside it what the rules with a control arm caused on that channel (`rule_lifts`; None
    where no such rule sends)."""
    from streams.experiments.incrementality import by_channel

    data = {m: {r["channel"]: r["revenue"] for r in credit_by(client, m, "channel", start, end)}
            for m in models}
    lifts = rule_lifts(client, start, end) if lifts is None else lifts
    caused = by_channel(lifts, _triggers_per_channel(client, [lift.rule for lift in lifts]))
    channels = sorted({c for per in data.values() for c in per} | set(caused),
                      key=lambda c: (-max(per.get(c, 0.0) for per in data.values()), c))
    return [{"channel": c, **{m: data[m].get(c, 0.0) for m in models},
             "incremental_conversions": caused[c][0] if c in caused else None,
             "incremental_revenue": caused[c][1] if c in caused else None} for c in channels]


def rule_lifts(client, start: str | None = None, end: str | None = None) -> list:
    """Per rule with a control arm, entries in [start, end): the treated arms against the
    control (`streams.experiments.incrementality.RuleLift`)."""
    from streams.experiments.incrementality import rule_lift

    where, params = date_range("entered_at", start, end)
    rows = client.query(
        "SELECT rule, control, count(), sum(converted), sum(revenue) "
        "FROM experiment_exposures FINAL "
        f"WHERE {' AND '.join([*where, 'is_deleted = 0'])} GROUP BY rule, control",
        parameters=params).result_rows
    arms: dict[str, dict[int, tuple]] = {}
    for rule, control, n, conv, revenue in rows:
        arms.setdefault(rule, {})[int(control)] = (int(n), int(conv), float(revenue))
    lifts = [rule_lift(rule, by[0], by[1]) for rule, by in sorted(arms.items())
             if 0 in by and 1 in by]
    return [lift for lift in lifts if lift is not None]


def _triggers_per_channel(client, rules: list[str]) -> dict[str, dict[str, int]]:
    if not rules:
        return {}
    rows = client.query("SELECT rule, channel, count() FROM triggers FINAL "
                        "WHERE has({rules:Array(String)}, rule) AND experiment != '' "
                        "GROUP BY rule, channel", parameters={"rules": rules}).result_rows
    out: dict[str, dict[str, int]] = {}
    for rule, channel, n in rows:
        out.setdefault(rule, {})[channel] = int(n)
    return out


def lift_rows(lifts: list) -> list[dict]:
    """The per-rule figures behind the comparison's incremental columns."""
    return [{"rule": lift.rule, "treated": lift.treated, "treated_conversions":
             lift.treated_conversions, "control": lift.control, "control_conversions":
             lift.control_conversions, "incremental_conversions": lift.incremental_conversions,
             "incremental_revenue": lift.incremental_revenue} for lift in lifts]


def render(rows: list[dict], fmt: str, by: str = "channel", title: str = "") -> str:
    columns = list(rows[0]) if rows else [by, "conversions", "revenue"]
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None)
        for col in columns:
            table.add_column(col, justify="left" if col == by else "right")
        for row in rows:
            table.add_row(*(_cell(col, row[col], by) for col in columns))
        buf = io.StringIO()
        Console(file=buf, width=140, force_terminal=False).print(table)
        return buf.getvalue()
    raise ReportError(f"--format {fmt!r}: choose table, json or csv")


def _cell(column: str, value, by: str) -> str:
    if column == by:
        return value or "(none)"
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    if column == "share":
        return f"{value:.1%}"
    if column == "conversions":
        return f"{value:.2f}"
    return f"{value:,.2f}"


def chart(rows: list[dict], models: list[str], path: Path) -> Path:
    """A grouped bar chart of `compare` rows: revenue credited per channel under each model."""
    channels = [r["channel"] for r in rows]
    fig, ax = figure(11, 5)
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        xs = [j + i * width for j in range(len(channels))]
        ax.bar(xs, [r[model] for r in rows], width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(channels))])
    ax.set_xticklabels(channels, rotation=30, ha="right")
    ax.set_ylabel("revenue credited")
    ax.set_title("parcours: revenue credited per channel and attribution model")
    ax.legend()
    return save_figure(fig, path)


def add_parser(sub) -> None:
    p = sub.add_parser("attribution", help="credit per channel / campaign / publisher")
    p.add_argument("--model", default="last_touch")
    p.add_argument("--from", dest="start", default=None)
    p.add_argument("--to", dest="end", default=None)
    p.add_argument("--by", default="channel")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"))
    p.add_argument("--order", type=int, default=1,
                   help="markov: order of the chain (1 or 2 stored)")
    p.add_argument("--pool", type=float, default=None,
                   help="with --by publisher: commission pool to pay out by share of credited "
                        "revenue")
    p.add_argument("--compare", action="store_true",
                   help="every model side by side (revenue per channel)")
    p.add_argument("--plot", default=None, help="with --compare: draw the comparison to FILE.png")
    p.add_argument("--clickhouse", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.pool is not None and args.by != "publisher":
        raise CliError("attribution: --pool pays publishers: use it with --by publisher")
    if args.plot and not args.compare:
        raise CliError("attribution: --plot draws the model comparison: use it with --compare")
    settings = config.load(clickhouse_url=args.clickhouse)
    client = open_clickhouse(settings.clickhouse_url)
    if args.compare:
        models = list(ALL_MODELS)
        lifts = rule_lifts(client, args.start, args.end)
        rows = compare(client, models, args.start, args.end, lifts)
        print(render(rows, args.format, "channel",
                     title="revenue credited per channel, by model; beside it, what rules "
                           "with a control arm caused there").rstrip("\n"))
        if args.format == "table" and lifts:
            print(render(lift_rows(lifts), "table", "rule",
                         title="incremental conversions per rule: treated - control, scaled "
                               "to the treated").rstrip("\n"))
        if args.plot:
            print(f"chart: {chart(rows, models, Path(args.plot))}")
        return 0
    rows = credit_by(client, args.model, args.by, args.start, args.end, order=args.order)
    if args.pool is not None:
        rows = with_payouts(rows, args.by, args.pool)
    title = f"credit by {args.by} — {args.model}"
    print(render(rows, args.format, args.by, title=title).rstrip("\n"))
    return 0
