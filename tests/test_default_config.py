"""After `new-year`, the default configuration stays the latest survey year; with no `--export` (and no
`--config`), `run` and `check` stop at once, before any server, saying exactly what to pass (issue 22).
`make run` names the bundled sample's YAML, so it runs the sample still."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from cli import main as cli_main
from cli.main import main
from cro_awards.reading.config import load_yaml
from cro_awards.reading.new_year import new_year
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


def _make_run() -> list[str]:
    """The arguments `make run` gives `cro-awards`, read from the Makefile (its variables substituted)."""
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    variables = dict(re.findall(r"^([A-Z_]+) :?= *(.*?) *$", makefile, flags=re.MULTILINE))
    recipe = re.search(r"^run:.*\n\t(.*)$", makefile, flags=re.MULTILINE).group(1)
    command = recipe
    while "$(" in command:
        command = re.sub(r"\$\((\w+)\)", lambda m: variables[m.group(1)], command)
    program, *arguments = shlex.split(command)
    assert program == ".venv/bin/cro-awards"
    return arguments


def test_make_run_names_the_latest_bundled_year_with_a_sample():
    """Kept in step: when a later year gets a bundled sample, the Makefile's SAMPLE_CONFIG moves to it."""
    arguments = _make_run()
    assert arguments[0] == "run" and "--release" in arguments
    config = Path(arguments[arguments.index("--config") + 1])
    sampled = [
        path
        for path in sorted((PROJECT_ROOT / "surveys").glob("*.yaml"))
        if load_yaml(path.read_bytes(), path).get("sample_export")
    ]
    assert config == sampled[-1].relative_to(PROJECT_ROOT)
    assert "--export" not in arguments


def test_make_run_still_runs_the_bundled_sample_after_new_year(surveys, tmp_path, monkeypatch):
    """After `new-year 2026` (the default now a year without a sample), `make run`'s command gets past the
    configuration and the pre-flight checks with the bundled sample, up to starting Prefect."""
    for name in ("OUTPUT", "QUARANTINE", "DRAFTS"):
        monkeypatch.setenv(f"CRO_AWARDS_{name}", str(tmp_path / name.lower()))
    monkeypatch.chdir(PROJECT_ROOT)  # where make runs it
    seen = []
    preflight = cli_main._preflight

    def checked(arguments, loaded):
        seen.append((loaded.survey.survey_year, loaded.export_path(arguments.export)))
        return preflight(arguments, loaded)

    class Reached(Exception):
        pass

    monkeypatch.setattr(cli_main, "_preflight", checked)
    monkeypatch.setattr(cli_main, "prepare_environment", lambda: (_ for _ in ()).throw(Reached()))
    with pytest.raises(Reached):
        main(_make_run())
    assert seen == [(2025, PROJECT_ROOT / "data" / "sample" / "export_2025.csv")]
    assert not any((tmp_path / name).exists() for name in ("output", "quarantine", "drafts"))
