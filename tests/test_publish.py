"""Drafts and the link switch: a draft is written all or nothing (and a retry of the same run finishes
it), recorded once in the ledger; the switch (`releases.release`) is one atomic rename that readers of
the output's top level never see half-done. Every failure's message says what readers see."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cro_awards.engine.errors import PublishError
from cro_awards.publication import publish as publishing, releases
from helpers_publications import (
    NOW,
    YEAR,
    Killed,
    assert_readers_see_only,
    at,
    draft,
    manifest,
    quarantine_rows,
    reader_counts,
    released_score,
    stop_at,
    store,
    tables,
)


@pytest.fixture
def output(tmp_path) -> Path:
    """The output folder; its quarantine is `quarantine` beside it, both in the test's own folder."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def _release(output: Path, run_id: str, quarantine: Path | None = None) -> dict:
    return releases.release(
        output,
        quarantine or output.parent / "quarantine",
        YEAR,
        run_id,
        store=store(output),
        released_by="tester",
        keep=10,
        now=NOW,
    )


def _store(output: Path) -> Path:
    return store(output) / f"survey_year={YEAR}"


def _temporaries(output: Path) -> list[Path]:
    return sorted(output.rglob(".tmp-*"))


def _ledger_lines(output: Path) -> list[dict]:
    return [json.loads(line) for line in (store(output) / publishing.LEDGER).read_text().splitlines()]


def _log_runs(output: Path) -> list[str]:
    return [entry["run_id"] for entry in releases.release_log(store(output), YEAR)]


def _full_disk_at_call(number: int):
    """A stand-in for `_write_parquet` whose `number`-th call fails as a full disk does."""
    real, calls = publishing._write_parquet, []

    def write(table, path):
        calls.append(path)
        if len(calls) == number:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, path)

    return write


# --- the draft: all or nothing, beside the release --------------------------------------------------


def test_a_draft_is_written_whole_in_its_own_folder_and_readers_see_nothing_new(output):
    folder = draft(output, "run-a", score=4.0, published_at="2026-11-30T12:00:00.000000Z")
    assert folder == _store(output) / "20261130T120000.000000Z-run-a"
    stored = json.loads((folder / "_manifest.json").read_text())
    assert stored["tables"] == {
        "attribute_scores": {"file": "attribute_scores.parquet", "rows": 1},
        "awards": {"file": "awards.parquet", "rows": 1},
    }
    assert stored["documents"] == ["draft_report.html", "report.html"]
    assert (folder / "report.html").read_text() == "<p>run-a</p>"
    assert not folder.is_relative_to(output), "drafts live in the private store, never under the output folder"
    assert pq.read_table(folder / "attribute_scores.parquet")["score"].to_pylist() == [4.0]
    assert not (output / f"survey_year={YEAR}").exists() and not (output / f"survey_year={YEAR}").is_symlink()
    assert_readers_see_only(output, 0)
    assert _temporaries(output) == []


@pytest.mark.parametrize("released_before", [True, False], ids=["after-a-release", "first-run"])
def test_full_disk_while_writing_leaves_no_draft_and_the_release_unchanged(output, monkeypatch, released_before):
    if released_before:
        draft(output, "run-a", score=1.0, published_at=at(2))
        _release(output, "run-a")
    monkeypatch.setattr(publishing, "_write_parquet", _full_disk_at_call(2))
    with pytest.raises(
        PublishError, match=r"run-b.*writing the draft failed: the disk is full.*release\) is unchanged"
    ):
        draft(output, "run-b", score=2.0)
    assert publishing.find_draft(store(output), YEAR, "run-b") is None
    assert _temporaries(output) == [], "no half-written folder is left"
    assert "sha-run-b" not in publishing.published_exports(store(output))
    if released_before:
        assert released_score(output) == 1.0
    else:
        assert not (output / f"survey_year={YEAR}").is_symlink() and reader_counts(output) == (0, 0)


def test_read_only_output_fails_clearly_and_keeps_the_release(output, monkeypatch):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name.startswith(".tmp-"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(PublishError, match=r"the file system is read-only.*release\) is unchanged"):
        draft(output, "run-b", score=2.0)
    monkeypatch.undo()
    assert released_score(output) == 1.0 and publishing.find_draft(store(output), YEAR, "run-b") is None


def test_a_retry_after_a_failure_while_writing_writes_the_draft(output, monkeypatch):
    draft(output, "run-a", published_at=at(2))
    run_b = manifest("run-b")
    monkeypatch.setattr(publishing, "_write_parquet", _full_disk_at_call(2))
    with pytest.raises(PublishError, match="disk is full"):
        publishing.write_draft(tables(2.0), run_b, store(output), output=output)
    monkeypatch.undo()
    folder = publishing.write_draft(tables(2.0), run_b, store(output), output=output)
    assert publishing.find_draft(store(output), YEAR, "run-b") == folder
    assert pq.read_table(folder / "attribute_scores.parquet")["score"].to_pylist() == [2.0]
    assert [entry["run_id"] for entry in _ledger_lines(output)] == ["run-a", "run-b"]


def test_a_retry_meets_its_own_half_written_temporary_folder(output):
    """An attempt stopped half-way through writing (its cleanup failed too) left `.tmp-<name>` behind:
    the retry, which makes the same name, replaces it instead of failing."""
    run_a = manifest("run-a")
    name = publishing.draft_name(run_a)
    leftover = _store(output) / f".tmp-{name}"
    leftover.mkdir(parents=True)
    (leftover / "attribute_scores.parquet").write_bytes(b"PAR1 partial")
    folder = publishing.write_draft(tables(4.0), run_a, store(output), output=output)
    assert folder.name == name and pq.read_table(folder / "attribute_scores.parquet")["score"].to_pylist() == [4.0]
    assert not leftover.exists()


@pytest.mark.parametrize("point", ["publication_table_written", "publication_complete", "publication_renamed"])
def test_a_retry_after_the_first_attempt_was_killed_midway_completes_it_once(output, monkeypatch, point):
    """Whatever the first attempt of a run finished (some tables, the whole folder, the rename), the retry
    (the same manifest) does what remains and records the export once."""
    draft(output, "run-a", published_at=at(2))
    run_b = manifest("run-b")
    stop_at(monkeypatch, point)
    with pytest.raises(Killed):
        publishing.write_draft(tables(2.0), run_b, store(output), output=output)
    monkeypatch.undo()
    folder = publishing.write_draft(tables(2.0), run_b, store(output), output=output)
    assert publishing.write_draft(tables(2.0), run_b, store(output), output=output) == folder, (
        "a second retry finds it complete"
    )
    assert pq.read_table(folder / "attribute_scores.parquet")["score"].to_pylist() == [2.0]
    assert [entry["run_id"] for entry in _ledger_lines(output)] == ["run-a", "run-b"]
    assert _temporaries(output) == []
    assert_readers_see_only(output, 0)


def test_a_folder_of_the_same_name_holding_something_else_is_refused_untouched(output):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    run_b = manifest("run-b")
    squatter = _store(output) / publishing.draft_name(run_b)
    squatter.mkdir()
    (squatter / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError, match=r"already exists.*left untouched, and so is the release"):
        publishing.write_draft(tables(2.0), run_b, store(output), output=output)
    assert (squatter / "mine.txt").read_text() == "keep me"
    assert released_score(output) == 1.0


def test_a_real_folder_in_place_of_the_link_is_refused_by_the_draft_and_the_release(output):
    mine = output / f"survey_year={YEAR}"
    mine.mkdir()
    (mine / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError, match="is a folder, not the link.*nothing was written"):
        draft(output, "run-a")
    assert not (output / ".publications").exists()
    (mine / "mine.txt").rename(output / "aside.txt")
    mine.rmdir()
    draft(output, "run-a")
    mine.mkdir()
    (mine / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError, match="is a folder, not the link.*nothing was released"):
        _release(output, "run-a")
    assert [p.name for p in mine.iterdir()] == ["mine.txt"] and not mine.is_symlink()
    assert releases.release_log(store(output)) == []


# --- the ledger: every drafted export once, and the truth when it cannot be written -----------------


def test_the_ledger_records_every_drafted_export_once(output):
    draft(output, "run-a")
    draft(output, "run-b")
    draft(output, "run-a")  # a retry of run-a (same manifest: same published_at, same folder)
    assert publishing.published_exports(store(output)) == {"sha-run-a", "sha-run-b"}
    assert [entry["run_id"] for entry in _ledger_lines(output)] == ["run-a", "run-b"]
    assert _ledger_lines(output)[0] == {
        "sha256": "sha-run-a",
        "file_name": "export.csv",
        "survey_year": YEAR,
        "run_id": "run-a",
        "published_at": manifest("run-a").published_at,
    }


def test_a_torn_ledger_line_is_ignored_and_does_not_swallow_the_next_record(output):
    draft(output, "run-a")
    with (store(output) / publishing.LEDGER).open("a") as stream:
        stream.write('{"sha256": "to')
    assert publishing.published_exports(store(output)) == {"sha-run-a"}
    draft(output, "run-b")
    assert publishing.published_exports(store(output)) == {"sha-run-a", "sha-run-b"}


def test_an_unwritable_ledger_says_the_draft_is_complete_and_a_retry_records_it_once(output):
    """The ledger made a directory (a full disk at that moment does the same): the draft is complete, so
    the message must say so; retries (the same call again) must not trip over their first attempt; once
    the ledger is writable a retry records the export exactly once. The release is never touched."""
    draft(output, "run-a", n_awards=3, published_at=at(2))
    _release(output, "run-a")
    ledger = store(output) / publishing.LEDGER
    ledger.unlink()
    ledger.mkdir()
    run_b = manifest("run-b")
    for _attempt in range(3):  # the first attempt and Prefect's two retries
        with pytest.raises(PublishError) as caught:
            publishing.write_draft(tables(2.0, 5), run_b, store(output), output=output)
        message = str(caught.value)
        assert "recording the export in the ledger failed" in message, message
        assert f"{publishing.draft_name(run_b)} is complete, but not recorded" in message, message
        assert "release) is unchanged" in message, message
        assert_readers_see_only(output, 3)
    assert PublishError.exit_code == 5
    ledger.rmdir()
    folder = publishing.write_draft(tables(2.0, 5), run_b, store(output), output=output)
    assert folder == publishing.find_draft(store(output), YEAR, "run-b")
    assert [entry["run_id"] for entry in _ledger_lines(output)] == ["run-b"], "recorded exactly once"
    assert_readers_see_only(output, 3)
    assert _temporaries(output) == []


def test_full_disk_while_recording_the_ledger_says_the_draft_is_complete_but_not_recorded(output, monkeypatch):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    real_open = os.open

    def full_disk(path, flags, *args, **kwargs):
        if Path(path).name == publishing.LEDGER and flags & os.O_APPEND:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(publishing.os, "open", full_disk)
    with pytest.raises(PublishError, match=r"ledger failed: the disk is full.*-run-b is complete, but not recorded"):
        draft(output, "run-b", score=2.0)
    monkeypatch.undo()
    assert publishing.find_draft(store(output), YEAR, "run-b") is not None
    assert released_score(output) == 1.0
    assert publishing.published_exports(store(output)) == {"sha-run-a"}


# --- the switch (releases.release): atomic, and never seen half-done by readers ----------------------


def test_failure_while_switching_leaves_the_previous_release(output, monkeypatch):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", score=2.0)

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(publishing.os, "replace", read_only)
    with pytest.raises(PublishError, match=r"Nothing was released.*read-only.*still shows .*-run-a"):
        _release(output, "run-b")
    monkeypatch.undo()
    assert released_score(output) == 1.0
    assert _log_runs(output) == ["run-a"]
    assert not list(output.glob(".tmp-*")), "the fresh link is never at the top level"
    assert not list((output / ".releases").glob(".tmp-*")), "the fresh link is removed when the switch fails"


def test_failure_before_anything_was_ever_released_says_nothing_is_released(output, monkeypatch):
    draft(output, "run-a")

    def full_disk(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publishing.os, "symlink", full_disk)
    with pytest.raises(PublishError, match=r"Nothing was released.*disk is full.*no run of survey_year=2024"):
        _release(output, "run-a")
    monkeypatch.undo()
    assert not (output / f"survey_year={YEAR}").is_symlink() and reader_counts(output) == (0, 0)
    assert releases.release_log(store(output)) == []


def test_failure_to_sync_the_switched_link_says_the_draft_is_released(output, monkeypatch):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", score=2.0)
    real = publishing._fsync_dir

    def failing_on_the_output(path):
        if path == output:
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    monkeypatch.setattr(publishing, "_fsync_dir", failing_on_the_output)
    with pytest.raises(PublishError, match=r"-run-b IS released.*switching the year's link failed.*release the same"):
        _release(output, "run-b")
    monkeypatch.undo()
    assert released_score(output) == 2.0
    assert _release(output, "run-b")["already"] is False, "the retry completes the release: its log line"
    assert _log_runs(output) == ["run-a", "run-b"]


def test_failure_while_collecting_old_drafts_says_the_draft_is_released_and_logged(output, monkeypatch):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", score=2.0)

    def denied(*_args, **_kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(releases, "collect_garbage", denied)
    with pytest.raises(
        PublishError, match=r"-run-b IS released.*only collecting old drafts failed \(permission denied"
    ):
        _release(output, "run-b")
    monkeypatch.undo()
    assert released_score(output) == 2.0
    assert _log_runs(output) == ["run-a", "run-b"]


def test_leftovers_of_interrupted_runs_are_collected_by_the_next_release(output):
    store = _store(output)
    (store / ".tmp-20240101T000000Z-dead").mkdir(parents=True)
    os.symlink(f".publications/survey_year={YEAR}/x", output / f".tmp-survey_year={YEAR}-dead")  # older versions'
    (output / ".releases").mkdir()
    os.symlink("nowhere", output / ".releases" / f".tmp-survey_year={YEAR}-dead")
    draft(output, "run-a")
    _release(output, "run-a")
    assert _temporaries(output) == []
    assert_readers_see_only(output, 1)


def test_killed_between_making_and_renaming_the_link_readers_get_the_released_rows_once(output, monkeypatch):
    """Killed at `link_created`, the fresh link must not be at the top level, where
    `read_parquet('<output>/*/awards.parquet', hive_partitioning = true)` fails (hive partition mismatch)
    and the same without hive partitioning returns both drafts' rows."""
    draft(output, "run-a", n_awards=3, published_at=at(3))
    _release(output, "run-a")
    assert_readers_see_only(output, 3)
    draft(output, "run-b", n_awards=5, published_at=at(2))
    stop_at(monkeypatch, "link_created")
    with pytest.raises(Killed):
        _release(output, "run-b")
    monkeypatch.undo()
    assert_readers_see_only(output, 3)
    strays = list((output / ".releases").glob(f".tmp-survey_year={YEAR}-*"))
    assert len(strays) == 1 and strays[0].is_symlink(), "the killed release's fresh link is in .releases/"
    assert not strays[0].exists(), "there it dangles: nothing follows it"
    draft(output, "run-c", n_awards=7, published_at=at(1))
    _release(output, "run-c")
    assert_readers_see_only(output, 7)
    assert not list((output / ".releases").glob(".tmp-*")), "the next release removes the stray link"
    assert not os.path.isabs(os.readlink(output / f"survey_year={YEAR}"))


def test_the_first_release_killed_before_its_link_is_renamed_leaves_readers_no_file(output, monkeypatch):
    draft(output, "run-a", n_awards=5)
    stop_at(monkeypatch, "link_created")
    with pytest.raises(Killed):
        _release(output, "run-a")
    monkeypatch.undo()
    assert_readers_see_only(output, 0)
    assert sorted(p.name for p in output.iterdir()) == [".releases"]
    # its readable copy was made before the kill: the next run or release of the year removes it
    releases.collect_garbage(output, output.parent / "quarantine", store(output), YEAR, 10, now=NOW)
    assert list(publishing.releases_folder(output, YEAR).iterdir()) == []


def test_readers_never_see_a_temporary_entry_during_a_draft_and_its_release(output, monkeypatch):
    """At every checkpoint of a draft and its release, the glob of the top level matches the release
    alone: the old one until the year's link is switched, the new one after."""
    quarantine = output.parent / "quarantine"
    draft(output, "run-a", n_awards=3, published_at=at(2))
    _release(output, "run-a", quarantine)
    seen: list[tuple[str, int]] = []

    def observe(name: str) -> None:
        rows = reader_counts(output)[0]
        assert_readers_see_only(output, rows)
        seen.append((name, rows))

    stop_at(monkeypatch, "never", observe)
    publishing.write_quarantine(quarantine_rows([1]), quarantine, YEAR, "run-b")
    draft(output, "run-b", n_awards=5)
    _release(output, "run-b", quarantine)
    assert seen == [
        ("quarantine_temporary_written", 3),
        ("publication_table_written", 3),
        ("publication_table_written", 3),
        ("publication_complete", 3),
        ("publication_renamed", 3),
        ("release_copy_file_written", 3),
        ("release_copy_file_written", 3),
        ("release_copy_file_written", 3),
        ("release_copy_complete", 3),
        ("release_copy_renamed", 3),
        ("link_created", 3),
        ("link_switched", 5),
        ("link_created", 5),  # the released quarantine's link
        ("link_switched", 5),
        ("release_recorded", 5),
    ]


def test_another_years_fresh_link_is_left_alone(output):
    """Years release side by side (one lock per year): a release of 2024 never removes 2023's fresh link,
    which may be between its creation and its rename."""
    (output / ".releases").mkdir()
    in_flight = output / ".releases" / ".tmp-survey_year=2023-inflight"
    os.symlink(".releases/survey_year=2023/x", in_flight)
    draft(output, "run-a")
    _release(output, "run-a")
    assert in_flight.is_symlink()


@pytest.mark.parametrize(
    "point", ["release_copy_file_written", "release_copy_renamed", "link_created", "link_switched", "release_recorded"]
)
def test_a_release_killed_midway_is_completed_by_releasing_again_with_one_log_line(output, monkeypatch, point):
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", score=2.0)
    stop_at(monkeypatch, point)
    with pytest.raises(Killed):
        _release(output, "run-b")
    monkeypatch.undo()
    done = _release(output, "run-b")
    assert released_score(output) == 2.0
    assert [(e["run_id"], e["previous_run_id"]) for e in releases.release_log(store(output))] == [
        ("run-a", None),
        ("run-b", "run-a"),
    ]
    assert done["previous_run_id"] == "run-a"
    assert not list((output / ".releases").glob(".tmp-*"))
    assert_readers_see_only(output, 1)


def test_releasing_the_logged_release_after_a_killed_switch_logs_the_switch_back(output, monkeypatch):
    """run-b's release was killed after its link switched, before its log line: readers see run-b. Releasing
    run-a (the log's last release) again switches the link back, so it is a release, logged, not `already`."""
    draft(output, "run-a", score=1.0, published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", score=2.0)
    stop_at(monkeypatch, "link_switched")
    with pytest.raises(Killed):
        _release(output, "run-b")
    monkeypatch.undo()
    assert released_score(output) == 2.0
    done = _release(output, "run-a")
    assert (done["already"], done["previous_run_id"]) == (False, "run-b")
    assert released_score(output) == 1.0
    assert [(e["run_id"], e["previous_run_id"]) for e in releases.release_log(store(output))] == [
        ("run-a", None),
        ("run-a", "run-b"),
    ]


# --- each run's quarantine -------------------------------------------------------------------------


def test_each_runs_quarantine_is_its_own_and_a_rewrite_replaces_it_whole(tmp_path):
    first = publishing.write_quarantine(quarantine_rows([1, 2]), tmp_path, YEAR, "run-a")
    assert first == tmp_path / f"survey_year={YEAR}" / "run-a" / "rejected_evaluations.parquet"
    second = publishing.write_quarantine(quarantine_rows([3]), tmp_path, YEAR, "run-b")
    publishing.write_quarantine(quarantine_rows([7]), tmp_path, YEAR, "run-a")  # a retry of run-a
    assert pq.read_table(first)["source_row"].to_pylist() == [7]
    assert pq.read_table(second)["source_row"].to_pylist() == [3]
    assert sorted(p.name for p in first.parent.iterdir()) == ["rejected_evaluations.parquet"]
    assert sorted(p.name for p in (tmp_path / f"survey_year={YEAR}").iterdir()) == ["run-a", "run-b"]


def test_full_disk_while_writing_the_quarantine_keeps_the_runs_previous_file(tmp_path, monkeypatch):
    path = publishing.write_quarantine(quarantine_rows([1]), tmp_path, YEAR, "run-a")

    def full_disk(table, target):
        target.write_bytes(b"PAR1 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publishing, "_write_parquet", full_disk)
    with pytest.raises(PublishError, match=r"cannot write the quarantine in .*run-a: the disk is full"):
        publishing.write_quarantine(quarantine_rows([2]), tmp_path, YEAR, "run-a")
    assert pq.read_table(path)["source_row"].to_pylist() == [1]
    assert [p.name for p in path.parent.iterdir()] == ["rejected_evaluations.parquet"]


@pytest.mark.parametrize("inside", ["out/q", "out"])
def test_quarantine_inside_or_equal_to_output_is_refused(tmp_path, inside):
    with pytest.raises(PublishError, match="inside the output"):
        publishing.check_locations(tmp_path / "out", tmp_path / inside)


def test_quarantine_beside_output_is_fine(tmp_path):
    output, quarantine = publishing.check_locations(tmp_path / "out", tmp_path / "quarantine")
    assert output == (tmp_path / "out").resolve() and quarantine == (tmp_path / "quarantine").resolve()
