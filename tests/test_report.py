"""The HTML awards report (cro_awards/report.py): content, escaping, offline-ness, and a headless-browser render.

The tables are tiny literals: five CROs (one named `<Acme & "Co">`), two categories of two attributes,
the three segments. Awards rows carry the weighted mean, SD and threshold worked out by `_awards` with
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

from cro_awards import report
from cro_awards.config import SurveyConfig

ACME = '<Acme & "Co">'
CHROMIUM = Path("/usr/bin/chromium")
SEGMENTS = ("overall", "big_pharma", "small_pharma")

SURVEY = SurveyConfig(
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


def tables(cells: dict = CELLS, intervals: bool = True) -> dict[str, pa.Table]:
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
    return {
        "attribute_scores": _table(
            attributes,
            ["segment", "cro", "attribute", "n_ratings", "score"],
            [pa.string(), pa.string(), pa.string(), pa.int64(), pa.float64()],
        ),
        "composite_scores": _table(composites, names, types),
        "awards": _table(award_rows, award_names, award_types),
    }


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
        if tag == "svg":
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
        assert re.search(rf"<code>{reason}</code></td><td class=\"num\">{n}</td>", html)
    # by reason in the data contract's order
    assert html.index("unknown_cro") < html.index("invalid_rating") < html.index("duplicate_evaluation")
    method = html[html.index('<section id="method">') :]
    assert "at least 10 evaluations" in method and "at least 3 eligible CROs" in method
    assert "at least 0.5 weighted standard deviations above the weighted mean" in method
    assert "fewer than 3 ratings or evaluations are not published" in method
    assert "2024-03-05 10:11 UTC" in html


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
    assert html.count("<svg") == len(charts)
    for chart in re.findall(r"<svg.*?</svg>", html, flags=re.S):
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
    assert changes[("overall", "quality", "Alpha")]["text"] == "+0.25"
    assert changes[("overall", "quality", "Alpha")]["delta"] == pytest.approx(0.25)
    assert changes[("overall", "quality", "Beta")]["text"] == "-0.30"
    assert changes[("overall", "quality", "Gamma")] == {"delta": None, "text": "new"}
    assert changes[("big_pharma", "quality", "Alpha")]["text"] == "new"
    assert report.year_over_year(current, None) == {}
    # the composite tables themselves work as well as the dicts of tables
    assert report.year_over_year(current, previous_tables()["composite_scores"]) == changes


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
    assert [report.probability_text(p) for p in (0.5, 0.999, 1.0, 0.001, 0.0, None)] == [
        "0.50",
        ">0.99",
        "1.00",
        "<0.01",
        "0.00",
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


def _profile_html(html: str, cro: str) -> str:
    start = html.rindex('<details class="profile">', 0, html.index(f"<summary>{_escaped(cro)}"))
    return html[start : html.index("</details>", start)]
