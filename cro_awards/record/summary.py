"""Readable summaries of a run, for people: markdown for Prefect artifacts, rows for the awards table.

`RunSummary` is what a run returns (built by `cro_awards.record.manifest.summary`), `AwardsSummary` its awards
part (also read back from a release). The rest are pure functions of them; numbers rounded to two decimals, as
everything people read is. Nothing respondent-level is ever in them. CROs are shown by name (`cro_name`,
the year's display name; `cro` is the id), categories by label (`category_label`), each falling back to
the id where a row lacks it (`cro_name`, `category_name`).

Names are text, never markup: a CRO's name, a category id or a path comes from a YAML or a command line
and may hold anything. `printable` shows control characters (terminal escapes, line breaks, bidi
overrides) as visible escapes; `escape_markdown` and `code_span` make a text render literally in
markdown, so a name cannot make a link, an image, HTML, emphasis or a table cell. The command line
prints names as `rich.text.Text` (never as markup) through `printable`.
"""

from __future__ import annotations

import math
import string
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from cro_awards.reading.config import REASON_CODES


@dataclass(frozen=True, kw_only=True)
class AwardsSummary:
    """The awards of a run or a release: the awards rows, the co-leaders ("segment/category" -> names) and
    the cells with no distinguishable leader ("segment/category" -> [co-leaders, eligible CROs])."""

    survey_year: int
    awards: list[dict[str, Any]]
    co_leaders: dict[str, list[str]] = field(default_factory=dict)
    no_distinguishable_leader: dict[str, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RunSummary(AwardsSummary):
    """What the flow returns and `cro-awards run` prints (`--summary-json` writes `to_dict()`)."""

    run_id: str
    export: str
    """The export's path."""
    export_sha256: str
    counts: dict[str, int]
    quarantined_by_reason: dict[str, int]
    published: str
    """The draft's folder (in the private store)."""
    output: str
    """The output folder readers read."""
    quarantine: str
    timings: dict[str, float]
    """Seconds per stage."""
    not_counted: dict[str, dict[str, int]]
    disclosure_seconds: dict[str, float]
    released: bool = False
    """Whether the run released its draft (readers of `output` see it)."""
    diff: str = ""
    """The draft's difference from the release current when it was made (`cro_awards.publication.diff.render_text`)."""

    _ORDER = (
        "survey_year", "run_id", "export", "export_sha256", "counts", "quarantined_by_reason", "published", "output",
        "quarantine", "awards", "co_leaders", "no_distinguishable_leader", "timings", "not_counted",
        "disclosure_seconds", "released", "diff",
    )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data, in the order `cro-awards run --summary-json` has always written."""
        values = asdict(self)
        return {key: values[key] for key in self._ORDER}


_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_MARKDOWN_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MARKDOWN_PUNCTUATION = frozenset(string.punctuation) - set(_MARKDOWN_ENTITIES)


def _invisible(character: str) -> bool:
    """A control character (C0, DEL, C1), a line or paragraph separator, a lone surrogate or a bidi control."""
    return unicodedata.category(character) in ("Cc", "Zl", "Zp", "Cs") or character in _BIDI_CONTROLS


def printable(text: Any) -> str:
    """`text` with every control character (ESC, line breaks, tabs, bidi overrides, ...) written as a
    visible escape (`\\x1b`, `\\n`, `\\u202e`): what a terminal, a log or a table cell may show safely."""

    def visible(character: str) -> str:
        if not _invisible(character):
            return character
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return "".join(visible(character) for character in str(text))


def escape_markdown(text: Any) -> str:
    """`text` as markdown that renders literally (CommonMark and GitHub's tables): every ASCII punctuation
    character backslash-escaped (so no link, image, emphasis, code, heading, autolink or table cell
    break), `&`, `<` and `>` as entities (no HTML), control characters as visible escapes."""
    return "".join(
        _MARKDOWN_ENTITIES.get(character) or (f"\\{character}" if character in _MARKDOWN_PUNCTUATION else character)
        for character in printable(text)
    )


def code_span(text: Any, *, in_table: bool = False) -> str:
    """`text` as an inline code span whatever backticks it holds (control characters as visible escapes);
    in a table row a `|` is escaped too, as GitHub's tables split cells on it even inside code."""
    body = printable(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = run = 0
    for character in body:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    # CommonMark strips one space from each end of a span that begins and ends with one, and a backtick
    # at either end would join the fence: pad with a space, which is what gets stripped.
    padding = " " if body[:1] == "`" or body[-1:] == "`" or (body[:1] == " " and body[-1:] == " ") else ""
    return f"{fence}{padding}{body}{padding}{fence}"


SEGMENT_ORDER = ("overall", "big_pharma", "small_pharma")
SEGMENT_LABELS = {"overall": "Overall", "big_pharma": "Big Pharma", "small_pharma": "Small Pharma"}

REASON_DESCRIPTIONS = {
    "malformed_row": "more or fewer fields than the header",
    "missing_respondent_id": "no respondent id",
    "invalid_rd_spend": "R&D spend blank, not a number or negative",
    "unknown_cro": "CRO blank, or no name or alias on the ballot",
    "invalid_last_engaged": "last engagement blank or not a real date",
    "outside_recency_window": "last engagement outside the recency window",
    "invalid_rating": "a rating not a whole number on the scale",
    "no_ratings": "no attribute rated",
    "duplicate_evaluation": "one respondent rating one CRO twice (every copy)",
    "not_qualified": "a role not allowed to rate (every row of the respondent)",
    "invalid_duration": "survey duration blank or not a number of seconds",
    "speeding": "answered faster than the minimum (every row of the respondent)",
    "straight_lining": "the same answer to every attribute rated",
}
"""Each reason code of the contract (`cro_awards.reading.config.REASON_CODES`, docs/contract.md) in a few words,
for people: the report's and the validation artifact's tables of quarantined rows."""


def reason_description(code: str) -> str:
    """What a reason code means, in a few words; a code unknown here (a newer contract's) as itself."""
    return REASON_DESCRIPTIONS.get(code, code)


def reasons_in_order(counts: Mapping[str, int]) -> list[str]:
    """The codes of `counts` in the contract's order (`REASON_CODES`), any other code after them by name."""
    known = [code for code in REASON_CODES if code in counts]
    return known + sorted(set(counts) - set(known))


def cro_name(row: Mapping[str, Any]) -> str:
    """The name people read for a row's CRO: its `cro_name`, else its `cro` (the id)."""
    return row.get("cro_name") or row["cro"]


def category_name(row: Mapping[str, Any]) -> str:
    """The label people read for a row's category: its `category_label`, else its `category` (the id)."""
    return row.get("category_label") or row["category"]


def award_text(row: Mapping[str, Any]) -> str:
    """One award as printed: "Northwind Clinical (4.50, p=0.54, not robust)" (plain text, not escaped)."""
    return f"{cro_name(row)} ({row['composite']:.2f}{sureness(row)})"


def award_cells(awards: list[dict[str, Any]]) -> list[tuple[str, str, list[dict], list[dict]]]:
    """(segment, category, leaders, champions), segments in reading order, categories by id, CROs from the
    highest composite down (ties by name, then id)."""
    cells: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: {"leader": [], "champion": []})
    for row in awards:
        cells[(row["segment"], row["category"])][row["award"]].append(row)
    order = {segment: index for index, segment in enumerate(SEGMENT_ORDER)}

    def ranked(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda row: (-row["composite"], cro_name(row), row["cro"]))

    return [
        (
            segment,
            category,
            ranked(cells[(segment, category)]["leader"]),
            ranked(cells[(segment, category)]["champion"]),
        )
        for segment, category in sorted(cells, key=lambda key: (order.get(key[0], len(order)), key[1]))
    ]


def probability_text(value: float | None, *, percent: bool = False) -> str | None:
    """A probability as a person reads it, the one formatting of every probability shown: two decimals
    (">0.99" from 0.995 up, "<0.01" below 0.005), or with `percent` a whole percentage (">99%", "<1%"):
    never "1.00", "0.00", "100%" or "0%", not even for exactly 1 or 0 (a figure from a sample is never
    certain). None (or NaN) for no figure."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if value >= 0.995:
        return ">99%" if percent else ">0.99"
    if value < (0.01 if percent else 0.005):
        return "<1%" if percent else "<0.01"
    return f"{value:.0%}" if percent else f"{value:.2f}"


def format_probability(value: float | None) -> str | None:
    """A probability after "p": "p=0.54", "p>0.99", "p<0.01" (`probability_text`); None for no figure."""
    text = probability_text(value)
    if text is None:
        return None
    return f"p{text}" if text[0] in "<>" else f"p={text}"


def stability_text(value: float | None, role: str) -> str | None:
    """`p_leader` or `p_champion` as what it is, stability under resampling: "stable as leader in 54% of
    resamples" (`probability_text` in percent); None for no figure."""
    text = probability_text(value, percent=True)
    return None if text is None else f"stable as {role} in {text} of resamples"


def sureness(row: Mapping[str, Any]) -> str:
    """What follows an award's composite wherever it is printed: ", p=0.54, not robust" (empty without
    resampling figures)."""
    text = format_probability(row.get("p_award"))
    if text is None:
        return ""
    return f", {text}" + (", not robust" if row.get("is_robust") is False else "")


NO_DISTINGUISHABLE_LEADER = "no distinguishable leader"


def no_distinguishable_leader(co_leading: int, eligible: int) -> bool:
    """The rule: a cell has no distinguishable leader when more than half of its eligible CROs are
    co-leaders (`is_co_leader`, the leader itself included) and at least two are."""
    return co_leading >= 2 and 2 * co_leading > eligible


def indistinct_cells(composites: Iterable[Mapping[str, Any]]) -> dict[str, list[int]]:
    """ "segment/category" -> [co-leaders, eligible CROs] of every cell that has no distinguishable leader
    (`no_distinguishable_leader`), from composite rows (segment, category, is_eligible, is_co_leader)."""
    counts: dict[str, list[int]] = {}
    for row in composites:
        if row.get("is_eligible"):
            count = counts.setdefault(f"{row['segment']}/{row['category']}", [0, 0])
            count[0] += bool(row.get("is_co_leader"))
            count[1] += 1
    return {cell: count for cell, count in counts.items() if no_distinguishable_leader(*count)}


def indistinct_text(co_leading: int, eligible: int) -> str:
    """ "no distinguishable leader (9 of 12 eligible CROs are co-leaders)"."""
    return f"{NO_DISTINGUISHABLE_LEADER} ({co_leading} of {eligible} eligible CROs are co-leaders)"


LEGEND_AWARD = (
    "p: the chance that the award is deserved, not luck (empirical Bayes; docs/method.md); "
    "not robust: p below robust_award_probability."
)
LEGEND_STABILITY = (
    "stable in x% of resamples (p_leader, p_champion): how often the CRO leads, or is a champion, when the "
    "respondents are resampled; stability, not the chance that the award is deserved."
)
LEGEND_CO_LEADERS = (
    "co-leaders: CROs whose difference to the leader, on the same respondents, is within its 95% interval; "
    f"{NO_DISTINGUISHABLE_LEADER}: more than half of the cell's eligible CROs (at least two) are co-leaders, "
    "the leader included."
)
"""The one-line legends of the figures, wherever they are shown (report, terminal, artifact)."""


def _names(rows: list[dict]) -> str:
    return ", ".join(f"{escape_markdown(cro_name(row))} ({row['composite']:.2f}{sureness(row)})" for row in rows) or "-"


def awards_markdown(summary: AwardsSummary, *, title: str | None = None, preamble: Iterable[str] = ()) -> str:
    """Leaders and champions per segment and category, as a markdown document; a cell with no
    distinguishable leader (`summary.no_distinguishable_leader`) says so beside its leader. `title`
    (plain text, escaped here) replaces "CRO Leadership Awards <year>"; `preamble` (markdown lines, escaped
    by the caller) comes before the tables."""
    title = title or f"CRO Leadership Awards {summary.survey_year}"
    lines = [f"# {escape_markdown(title)}", "", *preamble]
    names = {row["cro"]: cro_name(row) for row in summary.awards}  # co-leaders given by id: their names
    current = None
    for segment, category, leaders, champions in award_cells(summary.awards):
        if segment != current:
            lines += [
                "",
                f"## {escape_markdown(SEGMENT_LABELS.get(segment, segment))}",
                "",
                "| category | leader(s) | co-leader(s) | champion(s) | weighted mean | threshold |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            current = segment
        reference = (leaders or champions)[0]
        co_leaders = summary.co_leaders.get(f"{segment}/{category}") or []
        indistinct = summary.no_distinguishable_leader.get(f"{segment}/{category}")
        leading = _names(leaders) + (f"; **{escape_markdown(indistinct_text(*indistinct))}**" if indistinct else "")
        lines.append(
            f"| {escape_markdown(category_name(reference))} | {leading} | "
            f"{', '.join(escape_markdown(names.get(cro, cro)) for cro in co_leaders) or '-'} | {_names(champions)} | "
            f"{reference['weighted_mean']:.2f} | {reference['threshold']:.2f} |"
        )
    if not summary.awards:
        lines.append("No cell had enough eligible CROs for awards.")
    elif any(row.get("p_award") is not None for row in summary.awards):
        lines += [
            "",
            *(f"- {escape_markdown(legend)}" for legend in (LEGEND_AWARD, LEGEND_CO_LEADERS)),
        ]
    return "\n".join(lines) + "\n"


def validation_markdown(summary: RunSummary) -> str:
    """Rows read, accepted and quarantined (by reason, in the contract's order, each with what it means),
    and where the outputs went: the draft (not released, what readers see unchanged) unless
    `summary.released`, then the release readers see."""
    counts = summary.counts
    lines = [
        f"# Validation, survey year {summary.survey_year}",
        "",
        "| rows read | accepted | quarantined |",
        "| --- | --- | --- |",
        f"| {counts['read']} | {counts['accepted']} | {counts['quarantined']} |",
        "",
    ]
    if summary.quarantined_by_reason:
        by_reason = summary.quarantined_by_reason
        lines += ["| reason | meaning | rows |", "| --- | --- | --- |"]
        for reason in reasons_in_order(by_reason):
            meaning = escape_markdown(reason_description(reason))
            lines.append(f"| {code_span(reason, in_table=True)} | {meaning} | {by_reason[reason]} |")
        lines.append("")
    run = code_span(summary.run_id)
    if summary.released:
        where = [f"- Released: {code_span(summary.output)} (run {run}; its draft {code_span(summary.published)})"]
    else:
        where = [
            f"- Draft: {code_span(summary.published)} (run {run}), not released: readers of "
            f"{code_span(summary.output)} still see the current release"
        ]
    lines += [
        *where,
        f"- Quarantine: {code_span(summary.quarantine)}",
        f"- Export: {code_span(summary.export)} (sha256 {code_span(summary.export_sha256[:16] + '…')})",
    ]
    return "\n".join(lines) + "\n"


def release_command(survey_year: Any, run_id: Any) -> str:
    """How to release a draft, as markdown: the command and the deployment."""
    return (
        f"Release it with {code_span(f'cro-awards release {survey_year} {run_id}')} or the deployment "
        f"{code_span('cro-awards-release/release')}."
    )


def draft_awards_markdown(summary: RunSummary) -> str:
    """A draft's awards (`awards_markdown`) titled DRAFT, naming its run and saying it is not released."""
    year, run_id = summary.survey_year, summary.run_id
    return awards_markdown(
        summary,
        title=f"DRAFT, not released: CRO Leadership Awards {year}",
        preamble=[
            f"**DRAFT** of run {code_span(run_id)}: readers see the current release of {year}, not these awards. "
            + release_command(year, run_id),
            "",
        ],
    )


def release_markdown(release: Mapping[str, Any], summary: AwardsSummary) -> str:
    """The year's awards as released (`awards_markdown` of the released draft's tables, `summary`), after
    what the release was: the year, the run, who released it, when, and the release it replaced
    (`release`: what `cro_awards.publication.releases.release` returns)."""
    year = release["survey_year"]
    previous = release.get("previous_run_id")
    return awards_markdown(
        summary,
        title=f"CRO Leadership Awards {year}, released",
        preamble=[
            "| survey year | run | released by | released at | replaces |",
            "| --- | --- | --- | --- | --- |",
            f"| {year} | {code_span(release['run_id'], in_table=True)} | "
            f"{escape_markdown(release.get('released_by') or '-')} | "
            f"{code_span(release.get('released_at') or '-', in_table=True)} | "
            f"{code_span(previous, in_table=True) if previous else 'no earlier release'} |",
            "",
        ],
    )


def awards_table_rows(awards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The awards as rows for a table artifact, scores rounded to two decimals, `p_award` as text
    (`probability_text`: "0.54", ">0.99", "<0.01"); the CRO by name (its id last)."""
    return [
        {
            "segment": row["segment"],
            "category": row["category"],
            "cro_name": cro_name(row),
            "award": row["award"],
            "composite": round(row["composite"], 2),
            "weighted_mean": round(row["weighted_mean"], 2),
            "threshold": round(row["threshold"], 2),
            "p_award": probability_text(row.get("p_award")),  # ">0.99", never 1.0
            "robust": row.get("is_robust"),
            "cro": row["cro"],
        }
        for row in awards
    ]
