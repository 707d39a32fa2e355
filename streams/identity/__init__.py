"""Identity stitching: every identifier a person shows, on any channel, resolves to one profile.

Read `graph.py` first (`IdentityGraph.resolve`: link, merge or refuse), then `records.py` (what a
resolution returns: merges, refusals, forgotten profiles), `config.py` (which identifier types are
unique, how many of each a profile may hold, which anchors a profile) and `limits.py` (the checks
that refuse a link or a merge).
"""
from streams.lazy_exports import lazy

EXPORTS = {  # name -> the module that defines it
    "IdentityConfig": "streams.identity.config",
    "IdentityGraph": "streams.identity.graph",
    "share_strings": "streams.identity.graph",
    "Forgotten": "streams.identity.records",
    "Merge": "streams.identity.records",
    "Refusal": "streams.identity.records",
    "Resolution": "streams.identity.records",
    "profile_id_for": "streams.identity.records",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
