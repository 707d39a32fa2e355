"""Reading a rule pack's YAML as nodes that carry their lines, collecting every mistake.

`compose` parses the text (a syntax error is a `RulePackError` at its line); `NodeReader` reads
values, mappings and lists off the nodes, recording a `RuleError` (`FILE:LINE: PATH: message`) for
each mistake. `streams.moments.rules.loader` builds the pack on top of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import yaml

from streams.errors import ConfigError
from streams.moments.rules.syntax import suggest

__all__ = ["NodeReader", "RuleError", "RulePackError", "compose", "describe"]


@dataclass(frozen=True)
class RuleError:
    """One mistake in a pack: where (file, 1-based line, path of keys) and what."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class RulePackError(ConfigError):
    """Every mistake found in a pack: `errors` is the list, `str()` one line per error."""

    def __init__(self, errors: list[RuleError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


def describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list" if node.value else "an empty list"
    return "an empty value" if node.tag.endswith(":null") else repr(node.value)


class NodeReader:
    """Reads composed YAML nodes, recording a `RuleError` at the node's line for each mistake
    instead of stopping at the first."""

    def __init__(self, source: str, loader: yaml.SafeLoader):
        self.source, self.loader = source, loader
        self.errors: list[RuleError] = []
        self.key_of: dict[int, yaml.Node] = {}  # id(value node) -> its key node

    def error(self, node: yaml.Node | None, path: str, message: str) -> None:
        """Record a mistake at the node's line; a block mapping or list is reported at its key's
        line (`action:`), not at its first entry's."""
        if isinstance(node, yaml.CollectionNode) and not node.flow_style:
            node = self.key_of.get(id(node), node)
        line = node.start_mark.line + 1 if node is not None else 0
        self.errors.append(RuleError(self.source, line, path, message))

    def once(self, node: yaml.Node, path: str, value: Any, first: dict, noun: str,
             line: int) -> None:
        """Note id `value` as seen at `line`, or report that it appears twice."""
        if value in first:
            self.error(node, path, f"{noun} '{value}' appears twice (first at line {first[value]})")
        elif value is not None:
            first[value] = line

    def value(self, node: yaml.Node, path: str, check: Callable[[Any], Any] = lambda v: v) -> Any:
        """The node's plain value passed through `check`; None (and an error) if it fails."""
        try:
            return check(self.loader.construct_object(node, deep=True))
        except ValueError as e:
            self.error(node, path, str(e))
        except yaml.YAMLError as e:
            self.error(node, path, f"cannot read this value: {getattr(e, 'problem', None) or e}")
        return None

    def mapping(self, node: yaml.Node | None, path: str, keys=None, required=(),
                noun: str = "key") -> dict[str, yaml.Node] | None:
        """The node's entries by key, checking the keys (`keys` None: any key)."""
        if node is None:
            return None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping, not {describe(node)}")
            return None
        try:
            self.loader.flatten_mapping(node)  # resolve `<<` merge keys
        except yaml.YAMLError as e:
            self.error(node, path, str(getattr(e, "problem", None) or e))
        entries: dict[str, yaml.Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str) or not key:
                self.error(key_node, path, f"{describe(key_node)} is not a name")
            elif keys is not None and key not in keys:
                self.error(key_node, path,
                           f"unknown {noun} '{key}'{suggest(key, keys, listing=True)}")
            elif key in entries:
                self.error(key_node, path,
                           f"{noun} '{key}' appears twice (first at line {key_lines[key]})")
            else:
                entries[key], key_lines[key] = value_node, key_node.start_mark.line + 1
                self.key_of[id(value_node)] = key_node
        missing = [f"'{key}'" for key in required if key not in entries]
        if missing:
            listed = (", ".join(missing[:-1]) + " and " + missing[-1] if len(missing) > 1
                      else missing[0])
            self.error(node, path, f"missing {listed}")
        return entries

    def sequence(self, node: yaml.Node | None, path: str, what: str = "list") -> list[yaml.Node]:
        """The item nodes of a non-empty list; none (and an error) for anything else."""
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(node, path, f"expected a non-empty {what}, not {describe(node)}")
            return []
        return node.value

    def items(self, node: yaml.Node | None, path: str, check: Callable[[Any], Any],
              what: str = "list") -> tuple:
        """A non-empty list, each item passed through `check`."""
        return tuple(self.value(item, f"{path}[{i}]", check)
                     for i, item in enumerate(self.sequence(node, path, what)))

    def get(self, entries: dict, key: str, path: str, check: Callable[[Any], Any], default=None):
        return self.value(entries[key], f"{path}.{key}", check) if key in entries else default


def compose(text: str, source: str) -> tuple[yaml.SafeLoader, yaml.Node | None]:
    """Parse the text into nodes that carry their lines; a syntax error is a RulePackError."""
    try:
        loader = yaml.SafeLoader(text)
        return loader, loader.get_single_node()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        if e.context and str(e.problem).startswith("but "):  # "expected ... but found ..."
            problem = f"{e.context} {e.problem}"
        else:
            problem = str(e.problem or e) + (f" ({e.context}, line {e.context_mark.line + 1})"
                                             if e.context and e.context_mark else "")
        error = RuleError(source, mark.line + 1 if mark else 0, "", f"YAML syntax error: {problem}")
    except yaml.reader.ReaderError as e:  # a character YAML does not allow
        error = RuleError(source, text.count("\n", 0, e.position) + 1, "",
                          f"YAML syntax error: character #x{e.character:04x} is not allowed "
                          f"({e.reason})")
    raise RulePackError([error])
