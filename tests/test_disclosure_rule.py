"""The countable-cells rule (docs/method.md, "Disclosure control"), checked on what a run publishes.

A (segment, CRO, attribute) cell rated by fewer than min_cell_size respondents counts nowhere. Checked:
- **perturbation invariance**, the property that defeats every attack at once (linear, bounded,
  integer): change every rating inside the cells that are not countable (the counts kept) and every
  published table (byte for byte, as written), the report, the manifest (but for the export's own name
  and SHA-256) and the draft's private contributions stay identical. On the bundled 2024 sample and on
  random surveys;
- **never refused**: random surveys of the shape that made the old design refuse (every evaluation
  rates every attribute, a CRO with 10+ Small Pharma evaluations beside 1-2 Big Pharma ones) at
  min_evaluations 3-10 publish, and equal the independent reference (tests/reference.py);
- **the audit is a guard**: a planted bug that lets thin cells reach the composites fails the run
  (DisclosureError, the cell named, never a value); the same run without the bug passes.
The thin cells are found by the reference (`thin_cells`), not by the pipeline. No Prefect.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cro_awards.disclosure import audit as disclosure
from cro_awards.engine.errors import DisclosureError
from cro_awards.publication import columns
from cro_awards.reading.config import load_config
from cro_awards.record import manifest as manifests
from cro_awards.report import html as reporting
from cro_awards.run.pipeline import run_pipeline
from reference import DEFAULTS, read_rows, thin_cells
from tests.test_reference import assert_same, run_pipeline as published_rows, run_reference, write_survey

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"
SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
RUN_ID = "run-perturbation"
PUBLISHED_AT = "2026-12-07T00:00:00.000000Z"


def rewrite(config: dict, csv_path: Path, target: Path, *, perturb: bool) -> int:
    """Write `csv_path` again to `target` (same rows, same fields, one writer for both versions); with
    `perturb`, every rating in a cell that is not countable becomes another rating on the scale. Returns
    how many ratings were changed."""
    scale = {**DEFAULTS["rating_scale"], **(config.get("rating_scale") or {})}
    low, high = scale["min"], scale["max"]
    header, rows = read_rows(csv_path)
    renamed = config.get("columns") or {}
    position = {renamed.get(name, name): index for index, name in enumerate(header)}
    changes: dict[int, list[str]] = {}
    if perturb:
        for (_, _, attribute), source_rows in thin_cells(config, csv_path).items():
            for source_row in source_rows:
                changes.setdefault(source_row, []).append(attribute)
    changed = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for source_row, fields in rows:
        fields = list(fields)
        for attribute in changes.get(source_row, []):
            value = round(float(fields[position[attribute]].strip()))
            fields[position[attribute]] = str(low if value != low else high)
            changed += 1
        writer.writerow(fields)
    target.write_text(buffer.getvalue(), encoding="utf-8")
    return changed


def everything_published(yaml_path: Path, csv_path: Path) -> dict:
    """What a run would publish and keep, in comparable form: each table as written (Parquet bytes), the
    report, the manifest without the export's name and SHA-256, and the private contributions."""
    loaded = load_config(yaml_path, {"max_rejected_share": 1})
    result = run_pipeline(loaded, csv_path)
    manifest = manifests.manifest(result, loaded, RUN_ID, PUBLISHED_AT)
    manifest = manifest.with_(export={**manifest.to_json()["export"], "file_name": "export.csv", "sha256": "-"})
    written = {}
    for name, table in result.tables.items():
        described = columns.describe(
            name,
            table,
            survey_year=loaded.survey.survey_year,
            run_id=RUN_ID,
            configuration=manifest.effective,
        )
        sink = io.BytesIO()
        pq.write_table(described, sink, compression="zstd")
        written[name] = sink.getvalue()
    return {
        "tables": written,
        "report": reporting.render_report(result.tables, manifest, loaded.survey, history=[]),
        "manifest": manifest.to_json(),
        "contributions": result.contributions,
        "quarantine": result.validation.rejected.select(["source_row", "reasons"]).to_pylist(),
    }


def assert_invariant(config: dict, csv_path: Path, folder: Path) -> int:
    """Perturb the thin cells of (config, csv_path) and compare; return how many ratings were changed."""
    yaml_path = folder / "survey.yaml"
    yaml_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    plain, perturbed = folder / "plain.csv", folder / "perturbed.csv"
    rewrite(config, csv_path, plain, perturb=False)
    changed = rewrite(config, csv_path, perturbed, perturb=True)
    before, after = everything_published(yaml_path, plain), everything_published(yaml_path, perturbed)
    assert after["quarantine"] == before["quarantine"], "the perturbation must keep every row's verdict"
    for name in before["tables"]:
        assert after["tables"][name] == before["tables"][name], f"{name}.parquet differs"
    assert after["manifest"] == before["manifest"]
    assert after["report"] == before["report"]
    assert after["contributions"].equals(before["contributions"])
    return changed


def test_perturbing_the_thin_cells_of_the_sample_changes_nothing_published(tmp_path: Path) -> None:
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    config["sample_export"] = str(SAMPLE_EXPORT)
    changed = assert_invariant(config, SAMPLE_EXPORT, tmp_path)
    assert changed > 200, "the sample has a few hundred ratings in cells that are not countable"


def test_the_perturbation_has_teeth_where_a_cell_is_countable(tmp_path: Path) -> None:
    """The comparison sees a change of one rating in a countable cell (so equality above is not vacuous)."""
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    yaml_path = tmp_path / "survey.yaml"
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    plain = tmp_path / "plain.csv"
    rewrite(config, SAMPLE_EXPORT, plain, perturb=False)
    header, rows = read_rows(plain)
    thin = {row for source_rows in thin_cells(config, plain).values() for row in source_rows}
    index = header.index("data_quality")
    source_row, fields = next((r, f) for r, f in rows if r not in thin and f[index].strip() in {"1", "2", "3", "4"})
    text = plain.read_text(encoding="utf-8").splitlines()
    fields = list(fields)
    fields[index] = "5"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)
    text[source_row] = buffer.getvalue()
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join(text) + "\n", encoding="utf-8")
    before, after = everything_published(yaml_path, plain), everything_published(yaml_path, changed)
    assert after["tables"]["attribute_scores"] != before["tables"]["attribute_scores"]


# --- random surveys of the shape that made the old design refuse ---------------------------------------

ATTRIBUTES = ("a1", "a2", "a3", "a4", "a5")


@st.composite
def grid_surveys(draw):
    """(config, csv text): 3-6 CROs, 3-5 attributes in 1-3 categories (one attribute in two), every
    evaluation rating every attribute (a grid question) or, now and then, skipping some; per CRO a Small
    Pharma count of 0-15 and a Big Pharma count favouring 1-2 beside it (the first CRO: 10-15 and 1-2)."""
    attributes = list(ATTRIBUTES[: draw(st.integers(3, 5))])
    categories = {"quality": attributes[:2], "speed": attributes[1:3]}
    if draw(st.booleans()):
        categories["reliability"] = attributes[2:]
    min_evaluations = draw(st.integers(3, 10))
    config = {
        "survey_year": 2024,
        "survey_close": dt.date(2024, 3, 31),
        "min_evaluations": min_evaluations,
        "min_cell_size": draw(st.integers(3, min(5, min_evaluations))),
        "min_cros_for_awards": draw(st.integers(1, 3)),
        "max_rejected_share": 1.0,
        "cros": [{"name": f"CRO {letter}", "aliases": []} for letter in "ABCDEF"[: draw(st.integers(3, 6))]],
        "attributes": {attribute: f"Label {attribute}" for attribute in attributes},
        "categories": categories,
    }
    lines = ["respondent_id,rd_spend_musd,cro,last_engaged," + ",".join(attributes)]
    respondent = 0
    for index, cro in enumerate(config["cros"]):
        small = draw(st.integers(10, 15) if index == 0 else st.integers(0, 15))  # the first: the shape
        big = draw(st.sampled_from((1, 2)) if index == 0 else st.sampled_from((0, 1, 1, 2, 2, 3, 5, 12)))
        for spend, count in (("50", small), ("5000", big)):
            for _ in range(count):
                respondent += 1
                grid = draw(st.integers(0, 4)) > 0
                ratings = [str(draw(st.integers(1, 5))) if grid or draw(st.booleans()) else "" for _ in attributes]
                lines.append(f"R{respondent},{spend},{cro['name']},2024-01-15," + ",".join(ratings))
    return config, "\n".join(lines) + "\n"


SURVEY_SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SURVEY_SETTINGS
@given(grid_surveys())
def test_grid_surveys_with_a_thin_segment_publish_and_equal_the_reference(survey) -> None:
    config, text = survey
    with tempfile.TemporaryDirectory(prefix="cro-awards-grid-") as folder:
        yaml_path, csv_path = write_survey(Path(folder), config, text)
        assert_same(published_rows(yaml_path, csv_path), run_reference(yaml_path, csv_path))


@SURVEY_SETTINGS
@given(grid_surveys())
def test_grid_surveys_are_invariant_to_their_thin_cells(survey) -> None:
    config, text = survey
    with tempfile.TemporaryDirectory(prefix="cro-awards-grid-") as folder:
        _, csv_path = write_survey(Path(folder), config, text)
        assert_invariant(config, csv_path, Path(folder))


def test_the_shape_that_was_refused_publishes_the_thin_segment_nowhere(tmp_path: Path) -> None:
    """The issue's shape, written out: CRO A has 12 Small Pharma evaluations and 2 Big Pharma ones, all
    rating every attribute. The old design's eligible Overall and Small Pharma composites gave Big
    Pharma's exactly and the run stopped (exit 9). Now the two Big Pharma evaluations count nowhere:
    A has no Big Pharma row, its Overall equals its Small Pharma (counts included), and the run publishes."""
    lines = ["respondent_id,rd_spend_musd,cro,last_engaged,a1,a2"]
    for number in range(12):
        lines.append(f"S{number},50,CRO A,2024-01-15,{3 + number % 3},{2 + number % 4}")
    lines += ["B1,5000,CRO A,2024-01-15,1,5", "B2,5000,CRO A,2024-01-15,5,1"]
    for cro, offset in (("CRO B", 0), ("CRO C", 1)):
        for number in range(12):
            lines.append(f"{cro[-1]}{number},50,{cro},2024-01-15,{1 + (number + offset) % 5},{1 + number % 5}")
    config = {
        "survey_year": 2024,
        "survey_close": dt.date(2024, 3, 31),
        "min_evaluations": 10,
        "min_cell_size": 3,
        "max_rejected_share": 1.0,
        "cros": [{"name": name, "aliases": []} for name in ("CRO A", "CRO B", "CRO C")],
        "attributes": {"a1": "A1", "a2": "A2"},
        "categories": {"quality": ["a1", "a2"]},
    }
    yaml_path, csv_path = write_survey(tmp_path, config, "\n".join(lines) + "\n")
    quarantine, tables = published_rows(yaml_path, csv_path)
    assert_same((quarantine, tables), run_reference(yaml_path, csv_path))
    mine = {(r["segment"], r["attribute"]): r for r in tables["attribute_scores"] if r["cro"] == "cro_a"}
    assert ("big_pharma", "a1") not in mine and ("big_pharma", "a2") not in mine
    for attribute in ("a1", "a2"):
        assert mine[("overall", attribute)]["n_ratings"] == mine[("small_pharma", attribute)]["n_ratings"] == 12
        assert mine[("overall", attribute)]["score"] == mine[("small_pharma", attribute)]["score"]
    composites = {r["segment"]: r for r in tables["composite_scores"] if r["cro"] == "cro_a"}
    assert set(composites) == {"small_pharma", "overall"}
    assert composites["overall"]["n_evaluations"] == 12, "the Big Pharma evaluations count in no n_evaluations"
    assert composites["overall"]["composite"] == composites["small_pharma"]["composite"]


# --- the audit as a guard -------------------------------------------------------------------------------


@pytest.fixture
def planted(monkeypatch):
    """The planted bug of tests/faults/sitecustomize.py, in process: thin cells reach the composites."""
    from cro_awards.engine import sql
    from tests.faults.sitecustomize import thin_cells_in_composites

    monkeypatch.setattr(sql, "sql_text", sql.sql_text)  # restored afterwards
    thin_cells_in_composites()


def test_a_thin_cell_reaching_a_composite_fails_the_audit(planted) -> None:
    loaded = load_config(SAMPLE_CONFIG)
    with pytest.raises(DisclosureError) as caught:
        run_pipeline(loaded, SAMPLE_EXPORT)
    message = str(caught.value)
    assert "composites average the published attributes: not so for (" in message
    assert "bug in the pipeline" in message
    assert exit_code(caught.value) == 9


def test_without_the_planted_bug_the_audit_passes() -> None:
    result = run_pipeline(load_config(SAMPLE_CONFIG), SAMPLE_EXPORT)
    assert disclosure.audit(result.tables, load_config(SAMPLE_CONFIG).survey.category_rows(), _params()) == []


def exit_code(error: Exception) -> int:
    return error.exit_code  # type: ignore[attr-defined]


def _params() -> dict:
    from cro_awards.method import transform

    return transform.method_parameters(load_config(SAMPLE_CONFIG).survey)
