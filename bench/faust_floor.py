"""A Faust agent that only batches (`take_events`) and counts: the floor of any Faust worker.

Run as `python -m bench.faust_floor worker` with URL, WEBPORT, N, APP_ID and DATADIR in the
environment; prints `RATE <records/s>` from its first batch to the N-th record, then exits.
"""
from __future__ import annotations

import os
import time

import faust

app = faust.App(os.environ.get("APP_ID", "faust-floor"),
                broker=os.environ.get("URL", "kafka://127.0.0.1:9092"), store="memory://",
                web_enabled=False, web_port=int(os.environ.get("WEBPORT", "6067")),
                datadir=os.environ.get("DATADIR", "/tmp/faust-floor"), broker_session_timeout=6,
                broker_heartbeat_interval=1, broker_rebalance_timeout=6,
                consumer_auto_offset_reset="earliest", stream_wait_empty=False)
topic = app.topic("touchpoints", value_type=bytes, value_serializer="raw", key_serializer="raw")
N = int(os.environ.get("N", "100000"))
_state = {"seen": 0, "t0": None}


@app.agent(topic)
async def count(stream):
    async for events in stream.take_events(2000, within=0.5):
        if _state["t0"] is None:
            _state["t0"] = time.perf_counter()
        _state["seen"] += len(events)
        if _state["seen"] >= N:
            print(f"RATE {N / (time.perf_counter() - _state['t0'])}", flush=True)
            os._exit(0)


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
