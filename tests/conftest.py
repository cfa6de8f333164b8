"""Shared fixtures. Tests that run the real flow share one temporary Prefect server (session scope),
with Prefect's state in a temporary PREFECT_HOME; everything else runs without Prefect."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"

# Before anything imports prefect: its state goes to a throwaway folder, never the user's ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="cro-awards-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server and database for the tests that run real flows."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def prefect_console_to_current_stderr(monkeypatch):
    """Prefect's console log handler keeps the stream it was created with; under pytest that may be an
    earlier test's (closed) capture. Point it at this test's sys.stderr, as a real process's would be."""
    import logging
    import sys

    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(lg for lg in logging.root.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    for handler in {h for logger in loggers for h in logger.handlers if isinstance(h, PrefectConsoleHandler)}:
        monkeypatch.setattr(handler, "stream", sys.stderr)
        monkeypatch.setattr(handler.console, "file", sys.stderr)
