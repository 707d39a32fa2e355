"""Event time: the order the journey processes touchpoints in, whatever order they arrive in.

Read `watermark.py` first (each input partition's mark, the frontier, idle partitions, input
positions), then `reorder.py` (touchpoints held until the frontier passes them) and `timers.py`
(deadlines that fire at their place in event-time order).
"""
from streams.lazy_exports import lazy

EXPORTS = {  # name -> the module that defines it
    "ReorderBuffer": "streams.eventtime.reorder",
    "Timers": "streams.eventtime.timers",
    "timer_key": "streams.eventtime.timers",
    "HOLD": "streams.eventtime.watermark",
    "MOVED": "streams.eventtime.watermark",
    "SEEN": "streams.eventtime.watermark",
    "Watermark": "streams.eventtime.watermark",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
