"""Runtime settings, read from the environment in this one place (business knobs live in the YAML).

| variable | default | meaning |
| --- | --- | --- |
| `CRO_AWARDS_HOME` | the project folder | where `surveys/` and `data/` are found |
| `CRO_AWARDS_SURVEYS` | `<home>/surveys` | the survey years' YAML files (`<year>.yaml`) |
| `CRO_AWARDS_DATA_ROOT` | `<home>/data` | root of exports, outputs and quarantine; deployment runs may not leave it |
| `CRO_AWARDS_OUTPUT` | `<data root>/output` | default `--output` |
| `CRO_AWARDS_QUARANTINE` | `<data root>/quarantine` | default `--quarantine` |
| `CRO_AWARDS_INBOX` | `<data root>/inbox` | where the inbox deployment looks for new exports |
| `CRO_AWARDS_KEEP_PUBLICATIONS` | `2` | publications kept per year (the live one and the one before) |
| `CRO_AWARDS_TASK_RUNNER` | `threads` | `threads` or `dask`: how the backfill runs survey years in parallel |
| `CRO_AWARDS_MAX_WORKERS` | `2` | threads, or Dask workers of a local cluster |
| `CRO_AWARDS_DASK_ADDRESS` | none | an existing Dask scheduler (`tcp://host:8786`) instead of a local cluster |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
TASK_RUNNERS = ("threads", "dask")


@dataclass(frozen=True)
class Settings:
    home: Path
    surveys: Path
    data_root: Path
    output: Path
    quarantine: Path
    inbox: Path
    keep_publications: int
    task_runner: str
    max_workers: int
    dask_address: str | None

    @property
    def default_config(self) -> Path:
        return self.surveys / "2024.yaml"

    def survey_config(self, year: int) -> Path:
        return self.surveys / f"{year}.yaml"

    def configured_years(self) -> list[int]:
        """Survey years with a `<year>.yaml` in the surveys folder, ascending."""
        return sorted(int(p.stem) for p in self.surveys.glob("*.yaml") if p.stem.isdigit())


def _positive(env: dict[str, str], name: str, default: int) -> int:
    text = env.get(name, str(default))
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{name}={text!r}: must be a whole number of at least 1")
    return int(text)


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from `environ` (default `os.environ`), falling back to defaults that run locally."""
    env = os.environ if environ is None else environ
    home = Path(env.get("CRO_AWARDS_HOME", PROJECT_ROOT))
    data_root = Path(env.get("CRO_AWARDS_DATA_ROOT", home / "data"))
    runner = env.get("CRO_AWARDS_TASK_RUNNER", "threads")
    if runner not in TASK_RUNNERS:
        raise ValueError(f"CRO_AWARDS_TASK_RUNNER={runner!r}: choose one of {', '.join(TASK_RUNNERS)}")
    return Settings(
        home=home,
        surveys=Path(env.get("CRO_AWARDS_SURVEYS", home / "surveys")),
        data_root=data_root,
        output=Path(env.get("CRO_AWARDS_OUTPUT", data_root / "output")),
        quarantine=Path(env.get("CRO_AWARDS_QUARANTINE", data_root / "quarantine")),
        inbox=Path(env.get("CRO_AWARDS_INBOX", data_root / "inbox")),
        keep_publications=_positive(env, "CRO_AWARDS_KEEP_PUBLICATIONS", 2),
        task_runner=runner,
        max_workers=_positive(env, "CRO_AWARDS_MAX_WORKERS", 2),
        dask_address=env.get("CRO_AWARDS_DASK_ADDRESS") or None,
    )
