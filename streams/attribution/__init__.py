"""Multi-touch attribution: every touchpoint of a path gets its fair share of each conversion.

Read `paths.py` first (`PathBook`: the path per profile, credited once the watermark has passed a
conversion), then `models.py` (the position models and `credit_rows`), `datadriven.py` (markov and
shapley from counts over all paths), `config.py` (what counts) and `stage.py` (the pipeline stage).
"""
from streams.attribution.config import (
    DEFAULT_CONVERSION_TYPES,
    DEFAULT_TOUCH_TYPES,
    AttributionConfig,
)
from streams.attribution.models import ALL_MODELS, DAY_MS, PATH_MODELS, Touch, credit_rows
from streams.attribution.paths import PathBook, path_record
from streams.attribution.stage import AttributionStage

__all__ = [
    "ALL_MODELS", "AttributionConfig", "AttributionStage", "DAY_MS", "DEFAULT_CONVERSION_TYPES",
    "DEFAULT_TOUCH_TYPES", "PATH_MODELS", "PathBook", "Touch", "credit_rows", "path_record",
]
