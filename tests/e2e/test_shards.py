"""Two workers share the journey's shards, survive kill -9 of either role, and stay exact.

4 input partitions keyed as SDKs key them (one person's events on several partitions), 4 journey
partitions, two `parcours worker` processes in one group: Faust gives each worker two shards,
and one of them the sequencer (the stitch partition). The population merges profiles that live
on different shards, so states are handed between workers through `parcours.transfer`.

1. A third of the input; the sequencer's owner is killed with SIGKILL and started again.
2. A burst with merges across the workers' shards: the first worker whose gauge shows a parked
   profile (a survivor waiting for a hand-off from the other worker's shard) is killed; the
   other takes its shards over and works through the burst; then it is killed too, and both
   start again.
3. The rest of the input. The `FINAL` tables equal `parcours replay` of the same records, and the
   workers' metrics count the transfers and parkings they did.

Run without standby replicas (the default: a takeover recovers from the changelog) and with one
(each worker keeps the other's shards warm; a takeover reads the tail). chDB lets one process open
its directory, so one worker writes ClickHouse and the other runs with `PARCOURS_SINK_STAGE=off`;
nothing is mocked.
"""
from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timezone

import pytest

from sinks.clickhouse import close, connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams import simulate
from streams.cli.replay import replay
from streams.config import Topics
from streams.embedded.worker_process import WorkerProcess, count_until, free_port
from tests.e2e.test_stream_replay import QUERIES, _stitched_key

pytestmark = pytest.mark.e2e
START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()
APP_ID = "e2e-shards"


def _metrics(worker: WorkerProcess, prefix: str) -> float:
    """The sum of every series of `prefix` on the worker's /metrics (0 when not served)."""
    import urllib.error
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics",
                                      timeout=10).read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(prefix) and not line.startswith("#"))


def _tables(url: str) -> dict[str, list]:
    client = connect(url)
    try:
        return {name: sorted(client.query(sql).result_rows) for name, sql in QUERIES.items()}
    finally:
        close(client)


def _until(what: str, check, workers, timeout: float = 120, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(40)}" for w in workers)
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{logs}")
        time.sleep(every)


@pytest.mark.parametrize("standbys", [0, 1], ids=["no-standby", "standby"])
def test_two_workers_sharing_shards_killed_in_turn_give_the_replay(kafka, tmp_path, ch_url,
                                                                    standbys):
    events = list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=900, seed=23, start=START).events()))
    kafka.create_topics({TOPICS.touchpoints: 4})
    url = ch_url()

    def worker(name: str, sink: bool) -> WorkerProcess:
        return WorkerProcess(kafka.url, url, tmp_path / f"data-{name}", app_id=APP_ID,
                             log_path=tmp_path / f"{name}.log", metrics_port=free_port(),
                             extra_env={"PARCOURS_IDLE_SECONDS": "2",
                                        "PARCOURS_STANDBY_REPLICAS": str(standbys),
                                        "PARCOURS_SINK_STAGE": "on" if sink else "off"})

    def sequencer_of(pair) -> WorkerProcess:
        _until("one worker owns the sequencer", lambda: any(
            _metrics(w, 'parcours_batch_size_count{stage="sequencer"}') for w in pair), pair)
        return next(w for w in pair if _metrics(w, 'parcours_batch_size_count{stage="sequencer"}'))

    def produce(part: list) -> None:
        assert asyncio.run(simulate.produce(part, kafka.bootstrap, TOPICS.touchpoints)) == len(part)

    def stitched(n: int, pair) -> None:
        try:
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], n, timeout=240,
                                    alive=lambda: all(w.alive() for w in pair),
                                    key=_stitched_key))
        except (TimeoutError, RuntimeError) as exc:
            logs = "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(60)}" for w in pair)
            pytest.fail(f"{exc}\n{logs}")

    third = len(events) // 3
    a, b = worker("a", sink=True).start(), worker("b", sink=False).start()
    workers = [a, b]
    try:
        # 1. a third, then the sequencer's owner dies and comes back
        produce(events[:third])
        stitched(third // 2, workers)
        owner = sequencer_of(workers)
        owner.kill()
        index = workers.index(owner)
        workers[index] = worker("a" if owner is a else "b", sink=owner is a).start()
        a, b = workers
        stitched(third, workers)
        # 2. a burst with merges across the two workers' shards: the first worker seen holding a
        # parked profile (a survivor waiting for a hand-off from the other worker's shard) dies
        burst = threading.Thread(target=produce, args=(events[third:2 * third],))
        burst.start()
        holder: list[WorkerProcess] = []

        def parking() -> bool:
            holder.extend(w for w in workers if _metrics(w, "parcours_shard_parked_profiles"))
            return bool(holder)

        _until("a worker holding a parked profile", parking, workers, 120, every=0.01)
        holder[0].kill()
        burst.join()
        stitched(2 * third, [w for w in workers if w is not holder[0]])  # the other takes over
        for w in workers:
            if w.alive():
                w.kill()
        a, b = worker("a", sink=True).start(), worker("b", sink=False).start()
        workers = [a, b]
        # 3. the rest
        produce(events[2 * third:])
        stitched(len(events), workers)
        sequencer_of(workers).wait_settled(timeout=120)
        a.wait_sink(timeout=120)
        transfers = sum(_metrics(w, "parcours_shard_transfers_total") for w in workers)
        parkings = sum(_metrics(w, "parcours_shard_parked_total") for w in workers)
        cross = sum(_metrics(w, "parcours_shard_cross_merges_total") for w in workers)
    finally:
        for w in workers:
            w.stop(drain=False)
    # the restarted workers handed states and parked profiles again (their counters start at 0)
    assert transfers > 0 and parkings > 0 and cross > 0, (transfers, parkings, cross)

    source = tmp_path / "input.jsonl"
    simulate.write_jsonl(events, source)
    replay_url = ch_url("ch-replay")
    client = connect(replay_url)
    migrate(client)
    sink = ClickHouseSink(client)
    replay(source, tmp_path / "replay", sink=sink)
    sink.close()
    close(client)
    streamed, replayed = _tables(url), _tables(replay_url)
    for name in QUERIES:
        assert streamed[name] == replayed[name], name
    assert len(streamed["touchpoints"]) == len(events)
    assert streamed["triggers"] and streamed["attribution_credit"]
