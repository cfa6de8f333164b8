"""A dry run of a survey year's configuration and an export (`cro-awards check`), without Prefect.

Not the run's output checks (sql/tests/): this stops after validation, as a run would before scoring.

Contract:
- `check_export(config_path, export_path)` loads and validates the configuration, reads the export and
  judges its rows by the same code as a run (`cro_awards.run.pipeline.run_pipeline`, through validation),
  all in memory. Nothing is published, quarantined or written. It returns a `CheckReport`: rows read /
  accepted / quarantined, the count per reason code, the first source rows per reason, what reading the
  export noticed (rows hidden in an .xlsx's first sheet, which are scored; formula cells without a saved
  value, read as blank, per column; trailing columns with no name and no value, ignored), `unmatched`
  (every CRO spelling quarantined as unknown_cro, with its rows and whether `not_rated` lists it:
  `unmatched.unmatched_spellings`), `near_misses` (`near_misses`: those within a typo of a configured
  name or alias, each with the alias to add), `screens` (per configured respondent screen,
  `screen_counts`: the rows per reason code, the rows it alone removes and, for the respondent-level
  screens, the respondents; all taken from the run's own validation, never judged a second time),
  `screened_alone` (the rows only the screens remove) and `passed` (a run would pass: the rejected share
  is within `max_rejected_share`, and no unmatched spelling has `min_evaluations` rows or more without
  `not_rated` listing it: `lost`, `stop` the paragraph a run would stop with); `exit_code` is what a run
  would exit with (`UnmatchedCroError`'s for a lost CRO, then `RejectedShareError`'s). A configuration
  error (`ConfigError`) or a file-level export error (`ExportError`) propagates, for the caller to
  print. The report holds codes, counts, column names and source row numbers only, and the CRO
  spellings that match no CRO (the name of a CRO is no respondent's data): never a respondent id or any
  other field's value.
- The near misses and the paragraph of a lost CRO come from `cro_awards.reading.unmatched` (`near_misses`,
  `edit_distance`, `near_miss_limit`, `NearMiss`, re-exported here; `unmatched_cro_message`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from cro_awards.engine.errors import RejectedShareError, UnmatchedCroError
from cro_awards.engine.identity import identity_key
from cro_awards.reading.config import Screens, load_config
from cro_awards.reading.unmatched import (  # noqa: F401 - near-miss names re-exported: the dry run's contract
    NearMiss,
    UnmatchedSpelling,
    edit_distance,
    lost_cros,
    near_miss_limit,
    near_misses,
    unmatched_cro_message,
    unmatched_spellings,
)
from cro_awards.run.pipeline import gate_failure, run_pipeline

EXAMPLES_PER_REASON = 5
"""How many source rows `CheckReport.examples` keeps per reason code (the first ones)."""


# --- what each respondent screen would remove ----------------------------------------------------------

SCREEN_REASONS = {
    "qualification": ("not_qualified",),
    "straight_lining": ("straight_lining",),
    "speeding": ("invalid_duration", "speeding"),
}
"""Each screen of `screens:` (the spec's order) -> the reason codes it gives, in the contract's order."""

RESPONDENT_LEVEL_REASONS = frozenset({"not_qualified", "speeding"})
"""Reasons given to every row of a respondent screened out on any of their rows (the spec)."""


@dataclass(frozen=True)
class ScreenCount:
    """What one configured respondent screen removes from an export, as the run's own validation judged
    it (`Validation.rows_by_reason`; nothing is judged again here). Counts only, never a field's value."""

    screen: str
    """The screen's key under `screens:` (qualification, straight_lining, speeding)."""
    setting: str
    """The screen as configured, in words: "decision_role in: final decision maker, shared decision maker"."""
    rows_by_reason: dict[str, int]
    """Each of the screen's reason codes -> the rows quarantined with it (0 included)."""
    rows: int
    """Rows with any of the screen's codes (a row may have other reasons too)."""
    rows_alone: int
    """Of `rows`, those no other reason quarantines: what the screen alone removes."""
    respondents: int | None = None
    """The respondent-level screens (qualification, speeding): the distinct respondent ids (as identities)
    of the rows with not_qualified or speeding; None for straight_lining, which judges each evaluation."""


def _setting(screens: Screens, screen: str) -> str:
    if screen == "qualification":
        return f"{screens.qualification.column} in: {', '.join(screens.qualification.allowed)}"
    if screen == "straight_lining":
        return f"at least {screens.straight_lining.min_ratings} valid ratings, all equal"
    return f"{screens.speeding.column} below {screens.speeding.min_seconds:g} seconds"


def _reasons_of_rows(rows_by_reason: dict[str, list[int]]) -> dict[int, set[str]]:
    """{source row: its reason codes}, from code -> source rows."""
    reasons: dict[int, set[str]] = {}
    for code, rows in rows_by_reason.items():
        for row in rows:
            reasons.setdefault(row, set()).add(code)
    return reasons


def screen_counts(
    screens: Screens, rows_by_reason: dict[str, list[int]], respondents: dict[int, str | None]
) -> tuple[ScreenCount, ...]:
    """What each configured screen removes, in the spec's order (none configured: an empty tuple).

    `rows_by_reason` is the run's own (`Validation.rows_by_reason()`: code -> source rows); `respondents`
    maps each quarantined source row to its respondent's identity (None: no respondent id), for the
    respondent-level screens' count of respondents."""
    reasons_of_row = _reasons_of_rows(rows_by_reason)
    counts = []
    for screen, codes in SCREEN_REASONS.items():
        if getattr(screens, screen) is None:
            continue
        rows = {row for code in codes for row in rows_by_reason.get(code, ())}
        respondent_rows = {
            row for code in codes if code in RESPONDENT_LEVEL_REASONS for row in rows_by_reason.get(code, ())
        }
        counts.append(
            ScreenCount(
                screen=screen,
                setting=_setting(screens, screen),
                rows_by_reason={code: len(rows_by_reason.get(code, ())) for code in codes},
                rows=len(rows),
                rows_alone=sum(1 for row in rows if reasons_of_row[row] <= set(codes)),
                respondents=(
                    len({respondents.get(row) for row in respondent_rows} - {None})
                    if any(code in RESPONDENT_LEVEL_REASONS for code in codes)
                    else None
                ),
            )
        )
    return tuple(counts)


def screened_alone(screens: Screens, rows_by_reason: dict[str, list[int]]) -> int:
    """The rows that only the configured screens' reasons quarantine (no other reason would): what the
    screens together take from the awards."""
    screen_codes = {code for screen, codes in SCREEN_REASONS.items() if getattr(screens, screen) for code in codes}
    reasons_of_row = _reasons_of_rows(rows_by_reason)
    return sum(1 for codes in reasons_of_row.values() if codes & screen_codes and codes <= screen_codes)


def _respondents(rejected: pa.Table) -> dict[int, str | None]:
    """{source row: its respondent id as an identity (`cro_awards.engine.identity`), None when blank} of the
    quarantined rows (read from their fields as written)."""
    rows = rejected.select(["source_row", "fields"]).to_pylist()
    texts = pa.array([dict(row["fields"] or {}).get("respondent_id") for row in rows], pa.string())
    return dict(zip((row["source_row"] for row in rows), identity_key(texts).to_pylist(), strict=True))


# --- a dry run of an export -----------------------------------------------------------------------------
IGNORED_COLUMNS_NAMED = 5
"""How many ignored columns `check` names before "and N more"."""


def _named_columns(names: tuple[str, ...], count: int) -> str:
    """`: 'Notes', 'extra'` (at most IGNORED_COLUMNS_NAMED, then `and N more`); empty when none is named."""
    if not names:
        return ""
    shown = ", ".join(repr(name) for name in names[:IGNORED_COLUMNS_NAMED])
    more = count - min(len(names), IGNORED_COLUMNS_NAMED)
    return f": {shown}" + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class CheckReport:
    """What a dry run found: counts per reason code and example source rows; never a field's value."""

    config_file: str
    export_file: str
    survey_year: int
    read: int
    accepted: int
    quarantined: int
    quarantined_by_reason: dict[str, int]
    examples: dict[str, list[int]]
    max_rejected_share: float
    passed: bool
    renamed_columns: int = 0
    ignored_columns: int = 0
    ignored_column_names: tuple[str, ...] = ()
    """The ignored columns' headers, in the export's order (the count above is their number)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    hidden_rows: int = 0
    formulas_without_saved_value: dict[str, int] = field(default_factory=dict)
    empty_columns_ignored: int = 0
    near_misses: tuple[NearMiss, ...] = ()
    unmatched: tuple[UnmatchedSpelling, ...] = ()
    """Every CRO spelling quarantined as unknown_cro, with its rows, the most rows first."""
    min_evaluations: int = 10
    stop: str = ""
    """The paragraph a run would stop with for `lost` (`unmatched_cro_message`); empty when none."""
    screens: tuple[ScreenCount, ...] = ()
    """What each configured respondent screen removes (empty: the year configures none)."""
    screened_alone: int = 0
    """Rows quarantined only by the screens' reasons (no other reason would)."""
    min_cell_size: int = 3
    not_counted: dict[str, dict[str, int]] = field(default_factory=dict)
    """segment -> {"cells", "ratings"}: what a run would count nowhere (cells rated by fewer than
    min_cell_size respondents)."""

    @property
    def rejected_share(self) -> float:
        return self.quarantined / self.read if self.read else 0.0

    @property
    def within_rejected_share(self) -> bool:
        """The rejected-share gate's verdict (`pipeline.gate_failure`)."""
        return self.rejected_share <= self.max_rejected_share

    @property
    def lost(self) -> tuple[UnmatchedSpelling, ...]:
        """The unmatched spellings that would stop a run: at least min_evaluations rows, not in not_rated."""
        return tuple(s for s in self.unmatched if s.rows >= self.min_evaluations and not s.not_rated)

    @property
    def exit_code(self) -> int:
        """What `cro-awards check` exits with: what a run would (0 when it would pass)."""
        if self.lost:
            return UnmatchedCroError.exit_code
        return 0 if self.passed else RejectedShareError.exit_code

    def _render_unmatched(self) -> list[str]:
        if not self.unmatched:
            return []
        lines = [
            "CRO spellings that match no name or alias (quarantined as unknown_cro), with their rows; one in at "
            f"least min_evaluations = {self.min_evaluations} rows stops a run unless not_rated lists it:"
        ]
        width = max(len(repr(unmatched.spelling)) for unmatched in self.unmatched)
        for unmatched in self.unmatched:
            if unmatched.not_rated:
                note = "  not_rated: left out knowingly"
            elif unmatched.rows >= self.min_evaluations:
                note = "  STOPS A RUN (below)"
            else:
                note = ""
            lines.append(f"  {unmatched.spelling!r:<{width}}  {unmatched.rows:>6} row(s){note}")
        blank = self.quarantined_by_reason.get("unknown_cro", 0) - sum(unmatched.rows for unmatched in self.unmatched)
        if blank:
            lines.append(f"  and {blank} row{'' if blank == 1 else 's'} with the CRO blank")
        return lines

    def _render_screens(self) -> list[str]:
        if not self.screens:
            return [
                f"Respondent screens: not configured in {self.config_file} (qualification, straight_lining and "
                "speeding are optional: docs/how-to-add-a-survey-year.md)."
            ]
        lines = ["Respondent screens, the rows each removes (a row may have other reasons too):"]
        for count in self.screens:
            reasons = ", ".join(f"{code} {rows}" for code, rows in count.rows_by_reason.items())
            who = f", {count.respondents} respondent(s)" if count.respondents is not None else ""
            lines.append(
                f"  {count.screen} ({count.setting}): {count.rows} row(s) ({reasons}{who}); "
                f"{count.rows_alone} for this screen alone"
            )
        share = self.screened_alone / self.read if self.read else 0.0
        lines.append(
            f"  Together the screens remove {self.screened_alone} row(s) that no other reason would "
            f"({share:.1%} of the rows read)."
        )
        return lines

    def render(self) -> str:
        """The report for a terminal: plain text, one fact a line."""
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"Check of {self.export_file} against {self.config_file} (survey year {self.survey_year}): {verdict}",
            f"Rows read {self.read}, accepted {self.accepted}, quarantined {self.quarantined} "
            f"({self.rejected_share:.1%} rejected; max_rejected_share {self.max_rejected_share:.1%})",
        ]
        if self.overrides:
            lines.append("Overrides: " + ", ".join(f"{key}={value}" for key, value in self.overrides.items()))
        if self.renamed_columns or self.ignored_columns:
            lines.append(
                f"Columns: {self.renamed_columns} renamed through `columns`, {self.ignored_columns} ignored "
                f"(not in the contract){_named_columns(self.ignored_column_names, self.ignored_columns)}"
            )
        if self.empty_columns_ignored:
            lines.append(f"Columns: {self.empty_columns_ignored} trailing column(s) with no name and no value ignored")
        if self.hidden_rows:
            lines.append(
                f"Hidden rows: {self.hidden_rows} row(s) of the first sheet are hidden in the spreadsheet; they are "
                "read and scored like the others"
            )
        for column, count in self.formulas_without_saved_value.items():
            lines.append(
                f"Formulas: {count} cell(s) of column {column!r} hold formulas with no saved value and are read as "
                "blank: open the workbook in the spreadsheet program and save it"
            )
        if self.quarantined_by_reason:
            width = max(len(code) for code in self.quarantined_by_reason)
            lines.append("Quarantined rows by reason (a row may have several), with the first source rows:")
            for code, count in self.quarantined_by_reason.items():
                rows = ", ".join(str(row) for row in self.examples.get(code, []))
                more = ", ..." if count > len(self.examples.get(code, [])) else ""
                lines.append(f"  {code:<{width}}  {count:>6}  rows {rows}{more}")
        else:
            lines.append("Every row is valid.")
        lines += self._render_screens()
        if self.not_counted:
            big, small = self.not_counted["big_pharma"], self.not_counted["small_pharma"]
            lines.append(
                f"Not counted (a CRO's attribute rated by fewer than min_cell_size = {self.min_cell_size} respondents "
                f"of a segment counts nowhere): Big Pharma {big['cells']} cell(s), {big['ratings']} rating(s); "
                f"Small Pharma {small['cells']} cell(s), {small['ratings']} rating(s)."
            )
        lines += self._render_unmatched()
        if self.near_misses:
            lines.append(
                "CRO spellings that match no name or alias but are close to one (quarantined as unknown_cro); "
                f"add each as an alias in {self.config_file} to keep its rows:"
            )
            for miss in self.near_misses:
                others = f" (as close to {', '.join(miss.also_close)})" if miss.also_close else ""
                lines.append(
                    f"  {miss.spelling!r} in {miss.rows} row(s) is {miss.distance} edit(s) from {miss.close_to!r}: "
                    f"CRO {miss.cro_id} ({miss.cro_name!r}){others}; in its entry write  {miss.aliases_line}"
                )
        if self.stop:
            lines.append(f"A run would stop: {self.stop}")
        if not self.within_rejected_share:
            lines.append(
                f"A run would fail: {self.rejected_share:.1%} of the rows rejected is more than max_rejected_share. "
                "Fix the export (source row 1 is its first data row) or the configuration, and check again."
            )
        lines.append("Dry run: nothing was published, quarantined or written.")
        return "\n".join(lines)


def check_export(
    config_path: str | Path, export_path: str | Path | None = None, *, overrides: dict[str, Any] | None = None
) -> CheckReport:
    """Dry-run `export_path` (default: the YAML's sample_export) against the survey year `config_path`
    (see the module contract).

    `overrides` are method knobs as for a run (e.g. `{"max_rejected_share": 0.3}`). Raises `ConfigError`
    for an invalid configuration and `ExportError` for a file-level problem with the export.
    """
    loaded = load_config(config_path, overrides)
    export = loaded.export_path(export_path)
    result = run_pipeline(loaded, export, through="validate")
    validation = result.validation
    rows_by_reason = validation.rows_by_reason()
    counts = validation.counts
    screens = loaded.survey.screens
    unmatched = unmatched_spellings(validation.rejected, loaded.survey)
    lost = lost_cros(unmatched, loaded.survey)
    config_file = Path(config_path).name
    return CheckReport(
        config_file=config_file,
        export_file=export.name,
        survey_year=loaded.survey.survey_year,
        read=counts["read"],
        accepted=counts["accepted"],
        quarantined=counts["quarantined"],
        quarantined_by_reason={code: len(rows) for code, rows in rows_by_reason.items()},
        examples={code: rows[:EXAMPLES_PER_REASON] for code, rows in rows_by_reason.items()},
        max_rejected_share=float(loaded.survey.max_rejected_share),
        passed=gate_failure(validation, loaded, export) is None and not lost,
        renamed_columns=len(result.export.renamed),
        ignored_columns=len(result.export.ignored_columns),
        ignored_column_names=tuple(result.export.ignored_columns),
        overrides=dict(loaded.overrides),
        hidden_rows=result.export.hidden_rows,
        formulas_without_saved_value=dict(result.export.formulas_without_saved_value),
        empty_columns_ignored=result.export.dropped_empty_columns,
        near_misses=tuple(near_misses({s.spelling: s.rows for s in unmatched}, loaded.survey)),
        unmatched=unmatched,
        min_evaluations=loaded.survey.min_evaluations,
        stop=unmatched_cro_message(lost, loaded.survey, config_file, export.name) if lost else "",
        screens=screen_counts(screens, rows_by_reason, _respondents(validation.rejected) if screens.configured else {}),
        screened_alone=screened_alone(screens, rows_by_reason),
        min_cell_size=loaded.survey.min_cell_size,
        not_counted=result.not_counted,
    )
