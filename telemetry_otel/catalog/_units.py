"""Unit check: the case-sensitive UCUM syntax over a subset of its atoms, as OTel asks for units.

Accepted: ``1``; annotations ``{request}`` (printable ASCII without braces or spaces), alone or
after a unit (``By{compressed}``); atoms with an optional metric (``k``, ``m``, ``u``...) or binary
(``Ki``, ``Mi``...) prefix when the atom takes one; integer exponents (``m2``, ``s-1``); products
``.`` and quotients ``/`` (``By/s``, ``/s``, ``{request}/s``); parentheses (``m/(s.s)``).
"""

from __future__ import annotations

import re
from typing import NoReturn

__all__ = ["METRIC_ATOMS", "OTHER_ATOMS", "PREFIXES", "unit_problem"]

#: Atoms that take a prefix (``ms``, ``KiBy``, ``kW``).
METRIC_ATOMS = frozenset(
    {
        "s", "g", "m", "l", "L", "By", "bit", "Bd", "Hz", "N", "Pa", "J", "W", "A", "V", "C", "Ohm",
        "S", "F", "T", "Wb", "H", "K", "mol", "cd", "lm", "lx", "Bq", "Gy", "Sv", "sr", "eV", "bar",
        "t", "cal", "rad",
    }
)  # fmt: skip
#: Atoms that take no prefix.
OTHER_ATOMS = frozenset({"min", "h", "d", "wk", "mo", "a", "%", "Cel", "deg", "'", "''"})
#: Decimal and binary prefixes.
PREFIXES = frozenset(
    {
        "Y", "Z", "E", "P", "T", "G", "M", "k", "h", "da", "d", "c", "m", "u", "n", "p", "f", "a",
        "z", "y", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi",
    }
)  # fmt: skip
_ANNOTATION = re.compile(r"\{[!-z|~]+\}")  # printable ASCII without space, '{' and '}'
_SYMBOL = re.compile(r"[A-Za-z%']+")
_EXPONENT = re.compile(r"[+-]?[0-9]+")
_FACTOR = re.compile(r"[0-9]+")


def unit_problem(unit: str) -> str | None:
    """None when ``unit`` is a UCUM unit this check knows, otherwise what is wrong with it."""
    if not unit:
        return "the unit is empty (use 1 for a dimensionless number)"
    if unit != unit.strip() or " " in unit:
        return f"unit {unit!r} contains spaces"
    parser = _Parser(unit)
    try:
        parser.unit(top=True)
        if parser.pos != len(unit):
            parser.fail(f"unexpected {unit[parser.pos]!r}")
    except _InvalidUnitError as exc:
        return f"unit {unit!r} is not UCUM: {exc}"
    return None


class _InvalidUnitError(Exception):
    pass


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> NoReturn:
        raise _InvalidUnitError(f"{problem} at position {self.pos + 1}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def unit(self, *, top: bool = False) -> None:
        if top and self.peek() == "/":
            self.pos += 1
        self.term()
        while self.peek() in (".", "/"):
            self.pos += 1
            self.term()

    def term(self) -> None:
        char = self.peek()
        if char == "(":
            self.pos += 1
            self.unit()
            if self.peek() != ")":
                self.fail("missing ')'")
            self.pos += 1
            self.exponent()
        elif char == "{":
            self.annotation()
            return
        elif char.isdigit():
            factor = _FACTOR.match(self.text, self.pos)
            self.pos = factor.end() if factor is not None else self.pos + 1
        else:
            match = _SYMBOL.match(self.text, self.pos)
            if match is None:
                self.fail(f"expected a unit, found {char!r}" if char else "expected a unit at the end")
            symbol = match.group()
            if not _known(symbol):
                self.fail(f"unknown unit {symbol!r}")
            self.pos = match.end()
            self.exponent()
        if self.peek() == "{":
            self.annotation()

    def exponent(self) -> None:
        match = _EXPONENT.match(self.text, self.pos)
        if match is not None:
            self.pos = match.end()

    def annotation(self) -> None:
        match = _ANNOTATION.match(self.text, self.pos)
        if match is None:
            self.fail("an annotation is '{' printable characters (no spaces, no braces) '}'")
        self.pos = match.end()


def _known(symbol: str) -> bool:
    if symbol in METRIC_ATOMS or symbol in OTHER_ATOMS:
        return True
    return any(symbol.startswith(prefix) and symbol[len(prefix) :] in METRIC_ATOMS for prefix in PREFIXES)
