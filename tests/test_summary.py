"""The readable summaries (command line table, Prefect artifacts); hostile names stay text."""

import dataclasses
import re

import pytest

from cro_awards.reading.config import REASON_CODES
from cro_awards.record.summary import (
    LEGEND_AWARD,
    LEGEND_CO_LEADERS,
    REASON_DESCRIPTIONS,
    AwardsSummary,
    RunSummary,
    award_cells,
    award_text,
    awards_markdown,
    awards_table_rows,
    code_span,
    escape_markdown,
    format_probability,
    indistinct_cells,
    no_distinguishable_leader,
    printable,
    probability_text,
    reasons_in_order,
    stability_text,
    validation_markdown,
)
from tests.helpers_summaries import run_summary


def _award(segment, category, cro, award, composite):
    return {
        "segment": segment,
        "category": category,
        "cro": cro,
        "award": award,
        "composite": composite,
        "weighted_mean": 3.456,
        "weighted_sd": 0.5,
        "threshold": 3.956,
    }


AWARDS = [
    _award("big_pharma", "quality", "Zed", "leader", 4.5),
    _award("overall", "quality", "Alpha", "champion", 4.1),
    _award("overall", "quality", "Beta", "champion", 4.4),
    _award("overall", "quality", "Beta", "leader", 4.4),
    _award("overall", "cost", "Gamma", "leader", 3.9),
]


def test_cells_in_reading_order_and_cros_by_composite():
    cells = award_cells(AWARDS)
    assert [(s, c) for s, c, _, _ in cells] == [("overall", "cost"), ("overall", "quality"), ("big_pharma", "quality")]
    _, _, leaders, champions = cells[1]
    assert [r["cro"] for r in leaders] == ["Beta"]
    assert [r["cro"] for r in champions] == ["Beta", "Alpha"]


def test_markdown_rounds_to_two_decimals_and_names_segments():
    text = awards_markdown(AwardsSummary(survey_year=2024, awards=AWARDS))
    assert "# CRO Leadership Awards 2024" in text and "## Overall" in text and "## Big Pharma" in text
    assert "Beta (4.40), Alpha (4.10)" in text and "3.46" in text and "3.96" in text


def test_markdown_without_awards_says_so():
    assert "No cell had enough eligible CROs" in awards_markdown(AwardsSummary(survey_year=2024, awards=[]))


def test_table_rows_are_rounded():
    assert awards_table_rows([_award("overall", "q", "A", "leader", 4.456)])[0]["composite"] == 4.46


# --- CROs by name, categories by label ------------------------------------------------------------


def _named(cro: str, name: str, award: str, composite: float, category: str = "quality") -> dict:
    return {**_award("overall", category, cro, award, composite), "cro_name": name, "category_label": "Quality"}


NAMED = [
    _named("zed_trials", "Alpha Zed Trials", "champion", 4.1),  # the id sorts last, the name first
    _named("acme", "Zeta Acme", "champion", 4.1),
    _named("acme", "Zeta Acme", "leader", 4.4),
    {**_award("overall", "quality", "old_row", "champion", 3.9)},  # a row without labels: the id shows
]


def test_cells_rank_ties_by_name_not_id():
    [(_, _, leaders, champions)] = award_cells(NAMED)
    assert [r["cro"] for r in leaders] == ["acme"]
    assert [r["cro"] for r in champions] == ["zed_trials", "acme", "old_row"]  # 4.1 tie: "Alpha ..." first


def test_award_text_names_the_cro_or_falls_back_to_its_id():
    assert award_text(NAMED[2]) == "Zeta Acme (4.40)"
    assert award_text({**NAMED[3], "p_award": 0.5, "is_robust": False}) == "old_row (3.90, p=0.50, not robust)"


def test_markdown_shows_names_labels_and_co_leaders_by_name():
    summary = AwardsSummary(
        survey_year=2024, awards=NAMED, co_leaders={"overall/quality": ["zed_trials", "unknown_id"]}
    )
    text = awards_markdown(summary)
    row = next(line for line in text.splitlines() if line.startswith("| Quality "))
    assert row.startswith("| Quality | Zeta Acme (4.40) | Alpha Zed Trials, unknown\\_id | ")
    assert "Alpha Zed Trials (4.10), Zeta Acme (4.10), old\\_row (3.90)" in row
    assert "acme (" not in row and "zed\\_trials" not in row


def test_table_rows_show_the_name_and_keep_the_id_last():
    rows = awards_table_rows(NAMED[2:])
    assert [(r["cro_name"], r["cro"]) for r in rows] == [("Zeta Acme", "acme"), ("old_row", "old_row")]
    assert list(rows[0])[2] == "cro_name" and list(rows[0])[-1] == "cro"


# --- names are text, never markdown ----------------------------------------------------------------

HOSTILE = {
    "Northwind [/] Clinical": r"Northwind \[\/\] Clinical",
    "[link=https://evil.example]Acme[/link]": r"\[link\=https\:\/\/evil\.example\]Acme\[\/link\]",
    "[Click](https://evil.example)": r"\[Click\]\(https\:\/\/evil\.example\)",
    "![pixel](https://evil.example/p.png)": r"\!\[pixel\]\(https\:\/\/evil\.example\/p\.png\)",
    "<img src=x onerror=alert(1)>": r"&lt;img src\=x onerror\=alert\(1\)&gt;",
    "Pipe | Split": r"Pipe \| Split",
    "*bold* _it_ `code`": r"\*bold\* \_it\_ \`code\`",
    "www.evil.example": r"www\.evil\.example",
    "Line\nBreak": r"Line\\x0aBreak",
    "Esc\x1b]8;;https://evil\x1b\\X": r"Esc\\x1b\]8\;\;https\:\/\/evil\\x1b\\X",
    "A&amp;B": r"A&amp;amp\;B",
}


def _hostile_summary() -> AwardsSummary:
    awards = [_award("overall", "quality", name, "leader", 4.0) for name in HOSTILE]
    awards.append(_award("big_pharma", "[cat](https://evil.example)", "Plain", "champion", 4.2))
    return AwardsSummary(survey_year=2024, awards=awards)


def test_markdown_shows_hostile_names_escaped_never_as_markup():
    text = awards_markdown(_hostile_summary())
    for name, escaped in HOSTILE.items():
        assert escaped in text, (name, escaped)
    assert r"| \[cat\]\(https\:\/\/evil\.example\) |" in text, "a category id is text too"
    for raw in ("[/]", "](", "<img", "https://", "www.evil", "\x1b", "`code`", "Pipe | Split", "Line\nBreak"):
        assert raw not in text, raw
    rows = [line for line in text.splitlines() if line.startswith("| quality ")]
    assert len(rows) == 1 and rows[0].count(" | ") == 5, "no name adds or splits a table cell"
    unescaped_pipes = re.findall(r"(?<!\\)\|", rows[0])
    assert len(unescaped_pipes) == 7, rows[0]


def test_escape_markdown_leaves_plain_names_readable():
    assert escape_markdown("Acme Clinical") == "Acme Clinical"
    assert escape_markdown("Zürich Trials 2") == "Zürich Trials 2"
    assert escape_markdown("O'Brien & Co.") == r"O\'Brien &amp; Co\."


def test_printable_shows_control_characters_as_escapes():
    assert printable("a\x1b[31mb\tc\u202ed\n") == r"a\x1b[31mb\x09c\u202ed\x0a"
    assert printable("Northwind [/] Clinical") == "Northwind [/] Clinical", "markup is the printer's business"


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("/srv/awards", "`/srv/awards`"),
        ("/srv/a`b", "``/srv/a`b``"),
        ("`x`", "`` `x` ``"),
        ("/srv/[x](y)", "`/srv/[x](y)`"),
    ],
)
def test_code_span_holds_any_backticks(text, span):
    assert code_span(text) == span


def test_validation_markdown_paths_cannot_break_out():
    summary = run_summary(
        survey_year=2024,
        counts={"read": 3, "accepted": 2, "quarantined": 1},
        quarantined_by_reason={"bad|reason": 1},
        output="/srv/out`](https://evil.example)",
        published="/srv/out/.publications/x",
        quarantine="/srv/q\n# heading",
        export="/srv/e.csv",
        export_sha256="ab" * 32,
    )
    text = validation_markdown(summary)
    assert "``/srv/out`](https://evil.example)``" in text, "inside a code span nothing is a link"
    assert r"`/srv/q\x0a# heading`" in text and "\n# heading" not in text
    assert r"| `bad\|reason` | bad\|reason | 1 |" in text, "an unknown code is its own description, escaped"


def test_every_reason_code_of_the_contract_has_a_description_and_no_other():
    assert list(REASON_DESCRIPTIONS) == list(REASON_CODES)
    assert all(text and text != code for code, text in REASON_DESCRIPTIONS.items())


def test_validation_markdown_lists_reasons_in_the_contracts_order_with_their_meaning():
    summary = run_summary(
        survey_year=2025,
        counts={"read": 20, "accepted": 9, "quarantined": 11},
        quarantined_by_reason={"straight_lining": 1, "unknown_cro": 2, "speeding": 3, "not_qualified": 5, "zzz": 1},
        output="/srv/out",
        published="/srv/out/.publications/x",
        quarantine="/srv/q",
        export="/srv/e.csv",
        export_sha256="ab" * 32,
    )
    rows = [line for line in validation_markdown(summary).splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == ["unknown_cro", "not_qualified", "speeding", "straight_lining", "zzz"]
    assert rows[1] == f"| `not_qualified` | {escape_markdown(REASON_DESCRIPTIONS['not_qualified'])} | 5 |"
    assert r"R&amp;D spend blank\, not a number or negative" in validation_markdown(
        dataclasses.replace(summary, quarantined_by_reason={"invalid_rd_spend": 1})
    ), "meanings are escaped"


def test_reasons_in_order_puts_unknown_codes_last_by_name():
    assert reasons_in_order({"b_new": 1, "no_ratings": 1, "a_new": 1, "malformed_row": 1}) == [
        "malformed_row",
        "no_ratings",
        "a_new",
        "b_new",
    ]


# --- probabilities, stability and leaders that cannot be told apart ------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.996, "p>0.99"),
        (0.995, "p>0.99"),
        (0.994, "p=0.99"),
        (1.0, "p>0.99"),
        (0.004, "p<0.01"),
        (0.0, "p<0.01"),
        (0.005, "p=0.01"),
        (0.5, "p=0.50"),
        (0.54321, "p=0.54"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_format_probability_never_prints_certainty(value, text):
    assert format_probability(value) == text


def test_probability_text_in_percent_and_stability():
    assert [probability_text(p, percent=True) for p in (1.0, 0.996, 0.994, 0.5, 0.01, 0.009, 0.0)] == [
        ">99%",
        ">99%",
        "99%",
        "50%",
        "1%",
        "<1%",
        "<1%",
    ]
    assert stability_text(0.54, "leader") == "stable as leader in 54% of resamples"
    assert stability_text(1.0, "champion") == "stable as champion in >99% of resamples"
    assert stability_text(None, "leader") is None


def test_sureness_reads_p_then_the_figure():
    row = {**NAMED[3], "p_award": 0.999, "is_robust": True}
    assert award_text(row) == "old_row (3.90, p>0.99)"
    assert award_text({**row, "p_award": 0.001, "is_robust": False}) == "old_row (3.90, p<0.01, not robust)"


def test_the_no_distinguishable_leader_rule_is_more_than_half_and_at_least_two():
    assert no_distinguishable_leader(3, 4) and no_distinguishable_leader(2, 3) and no_distinguishable_leader(2, 2)
    assert not no_distinguishable_leader(2, 4)  # exactly half: the leader stands out from the other half
    assert not no_distinguishable_leader(1, 1)  # a leader alone is distinguishable
    assert not no_distinguishable_leader(1, 3) and not no_distinguishable_leader(0, 5)


def test_indistinct_cells_count_eligible_co_leaders_the_leader_included():
    def row(category, cro, eligible, co_leader):
        return {
            "segment": "overall",
            "category": category,
            "cro": cro,
            "is_eligible": eligible,
            "is_co_leader": co_leader,
        }

    rows = [
        *(row("quality", cro, True, cro != "d") for cro in "abcd"),  # 3 of 4 co-lead
        row("quality", "thin", False, None),  # not eligible: not counted
        *(row("cost", cro, True, cro in "ab") for cro in "abcd"),  # 2 of 4: a leader stands out
        *(row("speed", cro, True, None) for cro in "ab"),  # no awards: no figures
    ]
    assert indistinct_cells(rows) == {"overall/quality": [3, 4]}


def test_markdown_says_no_distinguishable_leader_only_where_the_rule_holds_and_has_the_legend():
    awards = [{**row, "p_award": 0.4, "is_robust": False} for row in AWARDS]
    summary = AwardsSummary(survey_year=2024, awards=awards, no_distinguishable_leader={"overall/quality": [3, 4]})
    lines = awards_markdown(summary).splitlines()
    quality = next(line for line in lines if line.startswith("| quality ") and "Beta" in line)
    marked = r"Beta (4.40, p=0.40, not robust); **no distinguishable leader \(3 of 4 eligible CROs are co\-leaders\)**"
    assert marked in quality, "the official leader stays, marked"
    assert not any("distinguishable" in line for line in lines if line.startswith("| ") and line is not quality)
    assert f"- {escape_markdown(LEGEND_AWARD)}" in lines and f"- {escape_markdown(LEGEND_CO_LEADERS)}" in lines
    assert "chance that the award is deserved" in LEGEND_AWARD


def test_table_rows_show_p_award_as_text_never_certain():
    rows = [
        {**_award("overall", "q", cro, "leader", 4.0), "p_award": p}
        for cro, p in (("A", 0.999), ("B", 0.0), ("C", 0.4))
    ]
    assert [row["p_award"] for row in awards_table_rows(rows)] == [">0.99", "<0.01", "0.40"]
    assert awards_table_rows([_award("overall", "q", "A", "leader", 4.0)])[0]["p_award"] is None


def test_the_run_summary_names_the_cells_with_no_distinguishable_leader():
    import pyarrow as pa

    from cro_awards.record.manifest import _indistinct

    composites = pa.table(
        {
            "segment": ["overall"] * 7,
            "category": ["quality"] * 4 + ["cost"] * 3,
            "is_eligible": [True] * 7,
            "is_co_leader": [True, True, True, False, True, False, False],
        }
    )
    assert _indistinct(composites) == {"overall/quality": [3, 4]}
    assert _indistinct(composites.drop_columns(["is_co_leader"])) == {}  # no resampling figures


def _validation_summary(**extra) -> RunSummary:
    return run_summary(
        survey_year=2024,
        run_id="1a2b3c4d-0000-4000-8000-000000000000",
        counts={"read": 3, "accepted": 2, "quarantined": 1},
        quarantined_by_reason={},
        output="/srv/out/survey_year=2024",
        published="/srv/drafts/survey_year=2024/20261201T120000Z-1a2b3c4d-0000-4000-8000-000000000000",
        quarantine="/srv/q",
        export="/srv/e.csv",
        export_sha256="ab" * 32,
        **extra,
    )


def test_a_drafts_validation_says_draft_and_not_released_never_published():
    """Issue 22: a what-if's validation artifact said "Published: …/survey_year=2024"."""
    text = validation_markdown(_validation_summary(released=False))
    assert "Published" not in text and "Released" not in text
    assert "- Draft: `/srv/drafts/survey_year=2024/20261201T120000Z-1a2b3c4d" in text
    assert "(run `1a2b3c4d-0000-4000-8000-000000000000`), not released" in text
    released = validation_markdown(_validation_summary(released=True))
    assert "- Released: `/srv/out/survey_year=2024` (run `1a2b3c4d-" in released and "Draft:" not in released


def test_a_drafts_awards_are_titled_draft_with_its_run_id_and_how_to_release_it():
    from cro_awards.record.summary import draft_awards_markdown

    text = draft_awards_markdown(run_summary(survey_year=2024, run_id="1a2b3c4d-x", awards=AWARDS))
    assert text.splitlines()[0] == "# DRAFT\\, not released\\: CRO Leadership Awards 2024"
    assert "**DRAFT** of run `1a2b3c4d-x`" in text and "`cro-awards release 2024 1a2b3c4d-x`" in text
    assert awards_markdown(AwardsSummary(survey_year=2024, awards=AWARDS)).split("\n## ", 1)[1] in text, "same tables"


def test_a_release_says_the_year_run_who_when_and_what_it_replaced_then_the_awards():
    from cro_awards.record.summary import release_markdown

    done = {
        "survey_year": 2024,
        "run_id": "run-b",
        "released_by": "Ana [x](http://e.example)",
        "released_at": "2026-12-08T10:00:00+00:00",
        "previous_run_id": "run-a",
    }
    text = release_markdown(done, AwardsSummary(survey_year=2024, awards=AWARDS))
    lines = text.splitlines()
    assert lines[0] == "# CRO Leadership Awards 2024\\, released"
    assert lines[4] == (
        "| 2024 | `run-b` | Ana \\[x\\]\\(http\\:\\/\\/e\\.example\\) | `2026-12-08T10:00:00+00:00` | `run-a` |"
    ), "who released it is text, never a link"
    assert "## Overall" in text
    first = release_markdown({**done, "previous_run_id": None}, AwardsSummary(survey_year=2024, awards=[]))
    assert "| no earlier release |" in first
