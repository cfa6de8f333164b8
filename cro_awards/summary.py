"""Readable summaries of a run, for people: markdown for Prefect artifacts, rows for the awards table.

Pure functions of the run's summary dict (see `flows.awards`); numbers rounded to two decimals, as
everything people read is. Nothing respondent-level is ever in them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

SEGMENT_ORDER = ("overall", "big_pharma", "small_pharma")
SEGMENT_LABELS = {"overall": "Overall", "big_pharma": "Big Pharma", "small_pharma": "Small Pharma"}


def award_cells(awards: list[dict[str, Any]]) -> list[tuple[str, str, list[dict], list[dict]]]:
    """(segment, category, leaders, champions), segments in reading order, categories by id, CROs from the
    highest composite down (ties by name)."""
    cells: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: {"leader": [], "champion": []})
    for row in awards:
        cells[(row["segment"], row["category"])][row["award"]].append(row)
    order = {segment: index for index, segment in enumerate(SEGMENT_ORDER)}

    def ranked(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda row: (-row["composite"], row["cro"]))

    return [
        (
            segment,
            category,
            ranked(cells[(segment, category)]["leader"]),
            ranked(cells[(segment, category)]["champion"]),
        )
        for segment, category in sorted(cells, key=lambda key: (order.get(key[0], len(order)), key[1]))
    ]


def _names(rows: list[dict]) -> str:
    return ", ".join(f"{row['cro']} ({row['composite']:.2f})" for row in rows) or "-"


def awards_markdown(summary: dict[str, Any]) -> str:
    """Leaders and champions per segment and category, as a markdown document."""
    lines = [f"# CRO Leadership Awards {summary['survey_year']}", ""]
    current = None
    for segment, category, leaders, champions in award_cells(summary["awards"]):
        if segment != current:
            lines += [
                "",
                f"## {SEGMENT_LABELS.get(segment, segment)}",
                "",
                "| category | leader(s) | champion(s) | weighted mean | threshold |",
                "| --- | --- | --- | --- | --- |",
            ]
            current = segment
        reference = (leaders or champions)[0]
        lines.append(
            f"| {category} | {_names(leaders)} | {_names(champions)} | "
            f"{reference['weighted_mean']:.2f} | {reference['threshold']:.2f} |"
        )
    if not summary["awards"]:
        lines.append("No cell had enough eligible CROs for awards.")
    return "\n".join(lines) + "\n"


def validation_markdown(summary: dict[str, Any]) -> str:
    """Rows read, accepted and quarantined (by reason), and where the outputs went."""
    counts = summary["counts"]
    lines = [
        f"# Validation, survey year {summary['survey_year']}",
        "",
        "| rows read | accepted | quarantined |",
        "| --- | --- | --- |",
        f"| {counts['read']} | {counts['accepted']} | {counts['quarantined']} |",
        "",
    ]
    if summary["quarantined_by_reason"]:
        lines += ["| reason | rows |", "| --- | --- |"]
        lines += [f"| `{reason}` | {count} |" for reason, count in sorted(summary["quarantined_by_reason"].items())]
        lines.append("")
    lines += [
        f"- Published: `{summary['output']}` (publication `{summary['published']}`)",
        f"- Quarantine: `{summary['quarantine']}`",
        f"- Export: `{summary['export']}` (sha256 `{summary['export_sha256'][:16]}…`)",
    ]
    return "\n".join(lines) + "\n"


def awards_table_rows(awards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The awards as rows for a table artifact, scores rounded to two decimals."""
    return [
        {
            "segment": row["segment"],
            "category": row["category"],
            "cro": row["cro"],
            "award": row["award"],
            "composite": round(row["composite"], 2),
            "weighted_mean": round(row["weighted_mean"], 2),
            "threshold": round(row["threshold"], 2),
        }
        for row in awards
    ]
