"""A person's consent per channel, from the gate's state: what the gate checks (d. opt-in) and
what the profile view and `profile_traits` show.

Per channel, the latest consent by event time among that channel's own and "all" (a tie goes to
the channel's own), else the pack's `default_opt_in` (False when the channel is not listed).
"""
from __future__ import annotations

__all__ = ["consent_of", "newer_consent", "opted_in"]


def newer_consent(new: list, cur: list | None) -> bool:
    """A consent [t, opt_in] replaces `cur` when newer; on equal times an opt-out wins."""
    return cur is None or new[0] > cur[0] or (new[0] == cur[0] and cur[1] and not new[1])


def opted_in(consent: dict, channel: str, default_opt_in: dict) -> tuple[bool, str]:
    """(whether `channel` is opted in, why not when it is not), from the state's "c"."""
    own, every = consent.get(channel), consent.get("all")
    cur = every if every is not None and (own is None or every[0] > own[0]) else own
    if cur is None:
        return default_opt_in.get(channel, False), "no consent"
    return cur[1], "opted out (all)" if cur is every else "opted out"


def consent_of(st: dict | None, default_opt_in: dict) -> dict[str, bool]:
    """Every channel the person chose for, or the pack has a default for -> opted in (sorted by
    channel)."""
    consent = (st or {}).get("c") or {}
    if not consent:
        return dict(sorted(default_opt_in.items()))
    channels = sorted({*default_opt_in, *(ch for ch in consent if ch != "all")})
    return {ch: opted_in(consent, ch, default_opt_in)[0] for ch in channels}
