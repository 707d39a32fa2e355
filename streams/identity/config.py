"""Identity graph configuration: the merge rules per identifier type (`IdentityConfig`).

Unique types, maxima per type and the priority order of types, with their defaults; how the graph
applies them is described in `streams.identity.graph` ("Limits")."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from streams.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_PER_TYPE",
    "DEFAULT_PRIORITY",
    "DEFAULT_UNIQUE_TYPES",
    "IdentityConfig",
]

DEFAULT_UNIQUE_TYPES = frozenset({"user", "loyalty"})
DEFAULT_MAX_PER_TYPE: Mapping[str, int] = MappingProxyType({"cookie": 5, "device": 5, "email": 3,
                                                            "phone": 3})
DEFAULT_PRIORITY = ("user", "loyalty", "email", "phone", "device", "cookie")

_CONFIG_KEYS = ("unique_types", "max_per_type", "priority")


def _check_type_name(where: str, name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"identity config: {where}: identifier type must be a non-empty string, "
                          f"got {name!r}")
    if ":" in name:
        raise ConfigError(f"identity config: {where}: identifier type {name!r} "
                          "must not contain ':'")
    return name


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Merge rules per identifier type. Build with keywords, `from_dict`, or `unlimited()`."""

    unique_types: frozenset[str] = DEFAULT_UNIQUE_TYPES
    max_per_type: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_PER_TYPE))
    priority: tuple[str, ...] = DEFAULT_PRIORITY
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unique = self.unique_types
        if isinstance(unique, str) or not isinstance(unique, Iterable):
            raise ConfigError(f"identity config: unique_types must be a list of types, "
                              f"got {unique!r}")
        unique = frozenset(_check_type_name("unique_types", t) for t in unique)

        maxima = self.max_per_type
        if not isinstance(maxima, Mapping):
            raise ConfigError(
                f"identity config: max_per_type must be a mapping of type to count, got {maxima!r}")
        checked: dict[str, int] = {}
        for name, limit in maxima.items():
            _check_type_name("max_per_type", name)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigError(
                    f"identity config: max_per_type[{name!r}] must be an integer >= 1, "
                    f"got {limit!r}")
            checked[name] = limit

        priority = self.priority
        if isinstance(priority, str) or not isinstance(priority, Iterable):
            raise ConfigError(f"identity config: priority must be a list of types, "
                              f"got {priority!r}")
        priority = tuple(_check_type_name("priority", t) for t in priority)
        index: dict[str, int] = {}
        for i, name in enumerate(priority):
            if name in index:
                raise ConfigError(f"identity config: priority lists {name!r} twice")
            index[name] = i

        object.__setattr__(self, "unique_types", unique)
        object.__setattr__(self, "max_per_type", checked)  # a private copy: treat it as read-only
        object.__setattr__(self, "priority", priority)
        object.__setattr__(self, "_index", index)

    @classmethod
    def unlimited(cls, priority: Iterable[str] = DEFAULT_PRIORITY) -> IdentityConfig:
        """No unique types, no maxima: profiles are the connected components of the link graph."""
        return cls(unique_types=frozenset(), max_per_type={}, priority=tuple(priority))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> IdentityConfig:
        """From a config-file section, e.g.
        {"unique_types": ["user"], "max_per_type": {"cookie": 10}, "priority": ["user", "email"]};
        absent keys keep their defaults. Raises `ConfigError` with a one-line message.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"identity config must be a mapping, got {type(data).__name__}")
        unknown = sorted(str(k) for k in data if k not in _CONFIG_KEYS)
        if unknown:
            raise ConfigError(
                f"identity config: unknown key {unknown[0]!r} "
                f"(expected one of: {', '.join(_CONFIG_KEYS)})")
        kwargs: dict[str, Any] = {}
        for key in ("unique_types", "priority"):
            if key in data:
                value = data[key]
                if not isinstance(value, (list, tuple)):
                    raise ConfigError(f"identity config: {key} must be a list of types, "
                                      f"got {value!r}")
                kwargs[key] = value
        if "max_per_type" in data:
            kwargs["max_per_type"] = data["max_per_type"]
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The `from_dict` form (JSON-serialisable, sorted where order carries no meaning)."""
        return {"unique_types": sorted(self.unique_types),
                "max_per_type": dict(sorted(self.max_per_type.items())),
                "priority": list(self.priority)}

    def rank(self, id_type: str) -> tuple[int, str]:
        """Sort key of a type: its position in `priority`; unlisted types after, alphabetically."""
        i = self._index.get(id_type)
        return (i, "") if i is not None else (len(self.priority), id_type)

    def limit(self, id_type: str) -> int | None:
        """Most values of `id_type` one profile may hold (1 for unique types), None if unlimited."""
        return 1 if id_type in self.unique_types else self.max_per_type.get(id_type)
