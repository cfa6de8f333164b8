"""Run one command; write its wall time and rusage as JSON.

    python -S bench/launch.py RESULT.json MAX_RSS_MB TIMEOUT_SECONDS CMD...

Why a launcher: on Linux a child's ru_maxrss starts from the memory of the process that spawned it
(exec records the high-water mark of the address space it replaces: the parent's, with vfork or
posix_spawn, or a copy of it with fork). Spawned from the benchmark's own process, which has
imported numpy and pyarrow and generated exports, every run would report at least that. Spawned
from this small interpreter (started with -S, standard library only), the floor is ~10 MB.

The command inherits stdin, stdout, stderr, the environment, the working folder and the process
group (the benchmark starts this launcher in a group of its own). Wall time is measured around
Popen .. os.wait4 here, so the launcher's own start is excluded.

Guards for a shared machine: when the processes of the group (this launcher excepted) hold more than
MAX_RSS_MB resident together (0: no limit), or the command runs longer than TIMEOUT_SECONDS (0: no
limit), they are killed with SIGKILL and the result says `killed: "memory"` or `"timeout"`.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def _group_members(pgid: int, me: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as stream:
                fields = stream.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(name))
    return members


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm", encoding="utf-8") as stream:
            return int(stream.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return 0.0


def _guard(max_rss_mb: float, timeout: float, start: float, done: threading.Event, verdict: dict) -> None:
    me, pgid = os.getpid(), os.getpgid(0)
    while not done.wait(0.5):
        members = _group_members(pgid, me)
        reason = None
        if timeout and time.perf_counter() - start > timeout:
            reason = "timeout"
        elif max_rss_mb:
            total = sum(_rss_mb(pid) for pid in members)
            verdict["max_group_rss_mb"] = max(verdict.get("max_group_rss_mb", 0.0), total)
            if total > max_rss_mb:
                reason = "memory"
        if reason:
            verdict["killed"] = reason
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return


def main() -> int:
    result_path, max_rss_mb, timeout, command = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    verdict: dict = {}
    done = threading.Event()
    start = time.perf_counter()
    process = subprocess.Popen(command)
    guard = threading.Thread(target=_guard, args=(max_rss_mb, timeout, start, done, verdict), daemon=True)
    guard.start()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    guard.join(timeout=5)
    process.returncode = os.waitstatus_to_exitcode(status)
    with open(result_path, "w", encoding="utf-8") as stream:
        json.dump(
            {
                "wall_seconds": wall,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "user_seconds": usage.ru_utime,
                "sys_seconds": usage.ru_stime,
                "exit_code": process.returncode,
                **verdict,
            },
            stream,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
