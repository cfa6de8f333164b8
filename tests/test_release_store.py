"""The release store under abuse: malformed lines of the release log, files where folders should be,
embargo times out of range. Every command that reads the log (`release`, a rollback, `publications`,
`diff`, a run's release) skips a malformed line with one warning naming the file and the line, and a
release whose link was switched says so whatever fails after the switch."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from cro_awards.engine.errors import PublishError
from cro_awards.publication import releases
from helpers_publications import NOW, YEAR, at, draft, released_score, store

MALFORMED = [
    '{"event": "released", "survey_year": 2024, "run_id": ["x"], "at": "2026-12-01T00:00:00Z"}',
    '{"run_id": ["x"]}',
    '{"event": "released", "run',
    "[1, 2]",
    '{"event": "released", "survey_year": "2024", "run_id": "run-a"}',
    '{"event": "embargoed", "survey_year": 2024, "run_id": "run-a", "embargo_until": "next tuesday"}',
    '{"event": "released", "survey_year": 2024, "run_id": "run-a", "previous_run_id": {"a": 1}}',
    '{"event": "launched", "survey_year": 2024, "run_id": "run-a"}',
]
"""Lines a hand edit, a torn write or another tool could leave in releases.jsonl; none is an entry."""


@pytest.fixture
def folders(tmp_path) -> dict[str, Path]:
    (tmp_path / "out").mkdir()
    return {"output": tmp_path / "out", "quarantine": tmp_path / "quarantine", "drafts": store(tmp_path / "out")}


def _arguments(folders: dict[str, Path]) -> list[str]:
    return [item for name, path in folders.items() for item in (f"--{name}", str(path))]


def _release(folders, run_id: str, **options) -> dict:
    return releases.release(
        folders["output"],
        folders["quarantine"],
        YEAR,
        run_id,
        store=folders["drafts"],
        released_by="tester",
        keep=10,
        now=options.get("now", NOW),
    )


def _append(folders, line: str) -> None:
    with releases.log_path(folders["drafts"]).open("a") as stream:
        stream.write(line + "\n")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == releases.__name__]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(releases, "_WARNED", set())


@pytest.mark.parametrize("line", MALFORMED)
def test_a_malformed_log_line_is_skipped_by_the_release_with_one_warning_naming_it(folders, caplog, line):
    draft(folders["output"], "run-a", score=1.0, published_at=at(2))
    draft(folders["output"], "run-b", score=2.0, published_at=at(1))
    _release(folders, "run-a")
    _append(folders, line)
    caplog.set_level(logging.WARNING)
    done = _release(folders, "run-b")
    assert released_score(folders["output"]) == 2.0 and done["previous_run_id"] == "run-a"
    warned = _warnings(caplog)
    assert len(warned) == 1, warned
    assert f"line 2 of the release log {releases.log_path(folders['drafts'])}" in warned[0]
    entries = [(e["event"], e["run_id"]) for e in releases.release_log(folders["drafts"], YEAR)]
    assert entries == [("released", "run-a"), ("released", "run-b")]
    assert len(_warnings(caplog)) == 1, "warned once per process, however often the log is read"


@pytest.mark.parametrize("command", ["release", "rollback", "publications", "publications --json"])
def test_every_command_skips_a_malformed_line_with_a_warning_and_no_traceback(folders, caplog, capsys, command):
    draft(folders["output"], "run-a", score=1.0, published_at=at(2))
    draft(folders["output"], "run-b", score=2.0, published_at=at(1))
    draft(folders["output"], "run-c", score=3.0, published_at=at(0.5))
    _release(folders, "run-a")
    _release(folders, "run-b")
    for line in MALFORMED[:3]:
        _append(folders, line)
    caplog.set_level(logging.WARNING)
    argv = {
        "release": ["release", str(YEAR), "run-c"],
        "rollback": ["release", str(YEAR), "run-a"],
        "publications": ["publications", str(YEAR)],
        "publications --json": ["publications", str(YEAR), "--json"],
    }[command]
    code = main([*argv, *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Traceback" not in printed.err
    if command in ("release", "rollback"):
        assert "now see it" in printed.out
        assert released_score(folders["output"]) == (3.0 if command == "release" else 1.0)
    if command == "publications --json":
        listed = {item["run_id"]: item["status"] for item in json.loads(printed.out)}
        assert listed == {"run-c": "draft", "run-b": "released", "run-a": "previous release"}
    warned = _warnings(caplog)
    assert [int(w.split("skipped line ")[1].split()[0]) for w in warned] == [3, 4, 5], warned


def test_a_runs_keep_policy_reads_the_log_past_malformed_lines(folders, caplog):
    """What a run does after writing its draft (tasks.awards: collect_garbage): the current and previous
    release and a pending embargo stay protected; the malformed lines are skipped with a warning."""
    for number, days in enumerate((100, 90, 80, 70), start=1):
        draft(folders["output"], f"run-{number}", score=float(number), published_at=at(days))
    _release(folders, "run-1")
    _release(folders, "run-2")
    releases.record_embargo(folders["drafts"], YEAR, "run-3", NOW + releases.dt.timedelta(days=1), by="x", now=NOW)
    for line in MALFORMED:
        _append(folders, line)
    caplog.set_level(logging.WARNING)
    removed = releases.collect_garbage(folders["output"], folders["quarantine"], folders["drafts"], YEAR, 0, NOW)
    assert [path.name.rsplit("-", 2)[-2:] for path in removed if "run-" in path.name] == [["run", "4"]]
    assert len(_warnings(caplog)) == len(MALFORMED)


def test_the_command_line_prints_the_warning_once_on_stderr(folders):
    """In a real process (no pytest logging): the warning reaches the terminal, once, and the release says
    readers see it."""
    draft(folders["output"], "run-a", score=1.0, published_at=at(2))
    draft(folders["output"], "run-b", score=2.0, published_at=at(1))
    _release(folders, "run-a")
    _append(folders, MALFORMED[0])
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "release", str(YEAR), "run-b", *_arguments(folders)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert done.returncode == 0, done.stderr
    assert "Readers of" in done.stdout and "now see it" in done.stdout
    assert "Traceback" not in done.stderr
    assert done.stderr.count("skipped line 2 of the release log") == 1, done.stderr


def test_anything_failing_after_the_switch_still_says_readers_now_see_the_release(folders, monkeypatch):
    draft(folders["output"], "run-a", score=1.0, published_at=at(2))
    draft(folders["output"], "run-b", score=2.0, published_at=at(1))
    _release(folders, "run-a")

    def broken(*_args, **_kwargs):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(releases, "collect_garbage", broken)
    with pytest.raises(PublishError) as raised:
        _release(folders, "run-b")
    message = str(raised.value)
    assert "IS released: readers of" in message and "now see it" in message
    assert "only collecting old drafts failed (unhashable type: 'list')" in message
    assert released_score(folders["output"]) == 2.0


def test_an_error_before_the_switch_that_is_not_the_folders_is_raised_as_it_is(folders, monkeypatch):
    draft(folders["output"], "run-a", score=1.0, published_at=at(2))

    def broken(*_args, **_kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(releases, "write_release_copy", broken)
    with pytest.raises(TypeError, match="a bug"):
        _release(folders, "run-a")
    assert not (folders["output"] / f"survey_year={YEAR}").is_symlink()


# --- a file where a folder should be --------------------------------------------------------------------

BLOCKED = {
    "the output folder": "out",
    "a folder above the output": "srv",
    "the old layout's .publications": "out/.publications",
    "the releases' .releases": "out/.releases",
    "the year's release folder": f"out/.releases/survey_year={YEAR}",
    "the locks' .locks": "out/.locks",
    "the drafts folder": "drafts",
    "the drafts' year folder": f"drafts/survey_year={YEAR}",
}
"""Which path (under tmp_path) is a file; the output is tmp_path/out (tmp_path/srv/out for "srv")."""


def _block(tmp_path: Path, where: str) -> tuple[dict[str, Path], Path]:
    output = tmp_path / ("srv/out" if where == "srv" else "out")
    folders = {"output": output, "quarantine": tmp_path / "quarantine", "drafts": tmp_path / "drafts"}
    if not where.startswith("drafts"):
        draft(tmp_path / "out", "run-a", published_at=at(1))  # its store: tmp_path/drafts
    blocking = tmp_path / where
    if blocking.is_dir():
        shutil.rmtree(blocking)
    blocking.parent.mkdir(parents=True, exist_ok=True)
    blocking.write_text("a file, not a folder")
    return folders, blocking


@pytest.mark.parametrize("where", list(BLOCKED.values()), ids=list(BLOCKED))
@pytest.mark.parametrize("command", ["release", "publications", "diff"])
def test_a_file_where_a_folder_should_be_is_exit_5_in_one_paragraph_naming_it(tmp_path, capsys, where, command):
    folders, blocking = _block(tmp_path, where)
    argv = {
        "release": ["release", str(YEAR), "run-a"],
        "publications": ["publications", str(YEAR), "--json"],
        "diff": ["diff", str(YEAR), "run-a"],
    }[command]
    if command != "release" and where.startswith("out/.releases/"):
        pytest.skip("only a release writes the year's release folder")
    code = main([*argv, *_arguments(folders)])
    printed = capsys.readouterr()
    lines = [line for line in printed.err.splitlines() if line.strip()]
    assert code == 5 == PublishError.exit_code, printed.err + printed.out
    assert len(lines) == 1 and lines[0].startswith("cro-awards: "), printed.err
    assert f"{blocking} is a file, not a folder" in lines[0] and "run again" in lines[0]
    assert "Traceback" not in printed.err + printed.out
    assert blocking.read_text() == "a file, not a folder", "left untouched"


def test_a_not_a_directory_error_met_past_the_checks_is_exit_5_naming_the_path(folders, capsys, monkeypatch):
    def raced(*_args, **_kwargs):  # e.g. a file put in place of a folder between the check and the read
        raise NotADirectoryError(20, "Not a directory", "/srv/out/.releases/survey_year=2024/run-a")

    monkeypatch.setattr(releases, "publications", raced)
    code = main(["publications", str(YEAR), *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 5 and "Traceback" not in printed.err
    assert printed.err.count("\n") == 1 and "cannot use /srv/out/.releases/survey_year=2024/run-a" in printed.err


# --- embargo times out of range -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("9999-12-31T23:59:59-05:00", "is not an embargo time this pipeline can schedule"),
        ("0001-01-01T00:00:00+01:00", "is not an embargo time this pipeline can schedule"),
        ("2026-11-30T12:00:00Z", "has passed"),
        ("2027-12-03T12:00:00Z", "too far ahead"),
        ("2026-12-32T09:00:00Z", "is not an embargo time"),
    ],
)
def test_an_embargo_time_out_of_range_is_refused_saying_the_accepted_range(text, says):
    with pytest.raises(releases.EmbargoTimeError) as raised:
        releases.embargo_time(text, now=NOW)
    message = str(raised.value)
    assert raised.value.exit_code == 2 and says in message
    assert "from now (2026-12-01T12:00:00.000000Z) to 366 days ahead (2027-12-02T12:00:00.000000Z)" in message


def test_an_embargo_time_in_range_is_taken_as_given():
    assert releases.embargo_time("2027-12-02T13:00:00+01:00", now=NOW) == releases.parse_time("2027-12-02T12:00:00Z")
    assert releases.embargo_time("2026-12-01T12:00:01", now=NOW) == NOW + releases.dt.timedelta(seconds=1)


def test_parse_time_refuses_a_time_out_of_utcs_range_instead_of_overflowing():
    with pytest.raises(releases.ReleaseError, match="out of the range of times"):
        releases.parse_time("9999-12-31T23:59:59-05:00")


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "2001-01-01T00:00:00Z", "tomorrow"])
def test_the_command_line_refuses_an_embargo_out_of_range_with_exit_2_before_anything(folders, capsys, text):
    draft(folders["output"], "run-a", published_at=at(1))
    code = main(["release", str(YEAR), "run-a", "--embargo-until", text, *_arguments(folders)])
    printed = capsys.readouterr()
    assert code == 2, printed.err
    assert "Traceback" not in printed.err and "366 days ahead" in printed.err
    assert not releases.log_path(folders["drafts"]).exists(), "nothing recorded"
    assert not (folders["output"] / f"survey_year={YEAR}").is_symlink(), "nothing released"
