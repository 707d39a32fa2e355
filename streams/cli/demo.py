"""`parcours demo`: the whole flow on the embedded defaults, end to end, on real protocols.

Embedded Tansu broker -> `parcours worker` (its own process, Faust) -> chDB. Plays the Martin
journey, a synthetic population and a few malformed records, waits until every record came out the
other side (stitched or dead-lettered), stops the worker, then prints what landed in ClickHouse,
writes a chart, and ends on Martin's profile as `parcours profile` shows it (his lifecycle from
known to customer). `add_parser` and `run` are the command.
"""
from __future__ import annotations

import asyncio
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import orjson

from streams.cli.attribution import chart, compare, credit_by, render
from streams.config import Topics

if TYPE_CHECKING:
    from rich.console import Console

DEMO_START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
CHART_MODELS = ["last_touch", "first_touch", "linear", "position_based", "time_decay", "markov",
                "shapley"]


def add_parser(sub) -> None:
    p = sub.add_parser("demo",
                       help="embedded broker + worker + chDB: the Martin journey end to end")
    p.add_argument("--profiles", type=int, default=2000)
    p.add_argument("--out", default="out/demo")
    p.set_defaults(func=run)


def run(args) -> int:
    return run_demo(profiles=args.profiles, out_dir=Path(args.out))


def run_demo(profiles: int = 2000, out_dir: Path = Path("out/demo")) -> int:
    # here, not at the top: building the `parcours` parser imports this module
    from rich.console import Console

    from streams import simulate
    from streams.embedded.broker import EmbeddedKafka
    from streams.embedded.worker_process import WorkerProcess, count_until, free_port

    console = Console(width=max(120, shutil.get_terminal_size((120, 40)).columns))
    topics = Topics()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # a demo starts from nothing, like its broker
    ch_url = f"chdb://{(data_dir / 'clickhouse').resolve()}"

    martin = simulate.martin_journey(DEMO_START)
    events = list(simulate.in_time_order(
        martin, simulate.Population(profiles=profiles, seed=7, start=DEMO_START).events()))
    malformed = simulate.malformed_events(12, seed=7)
    total = len(events) + len(malformed)

    with EmbeddedKafka() as kafka:
        console.print(f"[bold]broker[/] Tansu (embedded) at {kafka.bootstrap}")
        kafka.create_topics({topics.touchpoints: 4, topics.stitch: 1})
        worker = WorkerProcess(kafka.url, ch_url, data_dir, app_id="parcours-demo",
                               log_path=out_dir / "worker.log", metrics_port=free_port())
        with worker:
            console.print(f"[bold]worker[/] pid {worker.pid}, ClickHouse {ch_url}")
            started = time.perf_counter()
            asyncio.run(simulate.produce(events, kafka.clients, topics.touchpoints))
            asyncio.run(simulate.produce(malformed, kafka.clients, topics.touchpoints))
            console.print(f"[bold]produced[/] {len(events)} touchpoints "
                          f"(Martin + {profiles} profiles) and {len(malformed)} malformed records")
            with console.status("waiting for every record to come out of the pipeline..."):
                try:
                    counts = asyncio.run(count_until(
                        kafka.clients, [topics.stitched, topics.dead_letter], total,
                        timeout=300, alive=worker.alive, key=_record_key))
                    worker.wait_settled()
                except (TimeoutError, RuntimeError) as exc:
                    console.print(f"[red]demo failed:[/] {exc}\n{worker.log_tail()}")
                    return 1
            seconds = time.perf_counter() - started
            console.print(f"[bold]processed[/] {total} records in {seconds:.1f} s "
                          f"({total / seconds:,.0f}/s end to end): {counts}")
        console.print(f"[bold]worker stopped[/] (exit {worker.proc.returncode})")

    from sinks.clickhouse import connect

    client = connect(ch_url)
    _print_landed(console, client, martin)
    png = chart(compare(client, CHART_MODELS), CHART_MODELS, out_dir / "attribution.png")
    console.print(f"[bold]chart[/] {png}")
    _print_experiments(console, client, out_dir)
    _print_profile(console, client)
    return 0


def _print_profile(console: Console, client) -> None:
    """Martin's profile, as `parcours profile --identifier loyalty:L-77` shows it: his traits,
    audiences and lifecycle history (known from his first e-mail, customer since martin-11)."""
    from streams.cli import profile
    from streams.simulate.martin import MARTIN_IDS

    view = profile.profile_view(client, "loyalty", MARTIN_IDS["loyalty"])
    if view is None:
        console.print(f"[bold]profile[/] no profile holds loyalty {MARTIN_IDS['loyalty']}")
        return
    console.print(f"[bold]Martin's profile[/] (parcours profile --identifier "
                  f"loyalty:{MARTIN_IDS['loyalty']}): "
                  f"{profile.lifecycle_line(view['lifecycle_history'])}")
    for part in profile.renderables(view):
        console.print(part)


def _print_experiments(console: Console, client, out_dir: Path) -> None:
    """The shipped pack's experiment (and the rules' holdouts), as `parcours experiments`."""
    from streams.cli import experiments

    try:
        rows = experiments.results(client)
    except experiments.ReportError as exc:
        console.print(f"[bold]experiments[/] {exc}")
        return
    console.print(experiments.table(rows))
    for line in experiments.warnings(rows):
        console.print(line)
    try:
        console.print(f"[bold]chart[/] {experiments.plot(rows, out_dir / 'experiments.png')}")
    except experiments.ReportError as exc:
        console.print(f"[bold]experiments chart[/] not drawn: {exc}")


def _record_key(topic: str, record) -> tuple:
    """Identity of an output record, so at-least-once duplicates are counted once."""
    value = orjson.loads(record.value)
    if "reason" in value:  # a dead letter: one per source record
        return ("dead", value["partition"], value["offset"])
    return ("stitched", value["event_id"])


def _print_landed(console: Console, client, martin: list[dict]) -> None:
    from rich.table import Table

    from streams.ingest.normalise import normalise
    from streams.ingest.pii import hash_identifier

    counts = {t: client.query(f"SELECT count() FROM {t} FINAL").result_rows[0][0]
              for t in ("touchpoints", "identity_map", "attribution_credit")}
    dead = client.query("SELECT count() FROM dead_letters").result_rows[0][0]
    console.print(f"[bold]ClickHouse[/] touchpoints={counts['touchpoints']} "
                  f"identity_map={counts['identity_map']} "
                  f"attribution_credit={counts['attribution_credit']} dead_letters={dead}")

    email = hash_identifier("email", "martin@example.com")
    profile = client.query(
        "SELECT profile_id FROM identity_map FINAL "
        "WHERE identifier_type = 'email' AND identifier = {e:String}",
        parameters={"e": email}).result_rows
    if profile:
        pid = profile[0][0]
        ids = client.query("SELECT identifier_type, identifier FROM identity_map FINAL "
                           "WHERE profile_id = {p:String} ORDER BY identifier_type",
                           parameters={"p": pid})
        table = Table(title=f"Martin's profile {pid}")
        table.add_column("identifier type")
        table.add_column("identifier (email/phone hashed)")
        for kind, value in ids.result_rows:
            table.add_row(kind, value if len(value) < 40 else value[:16] + "…")
        console.print(table)
        conv = normalise(martin[-1])["event_id"] if martin else ""
        credit = client.query(
            "SELECT model, channel, publisher, round(credit, 3), round(revenue_credit, 2) "
            "FROM attribution_credit FINAL "
            "WHERE profile_id = {p:String} AND conversion_id = {c:String} "
            "AND model IN ('last_touch', 'linear', 'position_based') "
            "ORDER BY model, touchpoint_time",
            parameters={"p": pid, "c": conv})
        table = Table(title=f"Martin's purchase {conv}: credit per touchpoint")
        for col in ("model", "channel", "publisher", "credit", "revenue credit"):
            table.add_column(col)
        for row in credit.result_rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)
        _print_triggers(console, client, pid)
    for model in ("last_touch", "linear"):
        console.print(render(credit_by(client, model), "table",
                             title=f"credit by channel — {model}"))
    errors = client.query("SELECT error, count() FROM dead_letters GROUP BY error ORDER BY error")
    console.print("[bold]dead letters[/] " + ", ".join(f"{e}={n}" for e, n in errors.result_rows))


def _print_triggers(console: Console, client, pid: str) -> None:
    """Martin's triggers and withheld candidates, then every candidate by rule and outcome."""
    from rich.table import Table

    table = Table(title="Martin's micro-moments: triggers (sent) and suppressions (withheld)")
    for col in ("local time (Paris)", "rule", "channel", "outcome", "detail"):
        table.add_column(col)
    rows = client.query(
        "SELECT at, rule, channel, outcome, detail FROM ("
        " SELECT fired_at AS at, rule, channel, 'sent' AS outcome,"
        "  concat(if(code != '', concat('code ', code, ' '), ''), message, ' ',"
        "   toString(payload), if(experiment != '', concat(' (', experiment, ': arm ', arm, ')'),"
        "   '')) AS detail"
        "  FROM triggers FINAL WHERE profile_id = {p:String}"
        " UNION ALL SELECT at, rule, channel, reason, detail FROM suppressions FINAL"
        "  WHERE profile_id = {p:String}) ORDER BY at", parameters={"p": pid}).result_rows
    for at, rule, channel, outcome, detail in rows:
        local = (at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)).astimezone(
            ZoneInfo("Europe/Paris"))
        table.add_row(local.strftime("%a %d %b %H:%M"), rule, channel or "-", outcome,
                      detail.strip())
    console.print(table)
    summary = Table(title="Every candidate by rule: sent, or withheld with the reason "
                          "(a deferred trigger counts again when it is sent)")
    for col in ("rule", "outcome", "candidates"):
        summary.add_column(col)
    for rule, outcome, n in client.query(
            "SELECT rule, outcome, sum(candidates) FROM trigger_daily GROUP BY rule, outcome "
            "ORDER BY rule, outcome = 'sent' DESC, outcome").result_rows:
        summary.add_row(rule, outcome, str(n))
    console.print(summary)
