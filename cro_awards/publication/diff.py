"""A draft's difference from a publication it is compared with (the year's release, or any kept run).

Contract:
- `load(folder)` reads a publication folder (`_manifest.json`, `awards.parquet`,
  `composite_scores.parquet`) into a `Snapshot`; a missing or unreadable file, or a table without
  the columns compared, raises `PublishError` naming the folder, the file and what to do.
- `compare(draft, against)` is pure: the awards gained and lost, keyed by (segment, category, award,
  cro), a leader becoming champion being one lost and one gained; the composites of eligible CROs
  (`is_eligible` true and a composite published: a null composite is a withheld value, never compared
  nor shown) that moved by more than `MOVE_THRESHOLD` (strictly, up to `sql.TOLERANCE`), or of a CRO
  eligible on one side only (the other side None); the knobs that differ (`manifest.knob_changes`:
  a knob missing on one side is a change, None on that side; survey_close counts, both runs being of one
  year); the draft's overrides. `against=None` means the year has no release yet: `against_run_id` is None and every
  list is empty. Lists are sorted: segments in `summary.SEGMENT_ORDER`, then category, then award
  (leader before champion), then CRO id; knobs in `manifest.EFFECTIVE_KEYS` order, then the others by name.
- `cro` is the CRO id; `cro_name` is the table's display name where it has a `cro_name` column (the
  draft's for a gain or a move, the other's for a loss), else the id.
- `render_text(diff)` is what `cro-awards diff` prints, every name through `summary.printable`;
  `render_markdown(diff)` the same for a Prefect markdown artifact, every name escaped
  (`summary.escape_markdown`, `summary.code_span`), so no name becomes markup. Numbers with two
  decimals, as people read them. Segments, categories and CROs are shown by label (`SEGMENT_LABELS`,
  `config.category_label`, the CRO's name); composites of CROs eligible on one side only are listed apart
  ("No longer eligible", "Newly eligible"), never as moves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cro_awards.engine.errors import PublishError
from cro_awards.engine.sql import TOLERANCE
from cro_awards.reading.config import category_label
from cro_awards.record.manifest import MANIFEST, KnobChange, Manifest, ManifestError, knob_changes, read_manifest
from cro_awards.record.summary import SEGMENT_LABELS, SEGMENT_ORDER, code_span, cro_name, escape_markdown, printable

TABLES = {
    "awards": ("segment", "category", "award", "cro"),
    "composite_scores": ("segment", "category", "cro", "composite", "is_eligible"),
}
"""The tables a diff reads, with the columns it needs from each."""

MOVE_THRESHOLD = 0.01
"""A composite moved when it changed by more than this (strictly): what shows at two decimals."""

AWARD_ORDER = ("leader", "champion")


@dataclass(frozen=True)
class Snapshot:
    """What a diff compares of one publication (a draft, a release, or a run not yet written): its run id,
    survey year, tables (by name, see `TABLES`) and manifest (a mapping is read as a `Manifest`)."""

    run_id: str
    survey_year: int
    tables: dict[str, pa.Table]
    manifest: Manifest

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifest", Manifest.of(self.manifest))


@dataclass(frozen=True)
class AwardChange:
    segment: str
    category: str
    award: str
    cro: str
    cro_name: str


@dataclass(frozen=True)
class CompositeMove:
    """An eligible CRO's composite before and after; None where the CRO is not eligible (or not published)."""

    segment: str
    category: str
    cro: str
    cro_name: str
    before: float | None
    after: float | None

    @property
    def delta(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class Diff:
    survey_year: int
    draft_run_id: str
    against_run_id: str | None
    awards_gained: list[AwardChange] = field(default_factory=list)
    awards_lost: list[AwardChange] = field(default_factory=list)
    composites_moved: list[CompositeMove] = field(default_factory=list)
    knobs_changed: list[KnobChange] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def moved_while_eligible(self) -> list[CompositeMove]:
        """The composites of CROs eligible on both sides that moved by more than `MOVE_THRESHOLD`."""
        return [move for move in self.composites_moved if move.delta is not None]

    @property
    def no_longer_eligible(self) -> list[CompositeMove]:
        """The CROs eligible (a composite published) in the publication compared with, not in the draft."""
        return [move for move in self.composites_moved if move.after is None]

    @property
    def newly_eligible(self) -> list[CompositeMove]:
        """The CROs eligible in the draft, not in the publication compared with."""
        return [move for move in self.composites_moved if move.before is None]

    @property
    def is_empty(self) -> bool:
        """No award, composite or knob differs (the overrides are not a difference)."""
        return not (self.awards_gained or self.awards_lost or self.composites_moved or self.knobs_changed)


def _unreadable(folder: Path, what: str) -> PublishError:
    return PublishError(
        f"Cannot read the publication {folder}: {what}. A publication folder is written whole by a run and "
        f"never edited: list the year's publications with `cro-awards publications <year>` and pass a run id "
        f"it shows, or rerun to make a new draft."
    )


def load(folder: Path) -> Snapshot:
    """The publication in `folder` (see the module contract)."""
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except ManifestError as error:
        raise _unreadable(folder, error.what) from None
    if manifest.run_id is None or manifest.survey_year is None:
        raise _unreadable(folder, f"{MANIFEST} lacks its run_id or survey_year")
    tables = {}
    for name, columns in TABLES.items():
        path = folder / f"{name}.parquet"
        if not path.is_file():
            raise _unreadable(folder, f"{path.name} is missing")
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as error:
            raise _unreadable(folder, f"{path.name} is unreadable ({error})") from None
        missing = [column for column in columns if column not in table.column_names]
        if missing:
            raise _unreadable(folder, f"{path.name} has no column {', '.join(missing)}")
        tables[name] = table
    return Snapshot(run_id=manifest.run_id, survey_year=manifest.survey_year, tables=tables, manifest=manifest)


def _cell_order(segment: str, category: str) -> tuple[int, str, str]:
    index = SEGMENT_ORDER.index(segment) if segment in SEGMENT_ORDER else len(SEGMENT_ORDER)
    return (index, segment, category)


def _award_order(change: AwardChange) -> tuple:
    index = AWARD_ORDER.index(change.award) if change.award in AWARD_ORDER else len(AWARD_ORDER)
    return (*_cell_order(change.segment, change.category), index, change.award, change.cro)


def _rows(table: pa.Table, columns: Iterable[str]) -> list[dict[str, Any]]:
    wanted = [column for column in (*columns, "cro_name") if column in table.column_names]
    return table.select(wanted).to_pylist()


def _awards(publication: Snapshot) -> dict[tuple[str, str, str, str], str]:
    """(segment, category, award, cro) -> display name."""
    return {
        (row["segment"], row["category"], row["award"], row["cro"]): cro_name(row)
        for row in _rows(publication.tables["awards"], TABLES["awards"])
    }


def _composites(publication: Snapshot) -> dict[tuple[str, str, str], tuple[float, str]]:
    """(segment, category, cro) -> (composite, display name), eligible and published composites only."""
    found = {}
    for row in _rows(publication.tables["composite_scores"], TABLES["composite_scores"]):
        composite = row["composite"]
        if row["is_eligible"] is True and composite is not None:
            found[(row["segment"], row["category"], row["cro"])] = (float(composite), cro_name(row))
    return found


def _moved(before: float | None, after: float | None) -> bool:
    if before is None or after is None:
        return True  # eligible on one side only (never both None: the key comes from one side)
    return abs(after - before) > MOVE_THRESHOLD + TOLERANCE


def compare(draft: Snapshot, against: Snapshot | None) -> Diff:
    """See the module contract."""
    overrides = dict(draft.manifest.overrides)
    if against is None:
        return Diff(draft.survey_year, draft.run_id, None, overrides=overrides)
    if against.survey_year != draft.survey_year:
        raise PublishError(
            f"Cannot compare run {draft.run_id} (survey year {draft.survey_year}) with run {against.run_id} "
            f"(survey year {against.survey_year}): a diff compares two runs of the same year; pass a run id "
            f"of {draft.survey_year}."
        )

    awards_after, awards_before = _awards(draft), _awards(against)
    gained = [AwardChange(*key, cro_name=name) for key, name in awards_after.items() if key not in awards_before]
    lost = [AwardChange(*key, cro_name=name) for key, name in awards_before.items() if key not in awards_after]

    composites_after, composites_before = _composites(draft), _composites(against)
    moves = []
    for key in composites_after.keys() | composites_before.keys():
        after, after_name = composites_after.get(key, (None, None))
        before, before_name = composites_before.get(key, (None, None))
        if _moved(before, after):
            moves.append(
                CompositeMove(
                    *key, cro_name=before_name if after_name is None else after_name, before=before, after=after
                )
            )
    moves.sort(key=lambda move: (*_cell_order(move.segment, move.category), move.cro))

    return Diff(
        survey_year=draft.survey_year,
        draft_run_id=draft.run_id,
        against_run_id=against.run_id,
        awards_gained=sorted(gained, key=_award_order),
        awards_lost=sorted(lost, key=_award_order),
        composites_moved=moves,
        knobs_changed=knob_changes(against.manifest, draft.manifest),
        overrides=overrides,
    )


NOT_ELIGIBLE = "not eligible"
NOT_SET = "not set"


def _value(value: Any) -> str:
    """A knob's value as text (None: not recorded)."""
    if value is None:
        return NOT_SET
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _composite(value: float | None) -> str:
    return NOT_ELIGIBLE if value is None else f"{value:.2f}"


def _move(move: CompositeMove) -> str:
    """ "3.50 -> 3.62 (+0.12)", or "3.50 -> not eligible"."""
    text = f"{_composite(move.before)} -> {_composite(move.after)}"
    return text if move.delta is None else f"{text} ({move.delta:+.2f})"


def _segment(segment: str) -> str:
    return SEGMENT_LABELS.get(segment, segment)


def _cell(segment: str, category: str) -> str:
    """ "Big Pharma / Capabilities": the segment's and the category's labels, as the report shows them."""
    return f"{_segment(segment)} / {printable(category_label(category))}"


def render_text(diff: Diff) -> str:
    """The diff as plain text for a terminal (what `cro-awards diff` prints); every name made printable."""
    heading = f"Survey year {diff.survey_year}: draft {printable(diff.draft_run_id)}"
    if diff.against_run_id is not None:
        heading += f" compared with run {printable(diff.against_run_id)}"
    overrides = ", ".join(f"{printable(knob)}={printable(_value(value))}" for knob, value in diff.overrides.items())
    lines = [heading, f"Overrides: {overrides or 'none'}"]
    if diff.against_run_id is None:
        return "\n".join([*lines, f"no release to compare with (first release of {diff.survey_year})"]) + "\n"
    if diff.is_empty:
        return "\n".join([*lines, "no differences"]) + "\n"

    def section(title: str, items: list[str]) -> list[str]:
        return ["", f"{title} ({len(items)})", *(f"  {item}" for item in items or ["none"])]

    def award(change: AwardChange) -> str:
        return f"{_cell(change.segment, change.category)}: {change.award} {printable(change.cro_name)}"

    def composite(move: CompositeMove) -> str:
        return f"{_cell(move.segment, move.category)} / {printable(move.cro_name)}: {_move(move)}"

    lines += section("Awards gained", [award(change) for change in diff.awards_gained])
    lines += section("Awards lost", [award(change) for change in diff.awards_lost])
    lines += section(
        f"Composites moved by more than {MOVE_THRESHOLD:.2f}", [composite(move) for move in diff.moved_while_eligible]
    )
    for title, moves in (("No longer eligible", diff.no_longer_eligible), ("Newly eligible", diff.newly_eligible)):
        if moves:
            lines += section(title, [composite(move) for move in moves])
    lines += section(
        "Knobs that differ",
        [
            f"{printable(change.knob)}: {printable(_value(change.before))} -> {printable(_value(change.after))}"
            for change in diff.knobs_changed
        ],
    )
    return "\n".join(lines) + "\n"


def render_markdown(diff: Diff) -> str:
    """The diff as markdown for a Prefect artifact; every name escaped, so none becomes markup."""
    heading = f"# Draft {code_span(diff.draft_run_id)}, survey year {diff.survey_year}"
    overrides = ", ".join(code_span(f"{knob}={_value(value)}") for knob, value in diff.overrides.items())
    lines = [heading, "", f"Overrides: {overrides or 'none'}", ""]
    if diff.against_run_id is None:
        return "\n".join([*lines, f"No release to compare with (first release of {diff.survey_year})."]) + "\n"
    lines.append(f"Compared with run {code_span(diff.against_run_id)} (before; the draft is after).")
    if diff.is_empty:
        return "\n".join([*lines, "", "No differences."]) + "\n"

    def section(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
        if not rows:
            return ["", f"## {title}", "", "None."]
        return [
            "",
            f"## {title}",
            "",
            "| " + " | ".join(header) + " |",
            "| " + " | ".join("---" for _ in header) + " |",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]

    def award(change: AwardChange) -> tuple[str, ...]:
        return (
            escape_markdown(_segment(change.segment)),
            escape_markdown(category_label(change.category)),
            escape_markdown(change.award),
            escape_markdown(change.cro_name),
        )

    award_header = ("segment", "category", "award", "CRO")
    lines += section("Awards gained", award_header, [award(change) for change in diff.awards_gained])
    lines += section("Awards lost", award_header, [award(change) for change in diff.awards_lost])

    def composite(move: CompositeMove) -> tuple[str, ...]:
        return (
            escape_markdown(_segment(move.segment)),
            escape_markdown(category_label(move.category)),
            escape_markdown(move.cro_name),
            _composite(move.before),
            _composite(move.after),
            "-" if move.delta is None else f"{move.delta:+.2f}",
        )

    composite_header = ("segment", "category", "CRO", "before", "after", "change")
    lines += section(
        f"Composites moved by more than {MOVE_THRESHOLD:.2f}",
        composite_header,
        [composite(move) for move in diff.moved_while_eligible],
    )
    for title, moves in (("No longer eligible", diff.no_longer_eligible), ("Newly eligible", diff.newly_eligible)):
        if moves:
            lines += section(title, composite_header, [composite(move) for move in moves])
    lines += section(
        "Knobs that differ",
        ("knob", "before", "after"),
        [
            (
                code_span(change.knob, in_table=True),
                code_span(_value(change.before), in_table=True),
                code_span(_value(change.after), in_table=True),
            )
            for change in diff.knobs_changed
        ],
    )
    return "\n".join(lines) + "\n"
