"""An independent, plain-Python reference implementation of the awards rules (data contract
sections 2-4), for differential tests against the DuckDB / Great Expectations pipeline.

Standard library only. `reference(config, csv_path)` takes the survey configuration as a dict (from
`yaml.safe_load`) and a CSV export, and returns `(quarantine, tables)`:

- `quarantine`: {source_row: [reason codes, in contract order]} for every quarantined row;
- `tables`: {"attribute_scores": [...], "composite_scores": [...], "awards": [...]}, each a list of
  dicts with the contract's columns, sorted as published (plain code-point order on strings). `cro` is
  the CRO's id (the YAML's `id`, else derived from its name: `cro_id`); the label columns come last:
  `cro_name` and `attribute_label` or `category_label`.

An export refused as a whole raises `FileLevelError` (here: a record running over several lines that
does not have the header's number of fields, docs/contract.md section 2; it is never one malformed_row).

`cell_counts(config, csv_path)` gives every cell's count, published or not (n_ratings per attribute
cell, n_evaluations per composite): what the disclosure attack (tests/attacker.py) assumes is known.

Nothing here imports the project: the point is to restate the rules, not to reuse the code.

Confidentiality, as the disclosure-control spec states it (`_counted`): a (segment, CRO, attribute) cell
with fewer than min_cell_size ratings counts nowhere: not as a row, not in Overall (which pools the
countable segment cells), not in a composite nor its n_evaluations (evaluations with a counted rating in
the category), and so not in eligibility, ranks or awards.

Readings chosen where the rules are terse: a "blank line" is a CSV record whose raw text holds nothing
but spaces, tabs, line breaks and no-break spaces (so `\u00a0` alone on a line is not a row, but `" "`
quoted is); the segment cut compares the decimal text exactly (`Decimal(rd_spend) >= cut`), as the method
states it; "lower-cased" is Python's str.lower.

The respondent screens (docs/contract.md, "Respondent screens"; the YAML's optional `screens:`), read as:
a decision role is compared as a CRO name is (`identity(text).lower()`, the configuration model's
"compared as names are"), against the allowed values compared alike; a duration is trimmed as the other
fields are (`clean`) and compared exactly as a decimal (`Decimal(text) < min_seconds`, as the segment
cut); straight-lining counts the valid ratings (on the scale) and compares their values ("4.0" is 4); a
respondent is the respondent id as duplicates compare it (`identity`), and a row without one is judged
alone; a malformed row has no other reason sought, so it neither gives nor receives a screen's reason.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import math
import re
import unicodedata
from collections import defaultdict
from decimal import Decimal

WHITESPACE = " \t\r\n\u00a0"
TOLERANCE = 1e-9
OVERALL = "overall"

REASON_CODES = (
    "malformed_row",
    "missing_respondent_id",
    "invalid_rd_spend",
    "unknown_cro",
    "invalid_last_engaged",
    "outside_recency_window",
    "invalid_rating",
    "no_ratings",
    "duplicate_evaluation",
    "not_qualified",
    "invalid_duration",
    "speeding",
    "straight_lining",
)

RESPONDENT_SCREENS = ("not_qualified", "speeding")
"""The screens that judge the respondent: one row's reason is every row's of the same respondent."""

CONTRACT_COLUMNS = ("respondent_id", "rd_spend_musd", "cro", "last_engaged")

_SPEND = re.compile(r"[0-9]+(\.[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RATING = re.compile(r"[0-9]+(\.0*)?")
_DURATION = re.compile(r"[0-9]+(\.[0-9]+)?")
_NO_RATING = ("", "n/a", "na")

DEFAULTS = {
    "recency_months": 18,
    "rating_scale": {"min": 1, "max": 5},
    "big_pharma_min_rd_spend_musd": 1000,
    "min_evaluations": 10,
    "min_cros_for_awards": 3,
    "champion_sd_multiplier": 1.0,
    "min_cell_size": 3,
}


# --- helpers -----------------------------------------------------------------------------------------


def clean(text: str) -> str:
    return text.strip(WHITESPACE)


def identity(text: str) -> str:
    """An identifier or name as compared (docs/contract.md): NFKC, format characters (Cf) removed,
    surrounding tabs, line breaks and Unicode separators (Z*) trimmed."""
    text = "".join(ch for ch in unicodedata.normalize("NFKC", text) if unicodedata.category(ch) != "Cf")
    edge = lambda ch: ch in "\t\n\v\f\r" or unicodedata.category(ch).startswith("Z")  # noqa: E731
    start, end = 0, len(text)
    while start < end and edge(text[start]):
        start += 1
    while end > start and edge(text[end - 1]):
        end -= 1
    return text[start:end]


def as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    year, month, day = (int(part) for part in str(value).split("-"))
    return dt.date(year, month, day)


def months_before(day: dt.date, months: int) -> dt.date:
    """`day` minus `months` calendar months, the day clamped to the target month's last day."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_date(text: str) -> dt.date | None:
    """A real calendar date written YYYY-MM-DD, else None."""
    if not _DATE.fullmatch(text):
        return None
    try:
        return dt.date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return None


def is_no_rating(text: str) -> bool:
    return text.lower() in _NO_RATING


def rating_value(text: str, low: int, high: int) -> float | None:
    """The value of a valid (non-blank, non-n/a) rating text, or None if the text is invalid."""
    if not _RATING.fullmatch(text):
        return None
    value = float(text)
    if not (low <= value <= high):
        return None
    return value


def _records(text: str):
    """(raw text, fields) of every CSV record: RFC 4180 quoting, a quoted field may span lines."""
    lines = [line for line in re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text) if line]
    consumed: list[str] = []

    def feed():
        for line in lines:
            consumed.append(line)
            yield line

    for fields in csv.reader(feed()):
        raw = "".join(consumed)
        consumed.clear()
        yield raw, fields


class FileLevelError(ValueError):
    """The export is refused as a whole (no row is judged)."""


def is_blank_line(raw: str) -> bool:
    """A blank line is not a row: nothing on it but spaces, tabs, line breaks and no-break spaces."""
    return not raw.strip(WHITESPACE)


def read_rows(csv_path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header, [(source_row, fields)]): blank lines are not rows; source_row 1 is the first data row."""
    with open(csv_path, encoding="utf-8-sig", newline="") as stream:
        text = stream.read()
    records = [(raw, fields) for raw, fields in _records(text) if not is_blank_line(raw)]
    header = [name.strip(WHITESPACE) for name in records[0][1]]
    for raw, fields in records[1:]:
        if len(fields) != len(header) and len(re.findall(r"\r\n|\n|\r", raw.rstrip("\r\n"))) > 0:
            raise FileLevelError(f"{csv_path}: a record over several lines has {len(fields)} fields: {raw!r}")
    return header, list(enumerate((fields for _, fields in records[1:]), start=1))


def cro_id(cro: dict) -> str:
    """A CRO's id: the YAML's `id`, else its name decomposed (NFKD), accents and other combining marks
    dropped, lower-cased, with `_` for every run of characters outside a-z and 0-9, no `_` at either end."""
    if cro.get("id"):
        return cro["id"]
    letters = "".join(ch for ch in unicodedata.normalize("NFKD", cro["name"]) if not unicodedata.combining(ch))
    return re.sub("[^a-z0-9]+", "_", letters.lower()).strip("_")


def category_label(category: str) -> str:
    """A category's label: its id with spaces for `_`, the first letter capital and the rest lower case."""
    return category.replace("_", " ").capitalize()


# --- the rules -----------------------------------------------------------------------------------------


def _accepted(config: dict, csv_path):
    """(quarantine, ratings per (segment, cro, attribute), accepted evaluations per (segment, cro)): the
    rows' reasons, and the accepted rows' ratings and evaluations by segment (overall pools both)."""
    knobs = {**DEFAULTS, **config}
    scale = {**DEFAULTS["rating_scale"], **(config.get("rating_scale") or {})}
    low, high = scale["min"], scale["max"]
    close = as_date(knobs["survey_close"])
    window_start = months_before(close, knobs["recency_months"])
    cut = float(knobs["big_pharma_min_rd_spend_musd"])
    attributes = list(config["attributes"])

    canonical: dict[str, str] = {}
    for cro in config["cros"]:
        for spelling in (cro["name"], *(cro.get("aliases") or ())):
            canonical[identity(spelling).lower()] = cro_id(cro)

    screens = config.get("screens") or {}
    qualification = screens.get("qualification")
    straight_lining = screens.get("straight_lining")
    speeding = screens.get("speeding")
    allowed = {identity(str(value)).lower() for value in qualification["allowed"]} if qualification else set()
    min_seconds = Decimal(repr(float(speeding["min_seconds"]))) if speeding else None

    header, rows = read_rows(csv_path)
    renamed = config.get("columns") or {}  # the export's own headers -> contract columns and attribute ids
    position = {renamed.get(name, name): index for index, name in enumerate(header)}

    reasons: dict[int, set[str]] = defaultdict(set)
    evaluations: dict[int, dict] = {}
    for source_row, fields in rows:
        if len(fields) != len(header):
            reasons[source_row].add("malformed_row")
            continue
        field = {name: clean(fields[position[name]]) for name in (*CONTRACT_COLUMNS, *attributes)}
        found = reasons[source_row]
        respondent = identity(fields[position["respondent_id"]])
        if not respondent:
            found.add("missing_respondent_id")
        spend = field["rd_spend_musd"]
        if not _SPEND.fullmatch(spend):
            found.add("invalid_rd_spend")
        cro_text = identity(fields[position["cro"]])
        cro = canonical.get(cro_text.lower()) if cro_text else None
        if cro is None:
            found.add("unknown_cro")
        engaged = parse_date(field["last_engaged"])
        if engaged is None:
            found.add("invalid_last_engaged")
        elif not (window_start <= engaged <= close):
            found.add("outside_recency_window")
        ratings: dict[str, float] = {}
        for attribute in attributes:
            text = field[attribute]
            if is_no_rating(text):
                continue
            value = rating_value(text, low, high)
            if value is None:
                found.add("invalid_rating")
            else:
                ratings[attribute] = value
        if all(is_no_rating(field[attribute]) for attribute in attributes):
            found.add("no_ratings")
        if qualification and identity(fields[position[qualification["column"]]]).lower() not in allowed:
            found.add("not_qualified")
        if speeding:
            duration = clean(fields[position[speeding["column"]]])
            if not _DURATION.fullmatch(duration):
                found.add("invalid_duration")
            elif Decimal(duration) < min_seconds:
                found.add("speeding")
        if straight_lining and len(ratings) >= straight_lining["min_ratings"] and len(set(ratings.values())) == 1:
            found.add("straight_lining")
        evaluations[source_row] = {
            "source_row": source_row,
            "respondent_id": respondent,
            "cro": cro,
            "spend": spend,
            "ratings": ratings,
        }

    copies: dict[tuple[str, str], list[int]] = defaultdict(list)
    for source_row, evaluation in evaluations.items():
        if evaluation["respondent_id"] and evaluation["cro"] is not None:
            copies[(evaluation["respondent_id"], evaluation["cro"])].append(source_row)
    for source_rows in copies.values():
        if len(source_rows) > 1:
            for source_row in source_rows:
                reasons[source_row].add("duplicate_evaluation")

    screened: dict[str, set[str]] = defaultdict(set)
    for source_row, evaluation in evaluations.items():
        if evaluation["respondent_id"]:
            screened[evaluation["respondent_id"]] |= reasons[source_row] & set(RESPONDENT_SCREENS)
    for source_row, evaluation in evaluations.items():
        if evaluation["respondent_id"]:
            reasons[source_row] |= screened[evaluation["respondent_id"]]

    order = {code: index for index, code in enumerate(REASON_CODES)}
    quarantine = {source_row: sorted(found, key=order.__getitem__) for source_row, found in reasons.items() if found}

    # The accepted evaluations, each in the segment its spend puts it in.
    accepted: list[tuple[str, dict]] = []
    for source_row, evaluation in evaluations.items():
        if source_row in quarantine:
            continue
        by_spend = "big_pharma" if Decimal(evaluation["spend"]) >= Decimal(repr(cut)) else "small_pharma"
        accepted.append((by_spend, evaluation))
    return quarantine, accepted


def thin_cells(config: dict, csv_path) -> dict[tuple[str, str, str], list[int]]:
    """(segment, cro, attribute) -> the source rows of its ratings, for every cell that is not countable
    (fewer than min_cell_size accepted ratings): the ratings that must count nowhere."""
    min_cell = {**DEFAULTS, **config}["min_cell_size"]
    _, accepted = _accepted(config, csv_path)
    cells: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for segment, evaluation in accepted:
        for attribute in evaluation["ratings"]:
            cells[(segment, evaluation["cro"], attribute)].append(evaluation["source_row"])
    return {cell: rows for cell, rows in cells.items() if len(rows) < min_cell}


def _counted(config: dict, accepted: list[tuple[str, dict]]):
    """The countable-cells rule, read from the disclosure-control spec: a cell is (segment in big_pharma,
    small_pharma; CRO; attribute); it is countable when it holds at least min_cell_size accepted ratings;
    only countable cells count anywhere. Overall pools a CRO's countable segment cells of an attribute.

    Returns (cell_ratings, segment_evaluations): the counted ratings per (segment, cro, attribute), overall
    included, and per (segment, cro) the accepted evaluations (overall: both segments), each with only its
    counted ratings (`counted`)."""
    min_cell = {**DEFAULTS, **config}["min_cell_size"]
    in_cell: dict[tuple[str, str, str], int] = defaultdict(int)
    for segment, evaluation in accepted:
        for attribute in evaluation["ratings"]:
            in_cell[(segment, evaluation["cro"], attribute)] += 1
    cell_ratings: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    segment_evaluations: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for segment, evaluation in accepted:
        cro = evaluation["cro"]
        counted = {a: v for a, v in evaluation["ratings"].items() if in_cell[(segment, cro, a)] >= min_cell}
        for name in (segment, OVERALL):
            segment_evaluations[(name, cro)].append({**evaluation, "counted": counted})
            for attribute, value in counted.items():
                cell_ratings[(name, cro, attribute)].append(value)
    return cell_ratings, segment_evaluations


def reference(config: dict, csv_path) -> tuple[dict[int, list[str]], dict[str, list[dict]]]:
    knobs = {**DEFAULTS, **config}
    min_evaluations = knobs["min_evaluations"]
    min_cros = knobs["min_cros_for_awards"]
    multiplier = float(knobs["champion_sd_multiplier"])
    categories = {category: list(ids) for category, ids in config["categories"].items()}
    names = {cro_id(cro): cro["name"] for cro in config["cros"]}

    quarantine, accepted = _accepted(config, csv_path)
    cell_ratings, segment_evaluations = _counted(config, accepted)

    scores = {key: (len(values), math.fsum(values) / len(values)) for key, values in cell_ratings.items()}
    attribute_scores = [
        {
            "segment": s,
            "cro": c,
            "attribute": a,
            "n_ratings": n,
            "score": score,
            "cro_name": names[c],
            "attribute_label": config["attributes"][a],
        }
        for (s, c, a), (n, score) in scores.items()
    ]
    attribute_scores.sort(key=lambda row: (row["segment"], row["cro"], row["attribute"]))

    composites: list[dict] = []
    for (segment, cro), evaluations_here in segment_evaluations.items():
        for category, ids in categories.items():
            values = [scores[(segment, cro, a)][1] for a in ids if (segment, cro, a) in scores]
            if not values:
                continue
            n_evaluations = sum(1 for e in evaluations_here if any(a in e["counted"] for a in ids))
            composites.append(
                {
                    "segment": segment,
                    "cro": cro,
                    "category": category,
                    "n_evaluations": n_evaluations,
                    "composite": math.fsum(values) / len(values),
                    "is_eligible": n_evaluations >= min_evaluations,
                    "rank": None,
                    "cro_name": names[cro],
                    "category_label": category_label(category),
                }
            )
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in composites:
        if row["is_eligible"]:
            cells[(row["segment"], row["category"])].append(row)
    for eligible in cells.values():
        for row in eligible:
            row["rank"] = 1 + sum(1 for rival in eligible if rival["composite"] > row["composite"] + TOLERANCE)
    composite_scores = composites
    composite_scores.sort(key=lambda row: (row["segment"], row["cro"], row["category"]))

    awards: list[dict] = []
    for (segment, category), eligible in cells.items():
        if len(eligible) < min_cros:
            continue
        total = sum(row["n_evaluations"] for row in eligible)
        mean = math.fsum(row["n_evaluations"] * row["composite"] for row in eligible) / total
        sd = math.sqrt(math.fsum(row["n_evaluations"] * (row["composite"] - mean) ** 2 for row in eligible) / total)
        threshold = mean + multiplier * sd
        best = max(row["composite"] for row in eligible)
        for row in eligible:
            won = []
            if row["composite"] >= best - TOLERANCE:
                won.append("leader")
            if row["composite"] >= threshold - TOLERANCE and row["composite"] > mean + TOLERANCE:
                won.append("champion")
            for award in won:
                awards.append(
                    {
                        "segment": segment,
                        "category": category,
                        "cro": row["cro"],
                        "award": award,
                        "composite": row["composite"],
                        "weighted_mean": mean,
                        "weighted_sd": sd,
                        "threshold": threshold,
                        "cro_name": names[row["cro"]],
                        "category_label": category_label(category),
                    }
                )
    awards.sort(key=lambda row: (row["segment"], row["category"], row["cro"], row["award"]))

    return quarantine, {
        "attribute_scores": attribute_scores,
        "composite_scores": composite_scores,
        "awards": awards,
    }


def cell_counts(config: dict, csv_path) -> dict[str, dict[tuple[str, str, str], int]]:
    """Every cell's count before the countable-cells rule, from the accepted rows (what an attacker may be
    assumed to know):

    - "n_ratings": {(segment, cro, attribute): ratings} for every attribute cell with at least one rating,
      overall pooling both segments;
    - "n_evaluations": {(segment, cro, category): evaluations rating at least one of the category's
      attributes} for every composite with at least one such evaluation.
    """
    categories = {category: list(ids) for category, ids in config["categories"].items()}
    _, accepted = _accepted(config, csv_path)
    n_ratings: dict[tuple[str, str, str], int] = defaultdict(int)
    n_evaluations: dict[tuple[str, str, str], int] = defaultdict(int)
    for segment, evaluation in accepted:
        for name in (segment, OVERALL):
            for attribute in evaluation["ratings"]:
                n_ratings[(name, evaluation["cro"], attribute)] += 1
            for category, ids in categories.items():
                if any(a in evaluation["ratings"] for a in ids):
                    n_evaluations[(name, evaluation["cro"], category)] += 1
    return {"n_ratings": dict(n_ratings), "n_evaluations": dict(n_evaluations)}
