"""Followers: the worker's readers of compacted topics that keep a piece of reference data current.

The inventory follower reads the whole inventory topic at every start of the worker (no consumer
group, from the start) into the rules' inventory (streams/moments/feeds.py), says when it has caught
up with the topic's end, and keeps applying updates after that.
"""
from __future__ import annotations

import asyncio
import logging

from streams.kafka.clients import KafkaClients
from streams.kafka.patches import true_end_offsets
from streams.kafka.unreadable_batches import getmany_readable, install, is_unreadable
from streams.moments.feeds import apply_inventory

log = logging.getLogger("parcours.app")


async def follow_inventory(clients: KafkaClients, topic: str, inventory,
                           loaded: asyncio.Event) -> None:
    """Apply every record of `topic` to `inventory` until cancelled; set `loaded` once the records
    up to the topic's end (when the follower started) are applied."""
    # no group: every partition, from the start (auto_offset_reset) at every start of the worker
    consumer = clients.consumer(topic, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", metadata_max_age_ms=5000)
    install()
    await consumer.start()
    applied = bad = 0
    ends = None
    try:
        while True:
            for records in (await getmany_readable(consumer, timeout_ms=200)).values():
                for record in records:
                    if is_unreadable(record):  # logged and counted where it was found
                        bad += 1
                    elif apply_inventory(inventory, record.key, record.value):
                        applied += 1
                    else:
                        bad += 1
                        log.warning("unreadable inventory record %s@%d ignored", topic,
                                    record.offset)
            tps = consumer.assignment()  # empty until the topic exists (declared at start-up)
            if not loaded.is_set() and tps:
                if ends is None:
                    ends = await true_end_offsets(clients, list(tps))
                if all([await consumer.position(tp) >= ends.get(tp, 0) for tp in tps]):
                    loaded.set()
                    log.info("inventory loaded from %s: %d updates (%d unreadable)", topic,
                             applied, bad)
    finally:
        await consumer.stop()
