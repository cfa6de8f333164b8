"""One run per survey year at a time: a lock file per year under the output folder.

Contract: `year_lock(output, survey_year, run_id)` is a context manager that holds
`<output>/.locks/survey_year=<year>.lock` (an OS file lock, released by the kernel even when the
process is killed) and records the holder (run id, pid, host, start time) beside it. A second run of
the same year fails at once with `YearLockedError` naming the holder; other years run freely.

An output folder the lock cannot be taken in (read-only, not writable by this user, a file where the
folder should be, a full disk) fails at once with a `PublishError` (exit 5) naming the path and what to
do, before anything is read or written: nothing is published and the previous publication stays live.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from cro_awards.engine.errors import CroAwardsError, PublishError


class YearLockedError(CroAwardsError):
    """Another run holds the survey year."""

    exit_code = 6


LOCKS = ".locks"
"""The folder of the year locks, under the output folder."""

_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
}


def _unusable(output: Path, survey_year: int, where: Path, error: OSError) -> PublishError:
    """One paragraph: which path, why, what to do; nothing was published."""
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        candidates = (output / LOCKS, output, *output.parents)
        blocking = next((path for path in candidates if path.exists() and not path.is_dir()), where)
        problem = f"{blocking} is a file, not a folder"
        advice = "move the file aside or give --output a folder, then run again"
    elif isinstance(error, IsADirectoryError):
        problem = f"{where} is a folder, not a lock file"
        advice = "remove it (it was not written by cro-awards), then run again"
    else:
        problem = f"cannot write {where}: {_REASONS.get(error.errno, error.strerror or str(error))}"
        advice = (
            "make the output folder writable for this user (or free space), or give --output another folder, "
            "then run again"
        )
    return PublishError(
        f"cannot use the output folder {output} for survey year {survey_year}: {problem}. The run holds a lock "
        f"file there ({LOCKS}/) while it publishes. Nothing was published; the previous publication (if any) is "
        f"still live. Fix: {advice}."
    )


@contextlib.contextmanager
def year_lock(output: Path, survey_year: int, run_id: str) -> Iterator[None]:
    folder = output / LOCKS
    lock_path = folder / f"survey_year={survey_year}.lock"
    holder_path = folder / f"survey_year={survey_year}.holder.json"
    lock = FileLock(lock_path, timeout=0)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:  # before OSError: filelock's Timeout is a TimeoutError, an OSError
        try:
            holder = json.loads(holder_path.read_text(encoding="utf-8"))
            who = f"run {holder['run_id']} (pid {holder['pid']} on {holder['host']}, started {holder['started_at']})"
        except (OSError, ValueError, KeyError):
            who = "another run"
        raise YearLockedError(
            f"survey year {survey_year} in {output} is being processed by {who}; wait for it to finish, then run again."
        ) from None
    except OSError as error:
        raise _unusable(output, survey_year, lock_path if folder.is_dir() else folder, error) from None
    try:
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
        except OSError as error:
            raise _unusable(output, survey_year, holder_path, error) from None
        yield
    finally:
        lock.release()
