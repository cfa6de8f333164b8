"""One run per survey year at a time: a lock file per year under the output folder.

Contract: `year_lock(output, survey_year, run_id)` is a context manager that holds
`<output>/.locks/survey_year=<year>.lock` (an OS file lock, released by the kernel even when the
process is killed) and records the holder (run id, pid, host, start time) beside it. A second run of
the same year fails at once with `YearLockedError` naming the holder; other years run freely.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from cro_awards.errors import CroAwardsError


class YearLockedError(CroAwardsError):
    """Another run holds the survey year."""

    exit_code = 6


@contextlib.contextmanager
def year_lock(output: Path, survey_year: int, run_id: str) -> Iterator[None]:
    folder = output / ".locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / f"survey_year={survey_year}.lock"
    holder_path = folder / f"survey_year={survey_year}.holder.json"
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = json.loads(holder_path.read_text(encoding="utf-8"))
            who = f"run {holder['run_id']} (pid {holder['pid']} on {holder['host']}, started {holder['started_at']})"
        except (OSError, ValueError, KeyError):
            who = "another run"
        raise YearLockedError(
            f"survey year {survey_year} in {output} is being processed by {who}; wait for it to finish, then run again."
        ) from None
    try:
        holder_path.write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
            ),
            encoding="utf-8",
        )
        yield
    finally:
        lock.release()
