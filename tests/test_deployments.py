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
                if len(json.load(response)) == 4:
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


def _cli(*arguments: str) -> subprocess.CompletedProcess:
    """`cro-awards <arguments>` in a subprocess, as an editor types it beside the served deployments."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *arguments], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )


def _artifacts(flow_run_id) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {artifact.key: artifact.data for artifact in artifacts}


def _draft(drafts: Path, run_id) -> Path:
    """Run `run_id`'s draft, in the private store `drafts`."""
    (folder,) = (drafts / "survey_year=2024").glob(f"*-{run_id}")
    return folder


def _released(output: Path) -> str:
    """The run id of the year's release, as readers of `output` see it."""
    return json.loads((output / "survey_year=2024" / "_manifest.json").read_text())["run_id"]


def test_a_what_if_from_the_ui_is_a_draft_and_an_editor_releases_it_from_the_ui(served):
    """The issue's story: the YAML's own run is released; a Custom run with other knobs makes a draft
    (readers still see the release) whose artifacts carry the difference; the release deployment then
    releases it, recording who; rolling back with the command line brings the first one back."""
    output, quarantine, drafts = (served["data"] / name for name in ("custom-out", "custom-q", "custom-drafts"))
    folders = {"output": str(output), "quarantine": str(quarantine), "drafts": str(drafts)}
    official = _run("cro-awards/on-demand", {**folders, "release": True})
    assert official.state.is_completed(), official.state
    assert _released(output) == str(official.id) and _draft(drafts, official.id).is_dir()
    what_if = _run("cro-awards/on-demand", {**folders, "min_evaluations": 12, "champion_sd_multiplier": 0.5})
    assert what_if.state.is_completed(), what_if.state
    assert what_if.name == f"awards-2024-{str(what_if.id)[:8]}-draft", "the name carries the run id"
    draft = _draft(drafts, what_if.id)
    assert _released(output) == str(official.id), "a what-if changes nothing"
    manifest = json.loads((draft / "_manifest.json").read_text())
    assert manifest["config"]["overrides"] == {"min_evaluations": 12, "champion_sd_multiplier": 0.5}
    eligible = (
        duckdb.connect()
        .execute(f"select min(n_evaluations) from read_parquet('{draft}/composite_scores.parquet') where is_eligible")
        .fetchone()[0]
    )
    assert eligible >= 12
    assert "DRAFT" in (draft / "draft_report.html").read_text()
    artifacts = _artifacts(what_if.id)  # a draft's: titled DRAFT, under draft keys, never "Published"
    assert set(artifacts) == {
        "cro-awards-2024-draft",
        "cro-awards-2024-draft-awards",
        "cro-awards-2024-draft-validation",
        "cro-awards-2024-draft-diff",
    }
    assert "DRAFT" in artifacts["cro-awards-2024-draft"] and str(what_if.id) in artifacts["cro-awards-2024-draft"]
    assert str(manifest["counts"]["read"]) in artifacts["cro-awards-2024-draft-validation"]
    assert "duplicate_evaluation" in artifacts["cro-awards-2024-draft-validation"]
    assert "Published" not in artifacts["cro-awards-2024-draft-validation"]
    assert (
        str(official.id) in artifacts["cro-awards-2024-draft-diff"]
        and "champion_sd_multiplier" in artifacts["cro-awards-2024-draft-diff"]
    )

    released = _run(
        "cro-awards-release/release",
        {**folders, "survey_year": 2024, "run_id": str(what_if.id), "released_by": "editor"},
    )
    assert released.state.is_completed(), released.state
    assert released.name == f"release-2024-{str(what_if.id)[:8]}"
    release_artifacts = _artifacts(released.id)  # the year's awards, as released, by whom, replacing what
    assert set(release_artifacts) == {"cro-awards-2024", "cro-awards-2024-awards"}
    assert all(text in release_artifacts["cro-awards-2024"] for text in (str(what_if.id), "editor", str(official.id)))
    assert _released(output) == str(what_if.id)
    log = [json.loads(line) for line in (drafts / "releases.jsonl").read_text().splitlines()]
    assert [(e["run_id"], e["by"]) for e in log][-1] == (str(what_if.id), "editor")
    assert log[-1]["previous_run_id"] == str(official.id)
    rollback = _cli(
        "release",
        "2024",
        str(official.id),
        "--output",
        str(output),
        "--quarantine",
        str(quarantine),
        "--drafts",
        str(drafts),
    )
    assert rollback.returncode == 0, rollback.stderr
    assert _released(output) == str(official.id)


def test_an_embargoed_release_happens_at_its_time_by_a_scheduled_run(served):
    import datetime as dt

    output, quarantine, drafts = (served["data"] / name for name in ("embargo-out", "embargo-q", "embargo-drafts"))
    folders = {"output": str(output), "quarantine": str(quarantine), "drafts": str(drafts)}
    first = _run("cro-awards/on-demand", {**folders, "release": True})
    second = _run("cro-awards/on-demand", {**folders, "champion_sd_multiplier": 0.75})
    assert first.state.is_completed() and second.state.is_completed()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    scheduled = _run(
        "cro-awards-release/release",
        {**folders, "survey_year": 2024, "run_id": str(second.id), "embargo_until": until.isoformat()},
    )
    assert scheduled.state.is_completed(), scheduled.state
    assert _released(output) == str(first.id), "nothing changes before the embargo"
    assert b"embargo" not in b"".join(p.read_bytes() for p in output.rglob("*") if p.is_file()), "it is private"
    listing = _cli(
        "publications",
        "2024",
        "--json",
        "--output",
        str(output),
        "--quarantine",
        str(quarantine),
        "--drafts",
        str(drafts),
    )
    statuses = {item["run_id"]: item["status"] for item in json.loads(listing.stdout)}
    assert statuses[str(second.id)].startswith("embargoed until"), statuses
    deadline = time.monotonic() + 30 + DEPLOYMENT_RUN_TIMEOUT
    while time.monotonic() < deadline:
        seen_at = dt.datetime.now(dt.UTC)
        if _released(output) == str(second.id):
            assert seen_at >= until, f"released before the embargo ({seen_at} < {until})"
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the embargoed release did not happen within {DEPLOYMENT_RUN_TIMEOUT} s of {until}")
    log = [json.loads(line) for line in (drafts / "releases.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log if e["run_id"] == str(second.id)] == ["embargoed", "released"]
    assert dt.datetime.fromisoformat(log[-1]["at"]) >= until


def test_invalid_parameter_is_refused_before_the_run_starts(served):
    """Refused by the API with the bound named; the UI's form asks /ui/schemas/validate, whose answer names
    the bound too (issue 22: it said "-3 is not valid under any of the given schemas")."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError

    with pytest.raises(PrefectHTTPStatusError, match="min_evaluations.*less than the minimum of 1"):
        _run("cro-awards/on-demand", {"min_evaluations": -3}, timeout=0)
    with get_client(sync_client=True) as client:
        schema = client.read_deployment_by_name("cro-awards/on-demand").parameter_openapi_schema
        answer = client.request(
            "POST", "/ui/schemas/validate", json={"schema": schema, "values": {"min_evaluations": -3}}
        ).json()
    assert answer == {
        "valid": False,
        "errors": [{"property": "min_evaluations", "errors": ["-3 is less than the minimum of 1"]}],
    }


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
    store = served["data"] / "drafts"  # the default private store: <data root>/drafts
    ledger = (store / "published_exports.jsonl").read_text().splitlines()
    assert len(ledger) == 1 and json.loads(ledger[0])["file_name"] == "export_2024.csv"
    assert not (output / "survey_year=2024").exists(), "the inbox makes drafts unless told to release"
    drafts = sorted((store / "survey_year=2024").iterdir())
    second = _run("cro-awards-inbox/inbox", {"release": True})
    assert second.state.is_completed()
    assert sorted((store / "survey_year=2024").iterdir()) == drafts, "an export is run once"
    assert len((store / "published_exports.jsonl").read_text().splitlines()) == 1


def test_backfill_runs_two_years_in_parallel_with_dask(served):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter

    output = served["data"] / "backfill-out"
    flow_run = _run(
        "cro-awards-backfill/backfill",
        {
            "years": [2023, 2024],
            "output": str(output),
            "quarantine": str(served["data"] / "backfill-q"),
            "release": True,
        },
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


def test_a_release_made_after_an_embargo_was_set_is_not_overridden_by_its_scheduled_run(served):
    """The issue's race: an embargo of A, then `cro-awards release` of B at once (which says the embargo is
    cancelled); when A's time comes its scheduled run releases nothing and logs why: readers keep B."""
    import datetime as dt

    output, quarantine, drafts = (served["data"] / name for name in ("race-out", "race-q", "race-drafts"))
    folders = {"output": str(output), "quarantine": str(quarantine), "drafts": str(drafts)}
    first = _run("cro-awards/on-demand", folders)
    second = _run("cro-awards/on-demand", {**folders, "champion_sd_multiplier": 0.75})
    assert first.state.is_completed() and second.state.is_completed()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    scheduled = _run(
        "cro-awards-release/release",
        {**folders, "survey_year": 2024, "run_id": str(first.id), "embargo_until": until.isoformat()},
    )
    assert scheduled.state.is_completed(), scheduled.state
    flags = ["--output", str(output), "--quarantine", str(quarantine), "--drafts", str(drafts)]
    released = _cli("release", "2024", str(second.id), *flags)
    assert released.returncode == 0, released.stderr
    assert "now see it" in released.stdout and f"embargoed release of run {first.id}" in released.stdout
    assert "is cancelled" in released.stdout
    log = drafts / "releases.jsonl"
    deadline = time.monotonic() + 30 + DEPLOYMENT_RUN_TIMEOUT
    while time.monotonic() < deadline:
        events = [json.loads(line) for line in log.read_text().splitlines()]
        if any(e["event"] == "embargo_not_applied" for e in events):
            break
        time.sleep(1)
    else:
        pytest.fail(f"the embargo's scheduled run did not finish within {DEPLOYMENT_RUN_TIMEOUT} s of {until}")
    assert _released(output) == str(second.id), "the later release stays"
    assert [(e["event"], e["run_id"]) for e in events] == [
        ("embargoed", str(first.id)),
        ("embargo_cancelled", str(first.id)),
        ("released", str(second.id)),
        ("embargo_not_applied", str(first.id)),
    ]
    assert dt.datetime.fromisoformat(events[-1]["at"]) >= until
