"""Self-describing outputs (`cro_awards.publication.columns`): the metadata each published Parquet file carries.

Tiny literal tables go through `describe`, `pq.write_table` and back (`pq.read_schema`, DuckDB's
`parquet_kv_metadata`, `read_metadata`); a column without a description is refused; and the pipeline,
run on a survey of 12 evaluations, publishes exactly the described columns, in the described order.
"""

from __future__ import annotations

import json
import math

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards.publication.columns import DESCRIPTIONS, METADATA_KEYS, describe, read_metadata
from helpers_exports import load, row, write_config, write_csv

CONFIGURATION = {"min_evaluations": 12, "award_rule": "official", "overrides": {"min_evaluations": 12}}
"""Keys deliberately out of order: the JSON written must sort them."""

AWARDS = pa.table(
    {
        "segment": ["overall", "overall"],
        "category": ["delivery", "delivery"],
        "cro": ["northwind_clinical", "cafe_labs"],
        "award": ["leader", "champion"],
        "p_award": [0.91, None],
        "cro_name": ["Northwind Clinical", "Café Labs"],
    }
)
"""Two award rows, a null p_award (no resampling) and a non-ASCII display name."""


def write_described(tmp_path, table=AWARDS, name="awards"):
    path = tmp_path / f"{name}.parquet"
    pq.write_table(
        describe(name, table, survey_year=2024, run_id="20241201T000000Z-abc123", configuration=CONFIGURATION), path
    )
    return path


def test_metadata_and_descriptions_survive_a_parquet_round_trip(tmp_path):
    path = write_described(tmp_path)
    schema = pq.read_schema(path)
    metadata = {key.decode(): value.decode() for key, value in schema.metadata.items()}
    assert metadata["survey_year"] == "2024"
    assert metadata["run_id"] == "20241201T000000Z-abc123"
    assert metadata["table"] == "awards"
    assert metadata["configuration"] == json.dumps(CONFIGURATION, sort_keys=True)
    assert metadata["configuration"].startswith('{"award_rule": "official", "min_evaluations": 12')
    assert list(json.loads(metadata["columns"])) == AWARDS.column_names, "columns JSON in the table's order"
    for field in schema:
        assert field.metadata[b"description"].decode() == DESCRIPTIONS["awards"][field.name]
    assert pq.read_table(path).to_pylist() == AWARDS.to_pylist(), "the data is unchanged"

    assert read_metadata(path) == {
        "survey_year": 2024,
        "run_id": "20241201T000000Z-abc123",
        "table": "awards",
        "configuration": CONFIGURATION,
        "columns": {name: DESCRIPTIONS["awards"][name] for name in AWARDS.column_names},
    }


def test_duckdb_reads_the_keys_and_the_column_descriptions(tmp_path):
    path = write_described(tmp_path)
    keys = dict(duckdb.execute("select decode(key), decode(value) from parquet_kv_metadata(?)", [str(path)]).fetchall())
    assert set(METADATA_KEYS) <= set(keys)
    assert keys["survey_year"] == "2024" and keys["run_id"] == "20241201T000000Z-abc123"
    assert json.loads(keys["configuration"]) == CONFIGURATION
    described = dict(
        duckdb.execute(
            "select entry.key, entry.value ->> '$' from parquet_kv_metadata(?) as kv, "
            "json_each(decode(kv.value)) as entry where decode(kv.key) = 'columns'",
            [str(path)],
        ).fetchall()
    )
    assert described == {name: DESCRIPTIONS["awards"][name] for name in AWARDS.column_names}


def test_earlier_schema_metadata_is_replaced():
    table = AWARDS.replace_schema_metadata({"pandas": "{}", "run_id": "stale"})
    described = describe("awards", table, survey_year=2023, run_id="new", configuration={})
    assert set(described.schema.metadata) == {key.encode() for key in METADATA_KEYS}
    assert described.schema.metadata[b"run_id"] == b"new"


def test_a_column_without_a_description_is_refused_by_name():
    table = AWARDS.append_column("mystery_score", pa.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"table awards: column\(s\) mystery_score have no description"):
        describe("awards", table, survey_year=2024, run_id="r", configuration={})


def test_a_column_described_for_another_table_only_is_refused():
    """`attribute` is described for attribute_scores, not for awards."""
    table = AWARDS.append_column("attribute", pa.array(["quality", "speed"]))
    with pytest.raises(ValueError, match=r"table awards: column\(s\) attribute have no description"):
        describe("awards", table, survey_year=2024, run_id="r", configuration={})


def test_an_unknown_table_is_refused_by_name():
    with pytest.raises(ValueError, match="'rejected_evaluations' is not a published table"):
        describe("rejected_evaluations", AWARDS, survey_year=2024, run_id="r", configuration={})


def test_a_configuration_that_is_not_plain_json_is_refused():
    with pytest.raises(ValueError, match="table awards: the configuration is not plain JSON"):
        describe("awards", AWARDS, survey_year=2024, run_id="r", configuration={"champion_sd_multiplier": math.nan})


def test_a_file_written_before_outputs_described_themselves_reads_as_no_metadata(tmp_path):
    path = tmp_path / "awards.parquet"
    pq.write_table(AWARDS, path)
    assert read_metadata(path) == {}


def test_every_description_is_one_nonempty_line():
    for table, columns in DESCRIPTIONS.items():
        for column, text in columns.items():
            assert text.strip() and "\n" not in text, f"{table}.{column}: {text!r}"


def test_the_pipeline_publishes_exactly_the_described_columns_in_order(tmp_path):
    """The pure pipeline (no Prefect) on 3 CROs x 4 big-pharma respondents: every table has rows (awards
    included), every column is described, no description is stale, and the order is the tables' own."""
    from cro_awards.run.pipeline import run_pipeline

    ratings = {
        "Northwind Clinical": ("5", "4", "5"),
        "Aldercrest Research": ("3", "3", "2"),
        "Bluefen Biometrics": ("4", "2", "3"),
    }
    rows = [
        row(respondent_id=f"R{i}", cro=cro, quality=quality, speed=speed, cost=cost)
        for i in range(1, 5)
        for cro, (quality, speed, cost) in ratings.items()
    ]
    result = run_pipeline(load(write_config(tmp_path)), write_csv(tmp_path / "export.csv", rows))
    assert set(result.tables) == set(DESCRIPTIONS)
    for name, table in result.tables.items():
        assert table.num_rows > 0, f"{name} is empty: the survey no longer exercises it"
        assert table.column_names == list(DESCRIPTIONS[name]), f"{name}: published columns != DESCRIPTIONS"
        described = describe(name, table, survey_year=2024, run_id="r", configuration={})
        assert described.equals(table), f"{name}: describe changed the data"
