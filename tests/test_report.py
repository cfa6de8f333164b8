"""The HTML awards report (cro_awards/report/html.py): content, escaping, offline-ness, and a headless-browser render.

The tables are tiny literals: five CROs (one named `<Acme & "Co">`), two categories of two attributes,
the three segments; the tables key on the CRO id (`cro`, derived from the name: "Alpha" -> alpha,
`<Acme & "Co">` -> acme_co) and carry the name in `cro_name`, which is what the report shows. Awards rows carry the weighted mean, SD and threshold worked out by `_awards` with
the method's formulas (docs/method.md), so the values the report must show (rounded to two decimals)
are known; the report itself never recomputes them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pytest

from cro_awards.publication.diff import AwardChange, CompositeMove, Diff, KnobChange
from cro_awards.publication.history import Point, Release
from cro_awards.reading.config import SurveyConfig, derive_id
from cro_awards.record import summary
from cro_awards.report import html as report

ACME = '<Acme & "Co">'
CHROMIUM = Path("/usr/bin/chromium")
SEGMENTS = ("overall", "big_pharma", "small_pharma")

SURVEY_ARGUMENTS = dict(
    survey_year=2024,
    survey_close=dt.date(2024, 2, 29),
    cros=[{"name": name} for name in ("Alpha", "Beta", "Gamma", "Delta", ACME)],
    attributes={
        "data_quality": "Data quality",
        "timeliness": 'Meeting "timelines" & <milestones>',
        "responsiveness": "Responsiveness",
        "communication": "Communication",
    },
    categories={"quality": ("data_quality", "timeliness"), "service": ("responsiveness", "communication")},
    min_evaluations=10,
    min_cros_for_awards=3,
    champion_sd_multiplier=0.5,
    min_cell_size=3,
)
SURVEY = SurveyConfig(**SURVEY_ARGUMENTS)

# (segment, category) -> [(cro, n_evaluations, composite, ci_low, ci_high)]. Delta is never eligible
# (n < 10); big_pharma/service has two eligible CROs (no awards); small_pharma/service has none.
CELLS = {
    ("overall", "quality"): [
        ("Alpha", 40, 4.5, 4.30, 4.70),
        ("Beta", 30, 4.2, 4.00, 4.40),
        ("Gamma", 20, 3.6, 3.40, 3.80),
        (ACME, 12, 3.9, 3.60, 4.20),
        ("Delta", 5, 3.0, None, None),
    ],
    ("overall", "service"): [
        ("Alpha", 40, 4.0, 3.80, 4.20),
        ("Beta", 30, 4.4, 4.25, 4.55),
        ("Gamma", 20, 3.5, 3.30, 3.70),
        (ACME, 12, 4.1, 3.90, 4.30),
    ],
    ("big_pharma", "quality"): [
        ("Alpha", 20, 4.6, 4.40, 4.80),
        ("Beta", 15, 4.1, 3.90, 4.30),
        ("Gamma", 10, 3.7, 3.50, 3.90),
    ],
    ("big_pharma", "service"): [
        ("Alpha", 20, 4.1, 3.90, 4.30),
        ("Beta", 15, 4.3, 4.10, 4.50),
        ("Gamma", 4, 3.9, None, None),
    ],
    ("small_pharma", "quality"): [
        ("Alpha", 20, 4.4, 4.20, 4.60),
        ("Beta", 15, 4.3, 4.10, 4.50),
        (ACME, 12, 3.9, 3.60, 4.20),
        ("Gamma", 10, 3.5, 3.30, 3.70),
    ],
    ("small_pharma", "service"): [("Alpha", 8, 3.9, None, None)],
}
AWARDED = [cell for cell in CELLS if sum(n >= 10 for _, n, *_ in CELLS[cell]) >= 3]
CO_LEADERS = {("overall", "quality", "Beta"), ("overall", "service", ACME)}
"""Eligible CROs the resampling finds co-leading with their cell's leader (is_co_leader)."""
LEADER_P, CHAMPION_P = 0.6, 0.9
"""p_award of every leader row (below robust_award_probability 0.8: not robust) and champion row."""


def _awards(cells: dict, multiplier: float = 0.5) -> list[tuple]:
    """Award rows by the method: weights n_evaluations, population SD, leaders at the max, champions."""
    rows = []
    for (segment, category), cros in cells.items():
        eligible = [(cro, n, x) for cro, n, x, *_ in cros if n >= 10]
        if len(eligible) < 3:
            continue
        total = sum(n for _, n, _ in eligible)
        mean = sum(n * x for _, n, x in eligible) / total
        sd = math.sqrt(sum(n * (x - mean) ** 2 for _, n, x in eligible) / total)
        threshold = mean + multiplier * sd
        best = max(x for _, _, x in eligible)
        for cro, _, x in eligible:
            if x >= best - 1e-9:
                rows.append((segment, category, cro, "leader", x, mean, sd, threshold))
            if x >= threshold - 1e-9 and x > mean + 1e-9:
                rows.append((segment, category, cro, "champion", x, mean, sd, threshold))
    return rows


def _cell_stats(segment: str, category: str) -> tuple[float, float]:
    row = next(r for r in _awards(CELLS) if r[:2] == (segment, category))
    return row[5], row[7]


def _table(rows: list[tuple], names: list[str], types: list[pa.DataType]) -> pa.Table:
    return pa.table(
        {
            name: pa.array([row[i] for row in rows], type=t)
            for i, (name, t) in enumerate(zip(names, types, strict=False))
        }
    )


def tables(cells: dict = CELLS, intervals: bool = True, names: bool = True) -> dict[str, pa.Table]:
    """The published tables of `cells` (CROs given by name), keyed by id with `cro_name` appended;
    `names=False`: the older tables, whose `cro` was the name and which had no `cro_name`."""
    composites, attributes = [], []
    for (segment, category), cros in cells.items():
        ranked = sorted((x for _, n, x, *_ in cros if n >= 10), reverse=True)
        for cro, n, x, low, high in cros:
            eligible = n >= 10
            rank = 1 + sum(other > x + 1e-9 for other in ranked) if eligible else None
            co_leader = eligible and (rank == 1 or (segment, category, cro) in CO_LEADERS)
            figures = (rank, rank + 1, co_leader) if eligible else (None, None, None)
            composites.append((segment, cro, category, n, x, eligible, rank, low, high, *figures))
            for offset, attribute in zip((-0.1, 0.1), SURVEY.categories[category], strict=False):
                attributes.append((segment, cro, attribute, n, x + offset))
    names = ["segment", "cro", "category", "n_evaluations", "composite", "is_eligible", "rank"]
    types = [pa.string(), pa.string(), pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.int64()]
    if intervals:  # the resampling's figures: interval, rank interval, co-leaders; awards' p_award
        names = [*names, "ci_low", "ci_high", "rank_low", "rank_high", "is_co_leader"]
        types = [*types, pa.float64(), pa.float64(), pa.int64(), pa.int64(), pa.bool_()]
    award_rows = [(*row, LEADER_P if row[3] == "leader" else CHAMPION_P, row[3] != "leader") for row in _awards(cells)]
    award_names = ["segment", "category", "cro", "award", "composite", "weighted_mean", "weighted_sd", "threshold"]
    award_types = [pa.string()] * 4 + [pa.float64()] * 4
    if intervals:
        award_names, award_types = [*award_names, "p_award", "is_robust"], [*award_types, pa.float64(), pa.bool_()]
    published = {
        "attribute_scores": _table(
            attributes,
            ["segment", "cro", "attribute", "n_ratings", "score"],
            [pa.string(), pa.string(), pa.string(), pa.int64(), pa.float64()],
        ),
        "composite_scores": _table(composites, names, types),
        "awards": _table(award_rows, award_names, award_types),
    }
    return {name: _by_id(table) for name, table in published.items()} if names else published


def _by_id(table: pa.Table) -> pa.Table:
    """`cro` (a name) replaced by the id derived from it, the name appended as `cro_name`."""
    shown = table.column("cro")
    ids = pa.array([derive_id(name) for name in shown.to_pylist()], pa.string())
    return table.set_column(table.column_names.index("cro"), "cro", ids).append_column("cro_name", shown)


MANIFEST = {
    "run_id": "run-1",
    "survey_year": 2024,
    "published_at": "2024-03-05T10:11:12.123456Z",
    "export": {"file_name": "export_2024.csv", "sha256": "0" * 64},
    "config": {
        "file_name": "2024.yaml",
        "overrides": {},
        "effective": {
            "min_evaluations": 10,
            "min_cros_for_awards": 3,
            "champion_sd_multiplier": 0.5,
            "min_cell_size": 3,
        },
    },
    "counts": {
        "read": 130,
        "accepted": 121,
        "quarantined": 9,
        "quarantined_by_reason": {"unknown_cro": 4, "invalid_rating": 3, "duplicate_evaluation": 2},
    },
    "not_counted": {"big_pharma": {"cells": 7, "ratings": 9}, "small_pharma": {"cells": 2, "ratings": 4}},
}


def previous_tables() -> dict[str, pa.Table]:
    """Last year: Alpha 4.25 in overall/quality (+0.25 now), Beta 4.5 (-0.30 now), no Gamma."""
    cells = {
        ("overall", "quality"): [
            ("Alpha", 30, 4.25, None, None),
            ("Beta", 20, 4.5, None, None),
            (ACME, 12, 3.9, None, None),
        ],
    }
    return tables(cells, intervals=False)


@pytest.fixture(scope="module")
def html() -> str:
    return report.render_report(tables(), MANIFEST, SURVEY, previous_tables())


class _Structure(HTMLParser):
    """Tags balanced (void elements aside), ids unique, every chart's markup collected."""

    VOID = frozenset(
        {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    )
    SVG_SELF_CLOSING = frozenset({"circle", "line", "path", "rect"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ids: list[str] = []
        self.errors: list[str] = []
        self.charts: list[str] = []
        self.doctype = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.append(attributes["id"])
        if tag == "svg" and attributes.get("class") == "chart":
            self.charts.append(attributes.get("data-chart"))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag not in self.VOID | self.SVG_SELF_CLOSING:
            self.errors.append(f"self-closing <{tag}/>")

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def _structure(text: str) -> _Structure:
    parser = _Structure()
    parser.feed(text)
    parser.close()
    return parser


# --- the rendered report ---------------------------------------------------------------------------


def test_title_counts_and_method(html):
    assert "<title>CRO Leadership Awards 2024</title>" in html
    assert "<h1>CRO Leadership Awards 2024</h1>" in html
    for number in ("130", "121", "9"):
        assert f'<b class="num">{number}</b>' in html
    for reason, n in MANIFEST["counts"]["quarantined_by_reason"].items():
        meaning = _escaped(report.reason_description(reason))
        assert f'<code>{reason}</code><br><span class="meaning">{meaning}</span></td><td class="num">{n}</td>' in html
    # by reason in the data contract's order
    assert html.index("unknown_cro") < html.index("invalid_rating") < html.index("duplicate_evaluation")
    method = html[html.index('<section id="method">') :]
    assert "at least 10 evaluations" in method and "at least 3 eligible CROs" in method
    assert "at least 0.5 weighted standard deviations above the weighted mean" in method
    assert "an attribute rated by fewer than 3 respondents of a segment for a CRO counts nowhere" in method
    assert "(this year 7 such Big Pharma and 2 Small Pharma cells, 13 ratings in all)" in method
    assert "2024-03-05 10:11 UTC" in html


SCREENS = {
    "qualification": {"column": "decision_role", "allowed": ["final decision maker", "<shared> & co"]},
    "straight_lining": {"min_ratings": 8},
    "speeding": {"column": "duration_seconds", "min_seconds": 120.0},
}
"""The manifest's `config.effective.screens` of a year with all three (an allowed value with markup in it)."""


def _with_screens(screens: dict) -> dict:
    return {
        **MANIFEST,
        "config": {**MANIFEST["config"], "effective": {**MANIFEST["config"]["effective"], "screens": screens}},
    }


def _counts_section(text: str) -> str:
    return text[text.index('<section id="counts">') : text.index('<section id="method">')]


def test_a_year_without_screens_says_none_were_configured(html):
    assert "No respondent screens (qualification, straight-lining, speeding) were configured" in _counts_section(html)
    assert '<ul class="screens">' not in html


def test_the_screens_applied_are_listed_from_the_manifest_with_their_new_reasons():
    manifest = _with_screens(SCREENS)
    manifest["counts"] = {
        **MANIFEST["counts"],
        "quarantined_by_reason": {"straight_lining": 2, "speeding": 5, "unknown_cro": 4, "not_qualified": 7},
    }
    counts = _counts_section(report.render_report(tables(), manifest, SURVEY))
    items = re.findall(r"<li>(.*?)</li>", counts[counts.index('<ul class="screens">') :])
    assert [item.split(":")[0] for item in items] == ["qualification", "straight-lining", "speeding"]
    assert "decision_role is “final decision maker” or “&lt;shared&gt; &amp; co”" in items[0]
    assert "at least 8 valid ratings" in items[1] and "(straight_lining)" in items[1]
    assert "duration_seconds is under 120 seconds" in items[2] and "(invalid_duration)" in items[2]
    assert "No respondent screens" not in counts
    # the new reasons in the contract's order, each with what it means
    reasons = re.findall(r'<tr><td><code>(\w+)</code><br><span class="meaning">([^<]+)</span>', counts)
    assert [code for code, _ in reasons] == ["unknown_cro", "not_qualified", "speeding", "straight_lining"]
    assert all(meaning != code for code, meaning in reasons)


def test_only_the_configured_screens_are_listed():
    counts = _counts_section(
        report.render_report(tables(), _with_screens({"straight_lining": {"min_ratings": 2}}), SURVEY)
    )
    assert re.findall(r"<li>([\w-]+):", counts) == ["straight-lining"]


def test_screens_that_differ_from_the_previous_release_are_named():
    history = [_release(2023, [("alpha", "Alpha", 4.25)], MANIFEST["config"]["effective"])]
    html = report.render_report(tables(), _with_screens(SCREENS), SURVEY_HISTORY, history=history)
    knobs = html[html.index('<table class="knob-changes">') : html.index("</table>", html.index("knob-changes"))]
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td><td>([^<]+)</td></tr>", knobs)
    assert [(knob, before) for knob, before, _ in rows] == [("screens", "none")]
    assert rows[0][2].startswith("qualification: only respondents whose decision_role")


def test_every_leader_and_champion_is_named_with_its_composite(html):
    for segment, category, cro, award, composite, *_ in _awards(CELLS):
        cell = _cell_html(html, segment, category)
        shown = report.fmt2(composite)
        if award == "leader":
            assert f'<b>{_escaped(cro)}</b> <span class="num">{shown}</span>' in cell, (segment, category, cro)
        else:
            assert f'<span class="name">{_escaped(cro)}</span> <span class="num">{shown}</span>' in cell


def test_one_chart_per_cell_with_awards_in_reading_order(html):
    charts = _structure(html).charts
    for segment, category in AWARDED:
        assert charts.count(f"{segment}/{category}") == 1
    # a cell without awards but with eligible CROs is still drawn; one without eligible CROs is not
    assert "big_pharma/service" in charts and "small_pharma/service" not in charts
    assert charts == [
        "overall/quality",
        "overall/service",
        "big_pharma/quality",
        "big_pharma/service",
        "small_pharma/quality",
    ]
    assert html.count('<svg class="chart"') == len(charts)
    for chart in re.findall(r'<svg class="chart".*?</svg>', html, flags=re.S):
        assert re.search(r"<svg[^>]*>\s*<title>[^<]+</title>", chart), "each chart has a <title> first"


def test_cell_without_awards_says_so_and_draws_no_lines(html):
    cell = _cell_html(html, "big_pharma", "service")
    assert "No awards: fewer than min_cros_for_awards = 3 eligible CROs (2 eligible)" in cell
    assert 'class="mean"' not in cell and 'class="threshold"' not in cell
    assert cell.count('<g class="cro ') == 2
    empty = _cell_html(html, "small_pharma", "service")
    assert "No awards: fewer than min_cros_for_awards = 3 eligible CROs (0 eligible)" in empty


def test_weighted_mean_and_threshold_rounded_to_two_decimals(html):
    for segment, category in AWARDED:
        mean, threshold = _cell_stats(segment, category)
        cell = _cell_html(html, segment, category)
        for value, label in ((mean, "weighted mean"), (threshold, "champion threshold")):
            shown = f"{value:.2f}"
            assert f'{label} <span class="num">{shown}</span>' in cell
            assert f">{label} {shown}</text>" in cell, "the chart's line is labelled with the value"
            assert repr(value) not in cell and f"{value:.3f}" not in cell
    mean, threshold = _cell_stats("overall", "quality")
    assert (f"{mean:.2f}", f"{threshold:.2f}") == ("4.16", "4.33")


def test_only_eligible_cros_are_charted_best_first(html):
    chart = _chart_html(html, "overall/quality")
    names = re.findall(r'text-anchor="end"(?: font-weight="700")?>([^<]+)</text>', chart)
    assert names == ["Alpha", "Beta", _escaped(ACME), "Gamma"]
    assert "Delta" not in chart


def test_winners_are_highlighted_with_a_legend(html):
    chart = _chart_html(html, "overall/quality")
    # Alpha leads and is the champion (4.5 >= 4.33), the others are plain eligible CROs
    assert '<g class="cro leader_champion">' in chart and chart.count('<g class="cro other">') == 3
    assert report.STATUS_COLORS["leader_champion"] in chart and report.STATUS_COLORS["other"] in chart
    for label in ("Leader + champion", "Other eligible", "weighted mean", "champion threshold", "95% interval"):
        assert f">{label}</text>" in chart
    service = _chart_html(html, "overall/service")
    assert '<g class="cro leader_champion">' in service  # Beta 4.4


def test_co_leaders_are_named_with_their_leader(html):
    # overall/quality: Beta co-leads with Alpha; overall/service: Acme with Beta; big_pharma/quality: none.
    assert "co-leaders: Beta" in _cell_html(html, "overall", "quality")
    assert f"co-leaders: {_escaped(ACME)}" in _cell_html(html, "overall", "service")
    assert "co-leaders" not in _cell_html(html, "big_pharma", "quality")
    assert "statistical tie" not in html  # the overlap rule is gone: intervals alone say nothing of pairs


def test_awards_show_their_probability_and_whether_they_are_robust(html):
    cell = _cell_html(html, "overall", "quality")
    assert "p=0.60" in cell and "not robust" in cell  # the leader: 0.6 < robust_award_probability
    assert "p=0.90" in cell  # the champion
    glance = html[: html.index('id="overall-quality"')]
    assert "award not robust" in glance or "awards not robust" in glance


def _co_leading(published: dict[str, pa.Table], segment: str, category: str, cros: set[str]) -> dict:
    """`published` with `cros` (names) also flagged co-leaders of (segment, category)."""
    composites = published["composite_scores"]
    rows = composites.to_pylist()
    flags = [
        row["is_co_leader"]
        or (row["segment"], row["category"], row["cro_name"]) in {(segment, category, c) for c in cros}
        for row in rows
    ]
    flagged = composites.set_column(
        composites.column_names.index("is_co_leader"), "is_co_leader", pa.array(flags, pa.bool_())
    )
    return {**published, "composite_scores": flagged}


def test_a_cell_where_most_eligible_cros_co_lead_has_no_distinguishable_leader():
    # overall/quality: Alpha leads, Beta co-leads (fixture), Gamma too here: 3 of its 4 eligible CROs.
    html = report.render_report(_co_leading(tables(), "overall", "quality", {"Gamma"}), MANIFEST, SURVEY)
    cell = _cell_html(html, "overall", "quality")
    assert "no distinguishable leader (3 of 4 eligible CROs are co-leaders)" in cell
    assert "<b>Alpha</b>" in cell, "the official leader is still named"
    glance = html[html.index('<section id="glance">') : html.index('id="overall-quality"')]
    assert glance.count("no distinguishable leader (3 of 4") == 1
    # overall/service: 2 of 4 co-lead (exactly half: distinguishable); big_pharma/quality: the leader alone.
    assert "no distinguishable leader" not in _cell_html(html, "overall", "service")
    assert "no distinguishable leader" not in _cell_html(html, "big_pharma", "quality")


def test_a_cell_with_a_clear_leader_does_not_say_no_distinguishable_leader(html):
    assert "no distinguishable leader (" not in html  # the fixture: at most half of a cell's CROs co-lead


def test_the_figures_have_one_line_legends_and_probabilities_read_p_then_the_figure(html):
    legend = html[html.index('<ul class="figures-legend">') :]
    legend = legend[: legend.index("</ul>")]
    assert "<li>p: the chance that the award is deserved, not luck" in legend
    assert "<li>stable in x% of resamples (p_leader, p_champion): how often the CRO leads" in legend
    assert "no distinguishable leader: more than half of the cell&#39;s eligible CROs (at least two)" in legend
    assert "p=&gt;" not in html and "p=&lt;" not in html and "p=1.00" not in html and "p=0.00" not in html


def test_stability_reads_as_the_share_of_resamples_in_the_tooltip():
    published = tables()
    composites = published["composite_scores"]
    p_leader = [
        0.996 if row["rank"] == 1 else (0.004 if row["is_eligible"] else None) for row in composites.to_pylist()
    ]
    published["composite_scores"] = composites.append_column("p_leader", pa.array(p_leader, pa.float64()))
    chart = _chart_html(report.render_report(published, MANIFEST, SURVEY), "overall/quality")
    assert "stable as leader in &gt;99% of resamples" in chart and "stable as leader in &lt;1% of resamples" in chart
    assert "replicates" not in chart


def test_rank_intervals_are_drawn_beside_each_bar(html):
    chart = _chart_html(html, "overall/quality")
    assert "#1 (1–2)</tspan>" in chart and "#2 (2–3)</tspan>" in chart
    assert "rank #1 (1–2)" in chart  # and in the tooltip


def test_without_the_resampling_figures_no_whiskers_no_co_leaders_no_probabilities():
    html = report.render_report(tables(intervals=False), MANIFEST, SURVEY)
    assert 'class="interval"' not in html and "95% interval" not in html
    assert "co-leaders" not in html and "p=" not in html and "not robust" not in html
    assert _structure(html).charts.count("overall/quality") == 1


def test_intervals_are_drawn_as_whiskers(html):
    chart = _chart_html(html, "overall/quality")
    assert chart.count('class="interval"') == 4
    assert "95% interval 4.30 to 4.70" in chart


def test_year_over_year_changes(html):
    chart = _chart_html(html, "overall/quality")
    assert re.search(r'class="change up"[^>]*>\+0\.25</text>', chart)  # Alpha 4.25 -> 4.50
    assert re.search(r'class="change down"[^>]*>-0\.30</text>', chart)  # Beta 4.50 -> 4.20
    assert re.search(r'class="change flat"[^>]*>0\.00</text>', chart)  # Acme 3.90 -> 3.90
    assert re.search(r'class="change flat"[^>]*>new</text>', chart)  # Gamma: not published last year
    profile = _profile_html(html, "Alpha")
    assert '<span class="change up">+0.25</span>' in profile


def test_no_changes_without_previous():
    html = report.render_report(tables(), MANIFEST, SURVEY)
    assert 'class="change' not in html and "+0.25" not in html


def test_profiles_are_collapsible_with_labelled_attributes_per_segment(html):
    profile = _profile_html(html, "Gamma")
    assert profile.startswith('<details class="profile">')
    header = re.search(r"<caption class=\"muted\">Attribute scores</caption>\s*<thead>(.*?)</thead>", profile, re.S)
    assert re.findall(r">([^<>]+)</th>", header.group(1)) == ["attribute", "Overall", "Big Pharma", "Small Pharma"]
    assert '<th scope="row">Meeting &#34;timelines&#34; &amp; &lt;milestones&gt;</th>' in profile
    # Gamma's overall quality composite is 3.60: its attributes 3.50 and 3.70, n = 20
    assert '3.50 <span class="n">n=20</span>' in profile and '3.70 <span class="n">n=20</span>' in profile
    # only published rows: Gamma has no small_pharma/service rows, shown as –
    assert (
        'Communication</th><td class="num">3.60 <span class="n">n=20</span></td>'
        '<td class="num">4.00 <span class="n">n=4</span></td><td class="num">–</td></tr>'
    ) in profile
    names = [name.strip() for name in re.findall(r'<details class="profile">\s*<summary>([^<]+)', html)]
    assert names == [_escaped(ACME), "Alpha", "Beta", "Delta", "Gamma"]


def test_names_and_labels_are_escaped(html):
    assert ACME not in html and "<Acme" not in html
    assert "&lt;Acme &amp; &#34;Co&#34;&gt;" in html
    assert "<milestones>" not in html


def test_self_contained_and_offline(html):
    lowered = html.lower()
    assert "http://" not in lowered and "https://" not in lowered and "//" not in re.sub(r"<!--.*?-->", "", html)
    assert "<script" not in lowered and "<link" not in lowered and "<img" not in lowered
    assert "@import" not in lowered and "url(" not in lowered and "@font-face" not in lowered
    assert "system-ui" in html


def test_valid_html5_structure(html):
    assert html.startswith('<!DOCTYPE html>\n<html lang="en">')
    parsed = _structure(html)
    assert parsed.doctype == "DOCTYPE html"
    assert parsed.errors == [] and parsed.stack == []
    assert len(parsed.ids) == len(set(parsed.ids)), "ids are unique"
    assert '<meta charset="utf-8">' in html and "@media print" in html


def test_rendering_is_pure():
    first = report.render_report(tables(), MANIFEST, SURVEY, previous_tables())
    assert report.render_report(tables(), MANIFEST, SURVEY, previous_tables()) == first


def test_appended_columns_and_manifest_overrides():
    """Columns appended to the tables are ignored; the manifest's effective knobs win over the survey's."""
    data = tables()
    data["composite_scores"] = data["composite_scores"].append_column(
        "extra", pa.array(["x"] * data["composite_scores"].num_rows)
    )
    manifest = {
        **MANIFEST,
        "config": {
            "overrides": {"min_evaluations": 12},
            "effective": {**MANIFEST["config"]["effective"], "min_evaluations": 12},
        },
    }
    html = report.render_report(data, manifest, SURVEY)
    assert "at least 12 evaluations" in html and "min_evaluations = 12" in html


def test_names_are_shown_and_ids_are_not(html):
    """The tables key on ids; every place people read shows the name (Acme sorted by its name)."""
    for cro_id in ("alpha", "beta", "gamma", "acme_co"):
        assert not re.search(rf">\s*{cro_id}\b", html), cro_id
    assert "<summary>Alpha" in html and f"<b>{_escaped('Alpha')}</b>" in _cell_html(html, "overall", "quality")


def test_tables_without_names_show_their_cro_column():
    """Tables written before the label columns (cro held the name): the report shows cro as is."""
    html = report.render_report(tables(names=False), MANIFEST, SURVEY)
    assert "<summary>Alpha" in html and "<b>Alpha</b>" in _cell_html(html, "overall", "quality")


# --- the history of released years ---------------------------------------------------------------

SURVEY_HISTORY = SurveyConfig(
    **{
        **SURVEY_ARGUMENTS,
        "cros": [
            {"name": "Alpha"},
            {"name": "Beta", "formerly": ["beta_old"]},  # a rename: continues beta_old's series
            {"name": "Gamma"},  # new this year
            {"name": "Delta"},
            {"name": ACME, "formerly": ["north_labs", "south_labs"]},  # a merger: a new entity
        ],
    }
)
EFFECTIVE_2023 = {**MANIFEST["config"]["effective"], "min_evaluations": 8, "survey_close": "2023-02-28"}
"""The 2023 release's knobs: min_evaluations 8 (this run: 10); survey_close differs by nature."""


def _release(year: int, rows: list[tuple], effective: dict | None = None) -> Release:
    """A released year's composites, overall/quality only: rows (cro id, cro_name, composite)."""
    composites = pa.table(
        {
            "segment": pa.array(["overall"] * len(rows), pa.string()),
            "category": pa.array(["quality"] * len(rows), pa.string()),
            "cro": pa.array([row[0] for row in rows], pa.string()),
            "composite": pa.array([row[2] for row in rows], pa.float64()),
            "cro_name": pa.array([row[1] for row in rows], pa.string()),
        }
    )
    manifest = {"run_id": f"run-{year}", "survey_year": year, "config": {"effective": effective or {}}}
    return Release(year, manifest["run_id"], manifest, composites)


HISTORY = [
    _release(2021, [("alpha", "Alpha", 4.0), ("beta_old", "Old Beta", 4.4), ("north_labs", "North Labs", 3.5)]),
    # Alpha's composite withheld in 2022 (no row): a gap, never a zero
    _release(
        2022, [("beta_old", "Old Beta", 4.45), ("north_labs", "North Labs", 3.6), ("south_labs", "South Labs", 3.8)]
    ),
    _release(
        2023,
        [
            ("alpha", "Alpha", 4.25),
            ("beta_old", "Old Beta", 4.5),
            ("north_labs", "North Labs", 3.7),
            ("south_labs", "South Labs", 3.9),
        ],
        EFFECTIVE_2023,
    ),
]


@pytest.fixture(scope="module")
def history_html() -> str:
    manifest = {
        **MANIFEST,
        "config": {
            **MANIFEST["config"],
            "effective": {**MANIFEST["config"]["effective"], "survey_close": "2024-02-29"},
        },
    }
    return report.render_report(tables(), manifest, SURVEY_HISTORY, history=HISTORY)


def test_changes_are_since_the_latest_release_through_renames_and_mergers(history_html):
    chart = _chart_html(history_html, "overall/quality")
    assert re.search(r'class="change up"[^>]*>\+0\.25</text>', chart)  # Alpha 4.25 (2023) -> 4.50
    assert re.search(r'class="change down"[^>]*>-0\.30</text>', chart)  # Beta, formerly beta_old: 4.50 -> 4.20
    assert re.search(r'class="change flat"[^>]*>new entity</text>', chart)  # Acme: a merger, never a change
    assert re.search(r'class="change flat"[^>]*>new</text>', chart)  # Gamma: new this year
    assert "new entity, formed from North Labs and South Labs" in chart  # the merger's tooltip
    assert "since 2023" in chart


def test_the_year_compared_against_and_the_knobs_that_differed_are_named(history_html):
    method = history_html[history_html.index('<section id="method">') : history_html.index('<section id="glance">')]
    assert "Changes are since the 2023 release (run run-2023)" in method
    assert "every released year (2021, 2022, 2023) and this one" in method
    knobs = method[
        method.index('<table class="knob-changes">') : method.index("</table>", method.index("knob-changes"))
    ]
    assert re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td><td>([^<]+)</td></tr>", knobs) == [
        ("min_evaluations", "8", "10")
    ]
    assert "survey_close" not in knobs


def test_same_knobs_are_said_to_be_the_same():
    history = [_release(2023, [("alpha", "Alpha", 4.25)], MANIFEST["config"]["effective"])]
    html = report.render_report(tables(), MANIFEST, SURVEY_HISTORY, history=history)
    assert "The 2023 release used the same method knobs." in html and "knob-changes" not in html


def test_each_profile_draws_every_released_year_with_gaps(history_html):
    profile = _profile_html(history_html, "Alpha")
    spark = _sparks(profile)[0]  # overall/quality
    titles = re.findall(r"<title>([^<]+)</title>", spark)  # each year's tooltip
    assert titles == ["2021: 4.00", "2022: not published", "2023: 4.25", "2024: 4.50 (this survey)"]
    assert re.findall(r'y="48">(\d{4})</text>', spark) == ["2021", "2022", "2023", "2024"]
    assert re.findall(r'y="11"[^>]*>([^<]+)</text>', spark) == ["4.00", "–", "4.25", "4.50"]
    assert spark.count("<circle") == 3 and "0.00" not in spark  # the withheld year: no point, not a zero
    assert len(re.findall(r'<path d="M[^"]*"', spark)) == 1 and spark.count(" L") == 1  # 2023 to 2024 only
    # the values are also text for screen readers (the SVG itself is hidden from them)
    assert (
        '<span class="sr-only">Alpha, Overall · Quality: 2021: 4.00; 2022: not published; 2023: 4.25; '
        "2024: 4.50 (this survey)</span>"
    ) in profile
    # segments without any released year still show this year's point among gaps
    assert (
        "Alpha, Big Pharma · Quality: 2021: not published; 2022: not published; 2023: not published; 2024: 4.60"
        in profile
    )


def test_a_renamed_cro_continues_its_former_series(history_html):
    profile = _profile_html(history_html, "Beta")
    assert '<span class="note">(formerly Old Beta)</span>' in profile
    assert (
        "2021: 4.40 (as Old Beta); 2022: 4.45 (as Old Beta); 2023: 4.50 (as Old Beta); 2024: 4.20 (this survey)"
        in profile
    )
    assert '<span class="change down">-0.30</span>' in profile


def test_a_merger_is_a_new_entity_without_history_or_change(history_html):
    profile = _profile_html(history_html, ACME)
    assert '<span class="note">(new entity, formed from North Labs and South Labs)</span>' in profile
    assert "History:" not in profile and "<svg" not in profile
    assert '<span class="change flat">new entity</span>' in profile
    assert not re.search(r'class="change (up|down)"', profile)


def test_a_cro_new_this_year_has_gaps_before(history_html):
    profile = _profile_html(history_html, "Gamma")
    assert (
        "Gamma, Overall · Quality: 2021: not published; 2022: not published; 2023: not published; 2024: 3.60" in profile
    )
    assert '<span class="change new">new</span>' in profile and "note" not in profile


def test_names_in_the_history_are_escaped():
    """A CRO named <script> this year and a former CRO named <script> in an older year: text, never markup."""
    survey = SurveyConfig(
        **{**SURVEY_ARGUMENTS, "cros": [{"name": "Alpha"}, {"name": "<script>", "formerly": ["x", "y"]}]}
    )
    data = tables(
        {("overall", "quality"): [("Alpha", 20, 4.5, None, None), ("<script>", 20, 4.0, None, None)]}, intervals=False
    )
    history = [
        _release(2023, [("alpha", "<script>alert(1)</script>", 4.0), ("x", "<script>", 3.0), ("y", "Y & Co", 3.5)])
    ]
    html = report.render_report(data, MANIFEST, survey, history=history)
    assert "<script" not in html
    assert "new entity, formed from &lt;script&gt; and Y &amp; Co" in html
    assert "2023: 4.00 (as &lt;script&gt;alert(1)&lt;/script&gt;)" in html
    assert _structure(html).errors == []


def test_history_without_released_years_is_the_first_year():
    html = report.render_report(tables(), MANIFEST, SURVEY_HISTORY, history=[])
    assert 'class="change' not in html and "History:" not in html and 'id="compared"' not in html
    # the merger is still a new entity (its former names: their ids, no release names them)
    assert "new entity, formed from north_labs and south_labs" in html


def test_history_wins_over_previous_and_later_releases_are_ignored():
    later = _release(2025, [("alpha", "Alpha", 1.0)])
    html = report.render_report(tables(), MANIFEST, SURVEY_HISTORY, previous_tables(), history=[*HISTORY, later])
    assert "2025" not in html and "since 2023" in html


# --- the draft form --------------------------------------------------------------------------------

DIFF = Diff(
    survey_year=2024,
    draft_run_id="run-draft",
    against_run_id="run-1",
    awards_gained=[
        AwardChange("small_pharma", "quality", "champion", "beta", "Beta"),
        AwardChange("overall", "quality", "leader", "acme_co", ACME),
    ],
    awards_lost=[AwardChange("overall", "quality", "leader", "alpha", "Alpha")],
    composites_moved=[
        CompositeMove("overall", "quality", "alpha", "Alpha", 4.5, 4.2),
        CompositeMove("overall", "service", "gamma", "Gamma", None, 3.5),
    ],
    knobs_changed=[KnobChange("min_evaluations", 10, 12)],
    overrides={"min_evaluations": 12},
)


@pytest.fixture(scope="module")
def draft_html() -> str:
    return report.render_report(tables(), MANIFEST, SURVEY, history=[], draft=DIFF)


def test_draft_says_draft_first_with_its_overrides(draft_html):
    body = draft_html[draft_html.index("<main>") :]
    assert body.index('<section id="draft" class="draft"') < body.index("<h1>")
    assert '<p class="draft-flag" id="draft-flag">DRAFT</p>' in body
    assert "<b>Run run-draft: a draft, not the released awards.</b>" in body
    assert "current release (run run-1)" in body
    assert "Overrides: <code>min_evaluations</code> = 12." in body
    assert "<title>DRAFT · CRO Leadership Awards 2024</title>" in draft_html
    assert _structure(draft_html).errors == []


def test_draft_shows_its_difference_from_the_release(draft_html):
    banner = draft_html[: draft_html.index("</section>")]
    rows = re.findall(
        r'<tr><th scope="row">([^<]+)</th><td class="gained">(.*?)</td><td class="lost">(.*?)</td></tr>', banner
    )
    assert rows == [
        ("Overall · Quality", f"+ Leader: {_escaped(ACME)}", "- Leader: Alpha"),
        ("Small Pharma · Quality", "+ Champion: Beta", ""),
    ]
    moves = re.findall(
        r"<tr><td>([^<]+)</td><td>([^<]+)</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td>"
        r'<td class="num"><span class="change (\w+)">([^<]+)</span>',
        banner,
    )
    assert moves == [
        ("Overall · Quality", "Alpha", "4.50", "4.20", "down", "-0.30"),
        ("Overall · Service", "Gamma", "–", "3.50", "flat", "newly eligible"),
    ]
    assert "<tr><td><code>min_evaluations</code></td><td>10</td><td>12</td></tr>" in banner


def test_draft_without_a_release_or_without_differences():
    first = report.render_report(tables(), MANIFEST, SURVEY, draft=Diff(2024, "run-draft", None))
    assert "No release yet" in first and "DRAFT" in first and "Overrides: none" in first
    assert "Awards gained and lost" not in first
    same = report.render_report(tables(), MANIFEST, SURVEY, draft=Diff(2024, "run-draft", "run-1"))
    assert "No difference from the current release" in same and "Awards gained and lost" not in same


def test_the_released_form_has_no_banner(html):
    assert "DRAFT" not in html and 'id="draft"' not in html and "not the released awards" not in html
    assert "<title>CRO Leadership Awards 2024</title>" in html


# --- the pure helpers -----------------------------------------------------------------------------


def test_format_delta_and_fmt2():
    assert [report.format_delta(d) for d in (0.25, -0.3, 0.004, -0.004, None)] == [
        "+0.25",
        "-0.30",
        "0.00",
        "0.00",
        "new",
    ]
    assert [report.fmt2(v) for v in (4.166666, 3.995, -0.001, None)] == ["4.17", "4.00", "0.00", "–"]


def test_year_over_year_function():
    current = tables()["composite_scores"]
    changes = report.year_over_year(current, previous_tables())
    assert changes[("overall", "quality", "alpha")]["text"] == "+0.25"
    assert changes[("overall", "quality", "alpha")]["delta"] == pytest.approx(0.25)
    assert changes[("overall", "quality", "beta")]["text"] == "-0.30"
    assert changes[("overall", "quality", "gamma")] == {"delta": None, "text": "new"}
    assert changes[("big_pharma", "quality", "alpha")]["text"] == "new"
    assert report.year_over_year(current, None) == {}
    # the composite tables themselves work as well as the dicts of tables
    assert report.year_over_year(current, previous_tables()["composite_scores"]) == changes


def test_year_over_year_follows_renames_and_never_compares_mergers():
    current = [
        {"segment": "overall", "category": "quality", "cro": "beta", "composite": 4.2},
        {"segment": "overall", "category": "quality", "cro": "merged", "composite": 3.0},
        {"segment": "overall", "category": "quality", "cro": "alpha", "composite": 4.0},
    ]
    previous = [
        {"segment": "overall", "category": "quality", "cro": "beta_old", "composite": 4.5},
        {"segment": "overall", "category": "quality", "cro": "north", "composite": 2.0},
        {"segment": "overall", "category": "quality", "cro": "alpha", "composite": 3.5},
    ]
    formerly = {"beta": ("beta_old",), "merged": ("north", "south"), "alpha": ("alpha_old",)}
    changes = report.year_over_year(current, previous, formerly)
    assert changes[("overall", "quality", "beta")]["text"] == "-0.30"
    assert changes[("overall", "quality", "merged")] == {"delta": None, "text": "new entity"}
    # a CRO published under its own id is compared with itself, whatever its former id
    assert changes[("overall", "quality", "alpha")]["text"] == "+0.50"
    # without the mapping a renamed CRO is new
    assert report.year_over_year(current, previous)[("overall", "quality", "beta")]["text"] == "new"


def test_sparkline_layout_breaks_at_gaps_and_scales_small_changes_small():
    points = [Point(2021, 4.0), Point(2022, None), Point(2023, 4.25), Point(2024, 4.5)]
    layout = report.sparkline_layout(points, label="A", survey_year=2024)
    xs = [point["x"] for point in layout["points"]]
    assert xs == sorted(xs) and len(set(xs)) == 4
    assert [point["gap"] for point in layout["points"]] == [False, True, False, False]
    assert layout["points"][1]["y"] is None and layout["points"][1]["value"] == "–"
    first, third, fourth = (layout["points"][i]["y"] for i in (0, 2, 3))
    assert first > third > fourth  # higher composite, higher on the page
    assert layout["paths"] == [f"M{xs[2]} {third} L{xs[3]} {fourth}"]  # nothing drawn across 2022
    assert [point["current"] for point in layout["points"]] == [False, False, False, True]
    assert layout["title"] == "A: 2021: 4.00; 2022: not published; 2023: 4.25; 2024: 4.50 (this survey)"
    flat = report.sparkline_layout([Point(2023, 4.0), Point(2024, 4.02)], survey_year=2024)
    drop = flat["points"][0]["y"] - flat["points"][1]["y"]
    assert 0 < drop < 1.0, "a change of 0.02 is drawn on a span of at least 0.5: under a unit of 17"


def test_draft_context_orders_cells_by_segment_then_category():
    context = report.draft_context(DIFF, ["overall", "big_pharma", "small_pharma"], ["quality", "service"])
    assert [cell["label"] for cell in context["cells"]] == ["Overall · Quality", "Small Pharma · Quality"]
    assert (context["n_gained"], context["n_lost"], context["empty"]) == (2, 1, False)
    assert context["overrides"] == [{"knob": "min_evaluations", "value": "12"}]
    assert report.draft_context(Diff(2024, "d", "r"), [], [])["empty"] is True


def test_format_knob_values():
    assert [report.format_knob(v) for v in (10, 0.5, 1.0, None, {"min": 1, "max": 5}, "shrunk")] == [
        "10",
        "0.5",
        "1",
        "–",
        "1–5",
        "shrunk",
    ]


def test_describe_screens_and_format_setting():
    assert report.describe_screens(None) == [] and report.describe_screens({}) == []
    assert report.describe_screens({"speeding": {"column": "secs", "min_seconds": 0.5}}) == [
        "speeding: every evaluation of a respondent whose secs is under 0.5 seconds is set aside (speeding), and an "
        "evaluation whose duration is blank or not a number of seconds (invalid_duration)"
    ]
    assert report.format_setting("screens", None) == "none"
    assert report.format_setting("screens", {"straight_lining": {"min_ratings": 3}}).startswith("straight-lining")
    assert report.format_setting("min_evaluations", 10.0) == "10"


def test_co_leaders_rank_text_and_probability_text_functions():
    rows = [
        {"cro": "A", "composite": 4.5, "is_co_leader": True},
        {"cro": "B", "composite": 4.2, "is_co_leader": True},
        {"cro": "C", "composite": 4.1, "is_co_leader": False},
        {"cro": "D", "composite": 4.0},
    ]
    assert report.co_leaders(rows, ["A"]) == {"A": ["B"]}
    assert report.co_leaders(rows[:1], ["A"]) == {}
    assert report.co_leaders(rows, ["A", "B"]) == {}  # leaders are not their own co-leaders
    assert report.rank_text({"rank": 2, "rank_low": 1, "rank_high": 4}) == "#2 (1–4)"
    assert report.rank_text({"rank": 1, "rank_low": 1, "rank_high": 1}) == "#1 (1)"
    assert report.rank_text({"rank": 3}) == "#3" and report.rank_text({"rank": None}) is None
    assert [summary.probability_text(p) for p in (0.5, 0.999, 1.0, 0.001, 0.0, None)] == [
        "0.50",
        ">0.99",
        ">0.99",  # never "1.00": a figure from a sample is never certain
        "<0.01",
        "<0.01",  # nor "0.00"
        None,
    ]


def test_chart_svg_function():
    rows = [
        {"cro": "Beta & Co", "composite": 4.25, "n_evaluations": 12},
        {"cro": "Alpha", "composite": 3.75, "n_evaluations": 30},
    ]
    svg = report.chart_svg(
        rows, 3.9, 4.1234, {"Beta & Co": {"leader", "champion"}}, chart_id="overall/quality", title="Overall · Quality"
    )
    assert svg.startswith('<svg class="chart" data-chart="overall/quality"') and svg.rstrip().endswith("</svg>")
    assert "<title>Overall · Quality</title>" in svg
    assert ">weighted mean 3.90</text>" in svg and ">champion threshold 4.12</text>" in svg
    assert "Beta &amp; Co" in svg and "Beta & Co" not in svg
    assert 'class="interval"' not in svg and ">95% interval</text>" not in svg
    assert _structure(svg).errors == []
    plain = report.chart_svg(rows, None, None, {}, chart_id="big_pharma/quality")
    assert 'class="mean"' not in plain and "threshold" not in plain and '<g class="cro other">' in plain


def test_chart_layout_positions_follow_the_values():
    rows = [
        {"cro": c, "composite": x, "ci_low": x - 0.1, "ci_high": x + 0.1}
        for c, x in (("A", 4.5), ("B", 4.0), ("C", 3.5))
    ]
    layout = report.chart_layout(rows, 4.0, 4.3, {"A": {"leader"}})
    xs = [row["x"] for row in layout["rows"]]
    assert xs[0] > xs[1] > xs[2]
    assert layout["mean"]["x"] == xs[1]
    assert layout["rows"][0]["ci_x1"] < xs[0] < layout["rows"][0]["ci_x2"]
    low, high = layout["ticks"][0]["label"], layout["ticks"][-1]["label"]
    assert float(low) <= 3.4 and float(high) >= 4.6
    assert [row["status"] for row in layout["rows"]] == ["leader", "other", "other"]
    long = report.chart_layout([{"cro": "X" * 80, "composite": 4.0}], None, None, {})
    assert len(long["rows"][0]["name"]) <= 36 and long["rows"][0]["tooltip"].startswith("X" * 80)


# --- in a real browser ----------------------------------------------------------------------------


def _chromium(tmp_path: Path, html_file: Path, *arguments: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *arguments,
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, the filtered scanlines) of an 8-bit RGB or RGBA PNG, decoded with zlib and struct."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    stride = 1 + width * (3 if color == 2 else 4)
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return width, height, [raw[i : i + stride] for i in range(0, len(raw), stride)]


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium "
    "(apt-get install chromium); the browser rendering test needs it",
)
def test_report_renders_in_headless_chromium(tmp_path):
    html_file = tmp_path / "report.html"
    html_file.write_text(report.render_report(tables(), MANIFEST, SURVEY, previous_tables()), encoding="utf-8")

    dom = _chromium(tmp_path, html_file, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    charts = re.findall(r'<svg[^>]*data-chart="([^"]+)"', dom.stdout)
    assert charts == [
        "overall/quality",
        "overall/service",
        "big_pharma/quality",
        "big_pharma/service",
        "small_pharma/quality",
    ]
    assert dom.stdout.count("<circle") >= 15 and "CRO Leadership Awards 2024" in dom.stdout
    assert '&lt;Acme &amp; "Co"&gt;' in dom.stdout or "&lt;Acme &amp; &quot;Co&quot;&gt;" in dom.stdout

    png = tmp_path / "report.png"
    shot = _chromium(tmp_path, html_file, f"--screenshot={png}", "--window-size=1280,2000", "--hide-scrollbars")
    assert shot.returncode == 0 and png.exists(), shot.stderr[-2000:]
    width, height, rows = png_rows(png.read_bytes())
    assert (width, height) == (1280, 2000)
    # A uniform image's filtered scanlines repeat (a handful of variants, one per filter type): a page
    # with text and charts has thousands of distinct ones.
    assert len(set(rows)) > 200, "the screenshot looks blank"


# --- helpers --------------------------------------------------------------------------------------


def _escaped(text: str) -> str:
    import markupsafe

    return str(markupsafe.escape(text))


def _cell_html(html: str, segment: str, category: str) -> str:
    start = html.index(f'<article class="cell" id="{segment}-{category}">')
    return html[start : html.index("</article>", start)]


def _chart_html(html: str, chart: str) -> str:
    start = html.index(f'data-chart="{chart}"')
    return html[start : html.index("</svg>", start)]


def _sparks(html: str) -> list[str]:
    return re.findall(r'<svg class="spark".*?</svg>', html, flags=re.S)


def _profile_html(html: str, cro: str) -> str:
    start = html.rindex('<details class="profile">', 0, html.index(f"<summary>{_escaped(cro)}"))
    return html[start : html.index("</details>", start)]


# --- the sensitivity lines (other readings of the awards) ----------------------------------------------


def reading(name: str, cro: str, award: str, segment: str = "overall", category: str = "quality") -> dict:
    return {"reading": name, "segment": segment, "category": category, "cro": cro, "award": award}


def test_sensitivity_says_when_another_reading_names_the_same_awards_and_what_it_changes():
    from cro_awards.report.html import sensitivity

    rows = [
        reading("official", "A", "leader"),
        reading("official", "A", "champion"),
        reading("official", "C", "champion"),
        reading("shrunk", "A", "leader"),
        reading("shrunk", "A", "champion"),
        reading("shrunk", "C", "champion"),
        reading("adjusted", "B", "leader"),
        reading("adjusted", "B", "champion"),
        reading("adjusted", "C", "champion"),
        reading("adjusted", "Z", "leader", category="delivery"),  # another cell: not this one's
    ]
    names = {"A": "Acme", "B": "Beta", "C": "Cobalt"}
    assert sensitivity(rows, "official", "overall", "quality", names) == [
        "The shrunk composites: the same awards.",
        "Adjusted for respondent leniency: leader Beta instead of Acme; champions also Beta, not Acme.",
    ]
    # Under the adjusted rule the official reading is the one compared.
    assert sensitivity(rows, "adjusted", "overall", "quality", names)[0] == (
        "The official rule: leader Acme instead of Beta; champions also Acme, not Beta."
    )


def test_sensitivity_without_readings_or_where_a_reading_names_no_leader():
    from cro_awards.report.html import sensitivity

    assert sensitivity([], "official", "overall", "quality", {}) == []
    rows = [reading("official", "A", "leader"), reading("shrunk", "B", "champion")]
    assert sensitivity(rows, "official", "overall", "quality", {}) == [
        "The shrunk composites: no leader instead of A; champions also B."
    ]
