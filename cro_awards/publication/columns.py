"""What each published column means, and the Parquet metadata that carries it: self-describing outputs.

Contract:
- `DESCRIPTIONS`: published table -> column -> a one-line description, for every column of
  `attribute_scores`, `composite_scores` and `awards`, in the order the tables publish them
  (`sql/<table>.sql`; docs/contract.md section 4). A new published column needs a line here: `describe`
  refuses a table with a column it cannot describe, so an undescribed column is never published.
- `describe(table_name, table, *, survey_year, run_id, configuration)` returns the same data with
  schema metadata (Parquet's key-value metadata once written) `survey_year`, `run_id`, `table`,
  `configuration` (JSON, sorted keys) and `columns` (JSON: column -> description, in the table's order,
  for readers that see only the key-value metadata, such as DuckDB's `parquet_kv_metadata`) and, on
  each field, the metadata `description` (for Arrow readers). Any earlier metadata is replaced: the
  file says what this says.
- `read_metadata(path)` reads a Parquet file's footer back: those keys decoded (`survey_year` an int,
  `configuration` and `columns` dicts). A key the file lacks (a file written before outputs described
  themselves) is absent from the result.

Pure: no I/O but `read_metadata`'s read of one footer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

_SEGMENT = "respondent segment: big_pharma, small_pharma or overall (every accepted evaluation pooled)"
_CRO = "the CRO's stable id (the YAML's cros[].id); the key to join on, also across years"
_CRO_NAME = "the CRO's display name in that survey year (for people; join on cro, not on this)"
_CATEGORY = "the core category's id (the YAML's categories)"
_CATEGORY_LABEL = "the category as people read it (for people; join on category, not on this)"
_UNCERTAIN = "eligible rows only, null elsewhere and when bootstrap_replicates is 0"
_IN_AWARD_CELLS = "eligible rows of cells that give awards only, null elsewhere"

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "attribute_scores": {
        "segment": _SEGMENT,
        "cro": _CRO,
        "attribute": "the attribute's id (the YAML's attributes)",
        "n_ratings": "how many ratings the score rests on (at least min_cell_size)",
        "score": "the mean rating of the attribute over the CRO's accepted evaluations in the segment",
        "cro_name": _CRO_NAME,
        "attribute_label": "the attribute as the questionnaire words it (for people; join on attribute)",
    },
    "composite_scores": {
        "segment": _SEGMENT,
        "cro": _CRO,
        "category": _CATEGORY,
        "n_evaluations": "the CRO's accepted evaluations in the segment with a rating in the category",
        "composite": "the unweighted mean of the category's attribute scores",
        "is_eligible": "n_evaluations >= min_evaluations: ranked and in the running for awards",
        "rank": "rank among the cell's eligible CROs by composite, 1 the highest, ties shared; null if not eligible",
        "ci_low": f"lower bound of the composite's 95% interval from resampling respondents; {_UNCERTAIN}",
        "ci_high": f"upper bound of the composite's 95% interval from resampling respondents; {_UNCERTAIN}",
        "composite_shrunk": f"the composite shrunk towards the cell's weighted mean by its noise; {_UNCERTAIN}",
        "p_leader": f"share of resampling replicates in which the CRO leads its cell (ties split); {_IN_AWARD_CELLS}",
        "p_champion": f"share of resampling replicates in which the CRO meets the champion rule; {_IN_AWARD_CELLS}",
        "rank_low": f"2.5th percentile of the CRO's rank over the resampling replicates; {_UNCERTAIN}",
        "rank_high": f"97.5th percentile of the CRO's rank over the resampling replicates; {_UNCERTAIN}",
        "is_co_leader": f"the leader, or no different from it within a paired 95% interval; {_IN_AWARD_CELLS}",
        "composite_adjusted": "the composite with each respondent's fitted leniency taken out (a random respondent "
        f"intercept per segment); {_UNCERTAIN}",
        "cro_name": _CRO_NAME,
        "category_label": _CATEGORY_LABEL,
    },
    "awards": {
        "segment": _SEGMENT,
        "category": _CATEGORY,
        "cro": _CRO,
        "award": "leader (the cell's highest composite) or champion (at least the threshold), by the year's "
        "award_rule (official unless a what-if chose shrunk or adjusted); a CRO may hold both",
        "composite": "the CRO's composite in the cell",
        "weighted_mean": "the cell's mean composite over its eligible CROs, weighted by n_evaluations",
        "weighted_sd": "the cell's standard deviation of composites, weighted by n_evaluations (population form)",
        "threshold": "the champion threshold: weighted_mean + champion_sd_multiplier * weighted_sd",
        "p_award": "the posterior probability that the award is deserved; null when bootstrap_replicates is 0",
        "is_robust": "p_award >= robust_award_probability; null when bootstrap_replicates is 0",
        "cro_name": _CRO_NAME,
        "category_label": _CATEGORY_LABEL,
    },
}

METADATA_KEYS = ("survey_year", "run_id", "table", "configuration", "columns")
"""The schema metadata keys `describe` writes; each field also gets `description`."""


def describe(
    table_name: str, table: pa.Table, *, survey_year: int, run_id: str, configuration: dict[str, Any]
) -> pa.Table:
    """`table` with its schema metadata and column descriptions set (module contract). Raises ValueError
    naming the table and the column when `table_name` is not a published table or a column has no line
    in `DESCRIPTIONS`, and when `configuration` is not plain JSON (NaN and infinities included)."""
    if table_name not in DESCRIPTIONS:
        raise ValueError(
            f"{table_name!r} is not a published table ({', '.join(DESCRIPTIONS)}): add its columns' "
            "descriptions to DESCRIPTIONS in cro_awards/publication/columns.py"
        )
    described = DESCRIPTIONS[table_name]
    missing = [name for name in table.column_names if name not in described]
    if missing:
        raise ValueError(
            f"table {table_name}: column(s) {', '.join(missing)} have no description: every published column "
            f"needs one line in DESCRIPTIONS[{table_name!r}] in cro_awards/publication/columns.py"
        )
    try:
        configuration_json = json.dumps(configuration, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"table {table_name}: the configuration is not plain JSON ({error})") from error
    fields = [field.with_metadata({"description": described[field.name]}) for field in table.schema]
    metadata = {
        "survey_year": str(survey_year),
        "run_id": run_id,
        "table": table_name,
        "configuration": configuration_json,
        "columns": json.dumps({name: described[name] for name in table.column_names}, ensure_ascii=False),
    }
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata=metadata))


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The self-description of the Parquet file at `path` (module contract): `survey_year` (int), `run_id`,
    `table`, `configuration` (dict) and `columns` (column -> description, in the file's order), each where
    the file has it."""
    metadata = pq.read_schema(path).metadata or {}
    raw = {key.decode("utf-8"): value.decode("utf-8") for key, value in metadata.items()}
    found: dict[str, Any] = {key: raw[key] for key in METADATA_KEYS if key in raw}
    if "survey_year" in found:
        found["survey_year"] = int(found["survey_year"])
    for key in ("configuration", "columns"):
        if key in found:
            found[key] = json.loads(found[key])
    return found
