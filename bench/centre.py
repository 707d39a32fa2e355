"""Issue 17's costs: the preference centre over HTTP, the schema registry's read path, Avro outputs.

Each figure is a ratio against a baseline measured in the same run:
1. the preference centre (`streams.centre.app`, in this process on a loopback port, 8 clients at
   once on aiohttp): requests/s of a page view, a form save (CSRF checked, records published to
   an in-memory list) and an API read, against `GET /healthz` (what aiohttp itself costs per
   request). The person's stored state is a fixed answer here: the ClickHouse queries of a page
   are the profile view's, measured by the ClickHouse benches;
2. ingest (`ingest_batch`) of the same touchpoints as JSON, as Confluent Avro with the local id,
   and as Confluent Avro written with an evolved writer schema resolved from a registry
   (`writers`, with Avro's schema resolution), in microseconds per touchpoint against JSON; and
   JSON with an empty `writers` mapping, which must cost what JSON costs;
3. the outputs of a replayed batch (`journey_records`) in JSON and in Avro
   (PARCOURS_OUTPUT_FORMAT=avro), microseconds per output record.

Alone: `python -m bench.centre [N]`.
"""
from __future__ import annotations

import asyncio
import copy
import io
import re
import struct
import sys
import time
from urllib.parse import urlencode

import fastavro
import orjson

from schemas import registry
from schemas.codec import encode_avro
from schemas.confluent.writers import resolve
from streams.centre.app import Centre, make_app
from streams.centre.choices import defaults
from streams.centre.limits import RateLimiter
from streams.centre.state import Person
from streams.centre.tokens import sign
from streams.config import Topics
from streams.ingest.normalise import ingest_batch
from streams.pipeline import Pipeline
from streams.preferences.config import GateConfig
from streams.worker.output_schemas import OutputEncoder, topic_schemas
from streams.worker.outputs import journey_records

SECRET = b"b" * 40
CLIENTS = 8


class _Person:
    """A fixed stored state: three consent touchpoints and three messages."""

    def __init__(self) -> None:
        events = [(1_790_000_000_000 + i, f"e{i}", "consent",
                   {"channel": ch, "opt_in": True, "quiet_hours": "22:00-07:00"})
                  for i, ch in enumerate(("push", "email", "sms"))]
        messages = [{"at_ms": 1_790_000_000_000, "channel": "push", "rule": "near_store_offer",
                     "why": "The phone passes one of our stores today."}] * 3
        self.person = Person(events, messages)

    async def read(self, _identifier: str) -> Person:
        return self.person


async def _http(seconds: float) -> dict:
    from aiohttp import ClientSession, web

    published: list = []

    async def publish(records):
        published.extend(records)

    unlimited = RateLimiter(10**9, 10**9)
    centre = Centre(secret=SECRET, publish=publish, reader=_Person(),
                    defaults=defaults(GateConfig()), per_address=unlimited,
                    per_link=RateLimiter(10**9, 10**9))
    runner = web.AppRunner(make_app(centre), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    token = sign("user:u-bench", int(time.time()) + 3600, SECRET)
    rates = {}
    try:
        async with ClientSession() as session:
            async with session.get(f"{base}/p/{token}") as answer:
                page = await answer.text()
                nonce = answer.cookies["pc_nonce"].value
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            form = urlencode([("csrf", csrf), ("channel", "email"), ("quiet_start", "22:00"),
                              ("quiet_end", "07:00"), ("max_per_day", "2"),
                              ("topic", "electric")])
            calls = {
                "healthz": lambda: session.get(f"{base}/healthz"),
                "page": lambda: session.get(f"{base}/p/{token}"),
                "save": lambda: session.post(
                    f"{base}/p/{token}", data=form, allow_redirects=False,
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Cookie": f"pc_nonce={nonce}"}),
                "api": lambda: session.get(f"{base}/api/v1/preferences",
                                           headers={"Authorization": f"Bearer {token}"}),
            }
            for name, call in calls.items():
                done = 0
                deadline = time.perf_counter() + seconds

                async def client(call=call):
                    nonlocal done
                    while time.perf_counter() < deadline:
                        async with call() as answer:
                            await answer.read()
                            assert answer.status in (200, 303), (name, answer.status)
                        done += 1

                started = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(CLIENTS)))
                rates[name] = done / (time.perf_counter() - started)
                rates[f"{name}_count"] = done
    finally:
        await runner.cleanup()
    rates["records_per_save"] = len(published) / max(1, rates["save_count"])
    return rates


def _evolved_writer() -> dict:
    doc = copy.deepcopy(registry.schema_json("touchpoint"))
    doc["namespace"] = "com.acme.events"
    doc["fields"] = [*reversed(doc["fields"]),
                     {"name": "tenant", "type": "string", "default": "-"}]
    return doc


def _ingest(raws: list[bytes], rounds: int = 3) -> dict:
    records = [orjson.loads(r) for r in raws]
    local = [encode_avro("touchpoint", _avro_ready(r)) for r in records]
    writer = _evolved_writer()
    parsed = fastavro.parse_schema(copy.deepcopy(writer))
    framed = []
    for r in records:
        buf = io.BytesIO()
        buf.write(struct.pack(">BI", 0, 4242))
        fastavro.schemaless_writer(buf, parsed, {**_avro_ready(r), "tenant": "acme"})
        framed.append(buf.getvalue())
    writers = {4242: resolve(4242, {"schema": orjson.dumps(writer).decode()})}
    assert writers[4242].refusal is None, writers[4242].refusal

    def timed(values, **kw) -> float:
        items = [(v, "touchpoints", 0, i) for i, v in enumerate(values)]
        ingest_batch(items[:2000], max_future_ms=10**15, **kw)  # warm up
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            good, dead = ingest_batch(items, max_future_ms=10**15, **kw)
            best = min(best, time.perf_counter() - started)
            assert not dead, dead[0]["reason"]
        return best / len(values) * 1e6

    return {"events": len(raws), "json_us": timed(raws), "json_writers_us": timed(raws, writers={}),
            "avro_local_us": timed(local), "avro_registry_us": timed(framed, writers=writers)}


def _avro_ready(record: dict) -> dict:
    """A simulated touchpoint as touchpoint.avsc writes it: time as epoch ms, only the known
    context and properties keys (Avro records have no free-form keys)."""
    from schemas.codec import CONTEXT_FIELDS, PROPERTIES_FIELDS

    t = record["event_time"]
    if isinstance(t, str):
        from datetime import datetime

        t = int(datetime.fromisoformat(t).timestamp() * 1000)
    return {**record, "event_time": t,
            "context": {k: v for k, v in (record.get("context") or {}).items()
                        if k in CONTEXT_FIELDS},
            "properties": {k: v for k, v in (record.get("properties") or {}).items()
                           if k in PROPERTIES_FIELDS}}


def _outputs(raws: list[bytes], rounds: int = 3) -> dict:
    good, _dead = ingest_batch([(r, "touchpoints", 0, i) for i, r in enumerate(raws)],
                               max_future_ms=10**15)
    out = Pipeline().process(good)
    topics = Topics()
    channels = {t["channel"] for t in out.triggers} | {"push", "email", "sms"}
    encoder = OutputEncoder({t: 1 for t in topic_schemas(topics, channels)}, avro=True)
    times = {}
    for name, enc in (("json", None), ("avro", encoder)):
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            records, _sink = journey_records(out, topics, 0, encoder=enc)
            best = min(best, time.perf_counter() - started)
        times[name] = best / max(1, len(records)) * 1e6
        times["records"] = len(records)
    return times


def bench_centre(raws: list[bytes], seconds: float = 2.0) -> dict:
    return {"http": asyncio.run(_http(seconds)), "ingest": _ingest(raws),
            "outputs": _outputs(raws)}


def report(console, c: dict) -> None:
    from rich.table import Table

    http = c["http"]
    table = Table(title=f"preference centre over loopback HTTP ({CLIENTS} clients, one process)")
    for col in ("request", "requests/s", "ratio vs GET /healthz"):
        table.add_column(col, justify="right" if col != "request" else "left")
    for name, what in (("healthz", "GET /healthz (baseline: aiohttp's floor)"),
                       ("page", "GET /p/{token}: the page"),
                       ("save", "POST /p/{token}: a save (CSRF checked, records published)"),
                       ("api", "GET /api/v1/preferences")):
        table.add_row(what, f"{http[name]:,.0f}", f"{http[name] / http['healthz']:.3f}")
    console.print(table)
    i = c["ingest"]
    table = Table(title=f"ingest_batch, {i['events']:,} touchpoints, microseconds each")
    for col in ("wire format", "us per touchpoint", "ratio vs JSON"):
        table.add_column(col, justify="right" if col != "wire format" else "left")
    for name, what in (("json_us", "JSON (baseline)"),
                       ("json_writers_us", "JSON, a registry configured (empty writers)"),
                       ("avro_local_us", "Confluent Avro, local id 1"),
                       ("avro_registry_us", "Confluent Avro, an evolved writer from a registry")):
        table.add_row(what, f"{i[name]:.2f}", f"{i[name] / i['json_us']:.3f}")
    console.print(table)
    o = c["outputs"]
    console.print(f"outputs of one replayed batch ({o['records']:,} topic records): JSON "
                  f"{o['json']:.2f} us per record, Avro {o['avro']:.2f} us "
                  f"(ratio {o['avro'] / o['json']:.2f}; Avro also encodes the sink rows in JSON)")


def main() -> None:
    from rich.console import Console

    from bench.run import make_event_dicts

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    raws = [orjson.dumps(e) for e in make_event_dicts(n)]
    report(Console(), bench_centre(raws))


if __name__ == "__main__":
    main()
