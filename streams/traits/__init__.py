"""Traits: what parcours knows of each person, computed on the stream, and audiences built on it.

Reading guide:
- `model`: the pack's `traits:` settings (`TraitsConfig`: the lapse, the top-channel window, the
  RFM cut points) and its `audiences:` (`Audience`: a tree of trait tests, counts of recent
  events, all / any / not);
- `profile`: one profile's trait state as plain data, what an event does to it, what it gives
  as of a time (`derive`: first and last seen, purchases, revenue, lifecycle, top channel, RFM,
  the declared traits), when it next changes with no event, and what a merge keeps;
- `audiences`: the audiences compiled to closures (`AudienceBook`): who is in, the events they
  count, when a `within` test runs out;
- `records`: the `profile_traits` rows and the `audiences` records (entered / exited);
- `stage`: `TraitsStage`, the per-profile stage the pipeline and the shards run;
- `rfm`: RFM cut points computed from ClickHouse (`parcours traits rfm`).

Plain data and functions: no Faust, no Kafka client, no ClickHouse (except `rfm`'s query).
"""
from streams.lazy_exports import lazy

EXPORTS = {
    "Audience": "streams.traits.model",
    "Rfm": "streams.traits.model",
    "TraitsConfig": "streams.traits.model",
    "TRAIT_NAMES": "streams.traits.model",
    "AudienceBook": "streams.traits.audiences",
    "AudienceRecord": "streams.traits.records",
    "TraitsRow": "streams.traits.records",
    "TraitsStage": "streams.traits.stage",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
