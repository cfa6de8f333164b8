"""Disclosure control: complementary suppression (rule D2) and the audit before publishing (rule D5).

A value is *sensitive* when it rests on fewer than `min_cell_size` respondents' answers: an attribute
score with `0 < n_ratings < min_cell_size`, a composite with `0 < n_evaluations < min_cell_size`. Primary
suppression (D1, in `sql/attribute_scores.sql` and `sql/composite_scores.sql`) leaves those rows out;
this module makes sure no published combination gives one back. The attacker knows every count and the
exact relations, per CRO (they never mix CROs, so every system here is one CRO's):
- R1, segments add up, per attribute: `sum(overall) = sum(big) + sum(small)`, where `sum = score x n`;
- R2, a composite is the mean of its category's rated attribute scores, per (segment, category):
  `composite x k = sum of score(a)`, i.e. `sum over a of sum(a) / n(a)`.
The unknowns are the attribute sums of the rows not published (their counts are known). A linear
function of the sums (a sensitive cell, or a sensitive composite's `sum of sum(a)/n(a)`) is *exactly
determined* when it lies in the span of the relations restricted to the unknowns (published values are
constants); the test is exact, in rational arithmetic (`fractions.Fraction`).

Contract:
- `Inventory.from_tables(attribute_counts, composite_counts, category_rows)`: every
  cell with at least one rating and every composite with at least one evaluation, with its count (the
  attacker's knowledge), per CRO; built from `int_attribute_scores` and `int_composite_scores`.
- `plan(inventory, min_cell_size)` -> `Plan`: which attribute rows and composites to withhold, by rule
  (D1 primary, D2 complementary), deterministic (same inventory, same plan), and the values no
  choice could protect (`unprotectable`; the audit then fails the run).
- `audit(inventory, min_cell_size, published)` -> the findings (`Finding`), empty when the tables about
  to be published reveal nothing: D1 (no small row published), D2 (no sensitive value determined by
  what is published), D3 (intervals only on eligible rows). The report and the artifacts are rendered
  from these same tables and nothing else (D4).

How D2 chooses (docs/method.md, "Disclosure control"): per CRO, first the composites. Composites are
withheld only where no choice of attribute rows protects a value: that is, where the value is
determined even with every attribute row withheld. Eligible composites are never withheld (the awards,
their cells' weighted means and the uncertainty figures of their cells rest on them); among the others
the greedy
takes the one that leaves the fewest values determined, then the thinnest. Then the attribute rows:
while some sensitive value is determined, withhold the row, among those related to a determined value
(same attribute in another segment, or same composite), that leaves the fewest values determined,
ties to the thinnest (fewest ratings) and then the key order. Last, a pruning pass puts each withheld
row back, thickest first, wherever the publication stays safe without it. So every withheld row is
needed (taking any one back reveals a value).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pyarrow as pa

from cro_awards import uncertainty

OVERALL = "overall"
PARTS = ("big_pharma", "small_pharma")
SEGMENT_ORDER = {"big_pharma": 0, "small_pharma": 1, OVERALL: 2}

Cell = tuple[str, str]
"""An attribute score of one CRO: (segment, attribute)."""
Composite = tuple[str, str]
"""A composite of one CRO: (segment, category)."""
Vector = dict[Cell, Fraction]


def _cell_order(cell: Cell) -> tuple[int, str]:
    return SEGMENT_ORDER[cell[0]], cell[1]


MODULUS = 2**61 - 1
"""A prime: the greedy search works modulo it (fast), and every plan is then checked exactly."""


@functools.lru_cache(maxsize=65_536)
def modular(value: Fraction) -> int:
    """`value` as an element of the integers modulo MODULUS."""
    return value.numerator * pow(value.denominator, -1, MODULUS) % MODULUS


def _subtract(target: dict, row: Mapping, factor: Any, modulus: int | None) -> None:
    """target -= factor x row, in place (modulo `modulus` when given), dropping the entries that vanish."""
    for key, value in row.items():
        updated = target.get(key, 0) - factor * value
        if modulus:
            updated %= modulus
        if updated:
            target[key] = updated
        else:
            target.pop(key, None)


def _scaled(vector: Mapping, factor: Any, modulus: int | None) -> dict:
    return (
        {key: value * factor % modulus for key, value in vector.items()}
        if modulus
        else {key: value * factor for key, value in vector.items()}
    )


def _inverse(value: Any, modulus: int | None) -> Any:
    return pow(value, -1, modulus) if modulus else 1 / value


class Span:
    """The span of some vectors, kept in echelon form: over the rationals (exact), or over the integers
    modulo `modulus` (vectors of ints from `modular`: the same answers but in rare accidents, and much
    faster; only the search uses it, what is published is checked exactly).

    `add(v)` puts `v` in (False when it was already in the span); `contains(v)` is the membership test.
    Each stored row has a pivot no later row holds, so reducing against the rows in order leaves no pivot.
    """

    def __init__(self, modulus: int | None = None) -> None:
        self.modulus = modulus
        self._rows: list[tuple[Cell, dict]] = []

    def reduce(self, vector: Mapping[Cell, Any]) -> dict[Cell, Any]:
        remainder = dict(vector)
        for pivot, row in self._rows:
            factor = remainder.get(pivot)
            if factor:
                _subtract(remainder, row, factor, self.modulus)
        return remainder

    def add(self, vector: Mapping[Cell, Any]) -> bool:
        remainder = self.reduce(vector)
        if not remainder:
            return False
        pivot = min(remainder, key=_cell_order)
        self._rows.append((pivot, _scaled(remainder, _inverse(remainder[pivot], self.modulus), self.modulus)))
        return True

    def contains(self, vector: Mapping[Cell, Any]) -> bool:
        return not self.reduce(vector)


@dataclass(frozen=True)
class CroCells:
    """One CRO's cells and composites (with counts) and the relations between them."""

    cro: str
    n_ratings: Mapping[Cell, int]
    n_evaluations: Mapping[Composite, int]
    members: Mapping[Composite, tuple[Cell, ...]]
    """The rated attribute cells of each composite (those the mean is over), in key order."""
    eligible: frozenset[Composite]
    """Composites with at least min_evaluations evaluations: published whatever the composite table holds,
    so never withheld. An award row shows one; its cell's weighted mean and SD (awards), and the cell's
    mean and spread behind every other CRO's shrunk composite, rest on all of them, so with the others
    published, withholding one would not hide it."""

    def r1(self) -> list[Vector]:
        """Per attribute rated overall: sum(overall) - sum(big) - sum(small) = 0 (absent segments are 0)."""
        relations = []
        for segment, attribute in self.n_ratings:
            if segment == OVERALL:
                relation = {(OVERALL, attribute): Fraction(1)}
                for part in PARTS:
                    if (part, attribute) in self.n_ratings:
                        relation[(part, attribute)] = Fraction(-1)
                relations.append(relation)
        return relations

    def r2(self, composite: Composite) -> Vector:
        """The composite as a function of the sums, up to its factor 1/k: sum over a of sum(a) / n(a)."""
        return {cell: Fraction(1, self.n_ratings[cell]) for cell in self.members[composite]}

    def sensitive(self, min_cell_size: int) -> list[tuple[str, Any, Vector]]:
        """Every sensitive value as ("attribute", cell, vector) or ("composite", composite, vector)."""
        values: list[tuple[str, Any, Vector]] = [
            ("attribute", cell, {cell: Fraction(1)})
            for cell in sorted(self.n_ratings, key=_cell_order)
            if self.n_ratings[cell] < min_cell_size
        ]
        values += [
            ("composite", composite, self.r2(composite))
            for composite in sorted(self.n_evaluations, key=_cell_order)
            if self.n_evaluations[composite] < min_cell_size
        ]
        return values


class Solver:
    """Which values a fixed set of relations determines, for changing sets of withheld cells.

    The relations restricted to the withheld cells split into components (cells linked by a relation);
    a value is determined when each component's part of it lies in that component's span. Spans and
    answers are cached by component, so trying one more withheld cell (`count_if_withheld`) looks only
    at the component that cell joins and the values touching it.
    """

    def __init__(self, relations: Iterable[Vector], values: Iterable[Vector], *, exact: bool = True) -> None:
        convert = (lambda v: v) if exact else modular
        self._modulus = None if exact else MODULUS
        self.relations = [{cell: convert(value) for cell, value in r.items()} for r in relations]
        self.values = [{cell: convert(value) for cell, value in v.items()} for v in values]
        self._touching: dict[Cell, list[int]] = {}
        for index, relation in enumerate(self.relations):
            for cell in relation:
                self._touching.setdefault(cell, []).append(index)
        self._neighbours = {
            cell: frozenset(other for i in indices for other in self.relations[i])
            for cell, indices in self._touching.items()
        }
        self._values_of: dict[Cell, list[int]] = {}
        for index, vector in enumerate(self.values):
            for cell in vector:
                self._values_of.setdefault(cell, []).append(index)
        self._spans: dict[frozenset[Cell], Span] = {}
        self._answers: dict[tuple[frozenset[Cell], int], bool] = {}
        self._analyses: dict[frozenset[Cell], tuple[list[tuple[Cell, dict, dict]], list[dict]]] = {}
        self._lambdas: dict[tuple[frozenset[Cell], int], dict] = {}
        self._unknown: set[Cell] = set()
        self._component_of: dict[Cell, frozenset[Cell]] = {}
        self.flags: list[bool] = []

    def _component(self, start: Cell, unknown: set[Cell]) -> frozenset[Cell]:
        found, frontier = {start}, [start]
        while frontier:
            for other in self._neighbours.get(frontier.pop(), frozenset()) & unknown:
                if other not in found:
                    found.add(other)
                    frontier.append(other)
        return frozenset(found)

    def _span(self, component: frozenset[Cell]) -> Span:
        span = self._spans.get(component)
        if span is None:
            span = Span(self._modulus)
            for index in sorted({i for cell in component for i in self._touching.get(cell, ())}):
                span.add({cell: value for cell, value in self.relations[index].items() if cell in component})
            self._spans[component] = span
        return span

    def _determined(self, index: int, unknown: set[Cell], component_of: Mapping[Cell, frozenset[Cell]]) -> bool:
        parts: dict[frozenset[Cell], Vector] = {}
        for cell, value in self.values[index].items():
            if cell in unknown:
                parts.setdefault(component_of[cell], {})[cell] = value
        for component, part in parts.items():
            key = (component, index)
            answer = self._answers.get(key)
            if answer is None:
                answer = self._answers[key] = self._span(component).contains(part)
            if not answer:
                return False
        return True

    def set_withheld(self, withheld: Iterable[Cell]) -> list[bool]:
        """Withhold exactly these cells; return, for each value, whether it is determined."""
        self._unknown = set(withheld)
        self._component_of = {}
        for start in sorted(self._unknown, key=_cell_order):
            if start not in self._component_of:
                component = self._component(start, self._unknown)
                self._component_of.update(dict.fromkeys(component, component))
        self.flags = [self._determined(i, self._unknown, self._component_of) for i in range(len(self.values))]
        return self.flags

    def _merged(self, cell: Cell) -> frozenset[Cell]:
        """The component `cell` would form, were it withheld too."""
        merged = {cell}
        for other in self._neighbours.get(cell, frozenset()) & self._unknown:
            merged |= self._component_of[other]
        return frozenset(merged)

    def count_if_withheld(self, cell: Cell) -> int:
        """How many values would be determined were `cell` withheld too (the state is left as it is)."""
        return sum(self.flags) - len(self._freed_by(cell))

    def withhold(self, cell: Cell) -> list[bool]:
        """Withhold `cell` too; return, for each value, whether it is determined."""
        for i in self._freed_by(cell):
            self.flags[i] = False
        merged = self._merged(cell)
        self._unknown.add(cell)
        self._component_of.update(dict.fromkeys(merged, merged))
        return self.flags

    def _freed_by(self, cell: Cell) -> list[int]:
        """The determined values that withholding `cell` too would free.

        With A the relations restricted to the withheld cells and a the column `cell` would add: a new
        solution of the relations moves `cell` only if A y = -a has a solution (a in A's column space:
        every row combination that vanishes on A vanishes on a, and no relation has `cell` as its only
        unknown); it then frees a determined value f = lambda A exactly when lambda . a != 0 (f . y =
        -lambda . a, the same for every lambda when a is in the column space). Withholding more never
        determines a free value (a witness extends by zero), so nothing else changes."""
        column = {index: self.relations[index][cell] for index in self._touching.get(cell, ())}
        components = {self._component_of[other] for other in self._neighbours.get(cell, frozenset()) & self._unknown}
        reached = set().union(*components) if components else set()
        for index in column:
            if not any(other in reached for other in self.relations[index] if other != cell):
                return []  # this relation has `cell` as its only unknown: it stays determined
        for component in components:
            for combination in self._analysis(component)[1]:
                if self._norm(sum(factor * column.get(row, 0) for row, factor in combination.items())):
                    return []
        freed = []
        for i in sorted({i for member in reached for i in self._values_of.get(member, ()) if self.flags[i]}):
            weight = 0
            for component in components:
                multipliers = self._multipliers(component, i)
                weight += sum(factor * column.get(row, 0) for row, factor in multipliers.items())
            if self._norm(weight):
                freed.append(i)
        return freed

    def _norm(self, value: Any) -> Any:
        return value % self._modulus if self._modulus else value

    def _reduce_tracked(
        self, basis: list[tuple[Cell, dict, dict]], vector: dict, combination: dict, sign: int
    ) -> tuple[dict, dict]:
        """Reduce `vector` by the basis rows, adding `sign` x each row's combination to `combination`."""
        for pivot, row, row_combination in basis:
            factor = vector.get(pivot)
            if factor:
                _subtract(vector, row, factor, self._modulus)
                _subtract(combination, row_combination, -sign * factor, self._modulus)
        return vector, combination

    def _analysis(self, component: frozenset[Cell]) -> tuple[list[tuple[Cell, dict, dict]], list[dict]]:
        """The component's relations in echelon form, each row with the combination of relations it is
        (by relation index), and the combinations that vanish (a basis of the left null space)."""
        found = self._analyses.get(component)
        if found is None:
            basis: list[tuple[Cell, dict, dict]] = []
            vanishing: list[dict] = []
            for index in sorted({i for cell in component for i in self._touching.get(cell, ())}):
                vector = {cell: value for cell, value in self.relations[index].items() if cell in component}
                vector, combination = self._reduce_tracked(basis, vector, {index: 1}, -1)
                if not vector:
                    vanishing.append(combination)
                    continue
                pivot = min(vector, key=_cell_order)
                inverse = _inverse(vector[pivot], self._modulus)
                basis.append(
                    (pivot, _scaled(vector, inverse, self._modulus), _scaled(combination, inverse, self._modulus))
                )
            found = self._analyses[component] = (basis, vanishing)
        return found

    def _multipliers(self, component: frozenset[Cell], index: int) -> dict:
        """Relation multipliers lambda with (value's part in the component) = lambda . relations."""
        key = (component, index)
        found = self._lambdas.get(key)
        if found is None:
            part = {cell: value for cell, value in self.values[index].items() if cell in component}
            remainder, found = self._reduce_tracked(self._analysis(component)[0], part, {}, 1)
            if remainder:
                raise AssertionError("a determined value's part is outside its component's span (a bug)")
            self._lambdas[key] = found
        return found

    def _released(self, cell: Cell) -> tuple[set[Cell], dict[Cell, frozenset[Cell]], list[int], list[bool]]:
        """Were withheld `cell` published: the unknowns, the new components of its old component's other
        cells, and the values touching it with their new flags."""
        component = self._component_of[cell]
        unknown = self._unknown - {cell}
        local: dict[Cell, frozenset[Cell]] = {}
        for start in sorted(component - {cell}, key=_cell_order):
            if start not in local:
                part = self._component(start, unknown)
                local.update(dict.fromkeys(part, part))
        lookup = _Overlay(self._component_of, local)
        affected = sorted({i for member in component for i in self._values_of.get(member, ())})
        return unknown, local, affected, [self._determined(i, unknown, lookup) for i in affected]

    def count_if_released(self, cell: Cell) -> int:
        """How many values would be determined were withheld `cell` published (the state is left as it is)."""
        _, _, affected, flags = self._released(cell)
        return sum(self.flags) + sum(int(new) - self.flags[i] for i, new in zip(affected, flags, strict=True))

    def release(self, cell: Cell) -> list[bool]:
        """Publish withheld `cell`; return, for each value, whether it is determined."""
        unknown, local, affected, flags = self._released(cell)
        self._unknown = unknown
        del self._component_of[cell]
        self._component_of.update(local)
        for i, new in zip(affected, flags, strict=True):
            self.flags[i] = new
        return self.flags


class _Overlay(Mapping[Cell, frozenset[Cell]]):
    """Components after a change: `local`'s for its cells, the old ones elsewhere."""

    def __init__(self, base: Mapping[Cell, frozenset[Cell]], local: Mapping[Cell, frozenset[Cell]]) -> None:
        self._base, self._local = base, local

    def __getitem__(self, cell: Cell) -> frozenset[Cell]:
        found = self._local.get(cell)
        return found if found is not None else self._base[cell]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def determined(values: Iterable[Vector], withheld: Iterable[Cell], relations: Iterable[Vector]) -> list[bool]:
    """For each value (a vector over the sums), whether the relations determine it once every cell not
    in `withheld` is known (one-off; `Solver` for many questions on the same relations)."""
    return Solver(relations, values).set_withheld(withheld)


@dataclass(frozen=True)
class Inventory:
    """Every CRO's cells, from the tables before suppression (module contract)."""

    cros: tuple[CroCells, ...]

    @classmethod
    def from_tables(
        cls,
        attribute_counts: pa.Table,
        composite_counts: pa.Table,
        category_rows: Iterable[tuple[str, str]],
    ) -> Inventory:
        """`attribute_counts`: segment, cro, attribute, n_ratings; `composite_counts`: segment, cro,
        category, n_evaluations, is_eligible (`int_attribute_scores`, `int_composite_scores`)."""
        attributes_of: dict[str, list[str]] = {}
        for category, attribute in category_rows:
            attributes_of.setdefault(category, []).append(attribute)
        ratings: dict[str, dict[Cell, int]] = {}
        for row in attribute_counts.select(["segment", "cro", "attribute", "n_ratings"]).to_pylist():
            ratings.setdefault(row["cro"], {})[(row["segment"], row["attribute"])] = row["n_ratings"]
        evaluations: dict[str, dict[Composite, int]] = {}
        eligible: set[tuple[str, Composite]] = set()
        for row in composite_counts.select(["segment", "cro", "category", "n_evaluations", "is_eligible"]).to_pylist():
            composite = (row["segment"], row["category"])
            evaluations.setdefault(row["cro"], {})[composite] = row["n_evaluations"]
            if row["is_eligible"]:
                eligible.add((row["cro"], composite))
        cros = []
        for cro in sorted(set(ratings) | set(evaluations)):
            n_ratings = ratings.get(cro, {})
            n_evaluations = evaluations.get(cro, {})
            members = {
                (segment, category): tuple(
                    sorted(
                        ((segment, a) for a in set(attributes_of.get(category, ())) if (segment, a) in n_ratings),
                        key=_cell_order,
                    )
                )
                for segment, category in n_evaluations
            }
            mine = frozenset(composite for composite in n_evaluations if (cro, composite) in eligible)
            cros.append(CroCells(cro, n_ratings, n_evaluations, members, mine))
        return cls(tuple(cros))


@dataclass
class CroPlan:
    """What to withhold of one CRO, by rule."""

    cro: str
    primary_cells: list[Cell] = field(default_factory=list)
    complementary_cells: list[Cell] = field(default_factory=list)
    primary_composites: list[Composite] = field(default_factory=list)
    complementary_composites: list[Composite] = field(default_factory=list)
    unprotectable: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    """The suppression plan of a publication (module contract)."""

    cros: tuple[CroPlan, ...]
    seconds: float = 0.0
    """How long planning took."""

    def withheld_attribute_scores(self) -> pa.Table:
        """The attribute rows D2 withholds: segment, cro, attribute (the source `withheld_attribute_scores`)."""
        rows = [(s, p.cro, a) for p in self.cros for s, a in p.complementary_cells]
        return pa.table(
            {name: [row[i] for row in rows] for i, name in enumerate(("segment", "cro", "attribute"))},
            schema=pa.schema([("segment", pa.string()), ("cro", pa.string()), ("attribute", pa.string())]),
        )

    def withheld_composite_scores(self) -> pa.Table:
        """The composite rows D2 withholds: segment, cro, category (the source `withheld_composite_scores`)."""
        rows = [(s, p.cro, c) for p in self.cros for s, c in p.complementary_composites]
        return pa.table(
            {name: [row[i] for row in rows] for i, name in enumerate(("segment", "cro", "category"))},
            schema=pa.schema([("segment", pa.string()), ("cro", pa.string()), ("category", pa.string())]),
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows withheld by each rule (D6), for the manifest."""
        return {
            "attribute_scores": {
                "primary": sum(len(p.primary_cells) for p in self.cros),
                "complementary": sum(len(p.complementary_cells) for p in self.cros),
            },
            "composite_scores": {
                "primary": sum(len(p.primary_composites) for p in self.cros),
                "complementary": sum(len(p.complementary_composites) for p in self.cros),
            },
        }

    def unprotectable(self) -> list[tuple[str, str, Any]]:
        return [(p.cro, kind, key) for p in self.cros for kind, key in p.unprotectable]


def plan_cro(cells: CroCells, min_cell_size: int) -> CroPlan:
    """The suppression of one CRO (module docstring, "How D2 chooses").

    The search works modulo a prime (`Span(MODULUS)`, fast); its plan is then checked in exact arithmetic,
    and searched again exactly should the check disagree (or should some value be unprotectable)."""
    result = _search(cells, min_cell_size, exact=False)
    if result.unprotectable or _exact_breaches(cells, min_cell_size, result):
        result = _search(cells, min_cell_size, exact=True)
    return result


def _exact_breaches(cells: CroCells, min_cell_size: int, plan: CroPlan) -> list[tuple[str, Any]]:
    """The sensitive values the plan leaves determined, in exact arithmetic."""
    withheld_composites = {*plan.primary_composites, *plan.complementary_composites}
    known = [c for c in cells.n_evaluations if c not in withheld_composites]
    return _revealed(cells, min_cell_size, {*plan.primary_cells, *plan.complementary_cells}, known)


def _revealed(
    cells: CroCells, min_cell_size: int, withheld: Iterable[Cell], known: Iterable[Composite]
) -> list[tuple[str, Any]]:
    """The sensitive values, as (kind, key), that R1 and the R2 of the `known` composites determine once
    every cell but the `withheld` ones is known: exactly (rational arithmetic)."""
    sensitive = cells.sensitive(min_cell_size)
    relations = cells.r1() + [cells.r2(c) for c in sorted(known, key=_cell_order)]
    flags = determined([vector for _, _, vector in sensitive], withheld, relations)
    return [(kind, key) for (kind, key, _), flag in zip(sensitive, flags, strict=True) if flag]


def _search(cells: CroCells, min_cell_size: int, *, exact: bool) -> CroPlan:
    result = CroPlan(cells.cro)
    sensitive = cells.sensitive(min_cell_size)
    result.primary_cells = [
        cell for cell in sorted(cells.n_ratings, key=_cell_order) if cells.n_ratings[cell] < min_cell_size
    ]
    result.primary_composites = [
        c for c in sorted(cells.n_evaluations, key=_cell_order) if cells.n_evaluations[c] < min_cell_size
    ]
    if not sensitive:
        return result
    r1 = cells.r1()
    published = [c for c in sorted(cells.n_evaluations, key=_cell_order) if c not in result.primary_composites]
    # Composites, only where withholding every attribute row would not do.
    values = [vector for _, _, vector in sensitive]
    withheld_composites, flags = _withhold_composites(cells, r1, values, published, exact=exact)
    published = [c for c in published if c not in withheld_composites]
    result.complementary_composites = withheld_composites
    result.unprotectable = [(kind, key) for (kind, key, _), flag in zip(sensitive, flags, strict=True) if flag]
    values = [vector for vector, flag in zip(values, flags, strict=True) if not flag]
    # Attribute rows: the greedy and the pruning pass.
    solver = Solver(r1 + [cells.r2(c) for c in published], values, exact=exact)
    withheld = _withhold(solver, set(result.primary_cells), cells)
    result.complementary_cells = sorted(withheld - set(result.primary_cells), key=_cell_order)
    return result


def _withhold_composites(
    cells: CroCells, r1: list[Vector], values: list[Vector], published: list[Composite], *, exact: bool
) -> tuple[list[Composite], list[bool]]:
    """The composites to withhold (module docstring) and, for each value, whether it stays determined
    with every attribute row withheld (a value no choice protects)."""

    r2 = {c: cells.r2(c) for c in published}

    def flags_without(withheld: Iterable[Composite]) -> list[bool]:
        relations = r1 + [r2[c] for c in published if c not in withheld]
        return Solver(relations, values, exact=exact).set_withheld(cells.n_ratings)

    withheld: list[Composite] = []
    flags = flags_without(withheld)
    while any(flags):
        candidates = [c for c in published if c not in cells.eligible and c not in withheld]
        if not candidates:
            break
        now = sum(flags)
        counts = {c: sum(flags_without([*withheld, c])) for c in candidates}
        helpful = [c for c in candidates if counts[c] < now] or candidates
        chosen = min(helpful, key=lambda c: (counts[c], cells.n_evaluations[c], _cell_order(c)))
        withheld.append(chosen)
        flags = flags_without(withheld)
    floor = sum(flags)
    for composite in sorted(withheld, key=lambda c: (-cells.n_evaluations[c], _cell_order(c))):
        trial = [c for c in withheld if c != composite]
        if sum(flags_without(trial)) <= floor:
            withheld = trial
    return sorted(withheld, key=_cell_order), flags_without(withheld)


def _withhold(solver: Solver, withheld: set[Cell], cells: CroCells) -> set[Cell]:
    """From `withheld`, the greedy and the pruning pass of the attribute rows (module docstring)."""
    primary = set(withheld)
    values = solver.values
    flags = solver.set_withheld(withheld)
    while any(flags):
        near: set[Cell] = set()
        for vector, flag in zip(values, flags, strict=True):
            if flag:
                for relation in solver.relations:
                    if any(cell in relation for cell in vector):
                        near.update(relation)
        candidates = sorted(near - withheld, key=_cell_order) or sorted(
            set(cells.n_ratings) - withheld, key=_cell_order
        )
        chosen = min(
            candidates,
            key=lambda cell: (solver.count_if_withheld(cell), cells.n_ratings[cell], _cell_order(cell)),
        )
        withheld = withheld | {chosen}
        flags = solver.withhold(chosen)
    for cell in sorted(withheld - primary, key=lambda cell: (-cells.n_ratings[cell], _cell_order(cell))):
        if not solver.count_if_released(cell):
            withheld = withheld - {cell}
            solver.release(cell)
    return withheld


def plan(inventory: Inventory, min_cell_size: int) -> Plan:
    """The suppression plan (module contract)."""
    started = time.perf_counter()
    cros = tuple(plan_cro(cells, min_cell_size) for cells in inventory.cros)
    return Plan(cros, time.perf_counter() - started)


@dataclass(frozen=True)
class Finding:
    """One breach the audit found: which rule, which row, and why (counts only, never a value)."""

    rule: str
    table: str
    key: tuple[str, ...]
    detail: str

    def describe(self) -> str:
        return f"{self.rule}: {self.table} ({', '.join(self.key)}) {self.detail}"


def _keys(table: pa.Table, columns: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return set(zip(*(table[c].to_pylist() for c in columns), strict=True)) if table.num_rows else set()


def audit(inventory: Inventory, min_cell_size: int, published: Mapping[str, pa.Table]) -> list[Finding]:
    """The findings of D1, D2 and D3 on the tables about to be published (module contract).

    `published`: attribute_scores, composite_scores and awards as they will be written. What the
    attacker is given: every published row, every count (from `inventory`), and every composite the
    awards and the uncertainty figures publish (every eligible composite).
    """
    findings: list[Finding] = []
    attributes = published["attribute_scores"]
    composites = published["composite_scores"]
    for row in attributes.select(["segment", "cro", "attribute", "n_ratings"]).to_pylist():
        if row["n_ratings"] < min_cell_size:
            key = (row["segment"], row["cro"], row["attribute"])
            findings.append(Finding("D1", "attribute_scores", key, f"is published on {row['n_ratings']} ratings"))
    interval_columns = [c for c in uncertainty.COMPOSITE_FIGURES if c in composites.column_names]
    for row in composites.select(
        ["segment", "cro", "category", "n_evaluations", "is_eligible", *interval_columns]
    ).to_pylist():
        key = (row["segment"], row["cro"], row["category"])
        if row["n_evaluations"] < min_cell_size:
            findings.append(
                Finding("D1", "composite_scores", key, f"is published on {row['n_evaluations']} evaluations")
            )
        if not row["is_eligible"] and any(row[c] is not None for c in interval_columns):
            findings.append(
                Finding("D3", "composite_scores", key, "has an interval or other per-CRO figure but is not eligible")
            )
    shown_cells = _keys(attributes, ("cro", "segment", "attribute"))
    shown_composites = _keys(composites, ("cro", "segment", "category")) | _keys(
        published["awards"], ("cro", "segment", "category")
    )
    for cells in inventory.cros:
        withheld = [cell for cell in cells.n_ratings if (cells.cro, *cell) not in shown_cells]
        known = [c for c in cells.n_evaluations if (cells.cro, *c) in shown_composites or c in cells.eligible]
        for kind, key in _revealed(cells, min_cell_size, withheld, known):
            count = cells.n_ratings[key] if kind == "attribute" else cells.n_evaluations[key]
            unit = "ratings" if kind == "attribute" else "evaluations"
            findings.append(
                Finding(
                    "D2",
                    f"{kind}_scores",
                    (key[0], cells.cro, key[1]),
                    f"rests on {count} {unit} and is exactly determined by the published rows",
                )
            )
    return findings


def explain(findings: list[Finding], min_cell_size: int, unprotectable: Iterable[tuple[str, str, Any]] = ()) -> str:
    """The one-paragraph message of a failed audit: the first finding by name, how many more (no values).

    `unprotectable`: the plan's (cro, kind, key) that no choice of withheld rows protects; when every
    finding is one of them the message says what to change rather than calling it a bug."""
    first = findings[0]
    more = f" ({len(findings) - 1} more finding(s) in the log)" if len(findings) > 1 else ""
    expected = {(f"{kind}_scores", (key[0], cro, key[1])) for cro, kind, key in unprotectable}
    if all(f.rule == "D2" and (f.table, f.key) in expected for f in findings):
        return (
            f"Nothing was published: {first.describe()}{more}, through eligible composites, which are always "
            "published (the awards and their cells' figures rest on them), so no suppression can protect it. "
            "Raise min_evaluations so that composites this thin are not eligible (docs/method.md, "
            f'"Disclosure control"); min_cell_size ({min_cell_size}) is the protection respondents were promised.'
        )
    return (
        f"The disclosure audit stopped the run before anything was published: {first.describe()}{more}. "
        f"A value resting on fewer than min_cell_size ({min_cell_size}) answers must not be published or "
        "derivable; this is a bug in the suppression: report it with the run's log."
    )
