"""The catalog rules: every group of every file is checked, and the well-formed metrics kept.

Each rule has a stable id (the ``rule`` of a :class:`Finding`); docs/catalog.md lists them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telemetry_otel.catalog._load import Document, Node
from telemetry_otel.catalog._model import (
    ANNOTATION_KEY,
    INSTRUMENTS,
    PRIORITIES,
    STABILITY_LEVELS,
    AttributeDefinition,
    Catalog,
    Finding,
    Instrument,
    Location,
    MetricDefinition,
    Owner,
    OwnerKind,
    Priority,
)
from telemetry_otel.catalog._units import unit_problem

__all__ = ["RULES", "build_catalog"]

#: Every rule id with what it checks.
RULES: Mapping[str, str] = {
    "structure": "the file is a map with a `groups` list of maps, each with an `id`",
    "duplicate_key": "a key appears once per map (YAML would silently keep the last)",
    "duplicate_id": "group ids are unique across the catalog",
    "unknown_group_type": "`type` is a Weaver group type (metric, attribute_group, span, ...)",
    "unknown_field": "no field outside the Weaver format and this project's annotations (typos)",
    "bad_metric_name": "`metric_name` is a dotted lower-case OTel name of at most 255 characters",
    "bad_id": "a metric group's id is `metric.` followed by its metric_name",
    "duplicate_metric": "a metric_name is declared once",
    "unknown_instrument": "`instrument` is counter, updowncounter, gauge or histogram",
    "bad_unit": "`unit` is a UCUM unit, `1` or a `{annotation}`",
    "missing_brief": "every group and every attribute definition has a non-empty `brief`",
    "bad_stability": "`stability` is development, alpha, beta, release_candidate or stable",
    "bad_attribute_name": "an attribute id is a dotted lower-case name",
    "bad_attribute_type": "an attribute `type` is a Weaver type or an enum of `members`",
    "duplicate_attribute": "an attribute is defined once, and listed once per group",
    "undefined_attribute": "an attribute `ref` names an attribute defined in the catalog",
    "bad_requirement_level": "a requirement level is required, conditionally_required, recommended or opt_in",
    "unknown_extends": "`extends` names an existing group, without a cycle",
    "bad_owner": "`annotations.telemetry_otel.owner` names services, buses or a component",
    "bad_priority": "`annotations.telemetry_otel.priority` is HIGH, MEDIUM or LOW",
}

_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_MAX_NAME = 255
_GROUP_TYPES = frozenset(
    {"metric", "attribute_group", "metric_group", "span", "event", "resource", "entity", "scope"}
)
_COMMON_FIELDS = frozenset(
    {
        "id", "type", "brief", "note", "extends", "stability", "deprecated", "display_name",
        "attributes", "entity_associations", "annotations",
    }
)  # fmt: skip
_METRIC_FIELDS = _COMMON_FIELDS | {"metric_name", "instrument", "unit", "metric_requirement_level"}
_ATTRIBUTE_FIELDS = frozenset(
    {
        "id", "ref", "type", "brief", "note", "stability", "deprecated", "requirement_level",
        "sampling_relevant", "examples", "tag", "annotations", "role",
    }
)  # fmt: skip
_SIMPLE_TYPES = frozenset(
    {"string", "int", "double", "boolean", "any", "string[]", "int[]", "double[]", "boolean[]"}
)
_REQUIREMENT_LEVELS = ("required", "conditionally_required", "recommended", "opt_in")
_METRIC_REQUIREMENT_LEVELS = ("required", "recommended", "opt_in")
_OWNER_KEYS: Mapping[str, tuple[OwnerKind, bool]] = {
    "service": ("service", False),
    "services": ("service", True),
    "bus": ("bus", False),
    "buses": ("bus", True),
    "component": ("component", False),
}
_OWNER_FORMS = (
    "{service: NAME}, {services: [NAMES] | all}, {bus: NAME}, {buses: [NAMES] | all} or {component: NAME}"
)
_ANNOTATION_FIELDS = frozenset({"owner", "priority"})


@dataclass(frozen=True)
class _Group:
    id: str
    type: str
    fields: dict[str, Node]
    location: Location


def build_catalog(documents: Sequence[Document]) -> Catalog:
    """Check every group of ``documents`` and build the catalog of their well-formed metrics."""
    checker = _Checker()
    for document in documents:
        checker.add(document)
    return checker.finish(tuple(document.path for document in documents))


class _Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.groups: dict[str, _Group] = {}
        self.attributes: dict[str, AttributeDefinition] = {}
        self._resolved: dict[str, dict[str, str]] = {}
        self._own: dict[str, dict[str, str]] = {}

    def find(self, rule: str, message: str, location: Location) -> None:
        self.findings.append(Finding(rule, message, location))

    # -- files and groups ------------------------------------------------------------------------

    def add(self, document: Document) -> None:
        self.findings.extend(document.findings)
        root = document.root
        if root is None:
            self.find(
                "structure", "the file is empty: a catalog is a map with a `groups` list", _top(document)
            )
            return
        top = root.mapping
        if top is None:
            self.find("structure", "the top level must be a map with a `groups` list", root.location)
            return
        for key, node in top.items():
            if key not in ("groups", "imports"):
                self.find(
                    "unknown_field", f"unknown top-level field {key!r} (expected `groups`)", node.location
                )
        groups = top.get("groups")
        if groups is None:
            self.find("structure", "no `groups` list at the top level", root.location)
            return
        items = groups.sequence
        if items is None:
            self.find("structure", "`groups` must be a list of groups", groups.location)
            return
        for item in items:
            self._add_group(item)

    def _add_group(self, item: Node) -> None:
        fields = item.mapping
        if fields is None:
            self.find("structure", "a group must be a map with `id`, `type` and `brief`", item.location)
            return
        id_node = fields.get("id")
        group_id = id_node.text if id_node is not None else None
        if not group_id:
            self.find("structure", "a group needs an `id` (a non-empty string)", item.location)
            return
        type_node = fields.get("type")
        group_type = ""
        if type_node is None:
            self.find("unknown_group_type", f"group {group_id!r} has no `type`", item.location)
        elif type_node.text not in _GROUP_TYPES:
            self.find(
                "unknown_group_type",
                f"group {group_id!r} has type {_shown(type_node)}, "
                f"not one of {', '.join(sorted(_GROUP_TYPES))}",
                type_node.location,
            )
        else:
            group_type = type_node.text or ""
        first = self.groups.get(group_id)
        if first is not None:
            self.find(
                "duplicate_id", f"group id {group_id!r} is already used at {first.location}", item.location
            )
            return
        self.groups[group_id] = _Group(group_id, group_type, fields, item.location)

    def finish(self, sources: tuple[str, ...]) -> Catalog:
        for group in self.groups.values():
            self._define_attributes(group)
        metrics: dict[str, MetricDefinition] = {}
        first_seen: dict[str, Location] = {}
        for group in self.groups.values():
            if group.type == "metric":
                definition = self._metric(group, first_seen)
                if definition is not None:
                    metrics[definition.name] = definition
            else:
                self._other_group(group)
        self.findings.sort(key=lambda finding: (finding.location, finding.rule))
        return Catalog(sources, metrics, dict(self.attributes), tuple(self.findings))

    # -- attributes ------------------------------------------------------------------------------

    def _define_attributes(self, group: _Group) -> None:
        node = group.fields.get("attributes")
        for entry in (node.sequence or []) if node is not None else []:
            fields = entry.mapping
            if fields is None or "id" not in fields:
                continue
            name_node = fields["id"]
            name = name_node.text
            if not name:
                self.find(
                    "bad_attribute_name", "an attribute `id` must be a non-empty string", entry.location
                )
                continue
            if not _NAME.match(name) or len(name) > _MAX_NAME:
                self.find("bad_attribute_name", f"attribute {name!r} {_NAME_RULE}", name_node.location)
            first = self.attributes.get(name)
            if first is not None:
                self.find(
                    "duplicate_attribute",
                    f"attribute {name!r} is already defined at {first.location}",
                    entry.location,
                )
                continue
            type_name, members = self._attribute_type(name, fields, entry.location)
            brief = self._brief(fields, f"attribute {name!r}", entry.location)
            self._stability(fields, f"attribute {name!r}", entry.location)
            self.attributes[name] = AttributeDefinition(name, type_name, brief, members, entry.location)

    def _attribute_type(
        self, name: str, fields: dict[str, Node], location: Location
    ) -> tuple[str, tuple[str | int | float | bool, ...] | None]:
        node = fields.get("type")
        if node is None:
            self.find("bad_attribute_type", f"attribute {name!r} has no `type`", location)
            return "", None
        text = node.text
        if text is not None:
            inner = text.removeprefix("template[").removesuffix("]") if text.startswith("template[") else None
            if text in _SIMPLE_TYPES or (inner is not None and inner in _SIMPLE_TYPES and text.endswith("]")):
                return text, None
            self.find(
                "bad_attribute_type",
                f"attribute {name!r} has type {text!r}, not one of {', '.join(sorted(_SIMPLE_TYPES))}, "
                "template[...] or an enum of `members`",
                node.location,
            )
            return text, None
        members_node = node.mapping.get("members") if node.mapping is not None else None
        members = members_node.sequence if members_node is not None else None
        if not members:
            self.find(
                "bad_attribute_type",
                f"attribute {name!r}: an enum type is a map with a non-empty `members` list",
                node.location,
            )
            return "enum", None
        values: list[str | int | float | bool] = []
        for member in members:
            member_fields = member.mapping or {}
            value = member_fields["value"].value if "value" in member_fields else None
            if "id" not in member_fields or not isinstance(value, str | int | float | bool):
                self.find(
                    "bad_attribute_type",
                    f"attribute {name!r}: each enum member needs an `id` and a plain `value`",
                    member.location,
                )
                continue
            values.append(value)
        return "enum", tuple(values)

    def _own_attributes(self, group: _Group) -> dict[str, str]:
        """The attributes a group lists itself (refs and definitions), with requirement levels."""
        known = self._own.get(group.id)
        if known is not None:
            return known
        own: dict[str, str] = {}
        self._own[group.id] = own
        node = group.fields.get("attributes")
        if node is None:
            return own
        entries = node.sequence
        if entries is None:
            self.find("structure", f"group {group.id!r}: `attributes` must be a list", node.location)
            return own
        for entry in entries:
            fields = entry.mapping
            if fields is None:
                self.find("structure", "an attribute entry must be a map with `ref` or `id`", entry.location)
                continue
            for key, value in fields.items():
                if key not in _ATTRIBUTE_FIELDS:
                    self.find("unknown_field", f"unknown attribute field {key!r}", value.location)
            ref, definition = fields.get("ref"), fields.get("id")
            if (ref is None) == (definition is None):
                self.find("structure", "an attribute entry has exactly one of `ref` and `id`", entry.location)
                continue
            name_node = ref if ref is not None else definition
            name = name_node.text if name_node is not None else None
            if not name:
                if ref is not None:
                    self.find(
                        "undefined_attribute", f"`ref` {_shown(ref)} is not an attribute id", ref.location
                    )
                continue  # an `id` that is not a string is reported where attributes are defined
            if ref is not None and name not in self.attributes:
                self.find(
                    "undefined_attribute",
                    f"group {group.id!r} refers to attribute {name!r}, which no group of the catalog defines",
                    ref.location,
                )
                continue
            if name in own:
                self.find(
                    "duplicate_attribute",
                    f"group {group.id!r} lists attribute {name!r} twice",
                    entry.location,
                )
                continue
            own[name] = self._requirement_level(fields, name)
        return own

    def _requirement_level(self, fields: dict[str, Node], name: str) -> str:
        node = fields.get("requirement_level")
        if node is None:
            return "recommended"
        level = node.text
        if level is None and node.mapping is not None and len(node.mapping) == 1:
            level = next(iter(node.mapping))  # {conditionally_required: <condition>}
        if level not in _REQUIREMENT_LEVELS:
            self.find(
                "bad_requirement_level",
                f"attribute {name!r} has requirement_level {_shown(node)}, "
                f"not one of {', '.join(_REQUIREMENT_LEVELS)}",
                node.location,
            )
            return "recommended"
        return level

    def _resolve(self, group: _Group, stack: tuple[str, ...] = ()) -> dict[str, str]:
        """The group's attributes including those it inherits through ``extends``."""
        known = self._resolved.get(group.id)
        if known is not None:
            return known
        inherited: dict[str, str] = {}
        extends = group.fields.get("extends")
        if extends is not None:
            parent_id = extends.text
            parent = self.groups.get(parent_id) if parent_id else None
            if parent is None:
                self.find(
                    "unknown_extends",
                    f"group {group.id!r} extends {_shown(extends)}, which is not a group of the catalog",
                    extends.location,
                )
            elif parent.id in stack or parent.id == group.id:
                self.find(
                    "unknown_extends",
                    f"group {group.id!r} extends {parent.id!r}, which extends it back (a cycle)",
                    extends.location,
                )
            else:
                inherited = self._resolve(parent, (*stack, group.id))
        resolved = {**inherited, **self._own_attributes(group)}
        self._resolved[group.id] = resolved
        return resolved

    # -- groups ----------------------------------------------------------------------------------

    def _other_group(self, group: _Group) -> None:
        self._brief(group.fields, f"group {group.id!r}", group.location)
        if group.type == "attribute_group":
            for key, value in group.fields.items():
                if key not in _COMMON_FIELDS:
                    self.find("unknown_field", f"group {group.id!r}: unknown field {key!r}", value.location)
        if "stability" in group.fields:
            self._stability(group.fields, f"group {group.id!r}", group.location)
        self._resolve(group)

    def _metric(self, group: _Group, first_seen: dict[str, Location]) -> MetricDefinition | None:
        fields = group.fields
        for key, value in fields.items():
            if key not in _METRIC_FIELDS:
                self.find(
                    "unknown_field", f"metric group {group.id!r}: unknown field {key!r}", value.location
                )
        name = self._metric_name(group, first_seen)
        instrument = self._instrument(group)
        unit = self._unit(group)
        brief = self._brief(fields, f"metric group {group.id!r}", group.location)
        stability = self._stability(fields, f"metric group {group.id!r}", group.location)
        level = fields.get("metric_requirement_level")
        if level is not None and level.value not in _METRIC_REQUIREMENT_LEVELS:
            self.find(
                "bad_requirement_level",
                f"metric group {group.id!r} has metric_requirement_level {_shown(level)}, "
                f"not one of {', '.join(_METRIC_REQUIREMENT_LEVELS)}",
                level.location,
            )
        owner, priority = self._annotations(group)
        attributes = self._resolve(group)
        note = fields["note"].text if "note" in fields else None
        if (
            name is None
            or instrument is None
            or unit is None
            or not brief
            or owner is None
            or priority is None
        ):
            return None
        return MetricDefinition(
            id=group.id,
            name=name,
            instrument=instrument,
            unit=unit,
            brief=brief,
            stability=stability or "",
            attributes=attributes,
            owner=owner,
            priority=priority,
            location=group.location,
            note=(note or "").strip(),
        )

    def _metric_name(self, group: _Group, first_seen: dict[str, Location]) -> str | None:
        node = group.fields.get("metric_name")
        if node is None:
            self.find("bad_metric_name", f"metric group {group.id!r} has no `metric_name`", group.location)
            return None
        name = node.text
        if name is None or not _NAME.match(name) or len(name) > _MAX_NAME:
            self.find("bad_metric_name", f"metric_name {_shown(node)} {_NAME_RULE}", node.location)
            return None
        if group.id != f"metric.{name}":
            self.find(
                "bad_id",
                f"metric group id {group.id!r} should be {'metric.' + name!r} (`metric.` + metric_name)",
                group.location,
            )
        first = first_seen.get(name)
        if first is not None:
            self.find("duplicate_metric", f"metric {name!r} is already declared at {first}", node.location)
            return None
        first_seen[name] = node.location
        return name

    def _instrument(self, group: _Group) -> Instrument | None:
        node = group.fields.get("instrument")
        if node is None:
            self.find("unknown_instrument", f"metric group {group.id!r} has no `instrument`", group.location)
            return None
        for instrument in INSTRUMENTS:
            if node.value == instrument:
                return instrument
        hint = ""
        if isinstance(node.value, str) and node.value.replace("_", "").lower() in INSTRUMENTS:
            hint = f" (write {node.value.replace('_', '').lower()!r})"
        self.find(
            "unknown_instrument",
            f"instrument {_shown(node)} is not one of {', '.join(INSTRUMENTS)}{hint}",
            node.location,
        )
        return None

    def _unit(self, group: _Group) -> str | None:
        node = group.fields.get("unit")
        if node is None:
            self.find(
                "bad_unit",
                f'metric group {group.id!r} has no `unit` (use "1" when it has none)',
                group.location,
            )
            return None
        unit = node.text
        if unit is None:
            self.find(
                "bad_unit", f'unit {_shown(node)} must be a string (quote it: "{node.value}")', node.location
            )
            return None
        problem = unit_problem(unit)
        if problem is not None:
            self.find("bad_unit", problem, node.location)
        return unit

    def _brief(self, fields: dict[str, Node], what: str, location: Location) -> str:
        node = fields.get("brief")
        brief = node.text.strip() if node is not None and node.text is not None else ""
        if not brief:
            self.find("missing_brief", f"{what} has no `brief`", node.location if node else location)
        return brief

    def _stability(self, fields: dict[str, Node], what: str, location: Location) -> str | None:
        node = fields.get("stability")
        if node is None:
            self.find("bad_stability", f"{what} has no `stability`", location)
            return None
        if node.value not in STABILITY_LEVELS:
            hint = " (`experimental` is now `development`)" if node.value == "experimental" else ""
            self.find(
                "bad_stability",
                f"{what} has stability {_shown(node)}, not one of {', '.join(STABILITY_LEVELS)}{hint}",
                node.location,
            )
            return None
        return node.text

    # -- annotations -----------------------------------------------------------------------------

    def _annotations(self, group: _Group) -> tuple[Owner | None, Priority | None]:
        node = group.fields.get("annotations")
        ours = node.mapping.get(ANNOTATION_KEY) if node is not None and node.mapping is not None else None
        if node is not None and node.mapping is None:
            self.find("structure", f"metric group {group.id!r}: `annotations` must be a map", node.location)
        if ours is None or ours.mapping is None:
            where = (
                ours.location if ours is not None else node.location if node is not None else group.location
            )
            missing = f"metric group {group.id!r} has no `annotations.{ANNOTATION_KEY}` map"
            self.find("bad_owner", f"{missing} with an `owner`", where)
            self.find("bad_priority", f"{missing} with a `priority`", where)
            return None, None
        for key, value in ours.mapping.items():
            if key not in _ANNOTATION_FIELDS:
                self.find(
                    "unknown_field",
                    f"unknown field {key!r} in annotations.{ANNOTATION_KEY} (expected owner, priority)",
                    value.location,
                )
        return self._owner(group, ours), self._priority(group, ours)

    def _owner(self, group: _Group, ours: Node) -> Owner | None:
        node = (ours.mapping or {}).get("owner")
        if node is None:
            self.find("bad_owner", f"metric group {group.id!r} has no owner: {_OWNER_FORMS}", ours.location)
            return None
        fields = node.mapping
        if fields is None or len(fields) != 1 or next(iter(fields)) not in _OWNER_KEYS:
            self.find("bad_owner", f"owner {_shown(node)} is not one of {_OWNER_FORMS}", node.location)
            return None
        key, value = next(iter(fields.items()))
        kind, plural = _OWNER_KEYS[key]
        if not plural:
            if not value.text or not value.text.strip():
                self.find("bad_owner", f"owner {key!r} needs a name, not {_shown(value)}", value.location)
                return None
            return Owner(kind, (value.text,))
        if value.value == "all":
            return Owner(kind, None)
        names = [item.text for item in value.sequence or []]
        if not names or any(not name or not name.strip() for name in names) or len(set(names)) != len(names):
            self.find(
                "bad_owner",
                f"owner {key!r} is `all` or a non-empty list of distinct names, not {_shown(value)}",
                value.location,
            )
            return None
        return Owner(kind, tuple(name for name in names if name))

    def _priority(self, group: _Group, ours: Node) -> Priority | None:
        node = (ours.mapping or {}).get("priority")
        if node is None:
            self.find(
                "bad_priority",
                f"metric group {group.id!r} has no priority (HIGH, MEDIUM or LOW)",
                ours.location,
            )
            return None
        for priority in PRIORITIES:
            if node.value == priority:
                return priority
        hint = ""
        if isinstance(node.value, str) and node.value.upper() in PRIORITIES:
            hint = f" (write {node.value.upper()!r})"
        self.find(
            "bad_priority",
            f"priority {_shown(node)} is not one of {', '.join(PRIORITIES)}{hint}",
            node.location,
        )
        return None


_NAME_RULE = (
    "is not a dotted OTel name: lower-case words of [a-z0-9_] separated by dots, "
    "starting with a letter, at most 255 characters"
)


def _top(document: Document) -> Location:
    return Location(document.path, 1)


def _shown(node: Node) -> str:
    """A node's value as YAML-ish text for a message."""
    value = node.value
    if isinstance(value, list):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_shown(item)}" for key, item in value.items()) + "}"
    return repr(value)
