"""Stage and score: the run's nodes that register the sources the SQL reads and take the scores out.

Contract (nodes of the run's graph, `cro_awards.engine.graph`; nothing here reads or writes files, so a test can
drive them with literal Arrow tables):
- `stage_node(survey)`: registers the export's text and the year's ballot, categories and labels
  (`survey_tables`) as sources. The export's columns are registered by position, never by name (an
  export may have a column named `source_row`, or `cro` and `CRO`, which DuckDB's case-insensitive
  names would rename): `raw_export` and `malformed_rows` hold `source_row`, `field_1` ... `field_n`
  (and the malformed rows' `raw_text`), `export_columns` maps each field to its position and column
  name (as written, after `columns`), and `raw_evaluations` / `raw_ratings` are the contract and
  attribute columns picked by position and named by the contract; each configured respondent screen
  that reads a column gets it too (`raw_qualifications`, `raw_durations`).
- `judged`: validation's verdicts as a `Validation` (reasons, the quarantine's rows, the counts);
  `not_counted`: the accounting of the cells not counted.
- `resample`: the resampling's figures (`cro_awards.method.uncertainty`) over the counted ratings only,
  registered as `composite_uncertainty`; `published`, `readings`, `contributions`: the published
  tables, every reading's awards and the evaluations' contributions, as Arrow in key order.
- `method_parameters(survey)`: every knob the SQL binds, by `$name`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cro_awards.engine import sql
from cro_awards.engine.graph import Node, Scope, step
from cro_awards.method import uncertainty
from cro_awards.reading.config import CONTRACT_COLUMNS, REASON_CODES, WHITESPACE, SurveyConfig, category_label
from cro_awards.reading.extract import column_names, field_name

SCAN_ROWS = 65_536
"""Rows per chunk of the export as registered (see `stage`)."""

RATING_BATCH_ROWS = 65_536
"""Rows per batch of the counted ratings streamed to the resampling (`counted_ratings`). DuckDB keeps
several batches in flight while the stream runs: at 1 << 20 rows (42 MB each) they took some 250 MB at
the benchmark's 1000x, then the run's peak; at this size about 40 MB (2026-12-07, bench/README.md)."""


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
        "survey_close": survey.survey_close,
        "recency_months": survey.recency_months,
        "qualification_allowed": list(screens.qualification.allowed) if screens.qualification else [],
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


def stage_node(survey: SurveyConfig) -> Node:
    """The node that registers the export's text and the year's tables as sources (module contract): the
    screens' columns only for the screens the YAML configures."""
    screens = [source for screen, source in SCREEN_SOURCES.items() if getattr(survey.screens, screen)]

    @step(
        reads=("config", "export"),
        writes=(*survey_tables(survey), *EXPORT_SOURCES, *screens),
    )
    def stage_export(scope: Scope) -> dict[str, Any]:
        survey, exported = scope.value("config").survey, scope.value("export")
        return {**survey_tables(survey), **export_sources(exported.table, exported.malformed, survey)}

    return stage_export


EXPORT_SOURCES = ("raw_export", "malformed_rows", "export_columns", "raw_evaluations", "raw_ratings")
"""The sources every export gives (`export_sources`)."""

SCREEN_SOURCES = {"qualification": "raw_qualifications", "speeding": "raw_durations"}
"""The source of each respondent screen that reads an export column, registered only when it is configured."""


def export_sources(raw_export: pa.Table, malformed_rows: pa.Table, survey: SurveyConfig) -> dict[str, pa.Table]:
    """The export's sources (module contract): its text by position, its column names, the contract's and
    the attributes' columns (and the configured screens' columns) picked by position."""
    # The export's columns by position (never by name: DuckDB's names ignore case), their names apart.
    names = column_names(raw_export)
    fields = [field_name(position) for position in range(1, len(names) + 1)]
    if malformed_rows.num_columns != len(names) + 2:
        raise ValueError(
            f"malformed_rows has {malformed_rows.num_columns} columns; expected source_row, the export's "
            f"{len(names)} fields and raw_text (a bug: both tables come from cro_awards.reading.extract)"
        )
    raw_export = raw_export.rename_columns(["source_row", *fields])
    # In slices of SCAN_ROWS rows (no copy): DuckDB scans a registered table's chunks in parallel, and
    # the CSV reader makes one chunk per 16 MB block.
    raw_export = pa.Table.from_batches(raw_export.to_batches(max_chunksize=SCAN_ROWS), schema=raw_export.schema)
    sources = {
        "raw_export": raw_export,
        "malformed_rows": malformed_rows.rename_columns(["source_row", *fields, "raw_text"]),
        "export_columns": export_columns(names),
    }
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
    for source, columns, picked_names in picks:
        picked = raw_export.select([0, *(position[column] for column in columns)])
        sources[source] = picked.rename_columns(["source_row", *picked_names])
    return sources


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


@dataclass(frozen=True)
class Validation:
    """What validation decided: the reasons per row, the quarantine's rows and the counts."""

    reasons: pa.Table
    rejected: pa.Table
    counts: dict[str, int]
    quarantined_by_reason: dict[str, int]

    @property
    def rejected_share(self) -> float:
        return self.counts["quarantined"] / self.counts["read"] if self.counts["read"] else 0.0

    def rows_by_reason(self) -> dict[str, list[int]]:
        """Reason code -> the source rows quarantined for it, ascending, codes in the contract's order."""
        found: dict[str, set[int]] = {}
        for row, reason in zip(self.reasons["source_row"].to_pylist(), self.reasons["reason"].to_pylist(), strict=True):
            found.setdefault(reason, set()).add(row)
        return {code: sorted(found[code]) for code in REASON_CODES if code in found}


@step(
    reads=("rejection_reasons", "rejected_evaluations", "int_rejected_evaluations", "raw_export", "malformed_rows"),
    writes=("validation",),
)
def judged(scope: Scope) -> dict[str, Any]:
    """What validation decided (`Validation`): the reasons, the quarantine's rows in key order and the
    counts (read = the export's rows, well-formed or not; quarantined = the rows with a reason)."""
    reasons = scope.value("rejection_reasons")
    quarantined = scope.count("int_rejected_evaluations")
    read = scope.count("raw_export") + scope.count("malformed_rows")
    order = {code: index for index, code in enumerate(REASON_CODES)}
    by_reason: dict[str, int] = {}
    for reason in reasons["reason"].to_pylist():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {
        "validation": Validation(
            reasons=reasons,
            rejected=scope.keyed("rejected_evaluations"),
            counts={"read": read, "accepted": read - quarantined, "quarantined": quarantined},
            quarantined_by_reason=dict(sorted(by_reason.items(), key=lambda item: order[item[0]])),
        )
    }


@step(reads=("int_not_counted",), writes=("not_counted",))
def not_counted(scope: Scope) -> dict[str, Any]:
    """segment -> {"cells", "ratings"}: the cells rated by fewer than min_cell_size respondents, which count
    nowhere (`int_not_counted`); needs only the quarantine, so `check` can show it before a run."""
    table = scope.keyed("int_not_counted")
    return {
        "not_counted": {row["segment"]: {"cells": row["cells"], "ratings": row["ratings"]} for row in table.to_pylist()}
    }


@step(
    reads=(
        "config",
        "admitted",
        "int_accepted_evaluations",
        "int_counted_ratings",
        "int_composite_scores",
        "stg_ratings",
    ),
    writes=("composite_uncertainty",),
)
def resample(scope: Scope) -> dict[str, Any]:
    """The resampling's figures of each eligible composite (`cro_awards.method.uncertainty`), over the counted
    ratings only, streamed in batches of `RATING_BATCH_ROWS`. Read to the end, they release `stg_ratings`:
    every rating of the export, most of the workspace's memory, which nothing reads after them (it declares
    the read for that), freed before the resampling's arithmetic begins. Only after the admission
    (`admitted`): a run bound to fail does no scoring."""
    if scope.value("admitted") is not True:
        raise RuntimeError("the resampling ran before the admission (a bug in the graph)")
    survey = scope.value("config").survey

    def counted_ratings() -> Iterator[pa.RecordBatch]:
        yield from scope.stream(
            "int_counted_ratings", "source_row", "attribute", "rating_value", batch_rows=RATING_BATCH_ROWS
        )
        scope.release("stg_ratings")

    figures = uncertainty.analyse(
        scope.table("int_accepted_evaluations", "source_row", "cro", "segment", "respondent_rank"),
        counted_ratings(),
        scope.table("int_composite_scores", "segment", "cro", "category", "n_evaluations", "composite", "is_eligible"),
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
    return {"composite_uncertainty": figures}


@step(reads=sql.PUBLISHED, writes=("tables",))
def published(scope: Scope) -> dict[str, Any]:
    """The published tables (attribute_scores, composite_scores, awards) as Arrow, in key order."""
    return {"tables": {name: scope.keyed(name) for name in sql.PUBLISHED}}


@step(reads=("int_award_readings",), writes=("readings",))
def readings(scope: Scope) -> dict[str, Any]:
    """The awards every reading would name (`int_award_readings`, in key order): the report's sensitivity
    lines compare the readings the award rule did not choose with the one it did."""
    return {"readings": scope.keyed("int_award_readings")}


@step(reads=("config", "int_contribution_masks", "int_attribute_bits"), writes=("contributions",))
def contributions(scope: Scope) -> dict[str, Any]:
    """Each accepted evaluation's counted attributes, as a draft keeps them for the differencing guard
    (`int_contribution_masks` in key order: respondent_id, cro, segment, mask_0 and, only in a year of
    more than 64 attributes, mask_1). The schema's metadata names the bits (`attributes`: the attribute
    ids, bit 0 first) and the category membership (`categories`), as JSON: the form `cro_awards.disclosure.guard`
    reads."""
    bits = scope.table("int_attribute_bits", "attribute", order_by=("attribute_bit",))["attribute"].to_pylist()
    table = scope.keyed("int_contribution_masks")
    if len(bits) <= 64:
        table = table.drop_columns(["mask_1"])
    categories: dict[str, list[str]] = {}
    for category, attribute in scope.value("config").survey.category_rows():
        categories.setdefault(category, []).append(attribute)
    metadata = {"attributes": json.dumps(bits), "categories": json.dumps(categories, sort_keys=True)}
    return {"contributions": table.replace_schema_metadata(metadata)}
