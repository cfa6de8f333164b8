"""Hostile exports, each with the exact outcome the data contract (docs/contract.md) gives it.

The corpus is generated into tmp_path by `tests/hostile/make_corpus.py` (nothing binary is committed;
the two 10 MB exports are written at test time). Its tiny survey year: CROs Northwind Clinical
(Northwind, NWC), Aldercrest Research (Aldercrest), Bluefen Biometrics (Bluefen); attributes quality,
speed, cost; scale 1..5; window 2022-08-29 .. 2024-02-29.

Tests through the command line's `run` or the real flow carry the markers `e2e` and `prefect`; the
others run in process, without Prefect (the fast tier).

Two outcomes:
- a file-level error: `read_export` raises `ExportError` naming the file and saying what is wrong, in
  one paragraph; through the command line the run stops with exit code 3 (4 for too many rejected
  rows), prints that message without a traceback, and publishes nothing;
- or the run publishes: `rejection_reasons` gives the exact reasons by source_row, and the real flow
  publishes a `_manifest.json` whose counts say read = accepted + quarantined, with a quarantine
  holding exactly those rows, their original text verbatim.

Exports meant to publish despite bad rows run with `survey_lenient.yaml` (max_rejected_share: 1.0);
the every-row-bad export runs with `survey.yaml` (max_rejected_share: 0.2) and must fail.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from cro_awards.engine.errors import ExportError
from cro_awards.reading.config import load_config
from cro_awards.reading.extract import read_export
from helpers_exports import run_rules

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))
import make_corpus as corpus

YEAR = 2024
FILLER = corpus.FILLER  # valid rows after the hostile ones in every publishing export


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return corpus.build(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def strict(files) -> Path:
    return files["empty"].parent / "survey.yaml"  # max_rejected_share: 0.2


@pytest.fixture(scope="module")
def lenient(files) -> Path:
    return files["empty"].parent / "survey_lenient.yaml"  # max_rejected_share: 1.0


def _one_paragraph(message: str) -> None:
    assert message.strip(), "empty message"
    assert "\n" not in message.strip(), f"more than one line: {message!r}"
    assert "Traceback" not in message


def _nothing_published(output: Path) -> None:
    link = output / f"survey_year={YEAR}"
    assert not link.exists() and not link.is_symlink()
    written = [p for p in output.rglob("*") if p.suffix == ".parquet" or p.name == "_manifest.json"]
    assert written == [], written


# --- file-level errors --------------------------------------------------------------------------------

FILE_ERRORS: dict[str, list[str]] = {
    # case: fragments the message must hold, besides the file's path
    "empty": ["empty", "no header"],
    "header_only": ["header but no data rows"],
    "semicolons": ["may not be comma-separated", "semicolons"],
    "tabs": ["may not be comma-separated", "tabs"],
    "latin1": ["not valid UTF-8", "Latin-1"],
    "utf16_bom": ["not UTF-8", "UTF-16"],
    "utf16le_no_bom": ["not UTF-8", "UTF-16"],
    "utf16be_no_bom": ["not UTF-8", "UTF-16"],
    "duplicate_header": ["'cro'", "twice"],
    "missing_attribute": ["missing column", "speed"],
    "parquet_truncated": ["Parquet", "truncated"],
    "parquet_struct": ["'cro'", "struct"],
    "parquet_list": ["'quality'", "list"],
    # from an attacker's trial: each message names lines, columns and counts, never a field's content
    "latin1_late": ["not valid UTF-8", f"line {corpus.LATIN1_LATE_LINE} ", "byte offset", "Latin-1"],
    "headerless": ["the first row looks like data", "none of its 7 cells is a column name the survey knows"],
    "headerless_repeated": ["the first row looks like data", "none of its 7 cells"],
    "stray_quote": [
        f"line {corpus.STRAY_QUOTE_LINE}: a quote opens a field",
        f"runs on to line {corpus.STRAY_QUOTE_LINE + corpus.STRAY_QUOTE_SWALLOWED}",
        f"the {corpus.STRAY_QUOTE_SWALLOWED} lines after it",
        "Close the quote (or remove it)",
    ],
    "stray_quote_to_end": ["line 4: a quote opens a field", "never closed", "the 5 lines after it", "Close the quote"],
    "two_row_header": ["2 empty column names (columns 6, 7 of 7)", "quality, speed, cost", "made one row"],
    "trailing_empty_header_values": [
        "2 empty column names (columns 8, 9 of 9)",
        "name those columns or delete them",
        "every value in them is empty",
    ],
    "xlsx_merged_header": ["3 empty column names (columns B, C, D)", "made one row", "first row of the first sheet"],
    "xlsx_unsaved_formulas": [
        "6 cells of column 'last_engaged' (column D) hold formulas with no saved value",
        "Open the workbook in the spreadsheet program and save it",
    ],
}


def test_every_file_level_error_of_the_corpus_has_its_message_stated():
    assert tuple(FILE_ERRORS) == corpus.FILE_LEVEL_ERRORS


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_file_level_error_in_process(files, lenient, case):
    path = files[case]
    with pytest.raises(ExportError) as raised:
        read_export(path, load_config(lenient))
    message = str(raised.value)
    assert str(path) in message
    problem = message.replace(str(path), "")  # fragments must come from the text, not the file's name
    for fragment in FILE_ERRORS[case]:
        assert fragment in problem, (fragment, message)
    _one_paragraph(message)


def _cli(capsys, monkeypatch, config: Path, export: Path, root: Path) -> tuple[int, str, str, Path, Path]:
    from cli.main import main

    output, quarantine = root / "output", root / "quarantine"
    capsys.readouterr()
    code = main(
        [
            "run",
            "--release",
            "--config",
            str(config),
            "--export",
            str(export),
            "--output",
            str(output),
            "--quarantine",
            str(quarantine),
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err, output, quarantine


def _cli_message(err: str) -> str:
    """The command line's own message: the stderr lines from `cro-awards: ` on (Prefect's log lines,
    if any, come before)."""
    lines = err.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("cro-awards: ")]
    assert len(starts) == 1, f"expected one cro-awards message in stderr: {err!r}"
    return "\n".join(lines[starts[0] :])


CLI_CASES = ["empty", "semicolons", "latin1", "utf16le_no_bom", "parquet_truncated", "parquet_struct"]
"""A representative few of FILE_ERRORS through the command line (each run costs about 3 s)."""


@pytest.mark.e2e
@pytest.mark.prefect
@pytest.mark.parametrize("case", CLI_CASES)
def test_file_level_error_through_the_command_line(prefect_server, capsys, monkeypatch, tmp_path, files, lenient, case):
    path = files[case]
    code, out, err, output, _ = _cli(capsys, monkeypatch, lenient, path, tmp_path)
    assert code == 3, err
    message = _cli_message(err)
    _one_paragraph(message)
    assert str(path) in message
    for fragment in FILE_ERRORS[case]:
        assert fragment in message.replace(str(path), "")
    assert "Traceback" not in out + err
    _nothing_published(output)


# --- every row bad: too many rejected rows (exit 4), the quarantine still written ----------------------

ALL_BAD = {
    1: ["missing_respondent_id"],
    2: ["invalid_rd_spend"],
    3: ["unknown_cro"],
    4: ["invalid_last_engaged"],
    5: ["outside_recency_window"],
    6: ["invalid_rating"],
    7: ["no_ratings"],
    8: ["duplicate_evaluation"],
    9: ["duplicate_evaluation"],
    10: ["malformed_row"],
}


def test_all_bad_rows_in_process(files, strict):
    assert run_rules(strict, files["all_bad"]) == ALL_BAD


@pytest.mark.e2e
@pytest.mark.prefect
def test_all_bad_fails_on_max_rejected_share_and_still_writes_the_quarantine(
    prefect_server, capsys, monkeypatch, tmp_path, files, strict
):
    path = files["all_bad"]
    code, out, err, output, quarantine = _cli(capsys, monkeypatch, strict, path, tmp_path)
    assert code == 4, err
    message = _cli_message(err)
    _one_paragraph(message)
    assert str(path) in message
    assert "max_rejected_share" in message and "10 of 10" in message
    assert "Traceback" not in out + err
    _nothing_published(output)
    (written,) = (quarantine / f"survey_year={YEAR}").glob("*/rejected_evaluations.parquet")  # the run's own
    assert not (quarantine / f"survey_year={YEAR}" / "rejected_evaluations.parquet").exists(), "nothing released"
    rejected = pq.read_table(written)
    assert {r["source_row"]: r["reasons"] for r in rejected.to_pylist()} == ALL_BAD
    assert rejected.to_pylist()[9]["raw_text"] == "B10,1200,Northwind,2023-06-01,4"
    assert dict(rejected.to_pylist()[9]["fields"]) == {
        **dict.fromkeys(corpus.HEADER),
        **dict(zip(corpus.HEADER[:5], ["B10", "1200", "Northwind", "2023-06-01", "4"], strict=True)),
    }


# --- exports that publish: reasons by source_row (in process), then the real flow ----------------------

PUBLISHING: dict[str, tuple[int, dict[int, list[str]]]] = {
    # case: (rows read, {source_row: reasons} of the quarantined rows)
    "utf8_bom": (1 + FILLER, {}),
    "quoted": (3 + FILLER, {3: ["unknown_cro"]}),
    "extra_column": (1 + FILLER, {}),
    "ragged": (3 + FILLER, {1: ["malformed_row"], 2: ["malformed_row"]}),
    "big_ignored": (1 + FILLER, {}),
    "big_cro": (1 + FILLER, {1: ["unknown_cro"]}),
    "xlsx_typed": (
        6 + FILLER,
        {
            1: ["invalid_last_engaged"],  # 45321, a date serial: a whole number reads as its digits
            2: ["invalid_last_engaged"],  # 45321.5
            5: ["no_ratings"],  # formulas with no saved value are blank
            6: ["invalid_rating"],  # a formula whose saved value is 6
        },
    ),
    "parquet_float_ratings": (
        6 + FILLER,
        {
            2: ["invalid_rating"],  # 3.5 (row 4's NaN is no rating, like null)
            6: ["invalid_rating"],  # inf
        },
    ),
    "parquet_int_dates": (
        3,
        {  # an int64 column holds no date: every row (published tables empty)
            1: ["invalid_last_engaged"],  # 20230601
            2: ["invalid_last_engaged"],  # 45321
            3: ["invalid_last_engaged"],  # null
        },
    ),
    "cro_variants": (len(corpus.CRO_VARIANTS), {}),
    "ratings": (
        len(corpus.RATINGS) + FILLER,
        {3: ["invalid_rating"], 4: ["invalid_rating"], 5: ["invalid_rating"], 6: ["invalid_rating"]},
    ),
    "dates": (3 + FILLER, {1: ["invalid_last_engaged"], 2: ["invalid_last_engaged"]}),
    "duplicate_rater": (4 + FILLER, {1: ["duplicate_evaluation"], 3: ["duplicate_evaluation"]}),
    "sql_lookalikes": (
        5 + FILLER,
        {
            2: ["unknown_cro"],
            4: ["invalid_rating"],
            5: ["unknown_cro", "invalid_rating"],
        },
    ),
    "tiny_valid": (2, {}),  # two valid rows; every cell below min_cell_size (published tables empty)
    # from an attacker's trial
    "trailing_empty_header": (2 + FILLER, {}),  # three nameless, empty trailing columns: ignored
    "xlsx_hidden_rows": (4 + FILLER, {}),  # hidden rows are read and scored (and counted)
    "source_row_column": (2 + FILLER, {2: ["unknown_cro"]}),  # an export column named source_row
    "colliding_columns": (3 + FILLER, {1: ["unknown_cro"], 3: ["malformed_row"]}),  # raw_text, reasons, CRO, ...
    "parquet_nan_ratings": (FILLER, {}),  # NaN in a float rating column is no rating
}


def _flow_cases() -> list:
    return list(PUBLISHING)


@pytest.mark.parametrize("case", list(PUBLISHING))
def test_rows_quarantined_for_their_reasons(files, lenient, case):
    read, expected = PUBLISHING[case]
    assert read_export(files[case], load_config(lenient)).n_read == read
    assert run_rules(lenient, files[case]) == expected


class Run:
    def __init__(self, summary: dict[str, Any], output: Path, quarantine: Path, seconds: float, rss_growth_mb: float):
        self.summary, self.output, self.quarantine = summary, output, quarantine
        self.seconds, self.rss_growth_mb = seconds, rss_growth_mb

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.output / f"survey_year={YEAR}" / "_manifest.json").read_text())

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return pq.read_table(self.quarantine / f"survey_year={YEAR}" / "rejected_evaluations.parquet").to_pylist()

    def table(self, name: str) -> list[dict[str, Any]]:
        return pq.read_table(self.output / f"survey_year={YEAR}" / f"{name}.parquet").to_pylist()

    def quarantined(self, source_row: int) -> dict[str, Any]:
        [found] = [r for r in self.rejected if r["source_row"] == source_row]
        return found

    def fields(self, source_row: int) -> dict[str, Any]:
        """The quarantined row's fields: export column name (as written) -> text."""
        return dict(self.quarantined(source_row)["fields"])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def flow_run(prefect_server, tmp_path_factory, files, lenient):
    """Run the real flow once per case (on first use) with the lenient YAML."""
    from flows.awards import cro_awards_flow

    runs: dict[str, Run] = {}

    def run(case: str) -> Run:
        if case not in runs:
            root = tmp_path_factory.mktemp(f"flow-{case}")
            output, quarantine = root / "output", root / "quarantine"
            before, start = _peak_rss_mb(), time.perf_counter()
            summary = cro_awards_flow(
                config=str(lenient),
                export=str(files[case]),
                output=str(output),
                quarantine=str(quarantine),
                release=True,
            )
            runs[case] = Run(summary, output, quarantine, time.perf_counter() - start, _peak_rss_mb() - before)
        return runs[case]

    return run


@pytest.mark.e2e
@pytest.mark.prefect
@pytest.mark.parametrize("case", _flow_cases())
def test_flow_publishes_with_counts_and_quarantine(flow_run, case):
    read, expected = PUBLISHING[case]
    run = flow_run(case)
    counts = run.manifest["counts"]
    assert counts["read"] == read
    assert counts["quarantined"] == len(expected)
    assert counts["accepted"] == read - len(expected)
    assert counts["read"] == counts["accepted"] + counts["quarantined"]
    by_reason: dict[str, int] = {}
    for reasons in expected.values():
        for reason in reasons:
            by_reason[reason] = by_reason.get(reason, 0) + 1
    assert counts["quarantined_by_reason"] == by_reason
    assert {r["source_row"]: r["reasons"] for r in run.rejected} == expected
    assert run.manifest["export"]["file_name"] == run.summary.export.rsplit("/", 1)[-1]
    assert set(run.manifest["tables"]) == {"attribute_scores", "composite_scores", "awards"}


# --- per-case details: what was read, what the quarantine keeps -----------------------------------------


def _read(files, lenient, case):
    return read_export(files[case], load_config(lenient))


def test_utf8_bom_header_is_clean(files, lenient):
    export = _read(files, lenient, "utf8_bom")
    assert export.named().column_names == ["source_row", *corpus.HEADER]
    assert export.named()["respondent_id"].to_pylist()[0] == "U1"


def test_quoted_fields_are_read_verbatim(files, lenient):
    export = _read(files, lenient, "quoted")
    first = export.named().slice(0, 1).to_pylist()[0]
    assert first["respondent_id"] == corpus.QUOTED_ID
    assert first["note"] == corpus.QUOTED_NOTE
    assert export.ignored_columns == ("note",)


@pytest.mark.e2e
@pytest.mark.prefect
def test_quoted_unknown_cro_kept_verbatim_in_quarantine(flow_run):
    run = flow_run("quoted")
    assert run.fields(3)["cro"] == corpus.QUOTED_CRO
    assert run.fields(3)["note"] == '""'
    assert run.quarantined(3)["raw_text"] is None


def test_extra_columns_are_ignored(files, lenient):
    export = _read(files, lenient, "extra_column")
    assert export.ignored_columns == ("comments", "Unnamed: 9", "extra")


@pytest.mark.e2e
@pytest.mark.prefect
def test_ragged_rows_keep_their_raw_text(flow_run):
    run = flow_run("ragged")
    columns = list(pq.read_schema(run.quarantine / f"survey_year={YEAR}" / "rejected_evaluations.parquet").names)
    assert columns == ["source_row", "reasons", "reason_fields", "raw_text", "fields"]
    assert run.quarantined(1)["raw_text"] == corpus.RAGGED_MORE
    assert run.quarantined(2)["raw_text"] == corpus.RAGGED_FEWER
    # fields placed by position: the surplus field is only in raw_text; missing ones are null
    more, fewer = run.fields(1), run.fields(2)
    assert list(more) == list(fewer) == list(corpus.HEADER)
    assert list(more.values()) == corpus.RAGGED_MORE.split(",")[:7]
    assert list(fewer.values()) == ["", "-5", "Nobody", "2024-02-30", "9", None, None]


@pytest.mark.parametrize("case", ["big_ignored", "big_cro"])
def test_ten_megabyte_field_in_process_is_cheap(files, lenient, case):
    before, start = _peak_rss_mb(), time.perf_counter()
    export = _read(files, lenient, case)
    reasons = run_rules(lenient, files[case])
    seconds, growth = time.perf_counter() - start, _peak_rss_mb() - before
    column = "comments" if case == "big_ignored" else "cro"
    assert export.named()[column].to_pylist()[0] == corpus.big_text()
    assert reasons == PUBLISHING[case][1]
    assert growth < 600, f"{case}: peak RSS grew {growth:.0f} MB for a 10 MB field (in {seconds:.1f} s)"


@pytest.mark.e2e
@pytest.mark.prefect
@pytest.mark.parametrize("case", ["big_ignored", "big_cro"])
def test_ten_megabyte_field_through_the_flow(flow_run, case):
    run = flow_run(case)
    assert run.rss_growth_mb < 800, f"{case}: peak RSS grew {run.rss_growth_mb:.0f} MB (in {run.seconds:.1f} s)"
    if case == "big_cro":
        kept = run.fields(1)["cro"]
        assert len(kept) == corpus.BIG_FIELD_BYTES and kept == corpus.big_text()


def test_xlsx_cells_read_by_value(files, lenient):
    rows = {r["source_row"]: r for r in _read(files, lenient, "xlsx_typed").named().to_pylist()}
    assert rows[1]["last_engaged"] == "45321"
    assert rows[2]["last_engaged"] == "45321.5"
    assert (rows[3]["quality"], rows[3]["speed"] or "") == ("4", "")  # saved value 4; none saved: blank
    assert (rows[4]["cro"], rows[4]["last_engaged"]) == ("Bluefen", "2023-06-01")  # formula's saved text
    assert [rows[5][name] or "" for name in ("quality", "speed", "cost")] == ["", "", ""]
    assert rows[6]["quality"] == "6"


@pytest.mark.e2e
@pytest.mark.prefect
def test_xlsx_quarantine_keeps_cell_text(flow_run):
    run = flow_run("xlsx_typed")
    assert run.fields(1)["last_engaged"] == "45321"
    assert run.fields(6)["quality"] == "6"


@pytest.mark.e2e
@pytest.mark.prefect
def test_parquet_float_ratings_in_quarantine(flow_run):
    run = flow_run("parquet_float_ratings")
    assert [run.fields(n)["quality"] for n in (2, 6)] == ["3.5", "inf"]
    assert run.fields(2)["rd_spend_musd"] == "87.5"  # a string column is read as it is


def test_parquet_int_dates_read_as_digits(files, lenient):
    export = _read(files, lenient, "parquet_int_dates")
    assert export.named()["last_engaged"].to_pylist() == ["20230601", "45321", None]


@pytest.mark.e2e
@pytest.mark.prefect
def test_parquet_int_dates_in_quarantine(flow_run):
    run = flow_run("parquet_int_dates")
    assert [run.fields(n)["last_engaged"] for n in (1, 2)] == ["20230601", "45321"]
    assert all(table["rows"] == 0 for table in run.manifest["tables"].values())


@pytest.mark.e2e
@pytest.mark.prefect
def test_tiny_valid_export_publishes_empty_tables(flow_run):
    run = flow_run("tiny_valid")
    assert run.manifest["counts"] == {"read": 2, "accepted": 2, "quarantined": 0, "quarantined_by_reason": {}}
    assert run.table("composite_scores") == [] and run.table("awards") == []


@pytest.mark.e2e
@pytest.mark.prefect
def test_cro_spellings_are_published_under_canonical_ids_and_names(flow_run):
    run = flow_run("cro_variants")
    ids = ("northwind_clinical", "aldercrest_research", "bluefen_biometrics")  # derived from the names
    canonical = set(zip(ids, corpus.CANONICAL, strict=True))
    overall = {(r["cro"], r["cro_name"]) for r in run.table("attribute_scores") if r["segment"] == "overall"}
    assert overall == canonical
    assert {(r["cro"], r["cro_name"]) for r in run.table("composite_scores")} <= canonical


@pytest.mark.e2e
@pytest.mark.prefect
def test_ratings_and_dates_kept_verbatim(flow_run):
    ratings = flow_run("ratings")
    assert [ratings.fields(n)["quality"] for n in (3, 4, 5, 6)] == ["4,0", "1e0", "nan", "inf"]
    dates = flow_run("dates")
    assert [dates.fields(n)["last_engaged"] for n in (1, 2)] == ["2024-2-3", "2024-02-30"]


@pytest.mark.e2e
@pytest.mark.prefect
def test_duplicate_rater_both_copies_quarantined(flow_run):
    run = flow_run("duplicate_rater")
    assert [(dict(r["fields"])["respondent_id"], dict(r["fields"])["cro"]) for r in run.rejected] == [
        ("T1", "Northwind Clinical"),
        ("T1", " nwc "),
    ]


def test_sql_and_formula_lookalikes_are_plain_data(files, lenient):
    ids = _read(files, lenient, "sql_lookalikes").column("respondent_id").to_pylist()
    assert ids[0] == corpus.SQL_TEXT
    assert ids[2] == corpus.HYPERLINK


@pytest.mark.e2e
@pytest.mark.prefect
def test_sql_and_formula_lookalikes_kept_verbatim(flow_run):
    run = flow_run("sql_lookalikes")
    assert run.fields(2)["cro"] == corpus.SQL_TEXT
    assert run.fields(4)["quality"] == "=1+1"
    assert run.fields(5)["cro"] == "Robert'); DROP TABLE raw_export;--"
    assert run.fields(5)["speed"] == "$$ select 1 $$"
    assert run.manifest["counts"]["accepted"] == 2 + FILLER  # rows 1 and 3: the SQL-like and =HYPERLINK ids


def test_nested_values_in_an_ignored_parquet_column_are_kept_as_json_text(tmp_path, files, lenient):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cro_awards.reading.config import load_config
    from cro_awards.reading.extract import read_export

    source = pq.read_table(files["parquet_float_ratings"])
    path = tmp_path / "nested.parquet"
    pq.write_table(source.append_column("extra_struct", pa.array([{"k": i} for i in range(source.num_rows)])), path)
    exported = read_export(path, load_config(lenient))
    assert exported.column("extra_struct").to_pylist()[:2] == ['{"k": 0}', '{"k": 1}']
    assert "extra_struct" in exported.ignored_columns


# --- from an attacker's trial: fields kept apart from the quarantine's columns; what reading notices ------

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"


def _validated(config: Path, export: Path):
    from cro_awards.run.pipeline import run_pipeline

    return run_pipeline(load_config(config), export, through="validate")


def test_an_export_column_named_source_row_is_a_field_like_any_other(files, lenient):
    result = _validated(lenient, files["source_row_column"])
    export = result.export
    assert export.columns == (*corpus.HEADER, "source_row")
    assert export.table.column_names == ["source_row", *(f"field_{i}" for i in range(1, 9))]
    assert export.table["source_row"].to_pylist() == list(range(1, 3 + FILLER))  # the reader's numbering
    assert export.column("source_row").to_pylist()[:2] == ["100", "101"]  # the export's own column
    [rejected] = result.validation.rejected.to_pylist()
    assert (rejected["source_row"], rejected["reasons"], rejected["raw_text"]) == (2, ["unknown_cro"], None)
    assert rejected["fields"] == [
        *corpus.row(respondent_id="SR2", cro="Nobody").items(),
        ("source_row", "101"),
    ]  # every column, in header order


def test_colliding_column_names_overwrite_nothing_and_are_not_renamed(files, lenient, tmp_path):
    import duckdb

    from cro_awards.publication.publish import write_quarantine

    rejected = _validated(lenient, files["colliding_columns"]).validation.rejected
    assert rejected.column_names == ["source_row", "reasons", "reason_fields", "raw_text", "fields"]
    first, malformed = rejected.to_pylist()
    assert (first["source_row"], first["reasons"], first["raw_text"]) == (1, ["unknown_cro"], None)
    assert first["reason_fields"] == [("unknown_cro", ["cro"])]  # not CRO
    assert [name for name, _ in first["fields"]] == [*corpus.HEADER, *corpus.COLLIDING]  # no Reasons_1, CRO_1
    assert dict(first["fields"]) == {
        **corpus.row(respondent_id="CC1", cro="Nobody"),
        "source_row": "77",
        "raw_text": "platform text",
        "reasons": "none given",
        "Reasons": "R",
        "CRO": "Acme",
    }
    assert (malformed["source_row"], malformed["reasons"]) == (3, ["malformed_row"])
    assert malformed["reason_fields"] == [("malformed_row", [])]
    assert malformed["raw_text"] == "CC3,1200,Northwind,2023-06-01,4,3,5,78,t,r,R"
    assert dict(malformed["fields"])["Reasons"] == "R" and dict(malformed["fields"])["CRO"] is None  # by position
    # Written as the flow writes it, and read back in DuckDB by column name, case kept.
    path = write_quarantine(rejected, tmp_path / "quarantine", YEAR, "run-colliding")
    read_back = duckdb.connect().execute(
        "select source_row, reasons, fields['cro'], fields['CRO'], fields['source_row'], fields['reasons'] "
        "from read_parquet($path) order by source_row",
        {"path": str(path)},
    )
    assert read_back.fetchall() == [
        (1, ["unknown_cro"], "Nobody", "Acme", "77", "none given"),
        (3, ["malformed_row"], "Northwind", None, "78", "r"),
    ]


def test_trailing_nameless_empty_columns_are_ignored(files, lenient, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="cro_awards")
    export = _validated(lenient, files["trailing_empty_header"]).export
    assert export.columns == corpus.HEADER and export.dropped_empty_columns == 3
    assert export.ignored_columns == ()
    assert "Ignored 3 trailing column(s) with no name and no value" in caplog.messages


def test_nan_in_a_parquet_float_column_is_no_value(files, lenient):
    export = _read(files, lenient, "parquet_nan_ratings")
    quality = export.column("quality").to_pylist()
    assert quality[0] is None and quality[3] is None and quality[1] == str(corpus.filler()[1]["quality"])
    assert run_rules(lenient, files["parquet_nan_ratings"]) == {}  # was invalid_rating ("nan") on 5 of 9 rows


def test_hidden_rows_are_scored_and_counted_in_the_log_the_manifest_and_check(files, lenient, caplog):
    import logging

    from cro_awards.record.manifest import manifest
    from cro_awards.run.dry_run import check_export
    from cro_awards.run.pipeline import run_pipeline

    caplog.set_level(logging.INFO, logger="cro_awards")
    loaded = load_config(lenient)
    result = run_pipeline(loaded, files["xlsx_hidden_rows"])
    hidden = len(corpus.XLSX_HIDDEN_ROWS)
    assert result.export.hidden_rows == hidden
    assert result.counts == {"read": 4 + FILLER, "accepted": 4 + FILLER, "quarantined": 0}  # still scored
    assert any(f"{hidden} row(s) of the first sheet of hidden_rows.xlsx are hidden" in m for m in caplog.messages)
    written = manifest(result, loaded, "run-1", "2024-03-01T00:00:00+00:00")
    assert written.export.hidden_rows == hidden
    assert written.export.formulas_without_saved_value == {}
    report = check_export(lenient, files["xlsx_hidden_rows"])
    assert report.hidden_rows == hidden
    assert f"Hidden rows: {hidden} row(s) of the first sheet are hidden" in report.render()


def test_formulas_without_a_saved_value_are_counted_per_column(files, lenient, caplog):
    import logging

    from cro_awards.record.manifest import manifest
    from cro_awards.run.dry_run import check_export

    caplog.set_level(logging.INFO, logger="cro_awards")
    loaded = load_config(lenient)
    result = _validated(lenient, files["xlsx_typed"])
    counted = {"quality": 1, "speed": 2, "cost": 1}  # E6; F4, F6; G6 (E4 has a saved value)
    assert result.export.formulas_without_saved_value == counted
    assert (
        "2 cell(s) of column 'speed' of typed.xlsx hold formulas with no saved value and are read as blank: open "
        "the workbook in the spreadsheet program and save it"
    ) in caplog.messages
    assert manifest(result, loaded, "run-1", "2024-03-01T00:00:00+00:00").export.formulas_without_saved_value == counted
    report = check_export(lenient, files["xlsx_typed"])
    assert report.formulas_without_saved_value == counted
    assert "Formulas: 2 cell(s) of column 'speed' hold formulas with no saved value" in report.render()


def test_a_stray_quote_in_the_sample_stops_the_run_naming_its_line(tmp_path):
    # The trial's recipe: one stray quote appended to line 100 of the sample took 45 lines into one
    # malformed row (1,456 rows read instead of 1,500), and the run passed.
    lines = SAMPLE_EXPORT.read_text(encoding="utf-8").split("\n")
    lines[99] += '"Good service, but slow'
    path = tmp_path / "export_2024.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        read_export(path, load_config(SAMPLE_CONFIG))
    message = str(raised.value)
    _one_paragraph(message)
    problem = message.replace(str(path), "")
    assert "line 100: a quote opens a field there that runs on to line 145" in problem
    assert "the 45 lines after it" in problem and "Close the quote (or remove it)" in problem
    assert "Good service" not in problem and "R0000" not in problem
    # The sample as bundled, whose comments hold well-formed quoted line breaks, is read whole.
    assert read_export(SAMPLE_EXPORT, load_config(SAMPLE_CONFIG)).n_read == 1500
