"""The `parcours` command as a user runs it: outputs on success, one readable line on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import orjson
import pytest

from streams import simulate


def run(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PARCOURS_CLICKHOUSE_URL", None) if env is None else None
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("parcours: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("url, fragment", [
    ("mysql://db:3306/x", "unknown scheme"),
    ("chdb://relative/dir", "PARCOURS_CLICKHOUSE_URL"),
])
def test_bad_clickhouse_url_is_one_line(tmp_path, url, fragment):
    source = tmp_path / "in.jsonl"
    source.write_text("{}\n")
    one_line_error(run("replay", str(source), "--out", str(tmp_path / "o"),
                       env={"PARCOURS_CLICKHOUSE_URL": url}), fragment)


@pytest.mark.parametrize("url, fragment", [
    ("kafka://", "names no broker"),
    ("kafka://host-without-port", "is not host:port"),
    ("amqp://rabbit:5672", "unknown scheme"),
    ("kafka://127.0.0.1:1", "cannot reach Kafka"),
])
def test_bad_kafka_url_is_one_line(tmp_path, url, fragment):
    env = {"PARCOURS_KAFKA_URL": url, "PARCOURS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}",
           "PARCOURS_DATA_DIR": str(tmp_path)}
    one_line_error(run("worker", env=env, timeout=60), fragment)


@pytest.mark.parametrize("name, value", [("PARCOURS_METRICS_PORT", "ninety"),
                                         ("PARCOURS_MAX_FUTURE_SECONDS", "5m")])
def test_bad_numbers_in_settings_are_one_line(tmp_path, name, value):
    env = {name: value, "PARCOURS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}"}
    one_line_error(run("worker", env=env), name)


def test_missing_replay_file_is_one_line(tmp_path):
    one_line_error(run("replay", str(tmp_path / "nope.jsonl")), "no such file")


def test_simulate_replay_attribution_round_trip(tmp_path):
    journeys = tmp_path / "journeys.jsonl"
    env = {"PARCOURS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}"}
    made = run("simulate", "--profiles", "200", "--out", str(journeys), env=env)
    assert made.returncode == 0, made.stderr
    with open(journeys, "ab") as fh:  # a few bad lines must be dead-lettered, not stop the replay
        for raw in simulate.malformed_events(5, seed=1):
            fh.write(raw + b"\n")
    out = tmp_path / "out"
    replayed = run("replay", str(journeys), "--out", str(out), env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert "5 dead-lettered" in replayed.stdout
    for name in ("triggers", "suppressions", "identity", "dead_letter"):
        assert (out / f"{name}.jsonl").exists()
    dead = [orjson.loads(line) for line in (out / "dead_letter.jsonl").read_bytes().splitlines()]
    assert len(dead) == 5 and all(d["reason"] and d["original"] for d in dead)
    identity = [orjson.loads(line) for line in (out / "identity.jsonl").read_bytes().splitlines()]
    assert identity and all(set(i) == {"type", "value", "profile_id"} for i in identity)
    assert all(len(i["value"]) == 64 for i in identity if i["type"] in ("email", "phone"))

    credits = [orjson.loads(line)
               for line in (out / "attribution_credit.jsonl").read_bytes().splitlines()]
    expected = {}
    for row in credits:
        if row["model"] == "linear":
            expected[row["channel"]] = expected.get(row["channel"], 0.0) + row["revenue_credit"]
    shown = run("attribution", "--model", "linear", "--format", "json", env=env)
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)
    assert {r["channel"]: pytest.approx(r["revenue"]) for r in rows} == expected
    assert all(set(r) == {"channel", "conversions", "revenue"} for r in rows)
    conversions = {row["conversion_id"] for row in credits}
    assert sum(r["conversions"] for r in rows) == pytest.approx(len(conversions))

    by_publisher = run("attribution", "--model", "last_touch", "--by", "publisher",
                       "--format", "csv", env=env)
    assert by_publisher.returncode == 0
    assert by_publisher.stdout.startswith("publisher,conversions,revenue")
    compared = run("attribution", "--compare", "--format", "json", "--plot",
                   str(tmp_path / "m.png"), env=env)
    assert compared.returncode == 0, compared.stderr
    table = json.loads(compared.stdout.split("\nchart: ")[0])
    assert set(table[0]) == {"channel", "first_touch", "last_touch", "last_non_direct", "linear",
                             "time_decay", "position_based", "markov", "shapley",
                             "incremental_conversions", "incremental_revenue"}
    for model in ("linear", "markov", "shapley"):  # every model credits the same revenue in total
        assert sum(r[model] for r in table) == pytest.approx(sum(expected.values()))
    assert (tmp_path / "m.png").stat().st_size > 10_000
    paid = run("attribution", "--model", "linear", "--by", "publisher", "--pool", "1000",
               "--format", "json", env=env)
    assert sum(r["payout"] for r in json.loads(paid.stdout)) == pytest.approx(1000.0)
    one_line_error(run("attribution", "--model", "linear", "--pool", "10", env=env),
                   "--by publisher")
    one_line_error(run("attribution", "--model", "markov", "--by", "campaign", env=env),
                   "--by channel")
    one_line_error(run("attribution", "--model", "nonsense", env=env), "unknown model")
    one_line_error(run("attribution", "--model", "linear", "--from", "yesterday", env=env),
                   "--from")


@pytest.mark.parametrize("args, fragment", [
    (["--start", "nope"], "--start"),
    (["--profiles", "0"], "--profiles"),
    ([], "--out FILE.jsonl or --kafka"),
])
def test_bad_simulate_arguments_are_one_line(args, fragment):
    one_line_error(run("simulate", *args), fragment)


def test_bad_forget_identifier_is_one_line():
    one_line_error(run("forget", "--identifier", "email:not-an-email"), "not a valid email")


def test_rules_check_accepts_the_shipped_pack_and_names_the_lines_of_errors(tmp_path):
    from streams.moments.rules.loader import DEFAULT_PACK

    ok = run("rules", "check", str(DEFAULT_PACK))
    assert ok.returncode == 0 and "8 rules OK" in ok.stdout and "near_store_offer" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: x\n    when: {event: {type: a}}\n"
                   "    cooldown: 3 days\n    action: {chanels: [push]}\n")
    checked = run("rules", "check", str(bad))
    assert checked.returncode == 1
    assert f"{bad}:5: rules[x].cooldown:" in checked.stdout
    assert f"{bad}:6: " in checked.stdout and "did you mean 'channels'" in checked.stdout
    one_line_error(run("replay", str(bad), "--rules", str(bad)), "rules:", f"{bad}:5", "+2 more")
    env = {"PARCOURS_RULES": str(bad), "PARCOURS_KAFKA_URL": "kafka://127.0.0.1:1"}
    # before any connection
    one_line_error(run("worker", env=env), "rules:", "parcours rules check")


def test_replay_fires_triggers_with_preferences_first(tmp_path):
    events = tmp_path / "martin.jsonl"
    simulate.write_jsonl(simulate.martin_journey(simulate.clock.datetime(2026, 11, 2, 7, 0,
                                                 tzinfo=simulate.clock.UTC)), events)
    prefs = tmp_path / "prefs.jsonl"
    prefs.write_bytes(orjson.dumps({"ids": {"loyalty": "L-77"}, "channel": "sms", "opt_in": True,
                                    "updated_at": "2026-10-01T09:00:00Z"}) + b"\n{oops\n")
    env = {"PARCOURS_CLICKHOUSE_URL": f"chdb://{tmp_path / 'ch'}"}
    out = tmp_path / "out"
    done = run("replay", str(events), "--out", str(out), "--preferences", str(prefs), env=env)
    assert done.returncode == 0, done.stderr
    assert "1 dead-lettered" in done.stdout and "3 triggers" in done.stdout
    triggers = [orjson.loads(x) for x in (out / "triggers.jsonl").read_bytes().splitlines()]
    assert sorted((t["rule"], t["channel"]) for t in triggers) == [
        ("known_prospect_in_store", "store"), ("near_store_offer", "push"),
        ("price_seen_then_left", "display")]
    one_line_error(run("publish", "preferences", str(tmp_path / "none.jsonl")), "no such file")
    one_line_error(run("publish", "preferences", str(prefs)), f"{prefs}:2")
