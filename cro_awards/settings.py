"""Runtime settings, read from the environment in this one place (business knobs live in the YAML).

| variable | default | meaning |
| --- | --- | --- |
| `CRO_AWARDS_HOME` | the project folder | where `surveys/` and `data/` are found |
| `CRO_AWARDS_DATA_ROOT` | `<home>/data` | root of the default output and quarantine folders |
| `CRO_AWARDS_OUTPUT` | `<data root>/output` | default `--output` |
| `CRO_AWARDS_QUARANTINE` | `<data root>/quarantine` | default `--quarantine` |
| `CRO_AWARDS_KEEP_PUBLICATIONS` | `2` | publications kept per year (the live one and the one before) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = PROJECT_ROOT / "sql"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


@dataclass(frozen=True)
class Settings:
    home: Path
    data_root: Path
    output: Path
    quarantine: Path
    keep_publications: int

    @property
    def default_config(self) -> Path:
        return self.home / "surveys" / "2024.yaml"


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    """Settings from `environ` (default `os.environ`), falling back to defaults that run locally."""
    env = os.environ if environ is None else environ
    home = Path(env.get("CRO_AWARDS_HOME", PROJECT_ROOT))
    data_root = Path(env.get("CRO_AWARDS_DATA_ROOT", home / "data"))
    keep = int(env.get("CRO_AWARDS_KEEP_PUBLICATIONS", "2"))
    if keep < 1:
        raise ValueError("CRO_AWARDS_KEEP_PUBLICATIONS must be at least 1 (the live publication)")
    return Settings(
        home=home,
        data_root=data_root,
        output=Path(env.get("CRO_AWARDS_OUTPUT", data_root / "output")),
        quarantine=Path(env.get("CRO_AWARDS_QUARANTINE", data_root / "quarantine")),
        keep_publications=keep,
    )
