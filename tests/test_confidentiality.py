"""Confidentiality: nothing respondent-level reaches the outputs, logs, Prefect's database, artifacts or
stored results.

- Through the command line (Prefect, marked `prefect`): a run on an export with distinctive respondent ids
  and comments is scanned for them.
- In process (the fast tier): every file-level error of the hostile corpus (tests/hostile/make_corpus.py)
  is raised by `run_pipeline` and by `check_export`, and neither the message nor any log line of the
  run holds a field value of that file: each of the file's cells is cut into words (runs of letters,
  digits and `_`), and no word of four characters or more that is not a column name or a reason code
  may appear. Messages name files, lines, rows, columns and counts; a first row that may be data is not
  echoed. The log lines and the `check` report of the corpus's exports that publish are held to the
  same rule (for their data rows: their header names are column names), but for the CRO spellings
matching no CRO, which `check` lists (docs/contract.md, section 3).
"""

import csv
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cro_awards.engine.errors import ConfigError, ExportError
from cro_awards.publication.publish import QUARANTINE_FILE
from cro_awards.reading.config import REASON_CODES, load_config
from cro_awards.run.dry_run import check_export
from cro_awards.run.pipeline import run_pipeline
from tests.conftest import PROJECT_ROOT, RUN_TIMEOUT, SAMPLE_CONFIG, cli_run_env

sys.path.insert(0, str(Path(__file__).resolve().parent / "hostile"))
import make_corpus as corpus

MARK = "ZQXJ"  # respondent ids and comments carry it; no other text of the run does


def _distinctive_export(path):
    source = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
    with source.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    header = rows[0]
    respondent, comments = header.index("respondent_id"), header.index("comments")
    for row in rows[1:]:
        if row[respondent].strip():
            row[respondent] = f"{MARK}-{row[respondent].strip()}"
        row[comments] = f"{MARK} comment: the monitor was late, again"
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows(rows)


@pytest.mark.e2e
@pytest.mark.prefect
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_no_respondent_level_value_leaves_the_quarantine(tmp_path):
    export, home = tmp_path / "export_2024.csv", tmp_path / "prefect-home"
    output, quarantine = tmp_path / "output", tmp_path / "quarantine"
    _distinctive_export(export)
    env = cli_run_env(home, PREFECT_LOGGING_LEVEL="DEBUG")  # ephemeral mode: its own temporary server
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cli.main import main; sys.exit(main())",
            "run",
            "--config",
            str(SAMPLE_CONFIG),
            "--export",
            str(export),
            "--output",
            str(output),
            "--quarantine",
            str(quarantine),
            "--summary-json",
            str(tmp_path / "summary.json"),
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert run.returncode == 0, run.stderr
    assert MARK not in run.stdout and MARK not in run.stderr, "logs and printed output"
    scanned = 0
    for folder in (output, home):
        for path in folder.rglob("*"):
            if path.is_file():
                scanned += 1
                assert MARK.encode() not in path.read_bytes(), f"{path} holds respondent-level text"
    assert scanned >= 5, "the output and Prefect's database were scanned"
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert Path(summary["quarantine"]) == quarantine / "survey_year=2024" / summary["run_id"] / QUARANTINE_FILE
    rejected = pq.read_table(summary["quarantine"])
    assert any(MARK in (dict(fields).get("respondent_id") or "") for fields in rejected["fields"].to_pylist()), (
        "only the quarantine keeps them"
    )
    assert not quarantine.resolve().is_relative_to(output.resolve())


@pytest.mark.e2e
@pytest.mark.prefect
@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_published_scores_rest_on_at_least_min_cell_size(tmp_path, prefect_server):
    from flows.awards import cro_awards_flow

    summary = cro_awards_flow(
        config=str(SAMPLE_CONFIG),
        output=str(tmp_path / "out"),
        quarantine=str(tmp_path / "q"),
        min_cell_size=5,
        min_evaluations=10,
    )
    draft = Path(summary.published)
    assert draft.is_relative_to(tmp_path / "drafts"), "the run's draft, in the private store beside the output"
    attribute = pq.read_table(draft / "attribute_scores.parquet")
    composite = pq.read_table(draft / "composite_scores.parquet")
    assert min(attribute["n_ratings"].to_pylist()) >= 5
    assert min(composite["n_evaluations"].to_pylist()) >= 5


# --- in process: messages and log lines of the hostile corpus -----------------------------------------

ALLOWED = {*corpus.HEADER, *REASON_CODES, "2024"}
"""Words a message may hold although a file holds them too: column names, reason codes and the survey
year (the configuration's, which `check` names; the corpus's dates hold it too)."""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict[str, Path]:
    files = corpus.build(tmp_path_factory.mktemp("hostile"), corpus.SMALL)
    # One run first, so that the libraries' one-off lines (GX registering its metrics as it is imported)
    # are logged here rather than in whichever test comes first: the tests see the lines of their run.
    check_export(files["tiny_valid"].parent / "survey_lenient.yaml", files["tiny_valid"])
    return files


@pytest.fixture(scope="module")
def lenient(hostile) -> Path:
    return next(iter(hostile.values())).parent / "survey_lenient.yaml"


def _capture_logs(caplog) -> None:
    """Every log line of the project (DEBUG and up) and of the libraries it runs (INFO and up: their DEBUG
    lines describe their own machinery, e.g. GX's registry of pandas readers)."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="cro_awards")


def words(texts: list[str]) -> set[str]:
    """The words of four characters or more of `texts` that a message may not hold."""
    return {word for text in texts for word in re.findall(r"\w+", text) if len(word) >= 4} - ALLOWED


def leaks(text: str, forbidden: set[str]) -> list[str]:
    """The forbidden words that `text` holds as words (a longer word holding one is not a leak)."""
    return sorted(word for word in forbidden if re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text))


def test_the_leak_check_catches_the_trials_messages(hostile):
    # The two messages of the trial, as the reader used to write them, are caught.
    latin = words(corpus.field_texts(hostile["latin1_late"]))
    assert leaks("first bad byte at offset 484, b'9,R000009,1642,Bluefen Biom\\xe9'", latin)
    headerless = words(corpus.field_texts(hostile["headerless"]))
    assert leaks("missing column(s) respondent_id. The header has: R777001, 1200, Ironbark, 2023-06-01", headerless)


@pytest.mark.parametrize("case", corpus.FILE_LEVEL_ERRORS)
def test_file_level_errors_name_no_field_value(hostile, lenient, caplog, case):
    path = hostile[case]
    forbidden = words(corpus.field_texts(path)) if path.exists() else set()
    if case not in ("empty", "header_only"):
        assert forbidden, f"{case}: no words to look for: the check would be empty"
    _capture_logs(caplog)
    messages = []
    for attempt in (
        lambda: run_pipeline(load_config(lenient), path),
        lambda: check_export(lenient, path),
    ):
        with pytest.raises((ExportError, ConfigError)) as raised:
            attempt()
        messages.append(str(raised.value).replace(str(path), ""))
    logged = [record.getMessage() for record in caplog.records]
    for text in [*messages, *logged]:
        assert not leaks(text, forbidden), (case, leaks(text, forbidden), text)


PUBLISHING = [name for name in corpus.SMALL if name not in corpus.FILE_LEVEL_ERRORS and name != "all_bad"]


@pytest.mark.parametrize("case", PUBLISHING)
def test_log_lines_and_check_report_name_no_field_value(hostile, lenient, caplog, case):
    path = hostile[case]
    forbidden = words(corpus.field_texts(path, first_row=False))
    assert forbidden
    _capture_logs(caplog)
    report = check_export(lenient, path)  # run_pipeline through validation: its log lines, and the report
    for text in [record.getMessage() for record in caplog.records]:
        assert not leaks(text, forbidden), (case, leaks(text, forbidden), text)
    # The report lists every CRO spelling matching no CRO (issue 22: no quiet loss of a CRO), the CRO
    # column's text being a CRO's name, no respondent's data; no other field's word may appear.
    spellings = words([unmatched.spelling for unmatched in report.unmatched])
    for text in report.render().splitlines():
        assert not leaks(text, forbidden - spellings), (case, leaks(text, forbidden - spellings), text)
