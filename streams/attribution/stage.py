"""The attribution stage of the pipeline: a profile's path book, fed each stitched touchpoint."""
from __future__ import annotations

from typing import TYPE_CHECKING

from streams.attribution.config import AttributionConfig
from streams.attribution.paths import PathBook
from streams.eventtime.timers import Timers
from streams.state import BatchState

if TYPE_CHECKING:
    from streams.ingest.touchpoint import StitchedTouchpoint
    from streams.pipeline import Emitted


class AttributionStage:
    name = "attribution"

    def __init__(self, state: BatchState, config: AttributionConfig, timers: Timers | None = None):
        self.book = PathBook(state, config, timers)

    def on_event(self, tp: StitchedTouchpoint, out: Emitted) -> None:
        refused = self.book.on_event(tp, out.credits, out.paths)
        if refused and out.late and out.late[-1]["event_id"] == tp["event_id"]:
            out.late[-1]["reason"] += f"; {refused}"

    def on_merge(self, survivor: str, absorbed: list, out: Emitted) -> None:
        self.book.on_merge(survivor, absorbed)

    def on_forget(self, profile_id: str, out: Emitted | None = None) -> None:
        self.book.on_forget(profile_id)

    def on_timer(self, value: dict, out: Emitted) -> None:
        self.book.on_timer(value, out.credits, out.paths)

    def export(self, profile_id: str) -> dict | None:
        return self.book.export(profile_id)

    def adopt(self, profile_id: str, state: dict | None) -> None:
        if state is not None:
            self.book.adopt(profile_id, state)
