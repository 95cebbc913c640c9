"""Reading catalog YAML into plain values that remember the line each one is on.

The YAML is composed into nodes (``yaml.compose`` with the safe loader) rather than loaded, so
every mapping, sequence and scalar keeps its start mark: a finding can name ``file:line``.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import TypeAlias

import yaml

from telemetry_otel.catalog._model import CatalogError, Finding, Location

__all__ = ["CatalogSource", "Document", "Node", "Scalar", "read_documents"]

#: A catalog file or directory: a path or an ``importlib.resources`` traversable.
CatalogSource: TypeAlias = str | os.PathLike[str] | Traversable
Scalar: TypeAlias = str | int | float | bool | None
_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Node:
    """A YAML value with its location: a scalar, a list of nodes or a map of string keys to nodes.

    In a map, each value's location is the line of its key, so a finding about a field points at
    the field's own line.
    """

    value: Scalar | list[Node] | dict[str, Node]
    location: Location

    @property
    def mapping(self) -> dict[str, Node] | None:
        """The map, when this node is one."""
        return self.value if isinstance(self.value, dict) else None

    @property
    def sequence(self) -> list[Node] | None:
        """The list, when this node is one."""
        return self.value if isinstance(self.value, list) else None

    @property
    def text(self) -> str | None:
        """The string, when this node is one."""
        return self.value if isinstance(self.value, str) else None


@dataclass
class Document:
    """One catalog file: its root node (None when empty) and the findings reading it raised."""

    path: str
    root: Node | None
    findings: list[Finding] = field(default_factory=list)


def read_documents(source: CatalogSource) -> list[Document]:
    """Every catalog file of ``source`` (a file, or a directory searched for ``*.yaml``/``*.yml``).

    A missing or unreadable file, text that is not UTF-8, YAML that does not parse or a directory
    without catalog files is a :class:`CatalogError` whose message names the file (and line).
    """
    return [_document(path, text) for path, text in _files(source)]


def _files(source: CatalogSource) -> list[tuple[str, str]]:
    entry: pathlib.Path | Traversable = (
        pathlib.Path(source) if isinstance(source, str | os.PathLike) else source
    )
    shown = os.fspath(entry) if isinstance(entry, pathlib.Path) else str(entry)
    try:
        if entry.is_dir():
            found = sorted(_walk(entry), key=str)
            if not found:
                raise CatalogError(f"{shown}: no catalog files (*.yaml, *.yml) in this directory")
            return [(_shown(item), _read(item)) for item in found]
        if not entry.is_file():
            raise CatalogError(f"{shown}: no such catalog file or directory")
        return [(shown, _read(entry))]
    except OSError as exc:
        raise CatalogError(f"cannot read {shown}: {exc.strerror or exc}") from None


def _walk(folder: pathlib.Path | Traversable) -> Iterator[pathlib.Path | Traversable]:
    for item in folder.iterdir():
        if item.is_dir():
            yield from _walk(item)
        elif item.name.endswith(_SUFFIXES):
            yield item


def _shown(item: pathlib.Path | Traversable) -> str:
    return os.fspath(item) if isinstance(item, pathlib.Path) else str(item)


def _read(item: pathlib.Path | Traversable) -> str:
    try:
        return item.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{_shown(item)}: not UTF-8 text (byte {exc.start})") from None


def _document(path: str, text: str) -> Document:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = " ".join(part for part in (exc.context, exc.problem) if part)
        raise CatalogError(f"{where}: invalid YAML: {problem or exc}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: invalid YAML: {exc}") from None
    document = Document(path, None)
    if root is not None:
        document.root = _Converter(path, document.findings).convert(root, None)
    return document


class _Converter:
    """Turns composed YAML nodes into :class:`Node` values, noting duplicate keys as findings."""

    def __init__(self, path: str, findings: list[Finding]) -> None:
        self._path = path
        self._findings = findings
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()

    def convert(self, node: yaml.Node, line: int | None) -> Node:
        location = Location(self._path, line if line is not None else node.start_mark.line + 1)
        if id(node) in self._active:
            raise CatalogError(f"{location}: invalid YAML: an alias refers to a node that contains it")
        self._active.add(id(node))
        try:
            return Node(self._value(node), location)
        finally:
            self._active.discard(id(node))

    def _value(self, node: yaml.Node) -> Scalar | list[Node] | dict[str, Node]:
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, None) for item in node.value]
        if isinstance(node, yaml.MappingNode):
            mapping: dict[str, Node] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node)
                line = key_node.start_mark.line + 1
                if key in mapping:
                    first = mapping[key].location.line
                    self._findings.append(
                        Finding(
                            "duplicate_key",
                            f"key {key!r} is repeated (first at line {first}); YAML keeps only the last",
                            Location(self._path, line),
                        )
                    )
                mapping[key] = self.convert(value_node, line)
            return mapping
        return self._scalar(node)

    def _key(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.ScalarNode):
            value = self._scalar(node)
            return value if isinstance(value, str) else str(value)
        location = Location(self._path, node.start_mark.line + 1)
        raise CatalogError(f"{location}: invalid YAML: a map key must be a plain value, not a list or map")

    def _scalar(self, node: yaml.Node) -> Scalar:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            location = Location(self._path, node.start_mark.line + 1)
            raise CatalogError(f"{location}: invalid YAML: {exc}") from None
        if value is None or isinstance(value, str | int | float | bool):
            return value
        # Timestamps, binary and the like: kept as their text, which no rule accepts.
        return str(value)
