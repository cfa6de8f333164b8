"""Seeded synthetic survey exports: realistic rows plus a few deliberately bad ones.

Contract:
- `generate_export(config, n_evaluations=..., seed=...)` returns a `pyarrow.Table` of exactly
  `n_evaluations` rows whose columns are all `pa.string()`, in export order: `respondent_id`,
  `rd_spend_musd`, `cro`, `last_engaged`, the screens' columns (below; none for a year without
  `screens:`), one column per attribute id of `config["attributes"]` (in the YAML's order), then
  `comments`. An empty field is `""`, never null. If the configuration has a `columns` renaming (export
  header -> contract column), the header is written with the export's own names, so that the
  pipeline's renaming on read turns it back into contract names.
- The output depends only on the configuration, `n_evaluations`, `seed` and `bad_rows`: all
  randomness comes from `numpy.random.default_rng(seed)`, nothing from hash seeds or set ordering.
  The good rows are the same with and without `bad_rows`: planting only rewrites a few rows.
- Good rows: about `n_evaluations / 5` respondents (`R000123`), each rating 1 to 10 different CROs
  with one company R&D spend (about 35% of respondents at or above the big-pharma threshold); CRO
  popularity is skewed (a few CROs get fewer than 10 evaluations in a sample of 1,500); ratings come
  from a latent CRO quality (two standouts), a lenient or harsh respondent, and noise, rounded and
  clipped to the rating scale; about 8% of answers are blank or `n/a` (spelt "", "n/a", "N/A" or
  "na"), and attributes whose id contains `phase_1` are blank in about 75% of rows; every good row
  has at least one rating. `last_engaged` is uniform over the recency window (`recency_window`):
  from `survey_close` minus `recency_months` calendar months to `survey_close`, both inclusive.
  The CRO is written as its name, sometimes an alias, sometimes in another case or with spaces
  around it. Valid but tricky values are always present: ratings such as "4.0", " 4 ", "04" and
  "4.", a spend with decimals ("87.5"), spends exactly at and just below the big-pharma threshold,
  and `last_engaged` on the window's first day and on `survey_close`.
- Respondent screens (the YAML's `screens:`; docs/contract.md): a year that configures none gets exactly
  the export it got before screens existed, byte for byte. Otherwise the screens draw from their own
  random streams (spawned after the others), and good rows pass every configured screen:
  `qualification` adds its column (e.g. `decision_role`): one allowed role per respondent on all their
  rows, mostly in sentence case ("Final decision maker"), some in other cases or with spaces around;
  `speeding` adds its column (e.g. `duration_seconds`): one duration per respondent, growing with the
  CROs rated, whole seconds or one decimal, at least `min_seconds * 1.25 + 30`; with `straight_lining`,
  a good row whose `min_ratings` or more valid ratings came out all equal has one moved a step. Valid but
  tricky screen values are always present: a respondent exactly at `min_seconds`, durations spelt
  " 645 ", "01040", "645.0", and a row of `min_ratings - 1` equal ratings (too few to judge).
  With `bad_rows=True`, each configured screen's failures are planted (`_Planter.plant_screen_bad`):
  whole respondents not qualified or speeding, and one per screen screened by one of their rows only
  (the others get the reason by propagation; their record's `screened_by` names that row), malformed
  durations (a blank first), straight-lined rows (one with a rating spelt "5.0", one with an invalid
  rating too), a row without a respondent id whose role does not qualify (judged alone). Screened rows
  are at most 5% of the export, or 10 rows, after one of each.
- With `bad_rows=True`, rows of every defect kind in `DEFECT_KINDS` are planted at seeded positions,
  each with exactly one defect: 2 to 4 per kind (mildly more for large exports, about 10 times as
  many at 1.5 million rows), plus one row (more for large exports) with both `unknown_cro` and
  `invalid_rating`. Bad rows are at most 5% of the export, or 10 rows, whichever is more; a small
  export gets fewer per kind, down to one (two duplicates), and needs at least 200 rows. A planted
  `duplicate_evaluation` row is a later row of a respondent repeating the CRO (and date) of one of
  that respondent's earlier, valid rows with other ratings; in one of them the CRO is spelt
  differently (alias, case or spaces). `planted_rows(table)` lists the planted bad rows and the
  tricky valid ones (1 = first data row), as recorded in the table's schema metadata.
- `write_export(table, path)` writes `.csv` (UTF-8 without BOM, comma-separated, "\\n" line ends,
  fields quoted only when they hold a comma, double quote, CR or LF, quotes doubled; an empty
  string is an empty field), `.xlsx` (one sheet, header row then every cell as a text string) or
  `.parquet` (all columns strings).
- Command line: `python -m bench.synthetic --config surveys/2024.yaml --evaluations 1500
  --seed 2024 --out data/sample/export_2024.csv [--no-bad-rows]`. The bundled samples: 2023 with 1200
  evaluations and seed 2023, 2024 with 1500 and 2024, 2025 with 1500 and 2025 (each year's YAML says so).
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cro_awards.reading.config import CONTRACT_COLUMNS, REASON_CODES

COMMENTS_COLUMN = "comments"

SCREEN_KINDS = ("not_qualified", "invalid_duration", "speeding", "straight_lining")
"""The respondent screens' reason codes: planted only for a survey whose YAML configures the screen."""

DEFECT_KINDS = tuple(code for code in REASON_CODES if code != "malformed_row" and code not in SCREEN_KINDS)
"""The reason codes the pipeline gives the planted bad rows of every survey (a table of fields cannot hold a
ragged CSV row; the screens' codes are `SCREEN_KINDS`)."""

METADATA_KEY = b"bench.synthetic"
"""Schema metadata key holding the JSON list of planted and tricky rows."""

MISSING_FORMS = ("", "n/a", "N/A", "na")
"""Ways an export says "no rating"."""

INVALID_RD_SPEND = ("-5", "1,200", "$900", "1e3", "inf", "")
ROLE_FORMS = ("{sentence}", "{lower}", "{title}", "{upper}", " {sentence}", "{sentence} ", "  {lower}  ")
"""How an export spells a qualifying decision role (`{sentence}`: "Final decision maker")."""
ROLE_FORM_SHARES = (0.8, 0.05, 0.04, 0.03, 0.03, 0.03, 0.02)
UNQUALIFIED_ROLES = ("Influencer", "Not involved", "influencer ", "NOT INVOLVED", "Final decision-maker", "Other", "")
"""Decision roles that do not qualify (those matching an allowed value are left out); "" is a blank answer."""
INVALID_DURATIONS = ("", "n/a", "12:34", "5 min", "-45", "1,250", "1e3", "340s", ".5", "600.")
"""Duration texts that are not `[0-9]+(\\.[0-9]+)?` after trimming; the first, blank, is always planted."""
UNKNOWN_CROS = ("Acme Clinical", "Globex Research Partners", "Initech Trials", "Northwind Clinicals")
MISSING_RESPONDENT_IDS = ("", "   ")
COMMENTS = (
    "Solid partner.",
    "Would work with them again.",
    "Great site start-up; slow database lock.",
    'Strong team, but "flexible" with timelines.',
    "PM changed twice, which hurt continuity.\nOtherwise fine.",
    "Excellent biostatistics, data management and monitoring.",
    'They said "no problem", then missed the deadline.\nTwice.',
    "Good value for money",
    "Responsive, knowledgeable, pragmatic.",
)

_MAX_CROS_PER_RESPONDENT = 10
_MISSING_SHARE = 0.08
_PHASE_1_BLANK_SHARE = 0.75
_COMMENT_SHARE = 0.03
_BIG_PHARMA_SHARE = 0.35
_MIN_BAD_BUDGET = 10
_MIN_ROWS_WITH_BAD = 200
_XLSX_MAX_ROWS = 1_048_576
_CSV_BATCH_ROWS = 1 << 17


def recency_window(config: dict) -> tuple[dt.date, dt.date]:
    """The inclusive (first day, last day) window for `last_engaged`: `recency_months` before `survey_close`.

    The first day is `survey_close` moved back by `recency_months` calendar months, the day of the month
    clipped to the target month's length (2024-02-29 and 18 months give 2022-08-29).
    """
    close = _as_date(config["survey_close"])
    months = int(config.get("recency_months", 18))
    total = close.year * 12 + close.month - 1 - months
    year, month = divmod(total, 12)
    month += 1
    day = min(close.day, calendar.monthrange(year, month)[1])
    return dt.date(year, month, day), close


def generate_export(config: dict, *, n_evaluations: int, seed: int, bad_rows: bool = True) -> pa.Table:
    """A synthetic export of `n_evaluations` rows for the survey `config` (the YAML as a dict).

    All columns are strings in export order (see the module contract); the same arguments give the same
    table. With `bad_rows`, defective rows of every kind are planted; `planted_rows` lists them.
    Raises `ValueError` for fewer than one row, or fewer than 200 rows when `bad_rows` is set.
    """
    n = int(n_evaluations)
    if n < 1:
        raise ValueError("n_evaluations must be at least 1")
    if bad_rows and n < _MIN_ROWS_WITH_BAD:
        raise ValueError(
            f"bad_rows=True needs n_evaluations >= {_MIN_ROWS_WITH_BAD} to keep the share of bad rows at 5% or less"
        )
    spec = _Spec(config)
    root = np.random.default_rng(seed)
    rng_sample, rng_ratings, rng_tricky, rng_bad = root.spawn(4)
    columns = _sample(spec, n, rng_sample, rng_ratings)
    planted: list[dict[str, Any]] = []
    planter = _Planter(spec, columns, planted)
    planter.plant_tricky(rng_tricky)
    screens = spec.screens
    if screens.configured:
        # Spawned after the four above, so that a year without screens draws exactly what it always drew.
        rng_screen_values, rng_screen_tricky, rng_screen_bad = root.spawn(3)
        _screen_values(spec, columns, rng_screen_values)
        planter.plant_screen_tricky(rng_screen_tricky)
    if bad_rows:
        planter.plant_bad(rng_bad)
        if screens.configured:
            planter.plant_screen_bad(rng_screen_bad)
    if screens.min_ratings is not None:
        planter.break_straight_lines()
    return _to_table(spec, columns, planted, seed)


def planted_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The planted bad rows and tricky valid rows recorded by `generate_export`, ordered by row.

    Each item has `row` (1 = first data row), `kinds` (defect codes in the contract's order; empty for a
    valid tricky row), `column`, `value`, for duplicates `original_row`, for a row with an invalid rating
    beside another defect `rating_column` and `rating_value`, for a row screened out only because another
    row of its respondent is `screened_by` (that row's number), for the fast row that also has
    `unknown_cro` `duration_column` and `duration_value`, and for the unqualified row without a respondent
    id `respondent_id` (its blank text). A table without the record gives [].
    """
    metadata = table.schema.metadata or {}
    if METADATA_KEY not in metadata:
        return []
    return json.loads(metadata[METADATA_KEY])["rows"]


def write_export(table: pa.Table, path: str | Path) -> None:
    """Write `table` to `path` as CSV, Excel or Parquet, chosen by the suffix (see the module contract).

    Raises `ValueError` for another suffix, or for an .xlsx with more rows than a worksheet holds.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        _write_csv(table, path)
    elif suffix == ".xlsx":
        _write_xlsx(table, path)
    elif suffix == ".parquet":
        _write_parquet(table, path)
    else:
        raise ValueError(f"{path}: unsupported export type {suffix or '(no suffix)'!r}; use .csv, .xlsx or .parquet")


# --- configuration ---------------------------------------------------------------------------------


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value).strip())


class _Spec:
    """What the generator needs from the configuration, in a fixed order."""

    def __init__(self, config: dict) -> None:
        scale = config.get("rating_scale") or {}
        self.lo = int(scale.get("min", 1))
        self.hi = int(scale.get("max", 5))
        self.big_pharma = float(config.get("big_pharma_min_rd_spend_musd", 1000))
        self.start, self.close = recency_window(config)
        self.cro_names = [str(cro["name"]) for cro in config["cros"]]
        self.cro_aliases = [[str(alias) for alias in (cro.get("aliases") or [])] for cro in config["cros"]]
        self.attributes = [str(attribute) for attribute in config["attributes"]]
        self.phase_1 = np.array(["phase_1" in attribute for attribute in self.attributes])
        known = {
            _key(s) for name, aliases in zip(self.cro_names, self.cro_aliases, strict=True) for s in (name, *aliases)
        }
        self.unknown_cros = [name for name in UNKNOWN_CROS if _key(name) not in known]
        self.screens = _Screens(config)
        self.columns = [*CONTRACT_COLUMNS, *self.screens.columns(), *self.attributes, COMMENTS_COLUMN]
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(
                f"screens: a screen's column ({', '.join(self.screens.columns())}) is also a contract column, an "
                "attribute id, comments or the other screen's column; name a column of its own"
            )
        renaming = config.get("columns") or {}
        header_for: dict[str, str] = {}
        for header, column in renaming.items():
            header_for.setdefault(str(column), str(header))
        self.names = [header_for.get(c, c) for c in self.columns]
        self._build_vocabularies()

    def _build_vocabularies(self) -> None:
        variants: list[str] = []
        self.cro_base = []
        self.cro_n_aliases = []
        for name, aliases in zip(self.cro_names, self.cro_aliases, strict=True):
            self.cro_base.append(len(variants))
            self.cro_n_aliases.append(len(aliases))
            shortest = min(aliases, key=len) if aliases else name
            variants += [name, *aliases]
            variants += [name.lower(), name.upper(), f" {name} ", f"  {shortest.lower()} ", f"{name}  "]
        self.cro_base = np.array(self.cro_base, dtype=np.int32)
        self.cro_n_aliases = np.array(self.cro_n_aliases, dtype=np.int32)
        self.n_case_variants = 5
        self.unknown_base = len(variants)
        self.cro_vocab = variants + self.unknown_cros

        values = [str(v) for v in range(self.lo, self.hi + 1)]
        self.n_values = len(values)
        self.missing_base = self.n_values
        tricky_forms = ("{}.0", " {} ", "0{}", "{}.")
        self.tricky_base = self.missing_base + len(MISSING_FORMS)
        tricky = [form.format(v) for form in tricky_forms for v in values]
        self.n_tricky_forms = len(tricky_forms)
        self.invalid_base = self.tricky_base + len(tricky)
        middle = self.lo + (self.hi - self.lo) // 2
        self.invalid_ratings = [
            str(self.hi + 1),
            str(self.lo - 1),
            f"{middle}.5",
            "four",
            "nan",
            f"{self.hi - 1},0",
            f"{self.lo}e0",
            "-",
        ]
        self.rating_vocab = values + list(MISSING_FORMS) + tricky + self.invalid_ratings
        self.code_type = np.int8 if len(self.rating_vocab) <= 127 else np.int32

        self.date_margin = 400
        self.date_first = self.start - dt.timedelta(days=self.date_margin)
        n_dates = (self.close - self.date_first).days + self.date_margin + 1
        self.window_days = (self.close - self.start).days
        first = (self.date_first - dt.date(1970, 1, 1)).days
        self.date_vocab = pa.array(np.arange(first, first + n_dates, dtype=np.int32), pa.date32()).cast(pa.string())
        self.invalid_date_base = n_dates

    def date_code(self, day: dt.date) -> int:
        """The date vocabulary index of `day` (within the margin around the window)."""
        return (day - self.date_first).days


class _Screens:
    """The respondent screens the YAML's `screens:` configures (each None when absent)."""

    def __init__(self, config: dict) -> None:
        screens = config.get("screens") or {}
        qualification = screens.get("qualification") or None
        straight_lining = screens.get("straight_lining") or None
        speeding = screens.get("speeding") or None
        self.role_column = str(qualification["column"]) if qualification else None
        self.allowed = [str(value) for value in qualification.get("allowed") or ()] if qualification else []
        if qualification and not [value for value in self.allowed if _key(value)]:
            raise ValueError("screens.qualification.allowed lists no answer; list the answers that qualify")
        self.min_ratings = int(straight_lining["min_ratings"]) if straight_lining else None
        self.duration_column = str(speeding["column"]) if speeding else None
        self.min_seconds = float(speeding["min_seconds"]) if speeding else None
        self.configured = any((qualification, straight_lining, speeding))

    def columns(self) -> list[str]:
        """The export columns the screens read, in export order: the role, then the duration."""
        return [column for column in (self.role_column, self.duration_column) if column is not None]


def _key(text: str) -> str:
    return text.strip(" \t\r\n\u00a0").lower()


# --- good rows -------------------------------------------------------------------------------------


def _respondent_counts(n: int, n_cros: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(CROs rated per respondent, big-pharma flag per respondent), the counts summing to `n`."""
    k_max = min(_MAX_CROS_PER_RESPONDENT, n_cros)
    n_respondents = max(1, min(n, max(math.ceil(n / k_max), round(n / 5))))
    big = rng.random(n_respondents) < _BIG_PHARMA_SHARE
    activity = rng.gamma(2.0, 1.0, n_respondents) * np.where(big, 1.3, 1.0)
    counts = np.ones(n_respondents, dtype=np.int64)
    remaining = n - n_respondents
    while remaining > 0:
        open_ = np.flatnonzero(counts < k_max)
        weights = activity[open_] / activity[open_].sum()
        extra = np.minimum(rng.multinomial(remaining, weights), k_max - counts[open_])
        counts[open_] += extra
        remaining -= int(extra.sum())
    return counts, big


def _popularity(n: int, n_cros: int, rng: np.random.Generator) -> np.ndarray:
    """Selection weights per CRO: log-normal skew, and up to three niche CROs with a handful of evaluations."""
    weights = rng.lognormal(0.0, 0.7, n_cros)
    weights /= weights.sum()
    n_niche = min(3, n_cros // 10)
    if n_niche:
        niche = rng.choice(n_cros, n_niche, replace=False)
        weights[niche] = np.array([2.0, 3.5, 5.0][:n_niche]) / max(n, 1)
    return weights


def _choose_cros(counts: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per row, the CRO index: each respondent's `counts[i]` distinct CROs, drawn by weight without replacement."""
    n_cros = len(weights)
    out = []
    chunk = 1 << 16
    for begin in range(0, len(counts), chunk):
        k = counts[begin : begin + chunk]
        keys = rng.standard_exponential((len(k), n_cros)) / weights
        order = np.argsort(keys, axis=1).astype(np.int32)
        out.append(order[np.arange(n_cros) < k[:, None]])
    return np.concatenate(out)


def _spend_vocab(spec: _Spec, big: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """One R&D spend text per respondent (USD millions), some small-pharma ones with one decimal.

    With the usual threshold of 1000, big pharma spends 1000 to 12000 and small pharma 1 to 999.
    """
    n = len(big)
    threshold = max(math.ceil(spec.big_pharma), 2)
    big_tenths = np.floor(np.exp(rng.uniform(np.log(threshold), np.log(12 * threshold + 1), n))) * 10
    small = np.clip(rng.lognormal(np.log(0.12 * threshold), 1.1, n), 1.0, threshold - 1.0)
    decimals = rng.random(n) < 0.3
    small_tenths = np.where(decimals, np.round(small * 10), np.round(small) * 10)
    tenths = np.where(big, big_tenths, np.clip(small_tenths, 10, (threshold - 1) * 10)).astype(np.int64)
    threshold_tenths = round(spec.big_pharma * 10)
    if n >= 4:
        picks = rng.choice(n, 2, replace=False)
        tenths[picks[0]] = threshold_tenths
        tenths[picks[1]] = max(threshold_tenths - 5, 10)
    return _tenths_text(tenths)


def _tenths_text(tenths: np.ndarray) -> pa.Array:
    """The decimal text of whole tenths (int64): "1234" for 12340, "87.5" for 875."""
    whole = pa.array(tenths // 10).cast(pa.string())
    fraction = pa.array(tenths % 10).cast(pa.string())
    with_decimal = pc.binary_join_element_wise(whole, fraction, ".")
    return pc.if_else(pa.array(tenths % 10 != 0), with_decimal, whole)


def _seconds_text(seconds: float) -> str:
    """A number of seconds as an export writes it: "120" for 120.0, "90.25" for 90.25 (never an exponent)."""
    return str(int(seconds)) if float(seconds).is_integer() else format(Decimal(repr(float(seconds))), "f")


def _role_spellings(value: str) -> dict[str, str]:
    text = value.strip(" \t\r\n\u00a0")
    return {
        "sentence": text[:1].upper() + text[1:].lower(),
        "lower": text.lower(),
        "title": text.title(),
        "upper": text.upper(),
    }


def _screen_values(spec: _Spec, c: dict[str, Any], rng: np.random.Generator) -> None:
    """The good rows' screen columns, added to `c`: one decision role and one duration per respondent.

    Roles are the allowed values (the first for about 55% of respondents, the others sharing the rest),
    80% in sentence case ("Final decision maker"), else in another case or with spaces around. Durations
    grow with the number of CROs rated, are whole seconds for 80% of respondents (else one decimal) and at
    least `min_seconds * 1.25 + 30`.
    """
    screens = spec.screens
    respondent = c["respondent"]
    counts = np.bincount(respondent)
    n_respondents = len(counts)
    if screens.role_column is not None:
        allowed: dict[str, str] = {}
        for value in screens.allowed:
            if _key(value):
                allowed.setdefault(_key(value), value)
        values = list(allowed.values())
        vocab = [form.format(**_role_spellings(value)) for value in values for form in ROLE_FORMS]
        share = np.array([0.55] + [0.45 / (len(values) - 1)] * (len(values) - 1)) if len(values) > 1 else np.ones(1)
        role = rng.choice(len(values), size=n_respondents, p=share)
        form = rng.choice(len(ROLE_FORMS), size=n_respondents, p=ROLE_FORM_SHARES)
        c["role_vocab"] = vocab + [text for text in UNQUALIFIED_ROLES if _key(text) not in allowed]
        c["unqualified_base"] = len(vocab)
        c["role_code"] = (role * len(ROLE_FORMS) + form).astype(np.int32)[respondent]
    if screens.duration_column is not None:
        floor = screens.min_seconds * 1.25 + 30.0
        seconds = rng.lognormal(np.log(240.0 + 75.0 * counts), 0.45)
        low = seconds < floor
        seconds[low] = floor + rng.uniform(0.0, 240.0, int(low.sum()))
        decimal = rng.random(n_respondents) < 0.2
        tenths = np.where(decimal, np.ceil(seconds * 10), np.ceil(seconds) * 10).astype(np.int64)
        c["duration_vocab"] = _tenths_text(tenths)
        c["duration_code"] = respondent.astype(np.int32)
        c["extra_durations"] = []


def _respondent_ids(n: int) -> pa.Array:
    width = max(6, len(str(n)))
    digits = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise("R", digits, "")


def _sample(spec: _Spec, n: int, rng: np.random.Generator, rng_ratings: np.random.Generator) -> dict[str, Any]:
    """The good rows as vocabulary codes (numpy arrays) plus the vocabularies they index."""
    n_cros = len(spec.cro_names)
    counts, big = _respondent_counts(n, n_cros, rng)
    n_respondents = len(counts)
    respondent = np.repeat(np.arange(n_respondents, dtype=np.int32), counts)
    popularity = _popularity(n, n_cros, rng)
    cro = _choose_cros(counts, popularity, rng)
    spend_vocab = _spend_vocab(spec, big, rng)

    kind = rng.choice(3, size=n, p=[0.80, 0.12, 0.08])
    pick = rng.random(n)
    n_aliases = spec.cro_n_aliases[cro]
    alias_offset = 1 + np.floor(pick * np.maximum(n_aliases, 1)).astype(np.int32)
    case_offset = 1 + n_aliases + np.floor(pick * spec.n_case_variants).astype(np.int32)
    offset = np.where(kind == 1, np.where(n_aliases > 0, alias_offset, 0), np.where(kind == 2, case_offset, 0))
    cro_code = spec.cro_base[cro] + offset

    date_code = spec.date_code(spec.start) + rng.integers(0, spec.window_days + 1, n)
    comment_code = np.zeros(n, dtype=np.int8)
    commented = np.flatnonzero(rng.random(n) < _COMMENT_SHARE)
    comment_code[commented] = 1 + rng.integers(0, len(COMMENTS), len(commented))

    popular = np.flatnonzero(popularity >= np.median(popularity))
    ratings = _ratings(spec, cro, respondent, big, popular, rng_ratings)
    return {
        "n": n,
        "respondent": respondent,
        "cro": cro,
        "respondent_vocab": pa.concat_arrays([_respondent_ids(n_respondents), pa.array(MISSING_RESPONDENT_IDS)]),
        "respondent_code": respondent.copy(),
        "spend_vocab": pa.concat_arrays([spend_vocab, pa.array(INVALID_RD_SPEND)]),
        "spend_code": respondent.copy(),
        "cro_code": cro_code.astype(np.int32),
        "date_code": date_code.astype(np.int32),
        "date_vocab": spec.date_vocab,
        "extra_dates": [],
        "ratings": ratings,
        "comment_code": comment_code,
    }


def _ratings(
    spec: _Spec,
    cro: np.ndarray,
    respondent: np.ndarray,
    big: np.ndarray,
    popular: np.ndarray,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """One code array per attribute: a scale value or a missing form; every row has a rating.

    Two of the `popular` CROs are standouts and two CROs lag, so that awards have clear winners.
    """
    n = len(cro)
    n_cros = len(spec.cro_names)
    n_attributes = len(spec.attributes)
    quality = rng.normal(3.8, 0.3, n_cros)
    standouts = rng.choice(popular, size=min(2, len(popular)), replace=False)
    laggards = rng.permutation(np.setdiff1d(np.arange(n_cros), standouts))[:2]
    quality[standouts] += 0.75
    quality[laggards] -= 0.5
    cro_attribute = rng.normal(0.0, 0.25, (n_cros, n_attributes))
    attribute_shift = rng.normal(0.0, 0.12, n_attributes)
    leniency = rng.normal(0.0, 0.45, len(big)) - np.where(big, 0.1, 0.0)
    base = quality[cro] + leniency[respondent] + rng.normal(0.0, 0.35, n)
    missing_rate = _MISSING_SHARE * np.exp(rng.normal(0.0, 0.35, n_attributes))
    regular = ~spec.phase_1
    if regular.any():
        missing_rate *= _MISSING_SHARE / missing_rate[regular].mean()
    phase_1_blank = rng.random(n) < _PHASE_1_BLANK_SHARE
    span = (spec.hi - spec.lo) / 4.0
    form_p = [0.55, 0.25, 0.12, 0.08]

    codes = []
    n_rated = np.zeros(n, dtype=np.int16)
    for a in range(n_attributes):
        latent = base + cro_attribute[cro, a] + attribute_shift[a] + rng.normal(0.0, 0.55, n)
        value = (np.clip(np.rint(spec.lo + (latent - 1.0) * span), spec.lo, spec.hi) - spec.lo).astype(spec.code_type)
        missing = rng.random(n) < missing_rate[a]
        if spec.phase_1[a]:
            missing |= phase_1_blank
        where = np.flatnonzero(missing)
        form = rng.choice(len(MISSING_FORMS), size=len(where), p=form_p)
        if spec.phase_1[a]:
            form[phase_1_blank[where] & (rng.random(len(where)) < 0.85)] = 0
        value[where] = spec.missing_base + form
        n_rated += ~missing
        codes.append(value)
    unrated = np.flatnonzero(n_rated == 0)
    if len(unrated):
        candidates = np.flatnonzero(regular) if regular.any() else np.arange(n_attributes)
        chosen = candidates[rng.integers(0, len(candidates), len(unrated))]
        fill = np.clip(np.rint(spec.lo + (base[unrated] - 1.0) * span), spec.lo, spec.hi) - spec.lo
        for a in np.unique(chosen):
            rows = unrated[chosen == a]
            codes[a][rows] = fill[chosen == a]
    return codes


# --- planted rows ----------------------------------------------------------------------------------


class _Planter:
    """Rewrites a few rows of the code arrays, recording each one in `planted`."""

    def __init__(self, spec: _Spec, columns: dict[str, Any], planted: list[dict[str, Any]]) -> None:
        self.spec = spec
        self.c = columns
        self.planted = planted
        self.n = columns["n"]
        self.free = np.ones(self.n, dtype=bool)

    def _take_rows(self, rng: np.random.Generator, k: int) -> np.ndarray:
        free = np.flatnonzero(self.free)
        if k > len(free):
            raise ValueError("not enough rows to plant the requested values; generate more evaluations")
        rows = np.sort(rng.choice(free, size=k, replace=False))
        self.free[rows] = False
        return rows

    def _record(self, row: int, kinds: list[str], column: str, value: str, **extra: Any) -> None:
        self.planted.append({"row": int(row) + 1, "kinds": kinds, "column": column, "value": value, **extra})

    def _rated(self, row: int) -> list[int]:
        return [a for a, codes in enumerate(self.c["ratings"]) if codes[row] < self.spec.n_values]

    def _cro_text(self, code: int) -> str:
        return self.spec.cro_vocab[code]

    def _rating_text(self, code: int) -> str:
        return self.spec.rating_vocab[code]

    def _extra_date(self, text: str) -> int:
        extra = self.c["extra_dates"]
        if text not in extra:
            extra.append(text)
        return self.spec.invalid_date_base + extra.index(text)

    def plant_tricky(self, rng: np.random.Generator) -> None:
        """Valid values a strict reader might trip on: rating spellings and the window's edge days.

        Each spelling and each edge day goes to `_scale(n)` rows, or to fewer when the export is tiny.
        """
        spec = self.spec
        cycle = [("rating", 0), ("date", spec.start), ("rating", 1), ("date", spec.close)]
        cycle += [("rating", form) for form in range(2, spec.n_tricky_forms)]
        tasks = cycle * _scale(self.n)
        tasks = tasks[: min(len(tasks), int(self.free.sum()))]
        for (what, how), row in zip(tasks, self._take_rows(rng, len(tasks)), strict=False):
            if what == "date":
                self.c["date_code"][row] = spec.date_code(how)
                self._record(row, [], "last_engaged", how.isoformat())
                continue
            rated = self._rated(row)
            a = rated[rng.integers(0, len(rated))]
            code = spec.tricky_base + how * spec.n_values + int(self.c["ratings"][a][row])
            self.c["ratings"][a][row] = code
            self._record(row, [], spec.attributes[a], self._rating_text(code))

    def plant_bad(self, rng: np.random.Generator) -> None:
        """Defective rows of every kind in `DEFECT_KINDS`, plus rows with two defects.

        Within a kind, consecutive rows take consecutive entries of the kind's list of bad values from a
        seeded starting point, so that a few rows show different values.
        """
        scale = _scale(self.n)
        counts = {kind: int(rng.integers(2, 5)) * scale for kind in DEFECT_KINDS}
        floors = {kind: 2 if kind == "duplicate_evaluation" else 1 for kind in DEFECT_KINDS}
        n_double = scale
        budget = max(_MIN_BAD_BUDGET, int(0.05 * self.n))
        while sum(counts.values()) + n_double > budget:
            reducible = [kind for kind in DEFECT_KINDS if counts[kind] > floors[kind]]
            if not reducible:
                break
            counts[max(reducible, key=lambda kind: counts[kind] - floors[kind])] -= 1
        self._plant_duplicates(rng, counts["duplicate_evaluation"])
        single = [kind for kind in DEFECT_KINDS if kind != "duplicate_evaluation"]
        rows = self._take_rows(rng, sum(counts[kind] for kind in single) + n_double)
        rng.shuffle(rows)
        start = 0
        for kind in single:
            first_pick = int(rng.integers(0, 1 << 16))
            for i, row in enumerate(rows[start : start + counts[kind]]):
                getattr(self, f"_{kind}")(rng, int(row), first_pick + i)
            start += counts[kind]
        for row in rows[start:]:
            self._unknown_cro(rng, int(row), int(rng.integers(0, 1 << 16)), kinds=["unknown_cro", "invalid_rating"])
            self._invalid_rating(rng, int(row), int(rng.integers(0, 1 << 16)), record=False)
        self.planted.sort(key=lambda item: item["row"])

    def _plant_duplicates(self, rng: np.random.Generator, k: int) -> None:
        respondent_counts = np.bincount(self.c["respondent"])
        starts = np.concatenate([[0], np.cumsum(respondent_counts)[:-1]])
        free_counts = np.add.reduceat(self.free.astype(np.int64), starts)
        eligible = np.flatnonzero(free_counts >= 2)
        if len(eligible) < k:
            raise ValueError("not enough respondents with two evaluations to plant duplicates")
        for i, respondent in enumerate(rng.choice(eligible, size=k, replace=False)):
            block = np.arange(starts[respondent], starts[respondent] + respondent_counts[respondent])
            block = block[self.free[block]]
            first, second = (int(row) for row in np.sort(rng.choice(block, size=2, replace=False)))
            self.free[[first, second]] = False
            cro = int(self.c["cro"][first])
            self.c["cro"][second] = cro
            code = int(self.c["cro_code"][first])
            if i == 0:
                base = int(self.spec.cro_base[cro])
                n_variants = 1 + int(self.spec.cro_n_aliases[cro]) + self.spec.n_case_variants
                others = [base + v for v in range(n_variants) if base + v != code]
                code = others[rng.integers(0, len(others))]
            self.c["cro_code"][second] = code
            self.c["date_code"][second] = self.c["date_code"][first]
            if all(codes[first] == codes[second] for codes in self.c["ratings"]):
                a = self._rated(second)[0]
                value = int(self.c["ratings"][a][second])
                self.c["ratings"][a][second] = value + 1 if value + 1 < self.spec.n_values else value - 1
            self._record(second, ["duplicate_evaluation"], "cro", self._cro_text(code), original_row=first + 1)

    def _missing_respondent_id(self, rng: np.random.Generator, row: int, pick: int) -> None:
        choice = pick % len(MISSING_RESPONDENT_IDS)
        self.c["respondent_code"][row] = len(self.c["respondent_vocab"]) - len(MISSING_RESPONDENT_IDS) + choice
        self._record(row, ["missing_respondent_id"], "respondent_id", MISSING_RESPONDENT_IDS[choice])

    def _invalid_rd_spend(self, rng: np.random.Generator, row: int, pick: int) -> None:
        choice = pick % len(INVALID_RD_SPEND)
        self.c["spend_code"][row] = len(self.c["spend_vocab"]) - len(INVALID_RD_SPEND) + choice
        self._record(row, ["invalid_rd_spend"], "rd_spend_musd", INVALID_RD_SPEND[choice])

    def _unknown_cro(self, rng: np.random.Generator, row: int, pick: int, kinds: list[str] | None = None) -> None:
        code = self.spec.unknown_base + pick % len(self.spec.unknown_cros)
        self.c["cro_code"][row] = code
        self._record(row, kinds or ["unknown_cro"], "cro", self._cro_text(code))

    def _invalid_last_engaged(self, rng: np.random.Generator, row: int, pick: int) -> None:
        spec = self.spec
        days = [spec.start + dt.timedelta(days=d) for d in range(1, spec.window_days)] or [spec.close]
        small = [d for d in days if d.month < 10 and d.day < 10] or days
        late = [d for d in days if d.day > 12] or days
        d1 = small[rng.integers(0, len(small))]
        d2 = late[rng.integers(0, len(late))]
        forms = [
            f"{d1.year}-{d1.month}-{d1.day}",
            f"{d2.year}-02-30",
            d2.strftime("%d/%m/%Y"),
            f"{d1.isoformat()} 10:00",
            "",
        ]
        text = forms[pick % len(forms)]
        self.c["date_code"][row] = self._extra_date(text)
        self._record(row, ["invalid_last_engaged"], "last_engaged", text)

    def _outside_recency_window(self, rng: np.random.Generator, row: int, pick: int) -> None:
        spec = self.spec
        choices = [
            spec.start - dt.timedelta(days=1),
            spec.close + dt.timedelta(days=1),
            spec.start - dt.timedelta(days=int(rng.integers(2, spec.date_margin))),
            spec.close + dt.timedelta(days=int(rng.integers(2, 60))),
        ]
        day = choices[pick % len(choices)]
        self.c["date_code"][row] = spec.date_code(day)
        self._record(row, ["outside_recency_window"], "last_engaged", day.isoformat())

    def _invalid_rating(self, rng: np.random.Generator, row: int, pick: int, record: bool = True) -> None:
        spec = self.spec
        rated = self._rated(row)
        attributes = [a for a in range(len(spec.attributes)) if rated != [a]]
        a = attributes[rng.integers(0, len(attributes))]
        code = spec.invalid_base + pick % len(spec.invalid_ratings)
        self.c["ratings"][a][row] = code
        if record:
            self._record(row, ["invalid_rating"], spec.attributes[a], self._rating_text(code))
        else:
            self.planted[-1]["rating_column"] = spec.attributes[a]
            self.planted[-1]["rating_value"] = self._rating_text(code)

    def _no_ratings(self, rng: np.random.Generator, row: int, pick: int) -> None:
        spec = self.spec
        forms = rng.integers(0, len(MISSING_FORMS), len(spec.attributes))
        for a, form in enumerate(forms):
            self.c["ratings"][a][row] = spec.missing_base + int(form)
        self._record(row, ["no_ratings"], "*", "")

    # --- the respondent screens --------------------------------------------------------------------

    def _take_respondent(self, rng: np.random.Generator, least: int, most: int) -> np.ndarray | None:
        """The rows of a seeded respondent with `least` to `most` rows, all still free (now taken); None if none."""
        counts = np.bincount(self.c["respondent"])
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        whole = np.add.reduceat(self.free.astype(np.int64), starts) == counts
        eligible = np.flatnonzero(whole & (counts >= least) & (counts <= most))
        if not len(eligible) or most < least:
            return None
        respondent = int(eligible[rng.integers(0, len(eligible))])
        rows = np.arange(starts[respondent], starts[respondent] + counts[respondent])
        self.free[rows] = False
        return rows

    def _role_text(self, row: int) -> str:
        return self.c["role_vocab"][int(self.c["role_code"][row])]

    def _set_role(self, row: int, text: str) -> None:
        vocab = self.c["role_vocab"]
        if text not in vocab[self.c["unqualified_base"] :]:
            vocab.append(text)
        self.c["role_code"][row] = vocab.index(text, self.c["unqualified_base"])

    def _duration_text(self, row: int) -> str:
        code = int(self.c["duration_code"][row])
        vocab = self.c["duration_vocab"]
        return vocab[code].as_py() if code < len(vocab) else self.c["extra_durations"][code - len(vocab)]

    def _set_duration(self, row: int, text: str) -> None:
        extra = self.c["extra_durations"]
        if text not in extra:
            extra.append(text)
        self.c["duration_code"][row] = len(self.c["duration_vocab"]) + extra.index(text)

    def _speeder_text(self, rng: np.random.Generator, first: bool) -> str:
        """A well-formed duration below `min_seconds`: just below it for the `first`, else 20-100% of it."""
        below = math.ceil(self.spec.screens.min_seconds * 10) - 1
        tenths = below if first else int(rng.integers(below // 5, below + 1))
        if not first and rng.random() < 0.8:
            tenths -= tenths % 10
        return _tenths_text(np.array([tenths], dtype=np.int64))[0].as_py()

    def _values(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Per attribute and row, the rating's value index (0 = the scale's minimum), -1 if not a valid rating."""
        spec = self.spec
        out = []
        for codes in self.c["ratings"]:
            code = codes[rows].astype(np.int16)
            tricky = (code >= spec.tricky_base) & (code < spec.invalid_base)
            value = np.where(code < spec.n_values, code, -1)
            out.append(np.where(tricky, (code - spec.tricky_base) % spec.n_values, value))
        return np.stack(out)

    def _straight_line(self, row: int, value: int) -> None:
        """Every valid rating of `row` becomes `value` (a value index), and unanswered attributes (regular ones
        first) are answered `value` until at least `min_ratings` are."""
        spec = self.spec
        answered = self._values(slice(row, row + 1))[:, 0] >= 0
        order = [a for a in range(len(spec.attributes)) if not spec.phase_1[a]]
        order += [a for a in range(len(spec.attributes)) if spec.phase_1[a]]
        for a in order:
            if not answered[a] and answered.sum() < spec.screens.min_ratings:
                answered[a] = True
        for a in np.flatnonzero(answered):
            self.c["ratings"][a][row] = value

    def plant_screen_tricky(self, rng: np.random.Generator) -> None:
        """Valid screen answers a strict reader might trip on, for the configured screens.

        A respondent (2 to 4 rows) whose duration is exactly `min_seconds`; three rows whose duration is
        spelt with spaces around, a leading zero or a trailing zero; a row with `min_ratings - 1` equal
        ratings and the rest unanswered (too few to be judged straight-lining). Each `_scale(n)` times.
        """
        spec, screens = self.spec, self.spec.screens
        for _ in range(_scale(self.n)):
            if screens.duration_column is not None:
                rows = self._take_respondent(rng, 2, 4)
                text = _seconds_text(screens.min_seconds)
                for row in rows if rows is not None else ():
                    self._set_duration(int(row), text)
                    self._record(int(row), [], screens.duration_column, text)
                for form, row in zip((" {} ", "0{}", "{}0"), self._take_rows(rng, 3), strict=True):
                    text = self._duration_text(int(row))
                    text = form.format(text if "." in text or form != "{}0" else text + ".")
                    self._set_duration(int(row), text)
                    self._record(int(row), [], screens.duration_column, text)
            if screens.min_ratings is not None and screens.min_ratings - 1 <= len(spec.attributes):
                [row] = self._take_rows(rng, 1)
                value = spec.n_values - 1
                answered = [a for a in range(len(spec.attributes)) if not spec.phase_1[a]]
                answered = answered + [a for a in range(len(spec.attributes)) if spec.phase_1[a]]
                for position, a in enumerate(answered):
                    self.c["ratings"][a][row] = value if position < screens.min_ratings - 1 else spec.missing_base
                self._record(int(row), [], "*", spec.rating_vocab[value])

    def plant_screen_bad(self, rng: np.random.Generator) -> None:
        """Planted failures of each configured screen, each row with exactly one defect unless said otherwise.

        - `not_qualified`: respondents (1 to 5 rows; the first with 2 or more) whose every row has one role
          outside `allowed` (the roles of `UNQUALIFIED_ROLES` in turn, blank among them); a respondent (2 to
          4 rows) with one blank role and the others allowed (all their rows get the reason; `screened_by`
          names the row that has it); a row without a respondent id whose role is not allowed
          (`missing_respondent_id` and `not_qualified`: judged alone, the respondent's other rows pass).
        - `invalid_duration`: single rows, a blank one first, then texts of `INVALID_DURATIONS` in turn.
        - `speeding` (when `min_seconds` > 0): respondents (1 to 5 rows; the first with 2 or more, just below
          `min_seconds`) whose every row is below `min_seconds`; a respondent (2 to 4 rows) with one fast row
          (which also has `unknown_cro`: the reason spreads whatever else the row has), the others not.
        - `straight_lining`: single rows with all valid ratings equal on at least `min_ratings` attributes
          (the first with one rating spelt "5.0" or alike), and one that also has an invalid rating (which
          does not count: `invalid_rating` and `straight_lining`).
        Counts, each times `_scale(n)`: 4 to 7 screened-out respondents per screen, 4 to 6 straight-lined
        rows, 3 to 5 invalid durations, one spread respondent per screen and one straight-lined row with an
        invalid rating; one row without a respondent id. The budget is `max(10, 5% of n)` screened rows: the
        first task of each kind always runs, its respondent of at most `max(2, budget // kinds)` rows; a
        later task runs only within what is left of the budget.
        """
        spec, screens = self.spec, self.spec.screens
        scale = _scale(self.n)
        plan: list[tuple[str, int]] = []
        if screens.role_column is not None:
            plan += [("qualification_respondent", int(rng.integers(4, 8)) * scale), ("qualification_spread", scale)]
            plan += [("qualification_alone", 1)]
        if screens.duration_column is not None:
            plan += [("invalid_duration", int(rng.integers(3, 6)) * scale)]
            if screens.min_seconds > 0:
                plan += [("speeding_respondent", int(rng.integers(4, 8)) * scale), ("speeding_spread", scale)]
        if screens.min_ratings is not None and screens.min_ratings <= len(spec.attributes):
            plan += [("straight_lining", int(rng.integers(4, 7)) * scale)]
            if screens.min_ratings < len(spec.attributes):
                plan += [("straight_lining_invalid", scale)]
        rounds = max((count for _, count in plan), default=0)
        tasks = [(task, i) for i in range(rounds) for task, count in plan if i < count]
        budget = max(_MIN_BAD_BUDGET, int(0.05 * self.n))
        self._screened = 0
        self._pick = int(rng.integers(0, 1 << 16))
        for task, i in tasks:
            room = budget - self._screened if i > 0 else max(2, budget // len(plan))
            if room > 0:
                getattr(self, f"_{task}")(rng, i, room)
        self.planted.sort(key=lambda item: item["row"])

    def _screen_respondent(self, rows: np.ndarray, source: int | None, kind: str, column: str, text: str) -> None:
        for row in rows:
            row = int(row)
            extra = {} if source is None or row == source else {"screened_by": source + 1}
            value = (
                text
                if source is None or row == source
                else (self._role_text(row) if kind == "not_qualified" else self._duration_text(row))
            )
            self._record(row, [kind], column, value, **extra)
        self._screened += len(rows)

    def _qualification_respondent(self, rng: np.random.Generator, i: int, room: int) -> None:
        rows = self._take_respondent(rng, 2 if i == 0 else 1, min(5, room))
        if rows is None:
            return
        unqualified = self.c["role_vocab"][self.c["unqualified_base"] :]
        text = unqualified[(self._pick + i) % len(unqualified)]
        for row in rows:
            self._set_role(int(row), text)
        self._screen_respondent(rows, None, "not_qualified", self.spec.screens.role_column, text)

    def _qualification_spread(self, rng: np.random.Generator, i: int, room: int) -> None:
        rows = self._take_respondent(rng, 2, min(4, room))
        if rows is None:
            return
        source = int(rows[rng.integers(0, len(rows))])
        unqualified = self.c["role_vocab"][self.c["unqualified_base"] :]
        text = "" if i == 0 else unqualified[int(rng.integers(0, len(unqualified)))]
        self._set_role(source, text)
        self._screen_respondent(rows, source, "not_qualified", self.spec.screens.role_column, text)

    def _qualification_alone(self, rng: np.random.Generator, i: int, room: int) -> None:
        [row] = self._take_rows(rng, 1)
        choice = int(rng.integers(0, len(MISSING_RESPONDENT_IDS)))
        self.c["respondent_code"][row] = len(self.c["respondent_vocab"]) - len(MISSING_RESPONDENT_IDS) + choice
        text = self.c["role_vocab"][self.c["unqualified_base"]]
        self._set_role(int(row), text)
        self._record(
            int(row),
            ["missing_respondent_id", "not_qualified"],
            self.spec.screens.role_column,
            text,
            respondent_id=MISSING_RESPONDENT_IDS[choice],
        )
        self._screened += 1

    def _invalid_duration(self, rng: np.random.Generator, i: int, room: int) -> None:
        [row] = self._take_rows(rng, 1)
        text = INVALID_DURATIONS[0 if i == 0 else 1 + (self._pick + i) % (len(INVALID_DURATIONS) - 1)]
        self._set_duration(int(row), text)
        self._record(int(row), ["invalid_duration"], self.spec.screens.duration_column, text)
        self._screened += 1

    def _speeding_respondent(self, rng: np.random.Generator, i: int, room: int) -> None:
        rows = self._take_respondent(rng, 2 if i == 0 else 1, min(5, room))
        if rows is None:
            return
        text = self._speeder_text(rng, first=i == 0)
        for row in rows:
            self._set_duration(int(row), text)
        self._screen_respondent(rows, None, "speeding", self.spec.screens.duration_column, text)

    def _speeding_spread(self, rng: np.random.Generator, i: int, room: int) -> None:
        rows = self._take_respondent(rng, 2, min(4, room))
        if rows is None:
            return
        source = int(rows[rng.integers(0, len(rows))])
        text = self._speeder_text(rng, first=False)
        self._set_duration(source, text)
        column = self.spec.screens.duration_column
        self._screen_respondent(rows, source, "speeding", column, text)
        if i == 0:
            [record] = [item for item in self.planted if item["row"] == source + 1]
            self.planted.remove(record)
            self._unknown_cro(rng, source, int(rng.integers(0, 1 << 16)), kinds=["unknown_cro", "speeding"])
            self.planted[-1].update({"duration_column": column, "duration_value": text})

    def _straight_lining(self, rng: np.random.Generator, i: int, room: int) -> None:
        spec = self.spec
        [row] = self._take_rows(rng, 1)
        middle = (spec.n_values - 1) // 2
        value = (spec.n_values - 1, middle, max(spec.n_values - 2, 0))[i % 3]
        self._straight_line(int(row), value)
        if i == 0:
            a = int(np.flatnonzero(self._values(slice(row, row + 1))[:, 0] >= 0)[0])
            self.c["ratings"][a][row] = spec.tricky_base + value
        self._record(int(row), ["straight_lining"], "*", spec.rating_vocab[value])
        self._screened += 1

    def _straight_lining_invalid(self, rng: np.random.Generator, i: int, room: int) -> None:
        spec = self.spec
        [row] = self._take_rows(rng, 1)
        value = spec.n_values - 1
        self._straight_line(int(row), value)
        answered = self._values(slice(row, row + 1))[:, 0] >= 0
        unanswered = np.flatnonzero(~answered)
        a = int(unanswered[0]) if len(unanswered) else int(np.flatnonzero(answered)[-1])
        code = spec.invalid_base + int(rng.integers(0, len(spec.invalid_ratings)))
        self.c["ratings"][a][row] = code
        self._record(
            int(row),
            ["invalid_rating", "straight_lining"],
            "*",
            spec.rating_vocab[value],
            rating_column=spec.attributes[a],
            rating_value=self._rating_text(code),
        )
        self._screened += 1

    def break_straight_lines(self) -> None:
        """Rows not planted as straight-lining whose `min_ratings` or more valid ratings are all equal (a
        lenient respondent rating a standout CRO) get one plain rating moved one step: good rows pass."""
        spec = self.spec
        planted = {item["row"] - 1 for item in self.planted if "straight_lining" in item["kinds"]}
        values = self._values()
        answered = values >= 0
        highest = values.max(axis=0)
        lowest = np.where(answered, values, spec.n_values).min(axis=0)
        flagged = (answered.sum(axis=0) >= spec.screens.min_ratings) & (highest == lowest)
        for row in np.flatnonzero(flagged):
            if int(row) in planted:
                continue
            a = next(a for a, codes in enumerate(self.c["ratings"]) if codes[row] < spec.n_values)
            value = int(self.c["ratings"][a][row])
            self.c["ratings"][a][row] = value - 1 if value > 0 else value + 1


def _scale(n: int) -> int:
    """How many times the base number of planted rows: 1 up to a few thousand rows, ~10 at 1.5 million."""
    return 1 + max(0, math.floor(math.log2(n / 2000))) if n > 2000 else 1


# --- table and writers -----------------------------------------------------------------------------


def _to_table(spec: _Spec, c: dict[str, Any], planted: list[dict[str, Any]], seed: int) -> pa.Table:
    date_vocab = pa.concat_arrays([c["date_vocab"], pa.array(c["extra_dates"], pa.string())])
    rating_vocab = pa.array(spec.rating_vocab, pa.string())
    by_column = {
        "respondent_id": pc.take(c["respondent_vocab"], pa.array(c["respondent_code"])),
        "rd_spend_musd": pc.take(c["spend_vocab"], pa.array(c["spend_code"])),
        "cro": pc.take(pa.array(spec.cro_vocab, pa.string()), pa.array(c["cro_code"])),
        "last_engaged": pc.take(date_vocab, pa.array(c["date_code"])),
        **{a: pc.take(rating_vocab, pa.array(codes)) for a, codes in zip(spec.attributes, c["ratings"], strict=True)},
        COMMENTS_COLUMN: pc.take(pa.array(["", *COMMENTS], pa.string()), pa.array(c["comment_code"])),
    }
    if spec.screens.role_column is not None:
        roles = pa.array(c["role_vocab"], pa.string())
        by_column[spec.screens.role_column] = pc.take(roles, pa.array(c["role_code"]))
    if spec.screens.duration_column is not None:
        durations = pa.concat_arrays([c["duration_vocab"], pa.array(c["extra_durations"], pa.string())])
        by_column[spec.screens.duration_column] = pc.take(durations, pa.array(c["duration_code"]))
    arrays = [by_column[column] for column in spec.columns]
    record = {"seed": int(seed), "rows": sorted(planted, key=lambda item: item["row"])}
    fields = [pa.field(name, pa.string()) for name in spec.names]
    schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(record)})
    return pa.Table.from_arrays(arrays, schema=schema)


def _csv_field(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """RFC 4180 field text: quoted (quotes doubled) only when it holds a comma, quote, CR or LF."""
    if column.type != pa.string():
        column = column.cast(pa.string())
    column = pc.fill_null(column, "")
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
    return pc.if_else(pc.match_substring_regex(column, '[",\r\n]'), quoted, column)


def _csv_header(names: list[str]) -> str:
    def field(name: str) -> str:
        return '"' + name.replace('"', '""') + '"' if any(ch in name for ch in ',"\r\n') else name

    return ",".join(field(name) for name in names) + "\n"


def _write_csv(table: pa.Table, path: Path) -> None:
    with path.open("wb") as stream:
        stream.write(_csv_header(table.column_names).encode("utf-8"))
        for start in range(0, table.num_rows, _CSV_BATCH_ROWS):
            batch = table.slice(start, _CSV_BATCH_ROWS)
            fields = [_csv_field(batch.column(i).combine_chunks()) for i in range(batch.num_columns)]
            lines = pc.binary_join_element_wise(*fields, ",") if len(fields) > 1 else fields[0]
            lines = pc.binary_join_element_wise(lines, "", "\n").cast(pa.large_string())
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64, count=len(lines) + 1, offset=lines.offset * 8)
            stream.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def _write_xlsx(table: pa.Table, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    if table.num_rows + 1 > _XLSX_MAX_ROWS:
        raise ValueError(
            f"{path}: {table.num_rows} rows do not fit in an Excel worksheet (at most {_XLSX_MAX_ROWS - 1})"
        )
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("export")

    def text(value: str | None) -> Any:
        if value is None or not value.startswith("="):
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell

    sheet.append([text(name) for name in table.column_names])
    for batch in table.to_batches(max_chunksize=1 << 14):
        columns = [_texts(batch.column(i)) for i in range(batch.num_columns)]
        for row in zip(*columns, strict=True):
            sheet.append([text(value) for value in row])
    workbook.save(path)


def _texts(column: pa.Array) -> list[str | None]:
    if column.type != pa.string():
        column = column.cast(pa.string())
    return column.to_pylist()


def _write_parquet(table: pa.Table, path: Path) -> None:
    import pyarrow.parquet as pq

    columns = [column if column.type == pa.string() else column.cast(pa.string()) for column in table.columns]
    schema = pa.schema([pa.field(name, pa.string()) for name in table.column_names], metadata=table.schema.metadata)
    pq.write_table(pa.Table.from_arrays(columns, schema=schema), path)


# --- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Generate an export from a survey YAML and write it; print how many rows were written."""
    import yaml

    parser = argparse.ArgumentParser(prog="python -m bench.synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, type=Path, help="survey year YAML, e.g. surveys/2024.yaml")
    parser.add_argument("--evaluations", required=True, type=int, help="number of export rows")
    parser.add_argument("--seed", required=True, type=int, help="random seed")
    parser.add_argument("--out", required=True, type=Path, help="output file: .csv, .xlsx or .parquet")
    parser.add_argument("--no-bad-rows", action="store_true", help="plant no defective rows")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    table = generate_export(config, n_evaluations=args.evaluations, seed=args.seed, bad_rows=not args.no_bad_rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_export(table, args.out)
    n_bad = sum(1 for item in planted_rows(table) if item["kinds"])
    print(f"wrote {table.num_rows} rows ({n_bad} planted bad rows) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
