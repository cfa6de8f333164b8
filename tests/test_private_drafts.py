"""Private drafts: nothing of an unreleased draft (files, name, embargo, quarantine) is readable under the
output folder; the store and the quarantine are owner-only; the differencing guard at release (refused:
exit 9; accepted with a reason, logged; rollback not checked); the move from the old layout."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from cli.main import main
from cro_awards.engine.errors import DisclosureError
from cro_awards.publication import publish as publishing, releases
from helpers_publications import NOW, YEAR, assert_readers_see_only, at, draft, quarantine_rows, store
from test_guard import BASE, contributions

DAY = releases.dt.timedelta(days=1)


@pytest.fixture
def output(tmp_path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


def _folders(output: Path) -> list[str]:
    return ["--output", str(output), "--quarantine", str(output.parent / "quarantine"), "--drafts", str(store(output))]


def _release(output: Path, run_id: str, **options) -> dict:
    return releases.release(
        output,
        output.parent / "quarantine",
        YEAR,
        run_id,
        store=store(output),
        released_by="tester",
        now=NOW,
        **options,
    )


def _modes(root: Path) -> dict[str, int]:
    modes = {}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                modes[str(path.relative_to(root))] = stat.S_IMODE(path.stat().st_mode)
    return modes


def _everything_under(output: Path) -> bytes:
    """Every name and every byte readable under the output folder (links followed), as one blob."""
    blob = []
    for path in output.rglob("*"):
        blob.append(str(path.relative_to(output)).encode())
        if path.is_file():
            blob.append(path.read_bytes())
    return b"\n".join(blob)


# --- privacy ------------------------------------------------------------------------------------------


def test_the_store_and_the_quarantine_are_owner_only_whatever_the_umask(output):
    previous = os.umask(0o000)  # the most permissive: modes must be set, not inherited
    try:
        publishing.write_quarantine(quarantine_rows([1]), output.parent / "quarantine", YEAR, "run-a")
        draft(output, "run-a", published_at=at(2), contributions=contributions(BASE))
        _release(output, "run-a")
        draft(output, "run-b", published_at=at(1), contributions=contributions(BASE))
    finally:
        os.umask(previous)
    for root in (store(output), output.parent / "quarantine"):
        modes = _modes(root)
        assert modes, root
        assert stat.S_IMODE(root.stat().st_mode) == 0o700, root
        for name, mode in modes.items():
            expected = 0o700 if (root / name).is_dir() else 0o600
            assert mode == expected, f"{root / name}: {oct(mode)}"
    names = set(_modes(store(output)))
    assert {"releases.jsonl", "published_exports.jsonl"} <= names
    assert any(name.endswith("contributions.parquet") for name in names)
    assert any(name.endswith("cell_digests.parquet") for name in names)
    for name, mode in _modes(output).items():  # the release, for its readers
        assert mode == (0o755 if (output / name).is_dir() else 0o644), name


def test_a_glob_of_everything_under_the_output_finds_releases_only(output):
    draft(output, "run-a", n_awards=3, published_at=at(2), contributions=contributions(BASE))
    _release(output, "run-a")
    draft(output, "run-b", n_awards=5, published_at=at(1), contributions=contributions(BASE))
    files = duckdb.connect().execute(f"select file from glob('{output}/**/awards.parquet')").fetchall()
    assert files, "the release is found"
    assert {pq.read_metadata(file).num_rows for (file,) in files} == {3}, files
    assert sorted(p.name for p in output.rglob("*") if p.is_dir() and not p.is_symlink()) == [
        ".releases",
        "run-a",
        f"survey_year={YEAR}",
    ]
    everything = _everything_under(output)
    assert b"run-b" not in everything and b"draft_report" not in everything and b"DRAFT" not in everything
    assert b"contributions" not in everything and b"cell_digests" not in everything
    assert_readers_see_only(output, 3)


def test_an_embargo_leaves_no_trace_under_the_output(output):
    draft(output, "run-a", published_at=at(2))
    _release(output, "run-a")
    draft(output, "run-b", published_at=at(1))
    releases.record_embargo(store(output), YEAR, "run-b", NOW + 5 * DAY, by="editor", now=NOW)
    everything = _everything_under(output)
    assert b"embargo" not in everything and b"run-b" not in everything
    assert releases.iso(NOW + 5 * DAY).encode() not in everything and b"2026-12-06" not in everything
    listed = releases.publications(output, store(output), YEAR, now=NOW)
    assert listed[0].status.startswith("embargoed until 2026-12-06"), "the store knows it"


def test_the_store_inside_the_output_is_refused(output):
    with pytest.raises(publishing.PublishError, match="drafts are private"):
        releases.prepare(output, output.parent / "quarantine", output / "drafts")


# --- the differencing guard at release ---------------------------------------------------------------


def test_a_draft_differing_by_one_respondent_is_refused_accepted_with_a_reason_and_rollback_is_free(output, capsys):
    draft(output, "run-a", score=1.0, published_at=at(3), contributions=contributions(BASE))
    _release(output, "run-a")
    one_less = [row for row in BASE if row[0] != "R2"]
    draft(output, "run-b", score=2.0, published_at=at(2), contributions=contributions(one_less))
    with pytest.raises(DisclosureError) as refused:
        _release(output, "run-b")
    assert refused.value.exit_code == 9 and "4 published rows" in str(refused.value)
    assert "R2" not in str(refused.value) and "speed" not in str(refused.value)
    code = main(["release", str(YEAR), "run-b", *_folders(output)])
    printed = capsys.readouterr()
    assert code == 9, printed.err
    assert "differencing guard" in printed.err and "--accept-difference" in printed.err
    assert [e["run_id"] for e in releases.release_log(store(output), YEAR)] == ["run-a"], "nothing released"
    assert releases.current_release(output, YEAR).name == "run-a"

    code = main(["release", str(YEAR), "run-b", "--accept-difference", "R2 withdrew consent", *_folders(output)])
    assert code == 0, capsys.readouterr().err
    entry = releases.release_log(store(output), YEAR)[-1]
    assert (entry["run_id"], entry["accepted_difference"]) == ("run-b", "R2 withdrew consent")
    assert entry["difference"][0]["earlier_run_id"] == "run-a"

    done = _release(output, "run-a")  # a rollback: released before, never checked
    assert (done["checked"], done["difference"]) == ([], []) and releases.current_release(output, YEAR).name == "run-a"


def test_a_rerun_on_the_same_export_passes_and_is_compared(output):
    draft(output, "run-a", published_at=at(2), contributions=contributions(BASE))
    _release(output, "run-a")
    draft(output, "run-b", published_at=at(1), contributions=contributions(BASE))
    done = _release(output, "run-b")
    assert (done["checked"], done["unchecked"], done["difference"]) == (["run-a"], [], [])


def test_the_guard_compares_with_every_earlier_release_even_once_its_draft_is_gone(output):
    draft(output, "run-a", published_at=at(100), contributions=contributions(BASE))
    _release(output, "run-a")
    draft(
        output,
        "run-b",
        published_at=at(90),
        contributions=contributions([*BASE, ("R9", "zeta", "big_pharma", ["speed"])]),
    )
    _release(output, "run-b")
    draft(output, "run-c", published_at=at(80), contributions=contributions(BASE))
    _release(output, "run-c")
    releases.collect_garbage(output, output.parent / "quarantine", store(output), YEAR, 0, now=NOW)
    assert publishing.find_draft(store(output), YEAR, "run-a") is None, "the keep policy deleted it"
    one_less = [row for row in BASE if row[0] != "R2"]
    draft(output, "run-d", published_at=at(1), contributions=contributions(one_less))
    with pytest.raises(DisclosureError, match="against run run-a"):
        _release(output, "run-d")


# --- the move from the old layout -------------------------------------------------------------------------


def _old_layout(output: Path) -> dict[str, Path]:
    """An output folder as versions before the private store left it: drafts, the ledger and the release log
    in `.publications/`, the year's link into it, a lock holder naming a run."""
    old = output / ".publications"
    folders = {}
    for run_id, published_at, rows in (("run-a", at(3), 3), ("run-b", at(2), 5)):
        folder = draft(output.parent / "scratch", run_id, n_awards=rows, published_at=published_at)
        target = old / f"survey_year={YEAR}" / folder.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(folder, target)
        for path in [target, *target.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        folders[run_id] = target
    (old / f"survey_year={YEAR}" / ".tmp-20261130T000000.000000Z-killed").mkdir()
    ledger = [{"sha256": f"sha-{r}", "file_name": "export.csv", "survey_year": YEAR, "run_id": r} for r in folders]
    (old / "published_exports.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ledger))
    log = [
        {
            "event": "released",
            "survey_year": YEAR,
            "run_id": "run-a",
            "at": at(3),
            "by": "ann",
            "previous_run_id": None,
        },
        {
            "event": "embargoed",
            "survey_year": YEAR,
            "run_id": "run-b",
            "at": at(1),
            "by": "ann",
            "embargo_until": "2099-01-01T00:00:00.000000Z",
            "flow_run_id": "f",
        },
    ]
    (old / "releases.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    (output / f"survey_year={YEAR}").symlink_to(Path(".publications") / f"survey_year={YEAR}" / folders["run-a"].name)
    (output / ".locks").mkdir()
    (output / ".locks" / f"survey_year={YEAR}.holder.json").write_text(json.dumps({"run_id": "run-b"}))
    return folders


def test_an_old_layout_is_moved_to_the_store_once_losing_nothing(output, capsys):
    _old_layout(output)
    assert_readers_see_only(output, 3)
    code = main(["publications", str(YEAR), "--json", *_folders(output)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "moved the drafts and logs" in printed.err
    listed = {p["run_id"]: p for p in json.loads(printed.out)}
    assert listed["run-a"]["status"] == "released" and listed["run-a"]["released_by"] == "ann"
    assert listed["run-b"]["status"].startswith("embargoed until")  # as long as the embargo is in the future
    assert not (output / ".publications").exists()
    assert_readers_see_only(output, 3)
    assert releases.current_release(output, YEAR) == publishing.releases_folder(output, YEAR) / "run-a"
    assert publishing.published_exports(store(output)) == {"sha-run-a", "sha-run-b"}
    assert [e["event"] for e in releases.release_log(store(output), YEAR)] == ["released", "embargoed"]
    assert {m.run_id for _, m in publishing.drafts(store(output), YEAR)} == {"run-a", "run-b"}
    everything = _everything_under(output)
    assert b"run-b" not in everything and b"embargo" not in everything
    for name, mode in _modes(store(output)).items():
        assert mode == (0o700 if (store(output) / name).is_dir() else 0o600), name
    assert main(["publications", str(YEAR), "--json", *_folders(output)]) == 0
    assert "moved" not in capsys.readouterr().err, "once"
    assert [e["event"] for e in releases.release_log(store(output), YEAR)] == ["released", "embargoed"]
    assert main(["release", str(YEAR), "run-b", "--now", *_folders(output)]) == 0, capsys.readouterr().err  # embargoed
    assert_readers_see_only(output, 5)


def test_a_move_stopped_half_way_is_completed_by_the_next(output, monkeypatch):
    folders = _old_layout(output)
    real = publishing.make_private
    calls = []

    def stop_after_the_first(path):
        real(path)
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(releases, "make_private", stop_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        releases.prepare(output, output.parent / "quarantine", store(output))
    monkeypatch.undo()
    assert_readers_see_only(output, 3)
    releases.prepare(output, output.parent / "quarantine", store(output))
    assert not (output / ".publications").exists()
    assert {m.run_id for _, m in publishing.drafts(store(output), YEAR)} == set(folders)
    assert len(releases.release_log(store(output), YEAR)) == 2, "each line once"
    assert_readers_see_only(output, 3)
