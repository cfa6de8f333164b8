"""What a process started dies with it: the guard of Prefect's temporary server (Linux only).

    python -m cro_awards.engine.watchdog <pid> [--interval 0.5] [--grace 5]

`cro-awards run` in Prefect's ephemeral mode starts a temporary server (`uvicorn`) as a child process,
and Prefect stops it only on a normal exit: when the command is killed alone (SIGKILL, what the OOM
killer sends to one process), the server is re-parented to pid 1 and keeps listening. So before it runs
the flow, the command starts this watchdog (`start`), in a session of its own (a kill of the command's
process group does not take it first) and with no terminal output.

Every `interval` seconds the watchdog records the descendants of the watched process (and, once
recorded, their own descendants, even after they are re-parented), each with its start time from
`/proc/<pid>/stat`. As soon as the watched process is gone (exited, killed, or a zombie), it sends
SIGTERM to every recorded descendant still alive, waits up to `grace` seconds, sends SIGKILL to those
still alive, and exits. A signal goes to a pid only while its start time is the recorded one (through a
pidfd where the kernel has them), so a recycled pid is never signalled. On a normal return the command
stops the watchdog (`stop`: SIGTERM, which makes it exit at once and kill nothing; Prefect stops its own
server at exit); if the command exits without stopping it, the watchdog cleans up as after a kill (a
normal exit has already stopped the server, so usually nothing is left).

Limits: it reads `/proc`, so it runs on Linux only (`supported()`; elsewhere the command runs without it).
A descendant started and orphaned between two scans (less than `interval` seconds) is not seen. Pure
standard library; nothing here imports Prefect.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
INTERVAL_SECONDS = 0.5
GRACE_SECONDS = 5.0


def supported() -> bool:
    """Linux with /proc mounted."""
    return sys.platform.startswith("linux") and (PROC / "self" / "stat").exists()


@dataclass(frozen=True)
class ProcessStat:
    pid: int
    ppid: int
    state: str
    start: int
    """Start time in clock ticks since boot (field 22 of /proc/<pid>/stat): with the pid, a process's identity."""

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X", "x")


def read_stat(pid: int) -> ProcessStat | None:
    """The process's /proc/<pid>/stat, or None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces and parentheses.
    fields = text[text.rfind(")") + 1 :].split()
    try:
        return ProcessStat(pid=pid, ppid=int(fields[1]), state=fields[0], start=int(fields[19]))
    except (IndexError, ValueError):
        return None


def processes() -> dict[int, ProcessStat]:
    """Every process of the system, by pid."""
    table = {}
    try:
        entries = os.listdir(PROC)
    except OSError:
        return table
    for name in entries:
        if name.isdigit() and (stat := read_stat(int(name))) is not None:
            table[stat.pid] = stat
    return table


def is_alive(pid: int, start: int) -> bool:
    """The process `pid` started at `start` runs (not a zombie, not a recycled pid)."""
    stat = read_stat(pid)
    return stat is not None and stat.start == start and stat.running


def send_signal(pid: int, start: int, signum: int) -> bool:
    """Signal `pid` if it is still the process started at `start`; True when sent."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            descriptor = pidfd_open(pid)
        except OSError:
            return False  # gone (or not allowed)
        try:
            # The descriptor names one process: if the pid is still the recorded one now, it is for good.
            if not is_alive(pid, start):
                return False
            signal.pidfd_send_signal(descriptor, signum)
            return True
        except OSError:
            return False
        finally:
            os.close(descriptor)
    if not is_alive(pid, start):
        return False
    try:
        os.kill(pid, signum)
    except OSError:
        return False
    return True


class Watch:
    """The bookkeeping: the watched process and its recorded descendants (pid -> start time)."""

    def __init__(self, pid: int) -> None:
        stat = read_stat(pid)
        if stat is None:
            raise ProcessLookupError(f"no process {pid}")
        self.pid, self.start = pid, stat.start
        self.recorded: dict[int, int] = {}
        self.exclude = {os.getpid()}

    def watched_alive(self) -> bool:
        return is_alive(self.pid, self.start)

    def record(self) -> dict[int, int]:
        """Scan /proc: add the descendants of the watched process (while it lives) and of every recorded
        process still alive; drop recorded processes that have ended. Returns the newly recorded ones."""
        table = processes()
        children: dict[int, list[int]] = defaultdict(list)
        for stat in table.values():
            children[stat.ppid].append(stat.pid)
        self.recorded = {
            pid: start
            for pid, start in self.recorded.items()
            if pid in table and table[pid].start == start and table[pid].running
        }
        roots = list(self.recorded)
        watched = table.get(self.pid)
        if watched is not None and watched.start == self.start and watched.running:
            roots.append(self.pid)
        new: dict[int, int] = {}
        while roots:
            parent = roots.pop()
            for child in children.get(parent, ()):
                if child in self.exclude or child in self.recorded or child == self.pid:
                    continue
                self.recorded[child] = new[child] = table[child].start
                roots.append(child)
        return new

    def alive(self) -> dict[int, int]:
        return {pid: start for pid, start in self.recorded.items() if is_alive(pid, start)}

    def clean_up(self, grace: float = GRACE_SECONDS, poll: float = 0.1) -> None:
        """SIGTERM every recorded descendant still alive, SIGKILL those left after `grace` seconds."""
        self.record()
        for pid, start in self.alive().items():
            send_signal(pid, start, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(poll)
            self.record()  # children started while shutting down are theirs too
        for pid, start in self.alive().items():
            send_signal(pid, start, signal.SIGKILL)


def _say(line: str) -> None:
    """One line on stdout (DEVNULL under the command; the tests read it)."""
    with contextlib.suppress(OSError, ValueError):
        print(line, flush=True)


def watch(pid: int, interval: float = INTERVAL_SECONDS, grace: float = GRACE_SECONDS) -> int:
    """Watch `pid` until it is gone, then clean up its recorded descendants (module contract)."""
    cleaning = False

    def stand_down(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
        if not cleaning:
            os._exit(0)  # asked by the command itself, on its normal return: nothing to kill

    signal.signal(signal.SIGTERM, stand_down)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        bookkeeping = Watch(pid)
    except ProcessLookupError:
        return 0
    # A pidfd becomes readable the moment the process ends: no wait for the next scan.
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):
        descriptor = None
    poller = None
    if descriptor is not None:
        poller = select.poll()
        poller.register(descriptor, select.POLLIN)
    _say(f"watching {pid}")
    while bookkeeping.watched_alive():
        for child in bookkeeping.record():
            _say(f"recorded {child}")
        if poller is not None:
            poller.poll(interval * 1000)
        else:
            time.sleep(interval)
    cleaning = True
    _say(f"gone {pid}: cleaning up {sorted(bookkeeping.alive())}")
    bookkeeping.clean_up(grace)
    _say("done")
    return 0


def start(pid: int | None = None) -> subprocess.Popen | None:
    """Start a watchdog of `pid` (default: this process), or None where it cannot run (not Linux, or no
    process could be started)."""
    if not supported():
        return None
    project = Path(__file__).resolve().parents[2]  # the folder holding the cro_awards package
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "cro_awards.engine.watchdog", str(os.getpid() if pid is None else pid)],
            cwd=project,  # first on the watchdog's sys.path: this very package, whatever the caller's folder
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None  # no guard is no reason not to run


def stop(process: subprocess.Popen | None, timeout: float = 30.0) -> None:
    """Stop a watchdog started by `start` (it exits at once and kills nothing)."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cro_awards.engine.watchdog", description=__doc__.splitlines()[0])
    parser.add_argument("pid", type=int, help="the process to watch")
    parser.add_argument("--interval", type=float, default=INTERVAL_SECONDS, help="seconds between scans")
    parser.add_argument("--grace", type=float, default=GRACE_SECONDS, help="seconds from SIGTERM to SIGKILL")
    arguments = parser.parse_args(argv)
    return watch(arguments.pid, arguments.interval, arguments.grace)


if __name__ == "__main__":
    sys.exit(main())
