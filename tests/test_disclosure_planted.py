"""The disclosure audit stops a run whose publication step leaks (rule D5): `cro-awards run` on the
bundled sample, with complementary suppression switched off by a planted fault
(tests/faults/sitecustomize.py, `CRO_AWARDS_FAULT=no_complementary_suppression`). The run must fail with
exit code 9 and a one-paragraph message naming a cell, and publish nothing, although asked to release
(`--release`): no year link, no table, no draft. The same command without the fault releases (the
fault, not the data, is what the audit catches).
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


def test_the_audit_stops_a_publication_without_complementary_suppression(tmp_path):
    done, output = _run(tmp_path, "planted", "no_complementary_suppression")
    assert done.returncode == 9, done.stderr[-3000:]
    message = [line for line in done.stderr.splitlines() if "disclosure audit stopped the run" in line]
    assert message, done.stderr[-3000:]
    assert "bug in the suppression" in message[-1]
    # The cell is named: table, segment, CRO and attribute or category, with its count, never a value.
    assert "D2: attribute_scores (" in message[-1] or "D2: composite_scores (" in message[-1]
    assert "rests on" in message[-1]
    link = output / "survey_year=2024"
    assert not link.exists() and not link.is_symlink(), "nothing may be published"
    assert not list(output.rglob("*.parquet")) if output.exists() else True, "no table, not even a draft's"

    done, output = _run(tmp_path, "clean", None)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (output / "survey_year=2024" / "attribute_scores.parquet").is_file()
