"""An independent disclosure attack on the published tables: which confidential values can be derived?

Written without reading the pipeline's suppression code (cro_awards/disclosure/audit.py): the point is a second,
separate statement of the threat model, checked against what the pipeline actually publishes.

The attacker holds the three published tables and knows every count, also of unpublished cells
(`counts`, as `tests/reference.py:cell_counts` computes them): n_ratings per (segment, cro, attribute) and
n_evaluations per (segment, cro, category). A value is *sensitive* when it rests on fewer than
`min_cell_size` answers: an attribute score with 0 < n_ratings < min_cell_size, a composite with
0 < n_evaluations < min_cell_size. The attacker uses two exact relations, per CRO:

- R1 segments add up, per attribute: sum(overall) = sum(big_pharma) + sum(small_pharma), where a cell's
  sum is score x n_ratings (a segment without ratings contributes nothing);
- R2 a composite is the mean of its attribute scores, per (segment, category):
  composite x k = sum of score(a) = sum of sum(a) / n(a) over the k attributes of the category rated in
  that cell. A composite is known when composite_scores or awards (whose rows carry it) publish it.

The unknowns are the withheld attribute cells' sums (their counts are known, so sums and scores are
interchangeable); published attribute rows are constants. A sensitive attribute cell is exactly
determined when its unit vector lies in the row space of the system's coefficients; a sensitive,
unpublished composite when its functional sum(a) / n(a) over its rated withheld attributes does (its
published attributes are constants). Whether a vector lies in the row space does not depend on the
constants, only on which cells are published, so the test is exact: rational arithmetic
(`fractions.Fraction`), the vector reduced against the reduced row echelon form of the whole system, which
is the same test as rank(system) == rank(system + vector) and covers every combination of R1 and R2 at
once. R1 and R2 never join two CROs, so the system is the per-CRO systems side by side (one elimination
over all of them gives the same answers). The constants (floats from the tables, exact as rationals) only
serve to report the derived value.

Optional, beyond the threat model above (`min_evaluations=`): R3, an awards cell's published weighted
mean, ties the composites of the cell's eligible CROs together, across CROs.

The integer attack (`integer_scale=`): rating sums are whole numbers within n x min .. n x max. Where the
linear algebra leaves a cell open, a mixed-integer search (scipy's `milp`) over the same relations and
bounds may still find exactly one sum that fits: the cell is then derived too (an attack that found 62 of
the 202 thin cells of the design before the countable-cells rule).

The method's rule (`countable_from=`): under the countable-cells rule, a cell of fewer than min_cell_size
ratings enters neither Overall nor a composite, and the attacker, who knows the counts, knows which.

Standard library only; a parquet file's path is read with pyarrow when given instead of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

SEGMENTS = ("big_pharma", "small_pharma", "overall")
PARTS = ("big_pharma", "small_pharma")
OVERALL = "overall"

Vector = dict[Any, Fraction]
"""A sparse row: {unknown: coefficient}, zero coefficients left out."""


@dataclass(frozen=True)
class Leak:
    """A sensitive value the attacker obtains: published outright, or derived through R1/R2."""

    kind: str  # "attribute" or "composite"
    segment: str
    cro: str
    name: str  # the attribute or the category
    n: int  # its n_ratings or n_evaluations
    how: str  # "published" or "derived"
    value: float | None  # the value obtained (from the tables' floats, so up to rounding)

    def describe(self) -> str:
        count = "n_ratings" if self.kind == "attribute" else "n_evaluations"
        value = "" if self.value is None else f" = {self.value:.6g}"
        return f"{self.how} {self.kind} ({self.segment}, {self.cro}, {self.name}) {count}={self.n}{value}"


# --- exact linear algebra ----------------------------------------------------------------------------


def _subtract(row: Vector, factor: Fraction, other: Vector) -> None:
    """row -= factor * other, in place, dropping coefficients that become zero."""
    for column, coefficient in other.items():
        value = row.get(column, Fraction(0)) - factor * coefficient
        if value:
            row[column] = value
        else:
            row.pop(column, None)


class RowSpace:
    """The reduced row echelon form of a system of equations (coefficients, constant), in exact arithmetic.

    `reduce(vector)` gives (remainder, constant): the remainder is empty exactly when the vector lies in
    the row space, and then `vector . x == constant` for every solution x of the system."""

    def __init__(self, equations: Iterable[tuple[Vector, Fraction]]) -> None:
        self.pivots: dict[Any, tuple[Vector, Fraction]] = {}  # pivot column -> (row, constant), pivot 1
        for coefficients, constant in equations:
            row, rhs = self._reduce(dict(coefficients), Fraction(constant))
            if not row:
                continue  # dependent on the rows so far (its constant is a consistency check, not used)
            pivot = min(row, key=repr)
            scale = row[pivot]
            row = {column: value / scale for column, value in row.items()}
            rhs /= scale
            for column, (other, other_rhs) in list(self.pivots.items()):  # keep the form fully reduced
                factor = other.get(pivot)
                if factor:
                    _subtract(other, factor, row)
                    self.pivots[column] = (other, other_rhs - factor * rhs)
            self.pivots[pivot] = (row, rhs)

    @property
    def rank(self) -> int:
        return len(self.pivots)

    def _reduce(self, row: Vector, rhs: Fraction) -> tuple[Vector, Fraction]:
        for pivot, (other, other_rhs) in self.pivots.items():
            factor = row.get(pivot)
            if factor:
                _subtract(row, factor, other)
                rhs -= factor * other_rhs
        return row, rhs

    def reduce(self, vector: Vector) -> tuple[Vector, Fraction]:
        """(remainder, constant) of `vector`: see the class docstring. The constant is the negated sum of
        the multiples of the constants subtracted, so vector . x = -constant when the remainder is empty."""
        return self._reduce(dict(vector), Fraction(0))

    def determines(self, vector: Vector) -> bool:
        return not self.reduce(vector)[0]

    def value(self, vector: Vector) -> Fraction | None:
        """vector . x for every solution x, when the system determines it; else None."""
        remainder, constant = self.reduce(vector)
        return None if remainder else -constant


def rank(rows: Iterable[Vector]) -> int:
    """The rank of a set of sparse rows, by plain Gaussian elimination over the rationals."""
    return RowSpace((row, Fraction(0)) for row in rows).rank


# --- reading the tables --------------------------------------------------------------------------------


def _rows(table: Any) -> list[dict]:
    if isinstance(table, (str, Path)):
        import pyarrow.parquet as pq

        return pq.read_table(table).to_pylist()
    if hasattr(table, "to_pylist"):
        return table.to_pylist()
    return list(table)


def _exact(value: float) -> Fraction:
    return Fraction(value)  # a double is a rational: exactly the published number


# --- the attack -------------------------------------------------------------------------------------


def derivable(
    published_tables: Mapping[str, Any],
    counts: Mapping[str, Mapping[tuple[str, str, str], int]],
    categories: Mapping[str, Iterable[str]],
    min_cell_size: int,
    *,
    min_evaluations: int | None = None,
    countable_from: int = 1,
    integer_scale: tuple[int, int] | None = None,
) -> list[Leak]:
    """Every sensitive value the attacker obtains from `published_tables` (attribute_scores,
    composite_scores, awards: lists of row dicts, Arrow tables or parquet paths) knowing `counts`
    ({"n_ratings": {(segment, cro, attribute): n}, "n_evaluations": {(segment, cro, category): n}}, cells
    with n > 0), through R1 and R2 (module docstring). Sorted by (kind, cro, segment, name).

    `countable_from`: the method's rule of which cells count, as the attacker knows it from the counts:
    1 (every rated cell enters Overall and the composites: the design before the countable-cells rule) or
    min_cell_size (a segment cell with fewer ratings counts nowhere: Overall pools the countable segment
    cells, a composite averages the countable attributes; the relations then hold over those cells only,
    and a composite's n_evaluations is not checked against the raw counts).

    `integer_scale` (min, max of the rating scale): the attack also searches the integers (module
    docstring, "The integer attack"): an attribute cell that the linear attack does not determine is
    derived when exactly one whole-number sum within n x min .. n x max fits every relation.

    With `min_evaluations`, a third relation beyond the threat model joins, across CROs: R3, an awards
    cell's published weighted mean, mean x sum(n_i) = sum(n_i x composite_i) over the cell's eligible CROs
    (n_evaluations >= min_evaluations, known from the counts).

    Raises ValueError when a published row contradicts the counts (the attack's premise would not hold).
    """
    categories = {category: list(ids) for category, ids in categories.items()}
    raw_ratings = {key: n for key, n in counts["n_ratings"].items() if n > 0}
    n_evaluations = {key: n for key, n in counts["n_evaluations"].items() if n > 0}
    # The cells that enter the relations (the method's rule): segment cells of at least countable_from
    # ratings, and overall cells pooling those.
    n_ratings = dict(raw_ratings)
    if countable_from > 1:
        n_ratings = {key: n for key, n in raw_ratings.items() if key[0] != OVERALL and n >= countable_from}
        for (_, cro, attribute), n in list(n_ratings.items()):
            n_ratings[(OVERALL, cro, attribute)] = n_ratings.get((OVERALL, cro, attribute), 0) + n

    scores: dict[tuple[str, str, str], float] = {}
    for row in _rows(published_tables.get("attribute_scores", [])):
        key = (row["segment"], row["cro"], row["attribute"])
        if n_ratings.get(key) != row["n_ratings"]:
            raise ValueError(
                f"attribute row {key} publishes n_ratings={row['n_ratings']}, counts say {n_ratings.get(key)}"
            )
        scores[key] = row["score"]
    composites: dict[tuple[str, str, str], float] = {}
    published_eligible: dict[tuple[str, str, str], int] = {}
    for row in _rows(published_tables.get("composite_scores", [])):
        key = (row["segment"], row["cro"], row["category"])
        if row.get("is_eligible"):
            published_eligible[key] = row["n_evaluations"]
        if countable_from == 1 and n_evaluations.get(key) != row["n_evaluations"]:
            raise ValueError(
                f"composite row {key} publishes n_evaluations={row['n_evaluations']}, counts say {n_evaluations.get(key)}"
            )
        composites[key] = row["composite"]
    means: dict[tuple[str, str], float] = {}
    for row in _rows(published_tables.get("awards", [])):
        key = (row["segment"], row["cro"], row["category"])
        if key not in n_evaluations:
            raise ValueError(f"award row {key} for a composite without evaluations")
        composites.setdefault(key, row["composite"])
        means[(row["segment"], row["category"])] = row["weighted_mean"]

    def term(cell: tuple[str, str, str], weight: Fraction, row: Vector) -> Fraction:
        """Add weight * sum(cell) to `row` if the cell is withheld; return weight * sum(cell) if published."""
        if cell not in n_ratings:
            return Fraction(0)
        if cell in scores:
            return weight * _exact(scores[cell]) * n_ratings[cell]
        row[cell] = row.get(cell, Fraction(0)) + weight
        return Fraction(0)

    def composite_terms(segment: str, cro: str, category: str, weight: Fraction, row: Vector) -> tuple[Fraction, int]:
        """Add weight * k * composite(segment, cro, category) to `row` (its withheld part); return (its
        published part, k): k x composite = sum of sum(a) / n(a) over the k rated attributes."""
        rated = [(segment, cro, a) for a in categories[category] if (segment, cro, a) in n_ratings]
        known = sum((term(cell, weight / n_ratings[cell], row) for cell in rated), Fraction(0))
        return known, len(rated)

    equations: list[tuple[Vector, Fraction]] = []
    for segment, cro, attribute in sorted(n_ratings):  # R1: overall - big - small = 0
        if segment != OVERALL:
            continue
        row: Vector = {}
        known = term((OVERALL, cro, attribute), Fraction(1), row)
        for part in PARTS:
            known += term((part, cro, attribute), Fraction(-1), row)
        row = {cell: value for cell, value in row.items() if value}
        if row:
            equations.append((row, -known))
    for (segment, cro, category), composite in sorted(composites.items()):  # R2: k x composite = sum of scores
        row = {}
        known, k = composite_terms(segment, cro, category, Fraction(1), row)
        if row:
            equations.append((row, k * _exact(composite) - known))
    if min_evaluations is not None:  # R3: mean x sum(n_i) = sum(n_i composite_i) over the eligible CROs
        for (segment, category), mean in sorted(means.items()):
            # eligibility by the raw counts, or (under the rule) as the published rows state it
            eligible = {
                cro: n
                for (s, cro, c), n in (n_evaluations if countable_from == 1 else published_eligible).items()
                if s == segment and c == category and n >= min_evaluations
            }
            row, constant = {}, _exact(mean) * sum(eligible.values())
            for cro, n in sorted(eligible.items()):
                if (segment, cro, category) in composites:
                    constant -= n * _exact(composites[(segment, cro, category)])
                else:
                    rated = [a for a in categories[category] if (segment, cro, a) in n_ratings]
                    known, k = composite_terms(segment, cro, category, Fraction(n, len(rated)), row)
                    constant -= known
            row = {cell: value for cell, value in row.items() if value}
            if row:
                equations.append((row, constant))
    space = RowSpace(equations)

    leaks: list[Leak] = []
    for cell, n in sorted(raw_ratings.items()):
        if n >= min_cell_size:
            continue
        segment, cro, attribute = cell
        if cell in scores:
            leaks.append(Leak("attribute", segment, cro, attribute, n, "published", scores[cell]))
            continue
        total = space.value({cell: Fraction(1)}) if cell in n_ratings else None
        if total is not None:
            leaks.append(Leak("attribute", segment, cro, attribute, n, "derived", float(total / n)))
        elif integer_scale is not None and cell in n_ratings:
            found = integer_value(cell, equations, n_ratings, integer_scale)
            if found is not None:
                leaks.append(Leak("attribute", segment, cro, attribute, n, "integer", found / n))
    for key, n in sorted(n_evaluations.items()):
        if n >= min_cell_size or countable_from > 1:  # under the rule a composite averages countable cells only
            continue
        segment, cro, category = key
        if key in composites:
            leaks.append(Leak("composite", segment, cro, category, n, "published", composites[key]))
            continue
        row = {}
        known, k = composite_terms(segment, cro, category, Fraction(1), row)
        total = space.value(row) if row else Fraction(0)
        if total is not None:
            leaks.append(Leak("composite", segment, cro, category, n, "derived", float((known + total) / k)))
    leaks.sort(key=lambda leak: (leak.kind, leak.cro, leak.segment, leak.name))
    return leaks


def integer_value(
    cell: tuple[str, str, str],
    equations: list[tuple[Vector, Fraction]],
    n_ratings: Mapping[tuple[str, str, str], int],
    scale: tuple[int, int],
) -> int | None:
    """The integer attack on one cell: its sum, when exactly one whole number within n x min .. n x max is
    the cell's sum in every integer solution of the equations that involve it (its connected component),
    each unknown a whole-number sum within its own bounds; else None. Two mixed-integer programs (scipy's
    HiGHS): the least and the greatest sum; an equation holds within 1e-6 (the published values are
    doubles)."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    component, pending, chosen = {cell}, [cell], []
    while pending:
        current = pending.pop()
        for index, (row, _) in enumerate(equations):
            if current in row and index not in chosen:
                chosen.append(index)
                for other in row:
                    if other not in component:
                        component.add(other)
                        pending.append(other)
    if not chosen:
        return None
    unknowns = sorted(component, key=repr)
    column = {unknown: index for index, unknown in enumerate(unknowns)}
    matrix = np.zeros((len(chosen), len(unknowns)))
    rhs = np.zeros(len(chosen))
    for line, index in enumerate(chosen):
        row, constant = equations[index]
        for unknown, coefficient in row.items():
            matrix[line, column[unknown]] = float(coefficient)
        rhs[line] = float(constant)
    low = np.array([n_ratings[u] * scale[0] for u in unknowns], dtype=float)
    high = np.array([n_ratings[u] * scale[1] for u in unknowns], dtype=float)
    constraint = LinearConstraint(matrix, rhs - 1e-6, rhs + 1e-6)
    found = []
    for sign in (1.0, -1.0):
        objective = np.zeros(len(unknowns))
        objective[column[cell]] = sign
        result = milp(objective, integrality=np.ones(len(unknowns)), bounds=Bounds(low, high), constraints=[constraint])
        if result.status != 0:
            return None
        found.append(round(result.x[column[cell]]))
    return found[0] if found[0] == found[1] else None


def sensitive_cells(
    counts: Mapping[str, Mapping[tuple[str, str, str], int]], min_cell_size: int
) -> dict[str, list[tuple[str, str, str]]]:
    """The sensitive cells: {"attribute": [(segment, cro, attribute)], "composite": [(segment, cro, category)]}."""
    return {
        "attribute": sorted(key for key, n in counts["n_ratings"].items() if 0 < n < min_cell_size),
        "composite": sorted(key for key, n in counts["n_evaluations"].items() if 0 < n < min_cell_size),
    }
