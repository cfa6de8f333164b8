"""Integration: a real Prefect server serving the deployments, driven through its API as the UI does.

One module-scoped supervisor (`python -m deployments.serve`) on a free loopback port, with its own
PREFECT_HOME and data root, and the Dask task runner configured; stopped with SIGTERM at the end, after
which no process that it started may be left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG, SERVER_STARTUP_TIMEOUT

DEPLOYMENT_RUN_TIMEOUT = 300
"""Seconds a deployment run may take, from submission to its final state."""

# The first test also waits for the server to start and the deployments to be served.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.prefect,
    pytest.mark.timeout(SERVER_STARTUP_TIMEOUT + 2 * DEPLOYMENT_RUN_TIMEOUT + 120),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds `marker` (all descendants inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    data_root, surveys = root / "data", root / "surveys"
    (data_root / "inbox").mkdir(parents=True)
    surveys.mkdir()
    # The sample inside the data root: a deployment run may read only what lies there, the YAML's
    # sample_export included.
    (data_root / "sample").mkdir()
    sample = shutil.copy(PROJECT_ROOT / "data" / "sample" / "export_2024.csv", data_root / "sample")
    for year in (2023, 2024):
        document = yaml.safe_load(SAMPLE_CONFIG.read_text())
        document.update(survey_year=year, sample_export=str(sample))
        (surveys / f"{year}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    port = _free_port()
    marker = f"CRO_AWARDS_TEST_MARKER={root}"
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "CRO_AWARDS_DATA_ROOT": str(data_root),
        "CRO_AWARDS_SURVEYS": str(surveys),
        "CRO_AWARDS_TASK_RUNNER": "dask",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "CRO_AWARDS_TEST_MARKER": str(root),
    }
    env.pop("PREFECT_API_URL", None)
    log = (root / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + SERVER_STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, (root / "serve.log").read_text()
        try:
            request = urllib.request.Request(
                f"{api}/deployments/filter", data=b"{}", method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=2) as response:
                if len(json.load(response)) == 3:
                    break
        except OSError:
            pass
        time.sleep(1)
    else:
        pytest.fail("deployments were not served in time:\n" + (root / "serve.log").read_text())
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api}):
        yield {"root": root, "data": data_root, "surveys": surveys, "api": api, "process": process, "marker": marker}
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the supervisor did not stop within 60 s of SIGTERM")
    log.close()
    deadline = time.monotonic() + 20
    while _processes_with(str(root)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(str(root)) == [], "processes left behind after SIGTERM"
    shutil.rmtree(root / "prefect-home", ignore_errors=True)


def _run(name: str, parameters: dict, timeout: float = DEPLOYMENT_RUN_TIMEOUT):
    from prefect.deployments import run_deployment

    return run_deployment(name, parameters=parameters, timeout=timeout)


def test_on_demand_run_with_custom_parameters(served):
    from prefect.client.orchestration import get_client

    output = served["data"] / "custom-out"
    flow_run = _run(
        "cro-awards/on-demand",
        {
            "output": str(output),
            "quarantine": str(served["data"] / "custom-q"),
            "min_evaluations": 12,
            "champion_sd_multiplier": 0.5,
        },
    )
    assert flow_run.state.is_completed(), flow_run.state
    assert flow_run.name.startswith("awards-2024-")
    manifest = json.loads((output / "survey_year=2024" / "_manifest.json").read_text())
    assert manifest["config"]["overrides"] == {"min_evaluations": 12, "champion_sd_multiplier": 0.5}
    eligible = (
        duckdb.connect()
        .execute(
            f"select min(n_evaluations) from read_parquet('{output}/*/composite_scores.parquet') where is_eligible"
        )
        .fetchone()[0]
    )
    assert eligible >= 12
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    keys = {artifact.key for artifact in artifacts}
    assert keys == {"cro-awards-2024", "cro-awards-2024-awards", "cro-awards-2024-validation"}
    markdown = next(a for a in artifacts if a.key == "cro-awards-2024").data
    assert "Leaders" in markdown or "leader(s)" in markdown
    validation = next(a for a in artifacts if a.key == "cro-awards-2024-validation").data
    assert str(manifest["counts"]["read"]) in validation and "duplicate_evaluation" in validation


def test_invalid_parameter_is_refused_before_the_run_starts(served):
    from prefect.exceptions import PrefectHTTPStatusError

    with pytest.raises(PrefectHTTPStatusError, match="min_evaluations|less than the minimum"):
        _run("cro-awards/on-demand", {"min_evaluations": -3}, timeout=0)


def test_paths_outside_the_data_root_are_refused(served):
    escape = served["data"] / ".." / "escaped"
    flow_run = _run("cro-awards/on-demand", {"output": str(escape)})
    assert flow_run.state.is_failed()
    assert "outside" in flow_run.state.message
    assert not escape.exists()
    link = served["data"] / "link-out"
    link.symlink_to(served["root"])
    flow_run = _run("cro-awards/on-demand", {"output": str(link / "out")})
    assert flow_run.state.is_failed() and "outside" in flow_run.state.message


def test_a_path_read_from_the_yaml_is_confined_too(served):
    """The attacker's recipe: `config` inside the data root, no `export`, and the YAML's sample_export
    pointing outside it. The run fails before reading the file; its rows reach no quarantine."""
    secret = served["root"] / "secret" / "export_secret.csv"
    secret.parent.mkdir()
    secret.write_text((PROJECT_ROOT / "data" / "sample" / "export_2024.csv").read_text().replace("R0", "SECRET"))
    configs = served["data"] / "configs" / "nested"
    configs.mkdir(parents=True)
    document = yaml.safe_load(SAMPLE_CONFIG.read_text())
    document.update(sample_export="../../../secret/export_secret.csv")
    (configs / "2024.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    quarantine = served["data"] / "yaml-escape-q"
    flow_run = _run(
        "cro-awards/on-demand",
        {
            "config": str(configs / "2024.yaml"),
            "output": str(served["data"] / "yaml-escape-out"),
            "quarantine": str(quarantine),
        },
    )
    assert flow_run.state.is_failed()
    assert "sample_export" in flow_run.state.message and "outside" in flow_run.state.message
    assert not quarantine.exists() and not (served["data"] / "yaml-escape-out" / "survey_year=2024").exists()


def test_inbox_publishes_a_new_export_once_then_skips_it(served):
    inbox = served["data"] / "inbox"
    shutil.copy(PROJECT_ROOT / "data" / "sample" / "export_2024.csv", inbox / "export_2024.csv")
    (inbox / "notes.txt").write_text("not an export")
    output = served["data"] / "output"
    first = _run("cro-awards-inbox/inbox", {})
    assert first.state.is_completed(), first.state
    ledger = (output / ".publications" / "published_exports.jsonl").read_text().splitlines()
    assert len(ledger) == 1 and json.loads(ledger[0])["file_name"] == "export_2024.csv"
    live = os.readlink(output / "survey_year=2024")
    second = _run("cro-awards-inbox/inbox", {})
    assert second.state.is_completed()
    assert os.readlink(output / "survey_year=2024") == live, "an already published export is not published again"
    assert len((output / ".publications" / "published_exports.jsonl").read_text().splitlines()) == 1


def test_backfill_runs_two_years_in_parallel_with_dask(served):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    output = served["data"] / "backfill-out"
    flow_run = _run(
        "cro-awards-backfill/backfill",
        {"years": [2023, 2024], "output": str(output), "quarantine": str(served["data"] / "backfill-q")},
    )
    assert flow_run.state.is_completed(), flow_run.state
    years = (
        duckdb.connect()
        .execute(
            f"select distinct survey_year from read_parquet('{output}/*/awards.parquet', hive_partitioning = true) order by 1"
        )
        .fetchall()
    )
    assert years == [(2023,), (2024,)]
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [flow_run.id]}))
    assert sorted(child.name.split("-")[1] for child in children) == ["2023", "2024"]
