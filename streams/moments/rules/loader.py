"""Read a rule pack from YAML into the compiled objects of `rules`, reporting every mistake.

A pack is a mapping: `version: 1`, `settings` {lateness, history}, `reference` {stores,
inventory} (CSV files, relative to the pack's folder, loaded and checked here), `preferences` (the
preferences gate's settings, passed through) and `rules`, a list of
`{id, description, when, profile, cooldown, holdout, action}`; `when` holds one pattern: `event`,
`sequence`, `absence` or `count` over predicates (type, channel, campaign, publisher, properties,
context, geofence, in_stock). `streams/moments/pack/default.yaml` shows every construct.

This module walks the pack's structure over the line-carrying YAML nodes of
`streams.moments.rules.yaml_reader`; the syntax of single values (durations "30s", "5m", ...,
distances "500m", "2km", holdouts, ids, field paths, operator values, payload placeholders) is
checked by `streams.moments.rules.syntax` (`syntax.text`, `syntax.whole(1)`, ...; its parsers and
PLACEHOLDERS are re-exported here). Errors are collected, not stopped at: each is a `RuleError`
shown as `FILE:LINE: PATH: message` (PATH names a rule by its id, e.g.
`rules[cart_abandoned].cooldown`), and all of them are raised together as one `RulePackError`.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from streams.experiments.model import Experiment
from streams.moments.reference import Inventory, ReferenceDataError, Stores
from streams.moments.rules import model as R
from streams.moments.rules import syntax
from streams.moments.rules.experiment_reader import ExperimentReader
from streams.moments.rules.syntax import PLACEHOLDERS, parse_distance, parse_duration
from streams.moments.rules.traits_reader import TraitsReader
from streams.moments.rules.yaml_reader import NodeReader, RuleError, RulePackError, compose

__all__ = ["DEFAULT_PACK", "PLACEHOLDERS", "RuleError", "RulePackError", "check_main",
           "load_default", "load_pack", "load_pack_text", "parse_distance", "parse_duration"]

DEFAULT_PACK = Path(__file__).resolve().parents[1] / "pack" / "default.yaml"

_TOP_KEYS = ("version", "settings", "reference", "preferences", "traits", "audiences", "rules")
_RULE_KEYS = ("id", "description", "when", "profile", "cooldown", "holdout", "action",
              "experiment")
_PREDICATE_KEYS = ("type", "channel", "campaign", "publisher", "properties", "context", "geofence",
                   "in_stock")
_DOTTED = re.compile(r"^(properties|context)\.[A-Za-z0-9_][A-Za-z0-9_-]*$")  # properties.NAME


class _Builder(TraitsReader, ExperimentReader, NodeReader):
    """Walks the composed YAML nodes (which carry line numbers) and builds the pack, recording an
    error for each mistake. Objects may be built with None parts; they are only returned when no
    error was recorded."""

    def __init__(self, source: str, loader: yaml.SafeLoader, base_dir: Path):
        super().__init__(source, loader)
        self.base_dir = base_dir
        self.stores: Stores | None = None
        self.named: set[str] = set()  # the reference files given (they may have failed to load)
        self.audience_ids: set[str] | None = None  # the pack's audiences, once read

    # --- the pack ---

    def pack(self, root: yaml.Node) -> R.RulePack | None:
        top = self.mapping(root, "", _TOP_KEYS, required=("version", "rules"))
        if top is None:
            return None
        if "version" in top:
            self.value(top["version"], "version", syntax.version)
        settings = self.mapping(top.get("settings"), "settings", ("lateness", "history")) or {}
        lateness = self.get(settings, "lateness", "settings", parse_duration,
                            R.RulePack.lateness_ms)
        history = self.get(settings, "history", "settings", parse_duration)
        files = self.reference(top.get("reference"))
        preferences = self.preferences(top.get("preferences"))
        traits = self.traits(top.get("traits"))
        audiences = self.audiences(top.get("audiences")) if "audiences" in top else ()
        self.audience_ids = {a.id for a in audiences if a.id is not None}
        rules = self.rules(top.get("rules"))
        if self.errors:
            return None
        if not history:  # absent or 0: derived from the rules
            history = R.history_ms(rules, lateness)
        return R.RulePack(rules=rules, lateness_ms=lateness, history_ms=history,
                          preferences=preferences, traits=traits, audiences=audiences,
                          stores_file=files.get("stores"),
                          inventory_file=files.get("inventory"), source=self.source)

    def reference(self, node: yaml.Node | None) -> dict[str, str]:
        entries = self.mapping(node, "reference", ("stores", "inventory")) or {}
        files = {}
        for key, load in (("stores", Stores.load), ("inventory", Inventory.load)):
            name = self.get(entries, key, "reference", syntax.text)
            self.named |= {key} & set(entries)
            if name is None:
                continue
            files[key] = str((self.base_dir / Path(name).expanduser()).resolve())
            try:
                loaded = load(files[key])
            except ReferenceDataError as e:
                for line in e.errors:
                    self.error(entries[key], f"reference.{key}", line)
                continue
            if key == "stores":
                self.stores = loaded
        return files

    def preferences(self, node: yaml.Node | None) -> dict:
        entries = self.mapping(node, "preferences")
        if entries is None:
            return {}
        prefs = self.value(node, "preferences") or {}
        try:
            from streams.preferences.config import GateConfig
        except ImportError:  # the gate is optional here: check what can be checked
            return prefs
        try:
            GateConfig.from_dict(prefs)
        except (ValueError, TypeError) as e:
            key = re.match(r"[A-Za-z0-9_]+", str(e))
            at = next((k for k, _ in node.value if key and k.value == key[0]), node)
            self.error(at, "preferences", str(e))
        return prefs

    def rules(self, node: yaml.Node | None) -> tuple[R.Rule, ...]:
        first: dict[str, int] = {}
        built = []
        for i, rule_node in enumerate(self.sequence(node, "rules", "list of rules")):
            path = f"rules[{_rule_label(rule_node, i)}]"
            entries = self.mapping(rule_node, path, _RULE_KEYS, required=("id", "when", "action"))
            if entries is None:
                continue
            line = rule_node.start_mark.line + 1
            rule_id = self.get(entries, "id", path, syntax.rule_id)
            self.once(entries.get("id"), f"{path}.id", rule_id, first, "rule id", line)
            action = self.action(entries.get("action"), f"{path}.action")
            experiment = self.experiment(entries.get("experiment"), f"{path}.experiment", rule_id,
                                         action is not None and action.code is not None)
            if "experiment" in entries and "holdout" in entries:
                self.error(entries["holdout"], f"{path}.holdout", "a rule with an experiment has "
                           "no holdout: its control arm is the holdout")
            holdout = self.get(entries, "holdout", path, syntax.holdout, 0.0)
            if experiment is None and holdout and rule_id is not None:
                experiment = Experiment.holdout(rule_id, holdout)  # a control arm
            built.append(R.Rule(
                id=rule_id, line=line,
                pattern=self.when(entries.get("when"), f"{path}.when"),
                action=action, experiment=experiment,
                description=self.get(entries, "description", path, syntax.text, ""),
                profile=self.profile(entries.get("profile"), f"{path}.profile"),
                cooldown_ms=self.get(entries, "cooldown", path, parse_duration, 0),
                holdout_pct=holdout))
        return tuple(built)

    # --- patterns and predicates ---

    def when(self, node: yaml.Node | None, path: str) -> R.Pattern | None:
        entries = self.mapping(node, path, R.PATTERN_KINDS)
        if entries is None:
            return None
        if len(entries) != 1 and (entries or not node.value):
            self.error(node, path,
                       "needs one of event, sequence, absence, count" if not entries else
                       f"has {' and '.join(entries)}: a rule has exactly one pattern")
        patterns = [self.pattern(kind, sub, f"{path}.{kind}") for kind, sub in entries.items()]
        return patterns[0] if patterns else None

    def pattern(self, kind: str, sub: yaml.Node, path: str) -> R.Pattern | None:
        if kind == "event":
            return R.EventPattern(self.predicate(sub, path))
        keys = {"sequence": ("steps", "within", "same"),
                "absence": ("after", "missing", "within", "same"),
                "count": ("match", "at_least", "within", "same")}[kind]
        parts = self.mapping(sub, path, keys, required=tuple(k for k in keys if k != "same"))
        if parts is None:
            return None
        within = self.get(parts, "within", path, syntax.positive(parse_duration))
        same = self.items(parts.get("same"), f"{path}.same", syntax.field_path,
                          "list of field paths")
        if kind == "sequence":
            steps = parts.get("steps")
            if steps is not None and (not isinstance(steps, yaml.SequenceNode)
                                      or len(steps.value) < 2):
                self.error(steps, f"{path}.steps", "expected a list of at least 2 steps "
                                                   "(for a single event use `event:`)")
            elif steps is not None:
                steps = tuple(self.predicate(s, f"{path}.steps[{i}]")
                              for i, s in enumerate(steps.value))
            return R.SequencePattern(steps, within, same)
        if kind == "absence":
            return R.AbsencePattern(self.predicate(parts.get("after"), f"{path}.after"),
                                    self.predicate(parts.get("missing"), f"{path}.missing"),
                                    within, same)
        return R.CountPattern(self.predicate(parts.get("match"), f"{path}.match"),
                              self.get(parts, "at_least", path, syntax.whole(2)), within, same)

    def predicate(self, node: yaml.Node | None, path: str) -> R.Predicate | None:
        dotted = tuple(k.value for k, _v in getattr(node, "value", ())
                       if isinstance(node, yaml.MappingNode) and isinstance(k, yaml.ScalarNode)
                       and isinstance(k.value, str) and _DOTTED.match(k.value))
        entries = self.mapping(node, path, (*_PREDICATE_KEYS, *dotted))
        if entries is None:
            return None
        if not node.value:
            self.error(node, path, "an empty predicate matches every event; name at least a type")
        conditions: list[R.Condition] = []
        geofence = in_stock = None
        for key, sub in entries.items():
            if key in ("properties", "context"):
                for name, value in (self.mapping(sub, f"{path}.{key}") or {}).items():
                    conditions += self.conditions(f"{key}.{name}", value, f"{path}.{key}.{name}")
            elif key in dotted:  # properties.category: suv
                conditions += self.conditions(key, sub, f"{path}.{key}")
            elif key == "geofence":
                geofence = self.geofence(sub, f"{path}.geofence")
            elif key == "in_stock":
                in_stock = self.in_stock(sub, f"{path}.in_stock")
            else:
                conditions += self.conditions(key, sub, f"{path}.{key}")
        return R.Predicate(tuple(conditions), geofence, in_stock)

    def conditions(self, field: str, node: yaml.Node, path: str) -> list[R.Condition]:
        """A scalar (eq), a list (in) or an operator mapping {op: value, ...}."""
        if isinstance(node, yaml.SequenceNode):
            return [R.Condition(field, "in", self.value(node, path, syntax.scalars))]
        if not isinstance(node, yaml.MappingNode):
            return [R.Condition(field, "eq", self.value(node, path, syntax.scalar))]
        ops = self.mapping(node, path, R.OPS, noun="operator") or {}
        if not node.value:
            self.error(node, path, f"empty operator mapping (use one of {', '.join(R.OPS)})")
        return [R.Condition(field, op, self.value(sub, f"{path}.{op}", syntax.OP_CHECKS[op]))
                for op, sub in ops.items()]

    def geofence(self, node: yaml.Node, path: str) -> R.Geofence | None:
        entries = self.mapping(node, path, ("within", "stores"), required=("within",))
        if entries is None:
            return None
        if "stores" not in self.named:
            self.error(node, path, "a geofence needs the store list: add reference.stores")
        stores = self.items(entries.get("stores"), f"{path}.stores", self._store_id,
                            "list of store ids")
        return R.Geofence(self.get(entries, "within", path, syntax.positive(parse_distance)),
                          stores or None)

    def _store_id(self, value: Any) -> str:
        value = syntax.text(value)
        if self.stores is not None and value not in self.stores:
            raise ValueError(f"unknown store {value!r}{syntax.suggest(value, self.stores.ids())}")
        return value

    def in_stock(self, node: yaml.Node, path: str) -> R.StockJoin | None:
        entries = self.mapping(node, path, ("product", "store", "within", "min_quantity"))
        if entries is None:
            return None
        store = self.get(entries, "store", path, syntax.one_of("nearest", "event"), "nearest")
        if store == "nearest" and "stores" not in self.named:
            self.error(node, path, "store: nearest needs the store list: add reference.stores")
        if "inventory" not in self.named:
            self.error(node, path, "a stock join needs the inventory: add reference.inventory")
        within = self.get(entries, "within", path,
                          syntax.positive(lambda v: parse_distance(v, unit_required=True)))
        return R.StockJoin(product=self.get(entries, "product", path, syntax.field_path,
                                            "properties.product_id"),
                           store=store,
                           within_km=R.StockJoin.within_km if within is None else within / 1000,
                           min_quantity=self.get(entries, "min_quantity", path, syntax.whole(1), 1))

    def profile(self, node: yaml.Node | None, path: str) -> R.ProfileCondition | None:
        entries = self.mapping(node, path, (*R.PROFILE_KEYS, "within", *R.OPS))
        if entries is None:
            return None
        audiences, trait = self.profile_traits(entries, node, path, self.audience_ids)
        return R.ProfileCondition(
            audiences=audiences, trait=trait,
            identified=self.get(entries, "identified", path, syntax.boolean),
            min_interest=self.get(entries, "min_interest", path, syntax.whole(0), 0),
            interest_window_ms=self.get(entries, "interest_window", path,
                                        syntax.positive(parse_duration),
                                        R.ProfileCondition.interest_window_ms))

    # --- actions ---

    def action(self, node: yaml.Node | None, path: str) -> R.Action | None:
        entries = self.mapping(node, path, ("channels", "story", "messages", "code", "payload"))
        if entries is None:
            return None
        story_keys = [k for k in ("story", "messages") if k in entries]
        if "channels" in entries and story_keys:
            self.error(node, path, "has both channels and a story: use channels for one message, "
                                   "or story with messages")
        elif "channels" not in entries and not story_keys:
            self.error(node, path, "needs channels (one message) or story with messages")
        elif len(story_keys) == 1:
            self.error(node, path, "a story needs messages" if story_keys == ["story"]
                       else "messages need a story name (add story: NAME)")
        code = self.get(entries, "code", path, lambda v: str(syntax.scalar(v)))
        return R.Action(
            channels=self.items(entries.get("channels"), f"{path}.channels", syntax.channel,
                                "list of channels"),
            payload=self.payload(entries.get("payload"), f"{path}.payload", code is not None),
            code=code, story=self.get(entries, "story", path, syntax.text),
            messages=self.messages(entries.get("messages"), f"{path}.messages", code is not None))

    def messages(self, node: yaml.Node | None, path: str, has_code: bool) -> tuple[R.Message, ...]:
        first: dict[str, int] = {}
        built = []
        for i, msg_node in enumerate(self.sequence(node, path, "list of messages")):
            entries = self.mapping(msg_node, f"{path}[{i}]", ("id", "channels", "payload"),
                                   required=("id", "channels")) or {}
            msg_id = self.get(entries, "id", f"{path}[{i}]",
                              lambda v: syntax.text(str(syntax.scalar(v))))
            if msg_id in first:
                self.error(entries["id"], f"{path}[{i}].id", f"message id '{msg_id}' appears twice "
                                                             f"(first at line {first[msg_id]})")
            elif msg_id is not None:
                first[msg_id] = entries["id"].start_mark.line + 1
            built.append(R.Message(
                msg_id, self.items(entries.get("channels"), f"{path}[{i}].channels", syntax.channel,
                                   "list of channels"),
                self.payload(entries.get("payload"), f"{path}[{i}].payload", has_code)))
        return tuple(built)

    def payload(self, node: yaml.Node | None, path: str, has_code: bool) -> dict:
        entries = self.mapping(node, path) or {}
        return {key: self.value(value, f"{path}.{key}", lambda v: syntax.payload_value(v, has_code))
                for key, value in entries.items()}


def _rule_label(node: yaml.Node, index: int) -> str:
    """The rule's id when it has a valid one, else its position in the list."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "id" and isinstance(value, yaml.ScalarNode) \
                    and syntax.ID_RE.match(value.value):
                return value.value
    return str(index)


# --- public API -----------------------------------------------------------------------------------

def load_pack_text(text: str, *, source: str = "<string>",
                   base_dir: Path | None = None) -> R.RulePack:
    """Build a pack from YAML text. `source` names it in messages; reference files are relative to
    `base_dir` (default: the current directory). Raises RulePackError listing every mistake."""
    loader, root = compose(text, source)
    try:
        if root is None:
            raise RulePackError([RuleError(source, 1, "", "the file is empty: a rule pack is a "
                                                          "mapping with version: 1 and rules")])
        builder = _Builder(source, loader, Path(base_dir) if base_dir is not None else Path.cwd())
        pack = builder.pack(root)
    finally:
        loader.dispose()
    if builder.errors:
        raise RulePackError(sorted(builder.errors, key=lambda e: e.line))
    return pack


def load_pack(path: str | Path) -> R.RulePack:
    """Build a pack from a YAML file (reference files relative to its folder). Raises OSError when
    the file cannot be read, RulePackError listing every mistake when it is not a valid pack."""
    path = Path(path)
    return load_pack_text(path.read_text(encoding="utf-8"), source=str(path),
                          base_dir=path.resolve().parent)


def load_default() -> R.RulePack:
    """The pack shipped with parcours (streams/moments/pack/default.yaml)."""
    return load_pack(DEFAULT_PACK)


def check_main(path: str, out=None) -> int:
    """`parcours rules check FILE.yaml`: 0 when the pack is valid, 1 with one line per mistake,
    2 when the file cannot be read."""
    out = out if out is not None else sys.stdout
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = (e.strerror if isinstance(e, OSError) else None) or str(e)
        print(f"parcours: error: cannot read {path}: {reason}", file=out)
        return 2
    try:
        pack = load_pack_text(text, source=str(path), base_dir=Path(path).resolve().parent)
    except RulePackError as e:
        for error in e.errors:
            print(error, file=out)
        print(f"{path}: {len(e.errors)} error{'' if len(e.errors) == 1 else 's'}", file=out)
        return 1
    ids = ", ".join(rule.id for rule in pack.rules)
    rules = f"{len(pack.rules)} rule{'' if len(pack.rules) == 1 else 's'}"
    print(f"{path}: {rules} OK: {ids}", file=out)
    return 0
