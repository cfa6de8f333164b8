"""Publishing: all or nothing per survey year, through an atomically switched link."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

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


def _publish(output: Path, score: float, run_id: str, keep: int = 2) -> Path:
    manifest = {
        "run_id": run_id,
        "published_at": publishing.utc_now(),
        "survey_year": 2024,
        "export": {"file_name": "export.csv", "sha256": run_id},
    }
    return publishing.publish(_tables(score), manifest, output, 2024, run_id, keep)


def _live_score(output: Path) -> float:
    return pq.read_table(output / "survey_year=2024" / "attribute_scores.parquet")["score"][0].as_py()


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
    assert not list(tmp_path.glob(".tmp-*")), "the fresh link is removed when the switch fails"


def test_leftovers_of_an_interrupted_run_are_collected(tmp_path):
    store = tmp_path / ".publications" / "survey_year=2024"
    (store / ".tmp-20240101T000000Z-dead").mkdir(parents=True)
    os.symlink("nowhere", tmp_path / ".tmp-survey_year=2024-dead")
    _publish(tmp_path, 1.0, "run-a")
    assert [p.name.startswith(".tmp-") for p in store.iterdir()] == [False]
    assert not list(tmp_path.glob(".tmp-*"))


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
