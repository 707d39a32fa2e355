"""The column-by-column conversion and the JSONCompactColumns insert: same values as `to_row`,
the same token for a re-sent chunk, volatile columns out of the token, and the rows in chDB."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from sinks.clickhouse import close, close_all, connect
from sinks.migrations import migrate
from sinks.tables import TABLES
from sinks.writer import ClickHouseTableWriter, Columns, SinkError

T0 = 1763622900000


@pytest.fixture(autouse=True)
def _release_engine():
    yield
    close_all()


def path(i: int, **extra) -> dict:
    return {"path_id": f"c-{i}", "closed_at": T0 + i, "profile_id": f"p-{i % 7}",
            "converted": i % 2, "conversion_type": "purchase" if i % 2 else "",
            "revenue": 10.0 * (i % 2), "touches": 2, "channels": ["email", "web"],
            "channel_set": ["email", "web"],
            "transitions": [[1, "start", "email", 1], [1, "email", "web", 1]],
            "computed_at": T0 + 5, **extra}


def as_rows(columns: list[list]) -> list[tuple]:
    return [tuple(row) for row in zip(*columns)]


def test_to_columns_gives_what_to_row_gives():
    table = TABLES["touchpoints"]
    plain = [{"event_id": f"e-{i}", "event_time": T0 + i, "profile_id": "p", "type": "click",
              "channel": "web", "campaign": None, "publisher": "pub", "ids": {"cookie": "c"},
              "context": {"b": 1, "a": 2}, "properties": {}, "revenue": 0.0, "currency": "EUR",
              "ingested_at": T0} for i in range(50)]
    assert as_rows(table.to_columns(plain)) == [table.to_row(r) for r in plain]
    # every column needing a conversion: a datetime, an int revenue, omitted defaults, a map
    # value to stringify, JSON text kept as it is
    mixed = [*plain[:3],
             {"event_id": "e-x", "event_time": datetime(2025, 11, 20, 7, 15, tzinfo=timezone.utc),
              "profile_id": "p", "type": "click", "channel": "web", "ids": {"n": 5, "gone": None},
              "properties": '{"x": 1}', "revenue": 3}]
    rows = as_rows(table.to_columns(mixed))
    expected = [table.to_row(r) for r in mixed]
    # ingested_at defaults to the clock for the omitted one: compare the rest exactly
    assert [r[:-1] for r in rows] == [r[:-1] for r in expected]
    assert rows[3][:12] == ("e-x", T0, "p", "click", "web", None, None, {"n": "5"}, "{}",
                            '{"x": 1}', 3.0, "")
    paths = TABLES["attribution_paths"]
    tupled = [path(1, channels=("email", "web"), transitions=[(1, "start", "email", 1)])]
    # tuples inside kept as they are: what is sent (the JSON) is the same
    assert orjson.dumps(as_rows(paths.to_columns(tupled))) == orjson.dumps(
        [paths.to_row(r) for r in tupled])
    assert paths.to_columns([]) == [[] for _ in paths.columns]


@pytest.mark.parametrize("bad, message", [
    ({"revenue": "10"}, "column 'revenue': expected a number"),
    ({"converted": True}, "column 'converted': expected an int"),
    ({"channels": ["email", 3]}, "column 'channels': expected a list of str"),
    ({"path_id": None}, "column 'path_id' is missing"),
])
def test_one_bad_row_in_a_large_batch_is_named(bad, message):
    rows = [path(i) for i in range(1000)]
    rows[617] = path(617, **bad)
    with pytest.raises(ValueError, match=f"attribution_paths: {message}"):
        TABLES["attribution_paths"].to_columns(rows)
    with pytest.raises(ValueError, match="a row must be a dict"):
        TABLES["attribution_paths"].to_columns([path(0), ["not", "a", "dict"]])


class RecordingClient:
    """Records every raw insert; the first `failures` of them raise."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.inserts: list[tuple[str, bytes, str]] = []

    def raw_insert(self, table, column_names, insert_block, fmt, settings):
        self.inserts.append((table, insert_block, settings["insert_deduplication_token"]))
        assert fmt == "JSONCompactColumns" and list(column_names) == list(
            TABLES[table].column_names)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset by peer")


def test_failed_chunk_is_resent_whole_with_the_same_token():
    client = RecordingClient(failures=1)
    writer = ClickHouseTableWriter(client, "attribution_paths", max_rows=4, max_attempts=1,
                                   max_age_s=3600)
    writer.add([path(i) for i in range(10)])  # due: add flushes, the first chunk fails (kept)
    assert len(client.inserts) == 1 and writer.pending == 10 and writer.errors == 1
    first = client.inserts[0]
    assert writer.flush() == 10
    sent = client.inserts[1:]
    assert [len(orjson.loads(block)[0]) for _, block, _ in sent] == [4, 4, 2]
    assert sent[0][1:] == first[1:]  # the failed head chunk again: same payload, same token
    assert len({token for _, _, token in sent}) == 3
    client.failures = 1
    writer.add([path(i) for i in range(10, 12)])
    with pytest.raises(SinkError, match="writing 2 rows failed after 1 attempt"):
        writer.flush()
    assert writer.pending == 2


def test_volatile_columns_stay_out_of_the_token():
    tokens = []
    for stamp in (T0, T0 + 99_000):
        client = RecordingClient()
        writer = ClickHouseTableWriter(client, "attribution_paths")
        writer.add([path(i, computed_at=stamp) for i in range(5)])
        writer.flush()
        (_, block, token), = client.inserts
        assert orjson.loads(block)[-1] == [stamp / 1000] * 5  # the stamp is sent
        tokens.append(token)
    assert tokens[0] == tokens[1]
    client = RecordingClient()
    writer = ClickHouseTableWriter(client, "attribution_paths")
    writer.add([path(i, revenue=1.5) for i in range(5)])  # content changed: another token
    writer.flush()
    assert client.inserts[0][2] != tokens[0]


def test_columns_buffer_slices_like_a_list():
    buffer = Columns([[], []])
    buffer.extend(Columns([[1, 2, 3], ["a", "b", "c"]]))
    buffer.extend(Columns([[4], ["d"]]))
    head = buffer[:3]
    assert (len(buffer), head.columns) == (4, [[1, 2, 3], ["a", "b", "c"]])
    del buffer[:3]
    assert (len(buffer), buffer.columns) == (1, [[4], ["d"]])
    with pytest.raises(TypeError):
        buffer[1:2]


def test_paths_round_trip_through_chdb_and_a_resent_chunk_is_dropped(tmp_path):
    client = connect(f"chdb://{tmp_path / 'ch'}")
    try:
        migrate(client)
        writer = ClickHouseTableWriter(client, "attribution_paths", max_rows=3)
        writer.add([path(i) for i in range(7)])
        writer.flush()
        got = client.query("SELECT path_id, closed_at, converted, revenue, channels, transitions, "
                           "computed_at FROM attribution_paths ORDER BY path_id").result_rows
        assert len(got) == 7
        assert got[1] == ("c-1", datetime(2025, 11, 20, 7, 15, 0, 1000), 1, 10.0,
                          ["email", "web"], [(1, "start", "email", 1), (1, "email", "web", 1)],
                          datetime(2025, 11, 20, 7, 15, 0, 5000))
        writer.add([path(i) for i in range(3)])  # the first chunk again: dropped by its token
        writer.flush()
        assert int(client.command("SELECT count() FROM attribution_paths")) == 7
    finally:
        close(client)
