"""Run summaries for the tests of what is printed and shown from them: only the fields a test is about
are given, the others are plain placeholders."""

from __future__ import annotations

from typing import Any

from cro_awards.record.summary import RunSummary

PLACEHOLDERS: dict[str, Any] = {
    "survey_year": 2024,
    "run_id": "run-1",
    "export": "/srv/e.csv",
    "export_sha256": "ab" * 32,
    "counts": {"read": 0, "accepted": 0, "quarantined": 0},
    "quarantined_by_reason": {},
    "published": "/srv/drafts/survey_year=2024/run-1",
    "output": "/srv/out",
    "quarantine": "/srv/q",
    "awards": [],
    "timings": {},
    "not_counted": {},
    "disclosure_seconds": {},
}


def run_summary(**fields: Any) -> RunSummary:
    """A `RunSummary` with `fields`, the others `PLACEHOLDERS`."""
    return RunSummary(**{**PLACEHOLDERS, **fields})
