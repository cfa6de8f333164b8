"""A draft's difference from the release (cro_awards/publication/diff.py), on tiny hand-written publications."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards.engine.errors import PublishError
from cro_awards.publication.diff import (
    AwardChange,
    CompositeMove,
    KnobChange,
    Snapshot,
    compare,
    load,
    render_markdown,
    render_text,
)

KNOBS = {"min_evaluations": 10, "champion_sd_multiplier": 1.0, "award_rule": "official"}


def _awards(*rows, names=True):
    """rows: (segment, category, award, cro[, cro_name])."""
    columns = {
        "segment": [row[0] for row in rows],
        "category": [row[1] for row in rows],
        "cro": [row[3] for row in rows],
        "award": [row[2] for row in rows],
    }
    if names:
        columns["cro_name"] = [row[4] if len(row) > 4 else row[3].title() for row in rows]
    return pa.table(columns, schema=pa.schema([(name, pa.string()) for name in columns]))


def _composites(*rows, names=True):
    """rows: (segment, category, cro, composite, is_eligible[, cro_name])."""
    columns = {
        "segment": pa.array([row[0] for row in rows], pa.string()),
        "cro": pa.array([row[2] for row in rows], pa.string()),
        "category": pa.array([row[1] for row in rows], pa.string()),
        "composite": pa.array([row[3] for row in rows], pa.float64()),
        "is_eligible": pa.array([row[4] for row in rows], pa.bool_()),
    }
    if names:
        columns["cro_name"] = pa.array([row[5] if len(row) > 5 else row[2].title() for row in rows], pa.string())
    return pa.table(columns)


def _publication(run_id, awards=None, composites=None, effective=KNOBS, overrides=None, year=2024):
    manifest = {
        "run_id": run_id,
        "survey_year": year,
        "config": {"file_name": f"{year}.yaml", "overrides": overrides or {}, "effective": dict(effective)},
    }
    return Snapshot(
        run_id=run_id,
        survey_year=year,
        tables={
            "awards": awards if awards is not None else _awards(),
            "composite_scores": composites if composites is not None else _composites(),
        },
        manifest=manifest,
    )


RELEASE = _publication(
    "release-1",
    awards=_awards(("overall", "quality", "leader", "acme"), ("overall", "quality", "champion", "acme")),
    composites=_composites(("overall", "quality", "acme", 4.5, True), ("overall", "quality", "beta", 3.5, True)),
)


def test_same_tables_and_knobs_is_an_empty_diff_and_says_so():
    draft = _publication("draft-1", awards=RELEASE.tables["awards"], composites=RELEASE.tables["composite_scores"])
    diff = compare(draft, RELEASE)
    assert diff.is_empty and diff.against_run_id == "release-1" and diff.draft_run_id == "draft-1"
    text = render_text(diff)
    assert text.splitlines()[0] == "Survey year 2024: draft draft-1 compared with run release-1"
    assert "no differences" in text and "Awards gained" not in text
    assert "No differences." in render_markdown(diff)


def test_award_gained_and_lost_per_cell():
    draft = _publication(
        "draft-1",
        awards=_awards(
            ("overall", "quality", "leader", "acme"),
            ("overall", "quality", "champion", "acme"),
            ("big_pharma", "cost", "champion", "beta"),
        ),
    )
    before = _publication(
        "release-1",
        awards=_awards(
            ("overall", "quality", "leader", "acme"),
            ("overall", "quality", "champion", "acme"),
            ("overall", "cost", "leader", "gamma"),
        ),
    )
    diff = compare(draft, before)
    assert diff.awards_gained == [AwardChange("big_pharma", "cost", "champion", "beta", "Beta")]
    assert diff.awards_lost == [AwardChange("overall", "cost", "leader", "gamma", "Gamma")]
    text = render_text(diff)
    assert "Awards gained (1)\n  Big Pharma / Cost: champion Beta\n" in text
    assert "Awards lost (1)\n  Overall / Cost: leader Gamma\n" in text
    assert "Composites moved by more than 0.01 (0)\n  none\n" in text


def test_a_leader_becoming_champion_is_one_lost_and_one_gained():
    before = _publication("r", awards=_awards(("overall", "quality", "leader", "beta")))
    draft = _publication(
        "d", awards=_awards(("overall", "quality", "leader", "acme"), ("overall", "quality", "champion", "beta"))
    )
    diff = compare(draft, before)
    assert diff.awards_lost == [AwardChange("overall", "quality", "leader", "beta", "Beta")]
    # leader before champion within a cell, whatever the CRO ids
    assert [(c.award, c.cro) for c in diff.awards_gained] == [("leader", "acme"), ("champion", "beta")]


def test_ties_two_leaders_each_an_award():
    before = _publication("r", awards=_awards(("overall", "quality", "leader", "acme")))
    draft = _publication(
        "d", awards=_awards(("overall", "quality", "leader", "beta"), ("overall", "quality", "leader", "acme"))
    )
    diff = compare(draft, before)
    assert diff.awards_gained == [AwardChange("overall", "quality", "leader", "beta", "Beta")]
    assert diff.awards_lost == []


def test_order_segments_then_category_award_cro():
    draft = _publication(
        "d",
        awards=_awards(
            ("small_pharma", "a", "leader", "acme"),
            ("big_pharma", "b", "champion", "acme"),
            ("big_pharma", "b", "leader", "zeta"),
            ("big_pharma", "a", "leader", "zeta"),
            ("overall", "z", "champion", "beta"),
            ("overall", "z", "champion", "alpha"),
        ),
    )
    gained = compare(draft, _publication("r")).awards_gained
    assert [(c.segment, c.category, c.award, c.cro) for c in gained] == [
        ("overall", "z", "champion", "alpha"),
        ("overall", "z", "champion", "beta"),
        ("big_pharma", "a", "leader", "zeta"),
        ("big_pharma", "b", "leader", "zeta"),
        ("big_pharma", "b", "champion", "acme"),
        ("small_pharma", "a", "leader", "acme"),
    ]


def test_without_cro_name_column_the_id_is_shown():
    draft = _publication("d", awards=_awards(("overall", "quality", "leader", "acme_labs"), names=False))
    diff = compare(draft, _publication("r", awards=_awards(names=False)))
    assert diff.awards_gained[0].cro_name == "acme_labs"
    assert "leader acme_labs" in render_text(diff)


def test_a_lost_award_carries_the_release_name_and_a_gain_the_drafts():
    before = _publication("r", awards=_awards(("overall", "q", "leader", "acme", "Acme Old")))
    draft = _publication("d", awards=_awards(("overall", "q", "champion", "acme", "Acme New")))
    diff = compare(draft, before)
    assert diff.awards_lost[0].cro_name == "Acme Old" and diff.awards_gained[0].cro_name == "Acme New"


def test_a_move_of_exactly_0_01_is_not_reported_and_0_0101_is():
    # 1.01 - 1.00 is 0.010000000000000009 in binary floating point: still "exactly 0.01"
    before = _composites(("overall", "q", "acme", 1.00, True), ("overall", "q", "beta", 3.50, True))
    after = _composites(("overall", "q", "acme", 1.01, True), ("overall", "q", "beta", 3.5101, True))
    diff = compare(_publication("d", composites=after), _publication("r", composites=before))
    assert diff.composites_moved == [CompositeMove("overall", "q", "beta", "Beta", 3.50, 3.5101)]
    assert "  Overall / Q / Beta: 3.50 -> 3.51 (+0.01)\n" in render_text(diff)


def test_a_move_down_is_signed():
    before = _composites(("overall", "q", "acme", 4.25, True))
    after = _composites(("overall", "q", "acme", 4.0, True))
    diff = compare(_publication("d", composites=after), _publication("r", composites=before))
    assert "Overall / Q / Acme: 4.25 -> 4.00 (-0.25)" in render_text(diff)


def test_a_withheld_composite_is_never_compared_nor_shown():
    # beta's composite is withheld (null) in the draft: it is absent, never "moved"; its value is not printed
    before = _composites(("overall", "q", "acme", 3.777, False), ("overall", "q", "beta", 3.0, True))
    after = _composites(("overall", "q", "acme", None, False), ("overall", "q", "beta", None, True))
    diff = compare(_publication("d", composites=after), _publication("r", composites=before))
    assert diff.composites_moved == [CompositeMove("overall", "q", "beta", "Beta", 3.0, None)]
    text, markdown = render_text(diff), render_markdown(diff)
    assert "No longer eligible (1)\n  Overall / Q / Beta: 3.00 -> not eligible\n" in text
    assert "3.78" not in text + markdown and "nan" not in (text + markdown).lower()


def test_a_cro_becoming_ineligible_or_eligible():
    before = _composites(("overall", "q", "acme", 4.2, True), ("overall", "q", "beta", 3.9, False))
    after = _composites(("overall", "q", "acme", 4.2, False), ("overall", "q", "beta", 3.9, True))
    diff = compare(_publication("d", composites=after), _publication("r", composites=before))
    assert diff.composites_moved == [
        CompositeMove("overall", "q", "acme", "Acme", 4.2, None),
        CompositeMove("overall", "q", "beta", "Beta", None, 3.9),
    ]
    text = render_text(diff)
    # neither is a move: each is listed apart, by label, and the moves section stays empty
    assert "Composites moved by more than 0.01 (0)\n  none\n" in text
    assert "No longer eligible (1)\n  Overall / Q / Acme: 4.20 -> not eligible\n" in text
    assert "Newly eligible (1)\n  Overall / Q / Beta: not eligible -> 3.90\n" in text
    markdown = render_markdown(diff)
    assert "## No longer eligible\n\n| segment | category | CRO | before | after | change |" in markdown
    assert "| Overall | Q | Acme | 4.20 | not eligible | - |" in markdown
    assert "## Newly eligible" in markdown


def test_the_diff_shows_segments_categories_and_cros_by_label_never_by_id():
    before = _composites(("big_pharma", "phase_iv", "acme", 3.0, True))
    after = _composites(("big_pharma", "phase_iv", "acme", 3.5, True))
    draft = _publication("d", awards=_awards(("big_pharma", "capabilities", "leader", "acme")), composites=after)
    diff = compare(draft, _publication("r", composites=before))
    text = render_text(diff)
    assert "  Big Pharma / Capabilities: leader Acme\n" in text
    assert "  Big Pharma / Phase iv / Acme: 3.00 -> 3.50 (+0.50)\n" in text
    assert "big_pharma" not in text and "capabilities" not in text and "phase_iv" not in text
    markdown = render_markdown(diff)
    assert "| Big Pharma | Capabilities | leader | Acme |" in markdown
    assert "big\\_pharma" not in markdown and "phase\\_iv" not in markdown


def test_a_cro_ineligible_on_both_sides_is_no_move():
    before = _composites(("overall", "q", "acme", 2.0, False))
    after = _composites(("overall", "q", "acme", 3.0, False))
    assert compare(_publication("d", composites=after), _publication("r", composites=before)).is_empty


def test_knob_changes_including_a_missing_key():
    before = {"min_evaluations": 10, "champion_sd_multiplier": 1.0, "bootstrap_seed": 7}
    after = {"min_evaluations": 12, "champion_sd_multiplier": 1, "award_rule": "shrunk"}
    diff = compare(_publication("d", effective=after), _publication("r", effective=before))
    # 1.0 and 1 are the same value: not a change
    assert diff.knobs_changed == [
        KnobChange("min_evaluations", 10, 12),
        KnobChange("award_rule", None, "shrunk"),
        KnobChange("bootstrap_seed", 7, None),
    ]
    text = render_text(diff)
    assert "Knobs that differ (3)\n  min_evaluations: 10 -> 12\n  award_rule: not set -> shrunk\n" in text
    assert "  bootstrap_seed: 7 -> not set\n" in text


def test_overrides_are_listed_and_are_no_difference_by_themselves():
    draft = _publication("d", overrides={"min_evaluations": 12, "award_rule": "shrunk"})
    diff = compare(draft, _publication("r"))
    assert diff.overrides == {"min_evaluations": 12, "award_rule": "shrunk"} and diff.is_empty
    assert "Overrides: min_evaluations=12, award_rule=shrunk\n" in render_text(diff)
    assert "`min_evaluations=12`" in render_markdown(diff)
    assert "Overrides: none\n" in render_text(compare(_publication("d"), _publication("r")))


def test_no_release_yet():
    draft = _publication("d", awards=_awards(("overall", "q", "leader", "acme")), overrides={"min_evaluations": 12})
    diff = compare(draft, None)
    assert diff.against_run_id is None and diff.awards_gained == [] and diff.composites_moved == []
    assert diff.knobs_changed == [] and diff.overrides == {"min_evaluations": 12}
    text = render_text(diff)
    assert text.splitlines()[0] == "Survey year 2024: draft d"
    assert "no release to compare with (first release of 2024)" in text and "Awards" not in text
    assert "first release of 2024" in render_markdown(diff)


def test_two_years_cannot_be_compared():
    with pytest.raises(PublishError, match="same year"):
        compare(_publication("d", year=2025), _publication("r", year=2024))


HOSTILE = "[x](http://evil)\x1b[31m"


def test_markdown_escapes_a_hostile_name_and_the_terminal_sees_no_escape():
    draft = _publication(
        "d",
        awards=_awards(("overall", "q|x", "leader", "evil", HOSTILE)),
        composites=_composites(("overall", "q|x", "evil", 4.0, True, HOSTILE)),
        effective={**KNOBS, "award_rule": "`shrunk`"},
    )
    diff = compare(draft, _publication("r"))
    markdown = render_markdown(diff)
    assert "[x](http://evil)" not in markdown and "\\[x\\]\\(http\\:\\/\\/evil\\)" in markdown
    assert "\x1b" not in markdown and "Q\\|x" in markdown and "| `` `shrunk` `` |" in markdown
    # every table row keeps its cells: the hostile `|` in the category is escaped
    rows = [line for line in markdown.splitlines() if line.startswith("| Overall")]
    assert len(rows) == 2 and all(row.replace("\\|", "").count("|") in (5, 7) for row in rows)
    text = render_text(diff)
    assert "\x1b" not in text and "\\x1b[31m" in text


def _write(folder, awards, composites, manifest):
    folder.mkdir(parents=True)
    pq.write_table(awards, folder / "awards.parquet")
    pq.write_table(composites, folder / "composite_scores.parquet")
    (folder / "_manifest.json").write_text(json.dumps(manifest.to_json()), encoding="utf-8")


def test_load_round_trip_from_a_folder(tmp_path):
    folder = tmp_path / ".publications" / "survey_year=2024" / "20261201T000000Z-run-7"
    _write(folder, RELEASE.tables["awards"], RELEASE.tables["composite_scores"], RELEASE.manifest.with_(run_id="run-7"))
    loaded = load(folder)
    assert (loaded.run_id, loaded.survey_year) == ("run-7", 2024)
    # the `survey_year=2024` parent is not read as a partition column
    assert loaded.tables["awards"].equals(RELEASE.tables["awards"])
    assert loaded.tables["composite_scores"].equals(RELEASE.tables["composite_scores"])
    assert compare(loaded, RELEASE).is_empty


@pytest.mark.parametrize("missing", ["_manifest.json", "awards.parquet", "composite_scores.parquet"])
def test_load_names_the_folder_and_the_missing_file(tmp_path, missing):
    folder = tmp_path / "pub"
    _write(folder, RELEASE.tables["awards"], RELEASE.tables["composite_scores"], RELEASE.manifest)
    (folder / missing).unlink()
    with pytest.raises(PublishError, match=f"{folder}.*{missing} is missing.*cro-awards publications"):
        load(folder)


def test_load_refuses_an_unreadable_file_and_a_table_without_its_columns(tmp_path):
    folder = tmp_path / "pub"
    _write(folder, RELEASE.tables["awards"], RELEASE.tables["composite_scores"], RELEASE.manifest)
    (folder / "awards.parquet").write_bytes(b"not parquet")
    with pytest.raises(PublishError, match="awards.parquet is unreadable"):
        load(folder)
    pq.write_table(RELEASE.tables["awards"].drop_columns(["award"]), folder / "awards.parquet")
    with pytest.raises(PublishError, match="awards.parquet has no column award"):
        load(folder)
    (folder / "_manifest.json").write_text("{", encoding="utf-8")
    with pytest.raises(PublishError, match="_manifest.json is unreadable"):
        load(folder)
    (folder / "_manifest.json").write_text(json.dumps({"survey_year": 2024}), encoding="utf-8")
    with pytest.raises(PublishError, match="_manifest.json lacks its run_id or survey_year"):
        load(folder)
