"""Publishing: all or nothing per survey year, through an atomically switched link."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards import publish as publishing
from cro_awards.errors import PublishError


def _tables(score: float) -> dict[str, pa.Table]:
    return {
        "attribute_scores": pa.table(
            {"segment": ["overall"], "cro": ["A"], "attribute": ["x"], "n_ratings": [3], "score": [score]}
        ),
        "awards": pa.table({"segment": ["overall"], "category": ["k"], "cro": ["A"], "award": ["leader"]}),
    }


def _manifest(run_id: str) -> dict:
    return {
        "run_id": run_id,
        "published_at": publishing.utc_now(),
        "survey_year": 2024,
        "export": {"file_name": "export.csv", "sha256": run_id},
    }


def _publish(output: Path, score: float, run_id: str, keep: int = 2) -> Path:
    return publishing.publish(_tables(score), _manifest(run_id), output, 2024, run_id, keep)


def _live_score(output: Path) -> float:
    return pq.read_table(output / "survey_year=2024" / "attribute_scores.parquet")["score"][0].as_py()


def _awards(n_rows: int) -> dict[str, pa.Table]:
    """Tables whose awards has `n_rows` rows, so a reader's count tells publications apart."""
    return {
        "attribute_scores": _tables(1.0)["attribute_scores"],
        "awards": pa.table(
            {
                "segment": ["overall"] * n_rows,
                "category": ["k"] * n_rows,
                "cro": [f"C{i}" for i in range(n_rows)],
                "award": ["champion"] * n_rows,
            }
        ),
    }


class Killed(BaseException):
    """Stands for a SIGKILL at a checkpoint: nothing after it runs, no `except OSError` catches it."""


def _stop_at(point: str, observer=None):
    """A stand-in for `publishing.checkpoint` that calls `observer(name)` at every checkpoint and "kills"
    the run at `point`."""

    def checkpoint(name: str) -> None:
        if observer is not None:
            observer(name)
        if name == point:
            raise Killed(name)

    return checkpoint


def _reader_counts(output: Path) -> tuple[int, int]:
    """Rows of awards as the data contract's readers get them, with and without hive partitioning; (0, 0)
    when the glob matches no file."""
    pattern = f"{output}/*/awards.parquet"
    connection = duckdb.connect()
    if connection.execute(f"select count(*) from glob('{pattern}')").fetchone()[0] == 0:
        return 0, 0
    return tuple(
        connection.execute(f"select count(*) from read_parquet('{pattern}', hive_partitioning = {hive})").fetchone()[0]
        for hive in ("true", "false")
    )


def _assert_readers_see_only(output: Path, n_rows: int) -> None:
    """Readers globbing the output's top level get the live publication's rows, and only the years' links
    are there to match."""
    assert _reader_counts(output) == (n_rows, n_rows)
    names = sorted(p.name for p in output.iterdir())
    links = [name for name in names if name.startswith("survey_year=")]
    assert all((output / name).is_symlink() for name in links)
    assert [name for name in names if not name.startswith(".")] == links, names
    assert [name for name in names if "survey_year" in name] == links, names
    pattern = f"{output}/*/*.parquet"
    matched = duckdb.connect().execute(f"select file from glob('{pattern}')").fetchall()
    assert all(Path(file).parent.name.startswith("survey_year=") for (file,) in matched), matched


def test_publication_is_reached_through_the_year_link(tmp_path):
    folder = _publish(tmp_path, 4.0, "run-a")
    link = tmp_path / "survey_year=2024"
    assert link.is_symlink() and link.resolve() == folder.resolve()
    assert not os.path.isabs(os.readlink(link)), "a relative link keeps the output folder movable"
    manifest = json.loads((link / "_manifest.json").read_text())
    assert manifest["tables"] == {
        "attribute_scores": {"file": "attribute_scores.parquet", "rows": 1},
        "awards": {"file": "awards.parquet", "rows": 1},
    }
    assert _live_score(tmp_path) == 4.0


def test_republishing_switches_and_keeps_only_the_newest(tmp_path):
    first = _publish(tmp_path, 1.0, "run-a")
    second = _publish(tmp_path, 2.0, "run-b")
    third = _publish(tmp_path, 3.0, "run-c")
    assert _live_score(tmp_path) == 3.0
    kept = sorted(p.name for p in (tmp_path / ".publications" / "survey_year=2024").iterdir())
    assert kept == sorted([second.name, third.name])
    assert not first.exists()


def test_failure_while_writing_leaves_previous_publication_live(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")
    real = publishing._write_parquet
    calls = []

    def full_disk(table, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, path)

    monkeypatch.setattr(publishing, "_write_parquet", full_disk)
    with pytest.raises(PublishError, match="disk is full.*previous publication"):
        _publish(tmp_path, 2.0, "run-b")
    assert _live_score(tmp_path) == 1.0
    store = tmp_path / ".publications" / "survey_year=2024"
    assert [p.name.startswith(".tmp-") for p in store.iterdir()] == [False], "no half-written folder is left"


def test_failure_while_switching_leaves_previous_publication_live(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(publishing.os, "replace", read_only)
    with pytest.raises(PublishError, match="read-only"):
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    assert _live_score(tmp_path) == 1.0
    assert not list(tmp_path.glob(".tmp-*")), "the fresh link is never at the top level"
    assert not list((tmp_path / ".publications").glob(".tmp-*")), "the fresh link is removed when the switch fails"


def test_leftovers_of_an_interrupted_run_are_collected(tmp_path):
    store = tmp_path / ".publications" / "survey_year=2024"
    (store / ".tmp-20240101T000000Z-dead").mkdir(parents=True)
    os.symlink("nowhere", tmp_path / ".tmp-survey_year=2024-dead")  # where older versions made it
    os.symlink("nowhere", tmp_path / ".publications" / ".tmp-survey_year=2024-dead")
    _publish(tmp_path, 1.0, "run-a")
    assert [p.name.startswith(".tmp-") for p in store.iterdir()] == [False]
    assert not list(tmp_path.glob(".tmp-*"))
    assert not list((tmp_path / ".publications").glob(".tmp-*"))


def test_a_real_folder_in_place_of_the_link_is_not_overwritten(tmp_path):
    (tmp_path / "survey_year=2024").mkdir()
    (tmp_path / "survey_year=2024" / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError, match="is a folder"):
        _publish(tmp_path, 1.0, "run-a")
    assert (tmp_path / "survey_year=2024" / "mine.txt").read_text() == "keep me"


def test_quarantine_is_replaced_whole(tmp_path):
    first = pa.table({"source_row": [1, 2], "reasons": [["no_ratings"], ["unknown_cro"]]})
    second = pa.table({"source_row": [7], "reasons": [["malformed_row"]]})
    path = publishing.write_quarantine(first, tmp_path, 2024)
    publishing.write_quarantine(second, tmp_path, 2024)
    assert path == tmp_path / "survey_year=2024" / "rejected_evaluations.parquet"
    assert pq.read_table(path).to_pylist() == [{"source_row": 7, "reasons": ["malformed_row"]}]
    assert [p.name for p in path.parent.iterdir()] == ["rejected_evaluations.parquet"]


@pytest.mark.parametrize("inside", ["out/q", "out"])
def test_quarantine_inside_or_equal_to_output_is_refused(tmp_path, inside):
    with pytest.raises(PublishError, match="inside the output"):
        publishing.check_locations(tmp_path / "out", tmp_path / inside)


def test_quarantine_beside_output_is_fine(tmp_path):
    output, quarantine = publishing.check_locations(tmp_path / "out", tmp_path / "quarantine")
    assert output == (tmp_path / "out").resolve() and quarantine == (tmp_path / "quarantine").resolve()


def test_full_disk_while_writing_the_quarantine_keeps_the_previous_one(tmp_path, monkeypatch):
    first = pa.table({"source_row": [1], "reasons": [["no_ratings"]]})
    path = publishing.write_quarantine(first, tmp_path, 2024)

    def full_disk(table, target):
        target.write_bytes(b"PAR1 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publishing, "_write_parquet", full_disk)
    with pytest.raises(PublishError, match="disk is full"):
        publishing.write_quarantine(pa.table({"source_row": [2], "reasons": [["unknown_cro"]]}), tmp_path, 2024)
    assert pq.read_table(path).to_pylist() == [{"source_row": 1, "reasons": ["no_ratings"]}]
    assert [p.name for p in path.parent.iterdir()] == ["rejected_evaluations.parquet"]


def test_read_only_output_fails_clearly_and_keeps_the_previous_publication(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name.startswith(".tmp-"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(PublishError, match="read-only.*previous publication"):
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    assert _live_score(tmp_path) == 1.0


def test_ledger_records_every_published_export(tmp_path):
    manifest = {
        "run_id": "r1",
        "published_at": publishing.utc_now(),
        "survey_year": 2024,
        "export": {"file_name": "export_2024.csv", "sha256": "ab" * 32},
    }
    publishing.publish(_tables(1.0), manifest, tmp_path, 2024, "r1")
    assert publishing.published_exports(tmp_path) == {"ab" * 32}
    (tmp_path / ".publications" / publishing.LEDGER).open("a").write('{"torn')
    assert publishing.published_exports(tmp_path) == {"ab" * 32}


# --- readers globbing the output's top level (data contract section 4) ------------------------------


def test_killed_between_making_and_renaming_the_link_readers_get_the_live_rows_once(tmp_path, monkeypatch):
    """The attacker's recipe: killed at `link_created`, the fresh link used to stay at the top level, where
    `read_parquet('<output>/*/awards.parquet', hive_partitioning = true)` failed (hive partition mismatch)
    and the same without hive partitioning returned both publications."""
    publishing.publish(_awards(3), _manifest("run-a"), tmp_path, 2024, "run-a")
    _assert_readers_see_only(tmp_path, 3)
    monkeypatch.setattr(publishing, "checkpoint", _stop_at("link_created"))
    with pytest.raises(Killed):
        publishing.publish(_awards(5), _manifest("run-b"), tmp_path, 2024, "run-b")
    monkeypatch.undo()
    _assert_readers_see_only(tmp_path, 3)
    strays = list((tmp_path / ".publications").glob(".tmp-survey_year=2024-*"))
    assert len(strays) == 1 and strays[0].is_symlink(), "the killed run's fresh link is in .publications/"
    assert not strays[0].exists(), "there it dangles: nothing follows it"
    final = publishing.publish(_awards(7), _manifest("run-c"), tmp_path, 2024, "run-c")
    _assert_readers_see_only(tmp_path, 7)
    assert not list((tmp_path / ".publications").glob(".tmp-*")), "the next publish removes the stray link"
    assert (tmp_path / "survey_year=2024").resolve() == final.resolve()
    assert not os.path.isabs(os.readlink(tmp_path / "survey_year=2024"))


def test_the_first_publication_killed_before_its_link_is_renamed_leaves_readers_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(publishing, "checkpoint", _stop_at("link_created"))
    with pytest.raises(Killed):
        publishing.publish(_awards(5), _manifest("run-a"), tmp_path, 2024, "run-a")
    monkeypatch.undo()
    _assert_readers_see_only(tmp_path, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".publications"]


def test_readers_never_see_a_temporary_entry_during_a_publish(tmp_path, monkeypatch):
    """At every checkpoint of a publish the glob of the top level matches the live publication alone:
    the old one until the link is switched, the new one after."""
    seen: list[tuple[str, int]] = []

    def observe(name: str) -> None:
        rows = _reader_counts(tmp_path)[0]
        _assert_readers_see_only(tmp_path, rows)
        seen.append((name, rows))

    publishing.publish(_awards(3), _manifest("run-a"), tmp_path, 2024, "run-a")
    monkeypatch.setattr(publishing, "checkpoint", _stop_at("never", observe))
    publishing.publish(_awards(5), _manifest("run-b"), tmp_path, 2024, "run-b")
    assert seen == [
        ("publication_table_written", 3),
        ("publication_table_written", 3),
        ("publication_complete", 3),
        ("publication_renamed", 3),
        ("link_created", 3),
        ("link_switched", 5),
    ]


def test_another_years_fresh_link_is_left_alone(tmp_path):
    """Years publish side by side (one lock per year): a publish of 2024 never removes 2023's fresh link,
    which may be between its creation and its rename."""
    (tmp_path / ".publications").mkdir()
    in_flight = tmp_path / ".publications" / ".tmp-survey_year=2023-inflight"
    os.symlink(".publications/survey_year=2023/x", in_flight)
    _publish(tmp_path, 1.0, "run-a")
    assert in_flight.is_symlink()


def test_a_publication_that_never_went_live_is_collected_before_the_previous_live_one(tmp_path, monkeypatch):
    first = _publish(tmp_path, 1.0, "run-a")
    monkeypatch.setattr(publishing, "checkpoint", _stop_at("publication_renamed"))
    with pytest.raises(Killed):
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    third = _publish(tmp_path, 3.0, "run-c")
    kept = sorted(p.name for p in (tmp_path / ".publications" / "survey_year=2024").iterdir())
    assert kept == sorted([first.name, third.name]), "the live one and the one live before it are kept"


# --- retries and the ledger: every message true about what is live ----------------------------------


def _ledger_lines(output: Path) -> list[dict]:
    return [json.loads(line) for line in (output / ".publications" / publishing.LEDGER).read_text().splitlines()]


def test_ledger_failure_after_the_switch_says_the_new_publication_is_live_and_a_retry_records_it(tmp_path):
    """The attacker's recipe: the ledger made a directory (a full disk at that moment does the same). The
    new publication goes live, so the message must say so; the retries (the same call again) must not
    trip over their first attempt; once the ledger is writable a retry records the export exactly once."""
    publishing.publish(_awards(3), _manifest("run-a"), tmp_path, 2024, "run-a")
    ledger = tmp_path / ".publications" / publishing.LEDGER
    ledger.unlink()
    ledger.mkdir()
    manifest = _manifest("run-b")
    for _attempt in range(3):  # the first attempt and Prefect's two retries
        with pytest.raises(PublishError) as caught:
            publishing.publish(_awards(5), manifest, tmp_path, 2024, "run-b")
        message = str(caught.value)
        assert "IS live" in message and "ledger" in message and "may publish it again" in message, message
        assert "Nothing new was published" not in message and "not empty" not in message, message
        live = (tmp_path / "survey_year=2024").resolve()
        assert live.name.endswith("-run-b") and live.name in message, message
        _assert_readers_see_only(tmp_path, 5)
    assert PublishError.exit_code == 5
    ledger.rmdir()
    final = publishing.publish(_awards(5), manifest, tmp_path, 2024, "run-b")
    assert final.resolve() == live
    assert publishing.publish(_awards(5), manifest, tmp_path, 2024, "run-b") == final
    assert [entry["run_id"] for entry in _ledger_lines(tmp_path)] == ["run-b"], "recorded exactly once"
    assert publishing.published_exports(tmp_path) == {"run-b"}
    _assert_readers_see_only(tmp_path, 5)
    store = tmp_path / ".publications" / "survey_year=2024"
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp-")]


def test_full_disk_while_recording_the_ledger_says_the_new_publication_is_live(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")
    real_open = Path.open

    def full_disk(self, mode="r", *args, **kwargs):
        if self.name == publishing.LEDGER and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full_disk)
    with pytest.raises(PublishError, match=r"IS live.*Only recording it in the ledger.*disk is full") as caught:
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    assert "-run-b" in str(caught.value)
    assert _live_score(tmp_path) == 2.0
    assert publishing.published_exports(tmp_path) == {"run-a"}


def test_a_retry_after_a_failure_while_writing_publishes(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")
    manifest = _manifest("run-b")
    real = publishing._write_parquet
    calls = []

    def full_disk_once(table, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(table, path)

    monkeypatch.setattr(publishing, "_write_parquet", full_disk_once)
    with pytest.raises(PublishError, match="disk is full.*Nothing new was published.*run-a.*still live"):
        publishing.publish(_tables(2.0), manifest, tmp_path, 2024, "run-b")
    assert _live_score(tmp_path) == 1.0
    final = publishing.publish(_tables(2.0), manifest, tmp_path, 2024, "run-b")
    assert _live_score(tmp_path) == 2.0 and final.name.endswith("-run-b")
    assert [entry["run_id"] for entry in _ledger_lines(tmp_path)] == ["run-a", "run-b"]


def test_a_retry_meets_its_own_half_written_temporary_folder(tmp_path):
    """An attempt stopped half-way through writing (its cleanup failed too) left `.tmp-<name>` behind:
    the retry, which makes the same name, replaces it instead of failing."""
    manifest = _manifest("run-a")
    name = f"{manifest['published_at'].replace(':', '').replace('-', '')}-run-a"
    leftover = tmp_path / ".publications" / "survey_year=2024" / f".tmp-{name}"
    leftover.mkdir(parents=True)
    (leftover / "attribute_scores.parquet").write_bytes(b"PAR1 partial")
    final = publishing.publish(_tables(4.0), manifest, tmp_path, 2024, "run-a")
    assert final.name == name and _live_score(tmp_path) == 4.0
    assert not leftover.exists()


@pytest.mark.parametrize("point", ["publication_renamed", "link_created", "link_switched"])
def test_a_retry_after_the_first_attempt_stopped_midway_completes_it(tmp_path, monkeypatch, point):
    """Whatever the first attempt of a run finished (the rename, the link), the retry does what remains."""
    _publish(tmp_path, 1.0, "run-a")
    manifest = _manifest("run-b")
    monkeypatch.setattr(publishing, "checkpoint", _stop_at(point))
    with pytest.raises(Killed):
        publishing.publish(_tables(2.0), manifest, tmp_path, 2024, "run-b")
    monkeypatch.undo()
    final = publishing.publish(_tables(2.0), manifest, tmp_path, 2024, "run-b")
    assert (tmp_path / "survey_year=2024").resolve() == final.resolve() and _live_score(tmp_path) == 2.0
    assert [entry["run_id"] for entry in _ledger_lines(tmp_path)] == ["run-a", "run-b"]
    assert not list((tmp_path / ".publications").rglob(".tmp-*"))
    _assert_readers_see_only(tmp_path, 1)


def test_a_folder_of_the_same_name_holding_something_else_is_refused_untouched(tmp_path):
    _publish(tmp_path, 1.0, "run-a")
    manifest = _manifest("run-b")
    name = f"{manifest['published_at'].replace(':', '').replace('-', '')}-run-b"
    squatter = tmp_path / ".publications" / "survey_year=2024" / name
    squatter.mkdir()
    (squatter / "mine.txt").write_text("keep me")
    with pytest.raises(PublishError, match="already exists.*untouched.*Nothing new was published.*run-a.*still live"):
        publishing.publish(_tables(2.0), manifest, tmp_path, 2024, "run-b")
    assert (squatter / "mine.txt").read_text() == "keep me"
    assert _live_score(tmp_path) == 1.0


def test_failure_while_collecting_garbage_says_the_new_publication_is_live_and_recorded(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")

    def denied(*_args, **_kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(publishing, "_collect_garbage", denied)
    with pytest.raises(PublishError, match=r"recorded in the ledger.*IS live.*Only removing older.*permission denied"):
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    assert _live_score(tmp_path) == 2.0
    assert publishing.published_exports(tmp_path) == {"run-a", "run-b"}


def test_failure_to_sync_the_switched_link_says_the_new_publication_is_live(tmp_path, monkeypatch):
    _publish(tmp_path, 1.0, "run-a")
    real = publishing._fsync_dir

    def failing_on_the_output(path):
        if path == tmp_path:
            raise OSError(errno.EIO, "Input/output error")
        real(path)

    monkeypatch.setattr(publishing, "_fsync_dir", failing_on_the_output)
    with pytest.raises(PublishError, match=r"IS live.*Syncing the switched link.*not recorded in the ledger"):
        _publish(tmp_path, 2.0, "run-b")
    monkeypatch.undo()
    assert _live_score(tmp_path) == 2.0


def test_failure_before_anything_was_ever_published_says_nothing_is_live(tmp_path, monkeypatch):
    def full_disk(table, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(publishing, "_write_parquet", full_disk)
    with pytest.raises(PublishError, match="disk is full.*no publication of survey_year=2024 is live"):
        _publish(tmp_path, 1.0, "run-a")
    assert not (tmp_path / "survey_year=2024").is_symlink()
    assert _reader_counts(tmp_path) == (0, 0)


def test_a_torn_ledger_line_does_not_swallow_the_next_record(tmp_path):
    _publish(tmp_path, 1.0, "run-a")
    with (tmp_path / ".publications" / publishing.LEDGER).open("a") as stream:
        stream.write('{"sha256": "to')
    _publish(tmp_path, 2.0, "run-b")
    assert publishing.published_exports(tmp_path) == {"run-a", "run-b"}
