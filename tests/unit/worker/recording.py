"""A stand-in for the worker's BatchProducer in unit tests: it keeps what it is asked to send."""
from __future__ import annotations


class RecordingProducer:
    def __init__(self):
        self.records = []

    async def send_all(self, records):
        self.records.extend(records)
        return len(records)
