"""The disclosure audit stops a run whose tables break the countable-cells rule (rule D5): `cro-awards
run` on the bundled sample, with a planted bug that lets the cells rated by fewer than min_cell_size
respondents reach the composites (tests/faults/sitecustomize.py, `CRO_AWARDS_FAULT=thin_cells_in_composites`).
The run must fail with exit code 9 and a one-paragraph message naming a cell, never a value, and publish
nothing, although asked to release (`--release`): no year link, no table, no draft. Without the fault
the same sample passes the audit (tests/test_disclosure_rule.py): the fault, not the data, is caught.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, RUN_TIMEOUT, SAMPLE_CONFIG, cli_run_env

pytestmark = [pytest.mark.e2e, pytest.mark.prefect, pytest.mark.timeout(2 * RUN_TIMEOUT + 60)]

FAULTS = PROJECT_ROOT / "tests" / "faults"
CLI = [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())"]


def _run(tmp_path: Path, name: str, fault: str | None) -> tuple[subprocess.CompletedProcess, Path]:
    output = tmp_path / name / "output"
    extra = {"PYTHONPATH": os.pathsep.join([str(FAULTS), os.environ.get("PYTHONPATH", "")])}
    if fault:
        extra["CRO_AWARDS_FAULT"] = fault
    home = tmp_path / name / "prefect"
    home.mkdir(parents=True)
    env = cli_run_env(home, PREFECT_LOGGING_LEVEL="WARNING", **extra)
    command = [*CLI, "run", "--release", "--config", str(SAMPLE_CONFIG), "--output", str(output)]
    command += ["--quarantine", str(tmp_path / name / "quarantine")]
    done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    return done, output


def test_the_audit_stops_a_publication_where_thin_cells_reach_composites(tmp_path):
    done, output = _run(tmp_path, "planted", "thin_cells_in_composites")
    assert done.returncode == 9, done.stderr[-3000:]
    message = [line for line in done.stderr.splitlines() if "disclosure audit stopped the run" in line]
    assert message, done.stderr[-3000:]
    assert "bug in the pipeline" in message[-1]
    # The cell is named (check, segment, CRO, category), never a value: no digit but the settings' own.
    assert "composites average the published attributes: not so for (" in message[-1]
    link = output / "survey_year=2024"
    assert not link.exists() and not link.is_symlink(), "nothing may be published"
    assert not list(output.rglob("*.parquet")) if output.exists() else True, "no table under the output"
    drafts = output.parent / "drafts"
    assert not list(drafts.rglob("*.parquet")) if drafts.exists() else True, "no draft in the private store"
    # Without the fault the same sample passes the audit: tests/test_disclosure_rule.py (in process, cheaper
    # than a second command with its own temporary server), and every `run --release` of the crash tests.
