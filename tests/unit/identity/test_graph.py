"""Identity graph: the Martin journey and worked examples, repairs, configuration."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import ConfigError
from streams.identity.graph import (
    Forgotten,
    IdentityConfig,
    IdentityGraph,
    Merge,
    Refusal,
    Resolution,
)
from streams.identity.graph import profile_id_for as pid
from streams.ingest.pii import sha256_hex as sha
from tests.unit.identity.model import T0, H, check_invariants, run

# ------------------------------------------------------------------------------------------------
# The Martin journey and worked examples
# ------------------------------------------------------------------------------------------------
EMAIL = sha("martin@example.com")
PHONE = sha("+33600000000")
MARTIN = [
    ({"email": EMAIL}, "m1-email-open", T0),                              # on the metro
    ({"cookie": "c-9"}, "m2-display-impression", T0 + 2 * H),
    ({"cookie": "c-9"}, "m3-display-click", T0 + 2 * H + 5_000),
    ({"cookie": "c-9"}, "m4-page-view", T0 + 2 * H + 6_000),
    ({"cookie": "c-9"}, "m5-price-view", T0 + 2 * H + 90_000),            # sees the price, leaves
    ({"email": EMAIL, "cookie": "c-9"}, "m6-email-click", T0 + 5 * H),    # email link, same browser
    ({"device": "d-1", "user": "u-42"}, "m7-app-login", T0 + 8 * H),
    ({"user": "u-42", "email": EMAIL}, "m8-identify", T0 + 8 * H + 1_000),
    ({"device": "d-1"}, "m9-geofence-enter", T0 + 10 * H),
    ({"device": "d-1"}, "m10-push-open", T0 + 10 * H + 60_000),           # "today only, XPGJRL"
    ({"device": "d-1", "loyalty": "L-77"}, "m11-store-visit", T0 + 11 * H),  # beacon + loyalty card
    ({"loyalty": "L-77", "email": EMAIL, "phone": PHONE}, "m12-purchase", T0 + 72 * H),
]
MARTIN_IDS = sorted(f"{t}:{v}" for ids, _, _ in MARTIN for t, v in ids.items())


@pytest.mark.parametrize("config", [IdentityConfig(), IdentityConfig.unlimited()],
                         ids=["default", "unlimited"])
def test_martin_ends_in_one_profile(config):
    graph, ids, profiles, results = run(MARTIN, config)
    martin = pid(f"email:{EMAIL}")  # first seen: the email open on the metro
    assert list(profiles) == [martin]
    assert graph.identifiers_of(martin) == sorted(set(MARTIN_IDS))
    assert graph.first_seen(martin) == T0
    assert [r.refused for r in results] == [()] * len(MARTIN)
    # the cookie's web visits were stitched into Martin's profile by the email click
    assert results[1].profile_id == pid("cookie:c-9")
    assert results[5].merges == (Merge(martin, (pid("cookie:c-9"),),
                                       ("cookie:c-9", f"email:{EMAIL}"), "m6-email-click"),)
    # the app user was its own profile for one event, then merged into Martin at identify
    assert results[6].profile_id == pid("user:u-42")
    assert results[7].merges[0].survivor == martin and results[7].merges[0].absorbed == (
        pid("user:u-42"),)
    assert {r.profile_id for r in results[7:]} == {martin}
    check_invariants(ids, profiles, config)


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(MARTIN))
def test_martin_in_any_order_is_the_same_profile(order):
    _, ids, profiles, _ = run(order, IdentityConfig())
    assert list(profiles) == [pid(f"email:{EMAIL}")]
    assert sorted(ids) == sorted(set(MARTIN_IDS))


def test_family_tablet_keeps_the_cookie_with_the_first_user():
    graph = IdentityGraph({}, {})
    first = graph.resolve({"user": "u-41", "cookie": "c-9"}, "e1", T0)
    assert first == Resolution(pid("user:u-41"), (), (), ("cookie:c-9", "user:u-41"))
    second = graph.resolve({"user": "u-42", "cookie": "c-9"}, "e2", T0 + H)
    assert second.profile_id == pid("user:u-42")
    assert second.refused == (Refusal(pid("user:u-42"), "cookie:c-9",
                                      "unique type 'user' already holds u-42, not u-41", "e2"),)
    assert second.merges == () and second.changed_ids == ("user:u-42",)
    assert graph.resolve({"cookie": "c-9"}, "e3", T0 + 2 * H).profile_id == pid("user:u-41")
    assert graph.identifiers_of(pid("user:u-42")) == ["user:u-42"]


def test_a_new_identifier_over_the_maximum_is_not_linked():
    graph = IdentityGraph({}, {})
    for i in range(5):
        res = graph.resolve({"email": "e", "cookie": f"c{i}"}, f"e{i}", T0 + i)
        assert res.profile_id == pid("email:e") and res.refused == ()
    res = graph.resolve({"email": "e", "cookie": "c5"}, "e5", T0 + 10)
    assert res.profile_id == pid("email:e")
    assert res.refused == (Refusal(pid("email:e"), "cookie:c5", "max 5 cookie per profile", "e5"),)
    assert res.changed_ids == () and graph.profile_of("cookie:c5") is None
    alone = graph.resolve({"cookie": "c5"}, "e6", T0 + 11)
    assert alone.profile_id == pid("cookie:c5")


def test_a_merge_over_the_maximum_is_refused_and_both_profiles_stay_whole():
    graph = IdentityGraph({}, {})
    for i in range(3):
        graph.resolve({"email": "a", "cookie": f"a{i}"}, f"a{i}", T0 + i)
        graph.resolve({"device": "b", "cookie": f"b{i}"}, f"b{i}", T0 + 10 + i)
    res = graph.resolve({"email": "a", "cookie": "b0"}, "x", T0 + 100)
    assert res.profile_id == pid("email:a")
    assert res.refused == (Refusal(pid("email:a"), "cookie:b0", "max 5 cookie per profile", "x"),)
    assert res.merges == ()
    assert len(graph.identifiers_of(pid("email:a"))) == 4
    assert graph.profile_of("cookie:b0") == pid("device:b")


def test_the_profile_first_seen_survives_and_ties_go_to_the_higher_priority_type():
    graph = IdentityGraph({}, {}, IdentityConfig.unlimited())
    graph.resolve({"device": "d"}, "1", T0 + 5)
    graph.resolve({"email": "e"}, "2", T0 + 9)
    res = graph.resolve({"email": "e", "device": "d"}, "3", T0 + 20)
    assert res.profile_id == pid("device:d")
    assert res.merges == (Merge(pid("device:d"), (pid("email:e"),), ("device:d", "email:e"), "3"),)
    assert res.changed_ids == ("email:e",)

    tie = IdentityGraph({}, {}, IdentityConfig.unlimited())
    tie.resolve({"cookie": "c"}, "1", T0)
    tie.resolve({"device": "d"}, "2", T0)
    tie.resolve({"idfa": "z"}, "3", T0)
    assert tie.resolve({"cookie": "c", "device": "d", "idfa": "z"}, "4",
                       T0 + 1).profile_id == pid("device:d")


def test_a_late_event_renames_the_profile_and_reports_it_as_a_merge():
    graph = IdentityGraph({}, {})
    graph.resolve({"cookie": "c1"}, "1", T0 + 100)
    graph.resolve({"cookie": "c1", "device": "d1"}, "2", T0 + 200)
    assert graph.profile_of("device:d1") == pid("cookie:c1")
    late = graph.resolve({"device": "d1"}, "0", T0 + 50)  # arrives late, was earlier
    assert late.profile_id == pid("device:d1")
    assert late.merges == (Merge(pid("device:d1"), (pid("cookie:c1"),), ("cookie:c1", "device:d1"),
                                 "0", renamed=True),)
    assert late.changed_ids == ("cookie:c1", "device:d1")
    assert graph.first_seen(pid("device:d1")) == T0 + 50
    assert graph.identifiers_of(pid("cookie:c1")) == []
    # a late event that does not change the anchor only lowers a first-seen time
    again = graph.resolve({"cookie": "c1"}, "00", T0 + 60)
    assert again == Resolution(pid("device:d1"))


def test_a_refused_profile_is_renamed_when_the_event_is_its_earliest():
    graph = IdentityGraph({}, {})
    graph.resolve({"device": "d"}, "b1", T0 + 10)
    graph.resolve({"device": "d", "cookie": "c", "user": "u2"}, "b2", T0 + 20)
    graph.resolve({"user": "u1"}, "a1", T0 + 30)
    res = graph.resolve({"user": "u1", "cookie": "c"}, "x", T0 + 5)  # late: c was seen at +5
    assert res.profile_id == pid("user:u1")
    assert res.refused == (Refusal(pid("user:u1"), "cookie:c",
                                   "unique type 'user' already holds u1, not u2", "x"),)
    assert res.merges == (Merge(pid("cookie:c"), (pid("device:d"),),
                                ("cookie:c", "device:d", "user:u2"), "x", renamed=True),)
    assert graph.profile_of("user:u2") == pid("cookie:c")


def test_new_identifiers_of_a_unique_type_start_their_own_profile_when_they_lead():
    graph = IdentityGraph({}, {})
    graph.resolve({"loyalty": "L1", "email": "e"}, "1", T0)
    res = graph.resolve({"loyalty": "L2", "email": "e", "phone": "p"}, "2", T0 + 1)
    assert res.profile_id == pid("loyalty:L2")
    assert graph.identifiers_of(res.profile_id) == ["loyalty:L2", "phone:p"]
    assert [r.identifier for r in res.refused] == ["email:e"]


def test_anonymous_events_are_unstitched():
    graph = IdentityGraph({}, {})
    assert graph.resolve({}, "e", T0) == Resolution(None)
    assert graph.pending == 0


@pytest.mark.parametrize("event_ids,event_id,event_time,message", [
    ({"cookie": ""}, "e", T0, "must be a non-empty string"),
    ({"cookie": 9}, "e", T0, "must be a non-empty string"),
    ({"a:b": "c"}, "e", T0, "without ':'"),
    ({"": "c"}, "e", T0, "without ':'"),
    ({"cookie": "c"}, "e", 1.5, "epoch milliseconds"),
    ({"cookie": "c"}, "e", True, "epoch milliseconds"),
    ({"cookie": "c"}, 7, T0, "event_id must be a string"),
    (["cookie", "c"], "e", T0, "must be a mapping"),
])
def test_malformed_events_are_refused_with_a_readable_error(event_ids, event_id, event_time,
                                                            message):
    graph = IdentityGraph({"cookie:c": pid("cookie:c"), "a:b:c": "p-x"},
                          {pid("cookie:c"): {"cookie:c": T0}})
    with pytest.raises(ValueError, match=message):
        graph.resolve(event_ids, event_id, event_time)
    assert graph.pending == 0


def test_export_lists_every_identifier_sorted():
    graph, *_ = run(MARTIN[:6], IdentityConfig())
    rows = list(graph.export())
    martin = pid(f"email:{EMAIL}")
    assert rows == [{"type": "cookie", "value": "c-9", "profile_id": martin},
                    {"type": "email", "value": EMAIL, "profile_id": martin}]
    assert graph.profile_of("cookie:c-9") == martin and graph.profile_of("cookie:nope") is None


def test_records_stay_small_and_json_plain():
    _, ids, profiles, _ = run(MARTIN, IdentityConfig())
    rec = profiles[pid(f"email:{EMAIL}")]
    assert list(rec)[0] == f"email:{EMAIL}"
    assert rec == {f"email:{EMAIL}": T0, "cookie:c-9": T0 + 2 * H, "user:u-42": T0 + 8 * H,
                   "device:d-1": T0 + 8 * H, "loyalty:L-77": T0 + 11 * H,
                   f"phone:{PHONE}": T0 + 72 * H}
    assert json.loads(json.dumps(profiles)) == profiles and json.loads(json.dumps(ids)) == ids


def test_results_serialise_as_plain_records():
    graph = IdentityGraph({}, {})
    graph.resolve({"user": "u-41", "cookie": "c-9"}, "e1", T0)
    refusal = graph.resolve({"user": "u-42", "cookie": "c-9"}, "e2", T0).refused[0]
    assert refusal.to_record() == {"kind": "refusal", "profile_id": pid("user:u-42"),
                                   "identifier": "cookie:c-9",
                                   "reason": "unique type 'user' already holds u-42, not u-41",
                                   "event_id": "e2"}
    merge = graph.resolve({"email": "m", "cookie": "c-9"}, "e3", T0 - 1).merges[0]
    assert merge.to_record() == {"kind": "merge", "survivor": pid("email:m"),
                                 "absorbed": [pid("user:u-41")],
                                 "identifiers": ["cookie:c-9", "email:m", "user:u-41"],
                                 "event_id": "e3"}
    assert graph.forget("email:m").to_record() == {
        "kind": "forget", "profile_id": pid("email:m"),
        "identifiers": ["cookie:c-9", "email:m", "user:u-41"]}


def test_the_graph_runs_over_minimal_store_adapters():
    from tests.unit.pipeline.test_state import MinimalStore

    ids, profiles = MinimalStore({}), MinimalStore({})
    graph = IdentityGraph(ids, profiles)
    for event_ids, event_id, t in MARTIN:
        graph.resolve(event_ids, event_id, t)
    graph.flush()
    martin = pid(f"email:{EMAIL}")
    assert {row["profile_id"] for row in graph.export()} == {martin}
    check_invariants(ids.data, profiles.data, IdentityConfig())
    # out of step (record lost): forget must still find every identifier (a scan)
    profiles.data.clear()
    assert graph.forget("cookie:c-9") == Forgotten(martin, tuple(sorted(set(MARTIN_IDS))))
    graph.flush()
    assert ids.data == {} and profiles.data == {}


# ------------------------------------------------------------------------------------------------
# Tolerance of out-of-step states
# ------------------------------------------------------------------------------------------------
def test_a_dangling_identifier_is_relinked_as_new():
    ids = {"cookie:c": "p-gone"}
    graph = IdentityGraph(ids, {})
    res = graph.resolve({"cookie": "c", "device": "d"}, "e", T0)
    assert res.profile_id == pid("device:d") and graph.repairs == 1
    graph.flush()
    assert ids == {"cookie:c": pid("device:d"), "device:d": pid("device:d")}


def test_a_record_missing_an_identifier_is_repaired_on_sight():
    ids = {"cookie:c": pid("device:d"), "device:d": pid("device:d")}
    profiles = {pid("device:d"): {"device:d": T0}}
    graph = IdentityGraph(ids, profiles)
    assert graph.resolve({"cookie": "c"}, "e", T0 + 5).profile_id == pid("device:d")
    graph.flush()
    assert profiles[pid("device:d")] == {"device:d": T0, "cookie:c": T0 + 5}
    check_invariants(ids, profiles, IdentityConfig())


def test_a_merge_does_not_steal_an_identifier_another_profile_owns():
    # out of step: A's record still lists cookie:c, which belongs to B (both in `ids` and
    # B's record)
    a, b, e = pid("device:d"), pid("cookie:c"), pid("email:e")
    ids = {"device:d": a, "cookie:c": b, "email:e": e}
    profiles = {a: {"device:d": T0, "cookie:c": T0},
                b: {"cookie:c": T0 + 1},
                e: {"email:e": T0 - 5}}
    graph = IdentityGraph(ids, profiles, IdentityConfig.unlimited())
    res = graph.resolve({"email": "e", "device": "d"}, "x", T0 + 10)
    assert res.merges == (Merge(e, (a,), ("device:d", "email:e"), "x"),)
    assert res.changed_ids == ("device:d",) and graph.repairs == 1
    graph.flush()
    assert ids == {"device:d": e, "cookie:c": b, "email:e": e}
    check_invariants(ids, profiles, IdentityConfig.unlimited())


def test_forget_erases_every_pointer_even_without_a_record():
    ids = {"cookie:c": "p-x", "device:d": "p-x", "email:e": "p-y"}
    graph = IdentityGraph(ids, {"p-y": {"email:e": T0}})
    assert graph.forget("cookie:c") == Forgotten("p-x", ("cookie:c", "device:d"))
    graph.flush()
    assert ids == {"email:e": "p-y"}


# ------------------------------------------------------------------------------------------------
# Configuration
# ------------------------------------------------------------------------------------------------
def test_default_and_unlimited_configs():
    config = IdentityConfig()
    assert config.unique_types == {"user", "loyalty"}
    assert config.max_per_type == {"cookie": 5, "device": 5, "email": 3, "phone": 3}
    assert config.priority == ("user", "loyalty", "email", "phone", "device", "cookie")
    assert (config.limit("user") == 1 and config.limit("cookie") == 5
            and config.limit("idfa") is None)
    unlimited = IdentityConfig.unlimited()
    assert unlimited.unique_types == frozenset() and unlimited.max_per_type == {}
    assert unlimited.limit("user") is None


def test_priority_ranks_unlisted_types_after_alphabetically():
    config = IdentityConfig()
    ranked = sorted(["cookie", "zeta", "user", "idfa", "email", "alpha"], key=config.rank)
    assert ranked == ["user", "email", "cookie", "alpha", "idfa", "zeta"]


def test_config_from_dict_and_back():
    config = IdentityConfig.from_dict({"unique_types": ["user"], "max_per_type": {"cookie": 10},
                                       "priority": ["user", "email"]})
    assert config.unique_types == {"user"} and config.max_per_type == {"cookie": 10}
    assert config.priority == ("user", "email")
    assert IdentityConfig.from_dict(config.to_dict()) == config
    assert IdentityConfig.from_dict({}) == IdentityConfig() == IdentityConfig.from_dict(None)
    assert json.loads(json.dumps(IdentityConfig().to_dict())) == IdentityConfig().to_dict()


@pytest.mark.parametrize("data,message", [
    ({"max_per_tpye": {}}, "unknown key 'max_per_tpye'"),
    ({"max_per_type": {"cookie": 0}}, r"max_per_type\['cookie'\] must be an integer >= 1, got 0"),
    ({"max_per_type": {"cookie": "5"}}, "must be an integer >= 1"),
    ({"max_per_type": {"cookie": True}}, "must be an integer >= 1"),
    ({"max_per_type": [5]}, "max_per_type must be a mapping"),
    ({"unique_types": "user"}, "unique_types must be a list"),
    ({"unique_types": ["user:id"]}, "must not contain ':'"),
    ({"priority": ["user", "email", "user"]}, "priority lists 'user' twice"),
    ({"priority": ["user", ""]}, "non-empty string"),
    ([1, 2], "must be a mapping"),
])
def test_config_errors_are_one_readable_line(data, message):
    with pytest.raises(ConfigError, match=message) as err:
        IdentityConfig.from_dict(data)
    assert "\n" not in str(err.value) and str(err.value).startswith("identity config")


def test_share_strings_restores_sharing_after_a_json_round_trip():
    from streams.identity.graph import share_strings

    _, ids, profiles, _ = run(MARTIN, IdentityConfig())
    ids2, profiles2 = json.loads(json.dumps(ids)), json.loads(json.dumps(profiles))
    assert share_strings(ids2, profiles2) == len(profiles2)
    assert ids2 == ids and profiles2 == profiles
    for profile, rec in profiles2.items():
        assert list(rec) == list(profiles[profile])  # order kept: the anchor stays first
        for key in rec:
            assert next(k for k in ids2 if k == key) is key
            assert ids2[key] is next(p for p in profiles2 if p == profile)
