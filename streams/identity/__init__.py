"""Identity stitching: every identifier a person shows, on any channel, resolves to one profile.

Read `graph.py` first (`IdentityGraph.resolve`: link, merge or refuse), then `records.py` (what a
resolution returns: merges, refusals, forgotten profiles), `config.py` (which identifier types are
unique, how many of each a profile may hold, which anchors a profile) and `limits.py` (the checks
that refuse a link or a merge).
"""
from streams.identity.config import IdentityConfig
from streams.identity.graph import IdentityGraph, share_strings
from streams.identity.records import Forgotten, Merge, Refusal, Resolution, profile_id_for

__all__ = [
    "Forgotten", "IdentityConfig", "IdentityGraph", "Merge", "Refusal", "Resolution",
    "profile_id_for", "share_strings",
]
