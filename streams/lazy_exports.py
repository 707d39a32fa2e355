"""A package's surface, imported on first use: `from streams.ingest import ingest_batch` works, and
importing one module of the package (`streams.ingest.clock`) does not import all the others.

Each concept package lists its exports, name -> module, and sets
`__all__, __getattr__ = lazy(__name__, EXPORTS)` (PEP 562). So the CLI's parser, `streams.config`
and every small command stay quick to import: a package's `__init__` is run whenever any of its
modules is, and eager re-exports there would load the whole package (and, through ingest, the
Avro codecs) for one constant.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy(package: str, exports: dict[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """`__all__` and the module `__getattr__` of `package`: each exported name imported from its
    module the first time it is asked for, then kept on the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return sorted(exports), __getattr__
