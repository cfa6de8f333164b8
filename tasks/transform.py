"""Stage and transform in DuckDB: the SQL of `sql/`, run in the order `tasks.sql` states.

Contract:
- `stage(connection, export, survey)` registers the export's text (raw_export, raw_evaluations,
  raw_ratings, malformed_rows) and the year's ballot and categories, and builds the staging tables.
- `transform(connection, survey, reasons)` registers the validation's reasons and builds every
  table through to the published ones; `published_tables(connection)` returns those as Arrow.
Nothing here reads or writes files; a test can drive it with literal Arrow tables.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cro_awards.config import CONTRACT_COLUMNS, WHITESPACE, SurveyConfig
from tasks import bootstrap, sql


MEMORY_LIMIT = "2GB"
"""DuckDB's working memory for one run: beyond it, sorts, joins and aggregates spill to disk."""


SCAN_ROWS = 65_536
"""Rows per chunk of the export as registered (see `stage`)."""

DISABLED_OPTIMIZERS = "partial_aggregate_pushdown"
"""DuckDB 2.0 pushes a partial aggregate below a join on the join's key: summing the ratings per
(segment, CRO, attribute) over ratings joined to their evaluations then first groups the ratings by
(source_row, attribute), which is their key: nothing is reduced, the hash table holds every rating and
spills (9 s instead of 1 s at 30 million ratings; bench/README.md)."""


def open_workspace() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database holding one run's tables, its memory bounded (spilling to a temporary
    folder beyond MEMORY_LIMIT). Insertion order is not kept: every published table is read back sorted."""
    spill = Path(tempfile.gettempdir()) / "cro-awards-duckdb"
    spill.mkdir(exist_ok=True)
    return duckdb.connect(":memory:", config={
        "memory_limit": MEMORY_LIMIT,
        "temp_directory": str(spill),
        "preserve_insertion_order": False,
        "disabled_optimizers": DISABLED_OPTIMIZERS,
    })


def method_parameters(survey: SurveyConfig) -> dict[str, Any]:
    """Every value the SQL binds, by `$name`."""
    return {
        "whitespace": WHITESPACE,
        "tolerance": sql.TOLERANCE,
        "big_pharma_min_rd_spend_musd": str(survey.big_pharma_min_rd_spend_musd),
        "min_evaluations": survey.min_evaluations,
        "min_cros_for_awards": survey.min_cros_for_awards,
        "champion_sd_multiplier": float(survey.champion_sd_multiplier),
        "min_cell_size": survey.min_cell_size,
    }


def register_survey(connection: duckdb.DuckDBPyConnection, survey: SurveyConfig) -> None:
    """The year's ballot (spelling -> CRO) and category membership, as tables."""
    spellings = [(spelling, cro.name) for cro in survey.cros for spelling in (cro.name, *cro.aliases)]
    connection.register(
        "ballot",
        pa.table({"spelling": [s for s, _ in spellings], "cro": [c for _, c in spellings]},
                 schema=pa.schema([("spelling", pa.string()), ("cro", pa.string())])),
    )
    pairs = survey.category_rows()
    connection.register(
        "category_attributes",
        pa.table({"category": [c for c, _ in pairs], "attribute": [a for _, a in pairs]},
                 schema=pa.schema([("category", pa.string()), ("attribute", pa.string())])),
    )


def stage(connection: duckdb.DuckDBPyConnection, raw_export: pa.Table, malformed_rows: pa.Table,
          survey: SurveyConfig) -> None:
    """Register the export's text and build the staging tables (see module contract)."""
    register_survey(connection, survey)
    # In slices of SCAN_ROWS rows (no copy): DuckDB scans a registered table's chunks in parallel, and
    # the CSV reader makes one chunk per 16 MB block.
    raw_export = pa.Table.from_batches(raw_export.to_batches(max_chunksize=SCAN_ROWS), schema=raw_export.schema)
    connection.register("raw_export", raw_export)
    connection.register("malformed_rows", malformed_rows)
    connection.register("raw_evaluations", raw_export.select(["source_row", *CONTRACT_COLUMNS]))
    connection.register("raw_ratings", raw_export.select(["source_row", *survey.attributes]))
    sql.run_all(connection, sql.STAGING, method_parameters(survey))


def transform(connection: duckdb.DuckDBPyConnection, survey: SurveyConfig, reasons: pa.Table) -> None:
    """Build every table after validation, through to the published ones and the quarantine."""
    connection.register("rejection_reasons", reasons)
    parameters = method_parameters(survey)
    sql.run_all(connection, sql.SCORING, parameters)
    intervals = bootstrap.composite_intervals(
        sql.arrow(connection, "select source_row, cro, segment, respondent_rank from int_accepted_evaluations"),
        connection.sql("select source_row, attribute, rating_value from int_accepted_ratings").to_arrow_reader(1 << 20),
        survey.category_rows(),
        survey.bootstrap_replicates,
        survey.bootstrap_seed,
    )
    connection.register("composite_intervals", intervals)
    sql.run_all(connection, sql.PUBLISHING, parameters)


def published_tables(connection: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    """The published tables, as built (sorted, columns in contract order)."""
    return {name: sql.arrow(connection, sql.sorted_query(name)) for name in sql.PUBLISHED}


def counts(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows read, accepted and quarantined."""
    [(quarantined, read)] = sql.rows(
        connection,
        "select (select count(*) from int_rejected_evaluations), "
        "(select count(*) from raw_export) + (select count(*) from malformed_rows)",
    )
    return {"read": read, "accepted": read - quarantined, "quarantined": quarantined}
