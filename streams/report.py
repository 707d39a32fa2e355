"""Attribution read-outs from ClickHouse: credit per channel / campaign / publisher, as a table,
JSON, CSV or a chart. Analysts can run the same SQL; this is what `parcours attribution` prints."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

import orjson

from streams.attribution import ALL_MODELS, PATH_MODELS

GROUPINGS = ("channel", "campaign", "publisher")


class ReportError(ValueError):
    """A request the report cannot answer; the message is one line."""


def _parse_day(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ReportError(f"{flag} {value!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def credit_by(client, model: str, by: str = "channel", start: str | None = None,
              end: str | None = None) -> list[dict]:
    """[{by: ..., "conversions": float, "revenue": float}] for one model, largest revenue first."""
    if model not in ALL_MODELS:
        raise ReportError(f"unknown model {model!r}; choose one of {', '.join(ALL_MODELS)}")
    if model not in PATH_MODELS:
        raise ReportError(f"model {model!r} needs the data-driven attribution job, not available yet "
                          f"in this version; available: {', '.join(PATH_MODELS)}")
    if by not in GROUPINGS:
        raise ReportError(f"--by {by!r}: choose one of {', '.join(GROUPINGS)}")
    where = ["model = {model:String}"]
    params: dict = {"model": model}
    since, until = _parse_day(start, "--from"), _parse_day(end, "--to")
    if since:
        where.append("conversion_time >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since
    if until:
        where.append("conversion_time < {until:DateTime64(3, 'UTC')}")
        params["until"] = until
    sql = (f"SELECT {by} AS key, sum(credit) AS conversions, sum(revenue_credit) AS revenue "
           f"FROM attribution_credit FINAL WHERE {' AND '.join(where)} "
           "GROUP BY key ORDER BY revenue DESC, conversions DESC, key")
    result = client.query(sql, parameters=params)
    return [{by: key, "conversions": float(conv), "revenue": float(rev)}
            for key, conv, rev in result.result_rows]


def render(rows: list[dict], fmt: str, by: str = "channel", title: str = "") -> str:
    if fmt == "json":
        return orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[by, "conversions", "revenue"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()
    if fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title or None)
        table.add_column(by)
        table.add_column("conversions", justify="right")
        table.add_column("revenue", justify="right")
        for row in rows:
            table.add_row(row[by] or "(none)", f"{row['conversions']:.2f}",
                          f"{row['revenue']:,.2f}")
        buf = io.StringIO()
        Console(file=buf, width=100, force_terminal=False).print(table)
        return buf.getvalue()
    raise ReportError(f"--format {fmt!r}: choose table, json or csv")


def chart(client, models: list[str], path: Path) -> Path:
    """A grouped bar chart: revenue credited per channel under each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = {m: {r["channel"]: r["revenue"] for r in credit_by(client, m)} for m in models}
    channels = sorted({c for per in data.values() for c in per},
                      key=lambda c: -max(per.get(c, 0.0) for per in data.values()))
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.8 / max(1, len(models))
    for i, model in enumerate(models):
        xs = [j + i * width for j in range(len(channels))]
        ax.bar(xs, [data[model].get(c, 0.0) for c in channels], width, label=model)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(channels))])
    ax.set_xticklabels(channels, rotation=30, ha="right")
    ax.set_ylabel("revenue credited")
    ax.set_title("parcours: revenue credited per channel and attribution model")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
