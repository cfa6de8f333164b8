"""Calibration of the uncertainty figures: synthetic surveys drawn from known true CRO means, run through
the real pipeline, compared with the truth (docs/method.md, "How sure each award is", "Calibration").

    .venv/bin/python -m bench.calibrate [--surveys N] [--replicates B] [--seed S] [--out docs/calibration.md]
                                        [--quick] [--workers W]

`make calibrate` runs the default (1,000 surveys, B = 1,000; about 20 minutes on 2 cores); `--quick` runs
20 surveys at B = 200 in about a minute and writes to bench/results/calibration_quick.md unless `--out`
is given. The report (markdown) goes to `--out` and to standard output.

The model (per survey, all randomness from `numpy.random.default_rng([seed, survey index])`):
- 36 CROs (the first 36 of surveys/2024.yaml) and three categories of the 2024 questionnaire with their
  attributes (compatibility 3, quality 2, reliability 3; no attribute in two categories);
- a true mean `mu[cro, category]`: 3.8 for every CRO and category ("null": no CRO truly differs), or
  drawn from N(3.8, 0.15) ("spread"); plus a fixed offset per attribute, N(0, 0.15), shared by all CROs;
- respondents rate 1 + Poisson(2) CROs (at most 10, never one twice), picked by popularity (log-spaced
  weights between 1 and R, R set so that the least popular CRO expects `min_n` evaluations; assigned to
  CROs at random); 40% of respondents are Big Pharma (R&D spend 5000), the others Small Pharma (200);
- a rating is `clip(round(mu + offset + L + e), 1, 5)` with the respondent's leniency L ~ N(0, 0.3),
  the same for every rating they give, and noise e ~ N(0, 0.6); each attribute is blank with its own
  probability, U(0.05, 0.30) per survey (independent of the rating); a row left with no rating gets
  one attribute back, so that every row is accepted;
- the truth of a composite (any segment) is the population value of what it averages: the mean over
  the attributes it averages of E[clip(round(mu + offset + Z), 1, 5)], Z ~ N(0, sqrt(0.3^2 + 0.6^2)),
  computed exactly from the normal CDF at the cut points 1.5, 2.5, 3.5, 4.5 (`expected_rating`). A
  composite averages its segment's published attributes of the category: a (segment, CRO, attribute)
  cell with fewer than min_cell_size ratings counts nowhere, so a composite whose cell of one attribute
  is thin estimates the mean of the others, and its truth is theirs (`composite_truth`). The resampling
  keeps the survey's countable cells fixed (disclosure-control.md), so that is what its interval covers.

Each survey is written as a CSV export and a YAML (`min_cell_size: 3`, the least the YAML accepts;
`max_rejected_share: 1.0`, `bootstrap_replicates` B, `bootstrap_seed` = seed x 100,000 + survey index)
and run through `cro_awards.pipeline.run_pipeline(load_config(yaml), csv)` in process: every figure is the
published one. With min_cell_size 3 (it was 1 before the countable-cells rule, which the YAML now
refuses), no composite rests on fewer than 3 evaluations: the smallest coverage bin (3-4) is the
smallest composite there is, and composites of thin cells are not measured at all (they do not exist).
Survey kinds (`KINDS`, taken in turn): coverage surveys (`min_evaluations: 3`, the least the YAML
accepts beside min_cell_size 3, so that every published composite gets its interval, as
`min_evaluations: 1` did; 600 to 6,000 evaluations and one size large enough for the engine's normal
approximation at B) and award surveys (`min_evaluations: 10`, the method's value, so
that the awards are those of a real year; null or spread; 1,500 and 5,000 evaluations and the large
size), each of which is also run with `award_rule: shrunk` (an override of the same YAML).
Whether a survey used exact resampling is decided as the engine decides it (`EXACT_UP_TO_WORK`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import math
import multiprocessing
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import special

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"
DEFAULT_OUT = PROJECT_ROOT / "docs" / "calibration.md"
QUICK_OUT = PROJECT_ROOT / "bench" / "results" / "calibration_quick.md"

N_CROS = 36
CATEGORIES: dict[str, tuple[str, ...]] = {
    "compatibility": ("easy_to_work_with", "responsiveness", "timely_project_communications"),
    "quality": ("data_quality", "project_manager_quality"),
    "reliability": ("meeting_overall_project_timelines", "operational_excellence", "staff_turnover"),
}
ATTRIBUTES: tuple[str, ...] = tuple(a for ids in CATEGORIES.values() for a in ids)
ATTRIBUTE_CATEGORY = np.array([list(CATEGORIES).index(c) for c, ids in CATEGORIES.items() for _ in ids])

SCALE = (1, 5)
MEAN = 3.8
SPREAD_SD = 0.15
ATTRIBUTE_OFFSET_SD = 0.15
LENIENCY_SD = 0.3
NOISE_SD = 0.6
RATING_SD = math.hypot(LENIENCY_SD, NOISE_SD)
BLANK_SHARE = (0.05, 0.30)
BIG_PHARMA_SHARE = 0.4
EXTRA_CROS_MEAN = 2.0
MAX_CROS_PER_RESPONDENT = 10
CHAMPION_SD_MULTIPLIER = 1.0
ROBUST_AWARD_PROBABILITY = 0.8
MIN_CELL_SIZE = 3
"""The least the YAML accepts (the countable-cells rule): a cell of fewer ratings counts nowhere."""
SURVEY_CLOSE = "2024-02-29"
LAST_ENGAGED = "2023-06-15"

BINS: tuple[tuple[int, float, str], ...] = (
    (3, 5, "3-4"),
    (5, 10, "5-9"),
    (10, 20, "10-19"),
    (20, 40, "20-39"),
    (40, 100, "40-99"),
    (100, 500, "100-499"),
    (500, math.inf, "500+"),
)
"""n_evaluations bins of the coverage table: (from, below, label)."""

TARGET_COVERAGE = 0.93
"""The spec's floor for cells of min_evaluations (10) evaluations and more."""

LARGE_MIN_EVALUATIONS = 25_000
LARGE_MARGIN = 1.5
"""A large survey has at least LARGE_MIN_EVALUATIONS evaluations and LARGE_MARGIN x the work the engine resamples
exactly at the run's replicates, so that it takes the normal approximation."""

P_AWARD_BINS = ((0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.0 + 1e-9))


@dataclass(frozen=True)
class Kind:
    """One kind of simulated survey."""

    name: str
    scenario: str  # "null" (every CRO alike) or "spread" (true means ~ N(3.8, 0.15))
    n_evaluations: int  # 0: large (see `large_size`)
    min_n: float  # expected overall evaluations of the least popular CRO
    min_evaluations: int
    awards: bool  # award statistics (and a second run with award_rule shrunk)


KINDS: tuple[Kind, ...] = (
    Kind("coverage-600", "spread", 600, 2.5, 3, False),
    Kind("coverage-2000", "spread", 2000, 2.5, 3, False),
    Kind("coverage-6000", "spread", 6000, 2.5, 3, False),
    Kind("coverage-large", "spread", 0, 2.5, 3, False),
    Kind("null-1500", "null", 1500, 12, 10, True),
    Kind("spread-1500", "spread", 1500, 12, 10, True),
    Kind("null-5000", "null", 5000, 12, 10, True),
    Kind("spread-5000", "spread", 5000, 12, 10, True),
    Kind("null-large", "null", 0, 12, 10, True),
    Kind("spread-large", "spread", 0, 12, 10, True),
)


# --- the truth ------------------------------------------------------------------------------------------


def expected_rating(mu: Any, sd: float = RATING_SD, scale: tuple[int, int] = SCALE) -> np.ndarray:
    """E[clip(round(mu + Z), low, high)] with Z ~ N(0, sd): low + the sum over the cut points j + 0.5
    (j = low .. high - 1) of P(mu + Z >= j + 0.5)."""
    mu = np.asarray(mu, dtype=np.float64)
    low, high = scale
    cuts = np.arange(low, high) + 0.5
    return low + special.ndtr((mu[..., None] - cuts) / sd).sum(axis=-1)


def true_attributes(mu: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """CROs x attributes: the expected attribute score."""
    return expected_rating(mu[:, ATTRIBUTE_CATEGORY] + offsets[None, :])


def true_composites(mu: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """CROs x categories: the mean over the category's attributes of the expected attribute score (a
    composite whose every attribute cell is countable)."""
    per_attribute = true_attributes(mu, offsets)
    return np.stack([per_attribute[:, k == ATTRIBUTE_CATEGORY].mean(axis=1) for k in range(len(CATEGORIES))], axis=1)


def composite_truth(
    attribute_truth: np.ndarray, attribute_rows: list[dict[str, Any]], cro_index: dict[str, int]
) -> dict[tuple[str, str, str], float]:
    """(segment, cro id, category) -> the truth of the composite the pipeline publishes there: the mean of
    the expected scores of the category's attributes published in that segment (`attribute_rows`: the
    published attribute_scores), the thin cells' attributes left out as the composite leaves them out."""
    published: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for row in attribute_rows:
        index = ATTRIBUTES.index(row["attribute"])
        category = list(CATEGORIES)[ATTRIBUTE_CATEGORY[index]]
        published[row["segment"], row["cro"], category].append(index)
    return {
        (segment, cro, category): float(attribute_truth[cro_index[cro], indices].mean())
        for (segment, cro, category), indices in published.items()
    }


def champion_truth(truth: np.ndarray, weights: np.ndarray, k: float = CHAMPION_SD_MULTIPLIER) -> np.ndarray:
    """Which CROs of a cell are truly champions: true composite >= true weighted mean + k x true weighted SD
    (weights n_evaluations, population SD, as the official rule) and above the weighted mean."""
    mean = float(weights @ truth / weights.sum())
    sd = math.sqrt(float(weights @ (truth - mean) ** 2 / weights.sum()))
    return (truth >= mean + k * sd - 1e-12) & (truth > mean + 1e-12)


# --- drawing and writing a survey ------------------------------------------------------------------------


@cache
def cro_names() -> tuple[str, ...]:
    config = yaml.safe_load(SOURCE_CONFIG.read_text(encoding="utf-8"))
    return tuple(cro["name"] for cro in config["cros"][:N_CROS])


@cache
def attribute_labels() -> dict[str, str]:
    config = yaml.safe_load(SOURCE_CONFIG.read_text(encoding="utf-8"))
    return {a: config["attributes"][a] for a in ATTRIBUTES}


def expected_ratings_per_evaluation() -> float:
    return len(ATTRIBUTES) * (1.0 - sum(BLANK_SHARE) / 2)


def large_size(replicates: int) -> int:
    """Evaluations of a large survey: enough for the engine's normal approximation at `replicates`."""
    from cro_awards.uncertainty import EXACT_UP_TO_WORK

    needed = LARGE_MARGIN * EXACT_UP_TO_WORK / (2 * max(replicates, 1) * expected_ratings_per_evaluation())
    return max(LARGE_MIN_EVALUATIONS, math.ceil(needed / 1000) * 1000)


def popularity(n_evaluations: int, min_n: float, n_cros: int = N_CROS) -> np.ndarray:
    """Log-spaced weights 1 .. R (normalised), R such that the least popular CRO expects `min_n` evaluations."""
    if n_evaluations / n_cros <= min_n:
        return np.full(n_cros, 1.0 / n_cros)
    low, high = 0.0, 20.0  # log R
    for _ in range(100):
        middle = (low + high) / 2
        weights = np.exp(np.linspace(0.0, middle, n_cros))
        if n_evaluations / weights.sum() > min_n:
            low = middle
        else:
            high = middle
    weights = np.exp(np.linspace(0.0, low, n_cros))
    return weights / weights.sum()


@dataclass
class Survey:
    """A drawn survey: one row per evaluation, and the truth."""

    index: int
    kind: Kind
    respondent: np.ndarray  # per evaluation
    big_pharma: np.ndarray  # per respondent
    cro: np.ndarray  # per evaluation, 0 .. N_CROS - 1
    ratings: np.ndarray  # evaluations x ATTRIBUTES, NaN = blank
    truth: np.ndarray  # N_CROS x categories (every attribute)
    attribute_truth: np.ndarray  # N_CROS x ATTRIBUTES

    @property
    def n_evaluations(self) -> int:
        return len(self.cro)

    @property
    def n_ratings(self) -> int:
        return int((~np.isnan(self.ratings)).sum())


def draw_survey(kind: Kind, index: int, seed: int, n_evaluations: int) -> Survey:
    """Draw one survey of `kind` with `n_evaluations` rows (module docstring, "The model")."""
    rng = np.random.default_rng([seed, index])
    n_categories = len(CATEGORIES)
    if kind.scenario == "null":
        mu = np.full((N_CROS, n_categories), MEAN)
    else:
        mu = rng.normal(MEAN, SPREAD_SD, (N_CROS, n_categories))
    offsets = rng.normal(0.0, ATTRIBUTE_OFFSET_SD, len(ATTRIBUTES))
    blank = rng.uniform(*BLANK_SHARE, len(ATTRIBUTES))
    weights = rng.permutation(popularity(n_evaluations, kind.min_n))

    per_respondent = np.minimum(1 + rng.poisson(EXTRA_CROS_MEAN, n_evaluations), MAX_CROS_PER_RESPONDENT)
    total = np.cumsum(per_respondent)
    n_respondents = int(np.searchsorted(total, n_evaluations)) + 1
    per_respondent = per_respondent[:n_respondents]
    per_respondent[-1] -= int(total[n_respondents - 1]) - n_evaluations
    # Weighted sampling without replacement (Gumbel top-k): each respondent's CROs are the k largest keys.
    keys = np.log(weights)[None, :] + rng.gumbel(size=(n_respondents, N_CROS))
    order = np.argsort(-keys, axis=1)
    respondent, position = np.nonzero(np.arange(N_CROS)[None, :] < per_respondent[:, None])
    cro = order[respondent, position]

    leniency = rng.normal(0.0, LENIENCY_SD, n_respondents)
    big_pharma = rng.random(n_respondents) < BIG_PHARMA_SHARE
    latent = (
        mu[cro][:, ATTRIBUTE_CATEGORY]
        + offsets[None, :]
        + leniency[respondent][:, None]
        + rng.normal(0.0, NOISE_SD, (n_evaluations, len(ATTRIBUTES)))
    )
    ratings = np.clip(np.rint(latent), *SCALE)
    missing = rng.random(ratings.shape) < blank[None, :]
    empty = np.flatnonzero(missing.all(axis=1))
    missing[empty, rng.integers(0, len(ATTRIBUTES), len(empty))] = False
    ratings[missing] = np.nan
    return Survey(
        index, kind, respondent, big_pharma, cro, ratings, true_composites(mu, offsets), true_attributes(mu, offsets)
    )


def survey_config(kind: Kind, replicates: int, bootstrap_seed: int) -> dict[str, Any]:
    return {
        "survey_year": 2024,
        "survey_close": SURVEY_CLOSE,
        "recency_months": 18,
        "rating_scale": {"min": SCALE[0], "max": SCALE[1]},
        "big_pharma_min_rd_spend_musd": 1000,
        "min_evaluations": kind.min_evaluations,
        "min_cros_for_awards": 3,
        "champion_sd_multiplier": CHAMPION_SD_MULTIPLIER,
        "min_cell_size": MIN_CELL_SIZE,
        "max_rejected_share": 1.0,
        "bootstrap_replicates": replicates,
        "bootstrap_seed": bootstrap_seed,
        "robust_award_probability": ROBUST_AWARD_PROBABILITY,
        "award_rule": "official",
        "cros": [{"name": name} for name in cro_names()],
        "attributes": attribute_labels(),
        "categories": {category: list(ids) for category, ids in CATEGORIES.items()},
    }


def write_survey(survey: Survey, folder: Path, replicates: int, bootstrap_seed: int) -> tuple[Path, Path]:
    """Write the survey's YAML and CSV export (contract columns, then one column per attribute id)."""
    yaml_path, csv_path = folder / "survey.yaml", folder / "export.csv"
    config = survey_config(survey.kind, replicates, bootstrap_seed)
    yaml_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    texts = np.array(["", *(str(v) for v in range(SCALE[0], SCALE[1] + 1))])
    codes = np.where(np.isnan(survey.ratings), 0, np.nan_to_num(survey.ratings) - SCALE[0] + 1).astype(np.int64)
    cells = texts[codes]
    names = np.array(cro_names())[survey.cro]
    spends = np.where(survey.big_pharma, "5000", "200")[survey.respondent]
    lines = [",".join(["respondent_id", "rd_spend_musd", "cro", "last_engaged", *ATTRIBUTES])]
    lines.extend(
        f"R{r:06d},{spend},{name},{LAST_ENGAGED}," + ",".join(row)
        for r, spend, name, row in zip(survey.respondent.tolist(), spends, names, cells.tolist(), strict=True)
    )
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return yaml_path, csv_path


# --- one survey through the pipeline ---------------------------------------------------------------------

_IMPORTED: dict[str, str] = {}


def engine_fingerprint() -> str:
    """12 hex digits of sha256 over cro_awards/uncertainty.py as this process imported it (read once, right
    after the import) and sql/*.sql as they are now (the SQL is read at every run): which engine a survey
    ran on, so that a change to the engine during a run shows in the report."""
    if "engine" not in _IMPORTED:
        import cro_awards.pipeline  # noqa: F401 - imports cro_awards.uncertainty, as a run does
        from cro_awards import uncertainty

        _IMPORTED["engine"] = hashlib.sha256(Path(uncertainty.__file__).read_bytes()).hexdigest()
    digest = hashlib.sha256(_IMPORTED["engine"].encode())
    for path in sorted((PROJECT_ROOT / "sql").rglob("*.sql")):
        digest.update(path.relative_to(PROJECT_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def code_version() -> str:
    """The git commit and the uncommitted changes under cro_awards/ and sql/ (what the engine is)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "cro_awards", "sql"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not changed:
        return f"commit {head}, no uncommitted changes under cro_awards/ or sql/"
    return f"commit {head} with uncommitted changes to " + ", ".join(line[3:] for line in changed)


@dataclass
class Outcome:
    """What one survey contributes: per eligible composite with an interval, and per award cell."""

    index: int
    kind: str
    scenario: str
    n_evaluations: int
    exact: bool
    seconds: float
    engine: str
    n: np.ndarray = field(default_factory=lambda: np.zeros(0))  # n_evaluations per composite
    below: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # truth < ci_low
    above: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # truth > ci_high
    width: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cells: list[dict[str, Any]] = field(default_factory=list)


def _rows(table: Any) -> list[dict[str, Any]]:
    return table.to_pylist()


def cell_records(
    composites: list[dict[str, Any]],
    awards: list[dict[str, Any]],
    shrunk_awards: list[dict[str, Any]],
    truth: dict[tuple[str, str, str], float],
) -> list[dict[str, Any]]:
    """Per cell with awards: how the published awards compare with the truth (`truth[(segment, cro,
    category)]`: `composite_truth`)."""
    eligible: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in composites:
        if row["is_eligible"]:
            eligible[row["segment"], row["category"]].append(row)
    by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in awards:
        by_cell[row["segment"], row["category"]].append(row)
    shrunk_by_cell: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in shrunk_awards:
        shrunk_by_cell[row["segment"], row["category"]].append(row)
    records = []
    for cell, rows in sorted(by_cell.items()):
        members = eligible[cell]
        cros = [row["cro"] for row in members]
        true = np.array([truth[cell[0], cro, cell[1]] for cro in cros])
        weights = np.array([row["n_evaluations"] for row in members], dtype=np.float64)
        best = cros[int(np.argmax(true))]
        truly = dict(zip(cros, champion_truth(true, weights).tolist(), strict=True))
        leaders = [row for row in rows if row["award"] == "leader"]
        champions = [row for row in rows if row["award"] == "champion"]
        shrunk_leaders = [row for row in shrunk_by_cell[cell] if row["award"] == "leader"]
        shrunk_champions = [row for row in shrunk_by_cell[cell] if row["award"] == "champion"]
        co_leaders = [row["cro"] for row in members if row["is_co_leader"]]
        shrunk_values = [row["composite_shrunk"] for row in members]
        records.append(
            {
                "cell": cell,
                "eligible": len(members),
                "leaders": len(leaders),
                "leader_best": sum(row["cro"] == best for row in leaders) / len(leaders),
                "leader_p": [row["p_award"] for row in leaders],
                "leader_is_best": [row["cro"] == best for row in leaders],
                "robust_leaders": sum(bool(row["is_robust"]) for row in leaders),
                "robust_leaders_best": sum(bool(row["is_robust"]) and row["cro"] == best for row in leaders),
                "tau_zero": max(shrunk_values) - min(shrunk_values) <= 1e-9,
                "shrunk_leaders": len(shrunk_leaders),
                "shrunk_leader_best": (
                    sum(row["cro"] == best for row in shrunk_leaders) / len(shrunk_leaders)
                    if shrunk_leaders
                    else math.nan
                ),
                "co_leaders": len(co_leaders),
                "co_leaders_hold_best": best in co_leaders,
                "champions": len(champions),
                "champions_above": sum(truly[row["cro"]] for row in champions),
                "champion_p": [row["p_award"] for row in champions],
                "champion_is_above": [truly[row["cro"]] for row in champions],
                "robust_champions": sum(bool(row["is_robust"]) for row in champions),
                "robust_champions_above": sum(bool(row["is_robust"]) and truly[row["cro"]] for row in champions),
                "shrunk_champions": len(shrunk_champions),
                "shrunk_champions_above": sum(truly[row["cro"]] for row in shrunk_champions),
                "true_champions": sum(truly.values()),
            }
        )
    return records


def run_survey(task: tuple[Kind, int, int, int, int]) -> Outcome:
    """Draw survey `index` of `kind`, run it through the pipeline (and with award_rule shrunk for award
    surveys), and compare the published figures with the truth."""
    from cro_awards.config import derive_id, load_config
    from cro_awards.pipeline import run_pipeline
    from cro_awards.uncertainty import EXACT_UP_TO_WORK

    kind, index, seed, replicates, n_evaluations = task
    logging.getLogger("cro_awards").setLevel(logging.WARNING)
    started = time.perf_counter()
    engine = engine_fingerprint()
    survey = draw_survey(kind, index, seed, n_evaluations)
    # The engine's own test (uncertainty.analyse): every rating of an accepted evaluation counts once per
    # segment it is in (its own and overall).
    exact = 2 * survey.n_ratings * replicates <= EXACT_UP_TO_WORK
    with tempfile.TemporaryDirectory(prefix="cro-calibrate-") as folder:
        yaml_path, csv_path = write_survey(survey, Path(folder), replicates, seed * 100_000 + index)
        result = run_pipeline(load_config(yaml_path), csv_path)
        if result.counts["accepted"] != survey.n_evaluations:
            raise RuntimeError(f"survey {index}: {result.counts} (every generated row should be accepted)")
        shrunk = run_pipeline(load_config(yaml_path, {"award_rule": "shrunk"}), csv_path) if kind.awards else None
    names = {derive_id(name): code for code, name in enumerate(cro_names())}  # the tables key on ids
    truth = composite_truth(survey.attribute_truth, _rows(result.tables["attribute_scores"]), names)
    composites = _rows(result.tables["composite_scores"])
    with_interval = [row for row in composites if row["is_eligible"] and row["ci_low"] is not None]
    true = np.array([truth[row["segment"], row["cro"], row["category"]] for row in with_interval])
    low = np.array([row["ci_low"] for row in with_interval], dtype=np.float64)
    high = np.array([row["ci_high"] for row in with_interval], dtype=np.float64)
    outcome = Outcome(
        index=index,
        kind=kind.name,
        scenario=kind.scenario,
        n_evaluations=survey.n_evaluations,
        exact=exact,
        seconds=0.0,
        engine=engine,
        n=np.array([row["n_evaluations"] for row in with_interval], dtype=np.int64),
        below=true < low,
        above=true > high,
        width=high - low,
    )
    if shrunk is not None:
        outcome.cells = cell_records(composites, _rows(result.tables["awards"]), _rows(shrunk.tables["awards"]), truth)
    outcome.seconds = time.perf_counter() - started
    return outcome


# --- summaries and the report ------------------------------------------------------------------------------


def _cluster_share(hits: np.ndarray, counts: np.ndarray) -> tuple[float, float]:
    """The pooled share sum(hits) / sum(counts) and its standard error with surveys as clusters."""
    total = counts.sum()
    if total == 0:
        return math.nan, math.nan
    share = hits.sum() / total
    if len(counts) < 2:
        return float(share), math.nan
    residual = hits - share * counts
    return float(share), float(math.sqrt(len(counts) / (len(counts) - 1) * (residual**2).sum()) / total)


def coverage_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Per bin (and for n >= 10 as a whole), per path (exact, approximate): composites, coverage and
    its SE (surveys as clusters), the shares missed below and above, the mean interval width."""
    rows = []
    bins = [*BINS, (10, math.inf, "10+ (all)")]
    for low, high, label in bins:
        row: dict[str, Any] = {"bin": label}
        for path in ("exact", "approximate"):
            chosen = [o for o in outcomes if o.exact == (path == "exact")]
            counts, hits, below, above, widths = [], [], [], [], []
            for outcome in chosen:
                mask = (outcome.n >= low) & (outcome.n < high)
                counts.append(int(mask.sum()))
                hits.append(int((mask & ~outcome.below & ~outcome.above).sum()))
                below.append(int((mask & outcome.below).sum()))
                above.append(int((mask & outcome.above).sum()))
                widths.append(float(outcome.width[mask].sum()))
            n = np.array(counts, dtype=np.float64)
            share, se = _cluster_share(np.array(hits, dtype=np.float64), n)
            total = n.sum()
            row[path] = {
                "composites": int(total),
                "surveys": int((n > 0).sum()),
                "coverage": share,
                "se": se,
                "below": sum(below) / total if total else math.nan,
                "above": sum(above) / total if total else math.nan,
                "width": sum(widths) / total if total else math.nan,
            }
        rows.append(row)
    return rows


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else math.nan


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _total(cells: list[dict[str, Any]], name: str) -> float:
    return sum(cell[name] for cell in cells)


def award_tables(outcomes: list[Outcome]) -> dict[str, list[dict[str, Any]]]:
    """Per scenario, one row per award kind (survey size): the cells' statistics pooled."""
    tables: dict[str, list[dict[str, Any]]] = {"null": [], "spread": []}
    for kind in KINDS:
        if not kind.awards:
            continue
        chosen = [o for o in outcomes if o.kind == kind.name]
        cells = [cell for o in chosen for cell in o.cells]
        if not chosen:
            continue
        leader_p = [p for cell in cells for p in cell["leader_p"]]
        champion_p = [p for cell in cells for p in cell["champion_p"]]
        tables[kind.scenario].append(
            {
                "kind": kind.name,
                "surveys": len(chosen),
                "evaluations": _mean([o.n_evaluations for o in chosen]),
                "path": ", ".join(sorted({"exact" if o.exact else "approximate" for o in chosen})),
                "cells": len(cells),
                "eligible": _ratio(_total(cells, "eligible"), len(cells)),
                "champions": _ratio(_total(cells, "champions"), len(cells)),
                "robust_champions": _ratio(_total(cells, "robust_champions"), len(cells)),
                "champion_p": _mean(champion_p),
                "robust_leaders": _ratio(_total(cells, "robust_leaders"), len(cells)),
                "leader_p": _mean(leader_p),
                "shrunk_champions": _ratio(_total(cells, "shrunk_champions"), len(cells)),
                "true_champions": _ratio(_total(cells, "true_champions"), len(cells)),
                "leader_best": _ratio(_total(cells, "leader_best"), len(cells)),
                "shrunk_leader_best": _mean([cell["shrunk_leader_best"] for cell in cells]),
                "shrunk_leaders": _ratio(_total(cells, "shrunk_leaders"), len(cells)),
                "tau_zero": _ratio(_total(cells, "tau_zero"), len(cells)),
                "robust_leader_best": _ratio(_total(cells, "robust_leaders_best"), _total(cells, "robust_leaders")),
                "co_leaders_hold_best": _ratio(_total(cells, "co_leaders_hold_best"), len(cells)),
                "co_leaders": _ratio(_total(cells, "co_leaders"), len(cells)),
                "champions_above": _ratio(_total(cells, "champions_above"), _total(cells, "champions")),
                "robust_champions_above": _ratio(
                    _total(cells, "robust_champions_above"), _total(cells, "robust_champions")
                ),
                "shrunk_champions_above": _ratio(
                    _total(cells, "shrunk_champions_above"), _total(cells, "shrunk_champions")
                ),
                "champions_found": _ratio(_total(cells, "champions_above"), _total(cells, "true_champions")),
                "robust_champions_found": _ratio(
                    _total(cells, "robust_champions_above"), _total(cells, "true_champions")
                ),
            }
        )
    return tables


def p_award_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Spread scenario, official awards: is p_award calibrated? Per p_award bin, the awards and the share
    truly deserved (champion: truly above the threshold; leader: truly the best)."""
    pairs: dict[str, list[tuple[float, bool]]] = {"champion": [], "leader": []}
    for outcome in outcomes:
        if outcome.scenario != "spread":
            continue
        for cell in outcome.cells:
            pairs["champion"].extend(zip(cell["champion_p"], cell["champion_is_above"], strict=True))
            pairs["leader"].extend(zip(cell["leader_p"], cell["leader_is_best"], strict=True))
    rows = []
    for low, high in P_AWARD_BINS:
        row: dict[str, Any] = {"bin": f"{low:.2f}-{min(high, 1.0):.2f}"}
        for award, found in pairs.items():
            inside = [(p, ok) for p, ok in found if p is not None and low <= p < high]
            row[award] = {
                "awards": len(inside),
                "mean_p": _mean([p for p, _ in inside]),
                "deserved": _ratio(sum(ok for _, ok in inside), len(inside)),
            }
        rows.append(row)
    return rows


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" for _ in header) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render(
    outcomes: list[Outcome],
    *,
    command: str,
    replicates: int,
    seed: int,
    workers: int,
    seconds: float,
    today: dt.date,
    version: str = "",
) -> str:
    """The report (markdown)."""
    coverage = coverage_table(outcomes)
    awards = award_tables(outcomes)
    calibration = p_award_table(outcomes)
    n_exact = sum(o.exact for o in outcomes)
    engines: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        engines[outcome.engine] += 1
    thin = sum(int((o.n < BINS[0][0]).sum()) for o in outcomes)
    thin_hit = sum(int(((o.n < BINS[0][0]) & ~o.below & ~o.above).sum()) for o in outcomes)
    lines = [
        "# Calibration of the uncertainty figures",
        "",
        f"Written by `{command}` on {today.isoformat()}: {len(outcomes)} simulated surveys "
        f"({n_exact} with exact resampling, {len(outcomes) - n_exact} with the normal approximation), "
        f"`bootstrap_replicates` {replicates}, seed {seed}, {workers} worker process(es), run time "
        f"{seconds / 60:.1f} min. Regenerate with `make calibrate` (bench/calibrate.py; the model and the "
        "survey kinds are in its docstring).",
        "",
        f"**Engine.** {version or code_version()}; fingerprint of cro_awards/uncertainty.py and sql/ as run "
        "(bench/calibrate.py, `engine_fingerprint`): "
        + ", ".join(f"`{e}` ({n} surveys)" for e, n in sorted(engines.items()))
        + (
            ". **WARNING: the engine changed during the run; the surveys ran on different code.**"
            if len(engines) > 1
            else "."
        ),
        "",
        "**Model.** 36 CROs; categories compatibility (3 attributes), quality (2) and reliability (3). A rating is "
        f"clip(round(mu + offset + L + e), 1, 5) with respondent leniency L ~ N(0, {LENIENCY_SD}) (shared by all "
        f"of a respondent's ratings), noise e ~ N(0, {NOISE_SD}), attribute offsets ~ N(0, {ATTRIBUTE_OFFSET_SD}); "
        f"each attribute blank with probability U{BLANK_SHARE} per survey; respondents rate 1 + Poisson(2) CROs "
        f"picked by skewed popularity; {BIG_PHARMA_SHARE:.0%} of respondents Big Pharma. True means mu: "
        f"{MEAN} for all (null) or ~ N({MEAN}, {SPREAD_SD}) per CRO and category (spread). The truth of a composite "
        "(any segment) is the mean over the attributes it averages (its segment's published ones: a thin cell "
        "counts nowhere) of the exact expected rating. Every figure is the "
        f"pipeline's published one (`run_pipeline`, `min_cell_size: {MIN_CELL_SIZE}`); composites of all three "
        "segments (big_pharma, small_pharma, overall) count.",
        "",
        "**Survey kinds** (taken in turn): "
        + "; ".join(
            f"`{k.name}`: {k.scenario}, "
            + (f"{k.n_evaluations:,}" if k.n_evaluations else "large")
            + f" evaluations, least popular CRO ~{k.min_n:g} expected, `min_evaluations: {k.min_evaluations}`"
            + (", awards also run with `award_rule: shrunk`" if k.awards else "")
            for k in KINDS
        )
        + f". Large = {large_size(replicates):,} evaluations at these replicates (beyond the engine's "
        "`EXACT_UP_TO_WORK`).",
        "",
        "**Seconds per survey** (drawing, writing, the pipeline once, or twice for award kinds; one worker): "
        + ", ".join(
            f"{kind.name} {_mean([o.seconds for o in outcomes if o.kind == kind.name]):.1f}"
            for kind in KINDS
            if any(o.kind == kind.name for o in outcomes)
        )
        + ".",
        "",
        "## Interval coverage by n_evaluations",
        "",
        "Share of eligible composites whose [ci_low, ci_high] holds the truth; ± is one standard error with "
        "surveys as clusters (composites of one survey share respondents). Below / above: the truth lies below "
        f"ci_low / above ci_high. Target: at least {TARGET_COVERAGE} from n = 10 on; rows flagged **LOW** miss it "
        "by more than two standard errors.",
        "",
    ]
    header = ["n_evaluations", "exact: composites (surveys)", "coverage", "below / above", "mean width"]
    header += ["approx.: composites (surveys)", "coverage", "below / above", "mean width"]
    body = []
    for row in coverage:
        cells = [row["bin"]]
        for path in ("exact", "approximate"):
            found = row[path]
            flag = ""
            first = row["bin"].split("-")[0].split("+")[0].split(" ")[0]
            if (
                int(first) >= 10
                and found["composites"]
                and found["coverage"] + 2 * (found["se"] if not math.isnan(found["se"]) else 0) < TARGET_COVERAGE
            ):
                flag = " **LOW**"
            cells += [
                f"{found['composites']:,} ({found['surveys']})",
                (f"{_f(found['coverage'])} ± {_f(found['se'])}{flag}" if found["composites"] else "–"),
                f"{_f(found['below'])} / {_f(found['above'])}",
                _f(found["width"]),
            ]
        body.append(cells)
    lines += _table(header, body)
    lines += [
        "",
        f"Not binned: {thin:,} composites of 1 or 2 evaluations (coverage {_f(_ratio(thin_hit, thin))}). There "
        f"should be none: at min_cell_size {MIN_CELL_SIZE} a composite rests on countable cells only, each of at "
        "least 3 ratings, and intervals are published only from min_evaluations, at least min_cell_size.",
        "",
        "## Awards when no CRO truly differs (null)",
        "",
        "Award surveys: `min_evaluations: 10`, so the cells are those of a real year. Per cell (segment x "
        "category with awards). Every champion here is undeserved.",
        "",
    ]
    header = [
        "survey kind",
        "surveys (evaluations)",
        "path",
        "cells",
        "eligible CROs per cell",
        "official champions per cell",
        "robust champions per cell",
        "mean p_award of champions",
        "robust leaders per cell",
        "mean p_award of leaders",
        "shrunk-rule champions per cell",
        "cells with tau^2 = 0",
        "shrunk-rule leaders per cell",
    ]
    body = [
        [
            row["kind"],
            f"{row['surveys']} ({row['evaluations']:,.0f})",
            row["path"],
            f"{row['cells']:,}",
            _f(row["eligible"], 1),
            _f(row["champions"], 2),
            _f(row["robust_champions"], 3),
            _f(row["champion_p"]),
            _f(row["robust_leaders"], 3),
            _f(row["leader_p"]),
            _f(row["shrunk_champions"], 3),
            _f(row["tau_zero"]),
            _f(row["shrunk_leaders"], 1),
        ]
        for row in awards["null"]
    ]
    lines += _table(header, body)
    lines += [
        "",
        f"## Awards with a real spread (true means ~ N({MEAN}, {SPREAD_SD}))",
        "",
        "Leaders: the truly best CRO is the highest true composite among the cell's eligible CROs; a tie of "
        "leaders counts the share of them that is. Chance alone would name it in 1 / (eligible CROs) of cells. "
        "Where the engine estimates tau^2 = 0, every shrunk composite equals the cell's weighted mean, and "
        "`award_rule: shrunk` names no leader there (no difference beyond noise).",
        "",
    ]
    header = [
        "survey kind",
        "surveys (evaluations)",
        "cells",
        "eligible CROs per cell",
        "official leader truly best",
        "mean p_award of leaders",
        "robust leaders per cell",
        "robust leader truly best",
        "shrunk leader truly best",
        "shrunk-rule leaders per cell",
        "cells with tau^2 = 0",
        "co-leader set holds the best",
        "co-leaders per cell",
    ]
    body = [
        [
            row["kind"],
            f"{row['surveys']} ({row['evaluations']:,.0f})",
            f"{row['cells']:,}",
            _f(row["eligible"], 1),
            _f(row["leader_best"]),
            _f(row["leader_p"]),
            _f(row["robust_leaders"]),
            _f(row["robust_leader_best"]),
            _f(row["shrunk_leader_best"]),
            _f(row["shrunk_leaders"], 1),
            _f(row["tau_zero"]),
            _f(row["co_leaders_hold_best"]),
            _f(row["co_leaders"], 1),
        ]
        for row in awards["spread"]
    ]
    lines += _table(header, body)
    lines += [
        "",
        "Champions: truly above = true composite >= true weighted mean + "
        f"{CHAMPION_SD_MULTIPLIER:g} x true weighted SD of the cell's eligible CROs (weights n_evaluations). "
        "Found = the share of truly-above CROs that are named.",
        "",
    ]
    header = [
        "survey kind",
        "truly above per cell",
        "official champions per cell",
        "truly above",
        "found",
        "mean p_award",
        "robust champions per cell",
        "robust: truly above",
        "robust: found",
        "shrunk-rule champions per cell",
        "shrunk-rule: truly above",
    ]
    body = [
        [
            row["kind"],
            _f(row["true_champions"], 2),
            _f(row["champions"], 2),
            _f(row["champions_above"]),
            _f(row["champions_found"]),
            _f(row["champion_p"]),
            _f(row["robust_champions"], 2),
            _f(row["robust_champions_above"]),
            _f(row["robust_champions_found"]),
            _f(row["shrunk_champions"], 2),
            _f(row["shrunk_champions_above"]),
        ]
        for row in awards["spread"]
    ]
    lines += _table(header, body)
    lines += [
        "",
        "### Is p_award calibrated? (spread scenario, official awards, all award kinds)",
        "",
    ]
    header = [
        "p_award",
        "champions",
        "mean p_award",
        "truly above",
        "leaders",
        "mean p_award",
        "truly best",
    ]
    body = [
        [
            row["bin"],
            f"{row['champion']['awards']:,}",
            _f(row["champion"]["mean_p"]),
            _f(row["champion"]["deserved"]),
            f"{row['leader']['awards']:,}",
            _f(row["leader"]["mean_p"]),
            _f(row["leader"]["deserved"]),
        ]
        for row in calibration
    ]
    lines += _table(header, body)
    return "\n".join(lines) + "\n"


# --- command line ------------------------------------------------------------------------------------------


def plan(n_surveys: int, seed: int, replicates: int) -> list[tuple[Kind, int, int, int, int]]:
    """The tasks: survey i is of kind KINDS[i mod len(KINDS)]."""
    tasks = []
    for index in range(n_surveys):
        kind = KINDS[index % len(KINDS)]
        n_evaluations = kind.n_evaluations or large_size(replicates)
        tasks.append((kind, index, seed, replicates, n_evaluations))
    return tasks


def run(tasks: list[tuple[Kind, int, int, int, int]], workers: int, progress: bool = True) -> list[Outcome]:
    """Run the tasks on `workers` processes (largest first); the outcomes in task order."""
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    ordered = sorted(tasks, key=lambda task: -task[4])
    if workers <= 1:
        for done, task in enumerate(ordered, start=1):
            outcomes.append(run_survey(task))
            _progress(progress, done, len(tasks), started)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker) as pool:
            futures = [pool.submit(run_survey, task) for task in ordered]
            for done, future in enumerate(as_completed(futures), start=1):
                outcomes.append(future.result())
                _progress(progress, done, len(tasks), started)
    return sorted(outcomes, key=lambda outcome: outcome.index)


def _start_worker() -> None:
    """Import the engine (and fingerprint it) as the worker starts: every survey of a worker runs on it."""
    engine_fingerprint()


def _progress(show: bool, done: int, total: int, started: float) -> None:
    if show and (done == total or done % max(1, total // 20) == 0):
        elapsed = time.perf_counter() - started
        print(f"calibrate: {done}/{total} surveys, {elapsed:.0f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--surveys", type=int, help="simulated surveys (default 1000; --quick: 20)")
    parser.add_argument("--replicates", type=int, help="bootstrap_replicates (default 1000; --quick: 200)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the simulation (default 2024)")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"report file (default {DEFAULT_OUT.relative_to(PROJECT_ROOT)}; --quick: "
        f"{QUICK_OUT.relative_to(PROJECT_ROOT)})",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 surveys, B = 200, about a minute")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    args = parser.parse_args(argv)
    surveys = args.surveys if args.surveys is not None else (20 if args.quick else 1000)
    replicates = args.replicates if args.replicates is not None else (200 if args.quick else 1000)
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    if surveys < 1 or not 1 <= replicates <= 10_000 or not 0 <= args.seed < 2**40 or args.workers < 1:
        parser.error("need --surveys >= 1, 1 <= --replicates <= 10000, 0 <= --seed < 2^40, --workers >= 1")
    version = code_version()
    started = time.perf_counter()
    outcomes = run(plan(surveys, args.seed, replicates), args.workers)
    seconds = time.perf_counter() - started
    report = render(
        outcomes,
        command=shlex.join(["python", "-m", "bench.calibrate", *argv]),
        replicates=replicates,
        seed=args.seed,
        workers=args.workers,
        seconds=seconds,
        today=dt.date.today(),
        version=version,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report, encoding="utf-8")
    print(report)
    print(f"calibrate: wrote {out} ({seconds:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
