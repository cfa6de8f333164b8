"""Run ids given by their first characters, as git takes an abbreviated commit (issue 22): a whole run id
or a prefix of at least 4 characters that starts exactly one draft's run id names that draft, for
`release` (a rollback too), `diff` and its `--against`; a shorter, ambiguous or unknown prefix is refused
with exit 10 (the code of an unknown run id), saying why and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from cro_awards.publication import releases
from cro_awards.publication.releases import ReleaseError, resolve_run_id
from helpers_publications import NOW, YEAR, at, draft, released_score, store

A = "e17633bf-0c1d-4a7e-9b55-3f2d8c4e1a01"
B = "e176f00d-77aa-4c3b-8d21-5b6e7f809a12"
C = "5a9b2c3d-1111-4222-8333-944455566677"


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    (tmp_path / "out").mkdir()
    output = tmp_path / "out"
    draft(output, A, score=1.0, published_at=at(3))
    draft(output, B, score=2.0, published_at=at(2))
    draft(output, C, score=3.0, published_at=at(1))
    return {"output": output, "quarantine": tmp_path / "quarantine", "drafts": store(output)}


def _arguments(folders: dict[str, Path]) -> list[str]:
    return [item for name, path in folders.items() for item in (f"--{name}", str(path))]


def test_a_whole_run_id_resolves_to_itself(folders):
    for run_id in (A, B, C):
        assert resolve_run_id(folders["drafts"], YEAR, run_id) == run_id


@pytest.mark.parametrize(("given", "expected"), [("5a9b", C), ("e1763", A), ("E176F", B), (" 5a9b2c3d-1 ", C)])
def test_a_unique_prefix_resolves_to_its_draft(folders, given, expected):
    assert resolve_run_id(folders["drafts"], YEAR, given) == expected


def test_an_exact_run_id_wins_over_a_longer_one_it_starts(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    draft(output, "run-a", published_at=at(2))
    draft(output, "run-ab", published_at=at(1))
    assert resolve_run_id(store(output), YEAR, "run-a") == "run-a"
    assert resolve_run_id(store(output), YEAR, "run-ab") == "run-ab"


@pytest.mark.parametrize("given", ["", "5", "5a9"])
def test_a_prefix_shorter_than_4_characters_is_refused_saying_so(folders, given):
    with pytest.raises(ReleaseError, match=r"give a whole run id, or at least 4 of its first characters") as caught:
        resolve_run_id(folders["drafts"], YEAR, given)
    assert caught.value.exit_code == 10
    assert f"cro-awards publications {YEAR}" in str(caught.value)


def test_an_ambiguous_prefix_lists_the_candidates_with_when_made_and_status(folders):
    releases.release(
        folders["output"], folders["quarantine"], YEAR, A, store=folders["drafts"], released_by="t", keep=10, now=NOW
    )
    with pytest.raises(ReleaseError) as caught:
        resolve_run_id(folders["drafts"], YEAR, "e176", output=folders["output"])
    message = str(caught.value)
    assert caught.value.exit_code == 10
    assert "the run id prefix 'e176' is ambiguous in survey year 2024: the run ids of 2 drafts start with it" in message
    assert f"{B} (made {at(2)}, draft); {A} (made {at(3)}, released)" in message
    assert C not in message
    assert "Give more of its characters" in message


def test_without_the_output_folder_the_status_comes_from_the_release_log(folders):
    releases.release(
        folders["output"], folders["quarantine"], YEAR, A, store=folders["drafts"], released_by="t", keep=10, now=NOW
    )
    with pytest.raises(ReleaseError, match=rf"{A} \(made {at(3)}, released before\)"):
        resolve_run_id(folders["drafts"], YEAR, "e176")


def test_an_unknown_prefix_says_so_and_names_publications(folders):
    with pytest.raises(ReleaseError) as caught:
        resolve_run_id(folders["drafts"], YEAR, "beef")
    message = str(caught.value)
    assert caught.value.exit_code == 10
    assert "no draft of survey year 2024 has the run id 'beef' or one starting with it" in message
    assert f"its drafts: {C}, {B}, {A}" in message
    assert f"`cro-awards publications {YEAR} --drafts {folders['drafts']}`" in message


def test_another_years_drafts_are_not_matched(folders):
    with pytest.raises(ReleaseError, match="its drafts: none"):
        resolve_run_id(folders["drafts"], YEAR + 1, "5a9b")


def test_release_rollback_and_diff_take_a_prefix(folders, capsys, monkeypatch):
    # the tiny drafts have no composites to compare: diff reports which drafts it was given
    monkeypatch.setattr("cro_awards.publication.diff.load", lambda folder: folder.name.split("-", 1)[1])
    monkeypatch.setattr("cro_awards.publication.diff.compare", lambda draft, against: f"{draft} against {against}")
    monkeypatch.setattr("cro_awards.publication.diff.render_text", str)
    assert main(["release", str(YEAR), "e1763", "--by", "t", *_arguments(folders)]) == 0
    assert f"run {A}" in capsys.readouterr().out
    assert main(["release", str(YEAR), "5A9B", "--by", "t", *_arguments(folders)]) == 0
    assert released_score(folders["output"]) == 3.0
    assert main(["release", str(YEAR), "e1763", "--by", "t", *_arguments(folders)]) == 0  # a rollback
    assert released_score(folders["output"]) == 1.0
    capsys.readouterr()
    assert main(["diff", str(YEAR), "e176f", "--against", "5a9b", *_arguments(folders)]) == 0
    assert capsys.readouterr().out == f"{B} against {C}\n"
    assert main(["diff", str(YEAR), "e176", *_arguments(folders)]) == 10
    error = capsys.readouterr().err
    assert error.count("cro-awards:") == 1 and "ambiguous" in error and A in error and B in error


def test_a_refused_prefix_releases_nothing(folders, capsys):
    assert main(["release", str(YEAR), "e1763", *_arguments(folders)]) == 0
    for given in ("e176", "beef", "e17"):
        assert main(["release", str(YEAR), given, *_arguments(folders)]) == 10
        assert released_score(folders["output"]) == 1.0
    assert [e["run_id"] for e in releases.release_log(folders["drafts"], YEAR)] == [A]


def test_the_command_line_releases_by_prefix_end_to_end(folders):
    """In a real process: `cro-awards release <year> <prefix>` releases the draft it names, and says which."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "release", str(YEAR), "5a9b2", "--by", "tester", *_arguments(folders)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    assert f"Released survey year {YEAR}: run {C}, by tester" in done.stdout
    assert released_score(folders["output"]) == 3.0
