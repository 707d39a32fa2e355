"""Column values for the ClickHouse sink: each `sinks.tables` column kind's converter
(`CONVERTERS`), from the plain values the pipeline produces to what the writer inserts. Each
raises TypeError naming what it expected; `sinks.tables.Table` turns that into a ValueError naming
the table and column.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

__all__ = ["CONVERTERS", "to_epoch_ms", "to_int_map", "to_json_text", "to_optional_epoch_ms",
           "to_rows", "to_str_list", "to_str_map", "utc_now_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def utc_now_ms() -> int:
    """Now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def to_epoch_ms(value: Any) -> int:
    """Epoch milliseconds (int, kept) or datetime (naive = UTC) -> epoch milliseconds.

    Time columns are buffered and inserted as DateTime64(3) ticks (= epoch ms): exact, no time zone
    handling in the driver, and the cheapest form for clickhouse-connect to serialise.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // _MS
    raise TypeError(f"expected epoch milliseconds (int) or datetime, got {type(value).__name__}")


def to_json_text(value: Any) -> str:
    if value is None:
        return "{}"
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def to_str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    return {str(k): v if isinstance(v, str) else str(v) for k, v in value.items() if v is not None}


def to_optional_epoch_ms(value: Any) -> int | None:
    return None if value is None else to_epoch_ms(value)


def to_int_map(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a mapping, got {type(value).__name__}")
    out = {}
    for k, v in value.items():
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected a mapping of int, got a {type(v).__name__} value")
        out[str(k)] = v
    return out


def to_str_list(value: Any) -> list[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of str, got {type(value).__name__}")
    if not all(isinstance(item, str) for item in value):
        raise TypeError("expected a list of str")
    return list(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return value


def to_rows(value: Any) -> list[list]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a list of rows, got {type(value).__name__}")
    return [list(row) for row in value]


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": _str, "str?": _optional_str, "time": to_epoch_ms, "time?": to_optional_epoch_ms,
    "json": to_json_text, "map": to_str_map, "intmap": to_int_map, "array": to_str_list,
    "float": _float, "int": _int, "rows": to_rows,
}
