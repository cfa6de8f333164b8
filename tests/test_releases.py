"""Releases: drafts change nothing readers see; a release points the year's link (and the released
quarantine) at one draft, logs who, when and what was released before; the keep policy; run ids from
people are matched, never joined into paths."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cro_awards.publication import publish as publishing, releases
from cro_awards.publication.releases import ReleaseError
from helpers_publications import (
    NOW,
    YEAR,
    assert_readers_see_only,
    at,
    draft,
    manifest,
    quarantine_rows,
    reader_counts,
    released_score,
    store,
    tables,
)

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def output(tmp_path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


@pytest.fixture
def quarantine(tmp_path) -> Path:
    return tmp_path / "quarantine"


def _release(output: Path, quarantine: Path, run_id: str, **options) -> dict:
    return releases.release(
        output,
        quarantine,
        YEAR,
        run_id,
        store=store(output),
        released_by=options.get("released_by", "tester"),
        keep=options.get("keep", 10),
        now=options.get("now", NOW),
    )


def _log(output: Path) -> list[tuple[str, str | None]]:
    return [(entry["run_id"], entry.get("previous_run_id")) for entry in releases.release_log(store(output), YEAR)]


def _released_quarantine(quarantine: Path) -> Path:
    return quarantine / f"survey_year={YEAR}" / "rejected_evaluations.parquet"


def _copy(output: Path, run_id: str) -> Path:
    """The readable copy a release of `run_id` places under the output folder."""
    return publishing.releases_folder(output, YEAR) / run_id


def _rows(path: Path) -> list[int]:
    return pq.read_table(path)["source_row"].to_pylist()


# --- drafts and releases: what readers see ----------------------------------------------------------


def test_a_draft_changes_nothing_readers_see(output, quarantine):
    link = output / f"survey_year={YEAR}"
    first = draft(output, "run-a", n_awards=3, published_at=at(2))
    assert not link.exists() and not link.is_symlink(), "no release yet: no link at all"
    assert reader_counts(output) == (0, 0) and releases.current_release(output, YEAR) is None
    _release(output, quarantine, "run-a")
    pointed = os.readlink(link)
    draft(output, "run-b", n_awards=5, published_at=at(1))
    assert os.readlink(link) == pointed and releases.current_release(output, YEAR) == _copy(output, "run-a")
    assert publishing.read_manifest(first).run_id == "run-a"
    assert_readers_see_only(output, 3)


def test_a_release_points_the_years_link_at_its_draft(output, quarantine):
    draft(output, "run-a", score=1.0, published_at=at(2))
    second = draft(output, "run-b", score=2.0, published_at=at(1))
    done = _release(output, quarantine, "run-b")
    link = output / f"survey_year={YEAR}"
    copy = _copy(output, "run-b")
    assert link.resolve() == copy.resolve() and releases.current_release(output, YEAR) == copy
    assert sorted(p.name for p in copy.iterdir()) == [
        "_manifest.json",
        "attribute_scores.parquet",
        "awards.parquet",
        "report.html",
    ]
    assert (copy / "report.html").read_bytes() == (second / "report.html").read_bytes()
    assert not os.path.isabs(os.readlink(link)), "a relative link keeps the output folder movable"
    assert released_score(output) == 2.0
    assert pq.read_table(publishing.year_folder(output, YEAR) / "awards.parquet").equals(tables(2.0)["awards"])
    assert (done["run_id"], done["path"], done["previous_run_id"], done["already"]) == (
        "run-b",
        str(second),
        None,
        False,
    )


def test_releasing_an_earlier_draft_is_a_rollback(output, quarantine):
    first = draft(output, "run-a", score=1.0, published_at=at(2))
    draft(output, "run-b", score=2.0, published_at=at(1))
    _release(output, quarantine, "run-a")
    _release(output, quarantine, "run-b", now=NOW + HOUR)
    done = _release(output, quarantine, "run-a", now=NOW + 2 * HOUR)
    assert released_score(output) == 1.0 and releases.current_release(output, YEAR) == _copy(output, "run-a")
    assert publishing.read_manifest(first).run_id == "run-a"
    assert (done["previous_run_id"], done["already"]) == ("run-b", False)
    assert _log(output) == [("run-a", None), ("run-b", "run-a"), ("run-a", "run-b")]
    assert releases.previous_release(output, store(output), YEAR) == "run-b"


def test_releasing_the_current_release_again_is_already_and_logs_nothing(output, quarantine):
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    _release(output, quarantine, "run-a")
    _release(output, quarantine, "run-b", released_by="ann", now=NOW + HOUR)
    log = releases.log_path(store(output)).read_bytes()
    again = _release(output, quarantine, "run-b", released_by="bob", now=NOW + 2 * HOUR)
    assert again["already"] is True
    assert (again["released_by"], again["released_at"], again["previous_run_id"]) == (
        "ann",
        "2026-12-01T13:00:00.000000Z",
        "run-a",
    ), "who, when and the run before are the release's, not the repeat's"
    assert releases.log_path(store(output)).read_bytes() == log


def test_each_release_logs_who_when_the_run_and_the_run_before(output, quarantine, monkeypatch):
    monkeypatch.setattr(releases.getpass, "getuser", lambda: "os-user")
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    releases.release(output, quarantine, YEAR, store=store(output), run_id="run-a", now=NOW)
    releases.release(
        output, quarantine, YEAR, store=store(output), run_id="run-b", released_by="editor", now=NOW + HOUR
    )
    lines = releases.log_path(store(output)).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "event": "released",
            "survey_year": YEAR,
            "run_id": "run-a",
            "at": "2026-12-01T12:00:00.000000Z",
            "by": "os-user",
            "previous_run_id": None,
        },
        {
            "event": "released",
            "survey_year": YEAR,
            "run_id": "run-b",
            "at": "2026-12-01T13:00:00.000000Z",
            "by": "editor",
            "previous_run_id": "run-a",
        },
    ]


def test_the_releaser_is_unknown_when_the_os_cannot_say(monkeypatch):
    def no_user():
        raise KeyError("getpwuid(): uid not found: 1234")

    monkeypatch.setattr(releases.getpass, "getuser", no_user)
    assert releases.default_releaser() == "unknown"


def test_a_torn_last_line_of_the_release_log_is_ended_not_merged(output, quarantine):
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    _release(output, quarantine, "run-a")
    with releases.log_path(store(output)).open("a") as stream:
        stream.write('{"event": "released", "run')
    assert _log(output) == [("run-a", None)]
    _release(output, quarantine, "run-b")
    lines = releases.log_path(store(output)).read_text().splitlines()
    assert lines[1] == '{"event": "released", "run' and json.loads(lines[2])["run_id"] == "run-b"
    assert _log(output) == [("run-a", None), ("run-b", "run-a")]


# --- the released quarantine --------------------------------------------------------------------------


def test_the_released_quarantine_follows_the_release(output, quarantine):
    own_a = publishing.write_quarantine(quarantine_rows([1, 2]), quarantine, YEAR, "run-a")
    publishing.write_quarantine(quarantine_rows([3]), quarantine, YEAR, "run-b")
    assert own_a == quarantine / f"survey_year={YEAR}" / "run-a" / "rejected_evaluations.parquet"
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    assert not _released_quarantine(quarantine).exists(), "a draft changes nothing readers see"
    _release(output, quarantine, "run-a")
    released = _released_quarantine(quarantine)
    assert released.is_symlink() and os.readlink(released) == "run-a/rejected_evaluations.parquet"
    assert _rows(released) == [1, 2]
    _release(output, quarantine, "run-b")
    assert _rows(released) == [3]
    _release(output, quarantine, "run-a")  # rollback
    assert _rows(released) == [1, 2]


def test_a_legacy_quarantine_file_is_replaced_by_the_released_runs_link(output, quarantine):
    legacy = _released_quarantine(quarantine)
    legacy.parent.mkdir(parents=True)
    pq.write_table(quarantine_rows([99]), legacy)
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-a")
    draft(output, "run-a")
    _release(output, quarantine, "run-a")
    assert legacy.is_symlink() and _rows(legacy) == [1]


def test_releasing_a_run_without_a_quarantine_never_shows_another_runs_rows(output, quarantine):
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-a")
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    _release(output, quarantine, "run-a")
    _release(output, quarantine, "run-b")
    released = _released_quarantine(quarantine)
    assert not released.exists() and not released.is_symlink()


def test_a_failed_run_leaves_the_released_quarantine_and_keeps_its_own(output, quarantine):
    publishing.write_quarantine(quarantine_rows([1, 2]), quarantine, YEAR, "run-a")
    draft(output, "run-a")
    _release(output, quarantine, "run-a")
    own = publishing.write_quarantine(quarantine_rows([5, 6, 7]), quarantine, YEAR, "run-failed")  # then it stops
    assert _rows(_released_quarantine(quarantine)) == [1, 2]
    assert _rows(own) == [5, 6, 7]
    with pytest.raises(ReleaseError, match="'run-failed'"):
        _release(output, quarantine, "run-failed")
    assert _rows(_released_quarantine(quarantine)) == [1, 2] and _log(output) == [("run-a", None)]


# --- publications and embargoes --------------------------------------------------------------------


def _four_drafts(output: Path, quarantine: Path) -> dict[str, Path]:
    """run-1 released (the previous release), run-2 the release, run-3 embargoed a day, run-4 a draft."""
    folders = {
        run_id: draft(output, run_id, published_at=at(days_ago))
        for run_id, days_ago in [("run-1", 4), ("run-2", 3), ("run-3", 2), ("run-4", 1)]
    }
    _release(output, quarantine, "run-1", released_by="ann", now=NOW - 2 * HOUR)
    _release(output, quarantine, "run-2", released_by="bob", now=NOW - HOUR)
    releases.record_embargo(store(output), YEAR, "run-3", NOW + DAY, by="cat", now=NOW)
    return folders


def test_publications_newest_first_with_their_status(output, quarantine):
    folders = _four_drafts(output, quarantine)
    listed = releases.publications(output, store(output), YEAR, now=NOW)
    assert [(p.run_id, p.status) for p in listed] == [
        ("run-4", "draft"),
        ("run-3", "embargoed until 2026-12-02T12:00:00.000000Z"),
        ("run-2", "released"),
        ("run-1", "previous release"),
    ]
    assert listed[2].as_json() == {
        "run_id": "run-2",
        "survey_year": YEAR,
        "status": "released",
        "created_at": "2026-11-28T12:00:00.000000Z",
        "published_at": "2026-12-01T11:00:00.000000Z",
        "export_file": "export.csv",
        "export_sha256": "sha-run-2",
        "overrides": {},
        "path": str(folders["run-2"]),
        "released_at": "2026-12-01T11:00:00.000000Z",
        "released_by": "bob",
    }
    assert (listed[3].released_at, listed[3].released_by) == ("2026-12-01T10:00:00.000000Z", "ann")
    assert (listed[0].released_at, listed[0].released_by) == (None, None)
    draft_only = listed[0].as_json()
    assert (draft_only["created_at"], draft_only["published_at"]) == ("2026-11-30T12:00:00.000000Z", None), (
        "a draft's creation time is not a publication"
    )


def test_publications_show_a_drafts_overrides(output):
    publishing.write_draft(
        tables(1.0),
        manifest("run-x", overrides={"min_evaluations": 12}),
        store(output),
    )
    (listed,) = releases.publications(output, store(output), YEAR, now=NOW)
    assert listed.overrides == {"min_evaluations": 12} and listed.status == "draft"


def test_an_embargo_is_pending_until_its_time_or_its_release(output, quarantine):
    _four_drafts(output, quarantine)
    assert releases.pending_embargoes(store(output), YEAR, now=NOW) == {"run-3": NOW + DAY}
    assert releases.pending_embargoes(store(output), YEAR, now=NOW + 2 * DAY) == {}, "its time has passed"
    due = releases.publications(output, store(output), YEAR, now=NOW + 2 * DAY)[1].status
    assert due == "embargoed until 2026-12-02T12:00:00.000000Z (due: its scheduled run has not released it yet)", (
        "its time has come but readers do not see it yet: still embargoed, not a plain draft"
    )
    _release(output, quarantine, "run-3", now=NOW + DAY)
    assert releases.pending_embargoes(store(output), YEAR, now=NOW) == {}
    assert [p.status for p in releases.publications(output, store(output), YEAR, now=NOW)] == [
        "draft",
        "released",
        "previous release",
        "draft",
    ]


def test_an_embargo_of_an_unknown_run_is_refused(output):
    draft(output, "run-a")
    with pytest.raises(ReleaseError, match="'run-z'.*its drafts: run-a"):
        releases.record_embargo(store(output), YEAR, "run-z", NOW + DAY, by="cat", now=NOW)
    assert not releases.log_path(store(output)).exists()


# --- the keep policy -----------------------------------------------------------------------------------


AGES = {"run-1": 100, "run-2": 90, "run-3": 80, "run-4": 70, "run-5": 60, "run-6": 29}
"""Days since each draft was written: run-1 embargoed (pending), run-2 the previous release, run-3 the
release, run-4 (an embargo that has passed) and run-5 unprotected, run-6 young."""


def _keep_policy_year(output: Path, quarantine: Path) -> None:
    for run_id, days in AGES.items():
        draft(output, run_id, published_at=at(days))
        own = publishing.write_quarantine(quarantine_rows([days]), quarantine, YEAR, run_id)
        stamp = (NOW - dt.timedelta(days=days)).timestamp()
        os.utime(own.parent, (stamp, stamp))
    _release(output, quarantine, "run-2", keep=100)
    _release(output, quarantine, "run-3", keep=100)
    # a year has one embargo in force (a newer one replaces it): run-4's lapsed, then run-1's pending
    releases.record_embargo(store(output), YEAR, "run-4", NOW - DAY, by="cat", now=NOW - 2 * DAY)
    releases.record_embargo(store(output), YEAR, "run-1", NOW + 5 * DAY, by="cat", now=NOW)


@pytest.mark.parametrize(
    ("keep", "deleted"),
    [(0, {"run-4", "run-5"}), (1, {"run-4"}), (2, set())],
    ids=["keep-0", "keep-1-the-newest", "keep-2"],
)
def test_the_keep_policy_keeps_what_it_must_and_then_the_newest(output, quarantine, keep, deleted):
    _keep_policy_year(output, quarantine)
    removed = releases.collect_garbage(output, quarantine, store(output), YEAR, keep, now=NOW)
    kept = {p.run_id for p in releases.publications(output, store(output), YEAR, now=NOW)}
    assert kept == set(AGES) - deleted
    runs_quarantined = {p.name for p in (quarantine / f"survey_year={YEAR}").iterdir() if p.is_dir()}
    assert runs_quarantined == set(AGES) - deleted, "a deleted draft's quarantine goes with it"
    year_store = store(output) / f"survey_year={YEAR}"
    assert {path.name.split("-", 1)[1] for path in removed if path.parent == year_store} == deleted
    assert releases.current_release(output, YEAR).name == "run-3", "its readable copy"


def test_the_release_applies_the_keep_policy_with_its_own_keep(output, quarantine):
    _keep_policy_year(output, quarantine)
    _release(output, quarantine, "run-3", keep=0)  # already released: the policy runs all the same
    # the release cancelled run-1's embargo, so nothing protects run-1 any more
    assert {p.run_id for p in releases.publications(output, store(output), YEAR, now=NOW)} == {
        "run-2",
        "run-3",
        "run-6",
    }


def test_a_draft_just_under_thirty_days_is_kept_one_just_over_is_not(output, quarantine):
    draft(output, "run-young", published_at=at(29.9))
    draft(output, "run-old", published_at=at(30.1))
    releases.collect_garbage(output, quarantine, store(output), YEAR, 0, now=NOW)
    assert [p.run_id for p in releases.publications(output, store(output), YEAR, now=NOW)] == ["run-young"]


def test_a_failed_runs_quarantine_is_kept_thirty_days_and_leftovers_are_removed(output, quarantine):
    draft(output, "run-a")
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-a")
    _release(output, quarantine, "run-a")
    for run_id, days in [("run-a", 100), ("failed-recent", 29), ("failed-old", 31)]:
        own = publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, run_id)
        stamp = (NOW - dt.timedelta(days=days)).timestamp()
        os.utime(own.parent, (stamp, stamp))
    year_store = store(output) / f"survey_year={YEAR}"
    (year_store / ".tmp-20261101T000000.000000Z-killed").mkdir(parents=True)
    (year_store / ".tmp-20261101T000000.000000Z-killed" / "awards.parquet").write_bytes(b"PAR1 partial")
    (quarantine / f"survey_year={YEAR}" / ".tmp-0123.parquet").write_bytes(b"PAR1 partial")
    releases.collect_garbage(output, quarantine, store(output), YEAR, 0, now=NOW)
    assert sorted(p.name for p in (quarantine / f"survey_year={YEAR}").iterdir()) == [
        "failed-recent",
        "rejected_evaluations.parquet",
        "run-a",
    ], "run-a's quarantine, however old, is kept with its draft"
    assert [p.name.endswith("-run-a") for p in year_store.iterdir()] == [True]


def test_a_year_whose_runs_all_failed_still_loses_its_old_quarantines(output, quarantine):
    own = publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "failed-old")
    stamp = (NOW - dt.timedelta(days=31)).timestamp()
    os.utime(own.parent, (stamp, stamp))
    assert releases.collect_garbage(output, quarantine, store(output), YEAR, 0, now=NOW) == [own.parent]
    assert not own.parent.exists()


def test_a_run_killed_while_writing_its_quarantine_leaves_nothing_after_the_next_keep_policy(output, quarantine):
    """The crash test's finding: a run SIGKILLed right after writing its quarantine's temporary file left
    it in its own folder, which no later run writes to. The keep policy (under the year lock) removes
    such leftovers, and a folder that holds nothing else."""
    draft(output, "run-a")
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-a")
    _release(output, quarantine, "run-a")
    year = quarantine / f"survey_year={YEAR}"
    (year / "killed").mkdir()
    (year / "killed" / ".tmp-5e1f.parquet").write_bytes(b"PAR1 partial")
    (year / "run-a" / ".tmp-77aa.parquet").write_bytes(b"PAR1 partial")  # a retry of run-a killed later
    releases.collect_garbage(output, quarantine, store(output), YEAR, 2, now=NOW)
    assert sorted(p.name for p in year.iterdir()) == ["rejected_evaluations.parquet", "run-a"]
    assert sorted(p.name for p in (year / "run-a").iterdir()) == ["rejected_evaluations.parquet"]


# --- run ids given by people: matched, never joined into a path --------------------------------------


def test_an_unknown_run_id_lists_the_years_drafts(output, quarantine):
    with pytest.raises(ReleaseError, match=r"no draft of survey year 2024 with run id 'run-z'.*its drafts: none"):
        _release(output, quarantine, "run-z")
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-b", published_at=at(1))
    with pytest.raises(
        ReleaseError, match=r"'run-z'.*its drafts: run-b, run-a\).*cro-awards publications 2024"
    ) as caught:
        releases.require_draft(store(output), YEAR, "run-z")
    assert caught.value.exit_code == 10
    with pytest.raises(ReleaseError, match="'run-a'"):
        releases.require_draft(output, YEAR + 1, "run-a")  # another year's drafts are not this year's


def _state(root: Path) -> dict[str, tuple]:
    """Every entry under `root` (links not followed): its link text or bytes, and its modification time."""
    state = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = Path(folder) / name
            content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
            state[str(path.relative_to(root))] = (content, path.lstat().st_mtime_ns)
    return state


def _decoy(draft_folder: Path, where: Path, run_id: str) -> None:
    """A complete copy of `draft_folder` at `where` whose manifest claims `run_id`: what a path join of
    `run_id` would find."""
    shutil.copytree(draft_folder, where)
    manifest = json.loads((where / "_manifest.json").read_text())
    (where / "_manifest.json").write_text(json.dumps({**manifest, "run_id": run_id}))


@pytest.mark.parametrize("kind", ["parent-escape", "dot-dot-inside", "absolute"])
def test_a_hostile_run_id_never_reaches_a_path(tmp_path, kind):
    site = tmp_path / "site"
    output, quarantine = site / "out", site / "q"
    released = draft(output, "run-a", n_awards=2)
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-a")
    releases.release(output, quarantine, YEAR, store=store(output), run_id="run-a", released_by="tester", now=NOW)
    year_store = store(output) / f"survey_year={YEAR}"
    run_id, joined = {
        "parent-escape": ("../../etc", output / "etc"),  # year_store / run_id
        "dot-dot-inside": ("x/../y", year_store / "y"),
        "absolute": (str(site / "elsewhere"), site / "elsewhere"),
    }[kind]
    _decoy(released, joined, run_id)
    (year_store / "x").mkdir()  # so that a join of "x/../y" would reach the decoy
    before = _state(tmp_path)
    with pytest.raises(ReleaseError):
        releases.release(output, quarantine, YEAR, store=store(output), run_id=run_id, released_by="attacker", now=NOW)
    with pytest.raises(ReleaseError):
        releases.record_embargo(store(output), YEAR, run_id, NOW + DAY, by="attacker", now=NOW)
    assert publishing.find_draft(store(output), YEAR, run_id) is None
    assert run_id not in {p.run_id for p in releases.publications(output, store(output), YEAR, now=NOW)}
    assert _state(tmp_path) == before, "nothing was written, moved or removed"
    assert releases.current_release(output, YEAR) == _copy(output, "run-a"), "the release of run-a (its copy)"
    assert publishing.read_manifest(released).run_id == "run-a"


# --- times -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["2026-12-24T09:00:00Z", "2026-12-24T10:00:00+01:00", "2026-12-24T09:00:00", " 2026-12-24T04:00:00-05:00 "],
    ids=["zulu", "offset", "naive-is-utc", "spaces-and-negative-offset"],
)
def test_parse_time_accepts_iso_times_and_takes_a_naive_one_as_utc(text):
    parsed = releases.parse_time(text)
    assert parsed == dt.datetime(2026, 12, 24, 9, 0, tzinfo=dt.UTC) and parsed.tzinfo is not None


def test_parse_time_keeps_an_aware_datetime_and_makes_a_naive_one_utc():
    aware = dt.datetime(2026, 12, 24, 10, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert releases.parse_time(aware) is aware
    assert releases.parse_time(dt.datetime(2026, 12, 24, 9)) == dt.datetime(2026, 12, 24, 9, tzinfo=dt.UTC)


@pytest.mark.parametrize("junk", ["next tuesday", "", "2026-13-01T00:00:00Z", "24/12/2026 09:00"])
def test_parse_time_refuses_junk_saying_how_to_write_a_time(junk):
    with pytest.raises(ReleaseError, match=r"is not an ISO 8601 time; write it like 2026-12-24T09:00:00Z"):
        releases.parse_time(junk)
