"""Event time: the order the journey processes touchpoints in, whatever order they arrive in.

Read `watermark.py` first (each input partition's mark, the frontier, idle partitions, input
positions), then `reorder.py` (touchpoints held until the frontier passes them) and `timers.py`
(deadlines that fire at their place in event-time order).
"""
from streams.eventtime.reorder import ReorderBuffer
from streams.eventtime.timers import Timers, timer_key
from streams.eventtime.watermark import HOLD, MOVED, SEEN, Watermark

__all__ = ["HOLD", "MOVED", "ReorderBuffer", "SEEN", "Timers", "Watermark", "timer_key"]
