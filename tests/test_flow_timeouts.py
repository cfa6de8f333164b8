"""Timeouts and the year's slot (issue 22): a run that exceeds CRO_AWARDS_FLOW_TIMEOUT, or a task that
exceeds CRO_AWARDS_TASK_TIMEOUT, fails (RunTimeoutError, exit 12; Prefect's state TimedOut) and frees its
year at once: the Prefect slot `cro-awards-year-<year>` and the lock file are released, so the same year
runs again straight away. A run that has to wait for its year's slot says so, naming the holder, and says
when it got it.

The hang is simulated at a named checkpoint (`cro_awards.engine.checkpoints.observe`) by a loop of short sleeps:
Python code that does not return, which is what a timeout can interrupt (a native call is interrupted when
it returns to Python)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from cro_awards.engine import checkpoints
from cro_awards.engine.errors import RunTimeoutError
from cro_awards.engine.locks import year_lock
from tests.conftest import HARNESS_TEST_TIMEOUT, SAMPLE_CONFIG

pytestmark = [pytest.mark.prefect, pytest.mark.e2e, pytest.mark.timeout(HARNESS_TEST_TIMEOUT + 300)]

HANG_SECONDS = 120


def _hang_at(monkeypatch, point: str, *, seconds: float = HANG_SECONDS, thread: str | None = None) -> threading.Event:
    """At checkpoint `point` (in thread `thread` only, if given), spin for `seconds`; the event is set when the
    spin starts."""
    monkeypatch.setattr(checkpoints, "_observers", [])
    hanging = threading.Event()

    def spin(name: str) -> None:
        if name != point or (thread is not None and threading.current_thread().name != thread):
            return
        hanging.set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)

    checkpoints.observe(spin)
    return hanging


def _active_slots(year: int) -> int:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(f"cro-awards-year-{year}").active_slots


@pytest.mark.parametrize(
    ("setting", "seconds", "point"),
    [
        ("CRO_AWARDS_FLOW_TIMEOUT", "4", "after_quarantine"),  # in the flow's own code
        ("CRO_AWARDS_TASK_TIMEOUT", "3", "publication_table_written"),  # inside the write-draft task
    ],
)
def test_a_run_that_times_out_frees_its_year_at_once(prefect_server, tmp_path, monkeypatch, setting, seconds, point):
    from flows.awards import cro_awards_flow

    output, quarantine = tmp_path / "out", tmp_path / "q"
    folders = {"config": str(SAMPLE_CONFIG), "output": str(output), "quarantine": str(quarantine)}
    monkeypatch.setenv(setting, seconds)
    _hang_at(monkeypatch, point)
    started = time.monotonic()
    with pytest.raises(RunTimeoutError, match=f"{setting} = {seconds} s") as raised:
        cro_awards_flow(**folders)
    assert time.monotonic() - started < HANG_SECONDS / 2, "stopped by the timeout, not by the end of the hang"
    assert raised.value.exit_code == 12 and "free again" in str(raised.value)
    assert _active_slots(2024) == 0, "the Prefect slot is released, not left to its lease"
    with year_lock(output, 2024, "next"):  # the lock file too: taken at once (timeout 0)
        pass
    assert not (output / "survey_year=2024").exists(), "nothing released"

    monkeypatch.setattr(checkpoints, "_observers", [])
    monkeypatch.delenv(setting)
    started = time.monotonic()
    summary = cro_awards_flow(**folders, release=True)
    assert summary.released and (output / "survey_year=2024" / "awards.parquet").is_file()
    assert _active_slots(2024) == 0


def test_a_run_waiting_for_its_years_slot_names_the_holder_then_says_when_it_got_it(
    prefect_server, tmp_path, monkeypatch
):
    from flows.awards import cro_awards_flow

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("prefect.flow_runs")
    handler = Keep(level=logging.INFO)
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        hanging = _hang_at(monkeypatch, "after_quarantine", seconds=8, thread="holder")
        first: dict = {}
        holder = threading.Thread(
            target=lambda: first.update(
                cro_awards_flow(
                    config=str(SAMPLE_CONFIG), output=str(tmp_path / "a"), quarantine=str(tmp_path / "qa")
                ).to_dict()
            ),
            name="holder",
        )
        holder.start()
        assert hanging.wait(timeout=120), "the first run did not reach its checkpoint"
        assert _active_slots(2024) == 1
        second = cro_awards_flow(config=str(SAMPLE_CONFIG), output=str(tmp_path / "b"), quarantine=str(tmp_path / "qb"))
        holder.join(timeout=120)
    finally:
        logger.removeHandler(handler)
    waiting = [r for r in records if "waiting for its slot cro-awards-year-2024" in r]
    assert len(waiting) == 1, records
    assert f"held by flow run awards-2024-{first['run_id'][:8]}-draft ({first['run_id']}, Running" in waiting[0]
    assert any("got its slot cro-awards-year-2024 after" in r for r in records), records
    assert second.run_id != first["run_id"]
