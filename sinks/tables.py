"""What the writer needs to know about each ClickHouse table (the DDL is in sinks/migrations.py).

A `Table` turns the plain dicts the pipeline produces into insert rows, column by column, by kind:

| kind     | ClickHouse type                  | accepts                                            |
|----------|----------------------------------|----------------------------------------------------|
| `str`    | String / LowCardinality(String)  | str                                                |
| `str?`   | LowCardinality(Nullable(String)) | str or None                                        |
| `time`   | DateTime64(3, 'UTC')             | epoch ms (int) or datetime (naive = UTC) -> ms     |
| `time?`  | Nullable(DateTime64(3, 'UTC'))   | what `time` accepts, or None (NULL)                |
| `json`   | String holding JSON text         | dict / list (serialised, sorted keys), str, None   |
| `map`    | Map(String, String)              | mapping (keys, values -> str; None values dropped) |
| `intmap` | Map(String, UInt8 / Int*)        | mapping of int, not bool (keys -> str; None values |
|          |                                  | dropped), e.g. consent flags {channel: 0 / 1}      |
| `array`  | Array(String)                    | list / tuple of str                                |
| `float`  | Float64                          | int or float                                       |
| `int`    | UInt8 / Int32 / Int64            | int                                                |

A row may omit a column only when `defaults` has it (a callable default is called per row, e.g. the
ingestion time); None counts as omitted. `key` is the ReplacingMergeTree ORDER BY (the identity that
replays collapse on). `volatile` columns are stamped at write time (ingestion / computation clocks):
they are left out of the insert deduplication token, so a replayed batch with new stamps is still
recognised as the same batch.

Conversion (each kind's converter: `sinks.values`) happens when rows are added to a writer, so a
malformed row is refused at once with a `ValueError` naming the table and column, instead of
poisoning a batch that would fail at every retry.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any

from sinks.values import CONVERTERS, to_json_text, to_rows, utc_now_ms

_MISSING = object()


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column name, kind) in insert order
    key: tuple[str, ...]
    volatile: frozenset[str] = frozenset()
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = set(self.column_names)
        for name, kind in self.columns:
            if kind not in CONVERTERS:
                raise ValueError(f"table {self.name}: column {name} has unknown kind {kind!r}")
        for label, listed in (("key", self.key), ("volatile", self.volatile),
                              ("defaults", self.defaults)):
            stray = set(listed) - names
            if stray:
                raise ValueError(f"table {self.name}: {label} names unknown columns "
                                 f"{sorted(stray)}")
        if set(self.key) & self.volatile:
            raise ValueError(f"table {self.name}: a key column cannot be volatile")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def of_kind(self, kind: str) -> frozenset[str]:
        return frozenset(name for name, k in self.columns if k == kind)

    @property
    def token_positions(self) -> tuple[int, ...]:
        """Positions of the columns that identify a batch's content (all but the volatile ones)."""
        return tuple(i for i, name in enumerate(self.column_names) if name not in self.volatile)

    @cached_property
    def _plan(self) -> tuple[tuple[str, Callable[[Any], Any], Any], ...]:
        return tuple((name, CONVERTERS[kind], self.defaults.get(name, _MISSING))
                     for name, kind in self.columns)

    def to_row(self, record: Mapping[str, Any]) -> tuple:
        """One pipeline dict -> one insert row in column order; ValueError names the bad column."""
        try:
            row = self._fast(record)
        except Exception:  # noqa: BLE001 - the checked path below gives the readable error
            row = None
        return row if row is not None else self._checked_row(record)

    def _checked_row(self, record: Mapping[str, Any]) -> tuple:
        if not isinstance(record, Mapping):
            raise ValueError(f"{self.name}: a row must be a dict, got {type(record).__name__}")
        row = []
        get = record.get
        for name, convert, default in self._plan:
            value = get(name)
            if value is None:
                if default is _MISSING:
                    raise ValueError(f"{self.name}: column {name!r} is missing")
                value = default() if callable(default) else default
            try:
                row.append(convert(value))
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"{self.name}: column {name!r}: {exc} "
                                 f"(got {value!r:.80})") from None
        return tuple(row)

    def to_columns(self, records: Iterable[Mapping[str, Any]]) -> list[list]:
        """Many pipeline dicts -> their insert values column by column (a list per column, in
        column order): the same values as `to_row` gives row by row, checked with one C-level pass
        per column (`type` of every value) instead of Python per value. A column that is not
        plainly of its kind (a datetime, an int for a float, a value missing with a default, a dict
        for a JSON column...) is converted value by value; a batch holding a value the column
        cannot take (or a row that is not a dict) goes through `to_row`, row by row, which
        converts it or raises its ValueError naming the table and column.

        Nested values (maps, arrays, rows) already of the column's shape are kept by reference:
        rows handed to a writer must not be mutated afterwards."""
        records = records if isinstance(records, list) else list(records)
        if not records:
            return [[] for _ in self.columns]
        columns: list[list] = []
        try:
            for name, (kind, default, plain) in zip(self.column_names, self._column_plan):
                try:
                    column = list(map(itemgetter(name), records))
                except KeyError:  # omitted somewhere: None, like `to_row` reads it
                    column = list(map(methodcaller("get", name), records))
                kinds = set(map(type, column))
                if not (kinds <= plain and _plain_nested(kind, column)):
                    column = _fix_column(kind, default, column, kinds)
                    if column is None:
                        raise _Refused
                columns.append(column)
        except (_Refused, TypeError, AttributeError):  # to_row converts or names the problem
            return [list(column) for column in zip(*[self.to_row(r) for r in records])]
        return columns

    @cached_property
    def _column_plan(self) -> tuple[tuple[str, Any, frozenset[type]], ...]:
        """(kind, default, the value types taken as they are) per column; None is plain only for
        an optional column (`str?`, `time?`) whose default is None."""
        plan = []
        for name, kind in self.columns:
            default = self.defaults.get(name, _MISSING)
            plain = _PLAIN[kind] if default is None else _PLAIN[kind] - {_NONE}
            plan.append((kind, default, plain))
        return tuple(plan)

    @cached_property
    def _fast(self) -> Callable[[Mapping[str, Any]], tuple | None]:
        """`to_row` for the rows the pipeline writes, compiled for this table's columns: exact
        types only (`str`, `int`, `float`, `dict`, `list`), inline, no call per column. Returns None
        for anything else, which then takes the checked path (same result or its ValueError).
        A row per touchpoint and more per conversion: this is the sink's hottest Python."""
        return _compile_fast_row(self.name, tuple(
            (name, kind, self.defaults.get(name, _MISSING)) for name, kind in self.columns))


def _compile_fast_row(name: str, plan) -> Callable[[Mapping[str, Any]], tuple | None]:
    env: dict[str, Any] = {"_json": to_json_text, "_rows": to_rows}
    lines = ["def fast_row(record):", "    get = record.get"]
    for i, (column, kind, default) in enumerate(plan):
        lines.append(f"    v = get({column!r})")
        if default is _MISSING:
            lines.append("    if v is None: return None")
        else:
            env[f"_d{i}"] = default
            lines.append(f"    if v is None: v = _d{i}{'()' if callable(default) else ''}")
        lines.extend("    " + line for line in _FAST_KIND[kind])
        lines.append(f"    c{i} = v")
    lines.append(f"    return ({', '.join(f'c{i}' for i in range(len(plan)))},)")
    exec(compile("\n".join(lines), f"<fast_row {name}>", "exec"), env)  # noqa: S102 - our own text
    return env["fast_row"]


_FAST_KIND: dict[str, tuple[str, ...]] = {
    "str": ("if v.__class__ is not str: return None",),
    "str?": ("if v is not None and v.__class__ is not str: return None",),
    "time": ("if v.__class__ is not int: return None",),
    "time?": ("if v is not None and v.__class__ is not int: return None",),
    "json": ("if v.__class__ is not str: v = _json(v)",),
    "map": ("if v.__class__ is not dict: return None",
            "v = {(k if k.__class__ is str else str(k)): (x if x.__class__ is str else str(x)) "
            "for k, x in v.items() if x is not None}"),
    "intmap": ("if v.__class__ is not dict: return None",
               "for k, x in v.items():",
               "    if k.__class__ is not str or (x is not None and x.__class__ is not int): "
               "return None",
               "v = {k: x for k, x in v.items() if x is not None}"),
    "array": ("if v.__class__ is not list: return None",
              "for x in v:",
              "    if x.__class__ is not str: return None",
              "v = v[:]"),
    "float": ("if v.__class__ is not float:",
              "    if v.__class__ is not int: return None",
              "    v = float(v)"),
    "int": ("if v.__class__ is not int: return None",),
    "rows": ("v = _rows(v)",),
}


class _Refused(Exception):
    """A value the column checks cannot take: the batch takes the row-by-row path."""


_NONE = type(None)
# The value types a column of each kind takes as they are (bool is not int: type() is exact).
_PLAIN: dict[str, frozenset[type]] = {
    "str": frozenset({str}), "str?": frozenset({str, _NONE}), "time": frozenset({int}),
    "time?": frozenset({int, _NONE}), "json": frozenset({str}), "map": frozenset({dict}),
    "intmap": frozenset({dict}), "array": frozenset({list}),
    "float": frozenset({float}), "int": frozenset({int}), "rows": frozenset({list}),
}
_STR = frozenset({str})
_INT = frozenset({int})
_ROW = frozenset({list, tuple})


def _plain_nested(kind: str, column) -> bool:
    """The nested values of a plain column have the column's shape too (C-level passes)."""
    if kind == "map":
        return (set(map(type, chain.from_iterable(map(dict.keys, column)))) <= _STR
                and set(map(type, chain.from_iterable(map(dict.values, column)))) <= _STR)
    if kind == "intmap":
        return (set(map(type, chain.from_iterable(map(dict.keys, column)))) <= _STR
                and set(map(type, chain.from_iterable(map(dict.values, column)))) <= _INT)
    if kind == "array":
        return set(map(type, chain.from_iterable(column))) <= _STR
    if kind == "rows":
        return set(map(type, chain.from_iterable(column))) <= _ROW
    return True


def _fix_column(kind: str, default: Any, column, kinds: set[type]) -> list | None:
    """A column converted value by value (defaults for None), or None when a value is refused
    (the caller then takes the row-by-row path, which names the table and column)."""
    if _NONE in kinds:
        if default is _MISSING:
            return None
        call = callable(default)
        column = [(default() if call else default) if v is None else v for v in column]
    convert = CONVERTERS[kind]
    try:
        return [convert(v) for v in column]
    except (TypeError, ValueError, OverflowError):
        return None


def _table(name: str, columns: str, key: str, volatile: str = "",
           defaults: Mapping[str, Any] | None = None) -> Table:
    pairs = tuple(tuple(spec.split(":")) for spec in columns.split())
    return Table(name=name, columns=pairs, key=tuple(key.split()),
                 volatile=frozenset(volatile.split()), defaults=dict(defaults or {}))


TOUCHPOINTS = _table(
    "touchpoints",
    "event_id:str event_time:time profile_id:str type:str channel:str campaign:str? publisher:str? "
    "ids:map context:json properties:json revenue:float currency:str ingested_at:time",
    key="event_time event_id", volatile="ingested_at",
    defaults={"campaign": None, "publisher": None, "ids": {}, "context": {}, "properties": {},
              "revenue": 0.0, "currency": "", "ingested_at": utc_now_ms},
)
IDENTITY_MAP = _table(
    "identity_map",
    "identifier_type:str identifier:str profile_id:str updated_at:time is_deleted:int",
    key="identifier_type identifier", defaults={"is_deleted": 0},
)
IDENTITY_EVENTS = _table(
    "identity_events",
    "at:time kind:str survivor:str absorbed:array identifiers:array event_id:str reason:str",
    key="survivor kind event_id absorbed identifiers",
    defaults={"absorbed": [], "identifiers": [], "event_id": "", "reason": ""},
)
TRIGGERS = _table(
    "triggers",
    "trigger_id:str fired_at:time profile_id:str moment:str channel:str event_id:str code:str "
    "payload:map rule:str story:str message:str matched:array reason:str experiment:str arm:str",
    key="trigger_id",
    defaults={"event_id": "", "code": "", "payload": {}, "rule": "", "story": "", "message": "",
              "matched": [], "reason": "", "experiment": "", "arm": ""},
)
SUPPRESSIONS = _table(
    "suppressions",
    "suppression_id:str at:time profile_id:str moment:str channel:str event_id:str reason:str "
    "trigger_id:str rule:str detail:str experiment:str arm:str",
    key="suppression_id", defaults={"event_id": "", "trigger_id": "", "rule": "", "detail": "",
                                    "experiment": "", "arm": ""},
)
ATTRIBUTION_PATHS = _table(
    "attribution_paths",
    "path_id:str closed_at:time profile_id:str converted:int conversion_type:str revenue:float "
    "touches:int channels:array channel_set:array transitions:rows computed_at:time",
    key="path_id", volatile="computed_at",
    defaults={"conversion_type": "", "revenue": 0.0, "computed_at": utc_now_ms},
)
LATE_EVENTS = _table(
    "late_events", "event_id:str event_time:time type:str source:str watermark:time reason:str",
    key="event_id", defaults={"source": ""},
)
ATTRIBUTION_CREDIT = _table(
    "attribution_credit",
    "conversion_id:str conversion_time:time profile_id:str model:str touchpoint_id:str "
    "touchpoint_time:time channel:str campaign:str? publisher:str? credit:float "
    "revenue_credit:float computed_at:time",
    key="model conversion_id touchpoint_id", volatile="computed_at",
    defaults={"campaign": None, "publisher": None, "revenue_credit": 0.0,
              "computed_at": utc_now_ms},
)
EXPERIMENT_EXPOSURES = _table(
    "experiment_exposures",
    "experiment:str profile_id:str arm:str control:int share:float rule:str trigger_id:str "
    "entered_at:time converted:int conversions:int revenue:float version:int is_deleted:int",
    key="experiment profile_id trigger_id", defaults={"is_deleted": 0},
)
PROFILE_TRAITS = _table(
    "profile_traits",
    "profile_id:str created_by:str first_seen:time last_seen:time purchases:int revenue:float "
    "last_purchase_at:time? lifecycle:str lifecycle_history:json top_channel:str rfm:str "
    "rfm_r:int rfm_f:int rfm_m:int declared:map audiences:array consent:intmap as_of:time "
    "version:int is_deleted:int updated_at:time",
    key="profile_id created_by", volatile="updated_at",
    defaults={"last_purchase_at": None, "lifecycle_history": [], "top_channel": "", "rfm": "",
              "rfm_r": 0, "rfm_f": 0, "rfm_m": 0, "declared": {}, "audiences": [],
              "consent": {}, "is_deleted": 0, "updated_at": utc_now_ms},
)
AUDIENCE_MEMBERSHIP = _table(
    "audience_membership",
    "record_id:str kind:str audience:str profile_id:str at:time event_id:str cause:str seq:int "
    "ingested_at:time",
    key="audience profile_id record_id", volatile="ingested_at",
    defaults={"event_id": "", "ingested_at": utc_now_ms},
)
DEAD_LETTERS = _table(
    "dead_letters",
    "received_at:time error:str reason:str topic:str partition:int offset:int original:str",
    key="topic partition offset original", volatile="received_at",
    defaults={"received_at": utc_now_ms, "topic": "", "partition": -1, "offset": -1,
              "original": ""},
)

TABLES: dict[str, Table] = {t.name: t for t in (
    TOUCHPOINTS, IDENTITY_MAP, IDENTITY_EVENTS, TRIGGERS, SUPPRESSIONS, ATTRIBUTION_CREDIT,
    DEAD_LETTERS, LATE_EVENTS, ATTRIBUTION_PATHS, EXPERIMENT_EXPOSURES, PROFILE_TRAITS,
    AUDIENCE_MEMBERSHIP,
)}
