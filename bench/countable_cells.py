"""What the countable-cells rule changed on the bundled samples: awards gained and lost, composites moved.

    python -m bench.countable_cells            # every surveys/<year>.yaml with its sample export

Before the rule, every rated cell counted in Overall, the composites and their n_evaluations (only the
thin rows themselves were left out of the tables); now a cell rated by fewer than min_cell_size
respondents counts nowhere. Both are computed by the independent reference (tests/reference.py): the
old method is the reference with min_cell_size 1 (every rated cell counts), the new one the reference as
configured (it equals the pipeline's tables, `tests/test_reference.py`). Prints, per year: the cells not
counted, awards gained and lost (segment, category, CRO, award), eligibility changes, and the largest
move of a composite published by both.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT / "tests"))

from reference import reference, thin_cells  # noqa: E402  (the reference lives with the tests)


def compare(config_path: Path) -> dict:
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    export = (config_path.parent / config["sample_export"]).resolve()
    _, old = reference({**config, "min_cell_size": 1}, export)
    _, new = reference(config, export)
    thin = thin_cells(config, export)

    def awards(tables: dict) -> set:
        return {(r["segment"], r["category"], r["cro"], r["award"]) for r in tables["awards"]}

    def composites(tables: dict) -> dict:
        return {(r["segment"], r["cro"], r["category"]): r for r in tables["composite_scores"]}

    before, after = composites(old), composites(new)
    moves = sorted(
        ((abs(after[k]["composite"] - before[k]["composite"]), k) for k in before.keys() & after.keys()),
        reverse=True,
    )
    eligible_before = {k for k, r in before.items() if r["is_eligible"]}
    eligible_after = {k for k, r in after.items() if r["is_eligible"]}
    return {
        "year": config["survey_year"],
        "thin_cells": len(thin),
        "thin_ratings": sum(len(rows) for rows in thin.values()),
        "gained": sorted(awards(new) - awards(old)),
        "lost": sorted(awards(old) - awards(new)),
        "awards": len(awards(new)),
        "no_longer_eligible": sorted(eligible_before - eligible_after),
        "moved_over_0_01": sum(1 for move, _ in moves if move > 0.01),
        "compared": len(moves),
        "largest_move": moves[0] if moves else None,
    }


def main() -> int:
    for config_path in sorted((PROJECT_ROOT / "surveys").glob("*.yaml")):
        found = compare(config_path)
        move, key = found["largest_move"] or (0.0, None)
        print(
            f"{found['year']}: {found['thin_cells']} cells ({found['thin_ratings']} ratings) not counted; "
            f"{found['awards']} awards, {len(found['gained'])} gained, {len(found['lost'])} lost; "
            f"{len(found['no_longer_eligible'])} composites no longer eligible; "
            f"{found['moved_over_0_01']} of {found['compared']} composites moved by more than 0.01, "
            f"the largest by {move:.3f} {key}"
        )
        for label in ("gained", "lost"):
            for segment, category, cro, award in found[label]:
                print(f"  {label}: {award} of {segment}/{category}: {cro}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
