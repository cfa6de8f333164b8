"""Embargoes tell the truth: a release or rollback of a year cancels its pending embargo and says so; a
scheduled (embargoed) release never overrides a release made after it was scheduled; releasing an
embargoed draft at once needs --now. The scheduled run's code path (`releases.release_embargoed`, what
`flows.release` calls at the embargo time under the year's lock) runs here with an injected clock."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cli.main import main
from cro_awards.publication import releases
from helpers_publications import NOW, YEAR, at, draft, released_score, store

HOUR = dt.timedelta(hours=1)
UNTIL = NOW + 2 * HOUR


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    output = tmp_path / "out"
    output.mkdir()
    for run_id, score, days in (("run-a", 1.0, 3), ("run-b", 2.0, 2), ("run-c", 3.0, 1)):
        draft(output, run_id, score=score, published_at=at(days))
    return {"output": output, "quarantine": tmp_path / "quarantine", "drafts": store(output)}


def _release(folders, run_id: str, now: dt.datetime) -> dict:
    return releases.release(
        folders["output"], folders["quarantine"], YEAR, run_id, store=folders["drafts"], released_by="ed", now=now
    )


def _embargo(folders, run_id: str, until: dt.datetime = UNTIL, now: dt.datetime = NOW) -> dict:
    return releases.record_embargo(folders["drafts"], YEAR, run_id, until, by="em", flow_run_id="fr-1", now=now)


def _scheduled_run(folders, run_id: str, until: dt.datetime = UNTIL, now: dt.datetime = UNTIL) -> dict:
    """What the embargo's scheduled flow run does when its time comes."""
    return releases.release_embargoed(
        folders["output"],
        folders["quarantine"],
        YEAR,
        run_id,
        until,
        store=folders["drafts"],
        released_by="em",
        now=now,
        flow_run_id="fr-1",
    )


def _events(folders) -> list[tuple[str, str]]:
    return [(e["event"], e["run_id"]) for e in releases.release_log(folders["drafts"], YEAR)]


def test_an_embargo_nothing_settled_is_released_by_its_scheduled_run(folders):
    _release(folders, "run-a", NOW - HOUR)
    _embargo(folders, "run-b")
    assert released_score(folders["output"]) == 1.0
    done = _scheduled_run(folders, "run-b")
    assert done["status"] == "released" and done["cancelled_embargoes"] == [], "its own embargo is not cancelled"
    assert released_score(folders["output"]) == 2.0
    assert _events(folders) == [("released", "run-a"), ("embargoed", "run-b"), ("released", "run-b")]
    assert releases.pending_embargoes(folders["drafts"], YEAR, NOW) == {}


def test_a_release_after_the_embargo_was_set_wins_over_the_scheduled_run(folders):
    """The issue's sequence: embargo A, then release B at once; when A's time comes, B stays released."""
    _release(folders, "run-a", NOW - HOUR)
    _embargo(folders, "run-b")
    later = _release(folders, "run-c", NOW + HOUR)
    assert [(c["run_id"], c["embargo_until"]) for c in later["cancelled_embargoes"]] == [("run-b", releases.iso(UNTIL))]
    assert releases.pending_embargoes(folders["drafts"], YEAR, NOW) == {}, "cancelled: no longer pending"
    done = _scheduled_run(folders, "run-b")
    assert done["status"] == "not applied"
    assert "cancelled" in done["reason"] and "run run-c was released" in done["reason"]
    assert released_score(folders["output"]) == 3.0, "the later release stays"
    assert _events(folders) == [
        ("released", "run-a"),
        ("embargoed", "run-b"),
        ("embargo_cancelled", "run-b"),
        ("released", "run-c"),
        ("embargo_not_applied", "run-b"),
    ]


def test_a_rollback_after_the_embargo_was_set_wins_too(folders):
    _release(folders, "run-a", NOW - 2 * HOUR)
    _release(folders, "run-c", NOW - HOUR)
    _embargo(folders, "run-b")
    rollback = _release(folders, "run-a", NOW + HOUR)
    assert [c["run_id"] for c in rollback["cancelled_embargoes"]] == ["run-b"]
    assert _scheduled_run(folders, "run-b", now=UNTIL + HOUR)["status"] == "not applied"
    assert released_score(folders["output"]) == 1.0


def test_a_release_logged_after_the_embargo_without_a_cancellation_line_still_wins(folders):
    """Even had the cancellation line been lost (an older version, a hand edit): any release of the year
    logged after the embargo settles it."""
    _release(folders, "run-a", NOW - HOUR)
    _embargo(folders, "run-b")
    with releases.log_path(folders["drafts"]).open("a") as stream:
        entry = {"event": "released", "survey_year": YEAR, "run_id": "run-c", "at": releases.iso(NOW), "by": "x"}
        stream.write(json.dumps(entry) + "\n")
    done = _scheduled_run(folders, "run-b")
    assert done["status"] == "not applied" and "run run-c was released" in done["reason"]
    assert released_score(folders["output"]) == 1.0


def test_releasing_the_current_release_again_cancels_the_pending_embargo(folders):
    _release(folders, "run-a", NOW - HOUR)
    _embargo(folders, "run-b")
    again = _release(folders, "run-a", NOW + HOUR)
    assert again["already"] and [c["run_id"] for c in again["cancelled_embargoes"]] == ["run-b"]
    assert _scheduled_run(folders, "run-b")["status"] == "not applied"
    assert released_score(folders["output"]) == 1.0


def test_a_newer_embargo_replaces_the_pending_one(folders):
    _embargo(folders, "run-a", until=UNTIL)
    newer = _embargo(folders, "run-b", until=UNTIL + HOUR, now=NOW + HOUR)
    assert [r["run_id"] for r in newer["replaced"]] == ["run-a"]
    assert releases.pending_embargoes(folders["drafts"], YEAR, NOW + HOUR) == {"run-b": UNTIL + HOUR}
    assert _scheduled_run(folders, "run-a")["status"] == "not applied"
    assert _scheduled_run(folders, "run-b", until=UNTIL + HOUR, now=UNTIL + HOUR)["status"] == "released"
    assert released_score(folders["output"]) == 2.0


def test_an_embargo_missing_from_the_log_releases_nothing(folders):
    done = _scheduled_run(folders, "run-b")
    assert done["status"] == "not applied" and "no embargo of run run-b" in done["reason"]
    assert not (folders["output"] / f"survey_year={YEAR}").is_symlink()


# --- the command line ----------------------------------------------------------------------------------


def _arguments(folders) -> list[str]:
    return [item for name, path in folders.items() for item in (f"--{name}", str(path))]


def _future_embargo(folders, run_id: str) -> None:
    """An embargo an hour from the real clock (the command line reads the real time)."""
    until = dt.datetime.now(dt.UTC) + HOUR
    releases.record_embargo(folders["drafts"], YEAR, run_id, until, by="em", flow_run_id="fr-1")


def test_releasing_an_embargoed_draft_at_once_needs_now_and_says_the_embargo_is_cancelled(folders, capsys):
    _release(folders, "run-a", NOW)
    _future_embargo(folders, "run-b")
    code = main(["release", str(YEAR), "run-b", *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 10, printed.err
    assert "is embargoed until" in printed.err and "add --now" in printed.err and "nothing was released" in printed.err
    assert released_score(folders["output"]) == 1.0
    code = main(["release", str(YEAR), "run-b", "--now", *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "now see it" in printed.out
    assert "The embargoed release of run run-b at" in printed.out and "is cancelled" in printed.out
    assert released_score(folders["output"]) == 2.0
    assert releases.pending_embargoes(folders["drafts"], YEAR) == {}


def test_a_release_of_another_draft_says_the_pending_embargo_is_cancelled(folders, capsys):
    _release(folders, "run-a", NOW)
    _future_embargo(folders, "run-b")
    code = main(["release", str(YEAR), "run-c", *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Readers of" in printed.out and "now see it" in printed.out
    assert "The embargoed release of run run-b at" in printed.out and "is cancelled" in printed.out
    listing = main(["publications", str(YEAR), "--json", *_arguments(folders)])
    statuses = {p["run_id"]: p["status"] for p in json.loads(capsys.readouterr().out)}
    assert listing == 0 and statuses == {"run-c": "released", "run-b": "draft", "run-a": "previous release"}


def test_now_and_embargo_until_together_are_refused(folders, capsys):
    code = main(
        ["release", str(YEAR), "run-b", "--now", "--embargo-until", "2099-01-01T00:00:00Z", *_arguments(folders)]
    )
    assert code == 2 and "not both" in capsys.readouterr().err
