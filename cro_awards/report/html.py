"""The awards report: one self-contained, offline HTML page from a survey year's published tables.

`render_report(tables, manifest, survey, previous=None, *, history=None, draft=None) -> str` is a pure
function: no file, network or clock is read. Data is prepared here, in small pure functions
(`chart_rows`, `co_leaders`, `year_over_year`, `chart_layout`, `sparkline_layout`, `cro_profiles`,
`draft_context`, `report_context`); the markup, the SVG charts included, is in
`templates/report.html.j2`, rendered by jinja2 with autoescape on, so every CRO name, label and id is
escaped wherever it lands (text, attribute or SVG). `tables` holds the published tables and, optionally,
`award_readings` (`int_award_readings`: the awards each reading would name), from which each cell gets
one line per reading the award rule did not choose (`sensitivity`).

CROs are keyed by their id (`cro`) and shown by their name (`cro_name`, appended to the published
tables; the id where a table has no such column). The history (`cro_awards.publication.history`: every year released
in the output folder) draws each CRO's composites per category and segment over those years and this
one; the change of a composite is against the most recent released year, through renames (a merger is
"new entity, formed from ...", never a change), and the report names that year and the knobs that
differed. With `draft` (a `cro_awards.publication.diff.Diff`) the page is the draft's: a DRAFT banner first, the
overrides, and its difference from the current release; without it, the report as released.

What people read is rounded to two decimals (docs/method.md, "Rounding"); the stored scores are not.
Nothing respondent-level is shown: the tables are the published ones, small cells already suppressed.

The page has no script, no external stylesheet, font or image: inline CSS and inline SVG, with a
system font stack. It prints (no dark backgrounds, charts kept whole, details shown).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa

from cro_awards.publication import history as histories
from cro_awards.publication.history import Point, Release
from cro_awards.reading import knobs as knobs_model
from cro_awards.reading.config import REASON_CODES as REASON_ORDER, category_label
from cro_awards.record.manifest import Counts, Manifest, knob_changes
from cro_awards.record.summary import (
    LEGEND_AWARD,
    LEGEND_CO_LEADERS,
    LEGEND_STABILITY,
    SEGMENT_LABELS,
    SEGMENT_ORDER,
    cro_name,
    format_probability,
    indistinct_text,
    no_distinguishable_leader,
    reason_description,
    stability_text,
)

KNOBS = knobs_model.KNOBS
"""The knobs the report lists with their values: every method knob (`cro_awards.reading.knobs`)."""

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies, and in print.
STATUS_COLORS = {
    "leader_champion": "#D55E00",
    "leader": "#E69F00",
    "champion": "#0072B2",
    "other": "#8C96A3",
}
STATUS_LABELS = {
    "leader_champion": "Leader + champion",
    "leader": "Leader",
    "champion": "Champion",
    "other": "Other eligible",
}
MEAN_COLOR = "#3E4C59"
THRESHOLD_COLOR = "#0072B2"

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"

# Chart geometry (SVG user units; the SVG scales to its container's width).
_WIDTH = 900
_LABEL_RIGHT = 238  # CRO names end here (text-anchor end)
_PLOT_LEFT = 250
_PLOT_RIGHT = 770
_VALUE_X = 782  # the composite, as text
_DELTA_X = 830  # the change since the previous survey, as text
_ROW_HEIGHT = 18
_NAME_CHARS = 36  # longer names are shortened with an ellipsis (the full name is in the row's title)

# Sparkline geometry: one point per survey year, its value above and its year below.
_SPARK_STEP = 40
_SPARK_PAD = 18
_SPARK_MIN_WIDTH = 56
_SPARK_VALUE_Y = 11
_SPARK_TOP, _SPARK_BOTTOM = 18, 35
_SPARK_YEAR_Y = 48
_SPARK_HEIGHT = 52
_SPARK_MIN_SPAN = 0.5  # a smaller spread of composites is drawn on this span: small changes look small
NEW_ENTITY = "new entity"
"""The change column's text for a merger: never a change (docs: the publication lifecycle)."""


# --- formatting --------------------------------------------------------------------------------


def fmt2(value: float | None) -> str:
    """A score as people read it: two decimals; "–" when there is none. Never "-0.00"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.2f}"
    return "0.00" if text == "-0.00" else text


def format_delta(delta: float | None) -> str:
    """A change of composite: "+0.12", "-0.30", "0.00"; "new" when there was no previous score."""
    if delta is None:
        return "new"
    text = f"{delta:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def format_knob(value: Any) -> str:
    """A method knob: an integer as is, a number with at most two decimals (1.0 -> "1", 0.5 -> "0.5");
    a rating scale {"min": 1, "max": 5} as "1–5"; none as "–"."""
    if value is None:
        return "–"
    if isinstance(value, Mapping):
        if set(value) == {"min", "max"}:
            return f"{format_knob(value['min'])}–{format_knob(value['max'])}"
        return ", ".join(f"{key}={format_knob(item)}" for key, item in sorted(value.items()))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}".rstrip("0").rstrip(".")


def describe_screens(screens: Mapping[str, Any] | None) -> list[str]:
    """The respondent screens a run applied, one sentence each (qualification, straight-lining, speeding,
    in the spec's order), from the manifest's `config.effective.screens`; none configured: an empty list."""
    screens = screens or {}
    described = []
    qualification = screens.get("qualification")
    if qualification:
        allowed = " or ".join(f"“{value}”" for value in qualification.get("allowed") or ())
        described.append(
            f"qualification: only respondents whose {qualification.get('column')} is {allowed} (trimmed, any case) "
            "rate; every evaluation of any other respondent is set aside (not_qualified)"
        )
    straight_lining = screens.get("straight_lining")
    if straight_lining:
        described.append(
            f"straight-lining: an evaluation with at least {format_knob(straight_lining.get('min_ratings'))} valid "
            "ratings, all of them equal, is set aside (straight_lining)"
        )
    speeding = screens.get("speeding")
    if speeding:
        described.append(
            f"speeding: every evaluation of a respondent whose {speeding.get('column')} is under "
            f"{format_knob(speeding.get('min_seconds'))} seconds is set aside (speeding), and an evaluation whose "
            "duration is blank or not a number of seconds (invalid_duration)"
        )
    return described


def format_setting(key: str, value: Any) -> str:
    """A configuration value of the manifest's `effective` as people read it: the screens described
    ("none" when a side has none), any other value as `format_knob` writes it."""
    if key == "screens":
        return "; ".join(describe_screens(value)) or "none"
    return format_knob(value)


def format_timestamp(value: Any) -> str | None:
    """An ISO 8601 UTC time as people read it: "2024-03-01T09:30:12.5Z" -> "2024-03-01 09:30 UTC"."""
    if not value:
        return None
    text = str(value)
    date, sep, time = text.partition("T")
    if not sep or len(time) < 5 or not (time.endswith("Z") or time.endswith("+00:00")):
        return text
    return f"{date} {time[:5]} UTC"


def segment_label(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, segment.replace("_", " ").title())


def join_names(names: Iterable[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


# --- table access ------------------------------------------------------------------------------


def table_rows(
    table: pa.Table | Iterable[Mapping[str, Any]] | None, columns: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Rows as dicts, selecting `columns` by name where present (columns may be appended later)."""
    if table is None:
        return []
    if isinstance(table, pa.Table):
        if columns is not None:
            table = table.select([name for name in columns if name in table.column_names])
        return table.to_pylist()
    return [dict(row) for row in table]


def has_intervals(table: pa.Table | Iterable[Mapping[str, Any]] | None) -> bool:
    """Whether the composite table has the (optional) bootstrap interval columns ci_low and ci_high."""
    if table is None:
        return False
    if isinstance(table, pa.Table):
        return {"ci_low", "ci_high"} <= set(table.column_names)
    rows = list(table)
    return bool(rows) and all({"ci_low", "ci_high"} <= set(row) for row in rows)


def _ordered(values: Iterable[str], first: Iterable[str]) -> list[str]:
    """`first`'s values that occur in `values`, in its order, then the others sorted."""
    present = set(values)
    ordered = [value for value in first if value in present]
    return ordered + sorted(present - set(ordered))


def method_knobs(manifest: Manifest, survey: Any) -> dict[str, Any]:
    """The method knobs the run used: the manifest's effective ones (overrides included), else the survey's."""
    effective = manifest.effective or {}
    return {knob: effective.get(knob, getattr(survey, knob, None)) for knob in KNOBS}


# --- per cell ----------------------------------------------------------------------------------


def chart_rows(composites: Iterable[Mapping[str, Any]], segment: str, category: str) -> list[dict[str, Any]]:
    """The eligible CROs of (segment, category), composite descending (ties by name, then id)."""
    rows = [
        dict(row)
        for row in composites
        if row["segment"] == segment and row["category"] == category and row.get("is_eligible")
    ]
    return sorted(rows, key=lambda row: (-row["composite"], cro_name(row).casefold(), cro_name(row), row["cro"]))


def winners_of(awards: Iterable[Mapping[str, Any]], segment: str, category: str) -> dict[str, set[str]]:
    """CRO -> its awards ({"leader", "champion"}) in (segment, category)."""
    winners: dict[str, set[str]] = defaultdict(set)
    for row in awards:
        if row["segment"] == segment and row["category"] == category:
            winners[row["cro"]].add(row["award"])
    return dict(winners)


def status_of(awards: set[str] | None) -> str:
    awards = awards or set()
    if {"leader", "champion"} <= awards:
        return "leader_champion"
    if "leader" in awards:
        return "leader"
    if "champion" in awards:
        return "champion"
    return "other"


def co_leaders(rows: list[Mapping[str, Any]], leaders: Iterable[str]) -> dict[str, list[str]]:
    """Leader -> the eligible CROs that are not leaders but co-lead with it (`is_co_leader`: their paired
    difference to the leader, computed in each resampling replicate, has a 95% interval holding 0).

    `rows` are a cell's eligible CROs, composite descending; none flagged (or no figures): no co-leader.
    """
    leaders = list(leaders)
    others = [row["cro"] for row in rows if row.get("is_co_leader") and row["cro"] not in set(leaders)]
    return {leader: others for leader in leaders} if others else {}


def rank_text(row: Mapping[str, Any]) -> str | None:
    """E.g. "#2 (1–4)": the rank and its 95% interval over the replicates; None when unranked."""
    if row.get("rank") is None:
        return None
    low, high = row.get("rank_low"), row.get("rank_high")
    if low is None or high is None:
        return f"#{row['rank']}"
    return f"#{row['rank']} ({low}–{high})" if low != high else f"#{row['rank']} ({low})"


def year_over_year(
    current: pa.Table | Mapping[str, Any] | Iterable[Mapping[str, Any]],
    previous: pa.Table | Mapping[str, Any] | Iterable[Mapping[str, Any]] | None,
    formerly: Mapping[str, Iterable[str]] | None = None,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(segment, category, cro) -> {"delta": float | None, "text": "+0.12" | "-0.30" | "0.00" | "new" |
    "new entity"}.

    Each current composite against the previous survey's published composite of the same CRO, segment
    and category (eligible or not: both are published scores), the CRO followed through a rename
    (`formerly`: id -> former ids; exactly one former id, see `cro_awards.publication.history.source_id`); "new"
    when there is none; a merger (several former ids) is "new entity", never a change. `current` and
    `previous` are composite_scores tables (or the dicts of published tables holding them). `previous`
    None: no comparison, an empty dict.
    """
    if previous is None:
        return {}
    formerly = {cro: tuple(ids) for cro, ids in (formerly or {}).items()}

    def composites(source: Any) -> dict[tuple[str, str, str], float]:
        if isinstance(source, Mapping):
            source = source.get("composite_scores")
        return {
            (row["segment"], row["category"], row["cro"]): row["composite"]
            for row in table_rows(source, ("segment", "category", "cro", "composite"))
            if row["composite"] is not None
        }

    before = composites(previous)
    present = {cro for _, _, cro in before}
    changes = {}
    for (segment, category, cro), composite in composites(current).items():
        if histories.is_merger(cro, formerly):
            changes[(segment, category, cro)] = {"delta": None, "text": NEW_ENTITY}
            continue
        key = (segment, category, histories.source_id(cro, formerly, present))
        delta = composite - before[key] if key in before else None
        changes[(segment, category, cro)] = {"delta": delta, "text": format_delta(delta)}
    return changes


# --- the chart ---------------------------------------------------------------------------------


def _tick_step(span: float) -> float:
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        if span / step <= 8:
            return step
    return 10.0 ** math.ceil(math.log10(span / 8))


def change_class(change: str | None) -> str | None:
    """The CSS class of a change's text: up, down, flat (0.00, "new", "new entity"); None without one."""
    if not change:
        return None
    return "up" if change.startswith("+") else "down" if change.startswith("-") else "flat"


def chart_domain(values: Iterable[float]) -> tuple[float, float, list[float]]:
    """The x range (low, high) of a chart showing `values`, on round ticks, and the ticks."""
    values = [value for value in values if value is not None and not math.isnan(value)]
    if not values:
        return 0.0, 1.0, [0.0, 0.5, 1.0]
    low, high = min(values), max(values)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    padding = (high - low) * 0.04
    low, high = low - padding, high + padding
    step = _tick_step(high - low)
    low = math.floor(low / step + 1e-9) * step
    high = math.ceil(high / step - 1e-9) * step
    ticks = [round(low + i * step, 10) for i in range(round((high - low) / step) + 1)]
    return low, high, ticks


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1].rstrip() + "…"


def _legend(items: list[dict[str, Any]], y: float) -> tuple[list[dict[str, Any]], float]:
    """Legend items laid out left to right, wrapping to a new line (widths estimated); the last line's y."""
    x = 8.0
    for item in items:
        width = 22 + 6.2 * len(item["label"]) + 16
        if x > 8.0 and x + width > _WIDTH:
            x, y = 8.0, y + 16
        item["x"], item["y"] = round(x, 1), y
        x += width
    return items, y


def _legend_items(statuses: list[str], show_intervals: bool, lines: bool) -> list[dict[str, Any]]:
    """The chart's legend: the statuses drawn, then the whisker and the lines when drawn."""
    legend = [
        {"kind": "dot", "label": STATUS_LABELS[status], "color": STATUS_COLORS[status]}
        for status in STATUS_COLORS
        if status in statuses
    ]
    if show_intervals:
        legend.append({"kind": "whisker", "label": "95% interval", "color": MEAN_COLOR})
    if lines:
        legend.append({"kind": "mean", "label": "weighted mean", "color": MEAN_COLOR})
        legend.append({"kind": "threshold", "label": "champion threshold", "color": THRESHOLD_COLOR})
    return legend


def _tooltip(
    row: Mapping[str, Any],
    awards: list[str],
    whisker: bool,
    ties: Mapping[str, str],
    notes: Mapping[str, str],
    changes: Mapping[str, str],
    change_label: str,
) -> str:
    """A chart row's tooltip: the composite, its interval, evaluations, awards, co-leaders, rank, how sure
    the awards are, and the merger note or the change."""
    tooltip = [f"{cro_name(row)}: composite {fmt2(row['composite'])}"]
    if whisker:
        tooltip.append(f"95% interval {fmt2(row.get('ci_low'))} to {fmt2(row.get('ci_high'))}")
    if row.get("n_evaluations") is not None:
        tooltip.append(f"{row['n_evaluations']} evaluations")
    if awards:
        tooltip.append(" and ".join(awards))
    if row["cro"] in ties:
        tooltip.append(f"co-leader(s): {ties[row['cro']]}")
    if rank_text(row):
        tooltip.append(f"rank {rank_text(row)} (95% rank interval in brackets)")
    for name, role in (("p_leader", "leader"), ("p_champion", "champion")):
        if stability_text(row.get(name), role):
            tooltip.append(stability_text(row.get(name), role))
    if row["cro"] in notes:
        tooltip.append(notes[row["cro"]])
    elif row["cro"] in changes:
        tooltip.append(f"{changes[row['cro']]} {change_label}")
    return "; ".join(tooltip)


def chart_layout(
    rows: list[Mapping[str, Any]],
    mean: float | None,
    threshold: float | None,
    winners: Mapping[str, set[str]],
    *,
    chart_id: str = "",
    title: str = "",
    show_intervals: bool | None = None,
    ties: Mapping[str, str] | None = None,
    changes: Mapping[str, str] | None = None,
    change_label: str = "since the previous survey",
    notes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the chart macro draws, positions computed and numbers formatted (a pure function).

    `rows`: the eligible CROs (cro, composite, optional cro_name, n_evaluations, ci_low, ci_high), drawn
    in the given order, labelled by name; `mean` / `threshold`: the cell's weighted mean and champion
    threshold (None: no lines);
    `winners`: CRO -> {"leader", "champion"}; `show_intervals`: draw ci_low..ci_high whiskers (default:
    when any row has both); `ties`: leader id -> its co-leaders' names, as text; `changes`: CRO id -> the
    change of composite since the previous survey, as text ("+0.12", "new", "new entity"); `notes`: CRO
    id -> a line added to its tooltip ("new entity, formed from ...").
    """
    rows = [dict(row) for row in rows]
    ties = ties or {}
    changes = changes or {}
    notes = notes or {}
    if show_intervals is None:
        show_intervals = any(row.get("ci_low") is not None and row.get("ci_high") is not None for row in rows)
    lines = mean is not None and threshold is not None

    values = [row["composite"] for row in rows]
    if show_intervals:
        values += [row.get(bound) for row in rows for bound in ("ci_low", "ci_high")]
    if lines:
        values += [mean, threshold]
    low, high, ticks = chart_domain(values)

    def x_of(value: float) -> float:
        return round(_PLOT_LEFT + (value - low) / (high - low) * (_PLOT_RIGHT - _PLOT_LEFT), 1)

    statuses = [status_of(winners.get(row["cro"])) for row in rows]
    legend, legend_bottom = _legend(_legend_items(statuses, show_intervals, lines), 14)
    plot_top = legend_bottom + (50 if lines else 26)
    plot_bottom = plot_top + max(len(rows), 1) * _ROW_HEIGHT
    height = plot_bottom + 44

    drawn = []
    for index, (row, status) in enumerate(zip(rows, statuses, strict=True)):
        y = plot_top + index * _ROW_HEIGHT + _ROW_HEIGHT / 2
        awards = sorted(winners.get(row["cro"], ()), key=("leader", "champion").index)
        ci_low, ci_high = row.get("ci_low"), row.get("ci_high")
        whisker = show_intervals and ci_low is not None and ci_high is not None
        tooltip = _tooltip(row, awards, whisker, ties, notes, changes, change_label)
        change = changes.get(row["cro"])
        drawn.append(
            {
                "cro": row["cro"],
                "name": _short(cro_name(row)),
                "tooltip": tooltip,
                "y": y,
                "text_y": y + 4,
                "stripe": index % 2 == 1,
                "stripe_y": y - _ROW_HEIGHT / 2,
                "x": x_of(row["composite"]),
                "value": fmt2(row["composite"]),
                "rank": rank_text(row),
                "status": status,
                "color": STATUS_COLORS[status],
                "winner": status != "other",
                "whisker": whisker,
                "ci_x1": x_of(ci_low) if whisker else None,
                "ci_x2": x_of(ci_high) if whisker else None,
                "change": change,
                "change_class": change_class(change),
            }
        )

    def line_label(value: float, y: float, name: str) -> dict[str, Any]:
        x = x_of(value)
        anchor = "start" if x < _PLOT_LEFT + 60 else "end" if x > _PLOT_RIGHT - 60 else "middle"
        return {"x": x, "y": y, "anchor": anchor, "text": f"{name} {fmt2(value)}", "value": fmt2(value)}

    return {
        "chart_id": chart_id,
        "title": title or f"Composites of {len(rows)} eligible CROs",
        "width": _WIDTH,
        "height": height,
        "legend": legend,
        "rows": drawn,
        "plot_left": _PLOT_LEFT,
        "plot_right": _PLOT_RIGHT,
        "plot_top": plot_top,
        "plot_bottom": plot_bottom,
        "label_right": _LABEL_RIGHT,
        "value_x": _VALUE_X,
        "delta_x": _DELTA_X,
        "has_changes": bool(changes),
        "ticks": [{"x": x_of(tick), "label": fmt2(tick)} for tick in ticks],
        "axis_label_y": plot_bottom + 36,
        "tick_label_y": plot_bottom + 16,
        "mean": line_label(mean, legend_bottom + 22, "weighted mean") if lines else None,
        "threshold": line_label(threshold, legend_bottom + 38, "threshold") if lines else None,
        "line_top": plot_top - 8,
    }


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def chart_svg(
    rows: list[Mapping[str, Any]],
    mean: float | None,
    threshold: float | None,
    winners: Mapping[str, set[str]],
    **options: Any,
) -> str:
    """One chart as an inline `<svg>` element (see `chart_layout` for the arguments and `options`)."""
    macro = _environment().get_template(TEMPLATE).module.chart  # type: ignore[attr-defined]
    return str(macro(chart_layout(rows, mean, threshold, winners, **options)))


# --- history ---------------------------------------------------------------------------------


def _coordinate(value: float) -> float | int:
    """An SVG coordinate to one decimal, written without ".0" (a report draws hundreds of sparklines)."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def sparkline_layout(points: list[Point], *, label: str = "", survey_year: int | None = None) -> dict[str, Any]:
    """One CRO's composites over the years as a small inline chart (a pure function): a point per year in
    `points`' order (oldest first), its value written above it and its year below; a year without a
    published composite is a gap (no point, the line broken, "–"), never a zero. The vertical scale is
    the points' own, at least `_SPARK_MIN_SPAN` wide. `survey_year`: the report's year, drawn stronger.
    `title` says every value in words (the SVG's tooltip and the visually hidden text)."""
    values = [point.composite for point in points if point.composite is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = max(high - low, _SPARK_MIN_SPAN)
    bottom = (low + high) / 2 - span / 2
    width = max(2 * _SPARK_PAD + _SPARK_STEP * (len(points) - 1), _SPARK_MIN_WIDTH)
    offset = (width - _SPARK_STEP * (len(points) - 1)) / 2

    latest_name = points[-1].name if points else None
    drawn, lines, run, words = [], [], [], []
    for index, point in enumerate(points):
        x = _coordinate(offset + index * _SPARK_STEP)
        current = point.survey_year == survey_year
        if point.composite is None:
            text = f"{point.survey_year}: not published"
            y = None
            if len(run) > 1:
                lines.append(run)
            run = []
        else:
            y = _coordinate(_SPARK_BOTTOM - (point.composite - bottom) / span * (_SPARK_BOTTOM - _SPARK_TOP))
            text = f"{point.survey_year}: {fmt2(point.composite)}"
            if point.name and point.name != latest_name:
                text += f" (as {point.name})"
            run.append((x, y))
        if current:
            text += " (this survey)"
        words.append(text)
        drawn.append(
            {
                "x": x,
                "y": y,
                "year": point.survey_year,
                "value": fmt2(point.composite),
                "gap": point.composite is None,
                "current": current,
                "title": text,
            }
        )
    if len(run) > 1:
        lines.append(run)
    return {
        "width": _coordinate(width),
        "height": _SPARK_HEIGHT,
        "value_y": _SPARK_VALUE_Y,
        "year_y": _SPARK_YEAR_Y,
        "points": drawn,
        "paths": ["M" + " L".join(f"{x} {y}" for x, y in line) for line in lines],
        "title": f"{label}: " + "; ".join(words) if label else "; ".join(words),
    }


def _renamed_names(series: Mapping[tuple[str, str, str], list[Point]], cro: str) -> list[str]:
    """The other names under which `cro`'s composites were published in earlier years, oldest first."""
    names: list[str] = []
    for (_, _, key), points in series.items():
        if key != cro:
            continue
        for point in points[:-1]:
            if point.source_cro not in (None, cro) and point.name and point.name not in names:
                names.append(point.name)
    return names


# --- CRO profiles ------------------------------------------------------------------------------


def cro_profiles(
    attribute_scores: Iterable[Mapping[str, Any]],
    composites: Iterable[Mapping[str, Any]],
    awards: Iterable[Mapping[str, Any]],
    survey: Any,
    changes: Mapping[tuple[str, str, str], Mapping[str, Any]] | None = None,
    segments: Iterable[str] = SEGMENT_ORDER,
    categories: Iterable[str] | None = None,
    *,
    names: Mapping[str, str] | None = None,
    series: Mapping[tuple[str, str, str], list[Point]] | None = None,
    notes: Mapping[str, str] | None = None,
    survey_year: int | None = None,
) -> list[dict[str, Any]]:
    """Per CRO (keyed by id, sorted by name): its published attribute scores (attribute rows x segment
    columns), its composites per category and segment with the change since the previous survey, its
    history (`series`: (segment, category, cro) -> Points, one sparkline per category and segment; none
    without released years) and its awards. `names`: id -> display name (default: the rows' cro_name,
    else the id); `notes`: id -> a line shown under its name ("new entity, formed from ...")."""
    segments = list(segments)
    series = series or {}
    notes = notes or {}
    names = dict(names or {})
    for row in [*attribute_scores, *composites]:
        names.setdefault(row["cro"], cro_name(row))
    labels = dict(getattr(survey, "attributes", {}) or {})
    categories = list(categories if categories is not None else getattr(survey, "categories", {}))
    changes = changes or {}
    scores: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    for row in attribute_scores:
        scores[row["cro"]][(row["attribute"], row["segment"])] = row
    composite: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)
    for row in composites:
        composite[row["cro"]][(row["category"], row["segment"])] = row
    won: dict[str, list[dict]] = defaultdict(list)
    order = {segment: index for index, segment in enumerate(segments)}
    for row in awards:
        won[row["cro"]].append(row)

    profiles = []
    for cro in sorted(set(scores) | set(composite), key=lambda cro: (names[cro].casefold(), names[cro], cro)):
        attributes = _ordered({attribute for attribute, _ in scores[cro]}, labels)
        attribute_rows = [
            {
                "label": labels.get(attribute, attribute),
                "cells": [
                    {
                        "value": fmt2(scores[cro][(attribute, segment)]["score"]),
                        "n": scores[cro][(attribute, segment)]["n_ratings"],
                    }
                    if (attribute, segment) in scores[cro]
                    else None
                    for segment in segments
                ],
            }
            for attribute in attributes
        ]
        category_ids = _ordered({category for category, _ in composite[cro]}, categories)
        composite_rows = []
        for category in category_ids:
            cells = []
            for segment in segments:
                row = composite[cro].get((category, segment))
                if row is None:
                    cells.append(None)
                    continue
                change = changes.get((segment, category, cro))
                cells.append(
                    {
                        "value": fmt2(row["composite"]),
                        "n": row.get("n_evaluations"),
                        "eligible": bool(row.get("is_eligible")),
                        "rank": row.get("rank"),
                        "rank_text": rank_text(row),
                        "change": change["text"] if change else None,
                    }
                )
            composite_rows.append({"label": category_label(category), "cells": cells})
        history_rows = []
        for category in category_ids:
            sparks = []
            for segment in segments:
                points = series.get((segment, category, cro))
                if not points or len(points) < 2:  # no released year before (or a merger): no history
                    sparks.append(None)
                    continue
                sparks.append(
                    sparkline_layout(
                        points,
                        label=f"{names[cro]}, {segment_label(segment)} · {category_label(category)}",
                        survey_year=survey_year,
                    )
                )
            if any(sparks):
                history_rows.append({"label": category_label(category), "cells": sparks})
        awards_won = [
            f"{row['award'].capitalize()}, {segment_label(row['segment'])} · {category_label(row['category'])}"
            f" ({fmt2(row['composite'])})"
            for row in sorted(
                won.get(cro, []),
                key=lambda r: (
                    order.get(r["segment"], len(order)),
                    categories.index(r["category"]) if r["category"] in categories else len(categories),
                    r["category"],
                    r["award"] != "leader",
                ),
            )
        ]
        renamed = _renamed_names(series, cro)
        profiles.append(
            {
                "cro": cro,
                "name": names[cro],
                "note": notes.get(cro) or (f"formerly {join_names(renamed)}" if renamed else None),
                "history_rows": history_rows,
                "attribute_rows": attribute_rows,
                "composite_rows": composite_rows,
                "awards": awards_won,
                "n_leader": sum(1 for row in won.get(cro, []) if row["award"] == "leader"),
                "n_champion": sum(1 for row in won.get(cro, []) if row["award"] == "champion"),
            }
        )
    return profiles


# --- the whole report --------------------------------------------------------------------------


def _by_reason(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    return [
        {"reason": reason, "description": reason_description(reason), "n": counts[reason]}
        for reason in _ordered(counts, REASON_ORDER)
    ]


def _previous_year(previous: Mapping[str, pa.Table] | None) -> Any:
    """The previous survey's year, when its tables carry a survey_year column (hive-partitioned read)."""
    table = (previous or {}).get("composite_scores")
    if isinstance(table, pa.Table) and "survey_year" in table.column_names and table.num_rows:
        years = set(table.column("survey_year").to_pylist())
        if len(years) == 1:
            return years.pop()
    return None


def _compared_release(
    history: Iterable[Release] | None, previous: Mapping[str, pa.Table] | None, year: Any
) -> tuple[list[Release], Release | None]:
    """(the released years before `year`, oldest first; the one changes are computed against).

    Without `history`, the older calling convention: `previous` (the previous survey's tables) stands for
    one release of the year its tables name, else `year - 1`, with no recorded configuration."""
    if history is not None:
        releases = sorted(
            (release for release in history if not isinstance(year, int) or release.survey_year < year),
            key=lambda release: release.survey_year,
        )
    elif previous is not None:
        previous_year = _previous_year(previous)
        if previous_year is None and isinstance(year, int):
            previous_year = year - 1  # the flow used to read the previous survey year's publication
        releases = [Release(previous_year, None, Manifest(), previous["composite_scores"])]
    else:
        releases = []
    return releases, (releases[-1] if releases else None)


def display_names(survey: Any, *rows: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """CRO id -> the name people read: the tables' `cro_name`, else the survey's configured name."""
    names = {histories.cro_id(cro): cro.name for cro in getattr(survey, "cros", ()) or ()}
    for table in rows:
        for row in table:
            if row.get("cro_name"):
                names[row["cro"]] = row["cro_name"]
    return names


def merger_notes(formerly: Mapping[str, Iterable[str]], former_names: Mapping[str, str]) -> dict[str, str]:
    """CRO id -> "new entity, formed from A and B" for each merger (several former ids), the former ids
    named as their latest release named them (the id where no release did)."""
    return {
        cro: f"{NEW_ENTITY}, formed from {join_names(former_names.get(former, former) for former in ids)}"
        for cro, ids in formerly.items()
        if len(tuple(ids)) > 1
    }


def _order(value: str, order: list[str]) -> tuple[int, str]:
    return (order.index(value) if value in order else len(order), value)


READINGS = {
    "official": "the official rule",
    "shrunk": "the shrunk composites",
    "adjusted": "adjusted for respondent leniency",
}
"""The award readings (sql/int_award_readings.sql), as the sensitivity lines name them."""


def sensitivity(
    readings: Iterable[Mapping[str, Any]], rule: str, segment: str, category: str, names: Mapping[str, str]
) -> list[str]:
    """Per other reading of one cell, one sentence saying whether it would name other awards than the
    rule in effect (a pure function of int_award_readings' rows): "Adjusted for respondent leniency: the
    same awards." or "...: leader B instead of A; champions also C, not D." Readings that name no award
    anywhere in the cell (no resampling) are left out."""
    named: dict[str, dict[str, set[str]]] = {}
    for row in readings:
        if row["segment"] == segment and row["category"] == category:
            named.setdefault(row["reading"], {"leader": set(), "champion": set()})[row["award"]].add(row["cro"])
    chosen = named.get(rule, {"leader": set(), "champion": set()})

    def listed(cros: Iterable[str]) -> str:
        return join_names(sorted((names.get(cro, cro) for cro in cros), key=str.casefold))

    lines = []
    for reading, label in READINGS.items():
        if reading == rule or reading not in named:
            continue
        other = named[reading]
        parts = []
        if other["leader"] != chosen["leader"]:
            leaders = f"leader {listed(other['leader'])}" if other["leader"] else "no leader"
            parts.append(f"{leaders} instead of {listed(chosen['leader']) or 'none'}")
        gained, lost = other["champion"] - chosen["champion"], chosen["champion"] - other["champion"]
        if gained or lost:
            change = [f"also {listed(gained)}"] if gained else []
            change += [f"not {listed(lost)}"] if lost else []
            parts.append("champions " + ", ".join(change))
        lines.append(f"{label[0].upper()}{label[1:]}: " + ("; ".join(parts) if parts else "the same awards") + ".")
    return lines


def draft_context(diff: Any, segments: Iterable[str], categories: Iterable[str]) -> dict[str, Any]:
    """What the DRAFT banner shows from a `cro_awards.publication.diff.Diff` (a pure function): the run, the release
    it is compared with (None: no release yet), the overrides, the awards gained and lost per cell (in
    the report's segment and category order), the composites that moved and the knobs that differ."""
    segments, categories = list(segments), list(categories)

    def cell_key(change: Any) -> tuple:
        return (*_order(change.segment, segments), *_order(change.category, categories))

    def cell_label(change: Any) -> str:
        return f"{segment_label(change.segment)} · {category_label(change.category)}"

    cells: dict[tuple, dict[str, Any]] = {}
    for kind, changes in (("gained", diff.awards_gained), ("lost", diff.awards_lost)):
        for change in changes:
            cell = cells.setdefault(cell_key(change), {"label": cell_label(change), "gained": [], "lost": []})
            cell[kind].append(
                {"award": change.award.capitalize(), "name": change.cro_name or change.cro, "cro": change.cro}
            )
    for cell in cells.values():
        for kind in ("gained", "lost"):
            cell[kind].sort(key=lambda entry: (entry["award"] != "Leader", entry["name"].casefold(), entry["cro"]))
    moved = []
    for move in sorted(diff.composites_moved, key=lambda m: (*cell_key(m), (m.cro_name or m.cro).casefold(), m.cro)):
        if move.before is not None and move.after is not None:
            change = format_delta(move.after - move.before)
        else:
            change = "newly eligible" if move.before is None else "not eligible now"
        moved.append(
            {
                "label": cell_label(move),
                "name": move.cro_name or move.cro,
                "before": fmt2(move.before),
                "after": fmt2(move.after),
                "change": change,
                "change_class": change_class(change) if move.before is not None and move.after is not None else "flat",
            }
        )
    knobs = [
        {
            "knob": change.knob,
            "before": format_setting(change.knob, change.before),
            "after": format_setting(change.knob, change.after),
        }
        for change in diff.knobs_changed
    ]
    overrides = [{"knob": knob, "value": format_knob(value)} for knob, value in sorted((diff.overrides or {}).items())]
    return {
        "run_id": diff.draft_run_id,
        "against_run_id": diff.against_run_id,
        "overrides": overrides,
        "cells": [cells[key] for key in sorted(cells)],
        "n_gained": sum(len(cell["gained"]) for cell in cells.values()),
        "n_lost": sum(len(cell["lost"]) for cell in cells.values()),
        "moved": moved,
        "knobs": knobs,
        "empty": not (cells or moved or knobs),
    }


_COMPOSITE_COLUMNS = (
    "segment", "cro", "category", "n_evaluations", "composite", "is_eligible", "rank", "ci_low", "ci_high",
    "p_leader", "p_champion", "rank_low", "rank_high", "is_co_leader", "cro_name",
)  # fmt: skip
_ATTRIBUTE_COLUMNS = ("segment", "cro", "attribute", "n_ratings", "score", "cro_name")
_AWARD_COLUMNS = (
    "segment", "category", "cro", "award", "composite", "weighted_mean", "weighted_sd", "threshold",
    "p_award", "is_robust", "cro_name",
)  # fmt: skip


@dataclass(frozen=True)
class _Rows:
    """The published tables as rows, every row's `cro_name` the name people read (`display_names`)."""

    composites: list[dict[str, Any]]
    attribute_scores: list[dict[str, Any]]
    awards: list[dict[str, Any]]
    names: dict[str, str]
    readings: list[dict[str, Any]]
    """Every reading's awards (int_award_readings), for the sensitivity lines; absent: none shown."""


def _rows(tables: Mapping[str, pa.Table], survey: Any) -> _Rows:
    composites = table_rows(tables["composite_scores"], _COMPOSITE_COLUMNS)
    attribute_scores = table_rows(tables["attribute_scores"], _ATTRIBUTE_COLUMNS)
    awards = table_rows(tables["awards"], _AWARD_COLUMNS)
    names = display_names(survey, composites, attribute_scores, awards)
    for row in [*composites, *attribute_scores, *awards]:
        row["cro_name"] = names.get(row["cro"], row["cro"])
    readings = table_rows(tables.get("award_readings"), ("reading", "segment", "category", "cro", "award"))
    return _Rows(composites, attribute_scores, awards, names, readings)


@dataclass(frozen=True)
class _Comparison:
    """The years released before the report's (oldest first) and what the report draws from them."""

    releases: list[Release]
    compared: Release | None
    """The release changes are computed against (the most recent), None when there is none."""
    change_label: str
    changes: dict[tuple[str, str, str], dict[str, Any]]
    series: dict[tuple[str, str, str], list[Point]]
    notes: dict[str, str]
    """CRO id -> the merger note shown instead of a change."""

    @property
    def previous_year(self) -> Any:
        return self.compared.survey_year if self.compared else None


def _comparison(
    composite_table: pa.Table,
    survey: Any,
    history: Iterable[Release] | None,
    previous: Mapping[str, pa.Table] | None,
    year: Any,
) -> _Comparison:
    releases, compared = _compared_release(history, previous, year)
    formerly = histories.former_ids(getattr(survey, "cros", ()) or ())
    previous_year = compared.survey_year if compared else None
    return _Comparison(
        releases=releases,
        compared=compared,
        change_label=f"since {previous_year}" if previous_year is not None else "since the previous survey",
        changes=year_over_year(composite_table, compared.composites, formerly) if compared else {},
        series=histories.composite_series(releases, composite_table, year, formerly) if releases else {},
        notes=merger_notes(formerly, histories.release_names(releases)),
    )


def _report_order(rows: _Rows, survey: Any) -> tuple[list[str], list[str]]:
    """(segments, categories) in the report's order: the known ones first, then any other by name."""
    published = rows.composites + rows.awards
    segments = _ordered({row["segment"] for row in published} | set(SEGMENT_ORDER), SEGMENT_ORDER)
    configured = getattr(survey, "categories", {})
    categories = _ordered({row["category"] for row in published} | set(configured), configured)
    return segments, categories


def _by_composite(row: Mapping[str, Any]) -> tuple:
    return (-row["composite"], row["cro_name"].casefold(), row["cro"])


def _award_entry(row: Mapping[str, Any], coleading: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """A leader (with its co-leaders, `coleading` given) or a champion as a cell lists it."""
    entry = {"cro": row["cro"], "name": row["cro_name"], "composite": fmt2(row["composite"])}
    if coleading is not None:
        entry["co_leaders"] = coleading.get(row["cro"], [])
    return {**entry, "p_award": format_probability(row.get("p_award")), "robust": row.get("is_robust")}


def _cell_chart(
    rows: list[dict[str, Any]],
    reference: Mapping[str, Any] | None,
    winners: dict[str, set[str]],
    ties: dict[str, str],
    segment: str,
    category: str,
    comparison: _Comparison,
    intervals: bool,
) -> dict[str, Any] | None:
    """The cell's chart (`chart_layout`), None when no CRO is eligible."""
    if not rows:
        return None
    title = (
        f"{segment_label(segment)} · {category_label(category)}: composites of the "
        f"{len(rows)} eligible CROs, highest first"
    )
    return chart_layout(
        rows,
        reference["weighted_mean"] if reference else None,
        reference["threshold"] if reference else None,
        winners,
        chart_id=f"{segment}/{category}",
        title=title,
        show_intervals=intervals,
        ties=ties,
        changes={
            cro: change["text"] for (s, c, cro), change in comparison.changes.items() if s == segment and c == category
        },
        change_label=comparison.change_label,
        notes=comparison.notes,
    )


def _cell(
    rows_: _Rows, segment: str, category: str, comparison: _Comparison, rule: str, intervals: bool
) -> dict[str, Any]:
    """One segment and category: its leaders, champions, figures, sensitivity lines and chart."""
    rows = chart_rows(rows_.composites, segment, category)
    cell_awards = [row for row in rows_.awards if row["segment"] == segment and row["category"] == category]
    leaders = sorted((row for row in cell_awards if row["award"] == "leader"), key=_by_composite)
    champions = sorted((row for row in cell_awards if row["award"] == "champion"), key=_by_composite)
    reference = cell_awards[0] if cell_awards else None
    coleading = {
        leader: [rows_.names.get(cro, cro) for cro in others]
        for leader, others in co_leaders(rows, [row["cro"] for row in leaders]).items()
    }
    ties = {leader: ", ".join(others) for leader, others in coleading.items()}
    co_leading = sum(1 for row in rows if row.get("is_co_leader"))
    indistinct = cell_awards and no_distinguishable_leader(co_leading, len(rows))
    return {
        "indistinct": indistinct_text(co_leading, len(rows)) if indistinct else None,
        "segment": segment,
        "category": category,
        "anchor": f"{segment}-{category}",
        "label": category_label(category),
        "n_eligible": len(rows),
        "has_awards": bool(cell_awards),
        "leaders": [_award_entry(row, coleading) for row in leaders],
        "champions": [_award_entry(row) for row in champions],
        "not_robust": sum(1 for row in cell_awards if row.get("is_robust") is False),
        "sensitivity": sensitivity(rows_.readings, rule, segment, category, rows_.names) if cell_awards else [],
        "weighted_mean": fmt2(reference["weighted_mean"]) if reference else None,
        "weighted_sd": fmt2(reference["weighted_sd"]) if reference else None,
        "threshold": fmt2(reference["threshold"]) if reference else None,
        "chart": _cell_chart(
            rows,
            reference,
            winners_of(rows_.awards, segment, category),
            ties,
            segment,
            category,
            comparison,
            intervals,
        ),
    }


def _sections(
    rows: _Rows,
    segments: list[str],
    categories: list[str],
    comparison: _Comparison,
    rule: str,
    intervals: bool,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(one section per segment with its cells, category -> segment -> cell: the awards at a glance)."""
    sections = []
    glance: dict[str, dict[str, Any]] = {category: {} for category in categories}
    for segment in segments:
        cells = []
        for category in categories:
            cell = _cell(rows, segment, category, comparison, rule, intervals)
            cells.append(cell)
            glance[category][segment] = cell
        sections.append({"segment": segment, "label": segment_label(segment), "cells": cells})
    return sections, glance


def _counts_context(counts: Counts) -> dict[str, Any]:
    """Rows read, accepted and quarantined (with the share), and the quarantine's reasons."""
    read, quarantined = counts.read, counts.quarantined
    return {
        "read": read,
        "accepted": counts.accepted,
        "quarantined": quarantined,
        "quarantined_share": f"{100 * quarantined / read:.2f}%" if read and quarantined is not None else None,
        "by_reason": _by_reason(counts.quarantined_by_reason),
    }


def _compared_context(compared: Release | None, manifest: Manifest) -> dict[str, Any] | None:
    """The release changes are computed against, and the knobs that differed between it and this run."""
    if compared is None:
        return None
    known = compared.manifest.effective is not None and manifest.effective is not None
    changes = knob_changes(compared.manifest, manifest) if known else []
    return {
        "year": compared.survey_year,
        "run_id": compared.run_id,
        "knobs_known": known,
        "knob_changes": [
            {
                "knob": change.knob,
                "before": format_setting(change.knob, change.before),
                "after": format_setting(change.knob, change.after),
            }
            for change in changes
        ],
    }


def report_context(
    tables: Mapping[str, pa.Table],
    manifest: Manifest | Mapping[str, Any],
    survey: Any,
    previous: Mapping[str, pa.Table] | None = None,
    history: Iterable[Release] | None = None,
    draft: Any = None,
) -> dict[str, Any]:
    """Everything the template shows, prepared and formatted (a pure function of its arguments)."""
    manifest = Manifest.of(manifest)
    composite_table = tables["composite_scores"]
    intervals = has_intervals(composite_table)
    rows = _rows(tables, survey)
    knobs = method_knobs(manifest, survey)
    year = manifest.survey_year if manifest.survey_year is not None else getattr(survey, "survey_year", None)
    comparison = _comparison(composite_table, survey, history, previous, year)
    segments, categories = _report_order(rows, survey)
    rule = (manifest.effective or {}).get("award_rule") or "official"
    sections, glance = _sections(rows, segments, categories, comparison, rule, intervals)
    return {
        "report": True,
        "year": year,
        "title": f"CRO Leadership Awards {year}",
        "published_at": format_timestamp(manifest.published_at),
        "run_id": manifest.run_id,
        "export_file": manifest.export.file_name,
        "config_file": manifest.config.file_name,
        "overrides": manifest.overrides or {},
        "not_counted": _not_counted(manifest.not_counted),
        "counts": _counts_context(manifest.counts),
        "screens": describe_screens((manifest.effective or {}).get("screens")),
        "knobs": {knob: format_knob(value) for knob, value in knobs.items() if value is not None},
        "knob_rows": [
            {"name": knob, "value": format_knob(value), "description": knobs_model.description(knob)}
            for knob, value in knobs.items()
            if value is not None
        ],
        "previous_year": comparison.previous_year,
        "rating_scale": getattr(survey, "rating_scale", None),
        "intervals": intervals,
        "legend": [LEGEND_AWARD, LEGEND_STABILITY, LEGEND_CO_LEADERS] if intervals else [],
        "has_previous": comparison.compared is not None,
        "change_label": comparison.change_label,
        "compared": _compared_context(comparison.compared, manifest),
        "history_years": [release.survey_year for release in comparison.releases],
        "segments": [{"segment": s, "label": segment_label(s)} for s in segments],
        "categories": [{"category": c, "label": category_label(c)} for c in categories],
        "glance": glance,
        "sections": sections,
        "profiles": cro_profiles(
            rows.attribute_scores,
            rows.composites,
            rows.awards,
            survey,
            comparison.changes,
            segments,
            categories,
            names=rows.names,
            series=comparison.series,
            notes=comparison.notes,
            survey_year=year,
        ),
        "status_colors": STATUS_COLORS,
        "draft": draft_context(draft, segments, categories) if draft is not None else None,
    }


def render_report(
    tables: dict[str, pa.Table],
    manifest: Manifest | Mapping[str, Any],
    survey: Any,
    previous: dict[str, pa.Table] | None = None,
    *,
    history: Iterable[Release] | None = None,
    draft: Any = None,
) -> str:
    """The awards report of one survey year as a self-contained HTML5 document.

    `tables`: the year's published attribute_scores, composite_scores (ci_low / ci_high optional) and
    awards, keyed by CRO id (`cro`) with the display name in `cro_name` where present; `manifest`: its
    `Manifest` (or `_manifest.json`'s content); `survey`: its `SurveyConfig` (CRO names and former ids,
    attribute labels, category order, method knobs where the manifest has none); `history`: the years
    released before this one (`cro_awards.publication.history.load_history`), for each CRO's history and the
    change of each composite since the most recent of them (whose year and differing knobs the report names);
    `previous`: the older convention, the previous survey's published tables alone (ignored when `history`
    is given); `draft`: a `cro_awards.publication.diff.Diff` makes the page the draft's (a DRAFT banner with
    the overrides and the difference from the current release); None renders the report as released.
    """
    context = report_context(tables, manifest, survey, previous, history, draft)
    return _environment().get_template(TEMPLATE).render(**context).strip() + "\n"


def _not_counted(recorded: Any) -> dict[str, dict[str, int]] | None:
    """The manifest's `not_counted` (segment -> cells, ratings) when it has that shape, else None (an
    older manifest: the report then says nothing of it)."""
    if not isinstance(recorded, dict):
        return None
    found = {}
    for segment in ("big_pharma", "small_pharma"):
        counts = recorded.get(segment)
        if not isinstance(counts, dict) or not all(isinstance(counts.get(k), int) for k in ("cells", "ratings")):
            return None
        found[segment] = {"cells": counts["cells"], "ratings": counts["ratings"]}
    return found
