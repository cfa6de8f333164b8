"""Prefect's temporary server dies with the process that started it, even when that process alone is
killed (SIGKILL, as the OOM killer does): `cro_awards.engine.watchdog` (Linux only, it reads /proc).

The first tests exercise the watchdog's bookkeeping on throwaway process trees (a `sleep` started by a
Python child), no Prefect. The last runs `cro-awards run`, kills only its main process while the flow
runs, and checks that the temporary server (`uvicorn`) goes too (marker `prefect`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cro_awards.engine import watchdog
from tests.conftest import PROJECT_ROOT, RUN_TIMEOUT, SAMPLE_CONFIG, cli_run_env

pytestmark = pytest.mark.skipif(not watchdog.supported(), reason="the watchdog reads /proc: Linux only")

GONE_TIMEOUT = 60
"""Seconds a process may take to be gone after it is told to go (a busy machine)."""

PARENT = """
import subprocess, sys
child = subprocess.Popen(["sleep", "600"])
print(child.pid, flush=True)
if sys.stdin.readline().strip() == "exit":
    os_exit = __import__("os")._exit
    os_exit(0)  # a normal exit that leaves its child behind
child.wait()
"""
"""A Python process with a `sleep` child; prints the child's pid; exits (leaving the child) on "exit"."""


def _gone(pid: int, start: int) -> bool:
    """Ended (or a zombie waiting for its new parent to reap it), or its pid now names another process."""
    return not watchdog.is_alive(pid, start)


def _wait_until_gone(pid: int, start: int, timeout: float = GONE_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(pid, start):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _kill(pid: int, start: int) -> None:
    """Test clean-up: SIGKILL `pid` if it is still the process started at `start`."""
    watchdog.send_signal(pid, start, signal.SIGKILL)


@pytest.fixture
def tree():
    """A Python process (`parent`) with a `sleep` child: (parent Popen, sleep pid, sleep start time)."""
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=PROJECT_ROOT
    )
    sleep_pid = int(parent.stdout.readline())
    sleep_start = watchdog.read_stat(sleep_pid).start
    yield parent, sleep_pid, sleep_start
    _kill(sleep_pid, sleep_start)
    parent.kill()
    parent.wait()
    parent.stdin.close()
    parent.stdout.close()


def test_stat_reads_a_command_name_with_spaces_and_parentheses(tmp_path):
    odd = tmp_path / "a (b) c)"
    odd.symlink_to("/bin/sleep")
    process = subprocess.Popen([str(odd), "60"])
    try:
        stat = watchdog.read_stat(process.pid)
        assert stat is not None and stat.ppid == os.getpid() and stat.running and stat.start > 0
    finally:
        process.kill()
        process.wait()
    assert watchdog.read_stat(2**22 + 1) is None, "no such process"


def test_descendants_are_recorded_and_outlive_their_parent_in_the_books(tree):
    parent, sleep_pid, sleep_start = tree
    books = watchdog.Watch(parent.pid)
    assert books.record() == {sleep_pid: sleep_start}
    assert books.record() == {}, "recorded once"
    assert os.getpid() not in books.recorded and parent.pid not in books.recorded

    parent.kill()
    parent.wait()
    assert not books.watched_alive()
    assert watchdog.read_stat(sleep_pid).ppid != parent.pid, "orphaned: re-parented"
    books.record()
    assert books.recorded == {sleep_pid: sleep_start}, "still in the books after its parent died"

    books.clean_up(grace=GONE_TIMEOUT)
    assert _wait_until_gone(sleep_pid, sleep_start)
    books.record()
    assert books.recorded == {}, "ended processes leave the books"


def test_a_recycled_pid_is_never_signalled(tree):
    _, sleep_pid, sleep_start = tree
    watched = subprocess.Popen(["sleep", "600"])
    books = watchdog.Watch(watched.pid)
    watched.kill()
    watched.wait()
    books.recorded = {sleep_pid: sleep_start + 1}  # the pid, but another process's start time
    books.clean_up(grace=0.2)
    assert watchdog.is_alive(sleep_pid, sleep_start), "a pid whose start time differs is not the recorded process"
    assert not watchdog.send_signal(sleep_pid, sleep_start - 1, signal.SIGKILL)
    assert watchdog.is_alive(sleep_pid, sleep_start)


def _start_watchdog(pid: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cro_awards.engine.watchdog", str(pid), "--grace", "10"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _read_until(process: subprocess.Popen, line: str) -> list[str]:
    seen = []
    for printed in process.stdout:
        seen.append(printed.strip())
        if printed.strip() == line:
            return seen
    pytest.fail(f"the watchdog ended without printing {line!r}: {seen}")


@pytest.mark.parametrize("ending", ["killed", "exits"])
def test_the_watchdog_cleans_up_when_the_watched_process_ends(tree, ending):
    """Killed alone (SIGKILL) or exiting normally without stopping its child: the watchdog kills the
    orphaned child and exits by itself."""
    parent, sleep_pid, sleep_start = tree
    guard = _start_watchdog(parent.pid)
    try:
        _read_until(guard, f"recorded {sleep_pid}")
        if ending == "killed":
            os.kill(parent.pid, signal.SIGKILL)
        else:
            parent.stdin.write("exit\n")
            parent.stdin.flush()
        assert _wait_until_gone(sleep_pid, sleep_start), "the orphaned child outlived the watchdog's clean-up"
        assert guard.wait(timeout=GONE_TIMEOUT) == 0
        assert _read_until(guard, "done")
    finally:
        guard.kill()
        guard.wait()
        guard.stdout.close()


def test_stopping_the_watchdog_kills_nothing(tree):
    """What the command does on a normal return: `stop` ends the watchdog, which leaves every process be."""
    parent, sleep_pid, sleep_start = tree
    guard = watchdog.start(parent.pid)
    assert guard is not None
    watchdog.stop(guard)
    assert guard.returncode is not None
    parent.kill()
    parent.wait()
    time.sleep(1)  # were the watchdog still watching, it would now be killing the orphan
    assert watchdog.is_alive(sleep_pid, sleep_start)


def test_the_watchdog_of_a_process_that_does_not_exist_exits_at_once():
    finished = subprocess.run(
        [sys.executable, "-m", "cro_awards.engine.watchdog", str(2**22 + 1)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        timeout=120,
    )
    assert finished.returncode == 0


# --- the real thing: `cro-awards run` killed alone while its flow runs ---------------------------------

HOLD_RUN = """
import sys, time
from pathlib import Path
from cro_awards.engine.checkpoints import observe

def hold(name):
    if name == "after_extract":  # the flow runs: its temporary server is up and answering
        Path(sys.argv[1]).write_text("running")
        time.sleep(3600)

observe(hold)
from cli.main import main
sys.exit(main(sys.argv[2:]))
"""
"""`cro-awards run` (cli.main.main), held at its first checkpoint until killed."""


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def _descendants(pid: int) -> dict[int, tuple[int, str]]:
    """Every descendant of `pid` now: pid -> (start time, command line). Read from /proc independently of
    the watchdog's bookkeeping."""
    children: dict[int, list[int]] = {}
    starts = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = (Path("/proc") / entry / "stat").read_text(errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 1 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        starts[int(entry)] = int(fields[19])
    found, queue = {}, [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found[child] = (starts[child], _cmdline(child))
            queue.append(child)
    return found


@pytest.mark.prefect
@pytest.mark.timeout(RUN_TIMEOUT + 3 * GONE_TIMEOUT)
def test_killing_the_command_alone_takes_its_temporary_server_with_it(tmp_path):
    ready, log = tmp_path / "running", tmp_path / "run.log"
    command = [
        *(sys.executable, "-c", HOLD_RUN, str(ready)),
        *("run", "--release", "--config", str(SAMPLE_CONFIG)),
        *("--output", str(tmp_path / "output"), "--quarantine", str(tmp_path / "quarantine")),
    ]
    with log.open("w") as stream:
        run = subprocess.Popen(
            command,
            env=cli_run_env(tmp_path / "prefect"),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    seen: dict[int, tuple[int, str]] = {}
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while not ready.exists():
            assert run.poll() is None, f"the run ended before its flow ran:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"the flow did not start in {RUN_TIMEOUT} s:\n{log.read_text()}"
            seen.update(_descendants(run.pid))
            time.sleep(0.2)
        seen.update(_descendants(run.pid))
        servers = {pid: start for pid, (start, cmdline) in seen.items() if "uvicorn" in cmdline}
        guards = {pid: start for pid, (start, cmdline) in seen.items() if "cro_awards.engine.watchdog" in cmdline}
        assert servers, f"no temporary server among the run's processes: {seen}"
        assert len(guards) == 1, f"one watchdog expected: {seen}"
        assert all(watchdog.is_alive(pid, start) for pid, start in {**servers, **guards}.items())
        time.sleep(2)  # the watchdog scans every 0.5 s; the flow already runs, so it has seen the server

        os.kill(run.pid, signal.SIGKILL)  # the main process alone, not its group
        run.wait(timeout=GONE_TIMEOUT)

        for pid, start in servers.items():
            assert _wait_until_gone(pid, start), f"the temporary server {pid} outlived the command"
        for pid, start in guards.items():
            assert _wait_until_gone(pid, start), "the watchdog did not exit after its clean-up"
        assert not (tmp_path / "output" / "survey_year=2024").exists(), "killed before releasing"
        assert not (tmp_path / "output" / ".publications").exists(), "killed before its draft"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for pid, (start, _) in seen.items():
            _kill(pid, start)
