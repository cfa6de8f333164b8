"""Runtime settings, read from the environment in this one place (business knobs live in the YAML).

| variable | default | meaning |
| --- | --- | --- |
| `CRO_AWARDS_HOME` | the project folder | where `surveys/` and `data/` are found |
| `CRO_AWARDS_SURVEYS` | `<home>/surveys` | the survey years' YAML files (`<year>.yaml`); the latest is the default |
| `CRO_AWARDS_DATA_ROOT` | `<home>/data` | root of exports, outputs and quarantine; deployment runs may not leave it |
| `CRO_AWARDS_OUTPUT` | `<data root>/output` | default `--output` |
| `CRO_AWARDS_QUARANTINE` | `<data root>/quarantine` | default `--quarantine` |
| `CRO_AWARDS_DRAFTS` | `drafts` beside the output | default `--drafts`: the private store of drafts and logs |
| `CRO_AWARDS_INBOX` | `<data root>/inbox` | where the inbox deployment looks for new exports |
| `CRO_AWARDS_KEEP_PUBLICATIONS` | `2` | old drafts kept per year (`cro_awards.publication.releases`, keep policy) |
| `CRO_AWARDS_TASK_RUNNER` | `threads` | `threads` or `dask`: how the backfill runs survey years in parallel |
| `CRO_AWARDS_MAX_WORKERS` | `2` | threads, or Dask workers of a local cluster |
| `CRO_AWARDS_DASK_ADDRESS` | none | an existing Dask scheduler (`tcp://host:8786`) instead of a local cluster |
| `CRO_AWARDS_SERVER_STARTUP_TIMEOUT` | `300` | seconds `cro-awards` lets Prefect's temporary server start |
| `CRO_AWARDS_FLOW_TIMEOUT` | `21600` (6 h) | seconds an awards or release run may take; then TimedOut, its year freed |
| `CRO_AWARDS_TASK_TIMEOUT` | `7200` (2 h) | seconds one task of such a run (a stage, a write, a release) may take |

Contract: `load_settings(environ=None)` reads `environ` (default `os.environ`) and returns a frozen
`Settings`, or raises `SettingsError` (one paragraph naming the variable) for a value it cannot use.
Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from cro_awards.engine.errors import CroAwardsError

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # cro_awards/engine/settings.py -> the repository
SQL_DIR = PROJECT_ROOT / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
PREFIX = "CRO_AWARDS_"


class SettingsError(CroAwardsError):
    """An environment variable holds a value the pipeline cannot use."""

    exit_code = 2


class Settings(BaseSettings):
    """The runtime settings (module table). Paths left unset derive from `home` and `data_root`."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    home: Path = PROJECT_ROOT
    surveys: Path | None = None
    data_root: Path | None = None
    output: Path | None = None
    quarantine: Path | None = None
    drafts: Path | None = None
    inbox: Path | None = None
    keep_publications: int = Field(2, ge=1)
    task_runner: Literal["threads", "dask"] = "threads"
    max_workers: int = Field(2, ge=1)
    dask_address: str | None = None
    server_startup_timeout: int = Field(300, ge=1)
    flow_timeout: float = Field(6 * 3600, gt=0)
    task_timeout: float = Field(2 * 3600, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _derived(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = {key: value for key, value in values.items() if value not in ("", None)}
        home = Path(values.get("home", PROJECT_ROOT))
        data_root = Path(values.get("data_root", home / "data"))
        return {
            **values,
            "surveys": values.get("surveys", home / "surveys"),
            "data_root": data_root,
            "output": values.get("output", data_root / "output"),
            "quarantine": values.get("quarantine", data_root / "quarantine"),
            "inbox": values.get("inbox", data_root / "inbox"),
        }

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ):
        return (init_settings,)  # the environment is read by load_settings, from the mapping it is given

    @property
    def default_config(self) -> Path:
        """The latest survey year's YAML: `<surveys>/<year>.yaml` with the highest year."""
        years = self.configured_years()
        if not years:
            raise SettingsError(
                f"{self.surveys}: no survey year configured (no <year>.yaml); pass --config, or set "
                f"{PREFIX}SURVEYS to the folder of the survey YAML files."
            )
        return self.survey_config(years[-1])

    def folders(
        self, output: str | Path | None, quarantine: str | Path | None, drafts: str | Path | None = None
    ) -> tuple[Path, Path, Path]:
        """(output, quarantine, drafts): each as given, else its default (`output`, `quarantine`, and the
        drafts store of that output, `drafts_for`). Nothing is checked or created here."""
        output_path = Path(output) if output else self.output
        quarantine_path = Path(quarantine) if quarantine else self.quarantine
        return output_path, quarantine_path, Path(drafts) if drafts else self.drafts_for(output_path)

    def drafts_for(self, output: Path) -> Path:
        """The private store of drafts of the output folder `output`: `CRO_AWARDS_DRAFTS` when set, else a
        folder `drafts` beside the output (`<data root>/drafts` for the default `<data root>/output`), so
        that each output folder has its own store."""
        return self.drafts if self.drafts is not None else output.parent / "drafts"

    def survey_config(self, year: int) -> Path:
        return self.surveys / f"{year}.yaml"

    def configured_years(self) -> list[int]:
        """Survey years with a `<year>.yaml` in the surveys folder, ascending."""
        return sorted(int(p.stem) for p in self.surveys.glob("*.yaml") if p.stem.isdigit())


class _MappingSource(EnvSettingsSource):
    """Environment variables from a given mapping instead of `os.environ` (tests, subprocess set-ups)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items()}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default `os.environ`); see the module contract."""
    environ = os.environ if environ is None else environ
    try:
        return Settings(**_MappingSource(Settings, environ)())
    except ValidationError as error:
        problems = "; ".join(
            f"{PREFIX}{'_'.join(str(part) for part in e['loc']).upper()}={e.get('input')!r}: {e['msg']}"
            for e in error.errors()
        )
        raise SettingsError(
            f"Invalid runtime setting(s): {problems}. Fix the environment variable(s) "
            "(cro_awards/engine/settings.py lists them) and run again."
        ) from None
