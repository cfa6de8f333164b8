"""Calibration of the uncertainty figures: synthetic surveys drawn from known true CRO means, run through
the real pipeline, compared with the truth each figure claims to estimate (docs/method.md, "How sure each
award is", "Calibration").

    .venv/bin/python -m bench.calibrate [--surveys N] [--replicates B] [--seed S] [--out docs/calibration.md]
                                        [--quick] [--workers W]

`make calibrate` runs the default (`KINDS`' counts: 628 surveys, B = 1,000; about 12 minutes on 2 cores at
the load of the last full run, about 23 under a load of 6-9, see "Budget"); `--quick` runs 1 survey of each
kind at B = 1,000 (40-70 s on 2 loaded cores; the large kinds need B = 1,000 to stay near the engine's
threshold: at B = 200 they would be some 630,000 evaluations) and writes to bench/results/calibration_quick.md
unless `--out` is given. `--surveys N` spreads N surveys over the kinds in their proportions (at least one of
each). The report (markdown) goes to `--out` and to standard output.

The data-generating process (issue 21; per survey, all randomness from `numpy.random.default_rng([seed,
survey index])`). It is the harder process under which an independent review found the award probabilities
overconfident, and it REPLACES the earlier one (leniency N(0, 0.3) for all, no halo, blanks U(0.05, 0.30)
per attribute, true means around 3.8): that process has the same structure without the lenient share, the
clustering, the halo or respondent-dependent response, and means further from the top of the scale; the
engine was calibrated under it (docs/calibration.md at commit b3cbd3c keeps its tables). Running both would
halve the surveys the budget allows under the process that matters, and every figure the earlier one checked
is checked here under harsher conditions. The process:
- 36 CROs (the first 36 of surveys/2024.yaml) and three categories of the 2024 questionnaire with their
  attributes (compatibility 3, quality 2, reliability 3; no attribute in two categories);
- a true mean `mu[cro, category]` near the top of the scale, so that clipping at 5 matters: 4.2 for every
  CRO and category ("null": no CRO truly differs), or N(4.2, 0.15) ("spread"), or one planted clear winner
  per category among others ~ N(3.8, 0.15) ("planted", below); plus a fixed offset per attribute,
  N(0, 0.15), shared by all CROs;
- respondents rate 1 + Poisson(2) CROs (at most 10, never one twice), picked by popularity (log-spaced
  weights between 1 and R, R set so that the least popular CRO expects `min_n` evaluations; assigned to
  CROs at random); 40% of respondents are Big Pharma (R&D spend 5000), the others Small Pharma (200);
- respondent leniency L = N(0, 0.35) + 0.6 x lenient, lenient for a random 20% of respondents (the same L
  for every rating a respondent gives; so E[L] = 0.12: leniency is not mean-zero);
- clustering (`Kind.clustered`: every kind but the unclustered null ones): a random third of the CROs (12,
  "favoured") has its popularity weight multiplied by 3 for lenient respondents (weighted sampling without
  replacement, Gumbel top-k), so lenient raters gather on them and leniency is confounded with CRO: about a
  third of a favoured CRO's raters are lenient, about 15% of another's (`lenient_share_among_raters`).
  Unclustered: the same process without the 3x favouring (the favoured third is still drawn, as a label
  only), so lenient raters spread evenly and every CRO's raters are lenient in the population's 20%;
- a halo per evaluation, N(0, 0.3), shared by all attributes of one evaluation;
- a rating is `clip(round(mu + offset + L + halo + e), 1, 5)`, noise e ~ N(0, 0.6);
- response: respondent i answers attribute a with probability 0.35 + 0.62 x expit(alpha_a + u_i), alpha_a
  ~ U(-1, 2) per attribute and survey, u_i ~ N(0, 1) per respondent (combined on the logit scale; every rate
  within 0.35-0.97, mean about 0.72), independent of the rating; a row left with no rating gets one
  attribute back, so that every row is accepted;
- planted: in each category one CRO, drawn from the more popular half (a clear winner must be seen: the least
  popular CROs are not even eligible in Big Pharma at 1,500 evaluations), is made clear ON THE COMPOSITE
  SCALE: its mu is raised (`plant_winners`, bisection) to the least value at which its true composite is at
  least 0.5 above every other CRO's in every cell, under both truths (below), whichever attributes thin
  cells leave out of either composite (`planted_margin`: its least attribute truth minus the others' largest,
  under both truths, at least 0.5). Clipping at 5 caps what a winner can reach (the best of 35 others ~
  N(4.2, 0.15) is already about 4.5 on the rating scale, so 0.5 above it is out of reach): hence the others'
  lower mean, 3.8, and where even a mu of 6 would not do (about 5% of categories), the category's other CROs
  are lowered together by the least shift that makes it do. The realised gap (in the report, per truth) is
  about 0.65 on average, 0.5 at least.

Two truths, named (`TRUTHS`). The *raters' truth* of a composite is what the CRO's own raters (its
sponsors) would rate it on average: the expected rating under the lenient share among that CRO's raters
(`lenient_share_among_raters`, `true_attributes(..., share)`). The *population truth* is what a typical
respondent of the population would: the expected rating at the population's lenient share, E over L (the
two-component mixture), the halo and the noise of clip(round(mu + offset + L + halo + e)), computed exactly:
given the component, mu + offset + L + halo + e is normal with SD sqrt(0.35^2 + 0.3^2 + 0.6^2), so the
expectation is (1 - s) x E_N(mu + offset) + s x E_N(mu + offset + 0.6), each from the normal CDF at the
cut points 1.5 .. 4.5 (`mixture_rating`; s = 0.2 for the population, the CRO's raters' share for the raters'
truth). A composite averages its segment's published attributes of the category: a (segment, CRO,
attribute) cell with fewer than min_cell_size ratings counts nowhere, so such a composite estimates the mean
of the others, and its truth is theirs (`composite_truth`).

Each reading is judged against what it claims to estimate (`READING_TRUTH`, `FIGURE_TRUTH`). The official
and shrunk readings (composite, ci_low / ci_high, p_leader, composite_shrunk, and the awards and p_award of
award_rule official and shrunk) estimate the raters' truth: "the CRO's sponsors rated it highest" is what
they say, and resampling respondents estimates exactly that. The adjusted reading (composite_adjusted and
award_rule adjusted) claims the population truth. "Truly above the threshold", "truly best", "no true
difference" (`null_for`) and the p_award bins all use the truth of the reading.

The bias is reported apart, not hidden. Under clustering a favoured CRO's raters are more lenient than the
population, the others' less, so the official composite converges to the raters' truth and is BIASED
against the population truth (about +0.05 for favoured CROs and -0.03 for the others on the rating scale);
at large n that bias dwarfs the interval. The report keeps (1) the bias table: the raw and the adjusted
composite against the population truth, favoured CROs and others apart, with RMSE and rank correlation
(unclustered kinds as a placebo); (2) the population truth's coverage beside the raters' truth's; and (3) a
labelled diagnostic right after the targets: the official and shrunk readings' award figures against the
population truth (robust champions per cell in the clustered null kinds, robust champions truly above and
leaders truly best in the spread and planted kinds; `diagnostic_table`).

Null kinds. In a clustered null survey the population truth is the same for every CRO but the raters'
truth is not (a favoured CRO's raters are more lenient): "no true difference" would not hold for the
official reading. So the null award kinds that judge every reading are UNCLUSTERED (`null-1500`,
`null-5000`, `null-large`), where both truths are the same for every CRO. Clustered null kinds
(`null-clustered-*`) are added where needed: for the bias table, the diagnostic, and the adjusted
reading's own null target under clustering (a line of its own: its truth, the population's, is still null
there). The coverage, spread and planted kinds stay clustered.

Each survey is written as a CSV export and a YAML (`min_cell_size: 3`, the least the YAML accepts;
`max_rejected_share: 1.0`, `bootstrap_replicates` B, `bootstrap_seed` = seed x 100,000 + survey index)
and run ONCE through `cro_awards.run.pipeline.run_pipeline(load_config(yaml), csv)` in process: every figure is
the published one. Every award rule's awards come from that one run: the run carries every reading's awards
(`PipelineResult.readings`, int_award_readings, whose rows of the award_rule are what awards.sql publishes),
and nothing else the pipeline publishes depends on the award rule (tests/test_calibrate.py checks both).
Survey kinds (`KINDS`):
- coverage surveys (`min_evaluations: 3`, so that every published composite gets its interval; 600, 2,000
  and 6,000 evaluations, resampled exactly, each run a second time in process with
  `cro_awards.method.uncertainty.EXACT_UP_TO_WORK` set to 0, which forces the normal approximation on the same
  survey (composites with n < EXACT_BELOW_EVALUATIONS = 20 are resampled exactly on that path too, as the
  engine always does); and a large size, beyond the engine's EXACT_UP_TO_WORK at B, which takes the
  approximation by the engine's own choice);
- award surveys (`min_evaluations: 10`, the method's value; null (unclustered and clustered), spread and
  planted; 1,500 and 5,000 evaluations and, for null and spread, the large size), each judged under every
  award rule of `AWARD_RULES`: "official", "shrunk" and, when `cro_awards.reading.knobs.AwardRule` accepts it,
  "adjusted".
Whether a survey's own run used exact resampling is decided as the engine decides it (`EXACT_UP_TO_WORK`).

Budget: `make calibrate` must finish in about 20 minutes on the 2 shared cores. The last run with one
pipeline run per award rule (528 surveys, 1,374 runs) took 16.6 minutes; reading every rule from one run
cuts an award survey's cost to about a third, which pays for the clustered null kinds: 50 of each exact
coverage kind, 30 large; 60 of each unclustered null and spread kind of 1,500 and 5,000 evaluations (540
cells each) and 20 of the large ones (180 cells each); 40 of each clustered null kind of 1,500 and 5,000
evaluations and 20 large; 34 of each planted kind (68 surveys, 612 cells: the 600 the planted target is
stated for). 628 surveys, 778 pipeline runs. Measured 2026-12-07 with 100 surveys in these proportions
while other work kept the load at 6-9: 3.6 minutes, which scales to about 23 minutes for the full run; the
coverage surveys, unchanged, took about twice their seconds of the 16.6-minute run there, so at that run's
load about 12 minutes. Targets about the awards are judged pooled over the survey sizes (a kind's cells
alone cannot resolve 0.005 robust champions a cell); the tables give each size.
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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, get_args

import numpy as np
import yaml
from scipy import special, stats

from cro_awards.reading.knobs import AwardRule

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
MEAN = 4.2
"""Near the top of the scale: clipping at 5 matters."""
SPREAD_SD = 0.15
PLANTED_MEAN = 3.8
"""Planted surveys: the other CROs' true means ~ N(PLANTED_MEAN, SPREAD_SD), lower than MEAN, so that a winner
can be PLANTED_GAP clear on the rating scale below its ceiling of 5."""
PLANTED_GAP = 0.5
"""A planted winner's true composite minus the best other CRO's, at least, in every cell, on both truths."""
PLANTED_MU_CAP = 6.0
"""The highest true mean a planted winner is given; where more would be needed the others are lowered."""
ATTRIBUTE_OFFSET_SD = 0.15
LENIENCY_SD = 0.35
LENIENT_SHARE = 0.2
LENIENT_SHIFT = 0.6
N_FAVOURED = N_CROS // 3
"""CROs favoured by lenient respondents (a random third)."""
FAVOURED_FACTOR = 3.0
"""A favoured CRO's popularity weight is multiplied by this for lenient respondents."""
HALO_SD = 0.3
NOISE_SD = 0.6
RATING_SD = math.sqrt(LENIENCY_SD**2 + HALO_SD**2 + NOISE_SD**2)
"""SD of mu + offset + L + halo + e given the leniency component (lenient or not)."""
RESPONSE_RATE = (0.35, 0.97)
ATTRIBUTE_LOGIT = (-1.0, 2.0)
"""An attribute's response on the logit scale, alpha_a ~ U(ATTRIBUTE_LOGIT), per survey."""
PROPENSITY_SD = 1.0
"""A respondent's response propensity on the logit scale, u_i ~ N(0, PROPENSITY_SD)."""
BIG_PHARMA_SHARE = 0.4
EXTRA_CROS_MEAN = 2.0
MAX_CROS_PER_RESPONDENT = 10
RATERS_DRAWS = 50_000
"""Simulated respondents of each type behind `lenient_share_among_raters` (its share is within about 0.005)."""
CHAMPION_SD_MULTIPLIER = 1.0
ROBUST_AWARD_PROBABILITY = 0.8
MIN_CELL_SIZE = 3
"""The least the YAML accepts (the countable-cells rule): a cell of fewer ratings counts nowhere."""
SURVEY_CLOSE = "2024-02-29"
LAST_ENGAGED = "2023-06-15"

AWARD_RULES: tuple[str, ...] = tuple(rule for rule in ("official", "shrunk", "adjusted") if rule in get_args(AwardRule))
"""The award rules (readings) every award survey is judged under: "adjusted" only where the engine's AwardRule
has it."""

TRUTHS: dict[str, str] = {
    "raters": "raters' truth",
    "population": "population truth",
}
"""The two truths (module docstring): what the CRO's own raters would rate on average, and what a typical
respondent of the population would."""
READING_TRUTH: dict[str, str] = {"official": "raters", "shrunk": "raters", "adjusted": "population"}
"""Award rule (reading) -> the truth it is judged against: the one it claims to estimate."""
FIGURE_TRUTH: dict[str, str] = {
    "composite": "raters",
    "ci_low / ci_high": "raters",
    "p_leader": "raters",
    "composite_shrunk": "raters",
    "composite_adjusted": "population",
}
"""Published figure -> the truth it estimates (the bias table judges composite and composite_adjusted both
against the population truth, to show the raw composite's bias)."""

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

PATHS = ("exact", "approximate")

TARGET_COVERAGE = 0.93
"""Issue 21: coverage of at least this at every n >= 3, on both paths."""
TARGET_NULL_ROBUST_CHAMPIONS = 0.005
"""Robust champions per cell when no CRO truly differs: at most this."""
TARGET_ROBUST_CHAMPIONS_ABOVE = 0.92
"""Share of robust champions truly above the threshold (spread): at least this."""
TARGET_P_AWARD_GAP = 0.05
"""Each p_award bin: |mean p_award - observed rate| at most this."""
MIN_BIN_AWARDS = 30
"""A p_award bin with fewer awards is shown but not judged."""
TARGET_PLANTED = (598, 600)
"""Planted cells whose winner has p_leader >= PLANTED_P_LEADER and is a robust leader: at least 598 of 600."""
PLANTED_P_LEADER = 0.9

LARGE_MIN_EVALUATIONS = 25_000
LARGE_MARGIN = 1.2
"""A large survey has at least LARGE_MIN_EVALUATIONS evaluations and LARGE_MARGIN x the work the engine resamples
exactly at the run's replicates, so that it takes the normal approximation."""

P_AWARD_BINS = ((0.0, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.0 + 1e-9))


@dataclass(frozen=True)
class Kind:
    """One kind of simulated survey."""

    name: str
    scenario: str  # "null" (every CRO alike), "spread" (true means ~ N(4.2, 0.15)) or "planted" (spread + winners)
    n_evaluations: int  # 0: large (see `large_size`)
    min_n: float  # expected overall evaluations of the least popular CRO
    min_evaluations: int
    awards: bool  # award statistics (every award rule's, from the one run)
    surveys: int = 1  # surveys of this kind in a full run
    force_approximation: bool = False  # also run with the normal approximation forced (EXACT_UP_TO_WORK = 0)
    clustered: bool = True  # lenient respondents favour a third of the CROs (else spread evenly over all)


KINDS: tuple[Kind, ...] = (
    Kind("coverage-600", "spread", 600, 2.5, 3, False, 50, True),
    Kind("coverage-2000", "spread", 2000, 2.5, 3, False, 50, True),
    Kind("coverage-6000", "spread", 6000, 2.5, 3, False, 50, True),
    Kind("coverage-large", "spread", 0, 2.5, 3, False, 30),
    Kind("null-1500", "null", 1500, 12, 10, True, 60, clustered=False),
    Kind("spread-1500", "spread", 1500, 12, 10, True, 60),
    Kind("null-5000", "null", 5000, 12, 10, True, 60, clustered=False),
    Kind("spread-5000", "spread", 5000, 12, 10, True, 60),
    Kind("null-large", "null", 0, 12, 10, True, 20, clustered=False),
    Kind("spread-large", "spread", 0, 12, 10, True, 20),
    Kind("planted-1500", "planted", 1500, 12, 10, True, 34),
    Kind("planted-5000", "planted", 5000, 12, 10, True, 34),
    Kind("null-clustered-1500", "null", 1500, 12, 10, True, 40),
    Kind("null-clustered-5000", "null", 5000, 12, 10, True, 40),
    Kind("null-clustered-large", "null", 0, 12, 10, True, 20),
)


def null_for(kind: Kind, truth: str) -> bool:
    """Whether no CRO truly differs in a survey of `kind` against `truth` ("raters" or "population"): a null
    survey's population truth is the same for every CRO; its raters' truth only without clustering (with it,
    a favoured CRO's raters are more lenient than another's)."""
    return kind.scenario == "null" and (truth == "population" or not kind.clustered)


# --- the truths -----------------------------------------------------------------------------------------


def expected_rating(mu: Any, sd: float = RATING_SD, scale: tuple[int, int] = SCALE) -> np.ndarray:
    """E[clip(round(mu + Z), low, high)] with Z ~ N(0, sd): low + the sum over the cut points j + 0.5
    (j = low .. high - 1) of P(mu + Z >= j + 0.5)."""
    mu = np.asarray(mu, dtype=np.float64)
    low, high = scale
    cuts = np.arange(low, high) + 0.5
    return low + special.ndtr((mu[..., None] - cuts) / sd).sum(axis=-1)


def mixture_rating(mu: Any, lenient_share: Any = LENIENT_SHARE) -> np.ndarray:
    """E[clip(round(mu + L + halo + e), 1, 5)] with L = N(0, LENIENCY_SD) + LENIENT_SHIFT x lenient, lenient
    with probability `lenient_share` (broadcast against mu): exact, the two components' normal expectations
    mixed. The population truth at LENIENT_SHARE; a CRO's raters' at their share."""
    share = np.asarray(lenient_share, dtype=np.float64)
    return (1.0 - share) * expected_rating(mu) + share * expected_rating(np.asarray(mu) + LENIENT_SHIFT)


def true_attributes(mu: np.ndarray, offsets: np.ndarray, lenient_share: Any = LENIENT_SHARE) -> np.ndarray:
    """CROs x attributes: the expected attribute score, by default of a random respondent of the population;
    `lenient_share` per CRO (an array) gives each CRO's raters' expectation instead."""
    share = np.asarray(lenient_share, dtype=np.float64)
    return mixture_rating(mu[:, ATTRIBUTE_CATEGORY] + offsets[None, :], share[:, None] if share.ndim else share)


def true_composites(mu: np.ndarray, offsets: np.ndarray, lenient_share: Any = LENIENT_SHARE) -> np.ndarray:
    """CROs x categories: the mean over the category's attributes of the expected attribute score (a
    composite whose every attribute cell is countable)."""
    per_attribute = true_attributes(mu, offsets, lenient_share)
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


def planted_margin(
    mu: np.ndarray, winner: int, k: int, offsets: np.ndarray, raters_share: np.ndarray
) -> tuple[float, float]:
    """(the least, over the attributes of category k and both truths, of CRO `winner`'s expected attribute
    score; the largest of every other CRO's). Their difference bounds the winner's true composite minus
    any other CRO's from below in every cell, on both truths, whichever attributes thin cells leave out of
    either composite (a composite averages some of its CRO's attribute truths)."""
    attributes = k == ATTRIBUTE_CATEGORY
    others = np.arange(len(mu)) != winner
    latent = mu[others, k][:, None] + offsets[attributes][None, :]
    best_other = max(
        float(mixture_rating(latent, LENIENT_SHARE).max()),
        float(mixture_rating(latent, raters_share[others][:, None]).max()),
    )
    own = mu[winner, k] + offsets[attributes]
    least = min(float(mixture_rating(own, LENIENT_SHARE).min()), float(mixture_rating(own, raters_share[winner]).min()))
    return least, best_other


def plant_winners(
    mu: np.ndarray,
    planted: np.ndarray,
    offsets: np.ndarray,
    raters_share: np.ndarray,
    gap: float = PLANTED_GAP,
    cap: float = PLANTED_MU_CAP,
) -> np.ndarray:
    """mu with, in each category k, CRO planted[k]'s true mean raised (bisection) to the least value at which
    its true composite is at least `gap` above every other CRO's in every cell, on the population truth and
    on the raters' truth (`planted_margin`'s bound at least `gap`). Clipping at 5 caps what a winner can
    reach: where even `cap` is not enough, the category's other CROs are lowered together by the least shift
    (bisection) that makes `cap` enough."""
    mu = mu.copy()
    others = np.arange(len(mu))

    def margin(values: np.ndarray, winner: int, k: int) -> float:
        least, best_other = planted_margin(values, winner, k, offsets, raters_share)
        return least - best_other

    for k, winner in enumerate(planted.tolist()):
        rest = others != winner
        mu[winner, k] = cap
        if margin(mu, winner, k) < gap:
            low, high = 0.0, cap
            for _ in range(60):
                middle = (low + high) / 2
                trial = mu.copy()
                trial[rest, k] -= middle
                low, high = (low, middle) if margin(trial, winner, k) >= gap else (middle, high)
            mu[rest, k] -= high
        low, high = float(mu[rest, k].max()), cap
        for _ in range(60):
            mu[winner, k] = (low + high) / 2
            low, high = (low, mu[winner, k]) if margin(mu, winner, k) >= gap else (mu[winner, k], high)
        mu[winner, k] = high
    return mu


# --- drawing and writing a survey ------------------------------------------------------------------------


@cache
def cro_names() -> tuple[str, ...]:
    config = yaml.safe_load(SOURCE_CONFIG.read_text(encoding="utf-8"))
    return tuple(cro["name"] for cro in config["cros"][:N_CROS])


@cache
def attribute_labels() -> dict[str, str]:
    config = yaml.safe_load(SOURCE_CONFIG.read_text(encoding="utf-8"))
    return {a: config["attributes"][a] for a in ATTRIBUTES}


def response_rates(attribute_logit: np.ndarray, propensity: np.ndarray) -> np.ndarray:
    """Respondents x attributes: the probability that respondent i answers attribute a, RESPONSE_RATE's low
    + its range x expit(alpha_a + u_i): within RESPONSE_RATE whatever alpha and u."""
    low, high = RESPONSE_RATE
    return low + (high - low) * special.expit(propensity[:, None] + attribute_logit[None, :])


@cache
def mean_response_rate() -> float:
    """E[response rate] over alpha ~ U(ATTRIBUTE_LOGIT) and u ~ N(0, PROPENSITY_SD) (quadrature)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    alpha = np.linspace(*ATTRIBUTE_LOGIT, 401)
    rates = response_rates(alpha, PROPENSITY_SD * nodes)  # nodes x alpha
    return float(weights @ np.trapezoid(rates, alpha, axis=1) / (weights.sum() * (alpha[-1] - alpha[0])))


def expected_ratings_per_evaluation() -> float:
    return len(ATTRIBUTES) * mean_response_rate()


def large_size(replicates: int) -> int:
    """Evaluations of a large survey: enough for the engine's normal approximation at `replicates`."""
    from cro_awards.method.uncertainty import EXACT_UP_TO_WORK

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


def choose_cros(
    rng: np.random.Generator,
    weights: np.ndarray,
    favoured: np.ndarray,
    lenient: np.ndarray,
    per_respondent: np.ndarray,
    factor: float = FAVOURED_FACTOR,
) -> tuple[np.ndarray, np.ndarray]:
    """(respondent, cro) per evaluation: each respondent's CROs drawn without replacement by popularity, a
    favoured CRO's weight multiplied by `factor` for a lenient respondent (Gumbel top-k: the k largest of log
    weight + Gumbel noise). `factor` 1: no clustering."""
    plain = np.log(weights)
    boosted = plain + math.log(factor) * favoured
    keys = np.where(lenient[:, None], boosted[None, :], plain[None, :]) + rng.gumbel(size=(len(lenient), len(weights)))
    order = np.argsort(-keys, axis=1)
    respondent, position = np.nonzero(np.arange(len(weights))[None, :] < per_respondent[:, None])
    return respondent, order[respondent, position]


def lenient_share_among_raters(
    weights: np.ndarray, favoured: np.ndarray, rng: np.random.Generator, draws: int = RATERS_DRAWS
) -> np.ndarray:
    """Per CRO: the expected share of lenient respondents among its raters (each rater rates it once), from
    `draws` simulated respondents of each type: LENIENT_SHARE x P_lenient(c) / (LENIENT_SHARE x P_lenient(c)
    + (1 - LENIENT_SHARE) x P_other(c)), P_type(c) the chance that a respondent of the type rates c."""
    rated = []
    for lenient in (False, True):
        picks = np.minimum(1 + rng.poisson(EXTRA_CROS_MEAN, draws), MAX_CROS_PER_RESPONDENT)
        _, cro = choose_cros(rng, weights, favoured, np.full(draws, lenient), picks)
        rated.append(np.bincount(cro, minlength=len(weights)) / draws)
    other, lenient_rated = rated
    lenient_mass = LENIENT_SHARE * lenient_rated
    return lenient_mass / np.maximum(lenient_mass + (1.0 - LENIENT_SHARE) * other, 1e-300)


@dataclass
class Survey:
    """A drawn survey: one row per evaluation, and the truths."""

    index: int
    kind: Kind
    respondent: np.ndarray  # per evaluation
    big_pharma: np.ndarray  # per respondent
    lenient: np.ndarray  # per respondent
    rates: np.ndarray  # respondents x ATTRIBUTES: response probabilities
    cro: np.ndarray  # per evaluation, 0 .. N_CROS - 1
    ratings: np.ndarray  # evaluations x ATTRIBUTES, NaN = blank
    favoured: np.ndarray  # per CRO: favoured by lenient respondents (a label only when not clustered)
    planted: np.ndarray  # per category: the planted winner's CRO index, or -1
    mu: np.ndarray  # N_CROS x categories: the true means
    offsets: np.ndarray  # per attribute
    truth: np.ndarray  # N_CROS x categories (every attribute): the population truth
    attribute_truth: np.ndarray  # N_CROS x ATTRIBUTES: the population truth
    raters_share: np.ndarray  # per CRO: the expected lenient share among its raters (LENIENT_SHARE unclustered)
    raters_attribute_truth: np.ndarray  # N_CROS x ATTRIBUTES: the expectation under the CRO's raters

    @property
    def n_evaluations(self) -> int:
        return len(self.cro)

    @property
    def n_ratings(self) -> int:
        return int((~np.isnan(self.ratings)).sum())


def draw_survey(kind: Kind, index: int, seed: int, n_evaluations: int) -> Survey:
    """Draw one survey of `kind` with `n_evaluations` rows (module docstring, the data-generating process)."""
    rng = np.random.default_rng([seed, index])
    n_categories = len(CATEGORIES)
    if kind.scenario == "null":
        mu = np.full((N_CROS, n_categories), MEAN)
    else:
        mean = PLANTED_MEAN if kind.scenario == "planted" else MEAN
        mu = rng.normal(mean, SPREAD_SD, (N_CROS, n_categories))
    offsets = rng.normal(0.0, ATTRIBUTE_OFFSET_SD, len(ATTRIBUTES))
    attribute_logit = rng.uniform(*ATTRIBUTE_LOGIT, len(ATTRIBUTES))
    weights = rng.permutation(popularity(n_evaluations, kind.min_n))
    favoured = np.zeros(N_CROS, dtype=bool)
    favoured[rng.choice(N_CROS, N_FAVOURED, replace=False)] = True
    factor = FAVOURED_FACTOR if kind.clustered else 1.0
    # Without clustering every CRO's raters are lenient in the population's share (each type of respondent
    # picks CROs alike), exactly.
    raters_share = (
        lenient_share_among_raters(weights, favoured, np.random.default_rng([seed, index, 1]))
        if kind.clustered
        else np.full(N_CROS, LENIENT_SHARE)
    )
    planted = np.full(n_categories, -1)
    if kind.scenario == "planted":
        popular = np.flatnonzero(weights >= np.median(weights))
        planted = rng.choice(popular, n_categories, replace=False)
        mu = plant_winners(mu, planted, offsets, raters_share)

    per_respondent = np.minimum(1 + rng.poisson(EXTRA_CROS_MEAN, n_evaluations), MAX_CROS_PER_RESPONDENT)
    total = np.cumsum(per_respondent)
    n_respondents = int(np.searchsorted(total, n_evaluations)) + 1
    per_respondent = per_respondent[:n_respondents]
    per_respondent[-1] -= int(total[n_respondents - 1]) - n_evaluations
    lenient = rng.random(n_respondents) < LENIENT_SHARE
    respondent, cro = choose_cros(rng, weights, favoured, lenient, per_respondent, factor)

    leniency = rng.normal(0.0, LENIENCY_SD, n_respondents) + LENIENT_SHIFT * lenient
    big_pharma = rng.random(n_respondents) < BIG_PHARMA_SHARE
    halo = rng.normal(0.0, HALO_SD, n_evaluations)
    latent = (
        mu[cro][:, ATTRIBUTE_CATEGORY]
        + offsets[None, :]
        + (leniency[respondent] + halo)[:, None]
        + rng.normal(0.0, NOISE_SD, (n_evaluations, len(ATTRIBUTES)))
    )
    ratings = np.clip(np.rint(latent), *SCALE)
    rates = response_rates(attribute_logit, rng.normal(0.0, PROPENSITY_SD, n_respondents))
    missing = rng.random(ratings.shape) >= rates[respondent]
    empty = np.flatnonzero(missing.all(axis=1))
    missing[empty, rng.integers(0, len(ATTRIBUTES), len(empty))] = False
    ratings[missing] = np.nan
    return Survey(
        index=index,
        kind=kind,
        respondent=respondent,
        big_pharma=big_pharma,
        lenient=lenient,
        rates=rates,
        cro=cro,
        ratings=ratings,
        favoured=favoured,
        planted=planted,
        mu=mu,
        offsets=offsets,
        truth=true_composites(mu, offsets),
        attribute_truth=true_attributes(mu, offsets),
        raters_share=raters_share,
        raters_attribute_truth=true_attributes(mu, offsets, raters_share),
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
    """12 hex digits of sha256 over cro_awards/method/uncertainty.py as this process imported it (read once, right
    after the import) and sql/*.sql as they are now (the SQL is read at every run): which engine a survey
    ran on, so that a change to the engine during a run shows in the report."""
    if "engine" not in _IMPORTED:
        import cro_awards.run.pipeline  # noqa: F401 - imports cro_awards.method.uncertainty, as a run does
        from cro_awards.method import uncertainty

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
class Intervals:
    """One run's published intervals (eligible composites with one) against the truths: the raters' truth,
    which the official composite and its resampling estimate, and the population truth (a diagnostic)."""

    path: str  # "exact" or "approximate"
    forced: bool  # the approximation forced in process on a survey the engine would resample exactly
    n: np.ndarray  # n_evaluations per composite
    below: np.ndarray  # the raters' truth < ci_low
    above: np.ndarray  # the raters' truth > ci_high
    population_below: np.ndarray  # the population truth < ci_low
    population_above: np.ndarray  # the population truth > ci_high
    width: np.ndarray


@dataclass
class Estimates:
    """Per eligible composite of the official run: the estimates and the truths."""

    cell: np.ndarray  # a number per (segment, category) of the survey
    favoured: np.ndarray  # the CRO is favoured by lenient respondents
    truth: np.ndarray
    raters_truth: np.ndarray
    raw: np.ndarray  # composite
    adjusted: np.ndarray | None  # composite_adjusted, where composite_scores has it


@dataclass
class Outcome:
    """What one survey contributes: its runs' intervals, its estimates and its award cells."""

    index: int
    kind: str
    scenario: str
    n_evaluations: int
    exact: bool  # the engine's own choice for this survey
    seconds: float
    engine: str
    intervals: list[Intervals] = field(default_factory=list)
    estimates: Estimates | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)


def _rows(table: Any) -> list[dict[str, Any]]:
    return table.to_pylist()


def interval_records(
    composites: list[dict[str, Any]],
    truth: dict[tuple[str, str, str], float],
    raters_truth: dict[tuple[str, str, str], float],
    path: str,
    forced: bool = False,
) -> Intervals:
    """The eligible composites with an interval (`composites`: published composite_scores rows) against
    the population truth (`truth`) and the raters' truth (`composite_truth` of each)."""
    with_interval = [row for row in composites if row["is_eligible"] and row["ci_low"] is not None]
    keys = [(row["segment"], row["cro"], row["category"]) for row in with_interval]
    true = np.array([truth[key] for key in keys], dtype=np.float64)
    raters = np.array([raters_truth[key] for key in keys], dtype=np.float64)
    low = np.array([row["ci_low"] for row in with_interval], dtype=np.float64)
    high = np.array([row["ci_high"] for row in with_interval], dtype=np.float64)
    return Intervals(
        path=path,
        forced=forced,
        n=np.array([row["n_evaluations"] for row in with_interval], dtype=np.int64),
        below=raters < low,
        above=raters > high,
        population_below=true < low,
        population_above=true > high,
        width=high - low,
    )


def composite_estimates(
    table: Any,
    truth: dict[tuple[str, str, str], float],
    raters_truth: dict[tuple[str, str, str], float],
    favoured: set[str],
) -> Estimates:
    """The eligible composites of a composite_scores table (Arrow), with `composite_adjusted` if it has it."""
    adjusted = "composite_adjusted" in table.column_names
    rows = [row for row in _rows(table) if row["is_eligible"]]
    cells: dict[tuple[str, str], int] = {}
    keys = [(row["segment"], row["cro"], row["category"]) for row in rows]
    return Estimates(
        cell=np.array([cells.setdefault((key[0], key[2]), len(cells)) for key in keys], dtype=np.int64),
        favoured=np.array([key[1] in favoured for key in keys], dtype=bool),
        truth=np.array([truth[key] for key in keys], dtype=np.float64),
        raters_truth=np.array([raters_truth[key] for key in keys], dtype=np.float64),
        raw=np.array([row["composite"] for row in rows], dtype=np.float64),
        adjusted=(
            np.array([math.nan if row["composite_adjusted"] is None else row["composite_adjusted"] for row in rows])
            if adjusted
            else None
        ),
    )


def _rule_record(
    rows: list[dict[str, Any]], best: str, truly: dict[str, bool], winner: str | None, p_leader: float | None
) -> dict[str, Any]:
    """One rule's awards of one cell against one truth (`best`: the truly best CRO, `truly`: CRO -> truly
    above the threshold, both under that truth; `p_leader`: the planted winner's)."""
    leaders = [row for row in rows if row["award"] == "leader"]
    champions = [row for row in rows if row["award"] == "champion"]
    record = {
        "true_champions": sum(truly.values()),
        "leaders": len(leaders),
        "leader_best": sum(row["cro"] == best for row in leaders) / len(leaders) if leaders else math.nan,
        "leader_p": [row["p_award"] for row in leaders],
        "leader_is_best": [row["cro"] == best for row in leaders],
        "robust_leaders": sum(bool(row["is_robust"]) for row in leaders),
        "robust_leaders_best": sum(bool(row["is_robust"]) and row["cro"] == best for row in leaders),
        "champions": len(champions),
        "champions_above": sum(truly[row["cro"]] for row in champions),
        "champion_p": [row["p_award"] for row in champions],
        "champion_is_above": [truly[row["cro"]] for row in champions],
        "robust_champions": sum(bool(row["is_robust"]) for row in champions),
        "robust_champions_above": sum(bool(row["is_robust"]) and truly[row["cro"]] for row in champions),
    }
    if winner is not None:
        record["planted_leader"] = any(row["cro"] == winner for row in leaders)
        record["planted_robust_leader"] = any(row["cro"] == winner and bool(row["is_robust"]) for row in leaders)
        record["planted_p_leader"] = math.nan if p_leader is None else float(p_leader)
    return record


def cell_records(
    composites: list[dict[str, Any]],
    awards: dict[str, list[dict[str, Any]]],
    truths: dict[str, dict[tuple[str, str, str], float]],
    planted: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Per cell with awards (those of the official reading): how each reading's awards compare with the
    truth it claims to estimate (`READING_TRUTH`), in "rules"; and, in "population", the readings judged
    against the raters' truth judged against the population truth instead (the diagnostic).
    `composites`: the run's composite_scores rows (p_leader is read there; it does not depend on the award
    rule); `awards[rule]`: the reading's awards rows; `truths[name][(segment, cro, category)]`:
    `composite_truth` under each of TRUTHS; `planted`: category -> the planted winner's CRO id."""
    p_leaders = {(row["segment"], row["cro"], row["category"]): row["p_leader"] for row in composites}
    eligible: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in composites:
        if row["is_eligible"]:
            eligible[row["segment"], row["category"]].append(row)
    by_rule: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for rule, rows in awards.items():
        by_rule[rule] = defaultdict(list)
        for row in rows:
            by_rule[rule][row["segment"], row["category"]].append(row)
    records = []
    for cell in sorted(by_rule["official"]):
        members = eligible[cell]
        cros = [row["cro"] for row in members]
        weights = np.array([row["n_evaluations"] for row in members], dtype=np.float64)
        true = {name: np.array([truths[name][cell[0], cro, cell[1]] for cro in cros]) for name in TRUTHS}
        best = {name: cros[int(np.argmax(values))] for name, values in true.items()}
        truly = {
            name: dict(zip(cros, champion_truth(values, weights).tolist(), strict=True))
            for name, values in true.items()
        }
        co_leaders = [row["cro"] for row in members if row["is_co_leader"]]
        shrunk_values = [row["composite_shrunk"] for row in members]
        winner = planted.get(cell[1]) if planted else None
        p_leader = p_leaders.get((cell[0], winner, cell[1]))
        judged = {
            (rule, truth): _rule_record(rows[cell], best[truth], truly[truth], winner, p_leader)
            for rule, rows in by_rule.items()
            for truth in TRUTHS
        }
        record: dict[str, Any] = {
            "cell": cell,
            "eligible": len(members),
            "tau_zero": max(shrunk_values) - min(shrunk_values) <= 1e-9,
            "co_leaders": len(co_leaders),
            # The co-leaders come from the official composite's resampling: the raters' truth.
            "co_leaders_hold_best": best["raters"] in co_leaders,
            "true_champions": {name: sum(values.values()) for name, values in truly.items()},
            "rules": {rule: judged[rule, READING_TRUTH[rule]] for rule in by_rule},
            "population": {rule: judged[rule, "population"] for rule in by_rule if READING_TRUTH[rule] != "population"},
        }
        if winner is not None:
            position = cros.index(winner) if winner in cros else -1
            record["planted_eligible"] = position >= 0
            record["planted_gap"] = {
                name: float(values[position] - np.delete(values, position).max()) if position >= 0 else math.nan
                for name, values in true.items()
            }
        records.append(record)
    return records


def reading_awards(result: Any) -> dict[str, list[dict[str, Any]]]:
    """Award rule -> the awards that reading names (AWARD_RULES' order), from a run's
    `PipelineResult.readings` (int_award_readings: the rows awards.sql publishes for that award_rule)."""
    if result.readings is None:
        raise RuntimeError("the pipeline result carries no readings (int_award_readings)")
    found: dict[str, list[dict[str, Any]]] = {rule: [] for rule in AWARD_RULES}
    for row in _rows(result.readings):
        if row["reading"] in found:
            found[row["reading"]].append(row)
    return found


@contextmanager
def approximation_forced() -> Iterator[None]:
    """Within it, `cro_awards.method.uncertainty.EXACT_UP_TO_WORK` is 0: every survey takes the normal approximation
    (composites with n < EXACT_BELOW_EVALUATIONS still resampled exactly, as the engine does). In process."""
    from cro_awards.method import uncertainty

    saved = uncertainty.EXACT_UP_TO_WORK
    uncertainty.EXACT_UP_TO_WORK = 0
    try:
        yield
    finally:
        uncertainty.EXACT_UP_TO_WORK = saved


def run_survey(task: tuple[Kind, int, int, int, int]) -> Outcome:
    """Draw survey `index` of `kind`, run it through the pipeline (once; once more with the approximation
    forced for the kinds that ask for it), and compare the published figures with the truths. Every award
    rule's awards come from the one run: the run carries every reading's awards (`PipelineResult.readings`,
    int_award_readings, of which awards.sql publishes the award_rule's rows), and nothing else the pipeline
    publishes depends on the award rule."""
    from cro_awards.method import uncertainty
    from cro_awards.reading.config import derive_id, load_config
    from cro_awards.run.pipeline import run_pipeline

    kind, index, seed, replicates, n_evaluations = task
    logging.getLogger("cro_awards").setLevel(logging.WARNING)
    started = time.perf_counter()
    engine = engine_fingerprint()
    survey = draw_survey(kind, index, seed, n_evaluations)
    # The engine's own test (uncertainty.analyse): every rating of an accepted evaluation counts once per
    # segment it is in (its own and overall).
    exact = 2 * survey.n_ratings * replicates <= uncertainty.EXACT_UP_TO_WORK
    forced = None
    with tempfile.TemporaryDirectory(prefix="cro-calibrate-") as folder:
        yaml_path, csv_path = write_survey(survey, Path(folder), replicates, seed * 100_000 + index)
        result = run_pipeline(load_config(yaml_path), csv_path)
        if result.counts["accepted"] != survey.n_evaluations:
            raise RuntimeError(f"survey {index}: {result.counts} (every generated row should be accepted)")
        if kind.force_approximation and exact:
            with approximation_forced():
                forced = run_pipeline(load_config(yaml_path), csv_path)
    ids = [derive_id(name) for name in cro_names()]  # the tables key on ids
    index_of = {cro: code for code, cro in enumerate(ids)}
    official = result.tables
    attribute_rows = _rows(official["attribute_scores"])
    truth = composite_truth(survey.attribute_truth, attribute_rows, index_of)
    raters_truth = composite_truth(survey.raters_attribute_truth, attribute_rows, index_of)
    composites = _rows(official["composite_scores"])
    outcome = Outcome(
        index=index,
        kind=kind.name,
        scenario=kind.scenario,
        n_evaluations=survey.n_evaluations,
        exact=exact,
        seconds=0.0,
        engine=engine,
        intervals=[interval_records(composites, truth, raters_truth, "exact" if exact else "approximate")],
        estimates=composite_estimates(
            official["composite_scores"], truth, raters_truth, {ids[c] for c in np.flatnonzero(survey.favoured)}
        ),
    )
    if forced is not None:
        forced_rows = _rows(forced.tables["composite_scores"])
        outcome.intervals.append(interval_records(forced_rows, truth, raters_truth, "approximate", forced=True))
    if kind.awards:
        planted = (
            {category: ids[cro] for category, cro in zip(CATEGORIES, survey.planted.tolist(), strict=True)}
            if kind.scenario == "planted"
            else None
        )
        outcome.cells = cell_records(
            composites, reading_awards(result), {"raters": raters_truth, "population": truth}, planted
        )
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


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(values) / len(values) if values else math.nan


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _total(cells: list[dict[str, Any]], name: str) -> float:
    return sum(cell[name] for cell in cells)


def coverage_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Per n bin (and all bins together), per path (exact, approximate): composites, surveys (runs forced
    to the approximation among them), coverage of the raters' truth (what the interval estimates) and, as a
    diagnostic, of the population truth, with their SEs (surveys as clusters), the shares of the raters'
    truth missed below and above, the mean interval width."""
    rows = []
    for low, high, label in (*BINS, (BINS[0][0], math.inf, f"{BINS[0][0]}+ (all)")):
        row: dict[str, Any] = {"bin": label, "all": high == math.inf and label.endswith("(all)")}
        for path in PATHS:
            runs = [interval for o in outcomes for interval in o.intervals if interval.path == path]
            masks = [(run.n >= low) & (run.n < high) for run in runs]
            counts = np.array([mask.sum() for mask in masks], dtype=np.float64)
            hits = np.array([(m & ~r.below & ~r.above).sum() for m, r in zip(masks, runs, strict=True)], np.float64)
            population = np.array(
                [(m & ~r.population_below & ~r.population_above).sum() for m, r in zip(masks, runs, strict=True)],
                np.float64,
            )
            share, se = _cluster_share(hits, counts)
            population_share, population_se = _cluster_share(population, counts)
            total = counts.sum()
            row[path] = {
                "composites": int(total),
                "surveys": int((counts > 0).sum()),
                "forced": sum(1 for run, count in zip(runs, counts, strict=True) if run.forced and count > 0),
                "coverage": share,
                "se": se,
                "population_coverage": population_share,
                "population_se": population_se,
                "below": _ratio(sum(int((m & r.below).sum()) for m, r in zip(masks, runs, strict=True)), total),
                "above": _ratio(sum(int((m & r.above).sum()) for m, r in zip(masks, runs, strict=True)), total),
                "width": _ratio(sum(float(r.width[m].sum()) for m, r in zip(masks, runs, strict=True)), total),
            }
        rows.append(row)
    return rows


def _rank_correlations(outcome: Outcome, values: np.ndarray) -> list[float]:
    """Spearman's correlation of `values` with the population truth within each cell of at least 3 eligible
    CROs."""
    estimates = outcome.estimates
    found = []
    for cell in np.unique(estimates.cell):
        members = (estimates.cell == cell) & np.isfinite(values)
        if members.sum() >= 3 and np.ptp(estimates.truth[members]) > 1e-9:
            found.append(float(stats.spearmanr(values[members], estimates.truth[members]).statistic))
    return found


def bias_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Per survey kind: the raw composite's error against the population truth (favoured CROs and the others
    apart), what the raters' lenient share predicts for it (raters' truth - population truth), its RMSE and
    rank correlation with the population truth within cells (not for null surveys: no true ranking); the same
    for composite_adjusted where the output has it."""
    rows = []
    for kind in KINDS:
        chosen = [o for o in outcomes if o.kind == kind.name and o.estimates is not None]
        if not chosen:
            continue
        favoured = np.concatenate([o.estimates.favoured for o in chosen])
        truth = np.concatenate([o.estimates.truth for o in chosen])
        expected = np.concatenate([o.estimates.raters_truth for o in chosen]) - truth
        row: dict[str, Any] = {
            "kind": kind.name,
            "surveys": len(chosen),
            "composites": len(truth),
            "favoured": int(favoured.sum()),
            "clustered": kind.clustered,
            "expected": {"favoured": _nanmean(expected[favoured]), "others": _nanmean(expected[~favoured])},
        }
        for name in ("raw", "adjusted"):
            if any(getattr(o.estimates, name) is None for o in chosen):
                row[name] = None
                continue
            values = [getattr(o.estimates, name) for o in chosen]
            error = np.concatenate(values) - truth
            ranks = (
                []
                if kind.scenario == "null"
                else [r for o, v in zip(chosen, values, strict=True) for r in _rank_correlations(o, v)]
            )
            row[name] = {
                "favoured": _nanmean(error[favoured]),
                "others": _nanmean(error[~favoured]),
                "rmse": math.sqrt(_nanmean(error**2)),
                "rank": _mean(ranks),
            }
        rows.append(row)
    return rows


def _nanmean(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def rules_of(outcomes: list[Outcome]) -> list[str]:
    """The award rules the outcomes' award cells were run with, in AWARD_RULES' order."""
    found = {rule for o in outcomes for cell in o.cells for rule in cell["rules"]}
    return [rule for rule in AWARD_RULES if rule in found] + sorted(found - set(AWARD_RULES))


def _summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One reading's award records (`_rule_record`, one per cell, all against one truth), pooled."""
    cells = len(records)

    def total(name: str) -> float:
        return sum(record[name] for record in records)

    return {
        "cells": cells,
        "leaders": _ratio(total("leaders"), cells),
        "leader_best": _mean([record["leader_best"] for record in records]),
        "leader_p": _mean([p for record in records for p in record["leader_p"]]),
        "robust_leaders": _ratio(total("robust_leaders"), cells),
        "robust_leaders_total": total("robust_leaders"),
        "robust_leaders_best_total": total("robust_leaders_best"),
        "robust_leader_best": _ratio(total("robust_leaders_best"), total("robust_leaders")),
        "champions": _ratio(total("champions"), cells),
        "champions_above": _ratio(total("champions_above"), total("champions")),
        "champions_found": _ratio(total("champions_above"), total("true_champions")),
        "champion_p": _mean([p for record in records for p in record["champion_p"]]),
        "robust_champions": _ratio(total("robust_champions"), cells),
        "robust_champions_total": total("robust_champions"),
        "robust_champions_above_total": total("robust_champions_above"),
        "robust_champions_above": _ratio(total("robust_champions_above"), total("robust_champions")),
        "robust_champions_found": _ratio(total("robust_champions_above"), total("true_champions")),
    }


def kind_of(name: str) -> Kind | None:
    return next((kind for kind in KINDS if kind.name == name), None)


def award_tables(outcomes: list[Outcome]) -> dict[str, list[dict[str, Any]]]:
    """ "cells": per award kind, what does not depend on the rule; "rules": per award kind and rule, the
    reading's awards against its own truth (`READING_TRUTH`), pooled over the cells; "population": per award
    kind and rule judged against the raters' truth, the same against the population truth (the diagnostic:
    what the official reading's figures would look like against the truth it does not claim)."""
    tables: dict[str, list[dict[str, Any]]] = {"cells": [], "rules": [], "population": []}
    for kind in KINDS:
        chosen = [o for o in outcomes if o.kind == kind.name]
        cells = [cell for o in chosen for cell in o.cells]
        if not kind.awards or not chosen or not cells:
            continue
        tables["cells"].append(
            {
                "kind": kind.name,
                "scenario": kind.scenario,
                "clustered": kind.clustered,
                "surveys": len(chosen),
                "evaluations": _mean([o.n_evaluations for o in chosen]),
                "path": ", ".join(sorted({"exact" if o.exact else "approximate" for o in chosen})),
                "cells": len(cells),
                "eligible": _ratio(_total(cells, "eligible"), len(cells)),
                "tau_zero": _ratio(_total(cells, "tau_zero"), len(cells)),
                "co_leaders_hold_best": _ratio(_total(cells, "co_leaders_hold_best"), len(cells)),
                "co_leaders": _ratio(_total(cells, "co_leaders"), len(cells)),
                "true_champions": {
                    name: _ratio(sum(cell["true_champions"][name] for cell in cells), len(cells)) for name in TRUTHS
                },
            }
        )
        for rule in rules_of(chosen):
            for key in ("rules", "population"):
                records = [cell[key][rule] for cell in cells if rule in cell.get(key, {})]
                if not records:
                    continue
                truth = READING_TRUTH.get(rule, "raters") if key == "rules" else "population"
                tables[key].append(
                    {
                        "kind": kind.name,
                        "scenario": kind.scenario,
                        "clustered": kind.clustered,
                        "rule": rule,
                        "truth": truth,
                        "null": null_for(kind, truth),
                        **_summary(records),
                    }
                )
    return tables


def p_award_table(outcomes: list[Outcome], rule: str) -> list[dict[str, Any]]:
    """Spread scenario, awards of `rule`: is p_award calibrated? Per p_award bin, the awards, their mean
    p_award and the share truly deserved against the reading's truth (`READING_TRUTH`; champion: truly above
    the threshold; leader: truly the best), its SE with surveys as clusters, and whether the bin is judged
    (at least MIN_BIN_AWARDS awards) and met."""
    found: dict[str, list[tuple[int, float, bool]]] = {"champion": [], "leader": []}
    for outcome in outcomes:
        if outcome.scenario != "spread":
            continue
        for cell in outcome.cells:
            if rule not in cell["rules"]:
                continue
            record = cell["rules"][rule]
            for p, ok in zip(record["champion_p"], record["champion_is_above"], strict=True):
                found["champion"].append((outcome.index, p, ok))
            for p, ok in zip(record["leader_p"], record["leader_is_best"], strict=True):
                found["leader"].append((outcome.index, p, ok))
    rows = []
    for low, high in P_AWARD_BINS:
        row: dict[str, Any] = {"bin": f"{low:.2f}-{min(high, 1.0):.2f}"}
        for award, triples in found.items():
            inside = [(survey, p, ok) for survey, p, ok in triples if p is not None and low <= p < high]
            counts: dict[int, int] = defaultdict(int)
            hits: dict[int, int] = defaultdict(int)
            for survey, _, ok in inside:
                counts[survey] += 1
                hits[survey] += int(ok)
            surveys = sorted(counts)
            deserved, se = _cluster_share(
                np.array([hits[s] for s in surveys], dtype=np.float64),
                np.array([counts[s] for s in surveys], dtype=np.float64),
            )
            mean_p = _mean([p for _, p, _ in inside])
            judged = len(inside) >= MIN_BIN_AWARDS
            row[award] = {
                "awards": len(inside),
                "mean_p": mean_p,
                "deserved": deserved,
                "se": se,
                "judged": judged,
                "met": judged and abs(mean_p - deserved) <= TARGET_P_AWARD_GAP + 1e-12,
            }
        rows.append(row)
    return rows


def planted_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Per planted kind and rule (and "all" planted kinds per rule): cells, the planted winner eligible, its
    true composite's gap to the best other eligible CRO's under each truth (mean and least), p_leader >=
    PLANTED_P_LEADER, named leader, robust leader, and the cells with both p_leader >= PLANTED_P_LEADER and a
    robust leader (the target)."""
    rows = []
    planted_kinds = [kind.name for kind in KINDS if kind.scenario == "planted"]
    groups = [(name, [name]) for name in planted_kinds] + [("all planted", planted_kinds)]
    for label, names in groups:
        chosen = [o for o in outcomes if o.kind in names]
        cells = [cell for o in chosen for cell in o.cells if "planted_eligible" in cell]
        if not cells:
            continue
        for rule in rules_of(chosen):
            ruled = [cell for cell in cells if rule in cell["rules"]]
            strong = [cell["rules"][rule]["planted_p_leader"] >= PLANTED_P_LEADER for cell in ruled]
            robust = [bool(cell["rules"][rule]["planted_robust_leader"]) for cell in ruled]
            both = [s and r for s, r in zip(strong, robust, strict=True)]
            hits = sum(both)
            segments = {
                segment: (
                    sum(b for b, cell in zip(both, ruled, strict=True) if cell["cell"][0] == segment),
                    sum(cell["cell"][0] == segment for cell in ruled),
                )
                for segment in ("big_pharma", "small_pharma", "overall")
            }
            need, of = TARGET_PLANTED
            rows.append(
                {
                    "kind": label,
                    "rule": rule,
                    "surveys": len(chosen),
                    "cells": len(ruled),
                    "eligible": _ratio(sum(cell["planted_eligible"] for cell in ruled), len(ruled)),
                    "gap": {name: _mean([cell["planted_gap"][name] for cell in ruled]) for name in TRUTHS},
                    "min_gap": {
                        name: min(
                            (g for cell in ruled if not math.isnan(g := cell["planted_gap"][name])), default=math.nan
                        )
                        for name in TRUTHS
                    },
                    "strong": _ratio(sum(strong), len(ruled)),
                    "leader": _ratio(sum(bool(cell["rules"][rule]["planted_leader"]) for cell in ruled), len(ruled)),
                    "robust": _ratio(sum(robust), len(ruled)),
                    "hits": hits,
                    "segments": segments,
                    "met": hits * of >= need * len(ruled),
                }
            )
    return rows


def diagnostic_table(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """The readings judged against the raters' truth (official, shrunk), judged against the population truth
    as well: per clustered award kind, and pooled over the clustered null kinds and over the spread kinds,
    each reading's summary (`_summary`) under both truths. Not a target: what the bias does to the awards."""
    kinds = [kind for kind in KINDS if kind.awards and kind.clustered]
    groups = [(kind.name, [kind.name]) for kind in kinds]
    for scenario, label in (("null", "clustered null, pooled"), ("spread", "spread, pooled")):
        names = [kind.name for kind in kinds if kind.scenario == scenario]
        if len(names) > 1:
            groups.append((label, names))
    rows = []
    for label, names in groups:
        cells = [cell for o in outcomes if o.kind in names for cell in o.cells]
        for rule in rules_of([o for o in outcomes if o.kind in names]):
            ruled = [cell for cell in cells if rule in cell.get("population", {})]
            if not ruled:
                continue
            rows.append(
                {
                    "kind": label,
                    "scenario": kind_of(names[0]).scenario,
                    "rule": rule,
                    "raters": _summary([cell["rules"][rule] for cell in ruled]),
                    "population": _summary([cell["population"][rule] for cell in ruled]),
                }
            )
    return rows


def targets(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    """Issue 21's targets: what was measured and whether it meets the target (None: nothing to judge)."""
    found = []
    coverage = [row for row in coverage_table(outcomes) if not row["all"]]
    for path in PATHS:
        judged = [(row["bin"], row[path]["coverage"]) for row in coverage if row[path]["composites"]]
        if judged:
            label, lowest = min(judged, key=lambda item: item[1])
            met = sum(value >= TARGET_COVERAGE for _, value in judged)
            measured = f"lowest {_f(lowest)} (n {label}); {met} of {len(judged)} bins meet it"
        found.append(
            {
                "target": f"coverage of the raters' truth >= {TARGET_COVERAGE} at every n >= {BINS[0][0]}, {path} path",
                "measured": measured if judged else "no composites",
                "met": all(value >= TARGET_COVERAGE for _, value in judged) if judged else None,
            }
        )
    awards = award_tables(outcomes)["rules"]
    for rule in rules_of(outcomes):
        # Judged pooled over the survey sizes (a kind's own cells are too few to resolve 0.005 a cell: one
        # robust champion in 180 cells is 0.0056); each size's figure is listed beside it.
        # No true difference in the reading's own truth: the unclustered null surveys for every reading; the
        # clustered ones too, as a line of their own, for a reading judged against the population truth.
        for clustered in (False, True):
            null = [row for row in awards if row["rule"] == rule and row["null"] and row["clustered"] == clustered]
            if not null:
                continue
            cells = sum(row["cells"] for row in null)
            total = sum(row["robust_champions_total"] for row in null)
            found.append(
                {
                    "target": f"`{rule}`: robust champions per cell with no true difference "
                    + ("(clustered leniency; the population truth) " if clustered else "")
                    + f"<= {TARGET_NULL_ROBUST_CHAMPIONS}",
                    "measured": f"{_f(total / cells)} ({total:,} in {cells:,} cells; "
                    + ", ".join(f"{row['kind']} {_f(row['robust_champions'])}" for row in null)
                    + ")",
                    "met": total / cells <= TARGET_NULL_ROBUST_CHAMPIONS + 1e-12,
                }
            )
        spread = [row for row in awards if row["rule"] == rule and row["scenario"] == "spread"]
        total = sum(row["robust_champions_total"] for row in spread)
        if total:
            above = sum(row["robust_champions_above_total"] for row in spread)
            found.append(
                {
                    "target": f"`{rule}`: robust champions truly above the threshold ({TRUTHS[READING_TRUTH[rule]]}) "
                    f">= {TARGET_ROBUST_CHAMPIONS_ABOVE}",
                    "measured": f"{_f(above / total)} ({above:,} of {total:,}; "
                    + ", ".join(f"{row['kind']} {_f(row['robust_champions_above'])}" for row in spread)
                    + ")",
                    "met": above / total >= TARGET_ROBUST_CHAMPIONS_ABOVE,
                }
            )
        bins = [
            (f"{award}s {row['bin']}", row[award])
            for row in p_award_table(outcomes, rule)
            for award in ("leader", "champion")
            if row[award]["judged"]
        ]
        measured, met = f"no bin of {MIN_BIN_AWARDS} awards or more", None
        if bins:
            label, worst = max(bins, key=lambda item: abs(item[1]["mean_p"] - item[1]["deserved"]))
            measured = (
                f"{sum(b['met'] for _, b in bins)} of {len(bins)} bins; largest gap "
                f"{_f(abs(worst['mean_p'] - worst['deserved']))} ({label}: mean p_award {_f(worst['mean_p'])}, "
                f"observed {_f(worst['deserved'])})"
            )
            met = all(b["met"] for _, b in bins)
        found.append(
            {
                "target": f"`{rule}`: every p_award bin within {TARGET_P_AWARD_GAP} of its observed rate "
                f"({TRUTHS[READING_TRUTH[rule]]}; spread surveys; bins of at least {MIN_BIN_AWARDS} awards)",
                "measured": measured,
                "met": met,
            }
        )
        planted = [row for row in planted_table(outcomes) if row["kind"] == "all planted" and row["rule"] == rule]
        if planted:
            row = planted[0]
            need, of = TARGET_PLANTED
            found.append(
                {
                    "target": f"`{rule}`: planted winner with p_leader >= {PLANTED_P_LEADER} and a robust leader "
                    f"in >= {need} of {of} cells",
                    "measured": f"{row['hits']} of {row['cells']} cells",
                    "met": row["met"],
                }
            )
    return found


def _f(value: float, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _mark(met: bool | None) -> str:
    return "–" if met is None else ("✓" if met else "✗")


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
    version = version or code_version()
    coverage = coverage_table(outcomes)
    awards = award_tables(outcomes)
    rules = rules_of(outcomes)
    n_exact = sum(o.exact for o in outcomes)
    n_forced = sum(interval.forced for o in outcomes for interval in o.intervals)
    runs = sum(len(o.intervals) for o in outcomes)
    engines: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        engines[outcome.engine] += 1
    first = [interval for o in outcomes for interval in o.intervals]
    thin = sum(int((run.n < BINS[0][0]).sum()) for run in first)
    has_adjusted = any(o.estimates is not None and o.estimates.adjusted is not None for o in outcomes)
    readings = ", ".join(
        f"`{rule}` against the {TRUTHS[READING_TRUTH[rule]]}" for rule in rules or AWARD_RULES if rule in READING_TRUTH
    )
    lines = [
        "# Calibration of the uncertainty figures",
        "",
        f"Written by `{command}` on {today.isoformat()}: {len(outcomes)} simulated surveys "
        f"({n_exact} resampled exactly by the engine's choice, {len(outcomes) - n_exact} through the normal "
        f"approximation; {n_forced} of the exact ones run a second time with the approximation forced), "
        f"{runs:,} pipeline runs, `bootstrap_replicates` {replicates}, seed {seed}, {workers} worker process(es), "
        f"run time {seconds / 60:.1f} min. Regenerate with `make calibrate` (bench/calibrate.py; the "
        "data-generating process, the truths and the survey kinds are in its docstring).",
        "",
        f"**Engine.** {version}; fingerprint of cro_awards/method/uncertainty.py and sql/ as run "
        "(bench/calibrate.py, `engine_fingerprint`): "
        + ", ".join(f"`{e}` ({n} surveys)" for e, n in sorted(engines.items()))
        + (
            ". **WARNING: the engine changed during the run; the surveys ran on different code.**"
            if len(engines) > 1
            else "."
        )
        + " Award rules (readings) judged: "
        + ", ".join(f"`{rule}`" for rule in rules or AWARD_RULES)
        + ("" if "adjusted" in AWARD_RULES else " (this engine's `AwardRule` has no `adjusted` yet)")
        + ", all from one run per survey (every reading's awards are in the run's `int_award_readings`; "
        "nothing else depends on `award_rule`).",
        "",
        "**Data-generating process** (issue 21's harder one; it replaces the earlier model, whose tables are "
        "docs/calibration.md at commit b3cbd3c). 36 CROs; categories compatibility (3 attributes), quality (2) "
        "and reliability (3). A rating is clip(round(mu + offset + L + halo + e), 1, 5): respondent leniency "
        f"L ~ N(0, {LENIENCY_SD}) plus {LENIENT_SHIFT} for a lenient {LENIENT_SHARE:.0%} of respondents; "
        f"clustering (every kind but the unclustered null ones): lenient respondents pick a random third of the "
        f'CROs ({N_FAVOURED}, "favoured") with {FAVOURED_FACTOR:g}x their popularity weight, so leniency is '
        "confounded with CRO (unclustered: the same process without that favouring, lenient raters spread "
        f"evenly); a halo N(0, {HALO_SD}) per evaluation, shared by its attributes; noise e ~ N(0, {NOISE_SD}); "
        f"attribute offsets ~ N(0, {ATTRIBUTE_OFFSET_SD}); respondent i answers attribute a with probability "
        f"{RESPONSE_RATE[0]} + {RESPONSE_RATE[1] - RESPONSE_RATE[0]:.2f} x expit(alpha_a + u_i), alpha_a ~ "
        f"U{ATTRIBUTE_LOGIT}, u_i ~ N(0, {PROPENSITY_SD:g}) (rates {RESPONSE_RATE[0]}-{RESPONSE_RATE[1]}, mean "
        f"{mean_response_rate():.2f}); respondents rate 1 + Poisson(2) CROs picked by skewed popularity; "
        f"{BIG_PHARMA_SHARE:.0%} of respondents Big Pharma. True means mu near the top of the scale: {MEAN} for "
        f"all (null), ~ N({MEAN}, {SPREAD_SD}) per CRO and category (spread), or (planted) ~ N({PLANTED_MEAN}, "
        f"{SPREAD_SD}) with one planted winner per category, drawn from the more popular half of the CROs, whose "
        f"mu is raised until its true composite is at least {PLANTED_GAP} above every other CRO's in every cell, "
        "on both truths, whichever attributes thin cells leave out. Every figure is the pipeline's published "
        f"one (`run_pipeline`, `min_cell_size: {MIN_CELL_SIZE}`); composites of all three segments (big_pharma, "
        "small_pharma, overall) count.",
        "",
        "**Two truths.** The *raters' truth* of a composite is what the CRO's own raters would rate it on "
        "average: the expected rating under the lenient share among that CRO's raters. The *population truth* "
        "is what a typical respondent of the population would: the expected rating at the population's lenient "
        f"share ({LENIENT_SHARE:.0%}). Both integrate the leniency mixture, the halo and the noise exactly (normal "
        "CDF), averaged over the attributes the composite averages (its segment's published ones: a thin cell "
        "counts nowhere). **Each reading is judged against the truth it claims to estimate**: the official and "
        "shrunk readings (composite, ci_low / ci_high, p_leader, p_award of `award_rule` official and shrunk) "
        "against the raters' truth, since \"the CRO's sponsors rated it highest\" is what they say; the "
        "leniency-adjusted reading (`composite_adjusted`, `award_rule: adjusted`) against the population truth. "
        f"Here: {readings}. Truly above the threshold, truly best, no true difference and the p_award bins use "
        "the truth of the reading.",
        "",
        "**The bias is reported, not hidden.** Under clustering the two truths differ: a favoured CRO's raters "
        "are more lenient than the population, the others' less, so the official composite is biased against "
        "the population truth, and no resampling of respondents can see it. That bias is the subject of its "
        "own section (the raw and the adjusted composite against the population truth), and the section right "
        "after the targets shows the official and shrunk readings' award figures against the population truth "
        "as a diagnostic. Because a clustered null survey has no true difference in the population but does "
        "among the raters (the favoured CROs' raters' truth is higher), **the null award kinds that judge every "
        "reading are unclustered**; the clustered null kinds feed the bias table, the diagnostic and the "
        "adjusted reading's own null target (its truth, the population's, is still null there)"
        + (
            "."
            if has_adjusted
            else "; this engine's composite_scores has no `composite_adjusted` yet, so only the raw composite's "
            "bias is measured."
        ),
        "",
        "**Survey kinds**: "
        + "; ".join(
            f"`{k.name}` ({sum(o.kind == k.name for o in outcomes)} surveys): {k.scenario}, "
            + ("clustered" if k.clustered else "unclustered")
            + ", "
            + (f"{k.n_evaluations:,}" if k.n_evaluations else "large")
            + f" evaluations, least popular CRO ~{k.min_n:g} expected, `min_evaluations: {k.min_evaluations}`"
            + (", award readings judged" if k.awards else "")
            + (", also with the approximation forced" if k.force_approximation else "")
            for k in KINDS
        )
        + f". Large = {large_size(replicates):,} evaluations at these replicates (beyond the engine's "
        "`EXACT_UP_TO_WORK`). Survey counts are lower than the earlier calibration's 100 a kind, to keep "
        "`make calibrate` within about 20 minutes on 2 shared cores "
        '(bench/calibrate.py, "Budget"); the targets about awards are therefore judged pooled over the survey '
        "sizes, each size's figure beside it.",
        "",
        "**Seconds per survey** (drawing, writing and every pipeline run of the survey; one worker): "
        + ", ".join(
            f"{kind.name} {_mean([o.seconds for o in outcomes if o.kind == kind.name]):.1f}"
            for kind in KINDS
            if any(o.kind == kind.name for o in outcomes)
        )
        + ".",
        "",
        f"## Targets (issue 21): {today.isoformat()}, engine {version}",
        "",
        "Each reading against its own truth (above).",
        "",
    ]
    lines += _table(
        ["target", "measured", "met"],
        [[row["target"], row["measured"], _mark(row["met"])] for row in targets(outcomes)],
    )
    lines += _diagnostic_section(outcomes)
    lines += [
        "",
        "## Interval coverage by n_evaluations",
        "",
        "Share of eligible composites whose [ci_low, ci_high] holds the raters' truth (what the official "
        "composite and its resampling of respondents estimate); ± is one standard error with surveys as "
        "clusters (composites of one survey share respondents). Below / above: the raters' truth lies below "
        "ci_low / above ci_high. *Population truth (diagnostic)*: the share holding the population truth instead; "
        "under clustering the difference is the bias, which grows relative to the interval as n grows. Target: "
        f"at least {TARGET_COVERAGE} of the raters' truth at every n (✓/✗). Exact: the surveys the engine "
        "resamples exactly. Approximation: the large surveys (the engine's own choice) and the coverage surveys "
        "of 600 to 6,000 evaluations run a second time in process with "
        "`cro_awards.method.uncertainty.EXACT_UP_TO_WORK` "
        "set to 0, which forces the normal approximation; on that path composites with n < "
        "`EXACT_BELOW_EVALUATIONS` (20) are still resampled exactly, as the engine always does, so its rows below "
        "n = 20 measure that exact draw within an approximated survey.",
        "",
    ]
    header = ["n_evaluations"]
    for name in ("exact", "approx."):
        header += [
            f"{name}: composites (surveys)",
            "coverage (raters' truth)",
            "below / above",
            "population truth (diagnostic)",
            "mean width",
        ]
    body = []
    for row in coverage:
        cells = [row["bin"]]
        for path in PATHS:
            found = row[path]
            mark = "" if row["all"] or not found["composites"] else " " + _mark(found["coverage"] >= TARGET_COVERAGE)
            surveys = f"{found['surveys']}" + (f", {found['forced']} forced" if found["forced"] else "")
            cells += [
                f"{found['composites']:,} ({surveys})",
                (f"{_f(found['coverage'])} ± {_f(found['se'])}{mark}" if found["composites"] else "–"),
                f"{_f(found['below'])} / {_f(found['above'])}",
                (f"{_f(found['population_coverage'])} ± {_f(found['population_se'])}" if found["composites"] else "–"),
                _f(found["width"]),
            ]
        body.append(cells)
    lines += _table(header, body)
    lines += [
        "",
        f"Not binned: {thin:,} composites of 1 or 2 evaluations. There should be none: at min_cell_size "
        f"{MIN_CELL_SIZE} a composite rests on countable cells only, each of at least 3 ratings.",
        "",
        _zero_width_note(first),
        "",
        "## The raw composite's bias under clustered leniency (against the population truth)",
        "",
        "Eligible composites of each survey's run, all segments, both the raw (official) and the "
        "leniency-adjusted composite against the **population truth**: the question is how far the official "
        "composite is from what a typical respondent would rate, and whether the adjusted one closes it. Error = "
        "estimate - population truth, mean over the CROs favoured by lenient respondents and over the others "
        "(in unclustered kinds the favoured third is a label only: a placebo, both near zero); *expected* = "
        "raters' truth - population truth, what the lenient share among each CRO's raters predicts for the raw "
        "composite. RMSE over all; rank correlation: Spearman's between the estimate and the population truth "
        "within each cell of at least 3 eligible CROs, averaged (not for null surveys, which have no true "
        "ranking). `composite_adjusted`: "
        + ("the engine's leniency-adjusted composite." if has_adjusted else "not in this engine's output (–)."),
        "",
    ]
    header = [
        "survey kind",
        "clustered",
        "composites (favoured)",
        "expected: favoured / others",
        "raw: error favoured / others",
        "raw: RMSE",
        "raw: rank corr.",
        "adjusted: error favoured / others",
        "adjusted: RMSE",
        "adjusted: rank corr.",
    ]
    body = []
    for row in bias_table(outcomes):
        cells = [
            row["kind"],
            "yes" if row["clustered"] else "no",
            f"{row['composites']:,} ({row['favoured']:,})",
            f"{_signed(row['expected']['favoured'])} / {_signed(row['expected']['others'])}",
        ]
        for name in ("raw", "adjusted"):
            found = row[name]
            if found is None:
                cells += ["–", "–", "–"]
            else:
                cells += [
                    f"{_signed(found['favoured'])} / {_signed(found['others'])}",
                    _f(found["rmse"]),
                    _f(found["rank"]),
                ]
        body.append(cells)
    lines += _table(header, body)
    lines += [
        "",
        "## Awards when no CRO truly differs (null)",
        "",
        "Award surveys: `min_evaluations: 10`, so the cells are those of a real year. Per cell (segment x "
        "category with awards). In the unclustered null kinds every CRO has the same truth, raters' and "
        "population alike, so every champion is undeserved for every reading. In the clustered null kinds only "
        "the population truth is the same for every CRO: they judge the adjusted reading (its truth), while the "
        "official and shrunk readings' figures there are not null against their truth (the favoured CROs' "
        "raters are more lenient) and are shown with – (their figures against the population truth are in the "
        "diagnostic above). Target: at most "
        f"{TARGET_NULL_ROBUST_CHAMPIONS} robust champions per cell (✓/✗ per size here; judged pooled over the "
        "sizes in the targets above).",
        "",
    ]
    lines += _cells_table([row for row in awards["cells"] if row["scenario"] == "null"], spread=False)
    lines += [""]
    header = [
        "survey kind",
        "rule",
        "truth",
        "champions per cell",
        "robust champions per cell",
        "mean p_award of champions",
        "leaders per cell",
        "robust leaders per cell",
        "mean p_award of leaders",
    ]
    body = [
        [
            row["kind"],
            f"`{row['rule']}`",
            TRUTHS[row["truth"]] + ("" if row["null"] else " (not null)"),
            _f(row["champions"], 2),
            f"{_f(row['robust_champions'])} "
            + (_mark(row["robust_champions"] <= TARGET_NULL_ROBUST_CHAMPIONS + 1e-12) if row["null"] else "–"),
            _f(row["champion_p"]),
            _f(row["leaders"], 2),
            _f(row["robust_leaders"]),
            _f(row["leader_p"]),
        ]
        for row in awards["rules"]
        if row["scenario"] == "null"
    ]
    lines += _table(header, body)
    lines += [
        "",
        f"## Awards with a real spread (true means ~ N({MEAN}, {SPREAD_SD}), clustered)",
        "",
        "Each reading against its own truth. The truly best CRO has the highest true composite among the cell's "
        "eligible CROs; chance alone would name it in 1 / (eligible CROs) of cells. Truly above = true "
        f"composite >= true weighted mean + {CHAMPION_SD_MULTIPLIER:g} x true weighted SD of the cell's eligible "
        "CROs (weights n_evaluations). Where the engine estimates tau^2 = 0, every shrunk composite equals the "
        "cell's weighted mean. The co-leader set comes from the official composite's resampling: it is judged "
        "against the raters' truth.",
        "",
    ]
    lines += _cells_table([row for row in awards["cells"] if row["scenario"] == "spread"], spread=True)
    lines += ["", "Leaders (a tie of leaders counts the share of them that is truly best):", ""]
    header = [
        "survey kind",
        "rule",
        "truth",
        "leaders per cell",
        "leader truly best",
        "mean p_award of leaders",
        "robust leaders per cell",
        "robust leader truly best",
    ]
    spread_rows = [row for row in awards["rules"] if row["scenario"] == "spread"]
    body = [
        [
            row["kind"],
            f"`{row['rule']}`",
            TRUTHS[row["truth"]],
            _f(row["leaders"], 2),
            _f(row["leader_best"]),
            _f(row["leader_p"]),
            _f(row["robust_leaders"]),
            _f(row["robust_leader_best"]),
        ]
        for row in spread_rows
    ]
    lines += _table(header, body)
    lines += [
        "",
        "Champions (found = the share of truly-above CROs that are named; target: robust champions truly above "
        f">= {TARGET_ROBUST_CHAMPIONS_ABOVE}, ✓/✗ per size here, judged pooled over the sizes in the targets):",
        "",
    ]
    header = [
        "survey kind",
        "rule",
        "truth",
        "champions per cell",
        "truly above",
        "found",
        "mean p_award",
        "robust champions per cell",
        "robust: truly above",
        "robust: found",
    ]
    body = [
        [
            row["kind"],
            f"`{row['rule']}`",
            TRUTHS[row["truth"]],
            _f(row["champions"], 2),
            _f(row["champions_above"]),
            _f(row["champions_found"]),
            _f(row["champion_p"]),
            _f(row["robust_champions"], 2),
            f"{_f(row['robust_champions_above'])}"
            + (
                ""
                if math.isnan(row["robust_champions_above"])
                else " " + _mark(row["robust_champions_above"] >= TARGET_ROBUST_CHAMPIONS_ABOVE)
            ),
            _f(row["robust_champions_found"]),
        ]
        for row in spread_rows
    ]
    lines += _table(header, body)
    for rule in rules:
        lines += [
            "",
            f"### Is p_award calibrated? `award_rule: {rule}` (spread surveys, all sizes; "
            f"{TRUTHS[READING_TRUTH.get(rule, 'raters')]})",
            "",
            "Per p_award bin: the awards, their mean p_award and the share truly deserved against the reading's "
            f"truth (± one standard error, surveys as clusters). Target: within {TARGET_P_AWARD_GAP} of the mean "
            f"p_award (✓/✗; bins of fewer than {MIN_BIN_AWARDS} awards are not judged).",
            "",
        ]
        header = ["p_award", "champions", "mean p_award", "truly above", "leaders", "mean p_award", "truly best"]
        body = []
        for row in p_award_table(outcomes, rule):
            cells = [row["bin"]]
            for award in ("champion", "leader"):
                found = row[award]
                mark = " " + _mark(found["met"]) if found["judged"] else ""
                cells += [
                    f"{found['awards']:,}",
                    _f(found["mean_p"]),
                    f"{_f(found['deserved'])} ± {_f(found['se'])}{mark}" if found["awards"] else "–",
                ]
            body.append(cells)
        lines += _table(header, body)
    planted = planted_table(outcomes)
    lines += [
        "",
        "## A planted clear winner",
        "",
        f"Clustered surveys (`min_evaluations: 10`), the other CROs' true means ~ N({PLANTED_MEAN}, {SPREAD_SD}), "
        "in which one CRO per category, from the more popular half, has its mu raised (`plant_winners`) until "
        f"its true composite is at least {PLANTED_GAP} above every other CRO's in every cell, on both truths "
        "(where a mu of "
        f"{PLANTED_MU_CAP:g} would not do, the category's other CROs are lowered together); it is the truly best "
        "CRO of every cell of its category, for every reading. Gap: its true composite minus the best other "
        "eligible CRO's in the cell, on the rating scale, under each truth. Target: p_leader >= "
        f"{PLANTED_P_LEADER} and a robust leader in at least {TARGET_PLANTED[0]} of {TARGET_PLANTED[1]} cells "
        "(✓/✗ on the pooled row of each rule; p_leader is composite_scores' own, the same whatever the rule).",
        "",
    ]
    header = [
        "survey kind",
        "rule",
        "surveys",
        "cells",
        "winner eligible",
        "gap, raters' truth: mean (least)",
        "gap, population truth: mean (least)",
        f"p_leader >= {PLANTED_P_LEADER}",
        "named leader",
        "robust leader",
        "both: cells",
        "both, by segment: big / small / overall",
    ]
    body = [
        [
            row["kind"],
            f"`{row['rule']}`",
            f"{row['surveys']}",
            f"{row['cells']:,}",
            _f(row["eligible"]),
            *(f"{_f(row['gap'][name])} ({_f(row['min_gap'][name])})" for name in TRUTHS),
            _f(row["strong"]),
            _f(row["leader"]),
            _f(row["robust"]),
            f"{row['hits']:,} of {row['cells']:,}" + (" " + _mark(row["met"]) if row["kind"] == "all planted" else ""),
            " / ".join(f"{hit}/{total}" for hit, total in row["segments"].values()),
        ]
        for row in planted
    ]
    lines += _table(header, body)
    return "\n".join(lines) + "\n"


def _diagnostic_section(outcomes: list[Outcome]) -> list[str]:
    """The readings judged against the raters' truth, against the population truth too (`diagnostic_table`)."""
    rows = diagnostic_table(outcomes)
    lines = [
        "",
        "## Diagnostic, not a target: the official and shrunk readings against the population truth",
        "",
        "The same awards as above, judged against the population truth, which these readings do not claim to "
        "estimate: this is what the bias of the raw composite under clustered leniency does to the awards, "
        "shown so that it is not hidden. Clustered award kinds only (in unclustered ones the two truths "
        "coincide). In the clustered null kinds every champion is undeserved against the population truth: "
        f"compare their robust champions per cell with the {TARGET_NULL_ROBUST_CHAMPIONS} the readings meet or "
        "miss against their own truth. The adjusted reading is judged against the population truth in the "
        "targets themselves.",
        "",
    ]
    if not rows:
        return [*lines, "No clustered award surveys in this run."]
    header = [
        "survey kind",
        "rule",
        "cells",
        "robust champions per cell",
        "robust champions truly above: raters' / population",
        "robust leaders per cell",
        "robust leader truly best: raters' / population",
        "leader truly best: raters' / population",
    ]
    body = []
    for row in rows:
        raters, population = row["raters"], row["population"]
        body.append(
            [
                row["kind"],
                f"`{row['rule']}`",
                f"{population['cells']:,}",
                _f(population["robust_champions"]),
                f"{_f(raters['robust_champions_above'])} / {_f(population['robust_champions_above'])}",
                _f(population["robust_leaders"]),
                f"{_f(raters['robust_leader_best'])} / {_f(population['robust_leader_best'])}",
                f"{_f(raters['leader_best'])} / {_f(population['leader_best'])}",
            ]
        )
    return lines + _table(header, body)


def _zero_width_note(runs: list[Intervals]) -> str:
    """Intervals of zero width (every replicate's composite the same: near the top of the scale, a CRO whose
    few raters all gave 5 gets [5, 5]) and how many of them miss the raters' truth, per path."""
    parts = []
    for path in PATHS:
        chosen = [run for run in runs if run.path == path]
        zero = [(run.width <= 1e-9) for run in chosen]
        count = sum(int(z.sum()) for z in zero)
        missed = sum(int((z & (run.below | run.above)).sum()) for z, run in zip(zero, chosen, strict=True))
        small = sum(int((z & (run.n < 10)).sum()) for z, run in zip(zero, chosen, strict=True))
        parts.append(
            f"{path}: {count:,} intervals of zero width ({small:,} of them at n < 10), {missed:,} missing the "
            "raters' truth"
        )
    return (
        "Zero-width intervals (every replicate's composite the same, e.g. a CRO whose few raters all gave 5, near "
        "the top of the scale where this process puts the means): " + "; ".join(parts) + "."
    )


def _signed(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:+.3f}"


def _cells_table(rows: list[dict[str, Any]], *, spread: bool) -> list[str]:
    """The award kinds' cells: what does not depend on the award rule."""
    header = [
        "survey kind",
        "clustered",
        "surveys (evaluations)",
        "path",
        "cells",
        "eligible CROs per cell",
        "cells with tau^2 = 0",
    ]
    if spread:
        header += [
            "co-leader set holds the best (raters' truth)",
            "co-leaders per cell",
            "truly above per cell: raters' / population",
        ]
    body = []
    for row in rows:
        cells = [
            row["kind"],
            "yes" if row["clustered"] else "no",
            f"{row['surveys']} ({row['evaluations']:,.0f})",
            row["path"],
            f"{row['cells']:,}",
            _f(row["eligible"], 1),
            _f(row["tau_zero"]),
        ]
        if spread:
            cells += [
                _f(row["co_leaders_hold_best"]),
                _f(row["co_leaders"], 1),
                " / ".join(_f(row["true_champions"][name], 2) for name in TRUTHS),
            ]
        body.append(cells)
    return _table(header, body)


# --- command line ------------------------------------------------------------------------------------------


def survey_counts(n_surveys: int | None = None) -> dict[str, int]:
    """Surveys per kind: KINDS' own counts, or scaled to a total of `n_surveys` (largest remainders; at least
    one of each kind)."""
    default = {kind.name: kind.surveys for kind in KINDS}
    if n_surveys is None:
        return default
    total = sum(default.values())
    exact = {name: n_surveys * count / total for name, count in default.items()}
    counts = {name: max(1, math.floor(value)) for name, value in exact.items()}
    for name in sorted(exact, key=lambda name: counts[name] - exact[name]):
        if sum(counts.values()) >= n_surveys:
            break
        counts[name] += 1
    return counts


def plan(counts: dict[str, int], seed: int, replicates: int) -> list[tuple[Kind, int, int, int, int]]:
    """The tasks: the kinds taken in turn (each while it has surveys left), survey indexes in that order."""
    tasks: list[tuple[Kind, int, int, int, int]] = []
    left = dict(counts)
    while any(left.get(kind.name, 0) > 0 for kind in KINDS):
        for kind in KINDS:
            if left.get(kind.name, 0) > 0:
                left[kind.name] -= 1
                tasks.append((kind, len(tasks), seed, replicates, kind.n_evaluations or large_size(replicates)))
    return tasks


def run(tasks: list[tuple[Kind, int, int, int, int]], workers: int, progress: bool = True) -> list[Outcome]:
    """Run the tasks on `workers` processes (largest first); the outcomes in task order."""
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    ordered = sorted(tasks, key=lambda task: -task[4] * (len(AWARD_RULES) if task[0].awards else 1))
    if workers <= 1:
        for done, task in enumerate(ordered, start=1):
            outcomes.append(run_survey(task))
            _progress(progress, done, len(tasks), started)
    else:
        # One BLAS thread a worker: the workers are the parallelism (two workers with two BLAS threads each
        # on two cores ran a large survey some 15% slower). Read by numpy as each spawned worker imports it.
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
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


QUICK_PER_KIND = 1
"""--quick: surveys of each kind."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench.calibrate", description=__doc__.splitlines()[0])
    default_total = sum(survey_counts().values())
    parser.add_argument(
        "--surveys",
        type=int,
        help=f"simulated surveys, spread over the kinds in KINDS' proportions (default {default_total}; "
        f"--quick: {QUICK_PER_KIND} of each kind)",
    )
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap_replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the simulation (default 2024)")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"report file (default {DEFAULT_OUT.relative_to(PROJECT_ROOT)}; --quick: "
        f"{QUICK_OUT.relative_to(PROJECT_ROOT)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_PER_KIND} survey(s) of each kind, a couple of minutes",
    )
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    args = parser.parse_args(argv)
    if args.surveys is not None:
        counts = survey_counts(args.surveys)
    elif args.quick:
        counts = {kind.name: QUICK_PER_KIND for kind in KINDS}
    else:
        counts = survey_counts()
    out = args.out or (QUICK_OUT if args.quick else DEFAULT_OUT)
    if (
        (args.surveys is not None and args.surveys < len(KINDS))
        or not 1 <= args.replicates <= 10_000
        or not 0 <= args.seed < 2**40
        or args.workers < 1
    ):
        parser.error(
            f"need --surveys >= {len(KINDS)} (one of each kind), 1 <= --replicates <= 10000, 0 <= --seed < 2^40, "
            "--workers >= 1"
        )
    version = code_version()
    started = time.perf_counter()
    outcomes = run(plan(counts, args.seed, args.replicates), args.workers)
    seconds = time.perf_counter() - started
    report = render(
        outcomes,
        command=shlex.join(["python", "-m", "bench.calibrate", *argv]),
        replicates=args.replicates,
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
