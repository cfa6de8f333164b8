"""Concurrent runs of one survey year outside Prefect's queue: the second fails fast, naming the holder.

Only the last test runs the flow (through `cro-awards run`), and carries the marker `prefect`."""

import subprocess
import sys
import time

import pytest

from cro_awards.locks import YearLockedError, year_lock
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG

HOLD = """
import sys, time
from pathlib import Path
from cro_awards.locks import year_lock
with year_lock(Path(sys.argv[1]), 2024, "holder-run-42"):
    Path(sys.argv[2]).write_text("held")
    time.sleep(60)
"""


@pytest.fixture
def held_year(tmp_path):
    """Another process holding survey year 2024 in tmp_path/output."""
    output, ready = tmp_path / "output", tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(output), str(ready)], cwd=PROJECT_ROOT)
    deadline = time.monotonic() + 120  # a Python start on a busy machine
    while not ready.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
        time.sleep(0.05)
    yield output, holder
    holder.kill()
    holder.wait()


def test_second_process_fails_fast_naming_the_holder(held_year):
    output, holder = held_year
    with pytest.raises(YearLockedError) as raised, year_lock(output, 2024, "second-run"):
        pytest.fail("two runs held the same year")
    assert holder.poll() is None, "it failed while the holder still held the year: it did not wait for it"
    message = str(raised.value)
    assert "holder-run-42" in message and f"pid {holder.pid}" in message and "2024" in message


def test_other_years_run_freely(held_year):
    output, _ = held_year
    with year_lock(output, 2023, "another-year"):
        pass


def test_a_killed_holder_releases_the_year(held_year):
    output, holder = held_year
    holder.kill()
    holder.wait()
    with year_lock(output, 2024, "after-the-kill"):
        pass


@pytest.mark.prefect
def test_the_flow_refuses_a_held_year_and_publishes_nothing(prefect_server, held_year, tmp_path, capsys):
    from cli.main import main

    output, _ = held_year
    code = main(["run", "--config", str(SAMPLE_CONFIG), "--output", str(output), "--quarantine", str(tmp_path / "q")])
    error = capsys.readouterr().err
    assert code == YearLockedError.exit_code
    assert "holder-run-42" in error and "Traceback" not in error
    assert not (output / "survey_year=2024").exists()
    assert not (tmp_path / "q").exists(), "nothing is read or written before the lock is held"
