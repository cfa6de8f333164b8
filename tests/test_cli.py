"""The command line's dry run and onboarding commands (no Prefect involved)."""

import shutil

from cli.main import main
from tests.conftest import PROJECT_ROOT, SAMPLE_CONFIG


def test_check_passes_on_the_sample_and_publishes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--config", str(SAMPLE_CONFIG)]) == 0
    printed = capsys.readouterr().out
    assert "PASSED" in printed and "Rows read 1500" in printed and "duplicate_evaluation" in printed
    assert list(tmp_path.iterdir()) == []


def test_check_fails_with_exit_1_when_a_run_would_fail(capsys):
    assert main(["check", "--config", str(SAMPLE_CONFIG), "--max-rejected-share", "0"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_check_reports_a_file_error_with_its_exit_code(tmp_path, capsys):
    bad = tmp_path / "export.csv"
    bad.write_text("respondent_id;cro\nR1;X\n")
    assert main(["check", "--config", str(SAMPLE_CONFIG), "--export", str(bad)]) == 3
    error = capsys.readouterr().err
    assert "export.csv" in error and "comma-separated" in error and "Traceback" not in error


def test_check_of_the_2023_year_maps_the_platform_headers(capsys):
    assert main(["check", "--config", str(PROJECT_ROOT / "surveys" / "2023.yaml")]) == 0
    assert "renamed through `columns`" in capsys.readouterr().out


def test_new_year_writes_the_yaml_and_says_what_to_review(tmp_path, capsys):
    shutil.copy(SAMPLE_CONFIG, tmp_path / "2024.yaml")
    assert main(["new-year", "2025", "--from", "2024", "--surveys", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert (tmp_path / "2025.yaml").is_file()
    assert "2025-02-28" in printed and "review" in printed.lower()
    assert main(["new-year", "2025", "--from", "2024", "--surveys", str(tmp_path)]) == 2, "never overwrites"
