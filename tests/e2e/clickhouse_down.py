"""`parcours worker` whose ClickHouse refuses every write while a file exists: fault injection at
the ClickHouse client boundary, for tests/e2e/test_stream_replay.py.

Test-only stand-in (kept in tests/): the worker's real chDB client is wrapped so that its inserts
and deletes raise ConnectionError, as a server that is down would, while the file named by
PARCOURS_TEST_CLICKHOUSE_DOWN exists. The start-up migration runs unhindered (the worker opens
ClickHouse before the outage); reads keep working. Everything else is the real worker.
"""
from __future__ import annotations

import os
import sys

import sinks.clickhouse
import sinks.migrations

FLAG = os.environ["PARCOURS_TEST_CLICKHOUSE_DOWN"]
INSERTS = ("raw_insert", "insert", "insert_arrow", "insert_df")


class Down:
    """A clickhouse-connect client whose writes fail while FLAG exists."""

    def __init__(self, client):
        self._client = client
        self.migrated = False

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in INSERTS and name != "command":
            return attr

        def write(*args, **kwargs):
            sql = str(args[0] if args else kwargs.get("cmd", "")).lstrip().upper()
            ddl = name == "command" and not sql.startswith("DELETE")
            if self.migrated and not ddl and os.path.exists(FLAG):
                raise ConnectionError("Connection refused (injected: ClickHouse is down)")
            return attr(*args, **kwargs)
        return write


def main() -> int:
    real_connect, real_migrate = sinks.clickhouse.connect, sinks.migrations.migrate

    def migrate(client, *args, **kwargs):
        result = real_migrate(client, *args, **kwargs)
        if isinstance(client, Down):
            client.migrated = True  # from here on, the outage applies
        return result

    sinks.clickhouse.connect = lambda url: Down(real_connect(url))
    sinks.migrations.migrate = migrate
    from streams.cli import main as cli

    return cli(["worker"])


if __name__ == "__main__":
    sys.exit(main())
