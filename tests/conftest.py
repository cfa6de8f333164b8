"""Shared fixtures and the test tiers.

Tiers: a test that imports Prefect, runs a flow or runs `cro-awards run` (in process or as a
subprocess) carries the marker `prefect`; the fast tier, `pytest -m "not prefect"`, imports no Prefect
at all (checked at the end of the session: see `pytest_sessionfinish`). Prefect is imported here only
inside the fixtures that need it.

Tests that run the real flow in process share one temporary Prefect server (`prefect_server`, session
scope), with Prefect's state in a temporary PREFECT_HOME. Tests that run `cro-awards run` as a
subprocess take its environment from `cli_run_env`. Either way Prefect's temporary server gets
`SERVER_STARTUP_TIMEOUT` seconds to start, which a first start (it builds its database) may need on a
busy machine.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"

SERVER_TIMEOUT_VARIABLE = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
SERVER_STARTUP_TIMEOUT = 300
"""Seconds Prefect's temporary server may take to start (the harness's and each subprocess's)."""

RUN_TIMEOUT = SERVER_STARTUP_TIMEOUT + 300
"""Seconds a subprocess running `cro-awards run` may take: the server's start, then the run itself."""

HARNESS_TEST_TIMEOUT = SERVER_STARTUP_TIMEOUT + 300
"""The least pytest-timeout a test using `prefect_server` gets: the first one also waits for its start."""

# Before anything imports prefect: its state goes to a throwaway folder, never the user's ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="cro-awards-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ[SERVER_TIMEOUT_VARIABLE] = str(SERVER_STARTUP_TIMEOUT)


def cli_run_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess running `cro-awards run` in ephemeral mode (its own temporary
    server, state in `prefect_home`), with `extra` variables set."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        SERVER_TIMEOUT_VARIABLE: str(SERVER_STARTUP_TIMEOUT),
        **extra,
    }
    env.pop("PREFECT_API_URL", None)
    return env


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect server and database for the tests that run real flows (marker `prefect`)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=SERVER_STARTUP_TIMEOUT):
        yield


@pytest.fixture(autouse=True)
def prefect_console_to_current_stderr(request, monkeypatch):
    """Prefect's console log handler keeps the stream it was created with; under pytest that may be an
    earlier test's (closed) capture. Point it at this test's sys.stderr, as a real process's would be.
    Does nothing while Prefect is not imported (the fast tier never imports it)."""
    if "prefect" in sys.modules:
        import logging

        from prefect.logging.handlers import PrefectConsoleHandler

        loggers = [
            logging.getLogger(),
            *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)),
        ]
        for handler in {h for logger in loggers for h in logger.handlers if isinstance(h, PrefectConsoleHandler)}:
            monkeypatch.setattr(handler, "stream", sys.stderr)
            monkeypatch.setattr(handler.console, "file", sys.stderr)
    yield
    if "prefect" in sys.modules and _FIRST_PREFECT_IMPORT not in request.config.stash:
        request.config.stash[_FIRST_PREFECT_IMPORT] = request.node.nodeid


# --- tiers ------------------------------------------------------------------------------------------

_PREFECT_SELECTED = pytest.StashKey[bool]()
_FIRST_PREFECT_IMPORT = pytest.StashKey[str]()


def _timeout_of(item: pytest.Item) -> float | None:
    marker = item.get_closest_marker("timeout")
    if marker is None:
        return None
    value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
    return None if value is None else float(value)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test using `prefect_server` may be the one that waits for it to start: give it the time."""
    for item in items:
        if "prefect_server" in getattr(item, "fixturenames", ()):
            timeout = _timeout_of(item) or float(config.getini("timeout") or 0)
            if timeout and timeout < HARNESS_TEST_TIMEOUT:
                item.add_marker(pytest.mark.timeout(HARNESS_TEST_TIMEOUT))


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_PREFECT_SELECTED] = any(item.get_closest_marker("prefect") for item in session.items)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The fast tier must not import Prefect: when no selected test is marked `prefect` and Prefect was
    imported all the same, the session fails, naming the first test after which it was found."""
    if session.config.stash.get(_PREFECT_SELECTED, True) or "prefect" not in sys.modules:
        return
    culprit = session.config.stash.get(_FIRST_PREFECT_IMPORT, "collection (a test module imports it)")
    message = (
        f"Prefect was imported although no selected test is marked `prefect`; first seen after: {culprit}. "
        "Mark that test `prefect`, or keep Prefect out of what it imports."
    )
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.line("")
        reporter.write_sep("=", "tier check failed", red=True)
        reporter.write_line(message)
    else:
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
