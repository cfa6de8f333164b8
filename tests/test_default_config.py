"""After `new-year`, the default configuration stays the latest survey year; with no `--export` (and no
`--config`), `run` and `check` stop at once, before any server, saying exactly what to pass (issue 22)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli.main import main
from cro_awards.onboarding import new_year
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def surveys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "surveys"
    folder.mkdir()
    for year in (2024, 2025):
        shutil.copy(PROJECT_ROOT / "surveys" / f"{year}.yaml", folder / f"{year}.yaml")
    new_year(folder, 2026, 2025)
    monkeypatch.setenv("CRO_AWARDS_SURVEYS", str(folder))
    return folder


@pytest.mark.parametrize("command", ["check", "run"])
def test_no_export_for_the_new_year_says_what_to_pass(surveys, command, capsys, monkeypatch):
    monkeypatch.setattr("cli.main.prepare_environment", lambda: pytest.fail("got past the configuration"))
    assert main([command]) == 3
    message = capsys.readouterr().err
    assert f"{surveys / '2026.yaml'}, the default configuration (the latest survey year, 2026)" in message
    assert "names no sample_export and no --export was given: to run 2026, pass --export with its export" in message
    assert f"or, to run 2025 on its bundled sample, --config {surveys / '2025.yaml'}." in message
    assert message.count("cro-awards:") == 1


def test_the_latest_year_with_a_sample_is_named_even_when_the_last_before_has_none(surveys, capsys):
    (surveys / "2026.yaml").unlink()
    new_year(surveys, 2026, 2025)
    text = (surveys / "2025.yaml").read_text(encoding="utf-8")
    (surveys / "2025.yaml").write_text(text.replace("sample_export:", "# sample_export:"), encoding="utf-8")
    assert main(["check"]) == 3
    assert f"--config {surveys / '2024.yaml'}." in capsys.readouterr().err


def test_the_default_year_with_an_export_given_is_checked(surveys, capsys):
    sample = PROJECT_ROOT / "data" / "sample" / "export_2025.csv"
    main(["check", "--export", str(sample)])
    assert "against 2026.yaml (survey year 2026)" in capsys.readouterr().out
