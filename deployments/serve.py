"""`make serve`: a local Prefect server with its UI, serving the deployments of cro-awards.

    python -m deployments.serve [--host 127.0.0.1] [--port 4200] [--cron "0 6 * * *"]

Starts `prefect server start` (state under the project's `.prefect/` unless PREFECT_HOME says
otherwise, analytics off), waits for it to answer, then serves, in this process:
- `cro-awards/on-demand`: no schedule; every flow parameter in the UI's Custom run form; makes a draft
  (released at once only with the parameter `release`);
- `cro-awards-release/release`: an editor releases a draft (or rolls back to an earlier one), at once or at an
  embargo time (the flow schedules a run of this deployment then);
- `cro-awards-inbox/inbox`: daily (cron, default 06:00 UTC), a draft of each new export in the inbox;
- `cro-awards-backfill/backfill`: every configured survey year (or a list), in parallel.
Ctrl-C or SIGTERM stops serving first, then the server (stopping the server first makes serve hang).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cro_awards.engine.settings import PROJECT_ROOT, load_settings

DEFAULT_CRON = "0 6 * * *"


def deployments(cron: str = DEFAULT_CRON) -> list:
    """The four deployments, as code. Imported here, not at the top: Prefect reads its settings
    (PREFECT_API_URL, set by `main`) when it is first imported."""
    from flows.awards import cro_awards_flow
    from flows.backfill import backfill_flow
    from flows.inbox import inbox_flow
    from flows.release import release_flow

    return [
        cro_awards_flow.to_deployment(
            name="on-demand",
            description="Score one survey year and write a draft of its awards (released at once only with "
            "release); every parameter can be changed in Custom run.",
            tags=["cro-awards"],
            enforce_parameter_schema=True,
        ),
        release_flow.to_deployment(
            name="release",
            description="Release a draft (run id from `cro-awards publications <year>`), now or at embargo_until; "
            "releasing an earlier draft is a rollback.",
            tags=["cro-awards"],
            enforce_parameter_schema=True,
        ),
        inbox_flow.to_deployment(
            name="inbox",
            cron=cron,
            description="Daily: a draft of each export in the inbox never run before (by SHA-256); "
            "release=true releases them at once.",
            tags=["cro-awards"],
        ),
        backfill_flow.to_deployment(
            name="backfill",
            description="Run every configured survey year (or the given ones), each as its own subflow run, "
            "in parallel.",
            tags=["cro-awards"],
        ),
    ]


def _wait_for(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the Prefect server exited with code {process.returncode} before answering at {url}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the Prefect server did not answer at {url} within {timeout:.0f} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--cron", default=DEFAULT_CRON, help="the inbox deployment's schedule (UTC)")
    arguments = parser.parse_args(argv)

    api = f"http://{arguments.host}:{arguments.port}/api"
    os.environ.setdefault("PREFECT_HOME", str(PROJECT_ROOT / ".prefect"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["PREFECT_API_URL"] = api
    os.environ["PREFECT_UI_API_URL"] = api
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)

    signal.signal(signal.SIGTERM, _interrupt)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefect")),
            "server",
            "start",
            "--host",
            arguments.host,
            "--port",
            str(arguments.port),
        ],
        start_new_session=True,
    )
    try:
        _wait_for(f"{api}/health", server, timeout=load_settings().server_startup_timeout)
        print(f"Prefect UI: http://{arguments.host}:{arguments.port}  (Ctrl-C to stop)", flush=True)
        from prefect import serve

        serve(*deployments(arguments.cron), print_starting_message=True)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
