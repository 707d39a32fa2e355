"""An experiment in the preferences gate: who enters, when, in which arm, what the arm sends, what
counts as its conversion, and what a merge keeps."""
from __future__ import annotations

import hashlib
from collections import Counter

from streams.experiments import Arm, Experiment, arm_of
from streams.preferences.gate import GateConfig, PreferenceGate
from streams.state import BatchState
from tests.unit.preferences.cases import T0, H, cand, consent, ev, reason

DAY = 24 * H
EXP = Experiment("cart-copy", (
    Arm("control", 0.2, control=True),
    Arm("A", 0.4),
    Arm("B", 0.4, action={"payload": {"copy": "long {product_id}"}, "channels": ["email"]}),
), goal_types=("purchase",), within_ms=7 * DAY)


def gate(**kw) -> PreferenceGate:
    conf = {"quiet_hours": None, "default_opt_in": {"push": True, "email": True}, **kw}
    return PreferenceGate(BatchState({}), GateConfig(**conf), {EXP.id: EXP})


def pid_in(arm: str, start: int = 0) -> str:
    return next(f"p{i}" for i in range(start, 10_000) if arm_of(EXP, f"p{i}").id == arm)


def test_every_entry_carries_its_arm_and_the_control_is_withheld_and_recorded():
    g = gate()
    outcomes, exposures = Counter(), []
    for i in range(3000):
        d = g.decide(cand(T0, f"t{i}", pid=f"p{i}", experiment=EXP,
                          bindings={"product_id": "sku-1"}))
        exposures.append(d.exposure)
        arm = arm_of(EXP, f"p{i}").id
        if arm == "control":
            assert reason(d) == "holdout" and d.trigger is None
            assert (d.suppression["experiment"], d.suppression["arm"]) == ("cart-copy", "control")
        else:
            assert (d.trigger["experiment"], d.trigger["arm"]) == ("cart-copy", arm)
        if arm == "B":  # the arm's overrides: its channels, its payload (placeholders filled)
            assert d.trigger["channel"] == "email" and d.trigger["payload"]["copy"] == "long sku-1"
        elif arm == "A":
            assert d.trigger["channel"] == "push" and "copy" not in d.trigger["payload"]
        outcomes[arm] += 1
    assert all(e is not None and e["version"] == 1 and e["converted"] == 0 for e in exposures)
    assert {e["arm"] for e in exposures} == {"control", "A", "B"}
    assert [e["control"] for e in exposures] == [int(e["arm"] == "control") for e in exposures]
    assert 0.17 < outcomes["control"] / 3000 < 0.23 and 0.37 < outcomes["A"] / 3000 < 0.43


def test_a_profile_enters_once_and_keeps_its_arm():
    g, pid = gate(), pid_in("A")
    first = g.decide(cand(T0, "t1", pid=pid, experiment=EXP))
    again = g.decide(cand(T0 + DAY, "t2", pid=pid, experiment=EXP))
    assert first.exposure["entered_at"] == T0 and again.exposure is None
    assert again.trigger["arm"] == "A"


def test_it_enters_only_when_the_rule_would_send_after_consent_caps_and_quiet_hours():
    pid = pid_in("control")
    g = gate()
    consent(g, T0 - 1000, "push", False, pid=pid)
    d = g.decide(cand(T0, "t1", pid=pid, experiment=EXP))
    assert reason(d) == "opt_out" and d.exposure is None  # not an entry: nothing was withheld
    assert d.suppression["experiment"] == "" and d.suppression["arm"] == ""
    g = gate(max_per_day=1)
    g.decide(cand(T0, "t0", rule="other", pid=pid))  # the day's one message
    assert g.decide(cand(T0 + 1, "t1", pid=pid, experiment=EXP)).exposure is None
    g = gate(quiet_hours=("22:00", "08:00"))
    night = T0 + 11 * H  # 23:00 UTC
    d = g.decide(cand(night, "t1", pid=pid, experiment=EXP))
    assert reason(d) == "quiet_hours_deferred" and d.exposure is None
    d = g.decide(cand(d.defer_until, "t1", pid=pid, experiment=EXP), released=True)
    assert reason(d) == "holdout" and d.exposure["entered_at"] == T0 + 20 * H


def test_a_goal_in_the_window_after_the_entry_converts_it_once_per_event():
    g, pid = gate(), pid_in("B")
    assert g.converted(ev("purchase", T0 - 1, pid, revenue=50.0)) == []  # before: no entry yet
    g.decide(cand(T0, "t1", pid=pid, experiment=EXP))
    assert g.converted(ev("page_view", T0 + H, pid)) == []  # not a goal
    rows = g.converted(ev("purchase", T0 + H, pid, revenue=80.0))
    assert [(r["arm"], r["converted"], r["conversions"], r["revenue"], r["version"])
            for r in rows] == [("B", 1, 1, 80.0, 2)]
    assert g.converted(ev("purchase", T0 + H, pid, revenue=80.0)) == []  # the same event again
    rows = g.converted(ev("purchase", T0 + 7 * DAY, pid, revenue=20.0))  # the window's last ms
    assert (rows[0]["conversions"], rows[0]["revenue"]) == (2, 100.0)
    assert g.converted(ev("purchase", T0 + 7 * DAY + 1, pid, revenue=5.0)) == []  # after it


def test_a_merge_keeps_the_earliest_entry_and_deletes_the_absorbed_row():
    g = gate()
    early, late = pid_in("control"), pid_in("B")
    g.decide(cand(T0, "t1", pid=early, experiment=EXP))
    g.decide(cand(T0 + H, "t2", pid=late, experiment=EXP))
    g.converted(ev("purchase", T0 + 2 * H, late, revenue=30.0))  # in both entries' windows
    rows = g.on_merge(late, [early])  # the later profile survives, the earlier entry stands
    by_pid = {r["profile_id"]: r for r in rows if not r["is_deleted"]}
    deleted = {(r["profile_id"], r["trigger_id"]) for r in rows if r["is_deleted"]}
    # both old entries' rows go (the survivor's own gives way to the kept one): one live row
    assert deleted == {(early, "t1"), (late, "t2")} and set(by_pid) == {late}
    kept = by_pid[late]
    assert (kept["arm"], kept["entered_at"], kept["trigger_id"], kept["conversions"],
            kept["revenue"], kept["is_deleted"]) == ("control", T0, "t1", 1, 30.0, 0)
    assert kept["version"] > 2  # above every earlier row of the survivor
    d = g.decide(cand(T0 + 3 * H, "t3", pid=late, experiment=EXP))
    assert reason(d) == "holdout" and d.suppression["arm"] == "control" and d.exposure is None
    # a merge with nothing to change writes nothing
    assert g.on_merge(late, ["nobody"]) == []


def test_a_rule_holdout_is_a_control_arm_with_the_hash_it_always_had():
    g = gate()
    held = [f"p{i}" for i in range(2000)
            if reason(g.decide(cand(T0, f"t{i}", pid=f"p{i}", holdout_pct=0.1))) == "holdout"]
    assert held == [f"p{i}" for i in range(2000) if int.from_bytes(hashlib.sha256(
        f"holdout:r:p{i}".encode()).digest()[:8], "big") < 0.1 * 2 ** 64]
