"""BatchState: read-through, write-back, one write per key per flush, atomic until flush."""
from __future__ import annotations

import copy
from collections.abc import MutableMapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state import TOMBSTONE, BatchState


class CountingStore(MutableMapping):
    """A dict that records every write and delete it receives (stands in for a Faust table)."""

    def __init__(self, data=None, fail_on=None):
        self.data = dict(data or {})
        self.ops: list[tuple[str, str]] = []
        self.fail_on = fail_on

    def __getitem__(self, key):
        return self.data[key]

    def __setitem__(self, key, value):
        if key == self.fail_on:
            raise OSError(f"store refused {key}")
        self.ops.append(("set", key))
        self.data[key] = value

    def __delitem__(self, key):
        self.ops.append(("del", key))
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_reads_go_through_to_the_backing_store():
    state = BatchState({"a": 1, "b": {"x": [1, 2]}})
    assert state.get("a") == 1
    assert state["b"] == {"x": [1, 2]}
    assert "a" in state and "zz" not in state
    assert state.get("zz") is None and state.get("zz", 7) == 7
    with pytest.raises(KeyError):
        state["zz"]
    assert state.pending == 0


def test_get_returns_the_stored_object_not_a_copy():
    value = {"x": [1, 2]}
    state = BatchState({"b": value})
    assert state.get("b") is value
    mine = {"y": 1}
    state.set("c", mine)
    assert state.get("c") is mine and state["c"] is mine


def test_writes_are_visible_at_once_and_reach_the_store_only_at_flush():
    backing = {"a": 1}
    state = BatchState(backing)
    state.set("a", 2)
    state.set("n", "new")
    assert state.get("a") == 2 and state["n"] == "new" and "n" in state
    assert backing == {"a": 1}
    assert state.pending == 2 and state.is_pending("a") and not state.is_pending("zz")
    assert state.flush() == 2
    assert backing == {"a": 2, "n": "new"}
    assert state.pending == 0 and not state.is_pending("a")
    assert state.flush() == 0


def test_delete_is_a_pending_tombstone():
    backing = {"a": 1, "b": 2}
    state = BatchState(backing)
    state.delete("a")
    assert "a" not in state
    assert state.get("a") is None and state.get("a", "d") == "d"
    with pytest.raises(KeyError):
        state["a"]
    assert backing == {"a": 1, "b": 2}
    state.set("a", 5)  # a write after the tombstone wins
    assert state["a"] == 5
    state.delete("a")
    state.delete("never-there")
    assert state.flush() == 1  # one real delete; the absent key costs no operation
    assert backing == {"b": 2}


def test_flush_writes_each_key_once_whatever_the_number_of_writes():
    store = CountingStore({"gone": 0})
    state = BatchState(store)
    for i in range(1000):
        state.set("hot", i)
        state.set(f"k{i % 3}", i)
    state.set("gone", 1)
    state.delete("gone")
    state.set("born-and-died", 1)
    state.delete("born-and-died")
    assert state.pending == 6
    assert state.flush() == 5
    assert sorted(store.ops) == [("del", "gone"), ("set", "hot"), ("set", "k0"), ("set", "k1"),
                                 ("set", "k2")]
    assert store.data == {"hot": 999, "k0": 999, "k1": 997, "k2": 998}


def test_a_failed_flush_keeps_the_batch_and_can_be_retried():
    store = CountingStore(fail_on="b")
    state = BatchState(store)
    state.set("a", 1)
    state.set("b", 2)
    with pytest.raises(OSError):
        state.flush()
    assert state.pending == 2  # nothing lost
    store.fail_on = None
    assert state.flush() == 2
    assert store.data == {"a": 1, "b": 2} and state.pending == 0


def test_discard_leaves_the_store_as_before_the_batch():
    backing = {"a": 1}
    state = BatchState(backing)
    state.set("a", 2)
    state.delete("a")
    state.set("b", 3)
    assert state.discard() == 2
    assert state.pending == 0 and state.get("a") == 1 and "b" not in state
    assert state.flush() == 0 and backing == {"a": 1}


def test_items_is_the_merged_view():
    state = BatchState({"a": 1, "b": 2, "c": 3})
    state.set("b", 20)
    state.delete("c")
    state.set("d", 4)
    assert dict(state.items()) == {"a": 1, "b": 20, "d": 4}
    assert [k for k, _ in state.items()] == ["a", "b", "d"]


def test_lookups_expose_pending_then_backing_with_tombstones():
    state = BatchState({"a": 1, "b": 2})
    pending_get, backing_get = state.lookups()
    state.set("a", 10)
    state.delete("b")
    assert pending_get("a") == 10
    assert pending_get("b") is TOMBSTONE
    assert pending_get("c") is None and backing_get("b") == 2
    state.flush()
    # still valid after flush (same objects)
    assert pending_get("a") is None and backing_get("a") == 10
    assert backing_get("b") is None


class MinimalStore:
    """Only what an adapter over a Faust table's local store offers (no items(), not a
    MutableMapping)."""

    def __init__(self, data):
        self.data = dict(data)

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __getitem__(self, key):
        return self.data[key]

    def __contains__(self, key):
        return key in self.data

    def __setitem__(self, key, value):
        self.data[key] = value

    def __delitem__(self, key):
        del self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_works_over_a_minimal_store_adapter():
    store = MinimalStore({"a": 1, "b": 2})
    state = BatchState(store)
    state.set("b", 20)
    state.delete("a")
    state.set("c", 3)
    assert dict(state.items()) == {"b": 20, "c": 3}
    assert state.flush() == 3
    assert store.data == {"b": 20, "c": 3}


def test_works_over_any_mutable_mapping():
    store = CountingStore({"x": 1})
    state = BatchState(store)
    assert state.get("x") == 1 and state.backing is store
    state.set("y", 2)
    state.flush()
    assert store.data == {"x": 1, "y": 2}
    assert "BatchState(pending=0" in repr(state)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.sampled_from("abcde"), st.integers(0, 9)),
        st.tuples(st.just("delete"), st.sampled_from("abcde"), st.none()),
        st.tuples(st.just("flush"), st.none(), st.none()),
        st.tuples(st.just("discard"), st.none(), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(initial=st.dictionaries(st.sampled_from("abcde"), st.integers(0, 9)), ops=ops)
def test_behaves_like_a_dict_that_is_committed_at_flush(initial, ops):
    store = CountingStore(initial)
    state = BatchState(store)
    committed = dict(initial)  # what the store must hold
    view = dict(initial)       # what the state must show
    for op, key, value in ops:
        if op == "set":
            state.set(key, value)
            view[key] = value
        elif op == "delete":
            state.delete(key)
            view.pop(key, None)
        elif op == "flush":
            dirty = state.pending
            store.ops.clear()
            state.flush()
            assert len(store.ops) <= dirty
            assert len({k for _, k in store.ops}) == len(store.ops)  # each key written once
            committed = dict(view)
        else:
            state.discard()
            view = dict(committed)
        assert store.data == committed
        for k in "abcde":
            assert state.get(k) == view.get(k)
            assert (k in state) == (k in view)
        assert dict(state.items()) == view
        assert copy.deepcopy(store.data) == committed
