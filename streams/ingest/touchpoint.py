"""The normalised touchpoint: what ingest hands to the pipeline."""
from __future__ import annotations

SOURCE = "_src"  # set by ingest on each touchpoint: its input partition (the watermark's source)
OFFSET = "_off"  # set by ingest on each touchpoint: its input offset (re-deliveries are skipped)
NOT_A_SOURCE = "-"  # `_src` of records that must not move the watermark (preferences)
