"""A paced load: touchpoints offered at a fixed rate, in 10 ms ticks, by one aiokafka producer."""
from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

TICK = 0.01


async def offer(bootstrap: str, events: list[dict], rate: int, seconds: float,
                send: Callable[[object, list[dict], float], Awaitable[None]]) -> int:
    """Hand `events` to `await send(producer, chunk, elapsed_s)` one tick's worth at a time, at
    `rate`/s, for at most `seconds`; returns how many were offered (all sent and flushed)."""
    from streams.kafka.clients import KafkaClients

    producer = KafkaClients.at(bootstrap).producer(linger_ms=1)
    await producer.start()
    per_tick = max(1, int(rate * TICK))
    n = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < seconds and n < len(events):
            delay = started + (n // per_tick) * TICK - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            chunk = events[n:n + per_tick]
            n += len(chunk)
            await send(producer, chunk, time.perf_counter() - started)
        await producer.flush()
    finally:
        await producer.stop()
    return n
