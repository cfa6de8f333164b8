"""The differencing guard on literal contributions: the digests settle the ordinary cases, the exact
comparison the rest; named edge cases (a respondent moving segment, one evaluation dropped, identical
drafts, a swap of min_cell_size respondents with equal counts, an attribute in two categories)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cro_awards.disclosure import guard

CATEGORIES = {"delivery": ["speed", "quality"], "science": ["quality", "insight"]}
"""`quality` is in two categories."""

BASE = [
    ("R1", "acme", "big_pharma", ["quality", "speed"]),
    ("R2", "acme", "big_pharma", ["speed"]),
    ("R3", "acme", "big_pharma", ["insight", "quality"]),
    ("R4", "acme", "small_pharma", ["insight"]),
    ("R5", "acme", "small_pharma", ["quality", "speed"]),
    ("R6", "acme", "small_pharma", ["speed"]),
    ("R7", "zeta", "big_pharma", ["insight"]),
]


def contributions(rows: list[tuple[str, str, str, list[str]]]) -> pa.Table:
    """A literal table of the pipeline's contributions, written readably (respondent, CRO, segment, the
    counted attributes) and given the shape `cro_awards.method.transform.contributions` gives: the attributes as
    bits over the vocabulary (every attribute id, sorted), `mask_1` only past 64 attributes, the vocabulary
    and the category membership in the metadata."""
    vocabulary = sorted({a for members in CATEGORIES.values() for a in members} | {a for r in rows for a in r[3]})
    masks = [[0] * max(1, -(-len(vocabulary) // 64)) for _ in rows]
    for mask, (_, _, _, attributes) in zip(masks, rows, strict=True):
        for attribute in attributes:
            bit = vocabulary.index(attribute)
            mask[bit // 64] |= 1 << (bit % 64)
    columns = {
        "respondent_id": pa.array([r[0] for r in rows], pa.string()),
        "cro": pa.array([r[1] for r in rows], pa.string()),
        "segment": pa.array([r[2] for r in rows], pa.string()),
    }
    for word in range(len(masks[0]) if masks else 1):
        columns[f"mask_{word}"] = pa.array([mask[word] for mask in masks], pa.uint64())
    return pa.table(columns).replace_schema_metadata(
        {"attributes": json.dumps(vocabulary), "categories": json.dumps(CATEGORIES, sort_keys=True)}
    )


def folder(tmp_path: Path, name: str, rows, manifest: dict | None = None) -> Path:
    where = tmp_path / name
    where.mkdir()
    encoded = guard.encode(contributions(rows))
    pq.write_table(encoded, where / guard.CONTRIBUTIONS)
    pq.write_table(guard.digests(encoded), where / guard.DIGESTS)
    (where / guard.MANIFEST).write_text(json.dumps(manifest or {}))
    return where


def digest_rows(rows) -> dict[tuple[str, str, str, str], int]:
    table = guard.digests(guard.encode(contributions(rows)))
    return {
        (k, s, c, key): n
        for k, s, c, key, n in zip(*(table[x].to_pylist() for x in ("kind", "segment", "cro", "key", "n")), strict=True)
    }


def test_the_digests_count_each_published_rows_contributing_evaluations():
    counts = digest_rows(BASE)
    assert counts[("attribute", "big_pharma", "acme", "speed")] == 2  # R1, R2
    assert counts[("attribute", "overall", "acme", "speed")] == 4  # R1, R2, R5, R6
    assert counts[("composite", "big_pharma", "acme", "delivery")] == 3  # R1, R2, R3 (quality)
    assert counts[("composite", "big_pharma", "acme", "science")] == 2  # R1 (quality), R3
    assert counts[("composite", "overall", "acme", "science")] == 4  # R1, R3, R4, R5
    assert ("attribute", "big_pharma", "zeta", "speed") not in counts, "no contributing evaluation: not published"


def test_the_hash_is_stable_and_separates_its_two_fields():
    first = guard.evaluation_hashes(pa.array(["R1", "R1x"]), pa.array(["xacme", "acme"]))
    assert first[0] != first[1], "R1 + xacme is not R1x + acme"
    again = guard.evaluation_hashes(pa.array(["R1", "R1x"]), pa.array(["xacme", "acme"]))
    assert list(first) == list(again)


def test_identical_drafts_pass(tmp_path):
    assert guard.check(folder(tmp_path, "new", BASE), {"old": folder(tmp_path, "old", BASE)}, 3) == []


def test_one_dropped_evaluation_is_refused_per_row_it_touched(tmp_path):
    dropped = [row for row in BASE if row[0] != "R2"]  # R2: acme, big_pharma, speed
    (finding,) = guard.check(folder(tmp_path, "new", dropped), {"old": folder(tmp_path, "old", BASE)}, 3)
    # speed big and overall; delivery big and overall
    assert (finding.attribute_rows, finding.composite_rows) == (2, 2)


def test_a_respondent_moving_segment_changes_the_segment_rows_not_the_overall(tmp_path):
    moved = [(r, c, "small_pharma" if r == "R1" else s, a) for r, c, s, a in BASE]
    new, old = folder(tmp_path, "new", moved), folder(tmp_path, "old", BASE)
    cells = guard.compare(new, old, 3)
    assert cells and all(segment != "overall" for _, segment, _, _ in cells)
    assert ("attribute", "big_pharma", "acme", "quality") in cells


def test_a_swap_of_min_cell_size_respondents_with_equal_counts_passes_one_fewer_does_not(tmp_path):
    many = [(f"R{i:02d}", "acme", "big_pharma", ["speed"]) for i in range(10)]
    swapped3 = [*many[3:], *[(f"S{i}", "acme", "big_pharma", ["speed"]) for i in range(3)]]  # differ by 6
    swapped1 = [*many[1:], ("S0", "acme", "big_pharma", ["speed"])]  # same count, differ by 2
    old = folder(tmp_path, "old", many)
    assert guard.compare(folder(tmp_path, "three", swapped3), old, 3) == []
    assert guard.compare(folder(tmp_path, "one", swapped1), old, 3) == [
        ("attribute", "big_pharma", "acme", "speed"),
        ("attribute", "overall", "acme", "speed"),
        ("composite", "big_pharma", "acme", "delivery"),
        ("composite", "overall", "acme", "delivery"),
    ]
    assert guard.compare(folder(tmp_path, "one-k2", swapped1), old, 2) == [], "a difference of 2 is enough at 2"


def test_an_attribute_in_two_categories_counts_in_both(tmp_path):
    """Dropping `quality` from R5's counted attributes moves both of its categories' small_pharma rows
    (R5 still counts `speed` for delivery: only science loses it)."""
    changed = [(r, c, s, ["speed"] if r == "R5" else a) for r, c, s, a in BASE]
    cells = guard.compare(folder(tmp_path, "new", changed), folder(tmp_path, "old", BASE), 3)
    assert ("composite", "small_pharma", "acme", "science") in cells
    assert ("composite", "small_pharma", "acme", "delivery") not in cells, "still counted through speed"
    assert ("attribute", "small_pharma", "acme", "quality") not in cells, "published in the old only"


def test_a_row_published_in_only_one_of_the_two_is_not_compared(tmp_path):
    added = [*BASE, ("R8", "zeta", "big_pharma", ["speed"])]
    assert guard.compare(folder(tmp_path, "new", added), folder(tmp_path, "old", BASE), 3) == []


def test_the_refusal_names_counts_and_knobs_never_values_or_respondents(tmp_path):
    dropped = [row for row in BASE if row[0] != "R2"]
    new_manifest = {
        "export": {"sha256": "b" * 64},
        "config": {"sha256": "c", "effective": {"min_cell_size": 3, "min_evaluations": 12}, "overrides": {}},
    }
    old_manifest = {
        "export": {"sha256": "a" * 64},
        "config": {"sha256": "c", "effective": {"min_cell_size": 3, "min_evaluations": 10}, "overrides": {}},
    }
    findings = guard.check(
        folder(tmp_path, "new", dropped, new_manifest), {"run-1": folder(tmp_path, "old", BASE, old_manifest)}, 3
    )
    message = guard.refusal(2024, "run-2", findings, 3)
    assert "\n" not in message and "4 published rows" in message and "run-1" in message
    assert "the export differs" in message and "min_evaluations 12 against 10" in message
    assert "--accept-difference" in message
    for secret in ("R1", "R2", "R3", "acme", "speed", "delivery"):
        assert secret not in message


@pytest.mark.parametrize("n_attributes", [3, 70])
def test_masks_are_read_right_for_any_number_of_attributes(n_attributes):
    """Past 64 attributes the pipeline gives a second word (`mask_1`): bits are read in both."""
    names = [f"a{i:03d}" for i in range(n_attributes)]
    rows = [("R1", "acme", "big_pharma", names[::2]), ("R2", "acme", "small_pharma", names[-1:])]
    encoded = guard.encode(contributions(rows))
    side = guard._Side(encoded)
    for index, (_, _, _, attributes) in enumerate(rows):
        masks = guard._masks(encoded)[index]
        decoded = [a for i, a in enumerate(guard.vocabulary(encoded)) if int(masks[i // 64]) >> (i % 64) & 1]
        assert decoded == sorted(attributes)
    assert side.hashes(("attribute", "overall", "acme", names[-1])).size == 2 - (n_attributes % 2 == 0)


def test_encoding_adds_the_stable_hash_and_keeps_the_rest():
    given = contributions(BASE)
    encoded = guard.encode(given)
    assert encoded.column_names == ["respondent_id", "cro", "segment", "h", "mask_0"]
    assert encoded.drop_columns(["h"]).equals(given) and encoded.schema.metadata == given.schema.metadata
    expected = guard.evaluation_hashes(given["respondent_id"], given["cro"])
    assert encoded["h"].to_pylist() == [int(h) for h in expected]
    with pytest.raises(ValueError, match="mask_0"):
        guard.encode(given.drop_columns(["mask_0"]))


def test_a_draft_with_no_counted_evaluation_has_no_digest_and_compares_clean():
    """A tiny survey whose every cell is thin counts no evaluation: its contributions are empty, its
    digests too, and nothing is published to compare."""
    empty = guard.encode(contributions(BASE)).slice(0, 0)
    assert guard.digests(empty).num_rows == 0
