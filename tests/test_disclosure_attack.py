"""The disclosure attack (tests/attacker.py) against what the pipeline publishes.

An attacker holding the published tables and every cell's count (tests/reference.py:cell_counts, from the
export, as the independent reference counts them) combines R1 (segments add up per attribute) and R2 (a
composite is the mean of its attribute scores) over each CRO's whole system, in exact arithmetic, and
then searches the integers (rating sums are whole numbers within the scale: scipy's `milp`). Checked:

- the attacker itself, on hand-written literal cases (and its row-space test against a plain rank);
- the bundled sample: the pipeline's release gives nothing away, linear or integer, and no thin cell is
  published; the attack has teeth: the design before the countable-cells rule (thin cells counted in
  Overall and the composites, only their own rows left out) gives 179 of the 202 thin attribute scores
  away to the linear attack, and the integer search finds more;
- generated surveys with many thin cells (few evaluations, a small Big Pharma segment, min_cell_size 3
  and 5, min_evaluations 4 to 10): every one publishes (none is refused) and gives nothing away;
- D3 (no interval on a composite row that is not eligible) on every table.

The pipeline's code is neither read nor imported here beyond running it: the attack is an independent
statement of the threat. No Prefect: the pipeline runs in process.
"""

from __future__ import annotations

import random
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from attacker import Leak, RowSpace, derivable, sensitive_cells
from bench.synthetic import generate_export, write_export
from cro_awards.reading.config import load_config
from cro_awards.run.pipeline import run_pipeline
from reference import cell_counts, reference

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CONFIG = PROJECT_ROOT / "surveys" / "2024.yaml"
SAMPLE_EXPORT = PROJECT_ROOT / "data" / "sample" / "export_2024.csv"

# What the design before the countable-cells rule would give away on the bundled sample with primary
# suppression alone (every rated cell counted, the thin rows left out), measured with this attacker: 179 of
# the 202 sensitive attribute scores (0 < n_ratings < 3, overall cells included) and 24 of the 25 sensitive
# composites (0 < n_evaluations < 3) are exactly determined through R1 and R2, and every derived value
# equals the true one.
SAMPLE_SENSITIVE = {"attribute": 202, "composite": 25}
SAMPLE_D1_ONLY_DERIVED = {"attribute": 179, "composite": 24}

# Generated surveys: (evaluations, seed, big_pharma_min_rd_spend_musd, min_evaluations, min_cell_size).
# A cut of 5000 or 20000 leaves Big Pharma a thin segment; 150 to 600 evaluations over 42 CROs leave
# most cells thin. min_evaluations may not be below min_cell_size (the configuration refuses it).
GENERATED = (
    (150, 1, 5000, 10, 3),
    (150, 2, 5000, 10, 3),
    (150, 3, 5000, 4, 3),
    (300, 4, 5000, 4, 3),
    (300, 5, 5000, 10, 3),
    (600, 6, 5000, 10, 5),
    (600, 7, 5000, 5, 5),
    (150, 8, 1000, 5, 5),
    (300, 9, 1000, 10, 3),
    (600, 10, 20000, 4, 3),
    (150, 11, 5000, 5, 5),
    (300, 12, 5000, 10, 5),
    (1500, 13, 5000, 10, 3),
    (150, 14, 20000, 10, 3),
    (300, 15, 5000, 5, 5),
    (600, 16, 1000, 4, 3),
    (150, 17, 5000, 10, 5),
    (300, 18, 20000, 10, 3),
)


def load_yaml(path: Path) -> dict:
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def by_kind(leaks: list[Leak]) -> dict[str, int]:
    return {kind: sum(1 for leak in leaks if leak.kind == kind) for kind in ("attribute", "composite")}


def describe(leaks: list[Leak], limit: int = 20) -> str:
    return "\n".join(leak.describe() for leak in leaks[:limit]) + ("\n..." if len(leaks) > limit else "")


def d1_violations(tables: dict, min_cell_size: int) -> list[dict]:
    rows = [row for row in tables["attribute_scores"].to_pylist() if row["n_ratings"] < min_cell_size]
    return rows + [row for row in tables["composite_scores"].to_pylist() if row["n_evaluations"] < min_cell_size]


def d3_violations(tables: dict) -> list[dict]:
    return [
        row
        for row in tables["composite_scores"].to_pylist()
        if not row["is_eligible"] and (row["ci_low"] is not None or row["ci_high"] is not None)
    ]


# --- 1. the attacker on literal cases ------------------------------------------------------------------

CATEGORIES = {"pair": ["a", "b"], "single": ["c"]}


def attribute(segment: str, attribute_id: str, n: int, score: float, cro: str = "X") -> dict:
    return {"segment": segment, "cro": cro, "attribute": attribute_id, "n_ratings": n, "score": score}


def composite(segment: str, category: str, n: int, value: float, cro: str = "X") -> dict:
    return {
        "segment": segment,
        "cro": cro,
        "category": category,
        "n_evaluations": n,
        "composite": value,
        "is_eligible": False,
        "rank": None,
        "ci_low": None,
        "ci_high": None,
    }


def counts_of(n_ratings: dict, n_evaluations: dict, cro: str = "X") -> dict:
    return {
        "n_ratings": {(s, cro, a): n for (s, a), n in n_ratings.items()},
        "n_evaluations": {(s, cro, c): n for (s, c), n in n_evaluations.items()},
    }


def test_r1_segments_add_up():
    """Overall 4.4 on 5 ratings, Big Pharma 4.5 on 4: Small Pharma's single rating is 5 x 4.4 - 4 x 4.5 = 4."""
    tables = {
        "attribute_scores": [attribute("big_pharma", "c", 4, 4.5), attribute("overall", "c", 5, 4.4)],
        "composite_scores": [],
        "awards": [],
    }
    counts = counts_of({("big_pharma", "c"): 4, ("small_pharma", "c"): 1, ("overall", "c"): 5}, {})
    leaks = derivable(tables, counts, CATEGORIES, 3)
    assert [(leak.segment, leak.name, leak.n, leak.how) for leak in leaks] == [("small_pharma", "c", 1, "derived")]
    assert leaks[0].value == pytest.approx(4.0, abs=1e-9)


def test_r2_composite_is_the_mean():
    """A composite 3.6 of two attributes, one published at 4.2: the other (one rating) is 2 x 3.6 - 4.2 = 3."""
    n_ratings = {("overall", "a"): 5, ("overall", "b"): 1, ("big_pharma", "a"): 5, ("big_pharma", "b"): 1}
    n_evaluations = {("overall", "pair"): 5, ("big_pharma", "pair"): 5}
    published_attribute = [attribute("big_pharma", "a", 5, 4.2), attribute("overall", "a", 5, 4.2)]
    for known in (
        {"composite_scores": [composite("overall", "pair", 5, 3.6)], "awards": []},
        {  # an award row carries the composite: as good as a published composite row
            "composite_scores": [],
            "awards": [
                {
                    "segment": "overall",
                    "category": "pair",
                    "cro": "X",
                    "award": "leader",
                    "composite": 3.6,
                    "weighted_mean": 3.5,
                    "weighted_sd": 0.1,
                    "threshold": 3.6,
                }
            ],
        },
    ):
        leaks = derivable(
            {"attribute_scores": published_attribute, **known}, counts_of(n_ratings, n_evaluations), CATEGORIES, 3
        )
        # overall b from R2, then big_pharma b by R1 (small_pharma has no ratings of b)
        assert [(leak.segment, leak.name, leak.how) for leak in leaks] == [
            ("big_pharma", "b", "derived"),
            ("overall", "b", "derived"),
        ]
        assert all(leak.value == pytest.approx(3.0, abs=1e-9) for leak in leaks)


def test_withheld_segments_protect_each_other():
    """Overall published, both segments withheld: one equation, two unknowns, neither is pinned."""
    counts = counts_of({("big_pharma", "c"): 3, ("small_pharma", "c"): 2, ("overall", "c"): 5}, {})
    tables = {"attribute_scores": [attribute("overall", "c", 5, 4.0)], "composite_scores": [], "awards": []}
    assert derivable(tables, counts, CATEGORIES, 3) == []
    # two thin attributes under one published composite: their mean is known, neither value is
    n_ratings = {(s, a): 1 for s in ("small_pharma", "overall") for a in ("a", "b")}
    n_evaluations = {("small_pharma", "pair"): 1, ("overall", "pair"): 1}
    tables = {"attribute_scores": [], "composite_scores": [composite("overall", "pair", 1, 3.5)], "awards": []}
    leaks = derivable(tables, counts_of(n_ratings, n_evaluations), CATEGORIES, 1)  # min 1: nothing is thin
    assert leaks == []
    leaks = derivable(tables, counts_of(n_ratings, n_evaluations), CATEGORIES, 3)
    assert [(leak.segment, leak.kind, leak.how) for leak in leaks] == [
        ("overall", "composite", "published"),
        ("small_pharma", "composite", "derived"),  # the same evaluation: R1 pins small = overall
    ]


def test_a_composite_derived_whose_attributes_are_not():
    """Small Pharma's two single ratings: their sum follows from the Overall and Big Pharma composites by R1,
    so Small Pharma's composite is determined, though neither rating is."""
    n_ratings = {
        **{("overall", a): 4 for a in ("a", "b")},
        **{("big_pharma", a): 3 for a in ("a", "b")},
        **{("small_pharma", a): 1 for a in ("a", "b")},
    }
    n_evaluations = {("overall", "pair"): 4, ("big_pharma", "pair"): 3, ("small_pharma", "pair"): 1}
    tables = {
        "attribute_scores": [],
        "composite_scores": [composite("overall", "pair", 4, 3.75), composite("big_pharma", "pair", 3, 4.0)],
        "awards": [],
    }
    leaks = derivable(tables, counts_of(n_ratings, n_evaluations), CATEGORIES, 3)
    assert [(leak.segment, leak.kind, leak.name) for leak in leaks] == [("small_pharma", "composite", "pair")]
    assert leaks[0].value == pytest.approx((8 * 3.75 - 6 * 4.0) / 2, abs=1e-9)


def test_a_published_thin_row_is_a_leak():
    counts = counts_of({("overall", "c"): 2, ("small_pharma", "c"): 2}, {("overall", "single"): 2})
    tables = {"attribute_scores": [attribute("overall", "c", 2, 3.0)], "composite_scores": [], "awards": []}
    leaks = derivable(tables, counts, CATEGORIES, 3)
    assert [(leak.kind, leak.segment, leak.how) for leak in leaks] == [
        ("attribute", "overall", "published"),
        ("attribute", "small_pharma", "derived"),  # R1: Small Pharma holds all of Overall's ratings
        ("composite", "overall", "derived"),  # a one-attribute composite is its attribute's score
    ]


def test_published_rows_must_agree_with_the_counts():
    counts = counts_of({("overall", "c"): 4}, {})
    with pytest.raises(ValueError, match="n_ratings"):
        derivable({"attribute_scores": [attribute("overall", "c", 5, 3.0)]}, counts, CATEGORIES, 3)


def test_weighted_mean_across_cros_is_beyond_r1_r2_but_can_be_added():
    """R3 (optional, across CROs): an awards cell's weighted mean pins the one withheld eligible composite;
    here that composite is a single attribute's score, and R1 then gives Small Pharma's two ratings."""
    n_ratings, n_evaluations = {}, {}
    for cro, n in (("X", 10), ("Y", 12), ("Z", 11)):
        n_ratings[("overall", cro, "c")] = n
        n_evaluations[("overall", cro, "single")] = n
    n_ratings[("big_pharma", "X", "c")] = 8
    n_ratings[("small_pharma", "X", "c")] = 2
    counts = {"n_ratings": n_ratings, "n_evaluations": n_evaluations}
    award = {"segment": "overall", "category": "single", "award": "leader", "weighted_mean": 4.0}
    tables = {
        "attribute_scores": [attribute("big_pharma", "c", 8, 4.0), attribute("overall", "c", 12, 4.5, cro="Y")],
        "composite_scores": [composite("overall", "single", 11, 3.5, cro="Z")],
        "awards": [{**award, "cro": "Y", "composite": 4.5, "weighted_sd": 0.4, "threshold": 4.4}],
    }
    assert derivable(tables, counts, CATEGORIES, 3) == []
    leaks = derivable(tables, counts, CATEGORIES, 3, min_evaluations=10)
    assert [(leak.cro, leak.segment, leak.name) for leak in leaks] == [("X", "small_pharma", "c")]
    x_overall = (4.0 * 33 - 12 * 4.5 - 11 * 3.5) / 10  # 3.95
    assert leaks[0].value == pytest.approx((10 * x_overall - 8 * 4.0) / 2, abs=1e-9)


def dense_rank(rows: list[list[Fraction]]) -> int:
    """A plain dense Gaussian elimination, written apart from attacker.RowSpace to cross-check it."""
    matrix = [list(row) for row in rows]
    rank, columns = 0, len(matrix[0]) if matrix else 0
    for column in range(columns):
        pivot = next((i for i in range(rank, len(matrix)) if matrix[i][column] != 0), None)
        if pivot is None:
            continue
        matrix[rank], matrix[pivot] = matrix[pivot], matrix[rank]
        for i in range(rank + 1, len(matrix)):
            factor = matrix[i][column] / matrix[rank][column]
            if factor:
                matrix[i] = [x - factor * y for x, y in zip(matrix[i], matrix[rank], strict=True)]
        rank += 1
    return rank


def test_row_space_agrees_with_comparing_ranks():
    """determines(v) <=> rank(system) == rank(system + v), on random sparse integer systems."""
    rng = random.Random(7)
    checked = {True: 0, False: 0}
    for _ in range(300):
        width, height = rng.randint(1, 7), rng.randint(0, 6)
        rows = [[Fraction(rng.choice((0, 0, 0, 1, -1, 2, 3))) for _ in range(width)] for _ in range(height)]
        space = RowSpace(({j: x for j, x in enumerate(row) if x}, Fraction(0)) for row in rows)
        assert space.rank == dense_rank(rows)
        for _ in range(3):
            if rows and rng.random() < 0.5:  # a combination of the rows: always in the row space
                weights = [Fraction(rng.randint(-2, 2), rng.randint(1, 3)) for _ in rows]
                vector = [
                    sum((w * row[j] for w, row in zip(weights, rows, strict=True)), Fraction(0)) for j in range(width)
                ]
            else:
                vector = [Fraction(rng.choice((0, 0, 1, -1, 2))) for _ in range(width)]
            by_rank = dense_rank([*rows, vector]) == dense_rank(rows)
            assert space.determines({j: x for j, x in enumerate(vector) if x}) == by_rank
            checked[by_rank] += 1
    assert min(checked.values()) > 100


# --- 2. the bundled sample -----------------------------------------------------------------------------
# (One test per pipeline run, the checks of a run together: under pytest-xdist a module fixture shared by
# several tests may be built once per worker.)


@pytest.fixture(scope="module")
def sample_counts():
    config = load_yaml(SAMPLE_CONFIG)
    return config, cell_counts(config, SAMPLE_EXPORT)


def old_design_tables(config: dict, export: Path) -> dict:
    """The tables of the design before the countable-cells rule with primary suppression only: every rated
    cell counted (the reference with min_cell_size 1), then the rows of fewer than min_cell_size ratings or
    evaluations left out."""
    min_cell = config["min_cell_size"]
    _, everything = reference({**config, "min_cell_size": 1}, export)
    return {
        "attribute_scores": [r for r in everything["attribute_scores"] if r["n_ratings"] >= min_cell],
        "composite_scores": [r for r in everything["composite_scores"] if r["n_evaluations"] >= min_cell],
        "awards": everything["awards"],
    }


def scale_of(config: dict) -> tuple[int, int]:
    scale = {"min": 1, "max": 5, **(config.get("rating_scale") or {})}
    return scale["min"], scale["max"]


def test_sample_publication_leaks_nothing(sample_counts):
    """The released sample: no thin cell published nor derivable, by the linear attack, the integer search
    or the awards cells' weighted means; the published tables are the independent reference's; D3."""
    config, counts = sample_counts
    tables = run_pipeline(load_config(SAMPLE_CONFIG), SAMPLE_EXPORT).tables
    min_cell = config["min_cell_size"]
    leaks = derivable(
        tables,
        counts,
        config["categories"],
        min_cell,
        min_evaluations=config["min_evaluations"],
        countable_from=min_cell,
        integer_scale=scale_of(config),
    )
    assert not leaks, f"{len(leaks)} sensitive values derivable from the published sample:\n{describe(leaks)}"
    assert not d1_violations(tables, min_cell)
    assert not d3_violations(tables)
    assert len(tables["attribute_scores"]) == len(reference(config, SAMPLE_EXPORT)[1]["attribute_scores"])


def test_the_design_before_the_rule_leaks_linear_and_integer(sample_counts):
    """The attack has teeth: on the old design's tables (thin cells counted everywhere, only their rows
    left out) the linear attack derives most thin cells, and the integer search derives more of the rest."""
    config, counts = sample_counts
    min_cell = config["min_cell_size"]
    assert {kind: len(cells) for kind, cells in sensitive_cells(counts, min_cell).items()} == SAMPLE_SENSITIVE
    old = old_design_tables(config, SAMPLE_EXPORT)
    leaks = derivable(old, counts, config["categories"], min_cell)
    assert all(leak.how == "derived" for leak in leaks)
    assert by_kind(leaks) == SAMPLE_D1_ONLY_DERIVED
    # the attack recovers the true values: the reference with min_cell_size 1 publishes every cell
    _, everything = reference({**config, "min_cell_size": 1}, SAMPLE_EXPORT)
    truth = {("attribute", r["segment"], r["cro"], r["attribute"]): r["score"] for r in everything["attribute_scores"]}
    truth |= {
        ("composite", r["segment"], r["cro"], r["category"]): r["composite"] for r in everything["composite_scores"]
    }
    for leak in leaks:
        assert leak.value == pytest.approx(truth[(leak.kind, leak.segment, leak.cro, leak.name)], abs=1e-6), leak
    # the integer search: on the old tables without the overall rows (harder for the linear attack) it
    # finds thin cells the linear attack cannot, each equal to the truth
    fewer = {**old, "attribute_scores": [r for r in old["attribute_scores"] if r["segment"] != "overall"]}
    linear = derivable(fewer, counts, config["categories"], min_cell)
    both = derivable(fewer, counts, config["categories"], min_cell, integer_scale=scale_of(config))
    integer = [leak for leak in both if leak.how == "integer"]
    assert len(both) > len(linear) and integer, (len(linear), len(both))
    for leak in integer:
        assert leak.value == pytest.approx(truth[(leak.kind, leak.segment, leak.cro, leak.name)], abs=1e-9), leak


# --- 3. generated surveys with many thin cells -----------------------------------------------------------


@pytest.mark.parametrize("case", GENERATED, ids=lambda case: "n{}-seed{}-cut{}-mine{}-cell{}".format(*case))
def test_generated_survey_leaks_nothing(case, tmp_path):
    """A generated survey publishes (never refused, whatever min_evaluations) and gives nothing away, linear
    or integer; the old design with primary suppression alone would give many of its thin cells away (the
    attack has teeth). Before the countable-cells rule, 8 of these 18 cases were refused (exit 9)."""
    evaluations, seed, cut, min_evaluations, min_cell = case
    config = load_yaml(SAMPLE_CONFIG)
    config.pop("sample_export", None)
    config |= {
        "max_rejected_share": 1.0,
        "big_pharma_min_rd_spend_musd": cut,
        "min_evaluations": min_evaluations,
        "min_cell_size": min_cell,
    }
    config_path, export_path = tmp_path / "survey.yaml", tmp_path / "export.csv"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    write_export(generate_export(config, n_evaluations=evaluations, seed=seed, bad_rows=False), export_path)
    counts = cell_counts(config, export_path)

    old = by_kind(derivable(old_design_tables(config, export_path), counts, config["categories"], min_cell))
    assert len(sensitive_cells(counts, min_cell)["attribute"]) >= 50, "too few thin cells for the attack"
    assert old["attribute"] >= 50, f"the old design should leak: {old}"

    tables = run_pipeline(load_config(config_path), export_path).tables
    leaks = derivable(
        tables,
        counts,
        config["categories"],
        min_cell,
        min_evaluations=min_evaluations,
        countable_from=min_cell,
        integer_scale=scale_of(config),
    )
    assert not leaks, f"{len(leaks)} sensitive values derivable:\n{describe(leaks)}"
    assert not d1_violations(tables, min_cell), "thin rows published"
    assert not d3_violations(tables), "D3: intervals on composite rows that are not eligible"
