"""Multi-touch attribution: every touchpoint of a path gets its fair share of each conversion.

Read `paths.py` first (`PathBook`: the path per profile, credited once the watermark has passed a
conversion), then `models.py` (the position models and `credit_rows`), `datadriven.py` (markov and
shapley from counts over all paths), `config.py` (what counts) and `stage.py` (the pipeline stage).
"""
from streams.lazy_exports import lazy

EXPORTS = {  # name -> the module that defines it
    "AttributionConfig": "streams.attribution.config",
    "DEFAULT_CONVERSION_TYPES": "streams.attribution.config",
    "DEFAULT_TOUCH_TYPES": "streams.attribution.config",
    "ALL_MODELS": "streams.attribution.models",
    "DAY_MS": "streams.attribution.models",
    "PATH_MODELS": "streams.attribution.models",
    "Touch": "streams.attribution.models",
    "credit_rows": "streams.attribution.models",
    "PathBook": "streams.attribution.paths",
    "path_record": "streams.attribution.paths",
    "AttributionStage": "streams.attribution.stage",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
