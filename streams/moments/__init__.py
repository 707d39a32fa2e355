"""Micro-moments: rules over each profile's stitched touchpoints turn into candidate triggers.

Read `engine.py` first (`MomentEngine`: per profile, on event time, the event, sequence, absence
and count patterns of every rule), then `rules/` (the rule language: `model.py` the compiled
rules, `loader.py` a YAML pack -> `RulePack` with each error on its line), `candidate.py` (what the
engine hands to the preferences gate, streams/preferences/) and `stage.py` (engine and gate as one
pipeline stage). `reference.py` holds the stores and inventory the rules join; `feeds.py` applies
the inventory topic; `pack/` is the shipped rule pack.
"""
