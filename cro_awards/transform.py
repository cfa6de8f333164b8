"""Stage and score in DuckDB: the sources the SQL graph reads, registered here and nowhere else.

Contract (each function takes a `cro_awards.sql.Workspace`; nothing here reads or writes files, so a
test can drive it with literal Arrow tables):
- `stage(workspace, export, malformed, survey)` registers the export's text and the year's ballot,
  categories and labels (`survey_tables`), and builds what validation reads. The export's columns are
  registered by position, never by name (an export may have a column named `source_row`, or `cro` and
  `CRO`, which DuckDB's case-insensitive names would rename): `raw_export` and `malformed_rows` hold
  `source_row`, `field_1` ... `field_n` (and the malformed rows' `raw_text`), `export_columns` maps
  each field to its position and column name (as written, after `columns`), and `raw_evaluations` /
  `raw_ratings` are the contract and attribute columns picked by position and named by the contract.
  For each configured respondent screen that reads a column, that column is registered too
  (`raw_qualifications`, `raw_durations`) and its staging built (`screen_inputs`); a year without
  screens registers and builds exactly what it did before the screens existed.
  The tables are those of `cro_awards.extract.Export` (the column names ride in their fields' metadata).
- `quarantine(workspace, reasons)` registers validation's reasons and builds the quarantine table
  (`rejected_evaluations`) and the counts: rows read, accepted and quarantined.
- `score(workspace, survey)` builds every published table (the resampling's figures,
  `cro_awards.uncertainty`, registered on the way) over the countable cells only and returns them as
  Arrow, in key order, with the accounting of the cells not counted and the evaluations' contributions
  (`Scored`). Once the resampling has read the counted ratings, `stg_ratings` is released (nothing
  reads it after them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cro_awards import sql, uncertainty
from cro_awards.config import CONTRACT_COLUMNS, WHITESPACE, Screens, SurveyConfig, category_label
from cro_awards.extract import column_names, field_name

SCAN_ROWS = 65_536
"""Rows per chunk of the export as registered (see `stage`)."""

RATING_BATCH_ROWS = 65_536
"""Rows per batch of the counted ratings streamed to the resampling (`counted_ratings`). DuckDB keeps
several batches in flight while the stream runs: at 1 << 20 rows (42 MB each) they took some 250 MB at
the benchmark's 1000x, then the run's peak; at this size about 40 MB (2026-12-07, bench/README.md)."""

VALIDATION_INPUTS = ("int_evaluations", "cro_aliases", "stg_rating_texts", "stg_ratings")
"""The staged relations validation reads (`cro_awards.validate`)."""


SCREEN_STAGING = {"qualification": "stg_qualification_texts", "speeding": "stg_duration_texts"}
"""The staging of each respondent screen that reads an export column, built only when it is configured."""


def screen_inputs(screens: Screens) -> tuple[str, ...]:
    """The staged relations the configured screens' validation reads, besides `VALIDATION_INPUTS`."""
    return tuple(model for screen, model in SCREEN_STAGING.items() if getattr(screens, screen))


def method_parameters(survey: SurveyConfig) -> dict[str, Any]:
    """Every value the SQL binds, by `$name`."""
    screens = survey.screens
    return {
        "qualification_column": screens.qualification.column if screens.qualification else None,
        "duration_column": screens.speeding.column if screens.speeding else None,
        "whitespace": WHITESPACE,
        "tolerance": sql.TOLERANCE,
        "big_pharma_min_rd_spend_musd": str(survey.big_pharma_min_rd_spend_musd),
        "min_evaluations": survey.min_evaluations,
        "min_cros_for_awards": survey.min_cros_for_awards,
        "champion_sd_multiplier": float(survey.champion_sd_multiplier),
        "min_cell_size": survey.min_cell_size,
        "robust_award_probability": float(survey.robust_award_probability),
        "award_rule": survey.award_rule,
    }


def survey_tables(survey: SurveyConfig) -> dict[str, pa.Table]:
    """The year's ballot (each spelling -> its CRO's id), category membership and the labels people read,
    as the sources `ballot`, `category_attributes`, `cro_labels`, `attribute_labels` and `category_labels`."""
    spellings = [(spelling, cro.id) for cro in survey.cros for spelling in (cro.name, *cro.aliases)]
    pairs = survey.category_rows()

    def table(columns: dict[str, list[str]]) -> pa.Table:
        return pa.table(columns, schema=pa.schema([(name, pa.string()) for name in columns]))

    return {
        "ballot": table({"spelling": [s for s, _ in spellings], "cro": [c for _, c in spellings]}),
        "category_attributes": table({"category": [c for c, _ in pairs], "attribute": [a for _, a in pairs]}),
        "cro_labels": table({"cro": [cro.id for cro in survey.cros], "cro_name": [cro.name for cro in survey.cros]}),
        "attribute_labels": table(
            {"attribute": list(survey.attributes), "attribute_label": list(survey.attributes.values())}
        ),
        "category_labels": table(
            {
                "category": list(survey.categories),
                "category_label": [category_label(category) for category in survey.categories],
            }
        ),
    }


def stage(workspace: sql.Workspace, raw_export: pa.Table, malformed_rows: pa.Table, survey: SurveyConfig) -> None:
    """Register the export's text and the year's tables; build what validation reads (module contract)."""
    for name, table in survey_tables(survey).items():
        workspace.register(name, table)
    # The export's columns by position (never by name: DuckDB's names ignore case), their names apart.
    names = column_names(raw_export)
    fields = [field_name(position) for position in range(1, len(names) + 1)]
    if malformed_rows.num_columns != len(names) + 2:
        raise ValueError(
            f"malformed_rows has {malformed_rows.num_columns} columns; expected source_row, the export's "
            f"{len(names)} fields and raw_text (a bug: both tables come from cro_awards.extract)"
        )
    raw_export = raw_export.rename_columns(["source_row", *fields])
    # In slices of SCAN_ROWS rows (no copy): DuckDB scans a registered table's chunks in parallel, and
    # the CSV reader makes one chunk per 16 MB block.
    raw_export = pa.Table.from_batches(raw_export.to_batches(max_chunksize=SCAN_ROWS), schema=raw_export.schema)
    workspace.register("raw_export", raw_export)
    workspace.register("malformed_rows", malformed_rows.rename_columns(["source_row", *fields, "raw_text"]))
    workspace.register("export_columns", export_columns(names))
    position: dict[str, int] = {}
    for index, name in enumerate(names, start=1):
        position.setdefault(name, index)  # names are unique (extract refuses a column named twice)
    attributes = tuple(survey.attributes)
    # (source, the export columns picked, the names they are registered by)
    picks = [("raw_evaluations", CONTRACT_COLUMNS, CONTRACT_COLUMNS), ("raw_ratings", attributes, attributes)]
    if survey.screens.qualification:
        picks.append(("raw_qualifications", (survey.screens.qualification.column,), ("qualification",)))
    if survey.screens.speeding:
        picks.append(("raw_durations", (survey.screens.speeding.column,), ("duration",)))
    for source, columns, names in picks:
        picked = raw_export.select([0, *(position[column] for column in columns)])
        workspace.register(source, picked.rename_columns(["source_row", *names]))
    workspace.build(*VALIDATION_INPUTS, *screen_inputs(survey.screens), params=method_parameters(survey))


def export_columns(names: list[str]) -> pa.Table:
    """The source `export_columns`: (field, position, column_name) of each export column, in header order."""
    return pa.table(
        {
            "field": [field_name(position) for position in range(1, len(names) + 1)],
            "position": pa.array(range(1, len(names) + 1), pa.int64()),
            "column_name": names,
        },
        schema=pa.schema([("field", pa.string()), ("position", pa.int64()), ("column_name", pa.string())]),
    )


def quarantine(workspace: sql.Workspace, reasons: pa.Table, survey: SurveyConfig) -> tuple[pa.Table, dict[str, int]]:
    """(the quarantine's rows in key order, {read, accepted, quarantined}) once validation has judged."""
    workspace.register("rejection_reasons", reasons)
    workspace.build(sql.QUARANTINE, params=method_parameters(survey))
    [(quarantined, read)] = sql.rows(
        workspace.connection,
        "select (select count(*) from int_rejected_evaluations), "
        "(select count(*) from raw_export) + (select count(*) from malformed_rows)",
    )
    return workspace.table(sql.QUARANTINE), {"read": read, "accepted": read - quarantined, "quarantined": quarantined}


@dataclass(frozen=True)
class Scored:
    """What `score` returns: the published tables, the accounting of the countable-cells rule and the
    contributions a draft keeps privately."""

    tables: dict[str, pa.Table]
    """attribute_scores, composite_scores and awards, in key order."""
    not_counted: dict[str, dict[str, int]]
    """segment -> {"cells", "ratings"}: the cells rated by fewer than min_cell_size respondents (D6)."""
    contributions: pa.Table
    """One row per accepted evaluation with a counted rating: respondent_id, cro, segment and the mask of
    its counted attributes (`contributions`). What the differencing guard compares between a draft and
    the earlier releases."""
    readings: pa.Table
    """The awards every reading would name (`int_award_readings`, in key order): the report's sensitivity
    lines compare the readings the award rule did not choose with the one it did."""


def score(workspace: sql.Workspace, survey: SurveyConfig) -> Scored:
    """Build the published tables (module contract); the resampling runs between the scores and them,
    over the counted ratings only."""
    parameters = method_parameters(survey)
    workspace.build("int_composite_scores", params=parameters)
    evaluations = sql.arrow(
        workspace.connection, "select source_row, cro, segment, respondent_rank from int_accepted_evaluations"
    )
    composites = sql.arrow(
        workspace.connection,
        "select segment, cro, category, n_evaluations, composite, is_eligible from int_composite_scores",
    )
    figures = uncertainty.analyse(
        evaluations,
        counted_ratings(workspace),
        composites,
        survey.category_rows(),
        uncertainty.Settings(
            replicates=survey.bootstrap_replicates,
            seed=survey.bootstrap_seed,
            min_cros_for_awards=survey.min_cros_for_awards,
            champion_sd_multiplier=float(survey.champion_sd_multiplier),
            scale=(float(survey.rating_scale.min), float(survey.rating_scale.max)),
            tolerance=sql.TOLERANCE,
        ),
    )
    workspace.register("composite_uncertainty", figures)
    workspace.build(*sql.PUBLISHED, params=parameters)
    return Scored(
        tables={name: workspace.table(name) for name in sql.PUBLISHED},
        not_counted=not_counted(workspace, survey),
        contributions=contributions(workspace, survey),
        readings=workspace.table("int_award_readings"),
    )


def counted_ratings(workspace: sql.Workspace) -> Iterator[pa.RecordBatch]:
    """The counted ratings (source_row, attribute, rating_value), streamed from DuckDB in batches of
    `RATING_BATCH_ROWS`. Read to the end, they release `stg_ratings`: every rating of the export, most of
    the workspace's memory (some 1.3 GB at the benchmark's 1000x), which nothing reads after them (the
    tables built from it are built by then), freed before the resampling's arithmetic begins."""
    reader = workspace.connection.sql(
        "select source_row, attribute, rating_value from int_counted_ratings"
    ).to_arrow_reader(RATING_BATCH_ROWS)
    yield from reader
    reader.close()
    workspace.release("stg_ratings")


def not_counted(workspace: sql.Workspace, survey: SurveyConfig) -> dict[str, dict[str, int]]:
    """segment -> {"cells", "ratings"}: the cells rated by fewer than min_cell_size respondents, which count
    nowhere (`int_not_counted`); needs only the quarantine, so `check` can show it before a run."""
    workspace.build("int_not_counted", params=method_parameters(survey))
    return {
        segment: {"cells": cells, "ratings": ratings}
        for segment, cells, ratings in sql.rows(workspace.connection, sql.sorted_query("int_not_counted"))
    }


def contributions(workspace: sql.Workspace, survey: SurveyConfig) -> pa.Table:
    """`int_contributions` without its source rows, in (respondent_id, cro) order: respondent_id, cro,
    segment, and the mask of the counted attributes as uint64 words (`mask_0`: bits 0-63; `mask_1`: bits
    64-127, only in a year of more than 64 attributes). The schema's metadata names the bits
    (`attributes`: the attribute ids, bit 0 first) and the category membership (`categories`), as JSON:
    the form `cro_awards.guard` keeps with each draft."""
    bits = [
        attribute
        for (attribute,) in sql.rows(
            workspace.connection, "select attribute from int_attribute_bits order by attribute_bit"
        )
    ]
    words = ["(attribute_mask & 18446744073709551615::uhugeint)::ubigint as mask_0"]
    if len(bits) > 64:
        words.append("(attribute_mask >> 64)::ubigint as mask_1")
    table = sql.arrow(
        workspace.connection,
        f"select respondent_id, cro, segment, {', '.join(words)} from int_contributions order by respondent_id, cro",
    )
    categories: dict[str, list[str]] = {}
    for category, attribute in survey.category_rows():
        categories.setdefault(category, []).append(attribute)
    return table.replace_schema_metadata(
        {"attributes": json.dumps(bits), "categories": json.dumps(categories, sort_keys=True)}
    )
