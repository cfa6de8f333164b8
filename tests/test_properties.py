"""Properties: the export's row order and the spelling of CRO names (aliases, case, surrounding spaces)
change no published number. Checked on the bundled sample, shuffled and respelled at random."""

import csv
import random
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings, strategies as st

from cro_awards.reading.config import load_config
from cro_awards.run.pipeline import run_pipeline
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG

SAMPLE = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"
LOADED = load_config(SAMPLE_CONFIG)


def _publish_in_process(export: Path) -> tuple[dict[str, pa.Table], int]:
    result = run_pipeline(LOADED, export)
    return result.tables, result.counts["quarantined"]


BASELINE = None


def _baseline():
    global BASELINE
    if BASELINE is None:
        BASELINE = _publish_in_process(SAMPLE)
    return BASELINE


def _respell(name: str, rng: random.Random) -> str:
    cro = next(
        (c for c in LOADED.survey.cros if name.strip().lower() in {s.lower() for s in (c.name, *c.aliases)}), None
    )
    if cro is None:
        return name
    spelling = rng.choice((cro.name, *cro.aliases))
    spelling = rng.choice((spelling, spelling.upper(), spelling.lower()))
    return rng.choice(("", " ", "\t", "\u00a0")) + spelling + rng.choice(("", "  ", "\u00a0"))


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), respell=st.booleans())
def test_row_order_and_cro_spellings_change_nothing(tmp_path_factory, seed, respell):
    rng = random.Random(seed)
    with SAMPLE.open(newline="", encoding="utf-8") as stream:
        header, *rows = list(csv.reader(stream))
    rng.shuffle(rows)
    if respell:
        column = header.index("cro")
        for row in rows:
            row[column] = _respell(row[column], rng)
    export = tmp_path_factory.mktemp("prop") / "export_2024.csv"
    with export.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream).writerows([header, *rows])
    tables, quarantined = _publish_in_process(export)
    expected_tables, expected_quarantined = _baseline()
    assert quarantined == expected_quarantined
    for name, table in expected_tables.items():
        assert tables[name].equals(table), f"{name} changed (bit for bit) when rows were shuffled or respelled"
