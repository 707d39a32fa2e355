"""`parcours experiments`: what each experiment shows, from `experiment_exposures` in ClickHouse.

Per arm: profiles entered, profiles that reached the goal in the window, conversion rate, revenue
per profile; per non-control arm: lift against the control with its 95% interval, the p-value,
Welch's p-value on revenue per profile; per experiment, the sample-ratio-mismatch p-value
against the arms' configured shares (a warning below 0.001). The figures come from
`streams.experiments.stats` (scipy). `--from/--to` select the entries by their time.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import orjson

from streams import config
from streams.cli.attribution import ReportError, date_range
from streams.cli.common import figure, open_clickhouse, save_figure

FIELDS = ("experiment", "arm", "control", "profiles", "conversions", "rate",
          "revenue_per_profile", "lift", "lift_ci_low", "lift_ci_high", "p_value",
          "revenue_p_value", "srm_p_value")


def results(client, experiment: str | None = None, start: str | None = None,
            end: str | None = None) -> list[dict]:
    """One row per arm of every experiment with entries in [start, end) (control first)."""
    from streams.experiments.stats import ArmCounts, analyse

    where, params = date_range("entered_at", start, end)
    ranged = bool(where)
    where.append("is_deleted = 0")
    if experiment:
        where.append("experiment = {experiment:String}")
        params["experiment"] = experiment
    rows = client.query(
        "SELECT experiment, arm, max(control), any(share), count(), sum(converted), "
        "sum(revenue), sum(revenue * revenue) FROM experiment_exposures FINAL "
        f"WHERE {' AND '.join(where)} GROUP BY experiment, arm ORDER BY experiment, arm",
        parameters=params).result_rows
    if not rows:
        known = [name for (name,) in client.query(
            "SELECT DISTINCT experiment FROM experiment_exposures FINAL WHERE is_deleted = 0 "
            "ORDER BY experiment").result_rows]
        what = f"experiment {experiment!r}" if experiment else "any experiment"
        raise ReportError(f"no entries in {what}{' in that range' if ranged else ''}"
                          f" (experiments with entries: {', '.join(known) or 'none'})")
    out: list[dict] = []
    by_experiment: dict[str, list] = {}
    for row in rows:
        by_experiment.setdefault(row[0], []).append(row)
    for name, arms in by_experiment.items():
        counts = [ArmCounts(arm, bool(control), int(n), int(conv), float(rev), float(sq))
                  for _, arm, control, _share, n, conv, rev, sq in arms]
        out.extend(analyse(name, counts, {arm: float(share)
                                          for _, arm, _c, share, *_ in arms}))
    return out


def warnings(rows: list[dict]) -> list[str]:
    """One line per experiment whose arms did not get the traffic they were meant to."""
    from streams.experiments.stats import SRM_ALERT

    seen, lines = set(), []
    for row in rows:
        p = row["srm_p_value"]
        if row["experiment"] not in seen and p is not None and p < SRM_ALERT:
            lines.append(f"warning: experiment {row['experiment']}: sample ratio mismatch "
                         f"(p = {p:.2g} < {SRM_ALERT:g}): the arms did not get the traffic "
                         "their weights say; do not trust its results")
        seen.add(row["experiment"])
    return lines


def render(rows: list[dict], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps([{k: row[k] for k in FIELDS} for row in rows],
                            option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: row[k] for k in FIELDS} for row in rows)
        return buf.getvalue()
    if fmt != "table":
        raise ReportError(f"--format {fmt!r}: choose table, json or csv")
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=160, force_terminal=False).print(table(rows))
    return buf.getvalue()


def table(rows: list[dict]):
    """The rows as a rich Table (what `--format table` prints)."""
    from rich.table import Table

    table = Table(title="experiments: conversions per arm (intention-to-treat)")
    for col in ("experiment", "arm", "profiles", "conv.", "rate", "rev./profile", "lift",
                "95% interval", "p", "revenue p", "SRM p"):
        table.add_column(col, justify="left" if col in ("experiment", "arm") else "right")
    for row in rows:
        control = row["control"] and row["arm"] != "control"
        table.add_row(row["experiment"], row["arm"] + (" (control)" if control else ""),
                      f"{row['profiles']:,}", f"{row['conversions']:,}", _pct(row["rate"]),
                      _num(row["revenue_per_profile"]), _pct(row["lift"], sign=True),
                      _interval(row), _p(row["p_value"]), _p(row["revenue_p_value"]),
                      _p(row["srm_p_value"]))
    return table


def _pct(value, sign: bool = False) -> str:
    return "" if value is None else f"{value:+.1%}" if sign else f"{value:.1%}"


def _num(value) -> str:
    return "" if value is None else f"{value:,.2f}"


def _p(value) -> str:
    return "" if value is None else f"{value:.3g}"


def _interval(row: dict) -> str:
    low, high = row["lift_ci_low"], row["lift_ci_high"]
    return "" if low is None or high is None else f"[{low:+.1%}, {high:+.1%}]"


def plot(rows: list[dict], path: Path) -> Path:
    """Each non-control arm's lift with its 95% interval (a horizontal error bar per arm)."""
    arms = [r for r in rows if not r["control"] and r["lift"] is not None]
    if not arms:
        raise ReportError("--plot: no arm has a lift to draw (a control arm with conversions "
                          "is needed)")
    labels = [f"{r['experiment']} / {r['arm']}" for r in arms]
    lifts = [r["lift"] * 100 for r in arms]
    lows = [(r["lift"] - r["lift_ci_low"]) * 100 if r["lift_ci_low"] is not None else 0
            for r in arms]
    highs = [(r["lift_ci_high"] - r["lift"]) * 100 if r["lift_ci_high"] is not None else 0
             for r in arms]
    fig, ax = figure(9, 1.2 + 0.6 * len(arms))
    ys = list(range(len(arms)))
    ax.errorbar(lifts, ys, xerr=[lows, highs], fmt="o", capsize=4)
    ax.axvline(0, color="grey", linewidth=1, linestyle="--")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("lift in conversion rate against control, % (95% interval)")
    ax.set_title("parcours: experiment lift per arm")
    return save_figure(fig, path)


def add_parser(sub) -> None:
    p = sub.add_parser("experiments", help="conversions, lift and confidence per experiment arm")
    p.add_argument("--experiment", default=None, help="one experiment (default: all)")
    p.add_argument("--from", dest="start", default=None, help="entries from this date")
    p.add_argument("--to", dest="end", default=None, help="entries before this date")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"))
    p.add_argument("--plot", default=None, help="draw each arm's lift with its interval to FILE")
    p.add_argument("--clickhouse", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    settings = config.load(clickhouse_url=args.clickhouse)
    rows = results(open_clickhouse(settings.clickhouse_url), args.experiment, args.start,
                   args.end)
    notes = sys.stdout if args.format == "table" else sys.stderr  # JSON and CSV stay parseable
    print(render(rows, args.format).rstrip("\n"))
    for line in warnings(rows):
        print(line, file=notes)
    if args.plot:
        print(f"chart: {plot(rows, Path(args.plot))}", file=notes)
    return 0
