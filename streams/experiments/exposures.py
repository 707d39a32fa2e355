"""A profile's entries in experiments, their goal conversions, and the `experiment_exposures` rows.

A profile enters an experiment the first time the rule would send it a message (after consent,
caps and quiet hours: `streams.preferences.gate`), in the arm `assign.arm_of` gives it, and keeps
that entry. A goal conversion (an event of one of the goal's types) in the window after the
entry, `(entered_at, entered_at + within]`, counts for the entry's arm (intention-to-treat: the
control arm's entries count as the others do, and so does an entry whose message was never
opened). Late events count: the goal is a fact about the person, not a moment rule.

Held in the gate's state of the profile, under "x", as plain data:

    {experiment id: [entered_at, arm, rule, trigger_id, version, [[t, revenue, event_id], ...]]}

with at most `MAX_GOALS` goal events per entry (the first ones: more in one window is not a
person). A row is keyed by (experiment, profile, the trigger it entered with): a profile id that
is absorbed and later used again enters under another key, so its rows never race the tombstone
of its old entry. `version` counts the entry's changes: it is the row's version
(ReplacingMergeTree), deterministic, so a replay and the stream write the same rows.

A merge keeps, per experiment, the earliest entry (then the smaller arm id) and the goal events
of every merged entry that fall in its window; the absorbed profiles' rows, and the survivor's own
when another entry is kept, are deleted (`is_deleted` rows). Erasure deletes the person's rows
(sinks/erasure.py).
"""
from __future__ import annotations

from typing import TypedDict

from streams.experiments.model import Arm, Experiment

__all__ = ["ExposureRow", "MAX_GOALS", "enter", "entry_arm", "merge_entries", "on_goal"]

MAX_GOALS = 50
AT, ARM, RULE, TRIGGER, VERSION, GOALS = range(6)


class ExposureRow(TypedDict):
    """One row of `experiment_exposures`: a profile's entry and what it reached."""

    experiment: str
    profile_id: str
    arm: str
    control: int  # 1: the control arm (withheld)
    share: float  # the arm's configured share of the experiment's entries (for the SRM check)
    rule: str
    trigger_id: str  # the trigger (or withheld candidate) it entered with
    entered_at: int
    converted: int  # 1: a goal conversion in the window
    conversions: int
    revenue: float  # the goal conversions' revenue in the window
    version: int
    is_deleted: int


def entry_arm(entries: dict | None, experiment: Experiment, profile_id: str) -> Arm:
    """The profile's arm: the one it entered in (a merge may have kept another profile's
    entry), else the hash's."""
    from streams.experiments.assign import arm_of

    entry = (entries or {}).get(experiment.id)
    if entry is not None:
        arm = next((a for a in experiment.arms if a.id == entry[ARM]), None)
        if arm is not None:
            return arm
    return arm_of(experiment, profile_id)


def enter(entries: dict, experiment: Experiment, arm: Arm, profile_id: str, rule: str,
          trigger_id: str, at: int) -> ExposureRow | None:
    """Enter the profile (`entries`: its "x", changed in place); None when it is in already."""
    if experiment.id in entries:
        return None
    entry = entries[experiment.id] = [at, arm.id, rule, trigger_id, 1, []]
    return row(experiment, profile_id, entry)


def on_goal(entries: dict, experiments: dict[str, Experiment], profile_id: str,
            tp: dict) -> list[ExposureRow]:
    """An event of the profile: a goal conversion of the entries whose window holds it
    (`entries` changed in place; its lists are replaced, never changed: they may be shared with
    the stored value)."""
    rows = []
    t, event_type = tp["event_time"], tp["type"]
    for exp_id, entry in list(entries.items()):
        experiment = experiments.get(exp_id)
        if (experiment is None or event_type not in experiment.goal_types
                or not entry[AT] < t <= entry[AT] + experiment.within_ms):
            continue
        goals = entry[GOALS]
        if len(goals) >= MAX_GOALS or any(g[2] == tp["event_id"] for g in goals):
            continue  # full, or this event counted already
        entry = entries[exp_id] = [*entry[:VERSION], entry[VERSION] + 1,
                                   [*goals, [t, _revenue(tp), tp["event_id"]]]]
        rows.append(row(experiment, profile_id, entry))
    return rows


def merge_entries(survivor: str, kept: dict, absorbed: dict[str, dict],
                  experiments: dict[str, Experiment]) -> list[ExposureRow]:
    """Fold the absorbed profiles' entries (`absorbed`: profile id -> its "x") into the
    survivor's (`kept`, changed in place); the rows that change: the survivor's merged entries,
    and a deleted row per absorbed entry."""
    rows: list[ExposureRow] = []
    merged: dict[str, list] = {}
    for profile_id, entries in absorbed.items():
        for exp_id, entry in entries.items():
            experiment = experiments.get(exp_id)
            if experiment is not None:
                rows.append(row(experiment, profile_id, [*entry[:VERSION], entry[VERSION] + 1,
                                                         entry[GOALS]], deleted=True))
            merged.setdefault(exp_id, []).append(entry)
    for exp_id, others in merged.items():
        mine = kept.get(exp_id)
        candidates = ([mine] if mine is not None else []) + others
        first = min(candidates, key=lambda e: (e[AT], e[ARM]))
        experiment = experiments.get(exp_id)
        window = experiment.within_ms if experiment is not None else 0
        goals: dict[str, list] = {}
        for entry in candidates:
            for goal in entry[GOALS]:
                if first[AT] < goal[0] <= first[AT] + window:
                    goals.setdefault(goal[2], goal)
        version = max(e[VERSION] for e in candidates) + 1
        entry = [first[AT], first[ARM], first[RULE], first[TRIGGER], version,
                 sorted(goals.values())[:MAX_GOALS]]
        if mine is not None and entry[:VERSION] == mine[:VERSION] and entry[GOALS] == mine[GOALS]:
            continue  # the survivor's entry stands as it was
        kept[exp_id] = entry
        if experiment is not None:
            if mine is not None and mine[TRIGGER] != entry[TRIGGER]:  # its own row gives way
                rows.append(row(experiment, survivor, [*mine[:VERSION], mine[VERSION] + 1,
                                                       mine[GOALS]], deleted=True))
            rows.append(row(experiment, survivor, entry))
    return rows


def row(experiment: Experiment, profile_id: str, entry: list,
        deleted: bool = False) -> ExposureRow:
    arm = next((a for a in experiment.arms if a.id == entry[ARM]), None)
    goals = entry[GOALS]
    return {"experiment": experiment.id, "profile_id": profile_id, "arm": entry[ARM],
            "control": int(arm is not None and arm.control),
            "share": arm.share if arm is not None else 0.0, "rule": entry[RULE],
            "trigger_id": entry[TRIGGER], "entered_at": entry[AT], "converted": int(bool(goals)),
            "conversions": len(goals), "revenue": float(sum(g[1] for g in goals)),
            "version": entry[VERSION], "is_deleted": int(deleted)}


def _revenue(tp: dict) -> float:
    value = (tp.get("properties") or {}).get("revenue")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
