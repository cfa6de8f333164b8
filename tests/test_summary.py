"""The readable summaries (command line table, Prefect artifacts)."""

from cro_awards.summary import award_cells, awards_markdown, awards_table_rows


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
    text = awards_markdown({"survey_year": 2024, "awards": AWARDS})
    assert "# CRO Leadership Awards 2024" in text and "## Overall" in text and "## Big Pharma" in text
    assert "Beta (4.40), Alpha (4.10)" in text and "3.46" in text and "3.96" in text


def test_markdown_without_awards_says_so():
    assert "No cell had enough eligible CROs" in awards_markdown({"survey_year": 2024, "awards": []})


def test_table_rows_are_rounded():
    assert awards_table_rows([_award("overall", "q", "A", "leader", 4.456)])[0]["composite"] == 4.46
