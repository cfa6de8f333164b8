"""Runtime settings (cro_awards/engine/settings.py): read from the environment in one place, with defaults
that run locally; a bad value is one paragraph naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from cro_awards.engine import settings as settings_module
from cro_awards.engine.settings import PROJECT_ROOT, SettingsError, load_settings

REPOSITORY = Path(__file__).resolve().parent.parent


def test_the_project_root_is_the_repository_wherever_settings_py_sits_in_the_package():
    """settings.py lives in a subpackage (cro_awards/engine/): its PROJECT_ROOT is still the repository's
    root, the folder of surveys/, sql/, expectations/ and data/, not a folder of the package."""
    assert Path(settings_module.__file__).resolve().is_relative_to(PROJECT_ROOT / "cro_awards")
    assert PROJECT_ROOT == REPOSITORY
    assert (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "surveys").is_dir()
    assert settings_module.SQL_DIR == REPOSITORY / "sql" and settings_module.SQL_DIR.is_dir()
    assert settings_module.EXPECTATIONS_DIR == REPOSITORY / "expectations" and settings_module.EXPECTATIONS_DIR.is_dir()


def test_defaults_run_locally():
    settings = load_settings({})
    assert settings.home == PROJECT_ROOT
    assert settings.surveys == PROJECT_ROOT / "surveys"
    assert (settings.output, settings.quarantine, settings.inbox) == (
        PROJECT_ROOT / "data" / "output",
        PROJECT_ROOT / "data" / "quarantine",
        PROJECT_ROOT / "data" / "inbox",
    )
    assert (settings.keep_publications, settings.task_runner, settings.max_workers) == (2, "threads", 2)
    assert settings.dask_address is None and settings.server_startup_timeout == 300


def test_paths_derive_from_home_and_data_root_unless_set():
    settings = load_settings(
        {"CRO_AWARDS_HOME": "/srv/awards", "CRO_AWARDS_DATA_ROOT": "/data", "CRO_AWARDS_QUARANTINE": "/secure/q"}
    )
    assert settings.surveys == Path("/srv/awards/surveys")
    assert (settings.output, settings.quarantine, settings.inbox) == (
        Path("/data/output"),
        Path("/secure/q"),
        Path("/data/inbox"),
    )


def test_the_folders_of_a_run_are_those_given_else_the_defaults():
    settings = load_settings({"CRO_AWARDS_DATA_ROOT": "/data"})
    assert settings.folders(None, None) == (Path("/data/output"), Path("/data/quarantine"), Path("/data/drafts"))
    # The drafts store follows the output it belongs to, unless given.
    assert settings.folders("/elsewhere/out", "", None) == (
        Path("/elsewhere/out"),
        Path("/data/quarantine"),
        Path("/elsewhere/drafts"),
    )
    assert settings.folders("/o", "/q", "/d") == (Path("/o"), Path("/q"), Path("/d"))
    configured = load_settings({"CRO_AWARDS_DATA_ROOT": "/data", "CRO_AWARDS_DRAFTS": "/private"})
    assert configured.folders("/elsewhere/out", None)[2] == Path("/private")


def test_only_the_given_mapping_is_read(monkeypatch):
    monkeypatch.setenv("CRO_AWARDS_MAX_WORKERS", "7")
    assert load_settings({}).max_workers == 2
    assert load_settings().max_workers == 7


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRO_AWARDS_KEEP_PUBLICATIONS", "0"),
        ("CRO_AWARDS_MAX_WORKERS", "two"),
        ("CRO_AWARDS_TASK_RUNNER", "ray"),
        ("CRO_AWARDS_SERVER_STARTUP_TIMEOUT", "-1"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_to_do(variable, value):
    with pytest.raises(SettingsError) as error:
        load_settings({variable: value})
    message = str(error.value)
    assert f"{variable}={value!r}" in message and "settings.py" in message and "\n" not in message
    assert error.value.exit_code == 2


def test_the_default_configuration_is_the_latest_survey_year(tmp_path):
    for year in (2023, 2025, 2024):
        (tmp_path / f"{year}.yaml").write_text("survey_year: 1\n")
    (tmp_path / "notes.yaml").write_text("x: 1\n")
    settings = load_settings({"CRO_AWARDS_SURVEYS": str(tmp_path)})
    assert settings.configured_years() == [2023, 2024, 2025]
    assert settings.default_config == tmp_path / "2025.yaml"


def test_no_survey_year_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="no survey year configured.*--config"):
        _ = load_settings({"CRO_AWARDS_SURVEYS": str(tmp_path)}).default_config
