"""Checks before publishing: the outputs' keys and identities hold, or nothing is published.

Contract: `check_outputs(tables, counts)` raises `OutputCheckError` (a bug, never bad input) when a
published table's key is null or not unique, an award goes to a CRO that is not eligible in its cell,
a composite's rank is missing for an eligible CRO (or present for another), or read != accepted + quarantined.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from tasks.sql import KEYS


class OutputCheckError(AssertionError):
    """An identity of the outputs does not hold: a bug in the pipeline. Nothing is published."""


def _check_key(name: str, table: pa.Table) -> None:
    key = list(KEYS[name])
    for column in key:
        if table[column].null_count:
            raise OutputCheckError(f"{name}: key column {column} has nulls")
    if table.num_rows:
        largest = table.group_by(key).aggregate([([], "count_all")])["count_all"]
        if pc.max(largest).as_py() > 1:
            raise OutputCheckError(f"{name}: key ({', '.join(key)}) is not unique")


def check_outputs(tables: dict[str, pa.Table], counts: dict[str, int]) -> None:
    """Raise `OutputCheckError` unless every identity of the module contract holds."""
    for name, table in tables.items():
        _check_key(name, table)
    if counts["read"] != counts["accepted"] + counts["quarantined"]:
        raise OutputCheckError(f"rows read {counts['read']} != accepted {counts['accepted']} + quarantined {counts['quarantined']}")
    composites = tables["composite_scores"]
    eligible = pc.fill_null(composites["is_eligible"], False)
    ranked = pc.is_valid(composites["rank"])
    if composites.num_rows and not pc.all(pc.equal(eligible, ranked)).as_py():
        raise OutputCheckError("composite_scores: a rank is missing for an eligible CRO, or given to an ineligible one")
    eligible_cells = {
        (row["segment"], row["category"], row["cro"])
        for row in composites.filter(eligible).select(["segment", "category", "cro"]).to_pylist()
    }
    for row in tables["awards"].select(["segment", "category", "cro"]).to_pylist():
        if (row["segment"], row["category"], row["cro"]) not in eligible_cells:
            raise OutputCheckError(f"awards: {row} is awarded but not eligible")
