"""Concurrent runs of one survey year outside Prefect's queue: the second fails fast, naming the holder.
An output folder where the lock cannot be taken (read-only, a file) fails at once, clearly (exit 5).

Only the tests that run the flow (through `cro-awards run`) carry the marker `prefect`."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cro_awards.engine.errors import PublishError
from cro_awards.engine.locks import YearLockedError, year_lock
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG

HOLD = """
import sys, time
from pathlib import Path
from cro_awards.engine.locks import year_lock
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
    arguments = ["--config", str(SAMPLE_CONFIG), "--output", str(output), "--quarantine", str(tmp_path / "q")]
    code = main(["run", "--release", *arguments])
    error = capsys.readouterr().err
    assert code == YearLockedError.exit_code
    assert "holder-run-42" in error and "Traceback" not in error
    assert not (output / "survey_year=2024").exists(), "no release"
    assert not (output / ".publications").exists(), "no draft"
    assert not (tmp_path / "q").exists(), "nothing is read or written before the lock is held"


# --- an output folder the lock cannot be taken in: one paragraph, exit 5, nothing written --------------

WORLD_TRAVERSABLE = 0o755
NOBODY = 65534


def _one_paragraph_naming(error: PublishError, *paths: Path) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    for path in paths:
        assert str(path) in message, (path, message)
    assert "Nothing was published" in message and "run again" in message
    return message


def test_an_output_path_that_is_a_file_is_one_paragraph_exit_5(tmp_path):
    output = tmp_path / "output"
    output.write_text("not a folder")
    with pytest.raises(PublishError) as raised, year_lock(output, 2024, "run-1"):
        pytest.fail("the lock was taken in a file")
    assert raised.value.exit_code == 5 == PublishError.exit_code
    message = _one_paragraph_naming(raised.value, output)
    assert "is a file, not a folder" in message
    assert output.read_text() == "not a folder"


def test_an_output_below_a_file_names_the_file(tmp_path):
    blocking = tmp_path / "srv"
    blocking.write_text("")
    with pytest.raises(PublishError) as raised, year_lock(blocking / "awards" / "out", 2024, "run-1"):
        pytest.fail("the lock was taken below a file")
    assert f"{blocking} is a file" in _one_paragraph_naming(raised.value, blocking / "awards" / "out")


def test_a_lock_folder_that_is_a_file_is_one_paragraph(tmp_path):
    output = tmp_path / "output"
    output.mkdir()
    (output / ".locks").write_text("")
    with pytest.raises(PublishError) as raised, year_lock(output, 2024, "run-1"):
        pytest.fail("the lock was taken in a file")
    assert f"{output / '.locks'} is a file" in _one_paragraph_naming(raised.value, output)


def test_a_lock_file_that_cannot_be_opened_is_one_paragraph(tmp_path):
    """filelock's open fails (here: the lock file's path is a folder), as it does in a read-only folder."""
    output = tmp_path / "output"
    (output / ".locks" / "survey_year=2024.lock").mkdir(parents=True)
    with pytest.raises(PublishError) as raised, year_lock(output, 2024, "run-1"):
        pytest.fail("the lock was taken")
    _one_paragraph_naming(raised.value, output)
    with year_lock(output, 2023, "another-year"):
        pass


READ_ONLY = """
import sys
from pathlib import Path
from cro_awards.engine.errors import PublishError
from cro_awards.engine.locks import year_lock
try:
    with year_lock(Path(sys.argv[1]), 2024, "read-only-run"):
        print("HELD")
except PublishError as error:
    print(f"EXIT {error.exit_code} {error}")
"""


def test_a_read_only_output_folder_is_one_paragraph_exit_5(tmp_path):
    """Not writable for the user running: as root (chmod does not bind root) the lock is tried by a child
    process running as nobody, on a folder it may read but not write."""
    if os.geteuid() != 0:
        output = tmp_path / "output"
        output.mkdir()
        output.chmod(0o555)
        try:
            with pytest.raises(PublishError) as raised, year_lock(output, 2024, "run-1"):
                pytest.fail("the lock was taken in a read-only folder")
        finally:
            output.chmod(0o755)
        message = _one_paragraph_naming(raised.value, output)
        assert raised.value.exit_code == 5 and "permission denied" in message
        assert list(output.iterdir()) == []
        return
    python, env = _python_for_nobody()
    base = Path(tempfile.mkdtemp(prefix="cro-awards-read-only-"))
    try:
        base.chmod(WORLD_TRAVERSABLE)
        output = base / "output"
        output.mkdir()
        output.chmod(0o555)
        child = subprocess.run(
            [python, "-c", READ_ONLY, str(output)], env=env, capture_output=True, text=True, timeout=120, **AS_NOBODY
        )
        assert child.returncode == 0, child.stderr
        assert child.stdout.startswith("EXIT 5 "), child.stdout + child.stderr
        message = child.stdout.removeprefix("EXIT 5 ").strip()
        assert "\n" not in message and "Traceback" not in child.stdout + child.stderr
        assert str(output) in message and "permission denied" in message and "Nothing was published" in message
        assert list(output.iterdir()) == [], "nothing written"
    finally:
        shutil.rmtree(base, ignore_errors=True)


AS_NOBODY = {"user": NOBODY, "group": NOBODY, "extra_groups": [], "cwd": "/"}


def _python_for_nobody() -> tuple[str, dict[str, str]]:
    """A Python interpreter the user nobody may run, with the project and filelock importable (both pure
    Python); skips the test when there is none (e.g. the project's interpreter lives under /root)."""
    import filelock

    path = os.pathsep.join([str(PROJECT_ROOT), str(Path(filelock.__file__).resolve().parent.parent)])
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    candidates = dict.fromkeys(filter(None, [sys.executable, shutil.which("python3"), "/usr/bin/python3"]))
    reasons = []
    for python in candidates:
        try:
            probe = subprocess.run(
                [python, "-c", "import cro_awards.engine.locks"],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                **AS_NOBODY,
            )
        except OSError as error:
            reasons.append(f"{python}: {error.strerror}")
            continue
        if probe.returncode == 0:
            return python, env
        reasons.append(f"{python}: {(probe.stderr.strip().splitlines() or ['failed'])[-1]}")
    pytest.skip(f"running as root (chmod binds nothing) and no Python runs as nobody here: {'; '.join(reasons)}")


@pytest.mark.prefect
@pytest.mark.parametrize("problem", ["output is a file", "lock cannot be opened", "read-only"])
def test_the_command_reports_an_unusable_output_with_exit_5(prefect_server, tmp_path, capsys, problem):
    """`cro-awards run` (the flow, in process): one paragraph naming the output, exit 5, no traceback,
    nothing published, no quarantine written."""
    from cli.main import main

    output, quarantine = tmp_path / "output", tmp_path / "q"
    if problem == "output is a file":
        output.write_text("not a folder")
    elif problem == "lock cannot be opened" or os.geteuid() == 0:
        # as root chmod binds nothing: the lock file's path is a folder, so filelock's open fails as it
        # does in a read-only folder (the read-only case itself is tested on year_lock, as nobody)
        (output / ".locks" / "survey_year=2024.lock").mkdir(parents=True)
    else:
        output.mkdir()
        output.chmod(0o555)
    try:
        code = main(["run", "--config", str(SAMPLE_CONFIG), "--output", str(output), "--quarantine", str(quarantine)])
    finally:
        if output.is_dir():
            output.chmod(0o755)
    printed = capsys.readouterr()
    assert code == 5 == PublishError.exit_code, printed.err
    assert "Traceback" not in printed.err + printed.out
    paragraph = [line for line in printed.err.splitlines() if line.startswith("cro-awards: ")]
    assert len(paragraph) == 1, printed.err
    assert str(output) in paragraph[0] and "Nothing was published" in paragraph[0]
    assert not quarantine.exists(), "nothing is read or written before the lock is held"
    if output.is_dir():
        assert not (output / "survey_year=2024").exists() and not (output / ".publications").exists()
