"""Errors a user meets. Each message says what is wrong and what to do, naming the file and key or row.

`CroAwardsError` and its subclasses are expected failures: the command line prints their message
(no traceback) and exits non-zero. Anything else escaping the pipeline is a bug.
"""

import logging


class CroAwardsError(Exception):
    """Base of the errors a user can act on; `exit_code` is what the command line returns."""

    exit_code = 1


class ConfigError(CroAwardsError):
    """The survey year's YAML (or an override) is invalid: the run stops before reading any export."""

    exit_code = 2


class ExportError(CroAwardsError):
    """A file-level problem with the export: nothing is published."""

    exit_code = 3


class RejectedShareError(ExportError):
    """More evaluations were rejected than `max_rejected_share` allows: quarantine written, nothing published."""

    exit_code = 4


class PublishError(CroAwardsError):
    """Publishing failed (disk full, read-only folder, bad paths). The message says which publication is live:
    the previous one when the failure came before the switch, else the new one (e.g. only the ledger failed)."""

    exit_code = 5


class DisclosureError(CroAwardsError):
    """The disclosure audit found a confidential value that the tables about to be published would reveal:
    nothing is published (docs/method.md, "Disclosure control")."""

    exit_code = 9


class UnmatchedCroError(ExportError):
    """The export names a CRO, in at least `min_evaluations` rows, by a spelling that is no name or alias of
    the year's ballot and not listed under `not_rated`: a run would quietly drop it from the awards (its rows
    quarantined as unknown_cro). Raised after validation, before anything is written (no quarantine, no
    draft); `check` reports it with the same code. The message names each spelling, its rows and the YAML
    lines that add it as a CRO, as an alias, or under `not_rated` (accepting the loss)."""

    exit_code = 11


class RunTimeoutError(CroAwardsError, TimeoutError):
    """A run (or one of its tasks) took longer than its timeout (CRO_AWARDS_FLOW_TIMEOUT, CRO_AWARDS_TASK_TIMEOUT)
    and was stopped; its survey year is free again. A TimeoutError, so Prefect marks the run TimedOut."""

    exit_code = 12


class ValidationBug(RuntimeError):
    """Great Expectations raised instead of judging data: a bug in the suite or the pipeline, never bad data."""


class _UserErrorFilter(logging.Filter):
    """Log a `CroAwardsError` as its message alone: its traceback helps no user."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], CroAwardsError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_error_tracebacks(*logger_names: str) -> None:
    """Install the filter on the named loggers (Prefect's flow and task run loggers)."""
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _UserErrorFilter) for f in logger.filters):
            logger.addFilter(_UserErrorFilter())


class OutputCheckError(AssertionError):
    """An identity of the outputs does not hold (sql/tests/): a bug in the pipeline. Nothing is published."""
