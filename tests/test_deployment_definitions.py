"""The deployments are defined twice, as code (`deployments/serve.py`, `make serve`) and for work pools
(`deployments/prefect.yaml`, `prefect deploy`): the same four, by the same full names (flow/deployment),
descriptions, tags and schedules; and every name the code uses to reach one of them is one of those."""

from __future__ import annotations

import importlib

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.prefect


def _served() -> dict[str, dict]:
    from deployments.serve import deployments

    return {
        f"{d.flow_name}/{d.name}": {
            "description": d.description,
            "tags": sorted(d.tags),
            "crons": sorted(schedule.schedule.cron for schedule in d.schedules or []),
        }
        for d in deployments()
    }


def _declared() -> dict[str, dict]:
    document = yaml.safe_load((PROJECT_ROOT / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    found = {}
    for entry in document["deployments"]:
        path, name = entry["entrypoint"].split(":")
        flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
        found[f"{flow.name}/{entry['name']}"] = {
            "description": entry["description"],
            "tags": sorted(entry["tags"]),
            "crons": sorted(schedule["cron"] for schedule in entry.get("schedules") or []),
        }
    return found


def test_serve_and_prefect_yaml_define_the_same_deployments():
    served = _served()
    assert sorted(served) == [
        "cro-awards-backfill/backfill",
        "cro-awards-inbox/inbox",
        "cro-awards-release/release",
        "cro-awards/on-demand",
    ]
    assert served == _declared()


def test_the_names_the_code_uses_are_served():
    from flows.release import DEPLOYMENT

    assert DEPLOYMENT == "cro-awards-release/release" and DEPLOYMENT in _served()
