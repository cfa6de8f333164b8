"""Disclosure control by construction, and the audit that guards it (rule D5).

The rule lives in the SQL: a (segment, CRO, attribute) cell rated by fewer than `min_cell_size`
respondents is not countable (`sql/int_rating_cells.sql`), and only the ratings of countable cells reach
anything published (`sql/int_counted_ratings.sql` and every model after it). So no published number is a
function of a rating in a cell that is not countable, and no combination of a release's numbers
(linear, bounded or integer) can give one back. Nothing is withheld after the fact and no valid survey
is refused.

This module only checks, on exactly the tables about to be written, that the published rows have the
structure the rule guarantees (`sql/audit/*.sql`, each a query returning the rows that break one
identity): every attribute row rests on at least `min_cell_size` ratings; every overall row is the
pooling of the published segment rows (counts and whole-number sums); every composite is the mean of
its segment's published attribute scores; awards and their cells' statistics follow from the published
eligible composites; uncertainty figures only on eligible rows. A break is a bug upstream, never bad
data: the run fails before anything is written.

Contract: `audit(tables, category_rows, params)` -> the findings (`Finding`: the check and the row's
key, never a value), empty when every identity holds; `explain(findings, min_cell_size)` -> the one
paragraph a failed run prints (exit 9).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards.engine import sql


@dataclass(frozen=True)
class Finding:
    """One published row that breaks an identity of the audit: the check's name and the row's key."""

    check: str
    segment: str
    cro: str
    item: str
    """The attribute or category."""

    def describe(self) -> str:
        return f"{self.check.replace('_', ' ')}: not so for ({self.segment}, {self.cro}, {self.item})"


def audit(
    tables: Mapping[str, pa.Table], category_rows: list[tuple[str, str]], params: dict[str, Any]
) -> list[Finding]:
    """The rows of `tables` (attribute_scores, composite_scores, awards, as they will be written) that break
    an identity of `sql/audit/`, in check order then key order (module contract). `params`: the run's SQL
    parameters (`min_cell_size`, `tolerance`, ...)."""
    connection = duckdb.connect(":memory:")
    try:
        for name in sql.PUBLISHED:
            connection.register(name, tables[name])
        connection.register(
            "category_attributes",
            pa.table(
                {"category": [c for c, _ in category_rows], "attribute": [a for _, a in category_rows]},
                schema=pa.schema([("category", pa.string()), ("attribute", pa.string())]),
            ),
        )
        findings = []
        for check, found in sql.audit_rows(connection, params).items():
            findings += [Finding(check, *row) for row in sorted(found)]
        return findings
    finally:
        connection.close()


def explain(findings: list[Finding], min_cell_size: int) -> str:
    """The one-paragraph message of a failed audit: the first finding by key, how many more (no values)."""
    first = findings[0]
    more = f" ({len(findings) - 1} more in the log)" if len(findings) > 1 else ""
    return (
        f"The disclosure audit stopped the run before anything was published: {first.describe()}{more}. "
        f"Published numbers must rest on countable cells only (at least min_cell_size = {min_cell_size} "
        "ratings), and this table does not have the structure that guarantees it. This is a bug in the "
        "pipeline, not in the export: report it with the run's log."
    )
